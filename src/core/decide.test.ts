import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.ts';
import { clusterView } from './model.ts';
import { defaultConfig, replicaPeer, streamingReplica, SYSID } from './testing.ts';
import type { Action, ClusterView, DynamicConfig, LocalSync, Member, MemberData, Observation, PeerStatus, WalSender } from './model.ts';


function member(name: string, data: MemberData = {}): Member {
  return {
    name,
    version: '1',
    session: '1',
    data: { conn_url: `postgres://127.0.0.1:${5432}/postgres`, api_url: `http://127.0.0.1:8008/patroni`, state: 'running', role: 'replica', ...data },
  };
}

function view(over: Partial<ClusterView> = {}): ClusterView {
  return clusterView({
    initialize: SYSID,
    config: {},
    configVersion: '1',
    members: [member('n0', { role: 'primary', xlog_location: 1000 }), member('n1', { xlog_location: 1000 }), member('n2', { xlog_location: 1000 })],
    history: [],
    status: { optime: 1000 },
    revision: '10',
    ...over,
  });
}

const pg = streamingReplica;

function obs(over: Partial<Observation> = {}): Observation {
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: {
      name: 'n1',
      tags: {},
      canBootstrap: true,
      bootstrapDcs: { ttl: 30 },
      remove_data_directory_on_rewind_failure: false,
      remove_data_directory_on_diverged_timelines: false,
    },
    config: defaultConfig(),
    cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' } }),
    pg: pg(),
    task: undefined,
    failures: [],
    memory: { started: true },
    ...over,
  };
}

const peer = replicaPeer;

function types(actions: Action[]): string[] {
  return actions.map((a) => (a.type === 'startTask' ? `startTask:${a.task.kind}` : a.type));
}

const unlocked = view();

test('bootstrap: empty data dir, no /initialize, bootstrap section -> race for /initialize then initdb', () => {
  const d = decide(obs({ cluster: view({ initialize: undefined, members: [] }), pg: pg({ dataDirEmpty: true, running: false, sysid: undefined }) }));
  assert.deepEqual(types(d.actions), ['createInitialize', 'startTask:bootstrap']);
  assert.equal(d.role, 'uninitialized');
});

test('bootstrap: no bootstrap section or nofailover -> wait for a leader', () => {
  for (const self of [{ canBootstrap: false, tags: {} }, { canBootstrap: true, tags: { nofailover: true } }]) {
    const o = obs({ cluster: view({ initialize: undefined, members: [] }), pg: pg({ dataDirEmpty: true, running: false, sysid: undefined }) });
    o.self = { ...o.self, ...self };
    const d = decide(o);
    assert.deepEqual(d.actions, []);
    assert.match(d.reason, /waiting for leader to bootstrap/);
  }
});

test('bootstrap in progress elsewhere (/initialize is "") -> wait', () => {
  const d = decide(obs({ cluster: view({ initialize: '', members: [] }), pg: pg({ dataDirEmpty: true, running: false, sysid: undefined }) }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /bootstrap in progress/);
});

test('empty data dir and a leader -> clone from the leader, or from a running clonefrom member', () => {
  const base = { pg: pg({ dataDirEmpty: true, running: false, sysid: undefined }) };
  let d = decide(obs(base));
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'clone', from: 'n0' } }]);
  const withClonefrom = view({
    leader: { name: 'n0', version: '5', session: 'abc' },
    members: [member('n0', { role: 'primary' }), member('n2', { tags: { clonefrom: true } })],
  });
  d = decide(obs({ ...base, cluster: withClonefrom }));
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'clone', from: 'n2' } }]);
});

test('bootstrap finished -> /initialize, /config and the leader key, in that order', () => {
  const d = decide(obs({
    cluster: view({ initialize: '', members: [] }),
    pg: pg({ inRecovery: false, upstream: null }),
    task: { kind: 'bootstrap', startedAt: 0, state: 'ok' },
  }));
  assert.deepEqual(d.actions, [
    { type: 'writeInitialize', sysid: SYSID },
    { type: 'writeConfig', config: { ttl: 30 } },
    { type: 'takeLeader' },
  ]);
  assert.equal(d.role, 'primary');
});

test('bootstrap failed -> /initialize deleted and data removed so the race can run again', () => {
  const d = decide(obs({ cluster: view({ initialize: '', members: [] }), pg: pg({ running: false }), task: { kind: 'bootstrap', startedAt: 0, state: 'failed', error: 'initdb: boom' } }));
  assert.deepEqual(types(d.actions), ['deleteInitialize', 'removeDataDir']);
  assert.match(d.reason, /initdb: boom/);
});

test('data of another cluster -> stay up read-only with a loud reason, never join, never lead', () => {
  // A replica: no exit, no action, read-only.
  const d = decide(obs({ pg: pg({ sysid: '1111111111111111111' }) }));
  assert.equal(d.exit, undefined);
  assert.match(d.reason, /another cluster: system identifier 1111111111111111111 differs from \/initialize .*staying read-only/);
  assert.deepEqual(d.actions, []);
  assert.equal(d.isLeader, false);
  // The lock holder running as primary (someone overwrote /initialize): gives up the lock and
  // demotes to read-only instead of exiting (which got it fenced and left the replicas without agents).
  const self = { ...obs().self, name: 'n0' };
  const p = decide(obs({
    self,
    pg: pg({ sysid: '1111111111111111111', inRecovery: false, upstream: null }),
    cluster: view({ leader: { name: 'n0', version: '5', session: '1' } }),
    lockRefreshedAt: 99_000,
  }));
  assert.equal(p.exit, undefined);
  assert.deepEqual(types(p.actions), ['releaseLeader', 'startTask:demote']);
  assert.equal(p.isLeader, false);
  assert.match(p.reason, /demoting to read-only/);
  // Without the lock, an unlocked cluster: no race either.
  const race = decide(obs({ pg: pg({ sysid: '1111111111111111111' }), cluster: view({ members: [member('n1', { xlog_location: 5000 })] }) }));
  assert.deepEqual(race.actions, []);
});

