import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildParameters, type BuildParamsInput } from './conf.ts';

const settings: BuildParamsInput['settings'] = {
  listen: '127.0.0.1:5432',
  parameters: { hot_standby_feedback: 'off' },
  pgpass: '/tmp/pgpass',
  database: 'postgres',
  useSlots: true,
  authentication: { superuser: { username: 'postgres' }, replication: { username: 'replicator' } },
};

test('buildParameters: hotStandbyFeedback forces hot_standby_feedback on over the configured value', () => {
  const up = { connUrl: 'postgres://h:1/x', name: 'l' };
  const get = (b: ReturnType<typeof buildParameters>) => new Map(b.conf).get('hot_standby_feedback');
  assert.equal(get(buildParameters({ settings, memberName: 'n', role: 'replica', upstream: up })), 'off');
  assert.equal(get(buildParameters({ settings, memberName: 'n', role: 'replica', upstream: up, hotStandbyFeedback: true })), 'on');
  assert.equal(get(buildParameters({ settings, memberName: 'n', role: 'replica', upstream: up, dynamic: { hot_standby_feedback: false }, hotStandbyFeedback: true })), 'on');
  assert.equal(get(buildParameters({ settings: { ...settings, parameters: {} }, memberName: 'n', role: 'primary' })), undefined);
});
