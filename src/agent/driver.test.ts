// The shell's policies on in-memory ports: the order of port calls in the task scripts (the fencer
// before a primary can start), the classification of failures, the fencer's arm/disarm
// bookkeeping, and the divergence question. The simulator (src/sim) runs the same driver in whole
// clusters; test/integration runs it on real servers.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clusterView, type ClusterView, type LocalPg, type TaskSpec } from '../core/model.ts';
import { remoteName } from '../core/standby.ts';
import { loadConfig } from '../config/load.ts';
import { MINIMAL_CONFIG } from '../config/testing.ts';
import type { Config } from '../config/types.ts';
import { DcsError, type Dcs } from '../dcs/dcs.ts';
import { PgControlError, PgUnavailableError } from '../postgres/errors.ts';
import { SimDcs } from '../sim/dcs.ts';
import { SimDcsClient } from '../sim/dcs-client.ts';
import { NodeDriver } from './driver.ts';
import { divergenceQuestion, observe } from './observe.ts';
import { restartNow } from './restarts.ts';
import type { Clock, PgObservation, PgPort } from './ports.ts';

const config = loadConfig(MINIMAL_CONFIG, {}).config as Config;

const stoppedPrimary: LocalPg = {
  dataDirEmpty: false, sysid: '7300000000000000001', running: false, ready: false, inRecovery: false, walLsn: undefined, receiveLsn: undefined,
  replayLsn: undefined, timeline: 1, streaming: false, upstream: null, controlState: 'shut down', rewindable: true, crashed: false,
};

/** A PostgreSQL port that records its calls; `fail` makes a method reject. */
function fakePg(calls: string[], state: { running: boolean; local: LocalPg }, fail: Partial<Record<keyof PgPort, unknown>> = {}): PgPort {
  const call = async <T>(name: keyof PgPort, value: T, effect?: () => void): Promise<T> => {
    calls.push(name);
    if (fail[name] !== undefined) throw fail[name];
    effect?.();
    return value;
  };
  const conf = { changed: false, needsRestart: false, restartReasons: [], reloadParams: [], ignored: [] };
  return {
    observe: () => call('observe', { ...state.local, running: state.running, ready: state.running } as PgObservation),
    probe: () => Promise.reject(new Error('not modelled')),
    isRunning: () => call('isRunning', state.running ? { running: true, pid: 4242 } : { running: false }),
    initdb: () => call('initdb', undefined),
    postBootstrap: () => call('postBootstrap', undefined),
    writeConfig: () => call('writeConfig', conf),
    reload: () => call('reload', undefined),
    start: () => call('start', undefined, () => (state.running = true)),
    stop: () => call('stop', undefined, () => (state.running = false)),
    promote: () => call('promote', undefined),
    pendingRestart: () => call('pendingRestart', {}),
    checkpoint: () => call('checkpoint', undefined),
    removeDataDir: () => call('removeDataDir', undefined),
    basebackup: () => call('basebackup', undefined),
    rewind: () => call('rewind', undefined),
    ensureSlots: () => call('ensureSlots', undefined),
    applySlotOps: () => call('applySlotOps', undefined),
    fetchLogicalSlots: () => call('fetchLogicalSlots', []),
    writeLogicalSlots: () => call('writeLogicalSlots', undefined),
    checkDivergence: () => call('checkDivergence', 'not_needed' as const),
    setSyncStandbyNames: () => call('setSyncStandbyNames', undefined),
    controlData: () => call('controlData', {}),
    timelineHistory: () => call('timelineHistory', ''),
  };
}

const clock: Clock = { now: () => 50_000, wallNow: () => Date.parse('2026-01-01T00:00:00Z'), sleep: async () => undefined, timeout: () => new AbortController().signal };

function driver(calls: string[], pgState: { running: boolean; local: LocalPg }, fail: Partial<Record<keyof PgPort, unknown>> = {}, dcs?: Dcs) {
  const sim = new SimDcs(() => 50_000);
  return new NodeDriver({
    config,
    ports: {
      pg: fakePg(calls, pgState, fail),
      dcs: dcs ?? new SimDcsClient(sim, config.name),
      peers: { fetchStatuses: async () => [], checkFailsafe: async () => ({ ok: false, reason: 'none' }) },
      fence: {
        arm: async (req) => {
          calls.push(`arm(pid ${req.pid}, deadline ${req.refreshStartMs + req.timeoutMs})`);
          return { ok: true };
        },
        disarm: async () => {
          calls.push('disarm');
          return true;
        },
      },
      clock,
      hooks: { spawn: async () => ({ code: 0 }), run: async () => ({ code: 0 }) },
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    wake: () => undefined,
  });
}

const view = (leader: string): ClusterView =>
  clusterView({
    leader: { name: leader, version: '5', session: '1' },
    members: ['n1', 'n2'].map((name) => ({ name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, api_url: `http://${name}:8008/patroni`, state: 'running', role: name === leader ? 'primary' : 'replica', timeline: 2 } })),
    revision: '9',
  });