test('leader with the lock: refresh, publish optime, keep slots for the other members', () => {
  const d = decide(obs({
    self: { ...obs().self, name: 'n0' },
    pg: pg({ inRecovery: false, walLsn: 2000, upstream: null }),
  }));
  assert.deepEqual(d.actions, [
    { type: 'refreshLeader' },
    { type: 'writeStatus', status: { optime: 2000 } },
    { type: 'ensureSlots', members: ['n1', 'n2'], dropUnknown: true },
  ]);
  assert.equal(d.role, 'primary');
  assert.match(d.reason, /the leader with the lock/);
});

test('leader race: healthiest replica acquires the lock and promotes', () => {
  const d = decide(obs({ cluster: unlocked, peers: [peer('n2', { walPosition: 900 }), peer('n0', { reachable: false })] }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'startTask:promote']);
});

test('leader race: refuse when a peer is ahead, still primary, or when lagging too far', () => {
  const cases: Array<[Partial<Observation>, RegExp]> = [
    [{ peers: [peer('n2', { walPosition: 1001 })] }, /ahead/],
    [{ peers: [peer('n0', { inRecovery: false })] }, /still running as a primary/],
    [{ cluster: view({ status: { optime: 5_000_000 } }) }, /maximum_lag_on_failover/],
  ];
  for (const [over, re] of cases) {
    const d = decide(obs({ cluster: unlocked, ...over }));
    assert.deepEqual(d.actions, [], re.source);
    assert.match(d.reason, re);
  }
});

test('leader race: unreachable, nofailover or watchdog-failed peers do not block', () => {
  const d = decide(obs({
    cluster: unlocked,
    peers: [peer('n2', { walPosition: 5000, reachable: false }), peer('n0', { walPosition: 5000, nofailover: true }), peer('n3', { walPosition: 5000, watchdogFailed: true })],
  }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'startTask:promote']);
});

test('leader race: nofailover or failover_priority 0 never races', () => {
  for (const tags of [{ nofailover: true }, { failover_priority: 0 }]) {
    const o = obs({ cluster: unlocked, peers: [] });
    o.self = { ...o.self, tags };
    assert.deepEqual(decide(o).actions, []);
  }
});

test('leader race: an explicit nofailover: false wins over failover_priority 0 (Patroni 4.1), so the member races', () => {
  const o = obs({ cluster: unlocked, peers: [] });
  o.self = { ...o.self, tags: { nofailover: false, failover_priority: 0 } };
  assert.deepEqual(types(decide(o).actions), ['acquireLeader', 'startTask:promote']);
});

test('leader race: equal positions are broken by failover_priority, except the former leader', () => {
  let d = decide(obs({ cluster: unlocked, peers: [peer('n2', { failoverPriority: 5 })] }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /higher failover_priority/);
  d = decide(obs({
    cluster: unlocked,
    lastHealthyCluster: view({ leader: { name: 'n2', version: '1', session: '1' } }),
    peers: [peer('n2', { failoverPriority: 5 })],
  }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'startTask:promote']);
});

test('leader race: a primary whose timeline is behind /history demotes instead of retaking the lock', () => {
  const d = decide(obs({
    cluster: view({ history: [[1, 500, 'no recovery target specified']] }),
    pg: pg({ inRecovery: false, timeline: 1 }),
  }));
  assert.deepEqual(types(d.actions), ['startTask:demote']);
});

test('leader race: a running primary on the current timeline retakes the lock without promoting', () => {
  const d = decide(obs({ cluster: unlocked, pg: pg({ inRecovery: false, timeline: 1 }) }));
  assert.deepEqual(types(d.actions), ['acquireLeader']);
});

test('another member holds the lock and I run as primary -> immediate demotion', () => {
  const d = decide(obs({ pg: pg({ inRecovery: false }) }));
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'demote', mode: 'immediate-nolock', upstream: 'n0' } }]);
});

test('replica pointed elsewhere -> follow the leader; replicatefrom is honoured', () => {
  let d = decide(obs({ pg: pg({ upstream: 'n2' }) }));
  assert.deepEqual(d.actions, [{ type: 'followUpstream', upstream: 'n0' }]);
  const o = obs({ pg: pg({ upstream: 'n0' }) });
  o.self = { ...o.self, tags: { replicatefrom: 'n2' } };
  d = decide(o);
  assert.deepEqual(d.actions, [{ type: 'followUpstream', upstream: 'n2' }]);
});

test('DCS unreachable: a primary demotes offline, a replica does nothing', () => {
  let d = decide(obs({ cluster: undefined, dcsError: 'timeout', pg: pg({ inRecovery: false }) }));
  assert.deepEqual(types(d.actions), ['cancelTask', 'startTask:demote']);
  assert.equal(d.isLeader, false);
  d = decide(obs({ cluster: undefined, dcsError: 'timeout' }));
  assert.deepEqual(d.actions, []);
});

