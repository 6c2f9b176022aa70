// Consul service registration: the service name of a scope and the registration body (pure parts).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ConsulService, consulServiceName, pySeconds } from './consul-service.ts';

test("service name: lower-cased, '.', ' ', '_' -> '-', other characters -> u + code point, at most 230", () => {
  assert.equal(consulServiceName('Batman'), 'batman');
  assert.equal(consulServiceName('pg.prod_1 a-b'), 'pg-prod-1-a-b');
  assert.equal(consulServiceName('café/x'), 'cafu0233u0047x');
  assert.equal(consulServiceName('x'.repeat(300)).length, 230);
});

test('durations are written as Python prints a float of seconds', () => {
  assert.equal(pySeconds(15), '15.0');
  assert.equal(pySeconds(7.5), '7.5');
});

test('registration body: address and port from conn_url (IPv6 without brackets), check on the API role endpoint', () => {
  const s = new ConsulService({ scope: 'Batman', name: 'pg0', tags: ['t'], interval: '10s', ttl: 20, call: () => Promise.reject(new Error('no call')) });
  assert.deepEqual(s.registration({ role: 'replica', api_url: 'http://[fd00::2]:8008/patroni', conn_url: 'postgres://[fd00::2]:6432/postgres' }), {
    Name: 'batman',
    ID: 'Batman/pg0',
    Address: 'fd00::2',
    Port: 6432,
    Check: { HTTP: 'http://[fd00::2]:8008/replica', Interval: '10s', DeregisterCriticalServiceAfter: '100.0s' },
    Tags: ['t', 'replica'],
    EnableTagOverride: true,
  });
});