async function runTask(d: NodeDriver, spec: TaskSpec, cluster: ClusterView | undefined): Promise<void> {
  d.startTask(spec, { cluster });
  await d.task?.done;
}

test('the lock holder arms the fencer (for the data directory) before it starts PostgreSQL as a primary', async () => {
  const calls: string[] = [];
  const d = driver(calls, { running: false, local: stoppedPrimary });
  d.lockRefreshedAt = 40_000;
  await runTask(d, { kind: 'start', asPrimary: true, upstream: null } as TaskSpec, view('n1'));
  assert.deepEqual(calls, ['writeConfig', 'isRunning', 'arm(pid 0, deadline 65000)', 'start']);
  assert.equal(d.task?.state, 'ok');
});

test('a replica start and a start without a confirmed lock do not arm the fencer', async () => {
  for (const [spec, refreshed] of [
    [{ kind: 'start', asPrimary: false, upstream: 'n2' }, 40_000],
    [{ kind: 'start', asPrimary: true, upstream: null }, undefined],
  ] as const) {
    const calls: string[] = [];
    const d = driver(calls, { running: false, local: stoppedPrimary });
    d.lockRefreshedAt = refreshed;
    await runTask(d, spec as TaskSpec, view('n2'));
    assert.ok(!calls.some((c) => c.startsWith('arm')), calls.join(', '));
    assert.equal(calls.at(-1), 'start');
  }
});

test('a restart of a primary re-arms for the data directory between the stop and the start', async () => {
  const calls: string[] = [];
  const d = driver(calls, { running: true, local: { ...stoppedPrimary, running: true, ready: true, controlState: 'in production' } });
  d.lockRefreshedAt = 40_000;
  d.lastPg = { ...stoppedPrimary, running: true, inRecovery: false };
  await runTask(d, { kind: 'restart' }, view('n1'));
  assert.deepEqual(calls, ['stop', 'writeConfig', 'isRunning', 'arm(pid 0, deadline 65000)', 'start']);
});

test('a failed task is classified when it fails, from the error class: transient for failures to reach another server', async () => {
  const cases: Array<[unknown, boolean]> = [
    [new PgUnavailableError('pg_basebackup: error: could not connect to server: Connection refused'), true],
    [new PgControlError('PG_FAILED', 'pg_basebackup: error: invalid option -- z'), false],
    // From the class and code, never from the text.
    [new Error('could not connect to server: Connection refused'), false],
    [Object.assign(new Error('socket'), { code: 'ECONNRESET', errno: -104, syscall: 'read' }), true],
    [new DcsError('DCS_UNAVAILABLE', 'etcd did not answer'), true],
    [new DcsError('DCS_AUTH', 'permission denied'), false],
  ];
  for (const [err, transient] of cases) {
    const d = driver([], { running: false, local: { ...stoppedPrimary, dataDirEmpty: true } }, { basebackup: err });
    await runTask(d, { kind: 'clone', from: 'n2' }, view('n2'));
    assert.equal(d.task?.state, 'failed');
    assert.equal(d.task?.transient === true, transient, String(err));
  }
});

test('the fencer is disarmed once, and re-armed when the refresh time moves', async () => {
  const calls: string[] = [];
  const d = driver(calls, { running: true, local: stoppedPrimary });
  d.lastPg = { ...stoppedPrimary, running: true, inRecovery: true };
  await d.updateFence(false);
  await d.updateFence(false);
  assert.deepEqual(calls, ['disarm']);
  calls.length = 0;
  d.lastPg = { ...stoppedPrimary, running: true, inRecovery: false };
  d.lockRefreshedAt = 40_000;
  await d.updateFence(true);
  await d.updateFence(true);
  d.lockRefreshedAt = 50_000;
  await d.updateFence(true);
  assert.deepEqual(calls.filter((c) => c.startsWith('arm')), ['arm(pid 4242, deadline 65000)', 'arm(pid 4242, deadline 75000)']);
  assert.equal(d.fenceDeadline, 75_000);
});