test('DCS unreachable and PostgreSQL down (fenced or crashed): it comes back read-only, following nobody', () => {
  const down = { running: false, ready: false, crashed: true, controlState: 'in production' as const };
  const start = [{ type: 'startTask', task: { kind: 'start', asPrimary: false, upstream: null } }];
  // a primary fenced while it led (the last view this agent saw names it leader)
  const ledByMe = { ...obs().cluster!, leader: { name: 'n1', version: '1', session: '1' } };
  let d = decide(obs({ cluster: undefined, dcsError: 'timeout', lastHealthyCluster: ledByMe, pg: pg({ ...down, inRecovery: false }) }));
  assert.deepEqual(d.actions, start);
  assert.equal(d.isLeader, false);
  assert.match(d.reason, /read-only, following nobody/);
  // a replica's data directory
  d = decide(obs({ cluster: undefined, pg: pg({ running: false, ready: false, crashed: true, inRecovery: true, controlState: 'in archive recovery' }) }));
  assert.deepEqual(d.actions, start);
  // a former primary this agent has not seen lead (restarted after a host crash: another member
  // may have been promoted, its tail may be lost writes): waits for the DCS
  d = decide(obs({ cluster: undefined, pg: pg({ ...down, inRecovery: false }) }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /has not seen it lead/);
  d = decide(obs({ cluster: undefined, lastHealthyCluster: obs().cluster!, pg: pg({ ...down, inRecovery: false }) }));
  assert.deepEqual(d.actions, []);
  // a data directory known to have diverged stays down
  for (const memory of [{ rewindCheck: 'need' as const }, { rewindCheck: 'failed' as const, rewindFailedFrom: 'n0' }]) {
    d = decide(obs({ cluster: undefined, memory, pg: pg({ running: false, ready: false, inRecovery: true, controlState: 'shut down in recovery' }) }));
    assert.deepEqual(d.actions, [], JSON.stringify(memory));
    assert.match(d.reason, /diverged/);
  }
  // not while a task runs, not in pause, not without a data directory or in a half-done bootstrap
  d = decide(obs({ cluster: undefined, pg: pg({ ...down }), task: { kind: 'demote', state: 'running', startedAt: 0 } }));
  assert.deepEqual(d.actions, []);
  d = decide(obs({ cluster: undefined, pg: pg({ ...down }), config: { ...obs().config, pause: true } }));
  assert.deepEqual(d.actions, []);
  d = decide(obs({ cluster: undefined, pg: pg({ running: false, dataDirEmpty: true }) }));
  assert.deepEqual(d.actions, []);
  const noSysid = pg({ ...down });
  delete noSysid.sysid;
  d = decide(obs({ cluster: undefined, pg: noSysid }));
  assert.deepEqual(d.actions, []);
  d = decide(obs({ cluster: undefined, pg: pg({ ...down }), memory: { bootstrapping: true, bootstrapResult: { state: 'ok' } } }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /bootstrap did not finish/);
});

test('bootstrap decided but never started (the /initialize race was lost): the flag does not outlive it', () => {
  // Regression: the loser of the /initialize race cloned from the winner and, when it later lost
  // the DCS with PostgreSQL down, waited forever for "bootstrap to finish".
  const lost = decide(obs({ cluster: view(), failures: [{ action: 'createInitialize', outcome: 'lost', message: 'exists' }], memory: { bootstrapping: true } }));
  assert.equal(lost.memory.bootstrapping, false);
  const down = decide(obs({ cluster: undefined, pg: pg({ running: false, inRecovery: true }), memory: { bootstrapping: true } }));
  assert.equal(down.memory.bootstrapping, false);
  assert.deepEqual(types(down.actions), ['startTask:start']);
  // While the task runs the flag stays.
  const running = decide(obs({ cluster: view({ initialize: '', members: [] }), pg: pg({ running: false, dataDirEmpty: true }), task: { kind: 'bootstrap', startedAt: 0, state: 'running' }, memory: { bootstrapping: true } }));
  assert.equal(running.memory.bootstrapping, true);
});

test('bootstrap finished while the DCS could not be read: handled when the DCS answers', () => {
  const during = decide(obs({
    cluster: undefined,
    pg: pg({ inRecovery: false, upstream: null }),
    task: { kind: 'bootstrap', startedAt: 0, state: 'ok' },
    memory: { bootstrapping: true },
  }));
  assert.deepEqual(during.memory.bootstrapResult, { state: 'ok' });
  assert.equal(during.memory.bootstrapping, true);
  const after = decide(obs({ cluster: view({ initialize: '', members: [] }), pg: pg({ inRecovery: false, upstream: null }), memory: during.memory }));
  assert.deepEqual(types(after.actions), ['writeInitialize', 'writeConfig', 'takeLeader']);
  assert.equal(after.memory.bootstrapping, false);
  assert.equal(after.memory.bootstrapResult, undefined);
});

test('lock refresh failed -> demote (offline when the DCS is unreachable, immediate when the lock was lost)', () => {
  const self = { ...obs().self, name: 'n0' };
  for (const [outcome, mode] of [['unreachable', 'offline'], ['lost', 'immediate-nolock']] as const) {
    const d = decide(obs({ self, pg: pg({ inRecovery: false }), failures: [{ action: 'refreshLeader', outcome, message: 'x' }] }));
    const start = d.actions.find((a) => a.type === 'startTask');
    assert.ok(start && start.type === 'startTask' && start.task.kind === 'demote' && start.task.mode === mode);
  }
});

test('postgres down on the leader: restart in place as primary while keeping the lock', () => {
  const d = decide(obs({ self: { ...obs().self, name: 'n0' }, pg: pg({ running: false, ready: false, inRecovery: false, crashed: true, controlState: 'in production' }) }));
  assert.deepEqual(d.actions, [{ type: 'refreshLeader' }, { type: 'startTask', task: { kind: 'start', asPrimary: true, upstream: null } }]);
  assert.match(d.reason, /starting primary after failure/);
});

test('postgres down on the leader with primary_start_timeout 0 -> release the lock when a replica can take over', () => {
  const d = decide(obs({
    self: { ...obs().self, name: 'n0' },
    config: defaultConfig({ primary_start_timeout: 0 }),
    pg: pg({ running: false, inRecovery: false, crashed: true }),
  }));
  assert.deepEqual(d.actions, [{ type: 'releaseLeader' }]);
});

test('start timeout on the leader -> give the lock up when failover is possible', () => {
  const d = decide(obs({
    self: { ...obs().self, name: 'n0' },
    config: defaultConfig({ primary_start_timeout: 30 }),
    pg: pg({ running: true, ready: false }),
    task: { kind: 'start', startedAt: 0, state: 'running' },
    now: 31_000,
  }));
  assert.deepEqual(types(d.actions), ['refreshLeader', 'cancelTask', 'startTask:stop']);
});

test('a start that failed while holding the lock releases the lock', () => {
  const d = decide(obs({ self: { ...obs().self, name: 'n0' }, pg: pg({ running: false }), task: { kind: 'start', startedAt: 0, state: 'failed', error: 'FATAL' } }));
  assert.deepEqual(d.actions, [{ type: 'releaseLeader' }]);
});

test('stopped former primary: diverged -> pg_rewind, or reinitialize, or stay down with a reason', () => {
  const stopped = pg({ running: false, inRecovery: false, controlState: 'in production', divergence: 'need' });
  let d = decide(obs({ pg: stopped }));
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'rewind', from: 'n0' } }]);

  d = decide(obs({ pg: { ...stopped, rewindable: false } }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /manual action needed/);
  // remembered, so that a DCS outage does not start it read-only
  assert.equal(d.memory.rewindCheck, 'need');
  assert.deepEqual(decide(obs({ cluster: undefined, memory: d.memory, pg: { ...stopped, rewindable: false } })).actions, []);

  const o = obs({ pg: { ...stopped, rewindable: false } });
  o.self = { ...o.self, remove_data_directory_on_diverged_timelines: true };
  d = decide(o);
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'reinitialize', from: 'n0' } }]);
});

