import { test } from 'node:test';
import assert from 'node:assert/strict';

import { awaitingMemberKey, sendersChanged, watchedSenders } from './sync-watch.ts';
import { syncStep, SYNC_WAKE_MS } from './sync.ts';
import type { LocalSync, Member, Observation } from './model.ts';
import { defaultConfig } from './testing.ts';

const member = (name: string, state: string, tags: Member['data']['tags'] = {}): Member => ({
  name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, api_url: `http://${name}:8008/patroni`, state, role: 'replica', tags },
});

function obs(members: Member[], local: LocalSync, over: Partial<Observation> = {}): Observation {
  return {
    now: 100_000,
    wallClock: '2026-01-01T00:01:40.000Z',
    self: { name: 'n0', tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig({ synchronous_mode: 'on', loop_wait: 30, ttl: 60 }),
    cluster: {
      initialize: '1', config: {}, configVersion: '1', leader: { name: 'n0', version: '3', session: '1' }, members: [member('n0', 'running'), ...members],
      failover: undefined, sync: { leader: 'n0', sync_standby: null, quorum: 0, version: '4' }, history: [], status: undefined, failsafe: undefined, revision: '9',
    },
    pg: {
      dataDirEmpty: false, sysid: '1', running: true, ready: true, inRecovery: false, walLsn: 5000, receiveLsn: undefined, replayLsn: undefined,
      timeline: 1, streaming: false, upstream: null, controlState: 'in production', rewindable: true, crashed: false, sync: local,
    },
    peers: [], task: undefined, failures: [], memory: { started: true },
    ...over,
  };
}

const streaming = (name: string) => ({ pid: 7, name, state: 'streaming', syncState: 'async', writeLsn: 5000, flushLsn: 5000, replayLsn: 5000 });
const local = (...names: string[]): LocalSync => ({ ssn: '', managed: true, synchronousCommit: 'on', senders: names.map(streaming), ssnSetAtLsn: 5000 });

test('watchedSenders: only a lock-holding primary in synchronous mode watches', () => {
  const o = obs([member('n1', 'running')], local('n1'));
  assert.deepEqual(watchedSenders(o, true), { names: ['n1'], members: ['n0', 'n1'] });
  assert.equal(watchedSenders(o, false), undefined);
  assert.equal(watchedSenders({ ...o, config: defaultConfig() }, true), undefined);
});

test('sendersChanged: a streaming name the last tick did not see (in any case), or a watched one gone, not streaming or stalled', () => {
  const row = (application_name: string | null, state = 'streaming', silent_ms = 0) => ({ application_name, state, silent_ms });
  const probe = (replication: ReturnType<typeof row>[], syncRepWaiters = 0, synchronousStandbyNames = 'n1') => ({ replication, syncRepWaiters, synchronousStandbyNames });
  const T = 5000;
  const k = (...names: string[]) => ({ names, members: ['n0', 'n1', 'n2'] });
  assert.equal(sendersChanged(k('n1'), probe([row('N1')]), T), undefined);
  assert.equal(sendersChanged(k('n1'), probe([row('n1'), row('n2')]), T), 'new');
  assert.equal(sendersChanged(k('n1'), probe([row('n1'), row('n2', 'catchup')]), T), undefined);
  assert.equal(sendersChanged(k(), probe([row(null), row('')]), T), undefined);
  // Gone, or no longer streaming.
  assert.equal(sendersChanged(k('n1'), probe([]), T), 'lost');
  assert.equal(sendersChanged(k('n1'), probe([row('n1', 'stopping')]), T), 'lost');
  // Silent past the threshold while commits wait: stalled.
  assert.equal(sendersChanged(k('n1'), probe([row('n1', 'streaming', 5000)], 1), T), 'lost');
  // Silent but no commit waits and it is listed: nothing to react to; under the threshold: neither.
  assert.equal(sendersChanged(k('n1'), probe([row('n1', 'streaming', 60_000)], 0), T), undefined);
  assert.equal(sendersChanged(k('n1'), probe([row('n1', 'streaming', 4999)], 3), T), undefined);
  // A stalled sender the tick left out is not new; once it answers again (silence 0), it is.
  assert.equal(sendersChanged(k(), probe([row('n1', 'streaming', 9000)], 0, ''), T), undefined);
  assert.equal(sendersChanged(k(), probe([row('n1', 'streaming', 0)], 0, ''), T), 'new');
  // A sender that is no member (a logical subscriber) is never stalled: its silence changes nothing.
  assert.equal(sendersChanged(k('n1', 'sub'), probe([row('n1'), row('sub', 'streaming', 9000)], 1), T), undefined);
});

test('watchedSenders leaves stalled senders out, with the threshold of the configuration', () => {
  const l = { ...local('n1', 'n2'), ssn: '2 (n1,n2)', syncRepWaiters: 2 };
  l.senders[0] = { ...l.senders[0]!, silentMs: 14_000 };
  const o = obs([member('n1', 'running'), member('n2', 'running')], l);
  // loop_wait 30: the threshold is 15 s.
  assert.deepEqual(watchedSenders(o, true)?.names, ['n1', 'n2']);
  l.senders[0] = { ...l.senders[0], silentMs: 15_000 };
  assert.deepEqual(watchedSenders(obs([member('n1', 'running'), member('n2', 'running')], l), true)?.names, ['n2']);
});

test('a streaming standby whose member key is not running yet keeps the sync step looking, for one loop at most', () => {
  const o = obs([member('n1', 'starting'), member('n2', 'starting', { nosync: true })], local('n1', 'n2'));
  assert.deepEqual(awaitingMemberKey(o, local('n1', 'n2')), ['n1']);
  const first = syncStep(o);
  assert.equal(first.wakeMs, SYNC_WAKE_MS);
  assert.equal(first.memory.syncPendingSince, 100_000);
  // Still waiting a loop_wait later: back to the normal cadence.
  const later = syncStep({ ...o, now: 130_000, memory: { started: true, syncPendingSince: 100_000 } });
  assert.equal(later.wakeMs, undefined);
  // Its key says running: it is a candidate now (ssn first).
  const ready = syncStep(obs([member('n1', 'running')], local('n1')));
  assert.deepEqual(ready.actions, [{ type: 'setSyncStandbyNames', value: 'n1' }]);
});
