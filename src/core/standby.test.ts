import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.ts';
import { divergedFrom } from './diverged.ts';
import { syncModeOf } from './election.ts';
import { clusterView } from './model.ts';
import { permanentSlots } from './slots.ts';
import { isRemoteName, remoteFromName, remoteName, remoteUpstream, standbyCluster } from './standby.ts';
import { defaultConfig, replicaPeer, streamingReplica, SYSID } from './testing.ts';
import type { Action, ClusterView, DynamicConfig, Member, MemberData, Observation, TaskSpec } from './model.ts';
import { buildParameters, type BuildParamsInput } from '../postgres/conf.ts';

const SC = { host: '10.0.0.9', port: 5433 };
const STANDBY = defaultConfig({ standby_cluster: SC } as Partial<DynamicConfig>);
const REMOTE = remoteName(standbyCluster(STANDBY)!);

function member(name: string, data: MemberData = {}): Member {
  return { name, version: '1', session: '1', data: { conn_url: `postgres://127.0.0.1:5432/postgres`, api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica', ...data } };
}

function view(over: Partial<ClusterView> = {}): ClusterView {
  return clusterView({
    initialize: SYSID,
    config: {},
    configVersion: '1',
    members: [member('n0', { role: 'standby_leader', xlog_location: 1000 }), member('n1', { xlog_location: 1000 })],
    status: { optime: 1000 },
    revision: '10',
    ...over,
  });
}

const pg = streamingReplica;

const LOCKED_BY = (name: string) => ({ name, version: '5', session: 'abc' });

function obs(over: Partial<Observation> = {}): Observation {
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: 'n1', tags: {}, canBootstrap: true, bootstrapDcs: { ttl: 30 }, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: STANDBY,
    cluster: view({ leader: LOCKED_BY('n0') }),
    pg: pg(),
    task: undefined,
    failures: [],
    memory: { started: true },
    ...over,
  };
}

const peer = replicaPeer;

const shown = (a: Action): string => {
  if (a.type === 'followUpstream') return `follow:${a.upstream === REMOTE ? 'remote' : String(a.upstream)}`;
  if (a.type !== 'startTask') return a.type;
  const t: TaskSpec = a.task;
  if (t.kind === 'start') return `start:${t.asPrimary ? 'primary' : t.upstream === REMOTE ? 'remote' : String(t.upstream)}`;
  if (t.kind === 'demote') return `demote:${t.mode}`;
  if (t.kind === 'rewind') return `rewind:${t.from === REMOTE ? 'remote' : t.from}`;
  if (t.kind === 'bootstrap') return `bootstrap:${t.remote === REMOTE ? 'remote' : 'initdb'}`;
  return `startTask:${t.kind}`;
};

const unlocked = view({ members: [member('n0', { xlog_location: 900 }), member('n1', { xlog_location: 1000 })] });
const holder = (over: Partial<Observation> = {}) => obs({ cluster: view({ leader: LOCKED_BY('n1') }), lockRefreshedAt: 99_000, ...over });

// [name, observation, expected actions, expected role, reason pattern]
const TABLE: Array<[string, Observation, string[], string, RegExp]> = [
  ['unlocked, healthiest replica: takes the lock as standby leader, no promote', obs({ cluster: unlocked, peers: [peer('n0', { walPosition: 900 })] }), ['acquireLeader', 'follow:remote'], 'standby_leader', /standby leader/],
  ['unlocked, a peer is ahead: follows the remote directly', obs({ cluster: unlocked, peers: [peer('n0', { walPosition: 2000 })] }), ['follow:remote'], 'replica', /standby cluster is unhealthy/],
  ['unlocked, already following the remote, not healthiest: nothing to change', obs({ cluster: unlocked, pg: pg({ upstream: REMOTE }), peers: [peer('n0', { walPosition: 2000 })] }), [], 'replica', /standby cluster is unhealthy/],
  ['unlocked, paused: no race', obs({ cluster: unlocked, config: { ...STANDBY, pause: true } }), [], 'replica', /paused/],
  ['lock holder following a member: follows the remote', holder(), ['refreshLeader', 'follow:remote'], 'standby_leader', /following the remote primary/],
  ['lock holder following the remote: keeps it, never promotes', holder({ pg: pg({ upstream: REMOTE }) }), ['refreshLeader'], 'standby_leader', /the standby leader with the lock/],
  ['lock holder is a primary (demote-cluster): keeps the lock, fast stop', holder({ pg: pg({ inRecovery: false, upstream: null }) }), ['refreshLeader', 'demote:demote-cluster'], 'demoted', /demote-cluster/],
  ['member of a standby cluster follows the standby leader', obs({ pg: pg({ upstream: 'n0' }) }), [], 'replica', /following a leader \(n0\)/],
  ['member not yet following the standby leader', obs({ pg: pg({ upstream: REMOTE }) }), ['follow:n0'], 'replica', /new upstream n0/],
  ['a primary without the lock is demoted', obs({ pg: pg({ inRecovery: false }) }), ['demote:immediate-nolock'], 'demoted', /do not have the lock/],
  ['leader key names a member without a key', obs({ cluster: view({ leader: LOCKED_BY('gone') }) }), [], 'replica', /continue following the old known standby leader/],
  ['empty data directory, no /initialize: clone the remote instead of initdb', obs({ cluster: clusterView({ initialize: undefined }), pg: pg({ dataDirEmpty: true, running: false, sysid: undefined }) }), ['createInitialize', 'bootstrap:remote'], 'uninitialized', /new standby leader/],
  ['empty data directory, standby leader exists: clone from it', obs({ pg: pg({ dataDirEmpty: true, running: false, sysid: undefined }) }), ['startTask:clone'], 'uninitialized', /from leader 'n0'/],
  ['bootstrap clone finished: takes the lock as standby leader', obs({ cluster: clusterView({ initialize: '' }), task: { kind: 'bootstrap', startedAt: 1, state: 'ok' }, memory: { started: true, bootstrapping: true } }), ['writeInitialize', 'writeConfig', 'takeLeader'], 'standby_leader', /new standby cluster/],
  ['stopped lock holder (a replica): starts following the remote', holder({ pg: pg({ running: false, ready: false, controlState: 'shut down in recovery' }) }), ['refreshLeader', 'start:remote'], 'standby_leader', /starting as a standby leader/],
  ['stopped lock holder, former primary, timelines not compared yet: waits', holder({ pg: pg({ running: false, ready: false, inRecovery: false, controlState: 'shut down' }) }), ['refreshLeader'], 'standby_leader', /waiting to compare timelines with the remote member 10\.0\.0\.9:5433/],
  ['stopped lock holder, former primary, diverged: pg_rewind from the remote', holder({ pg: pg({ running: false, ready: false, inRecovery: false, controlState: 'shut down', divergence: 'need' }) }), ['refreshLeader', 'rewind:remote'], 'standby_leader', /pg_rewind from 10\.0\.0\.9:5433/],
  ['stopped lock holder, former primary, not diverged: follows the remote', holder({ pg: pg({ running: false, ready: false, inRecovery: false, controlState: 'shut down', divergence: 'not_needed' }) }), ['refreshLeader', 'start:remote'], 'standby_leader', /standby leader/],
  ['stopped lock holder after a crash as a primary: always through pg_rewind', holder({ pg: pg({ running: false, ready: false, inRecovery: false, controlState: 'in production' }) }), ['refreshLeader', 'rewind:remote'], 'standby_leader', /pg_rewind/],
  ['stopped, unlocked: starts following the remote', obs({ cluster: unlocked, pg: pg({ running: false, ready: false, controlState: 'shut down in recovery' }) }), ['start:remote'], 'replica', /standby cluster is unhealthy/],
  ['running standby leader whose history forked from the remote\'s: stops to repair, keeps the lock', holder({ pg: pg({ upstream: REMOTE, streaming: false, divergence: 'need' }) }), ['refreshLeader', 'startTask:stop'], 'standby_leader', /diverged from the remote primary 10\.0\.0\.9:5433 of standby_cluster: stopping/],
  ['unlocked member whose history forked from the remote\'s: stops to repair', obs({ cluster: unlocked, pg: pg({ upstream: REMOTE, streaming: false, divergence: 'need' }), peers: [peer('n0', { walPosition: 2000 })] }), ['startTask:stop'], 'replica', /stopping to repair/],
  ['stopped standby leader after that stop: pg_rewind from the remote', holder({ pg: pg({ running: false, ready: false, controlState: 'shut down in recovery', divergence: 'need' }) }), ['refreshLeader', 'rewind:remote'], 'standby_leader', /pg_rewind from 10\.0\.0\.9:5433/],
  ['stopped member after a crash as a primary: pg_rewind from the remote', obs({ pg: pg({ running: false, ready: false, inRecovery: false, controlState: 'in production' }) }), ['rewind:remote'], 'demoted', /pg_rewind from 10\.0\.0\.9:5433/],
  ['standby_cluster removed (promote-cluster): the standby leader is promoted', holder({ config: defaultConfig(), pg: pg({ upstream: REMOTE }) }), ['refreshLeader', 'startTask:promote'], 'promoted', /promoting/],
];

for (const [name, o, actions, role, reason] of TABLE) {
  test(`standby cluster: ${name}`, () => {
    const d = decide(o);
    assert.deepEqual(d.actions.filter((a) => a.type !== 'writeStatus' && a.type !== 'ensureSlots' && a.type !== 'syncSlots').map(shown), actions, d.reason);
    assert.equal(d.role, role, d.reason);
    assert.match(d.reason, reason);
    assert.ok(!d.actions.some((a) => a.type === 'startTask' && a.task.kind === 'promote') || o.config.standby_cluster === undefined, 'never promoted in a standby cluster');
  });
}

test('standby cluster: a node behind the /history timeline may still win (the race skips the timeline check)', () => {
  const d = decide(obs({ cluster: view({ members: unlocked.members, history: [[1, 100, 'x'], [2, 200, 'y']] }), peers: [peer('n0', { walPosition: 900 })] }));
  assert.equal(d.role, 'standby_leader', d.reason);
});

test('standby_cluster: active only with host, port or restore_command; fields carried over', () => {
  assert.equal(standbyCluster({ standby_cluster: { primary_slot_name: 's' } }), undefined);
  assert.equal(standbyCluster({ standby_cluster: null }), undefined);
  assert.deepEqual(standbyCluster({ standby_cluster: { restore_command: 'cp /a/%f %p' } }), { restore_command: 'cp /a/%f %p' });
  assert.deepEqual(standbyCluster({ standby_cluster: { host: 'h', port: '6000', recovery_min_apply_delay: 5, create_replica_methods: ['basebackup'] } }), {
    host: 'h',
    port: 6000,
    recovery_min_apply_delay: '5',
    create_replica_methods: ['basebackup'],
  });
  assert.equal(remoteUpstream({ config: defaultConfig() }), undefined);
});

test('remote member: reserved name round-trips, deterministic, no slot unless primary_slot_name', () => {
  const a = remoteName({ host: 'h', port: 5433, restore_command: 'r' });
  assert.equal(a, remoteName({ restore_command: 'r', port: 5433, host: 'h' }));
  assert.ok(isRemoteName(a));
  assert.ok(!isRemoteName('n0'));
  assert.deepEqual(remoteFromName(a), { connUrl: 'postgres://h:5433', slot: null, recovery: { restore_command: 'r' }, createReplicaMethods: undefined });
  assert.equal(remoteFromName(remoteName({ host: 'h', primary_slot_name: 'dr' }))?.slot, 'dr');
  assert.equal(remoteFromName(remoteName({ host: '::1' }))?.connUrl, 'postgres://[::1]:5432');
  assert.equal(remoteFromName(remoteName({ restore_command: 'r' }))?.connUrl, undefined);
  assert.equal(remoteFromName('n0'), undefined);
});

test('standby cluster: synchronous mode is off, only physical permanent slots', () => {
  assert.equal(syncModeOf({ ...STANDBY, synchronous_mode: true }), 'off');
  const slots = { phys: {}, cdc: { type: 'logical', database: 'a', plugin: 'p' }, only_primary: { cluster_type: 'primary' }, only_standby: { cluster_type: 'standby' } };
  assert.deepEqual(permanentSlots({ slots }, true).map((s) => s.name), ['phys', 'only_standby']);
  assert.deepEqual(permanentSlots({ slots }, false).map((s) => s.name), ['phys', 'cdc', 'only_primary']);
});

const settings: BuildParamsInput['settings'] = {
  listen: '127.0.0.1:5432',
  parameters: {},
  pgpass: '/pgpass',
  database: 'postgres',
  useSlots: true,
  authentication: { superuser: { username: 'postgres' }, replication: { username: 'replicator', password: 'r' } },
};

test('recovery settings following the remote: its host, its slot or none, its restore_command', () => {
  const remote = (sc: Parameters<typeof remoteName>[0]) => {
    const r = remoteFromName(remoteName(sc))!;
    return { connUrl: r.connUrl ?? '', name: remoteName(sc), slot: r.slot, recovery: r.recovery };
  };
  const conf = (sc: Parameters<typeof remoteName>[0]) => Object.fromEntries(buildParameters({ settings, memberName: 'b1', role: 'replica', upstream: remote(sc) }).conf);
  const a = conf({ host: '10.0.0.9', port: 5433, restore_command: 'cp /arch/%f %p', recovery_min_apply_delay: '1s' });
  assert.match(a.primary_conninfo ?? '', /^host=10\.0\.0\.9 port=5433 user=replicator passfile=\/pgpass dbname=postgres application_name=b1 /);
  assert.equal(a.primary_slot_name, '');
  assert.equal(a.restore_command, 'cp /arch/%f %p');
  assert.equal(a.recovery_min_apply_delay, '1s');
  assert.equal(conf({ host: 'h', primary_slot_name: 'dr_slot' }).primary_slot_name, 'dr_slot');
  const archiveOnly = conf({ restore_command: 'cp /arch/%f %p' });
  assert.equal(archiveOnly.primary_conninfo, '');
  assert.equal(archiveOnly.restore_command, 'cp /arch/%f %p');
});

test('standby cluster: a member whose history diverged from the standby leader\'s is repaired from the remote', () => {
  const running = decide(obs({ pg: pg({ divergence: 'need', timeline: 3 }) }));
  assert.deepEqual(running.actions.map(shown), ['startTask:stop'], running.reason);
  const stopped = decide(obs({ pg: pg({ running: false, ready: false, divergence: 'need', timeline: 3, controlState: 'shut down in recovery' }) }));
  assert.deepEqual(stopped.actions.map(shown), ['rewind:remote'], stopped.reason);
});

test('a divergence in a standby cluster names the remote primary it was compared with, not a leader', () => {
  const running = decide(obs({ pg: pg({ divergence: 'need', timeline: 3 }) }));
  assert.match(running.reason, /^timeline diverged from the remote primary 10\.0\.0\.9:5433 of standby_cluster: stopping to repair$/);
  const down = pg({ running: false, ready: false, divergence: 'need', timeline: 3, controlState: 'shut down in recovery' });
  const failed = decide(obs({ pg: down, memory: { started: true, rewindCheck: 'failed', rewindFailedFrom: REMOTE } }));
  assert.match(failed.reason, /^timeline diverged from the remote primary 10\.0\.0\.9:5433 of standby_cluster and pg_rewind failed before/);
  const stuck = decide(obs({ pg: { ...down, rewindable: false } }));
  assert.match(stuck.reason, /^timeline diverged from the remote primary 10\.0\.0\.9:5433 of standby_cluster and neither use_pg_rewind/);
  // DCS unreachable: the data directory stays down, and the reason says why.
  const away = decide(obs({ cluster: undefined, pg: down, memory: { started: true, rewindCheck: 'need' } }));
  assert.deepEqual(away.actions, []);
  assert.match(away.reason, /its timeline diverged from the remote primary 10\.0\.0\.9:5433 of standby_cluster and awaits repair/);
  for (const r of [running, failed, stuck, away]) assert.doesNotMatch(r.reason, /leader/);
  // The wording for each kind of source.
  assert.equal(divergedFrom('n0'), 'the leader n0');
  assert.equal(divergedFrom(REMOTE), 'the remote primary 10.0.0.9:5433 of standby_cluster');
  assert.match(divergedFrom(remoteName(standbyCluster(defaultConfig({ standby_cluster: { restore_command: 'cp /a/%f %p' } } as Partial<DynamicConfig>))!)), /^the remote cluster's history \(standby_cluster, fed from the archive/);
});