test('stopped former primary whose divergence is unknown waits; a crashed one rewinds; a stopped replica follows', () => {
  let d = decide(obs({ pg: pg({ running: false, inRecovery: false, controlState: 'shut down' }) }));
  assert.deepEqual(d.actions, []);
  // A crash leaves WAL past the checkpoint that no check can see: pg_rewind (a no-op if nothing diverged).
  for (const controlState of ['in production', 'in crash recovery', 'shutting down']) {
    d = decide(obs({ pg: pg({ running: false, inRecovery: false, controlState, divergence: 'not_needed' }) }));
    assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'rewind', from: 'n0' } }], controlState);
  }
  // ... but only against a leader that runs as primary and published where to connect.
  const notReady = view({ leader: { name: 'n0', version: '5', session: 'abc' }, members: [member('n0', { role: 'replica' }), member('n1')] });
  d = decide(obs({ cluster: notReady, pg: pg({ running: false, inRecovery: false, controlState: 'in production' }) }));
  assert.deepEqual(d.actions, []);
  d = decide(obs({ pg: pg({ running: false, inRecovery: true, controlState: 'shut down in recovery', divergence: 'not_needed' }) }));
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'start', asPrimary: false, upstream: 'n0' } }]);
});

test('background task running: the leader keeps refreshing its lock; others wait', () => {
  let d = decide(obs({ self: { ...obs().self, name: 'n0' }, task: { kind: 'promote', startedAt: 99_000, state: 'running' } }));
  assert.deepEqual(d.actions, [{ type: 'refreshLeader' }]);
  d = decide(obs({ task: { kind: 'clone', startedAt: 99_000, state: 'running' } }));
  assert.deepEqual(d.actions, []);
  d = decide(obs({ task: { kind: 'promote', startedAt: 99_000, state: 'running' } }));
  assert.deepEqual(d.actions, [{ type: 'cancelTask' }]);
});

test('a wiped DCS is repaired by the leader: /initialize and /config rewritten', () => {
  const d = decide(obs({
    self: { ...obs().self, name: 'n0' },
    cluster: view({ initialize: undefined, config: undefined, leader: { name: 'n0', version: '1', session: '1' } }),
    pg: pg({ inRecovery: false }),
  }));
  assert.deepEqual(types(d.actions).slice(0, 3), ['writeInitialize', 'writeConfig', 'refreshLeader']);
});

test('first tick on a replica of a cluster without /initialize -> exit', () => {
  const d = decide(obs({ cluster: view({ initialize: undefined }), memory: {} }));
  assert.match(d.exit ?? '', /start vigil on the primary first/);
});

test('every decision carries a one-line reason', () => {
  const samples = [obs(), obs({ cluster: undefined }), obs({ cluster: unlocked, peers: [] }), obs({ pg: pg({ running: false }) })];
  for (const o of samples) {
    const d = decide(o);
    assert.ok(d.reason.length > 0 && !d.reason.includes('\n'));
  }
});

test('pg_rewind failed: re-clone when allowed, otherwise stop retrying and say so', () => {
  const stopped = pg({ running: false, inRecovery: false, controlState: 'in production', divergence: 'need' });
  const failedRewind = { kind: 'rewind' as const, startedAt: 0, state: 'failed' as const, error: 'could not find common ancestor' };
  let d = decide(obs({ pg: stopped, task: failedRewind }));
  assert.deepEqual(d.actions, []);
  assert.equal(d.memory.rewindCheck, 'failed');
  assert.match(d.reason, /not retrying/);
  d = decide(obs({ pg: stopped, memory: d.memory }));
  assert.deepEqual(d.actions, [], 'no second pg_rewind attempt');

  const o = obs({ pg: stopped, task: failedRewind });
  o.self = { ...o.self, remove_data_directory_on_rewind_failure: true };
  d = decide(o);
  assert.deepEqual(d.actions, [{ type: 'startTask', task: { kind: 'reinitialize', from: 'n0' } }]);
});

// ---- planned switchover and manual failover -------------------------------------------------

const asN0 = (over: Partial<Observation> = {}): Observation => {
  const o = obs({ pg: pg({ inRecovery: false, walLsn: 1000, upstream: null }), ...over });
  o.self = { ...o.self, name: 'n0' };
  return o;
};
const fo = (f: { leader?: string; member?: string; scheduled_at?: string }) => ({ ...f, version: '7' });
const locked = (failover: ReturnType<typeof fo>) => view({ leader: { name: 'n0', version: '5', session: 'abc' }, failover });

