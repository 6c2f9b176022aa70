import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.ts';
import { clusterView } from './model.ts';
import { defaultConfig } from './testing.ts';
import type { ClusterView, LocalPg, Memory, Observation, PeerStatus } from './model.ts';

const SYSID = '7268616322854375442';

function view(over: Partial<ClusterView> = {}): ClusterView {
  const m = (name: string, lsn: number) => ({ name, version: '1', session: '1', data: { conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica', xlog_location: lsn } });
  return clusterView({ initialize: SYSID, config: {}, configVersion: '1', members: [m('n1', 1000), m('n2', 1000)], history: [], status: { optime: 1000 }, revision: '10', ...over });
}

function pg(over: Partial<LocalPg> = {}): LocalPg {
  return {
    dataDirEmpty: false, sysid: SYSID, running: true, ready: true, inRecovery: true, walLsn: 1000, receiveLsn: 1000, replayLsn: 1000,
    timeline: 1, streaming: true, upstream: 'n0', controlState: 'in archive recovery', rewindable: true, crashed: false, ...over,
  };
}

const peer: PeerStatus = { name: 'n2', reachable: true, inRecovery: true, walPosition: 1000, timeline: 1, nofailover: false, failoverPriority: 1, watchdogFailed: false };

/** n1, a replica, on an unlocked cluster with primary_race_backoff 30 s and loop_wait 10 s. */
function obs(now: number, memory: Memory, over: Partial<Observation> = {}): Observation {
  return {
    now,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: 'n1', tags: {}, canBootstrap: true, bootstrapDcs: { ttl: 30 }, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig({ primary_race_backoff: 30 }),
    cluster: view(),
    pg: pg(),
    peers: [peer],
    task: undefined,
    failures: [],
    memory,
    ...over,
  };
}

const raced = (o: Observation) => decide(o).actions.some((a) => a.type === 'acquireLeader');

test('primary_race_backoff: the first unlocked tick always waits, then the race waits while WAL still arrives', () => {
  // [now ms, walLsn, streaming, races?, note]
  const table: [number, number, boolean, boolean, string][] = [
    [100_000, 1000, true, false, 'first unlocked tick: waits at least one loop'],
    [105_000, 1000, true, false, 'still inside the first loop_wait'],
    [110_000, 2000, true, false, 'WAL moved while streaming: the primary is alive'],
    [120_000, 3000, true, false, 'WAL still moving'],
    [125_000, 3000, true, true, 'WAL stopped: race'],
  ];
  let memory: Memory = { started: true };
  for (const [now, lsn, streaming, want, note] of table) {
    const d = decide(obs(now, memory, { pg: pg({ walLsn: lsn, streaming }) }));
    assert.equal(d.actions.some((a) => a.type === 'acquireLeader'), want, note);
    if (!want) assert.match(d.reason, /^primary_race_backoff: /, note);
    if (!want) assert.ok(d.wakeAfterMs <= 130_000 - now, `${note}: wakes by the end of the backoff`);
    memory = d.memory;
  }
  assert.equal(memory.raceBackoff?.since, 100_000);
});

test('primary_race_backoff: WAL moving no longer stops the race once the backoff has run out, or when not streaming', () => {
  const memory: Memory = { started: true, raceBackoff: { since: 100_000, walLsn: 1000 } };
  assert.equal(raced(obs(130_000, memory, { pg: pg({ walLsn: 2000 }) })), true, 'backoff over');
  assert.equal(raced(obs(115_000, memory, { pg: pg({ walLsn: 2000, streaming: false }) })), true, 'WAL moved (replayed from an archive) but not streaming');
  assert.equal(raced(obs(115_000, memory, { pg: pg({ walLsn: 2000 }) })), false, 'streaming and moved inside the backoff');
});

test('primary_race_backoff: does not apply when off, on the first tick after start, with a failover candidate, or in a standby cluster', () => {
  assert.equal(raced(obs(100_000, { started: true }, { config: defaultConfig() })), true, 'not configured');
  assert.equal(raced(obs(100_000, { started: true }, { config: defaultConfig({ primary_race_backoff: 0 }) })), true, '0 is off');
  assert.equal(raced(obs(100_000, {})), true, 'first tick after start: no previous WAL position');
  const d = decide(obs(100_000, { started: true }, { cluster: view({ failover: { member: 'n1', version: '3' } }) }));
  assert.ok(d.actions.some((a) => a.type === 'acquireLeader'), 'manual failover to me');
  assert.equal(d.memory.raceBackoff, undefined);
  const standby = decide(obs(100_000, { started: true }, { config: defaultConfig({ primary_race_backoff: 30, standby_cluster: { host: 'h' } }) }));
  assert.doesNotMatch(standby.reason, /primary_race_backoff/);
});

test('primary_race_backoff: a leader resets the timer', () => {
  const d = decide(obs(200_000, { started: true, raceBackoff: { since: 100_000, walLsn: 1000 } }, { cluster: view({ leader: { name: 'n2', version: '5', session: 'abc' } }) }));
  assert.equal(d.memory.raceBackoff, undefined);
  assert.ok(!('raceBackoff' in d.memory));
  // The next unlocked tick starts a new backoff.
  assert.equal(raced(obs(210_000, d.memory)), false);
});