test('the divergence question is asked only when its answer matters', () => {
  const running = { ...stoppedPrimary, running: true, ready: true, inRecovery: true, timeline: 1, streaming: false };
  // A stopped node with data while another member leads: ask.
  const q = divergenceQuestion('n1', view('n2'), stoppedPrimary);
  assert.ok(typeof q === 'object' && q.connUrl === 'postgres://n2:5432/postgres');
  // We lead, or nobody does: nobody to ask.
  assert.equal(divergenceQuestion('n1', view('n1'), stoppedPrimary), 'not_asked');
  assert.equal(divergenceQuestion('n1', clusterView({}), stoppedPrimary), 'not_asked');
  // An uncleanly stopped primary goes through pg_rewind anyway.
  assert.equal(divergenceQuestion('n1', view('n2'), { ...stoppedPrimary, controlState: 'in production' }), 'not_asked');
  // A running replica behind the leader's timeline that cannot stream: ask; one that streams: the cache is dropped.
  assert.equal(typeof divergenceQuestion('n1', view('n2'), running), 'object');
  assert.equal(divergenceQuestion('n1', view('n2'), { ...running, streaming: true }), 'irrelevant');
  assert.equal(divergenceQuestion('n1', view('n2'), { ...running, timeline: 2 }), 'irrelevant');
});

test('restarts are refused while a task runs, without a data directory, or when the filters do not match', async () => {
  const calls: string[] = [];
  const d = driver(calls, { running: true, local: stoppedPrimary });
  assert.deepEqual(await restartNow(d, {}), { ok: false, reason: 'conditions', message: 'restart conditions are not satisfied' }, 'never observed');
  d.lastPg = { ...stoppedPrimary, running: true, inRecovery: true };
  assert.equal((await restartNow(d, { role: 'primary' })).ok, false);
  let release: () => void = () => undefined;
  const blocked = new Promise<void>((r) => (release = r));
  d.ports.pg.basebackup = () => blocked;
  d.startTask({ kind: 'clone', from: 'n2' }, { cluster: view('n2') });
  assert.deepEqual(await restartNow(d, {}), { ok: false, reason: 'busy', message: 'clone already in progress' });
  release();
  await d.task?.done;
  calls.length = 0;
  assert.deepEqual(await restartNow(d, { role: 'replica' }), { ok: true });
  assert.deepEqual(calls, ['stop', 'writeConfig', 'start'], 'a replica restart does not arm the fencer');
});

test('the divergence answer is cached per question and asked again when the question changes', async () => {
  // The DCS shows n2 leading on timeline 2; we are a stopped former primary (clean shutdown).
  const sim = new SimDcs(() => 50_000);
  const writer = new SimDcsClient(sim, 'n2');
  await writer.takeLeader();
  await writer.touchMember({ conn_url: 'postgres://n2:5432/postgres', api_url: 'http://n2:8008/patroni', state: 'running', role: 'primary', timeline: 2 });
  const calls: string[] = [];
  const state = { running: false, local: stoppedPrimary };
  const d = driver(calls, state, {}, new SimDcsClient(sim, config.name));
  let obs = await observe(d);
  assert.equal(obs.pg.divergence, 'not_needed');
  obs = await observe(d);
  assert.equal(obs.pg.divergence, 'not_needed');
  assert.equal(calls.filter((c) => c === 'checkDivergence').length, 1, 'cached');
  state.local = { ...stoppedPrimary, timeline: 2 };
  await observe(d);
  assert.equal(calls.filter((c) => c === 'checkDivergence').length, 2, 'a new question');
});

test('a corrupted /config is repaired with the last /config the agent parsed, not with bootstrap.dcs', async () => {
  const sim = new SimDcs(() => 50_000);
  const edited = { ttl: 30, loop_wait: 10, retry_timeout: 10, synchronous_mode: true };
  sim.writeConfig('n2', edited);
  const d = driver([], { running: false, local: stoppedPrimary }, {}, new SimDcsClient(sim, config.name));
  let obs = await observe(d);
  assert.deepEqual(obs.cluster?.config, edited);
  sim.putKey('n2', 'config', '{"ttl": 30, "synchronous_mode": tr');
  obs = await observe(d);
  assert.equal(obs.cluster?.config, undefined, 'unparsable');
  assert.deepEqual(obs.self.bootstrapDcs, edited, 'what the lock holder would write back');
  const fresh = driver([], { running: false, local: stoppedPrimary }, {}, new SimDcsClient(new SimDcs(() => 50_000), config.name));
  assert.deepEqual((await observe(fresh)).self.bootstrapDcs, config.bootstrap?.dcs ?? {}, 'never read one: bootstrap.dcs');
});