test('switchover: the leader checks the candidate first, then demotes gracefully towards it', () => {
  let d = decide(asN0({ cluster: locked(fo({ leader: 'n0', member: 'n1' })) }));
  assert.match(d.reason, /checking the candidates/);
  assert.equal(d.wakeAfterMs, 0);
  d = decide(asN0({ cluster: locked(fo({ leader: 'n0', member: 'n1' })), peers: [peer('n1'), peer('n2')] }));
  assert.deepEqual(d.actions.at(-1), { type: 'startTask', task: { kind: 'demote', mode: 'graceful', upstream: 'n1' } });
  assert.equal(d.isLeader, false, 'stops answering as primary as soon as the demotion starts');
});

test('switchover refused and cleared: wrong leader, unreachable or lagging candidate, candidate is the leader', () => {
  const cases: Array<[ReturnType<typeof fo>, PeerStatus[], RegExp]> = [
    [fo({ leader: 'n2', member: 'n1' }), [peer('n1')], /leader name does not match/],
    [fo({ leader: 'n0', member: 'n1' }), [peer('n1', { reachable: false })], /no good candidates/],
    [fo({ leader: 'n0', member: 'n1' }), [peer('n1', { nofailover: true })], /no good candidates/],
    [fo({ leader: 'n0', member: 'n1' }), [peer('n1', { walPosition: 1 })], /no good candidates/],
    [fo({ leader: 'n0', member: 'n9' }), [], /does not exist/],
    [fo({ member: 'n0' }), [], /already the leader/],
  ];
  for (const [f, peers, re] of cases) {
    const d = decide(asN0({ cluster: locked(f), peers, pg: pg({ inRecovery: false, walLsn: 5_000_000, upstream: null }) }));
    assert.match(d.reason, re);
    assert.ok(d.actions.some((a) => a.type === 'clearFailover'), re.source);
    assert.ok(!d.actions.some((a) => a.type === 'startTask'), re.source);
  }
});

test("switchover refused: Patroni's log lines with its words and levels (docs/log-messages.md)", () => {
  const cases: Array<[PeerStatus, string]> = [
    [peer('n1', { reachable: false }), 'Member n1 is not reachable'],
    [peer('n1', { nofailover: true }), 'Member n1 is not allowed to promote'],
    [peer('n1', { watchdogFailed: true }), 'Member n1 is not watchdog capable'],
    [peer('n1', { walPosition: 1 }), 'Member n1 exceeds maximum replication lag'],
  ];
  for (const [p, line] of cases) {
    const d = decide(asN0({ cluster: locked(fo({ leader: 'n0', member: 'n1' })), peers: [p], pg: pg({ inRecovery: false, walLsn: 5_000_000, upstream: null }) }));
    assert.deepEqual(d.logs, [
      { level: 'info', msg: line },
      { level: 'warn', msg: 'manual failover: no healthy members found, failover is not possible' },
      { level: 'info', msg: 'Cleaning up failover key' },
    ]);
  }
  const ok = decide(asN0({ cluster: locked(fo({ leader: 'n0', member: 'n1' })), peers: [peer('n1'), peer('n2')] }));
  assert.equal(ok.logs, undefined, 'a feasible switchover logs only its reason');
});

test('manual failover (no leader named) may go to a lagging replica: the operator chose it', () => {
  const d = decide(asN0({ cluster: locked(fo({ member: 'n1' })), peers: [peer('n1', { walPosition: 1 })], pg: pg({ inRecovery: false, walLsn: 5_000_000, upstream: null }) }));
  assert.deepEqual(d.actions.at(-1), { type: 'startTask', task: { kind: 'demote', mode: 'graceful', upstream: 'n1' } });
});

test('scheduled switchover: waits until due, acts when due, clears a stale one', () => {
  const at = '2026-11-22T00:01:00+00:00';
  let d = decide(asN0({ cluster: locked(fo({ leader: 'n0', member: 'n1', scheduled_at: at })), peers: [peer('n1')] }));
  assert.ok(!d.actions.some((a) => a.type === 'startTask' || a.type === 'clearFailover'));
  assert.equal(d.wakeAfterMs, 10_000, 'an ordinary loop_wait: the request is 60 s away');
  d = decide(asN0({ wallClock: '2026-11-22T00:00:47+00:00', cluster: locked(fo({ leader: 'n0', member: 'n1', scheduled_at: at })), peers: [peer('n1')] }));
  assert.equal(d.wakeAfterMs, 3_000, 'wakes when the schedule comes within loop_wait');
  d = decide(asN0({ wallClock: '2026-11-22T00:00:55+00:00', cluster: locked(fo({ leader: 'n0', member: 'n1', scheduled_at: at })), peers: [peer('n1')] }));
  assert.deepEqual(d.actions.at(-1), { type: 'startTask', task: { kind: 'demote', mode: 'graceful', upstream: 'n1' } });
  d = decide(asN0({ wallClock: '2026-11-22T00:02:00+00:00', cluster: locked(fo({ leader: 'n0', member: 'n1', scheduled_at: at })), peers: [peer('n1')] }));
  assert.match(d.reason, /stale/);
  assert.ok(d.actions.some((a) => a.type === 'clearFailover'));
});

test('while the lock is free for a switchover only the candidate races; the old leader waits', () => {
  const freeFor = (f: ReturnType<typeof fo>) => view({ failover: f });
  // The candidate takes the lock without comparing itself with peers (the leader checked it).
  let d = decide(obs({ cluster: freeFor(fo({ leader: 'n0', member: 'n1' })), peers: [peer('n2', { walPosition: 9999 })] }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'clearFailover', 'startTask:promote']);
  // Another replica does not race while the candidate is running.
  const o = obs({ cluster: freeFor(fo({ leader: 'n0', member: 'n1' })), peers: [] });
  o.self = { ...o.self, name: 'n2' };
  d = decide(o);
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /waiting for the candidate n1/);
  // The former leader, stopped after its graceful demotion, does not start or race.
  const old = obs({ cluster: freeFor(fo({ leader: 'n0', member: 'n1' })), pg: pg({ running: false, ready: false, inRecovery: false, controlState: 'shut down' }) });
  old.self = { ...old.self, name: 'n0' };
  d = decide(old);
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /not starting postgres yet/);
});

