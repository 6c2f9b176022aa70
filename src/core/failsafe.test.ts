import { test } from 'node:test';
import assert from 'node:assert/strict';

import { failsafeLeader, failsafeRaceRefusal, failsafeTopology, primaryMayStay, sameTopology } from './failsafe.ts';
import { clusterView } from './model.ts';
import type { ClusterView, Observation } from './model.ts';

// Only the fields failsafe.ts reads; the rest of an Observation is irrelevant to these rules.
function at(opts: { failsafeMode?: boolean; pause?: boolean; me?: string; cluster?: Partial<ClusterView> | null; failsafe?: Observation['failsafe']; now?: number }): Observation {
  const cluster: ClusterView | undefined =
    opts.cluster === null
      ? undefined
      : clusterView({
          initialize: '1',
          config: {},
          configVersion: '1',
          members: [
            { name: 'b', version: '1', session: '', data: { api_url: 'http://10.0.0.2:8008/patroni' } },
            { name: 'a', version: '1', session: '', data: { api_url: 'http://10.0.0.1:8008/patroni' } },
            { name: 'c', version: '1', session: '', data: {} },
          ],
          history: [],
          revision: '1',
          ...(opts.cluster ?? {}),
        });
  return {
    now: opts.now ?? 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: opts.me ?? 'a', tags: {}, canBootstrap: false, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: { ttl: 30, loop_wait: 10, retry_timeout: 10, maximum_lag_on_failover: 1, primary_start_timeout: 300, check_timeline: false, postgresql: {}, failsafe_mode: opts.failsafeMode ?? true, pause: opts.pause ?? false },
    cluster,
    pg: { dataDirEmpty: false, sysid: '1', running: true, ready: true, inRecovery: false, walLsn: 1, receiveLsn: undefined, replayLsn: undefined, timeline: 1, streaming: false, upstream: null, controlState: 'in production', rewindable: true, crashed: false },
    task: undefined,
    failures: [],
    memory: {},
    ...(opts.failsafe !== undefined ? { failsafe: opts.failsafe } : {}),
  };
}

test('the published topology lists every member with an api_url, sorted, and needs our own', () => {
  assert.deepEqual(failsafeTopology(at({})), { a: 'http://10.0.0.1:8008/patroni', b: 'http://10.0.0.2:8008/patroni' });
  assert.deepEqual(Object.keys(failsafeTopology(at({})) ?? {}), ['a', 'b']);
  assert.equal(failsafeTopology(at({ me: 'c' })), undefined, 'c has no api_url: publishing without it would fence c out');
  assert.equal(failsafeTopology(at({ cluster: null })), undefined);
});

test('sameTopology ignores order and sees any difference', () => {
  assert.equal(sameTopology({ a: '1', b: '2' }, { b: '2', a: '1' }), true);
  assert.equal(sameTopology({ a: '1' }, { a: '1', b: '2' }), false);
  assert.equal(sameTopology({ a: '1' }, { a: '2' }), false);
  assert.equal(sameTopology(undefined, { a: '1' }), false);
  assert.equal(sameTopology(undefined, undefined), true);
});

test('a primary without the DCS stays only when failsafe is on and every member accepted', () => {
  assert.equal(primaryMayStay(at({ failsafeMode: false, failsafe: { check: { ok: true, reason: 'all accepted' } } })).stay, false);
  assert.equal(primaryMayStay(at({ pause: true, failsafe: { check: { ok: true, reason: 'all accepted' } } })).stay, false);
  assert.equal(primaryMayStay(at({})).stay, false, 'no check run: demote');
  assert.deepEqual(primaryMayStay(at({ failsafe: { check: { ok: false, reason: 'b: timed out' } } })), { stay: false, reason: 'b: timed out' });
  assert.deepEqual(primaryMayStay(at({ failsafe: { check: { ok: true, reason: 'all members accepted' } } })), { stay: true, reason: 'all members accepted' });
});

test('a member missing from a non-empty /failsafe may not race', () => {
  assert.equal(failsafeRaceRefusal(at({ cluster: { failsafe: { b: 'x' } } })), 'I am not a member of /failsafe');
  assert.equal(failsafeRaceRefusal(at({ cluster: { failsafe: { a: 'x', b: 'y' } } })), undefined);
  assert.equal(failsafeRaceRefusal(at({ cluster: { failsafe: {} } })), undefined);
  assert.equal(failsafeRaceRefusal(at({ cluster: { failsafe: undefined } })), undefined);
  assert.equal(failsafeRaceRefusal(at({ failsafeMode: false, cluster: { failsafe: { b: 'x' } } })), undefined);
  // The DCS view lacks the key but the cached value (kept while the DCS was down) has it.
  assert.equal(failsafeRaceRefusal(at({ cluster: { failsafe: undefined }, failsafe: { topology: { b: 'x' } } })), 'I am not a member of /failsafe');
});

test('a replica defers to a primary that confirmed itself less than ttl ago', () => {
  const leader = (atMs: number): Observation['failsafe'] => ({ leader: { name: 'b', at: atMs } });
  assert.equal(failsafeLeader(at({ now: 100_000, failsafe: leader(90_000) })), 'b');
  assert.equal(failsafeLeader(at({ now: 100_000, failsafe: leader(70_000) })), undefined, 'exactly ttl old: expired');
  assert.equal(failsafeLeader(at({ now: 100_000, failsafe: leader(99_000), failsafeMode: false })), undefined);
  assert.equal(failsafeLeader(at({ me: 'b', failsafe: leader(99_000) })), undefined);
  assert.equal(failsafeLeader(at({})), undefined);
});