test('a copy of a standby cluster\'s remote member uses standby_cluster.create_replica_methods; a copy of a primary cluster\'s member, its own list', async () => {
  const seen: Array<[string | undefined, string[] | undefined]> = [];
  const d = driver([], { running: false, local: { ...stoppedPrimary, dataDirEmpty: true } });
  d.ports.pg.basebackup = async (from, opts) => {
    seen.push([from?.connUrl, opts?.methods]);
  };
  const remote = remoteName({ host: '10.0.0.9', port: 5433, create_replica_methods: ['pgbackrest', 'basebackup'] });
  const archive = remoteName({ restore_command: 'cp /a/%f %p', create_replica_methods: ['archcopy'] });
  const bare = remoteName({ host: '10.0.0.9' });
  const specs: Array<[TaskSpec, ClusterView | undefined]> = [
    [{ kind: 'clone', from: remote }, undefined],
    [{ kind: 'reinitialize', from: remote }, view('n2')],
    [{ kind: 'clone', from: archive }, undefined],
    [{ kind: 'reinitialize', from: bare }, view('n2')],
    [{ kind: 'bootstrap', remote: bare }, undefined],
    [{ kind: 'clone', from: 'n2' }, view('n2')],
    [{ kind: 'reinitialize', from: 'n2' }, view('n2')],
    [{ kind: 'clone', from: null }, undefined],
  ];
  for (const [spec, cluster] of specs) {
    await runTask(d, spec, cluster);
    assert.equal(d.task?.state, 'ok', `${spec.kind}: ${d.task?.error ?? ''}`);
  }
  assert.deepEqual(seen, [
    ['postgres://10.0.0.9:5433', ['pgbackrest', 'basebackup']],
    ['postgres://10.0.0.9:5433', ['pgbackrest', 'basebackup']],
    [undefined, ['archcopy']], // archive only: no connection (the no_leader methods)
    ['postgres://10.0.0.9:5432', []], // none listed: basebackup, not the member's own list
    ['postgres://10.0.0.9:5432', []],
    ['postgres://n2:5432/postgres', undefined], // the member's own postgresql.create_replica_methods
    ['postgres://n2:5432/postgres', undefined],
    [undefined, undefined],
  ]);
});

test('in a standby cluster a copy of a member (the standby leader, a clonefrom member) uses standby_cluster.create_replica_methods too, from that member', async () => {
  const seen: Array<[string | undefined, string[] | undefined]> = [];
  const d = driver([], { running: false, local: { ...stoppedPrimary, dataDirEmpty: true } });
  d.ports.pg.basebackup = async (from, opts) => {
    seen.push([from?.connUrl, opts?.methods]);
  };
  // As Patroni: every clone source of a standby cluster is copied as a remote member, at the
  // member's own address, with the standby section's methods (none listed: basebackup).
  d.applyDynamicConfig({ ...config.bootstrap?.dcs, standby_cluster: { restore_command: 'cp /a/%f %p', create_replica_methods: ['archcopy'] } });
  await runTask(d, { kind: 'clone', from: 'n1' }, view('n1'));
  await runTask(d, { kind: 'reinitialize', from: 'n2' }, view('n1'));
  d.applyDynamicConfig({ ...config.bootstrap?.dcs, standby_cluster: { host: '10.0.0.9', port: 5433 } });
  await runTask(d, { kind: 'clone', from: 'n1' }, view('n1'));
  d.applyDynamicConfig({ ...config.bootstrap?.dcs });
  await runTask(d, { kind: 'clone', from: 'n1' }, view('n1'));
  assert.equal(d.task?.state, 'ok', d.task?.error);
  assert.deepEqual(seen, [
    ['postgres://n1:5432/postgres', ['archcopy']],
    ['postgres://n2:5432/postgres', ['archcopy']],
    ['postgres://n1:5432/postgres', []],
    ['postgres://n1:5432/postgres', undefined], // no longer a standby cluster: the member's own list
  ]);
});