test('switchover without a candidate: everyone but the former leader races normally', () => {
  const o = obs({ cluster: view({ failover: fo({ leader: 'n0' }) }), peers: [peer('n2', { walPosition: 900 })] });
  assert.deepEqual(types(decide(o).actions), ['acquireLeader', 'clearFailover', 'startTask:promote']);
});

test('a candidate that died does not block the cluster: the normal race takes over', () => {
  const cluster = view({ failover: fo({ leader: 'n0', member: 'n2' }), members: [member('n1'), member('n2', { state: 'stopped' })] });
  const d = decide(obs({ cluster, peers: [] }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'clearFailover', 'startTask:promote']);
});

test('pause: no automatic race, but a manual failover to this node is honoured', () => {
  const paused = defaultConfig({ pause: true });
  let d = decide(obs({ config: paused, cluster: view(), peers: [] }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /paused/);
  d = decide(obs({ config: paused, cluster: view({ failover: fo({ member: 'n1' }) }), peers: [] }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'clearFailover', 'startTask:promote']);
});

test('pause: a running primary whose lock expired takes it back; replicas do not race', () => {
  const o = obs({ config: defaultConfig({ pause: true }), cluster: view(), pg: pg({ inRecovery: false, upstream: null }) });
  const d = decide(o);
  assert.deepEqual(d.actions, [{ type: 'acquireLeader' }]);
  const foreign = decide(obs({ config: defaultConfig({ pause: true }), cluster: view({ initialize: '1111111111111' }), pg: pg({ inRecovery: false }) }));
  assert.ok(!foreign.actions.some((a) => a.type === 'acquireLeader'));
});

test('pause: a dead postmaster is not started; a former primary just demoted by a switchover is started as a replica', () => {
  const paused = defaultConfig({ pause: true });
  const down = pg({ running: false, ready: false, inRecovery: true, controlState: 'shut down in recovery', upstream: null });
  const lockedBy = (name: string) => view({ leader: { name, version: '5', session: 'abc' } });
  let d = decide(obs({ config: paused, cluster: lockedBy('n0'), pg: { ...down, crashed: true } }));
  assert.deepEqual(d.actions, []);
  assert.equal(d.reason, 'postgres is not running (paused: not starting it)');
  // The tick after the demotion: the new leader may not hold the lock yet; the intent is kept.
  const demoted = { kind: 'demote' as const, startedAt: 90_000, state: 'ok' as const };
  const shutDown = { ...down, inRecovery: false, controlState: 'shut down' };
  d = decide(obs({ config: paused, cluster: view({ failover: fo({ leader: 'n1', member: 'n2' }) }), pg: shutDown, task: demoted }));
  assert.ok(!d.actions.some((a) => a.type === 'startTask'), d.reason);
  assert.equal(d.memory.startAfterDemote, true);
  d = decide(obs({ config: paused, cluster: lockedBy('n2'), pg: { ...shutDown, divergence: 'not_needed' }, memory: d.memory }));
  assert.deepEqual(d.actions.at(-1), { type: 'startTask', task: { kind: 'start', asPrimary: false, upstream: 'n2' } });
  // Once PostgreSQL runs (or pause ends) the exception is over.
  d = decide(obs({ config: paused, cluster: lockedBy('n2'), memory: d.memory }));
  assert.equal(d.memory.startAfterDemote, undefined);
});

// ---- synchronous replication -------------------------------------------------------------------

const syncOn = (over: Partial<DynamicConfig> = {}) => defaultConfig({ synchronous_mode: true, ...over });
const syncQuorum = (over: Partial<DynamicConfig> = {}) => defaultConfig({ synchronous_mode: 'quorum', ...over });
const syncKey = (leader: string, standbys: string[], quorum = 0) => ({ leader, sync_standby: standbys.length > 0 ? standbys.join(',') : null, quorum, version: '9' });
const primarySync = (over: Partial<LocalSync> = {}): LocalSync => ({ ssn: '', managed: true, synchronousCommit: 'on', senders: [], ssnSetAtLsn: 900, ...over });
const walSender = (name: string, syncState = 'async'): WalSender => ({ pid: 40 + Number(name.slice(1)), name, state: 'streaming', syncState, writeLsn: 1000, flushLsn: 1000, replayLsn: 1000 });

test('sync leader: the sync step runs after the lock refresh and before slots', () => {
  const d = decide(asN0({
    config: syncOn(),
    cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' }, sync: syncKey('n0', []) }),
    pg: pg({ inRecovery: false, walLsn: 1000, upstream: null, sync: primarySync({ senders: [walSender('n1')] }) }),
  }));
  assert.deepEqual(d.actions, [{ type: 'refreshLeader' }, { type: 'setSyncStandbyNames', value: 'n1' }, { type: 'ensureSlots', members: ['n1', 'n2'], dropUnknown: true }]);
  assert.equal(d.wakeAfterMs, 1000);
  assert.equal(d.memory.syncPendingSince, 100_000);
  assert.match(d.reason, /ssn n1/);
});

test('sync leader: a confirmed standby enters /sync (CAS) and is remembered by pid', () => {
  const d = decide(asN0({
    config: syncOn(),
    cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' }, sync: syncKey('n0', []) }),
    pg: pg({ inRecovery: false, walLsn: 1000, upstream: null, sync: primarySync({ ssn: 'n1', senders: [walSender('n1', 'sync')] }) }),
  }));
  assert.deepEqual(d.actions[1], { type: 'writeSync', leader: 'n0', syncStandby: ['n1'], quorum: 0, version: '9' });
  assert.deepEqual(d.memory.syncConfirmed, { n1: 41 });
  assert.equal(d.memory.syncPendingSince, undefined);
});

test('sync mode turned off: CAS-delete /sync, then give ssn back to the user (null)', () => {
  let d = decide(asN0({
    cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' }, sync: syncKey('n0', ['n1']) }),
    pg: pg({ inRecovery: false, walLsn: 1000, upstream: null, sync: primarySync({ ssn: 'n1', senders: [walSender('n1', 'sync')] }) }),
  }));
  assert.deepEqual(types(d.actions), ['refreshLeader', 'deleteSync', 'setSyncStandbyNames', 'ensureSlots']);
  assert.deepEqual(d.actions.slice(1, 3), [{ type: 'deleteSync', version: '9' }, { type: 'setSyncStandbyNames', value: null }]);
  // Nothing left to clean: nothing done.
  d = decide(asN0({ pg: pg({ inRecovery: false, walLsn: 1000, upstream: null, sync: primarySync({ managed: false, ssn: 'x' }) }) }));
  assert.deepEqual(types(d.actions), ['refreshLeader', 'ensureSlots']);
});

test('sync race, priority: only /sync members race; the winner CAS-writes /sync before promoting', () => {
  const cluster = view({ sync: syncKey('n0', ['n2']) });
  let d = decide(obs({ config: syncOn(), cluster, peers: [peer('n2', { walPosition: 900 })] }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /not a synchronous standby/);
  const o = obs({ config: syncOn(), cluster, peers: [peer('n1', { walPosition: 900 })] });
  o.self = { ...o.self, name: 'n2' };
  d = decide(o);
  assert.deepEqual(types(d.actions), ['acquireLeader', 'writeSync', 'setSyncStandbyNames', 'startTask:promote']);
  assert.deepEqual(d.actions[1], { type: 'writeSync', leader: 'n2', syncStandby: [], quorum: 0, version: '9' });
});

test('sync race, priority: the /sync leader (former primary) may be ahead; async peers are not compared', () => {
  const o = obs({ config: syncOn(), cluster: view({ sync: syncKey('n0', ['n2']) }), peers: [peer('n0', { walPosition: 5000 }), peer('n1', { walPosition: 5000 })] });
  o.self = { ...o.self, name: 'n2' };
  assert.deepEqual(types(decide(o).actions), ['acquireLeader', 'writeSync', 'setSyncStandbyNames', 'startTask:promote']);
});

test('sync: the lock holder still in recovery re-runs prepromote before promote (a lost CAS postponed it)', () => {
  const o = obs({ config: syncOn({ synchronous_mode_strict: true } as Partial<DynamicConfig>), cluster: view({ leader: { name: 'n1', version: '5', session: 'abc' }, sync: syncKey('n0', ['n1']) }) });
  const d = decide(o);
  assert.deepEqual(d.actions, [
    { type: 'refreshLeader' },
    { type: 'writeSync', leader: 'n1', syncStandby: ['n0'], quorum: 0, version: '9' },
    { type: 'setSyncStandbyNames', value: 'n0' },
    { type: 'startTask', task: { kind: 'promote' } },
  ]);
});

test('sync race, quorum: votes from /sync voters decide; the former /sync leader wins when nobody is ahead', () => {
  const cluster = view({ sync: syncKey('n0', ['n1', 'n2', 'n3'], 2), members: [member('n0'), member('n1'), member('n2'), member('n3')] });
  // One vote (n2) of two needed.
  let d = decide(obs({ config: syncQuorum(), cluster, peers: [peer('n2', { walPosition: 900 }), peer('n3', { reachable: false })] }));
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /quorum votes \(1 of 2\)/);
  d = decide(obs({ config: syncQuorum(), cluster, peers: [peer('n2', { walPosition: 900 }), peer('n3', { walPosition: 1000 })] }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'setSyncStandbyNames', 'startTask:promote']);
  assert.deepEqual(d.actions[1], { type: 'setSyncStandbyNames', value: 'ANY 1 (n0,n2,n3)' });
  const former = obs({ config: syncQuorum(), cluster: view({ sync: syncKey('n1', ['n0', 'n2'], 2) }), peers: [peer('n2', { reachable: false })] });
  d = decide(former);
  assert.deepEqual(types(d.actions), ['acquireLeader', 'setSyncStandbyNames', 'startTask:promote']);
});

test('sync 5.5: with no healthy /sync standby the leader keeps the lock (no failover to async members)', () => {
  const base = { self: { ...obs().self, name: 'n0' }, pg: pg({ running: false, inRecovery: false, crashed: true }) };
  let d = decide(obs({ ...base, config: syncOn({ primary_start_timeout: 0 }), cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' }, sync: syncKey('n0', []) }) }));
  assert.deepEqual(types(d.actions), ['refreshLeader', 'startTask:start']);
  d = decide(obs({ ...base, config: syncOn({ primary_start_timeout: 0 }), cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' }, sync: syncKey('n0', ['n2']) }) }));
  assert.deepEqual(d.actions, [{ type: 'releaseLeader' }]);
  // Quorum: as many candidates as the quorum.
  d = decide(obs({ ...base, config: syncQuorum({ primary_start_timeout: 0 }), cluster: view({ leader: { name: 'n0', version: '5', session: 'abc' }, sync: syncKey('n0', ['n2'], 2) }) }));
  assert.deepEqual(types(d.actions), ['refreshLeader', 'startTask:start']);
});

test('sync switchover: only to a /sync standby; a manual failover may still pick an async member', () => {
  const withSync = (f: ReturnType<typeof fo>) => view({ leader: { name: 'n0', version: '5', session: 'abc' }, failover: f, sync: syncKey('n0', ['n2']) });
  let d = decide(asN0({ config: syncOn(), cluster: withSync(fo({ leader: 'n0', member: 'n1' })), peers: [peer('n1'), peer('n2')] }));
  assert.match(d.reason, /not a synchronous standby/);
  d = decide(asN0({ config: syncOn(), cluster: withSync(fo({ leader: 'n0' })), peers: [peer('n1'), peer('n2', { reachable: false })] }));
  assert.match(d.reason, /no good candidates/);
  d = decide(asN0({ config: syncOn(), cluster: withSync(fo({ leader: 'n0', member: 'n2' })), peers: [peer('n1'), peer('n2')] }));
  assert.deepEqual(d.actions.at(-1), { type: 'startTask', task: { kind: 'demote', mode: 'graceful', upstream: 'n2' } });
  d = decide(asN0({ config: syncOn(), cluster: withSync(fo({ member: 'n1' })), peers: [peer('n1'), peer('n2')] }));
  assert.deepEqual(d.actions.at(-1), { type: 'startTask', task: { kind: 'demote', mode: 'graceful', upstream: 'n1' } });
});

// ---- failsafe mode -----------------------------------------------------------------------------

const failsafeOn = defaultConfig({ failsafe_mode: true });

test('failsafe: a primary without the DCS stays primary only when every member confirmed it', () => {
  const primary = { self: { ...obs().self, name: 'n0' }, cluster: undefined, pg: pg({ inRecovery: false, upstream: null }), config: failsafeOn };
  let d = decide(obs({ ...primary, failsafe: { check: { ok: true, reason: 'n1, n2 accepted' } } }));
  assert.deepEqual(d.actions, []);
  assert.equal(d.isLeader, true);
  assert.equal(d.role, 'primary');
  assert.equal(d.memory.failsafeActive, true);
  assert.match(d.reason, /continue to run as a leader because failsafe mode is enabled/);
  for (const failsafe of [{ check: { ok: false, reason: 'n2: timed out' } }, {}]) {
    d = decide(obs({ ...primary, failsafe }));
    assert.deepEqual(types(d.actions), ['cancelTask', 'startTask:demote']);
    assert.equal(d.isLeader, false);
    assert.equal(d.memory.failsafeActive, false);
  }
  // failsafe_mode off: a confirmation does not matter.
  d = decide(obs({ ...primary, config: defaultConfig(), failsafe: { check: { ok: true, reason: 'all' } } }));
  assert.deepEqual(types(d.actions), ['cancelTask', 'startTask:demote']);
});

test('failsafe: the leader publishes /failsafe when it changed, and a good cycle ends failsafe', () => {
  const leaderView = view({ leader: { name: 'n0', version: '5', session: 'abc' }, members: [member('n0', { role: 'primary', api_url: 'http://a/patroni' }), member('n1', { api_url: 'http://b/patroni' })] });
  const base = { self: { ...obs().self, name: 'n0' }, pg: pg({ inRecovery: false, upstream: null }), config: failsafeOn, lockRefreshedAt: 99_000, memory: { started: true, failsafeActive: true } };
  let d = decide(obs({ ...base, cluster: leaderView }));
  assert.deepEqual(d.actions.find((a) => a.type === 'writeFailsafe'), { type: 'writeFailsafe', value: { n0: 'http://a/patroni', n1: 'http://b/patroni' } });
  assert.equal(d.memory.failsafeActive, false);
  d = decide(obs({ ...base, cluster: { ...leaderView, failsafe: { n1: 'http://b/patroni', n0: 'http://a/patroni' } } }));
  assert.equal(d.actions.some((a) => a.type === 'writeFailsafe'), false, 'unchanged: not rewritten');
  d = decide(obs({ ...base, config: defaultConfig(), cluster: leaderView }));
  assert.equal(d.actions.some((a) => a.type === 'writeFailsafe'), false, 'failsafe_mode off: not written');
});

test('failsafe: no race for a member missing from /failsafe, nor while a primary confirmed itself to us', () => {
  const peers = [peer('n0', { reachable: false }), peer('n2', { walPosition: 900 })];
  let d = decide(obs({ cluster: view({ failsafe: { n0: 'x', n2: 'y' } }), config: failsafeOn, peers }));
  assert.equal(d.actions.some((a) => a.type === 'acquireLeader'), false);
  assert.match(d.reason, /not a member of \/failsafe/);
  d = decide(obs({ cluster: view({ failsafe: { n0: 'x', n1: 'z', n2: 'y' } }), config: failsafeOn, peers, failsafe: { leader: { name: 'n0', at: 95_000 } } }));
  assert.equal(d.actions.some((a) => a.type === 'acquireLeader'), false);
  assert.match(d.reason, /n0 confirmed itself as the primary in failsafe mode/);
  // The confirmation is older than ttl: the normal race runs.
  d = decide(obs({ cluster: view({ failsafe: { n0: 'x', n1: 'z', n2: 'y' } }), config: failsafeOn, peers, failsafe: { leader: { name: 'n0', at: 60_000 } } }));
  assert.deepEqual(types(d.actions), ['acquireLeader', 'startTask:promote']);
});

test('slots: no unknown slot is dropped while paused or when /config declares slots or ignore_slots', () => {
  const self = { ...obs().self, name: 'n0' };
  const leader = (config: Partial<DynamicConfig>) => decide(obs({
    self,
    config: { ...obs().config, ...config },
    cluster: view({ leader: { name: 'n0', version: '5', session: '1' } }),
    pg: pg({ inRecovery: false, upstream: null }),
    lockRefreshedAt: 99_000,
  })).actions.find((a) => a.type === 'ensureSlots');
  assert.deepEqual(leader({}), { type: 'ensureSlots', members: ['n1', 'n2'], dropUnknown: true });
  assert.deepEqual(leader({ pause: true }), { type: 'ensureSlots', members: ['n1', 'n2'], dropUnknown: false });
  assert.equal((leader({ slots: { cdc: { type: 'logical', database: 'a', plugin: 'b' } } } as Partial<DynamicConfig>) as { dropUnknown: boolean }).dropUnknown, false);
  assert.equal((leader({ ignore_slots: [{ name: 'barman' }] } as Partial<DynamicConfig>) as { dropUnknown: boolean }).dropUnknown, false);
});
