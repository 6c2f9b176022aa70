// The user's scripts on in-memory ports: which callback fires, with which arguments, around which
// PostgreSQL operation; pre_promote failing cancels the promotion and gives the lock up. The real
// process runner (slots, killing, deadlines) is tested with real scripts in real-hooks.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clusterView, type ClusterView, type LocalPg, type TaskSpec } from '../core/model.ts';
import { loadConfig } from '../config/load.ts';
import { MINIMAL_CONFIG } from '../config/testing.ts';
import type { Config } from '../config/types.ts';
import { SimDcs } from '../sim/dcs.ts';
import { SimDcsClient } from '../sim/dcs-client.ts';
import { NodeDriver } from './driver.ts';
import { prePromoteBackoff, primaryStopTimeoutMs } from './hooks.ts';
import type { Clock, HooksPort, PgObservation, PgPort, ScriptExit } from './ports.ts';

const HOOKS = `  callbacks: {on_start: "/cb start", on_stop: /cb, on_restart: /cb, on_reload: /cb, on_role_change: "/vip 'eth0 x'"}
  pre_promote: /fence --check
  before_stop: /drain
`;
const config = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', `postgresql:\n${HOOKS}`), {}).config as Config;

const replicaPg: LocalPg = {
  dataDirEmpty: false, sysid: '7300000000000000001', running: true, ready: true, inRecovery: true, walLsn: 100, receiveLsn: 100,
  replayLsn: 100, timeline: 1, streaming: true, upstream: 'n2', controlState: 'in archive recovery', rewindable: true, crashed: false,
};

/** Every port call, in order: PostgreSQL's by name, scripts as `spawn <slot>: argv` / `run: argv`. */
function setup(opts: { local?: LocalPg; prePromoteExit?: ScriptExit; hangUntilAborted?: boolean } = {}) {
  const calls: string[] = [];
  const state = { running: opts.local?.running ?? true, local: opts.local ?? replicaPg };
  const call = async <T>(name: string, value: T, effect?: () => void): Promise<T> => {
    calls.push(name);
    effect?.();
    return value;
  };
  const conf = { changed: true, needsRestart: false, restartReasons: [], reloadParams: [], ignored: [] };
  const pg: PgPort = {
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
  const hooks: HooksPort = {
    spawn: async (slot, argv) => {
      calls.push(`spawn ${slot}: ${argv.join(' ')}`);
      return { code: 0 };
    },
    run: async (argv, _label, o) => {
      calls.push(`run: ${argv.join(' ')}`);
      if (opts.hangUntilAborted === true) {
        await new Promise((res) => o.signal?.addEventListener('abort', res, { once: true }));
        return { code: null, why: 'cancelled' };
      }
      return argv[0] === '/fence' ? (opts.prePromoteExit ?? { code: 0 }) : { code: 0 };
    },
  };
  const time = { now: 50_000 };
  const clock: Clock = { now: () => time.now, wallNow: () => Date.parse('2026-01-01T00:00:00Z'), sleep: async () => undefined, timeout: () => new AbortController().signal };
  const sim = new SimDcs(() => time.now);
  const dcs = new SimDcsClient(sim, config.name);
  const d = new NodeDriver({
    config,
    ports: { pg, dcs, peers: { fetchStatuses: async () => [], checkFailsafe: async () => ({ ok: false, reason: 'none' }) }, fence: { arm: async () => ({ ok: true }), disarm: async () => true }, clock, hooks },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    wake: () => undefined,
  });
  return { d, calls, state, time, dcs, sim };
}

const view = (leader: string): ClusterView =>
  clusterView({
    leader: { name: leader, version: '5', session: '1' },
    members: ['n1', 'n2'].map((name) => ({ name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, api_url: `http://${name}:8008/patroni`, state: 'running', role: name === leader ? 'primary' : 'replica', timeline: 1 } })),
    revision: '9',
  });

async function runTask(d: NodeDriver, spec: TaskSpec, cluster: ClusterView | undefined): Promise<void> {
  d.startTask(spec, { cluster });
  await d.task?.done;
}

const scripts = (calls: string[]): string[] => calls.filter((c) => c.startsWith('spawn') || c.startsWith('run'));

test('a promotion runs pre_promote first, then pg_ctl promote, then on_role_change primary with Patroni\'s arguments', async () => {
  const { d, calls } = setup();
  d.hookState = { called: true, role: 'replica', prePromoteFailedAt: undefined };
  await runTask(d, { kind: 'promote' }, view('n1'));
  assert.equal(d.task?.state, 'ok', d.task?.error);
  const i = calls.indexOf('run: /fence --check');
  assert.ok(i >= 0 && i < calls.indexOf('promote') && calls.indexOf('promote') < calls.indexOf('spawn callback: /vip eth0 x on_role_change primary s'), calls.join('\n'));
});

test('a failing pre_promote (exit 1, or killed) cancels the promotion, releases the lock and keeps the node out of races for ttl', async () => {
  for (const exit of [{ code: 1 }, { code: null, why: 'killed after 60000 ms' }] as ScriptExit[]) {
    const { d, calls, dcs, time } = setup({ prePromoteExit: exit });
    assert.equal(await dcs.acquireLeader(), true);
    d.lockRefreshedAt = time.now;
    d.hookState = { called: true, role: 'replica', prePromoteFailedAt: undefined };
    await runTask(d, { kind: 'promote' }, view('n1'));
    assert.equal(d.task?.state, 'failed');
    assert.match(d.task?.error ?? '', /^promotion cancelled: the pre_promote script (exited with code 1|did not finish \(killed after 60000 ms\)); released the leader lock$/);
    assert.ok(!calls.includes('promote'), calls.join('\n'));
    assert.ok(!calls.some((c) => c.includes('on_role_change')), calls.join('\n'));
    assert.equal((await dcs.readCluster()).leader, undefined, 'the lock was released');
    assert.equal(d.lockRefreshedAt, undefined);
    assert.equal(prePromoteBackoff(d), true);
    time.now += d.dynamic.ttl * 1000;
    assert.equal(prePromoteBackoff(d), false, 'the backoff lasts ttl');
  }
});

test('on_role_change replaces on_start when a former primary starts as a replica; a first start is on_start', async () => {
  const first = setup({ local: { ...replicaPg, running: false } });
  first.d.hookState = { called: false, role: 'primary', prePromoteFailedAt: undefined };
  await runTask(first.d, { kind: 'start', asPrimary: false, upstream: 'n2' }, view('n2'));
  assert.deepEqual(scripts(first.calls), ['spawn callback: /cb start on_start replica s']);

  const demoted = setup();
  demoted.d.hookState = { called: true, role: 'primary', prePromoteFailedAt: undefined };
  demoted.d.lastPg = { ...replicaPg, inRecovery: false };
  await runTask(demoted.d, { kind: 'demote', mode: 'graceful', upstream: 'n2' }, view('n1'));
  await runTask(demoted.d, { kind: 'start', asPrimary: false, upstream: 'n2' }, view('n2'));
  // before_stop blocks the stop; on_stop reports the role PostgreSQL had.
  assert.deepEqual(scripts(demoted.calls), ['run: /drain', 'spawn callback: /cb on_stop primary s', "spawn callback: /vip eth0 x on_role_change replica s"]);
  assert.ok(demoted.calls.indexOf('run: /drain') < demoted.calls.indexOf('stop'));
});

test('a restart reports on_restart (no on_stop), a configuration reload on_reload in its own slot', async () => {
  const { d, calls } = setup();
  d.hookState = { called: true, role: 'replica', prePromoteFailedAt: undefined };
  d.lastPg = replicaPg;
  await runTask(d, { kind: 'restart' }, view('n2'));
  assert.deepEqual(scripts(calls), ['run: /drain', 'spawn callback: /cb on_restart replica s']);
  calls.length = 0;
  d.appliedParams = 'something else';
  const { applyLocalConfig } = await import('./restarts.ts');
  await applyLocalConfig(d, view('n2'), true);
  assert.deepEqual(scripts(calls), ['spawn reload: /cb on_reload replica s']);
});

test('the first tick that finds PostgreSQL running fires on_start once, with the role PostgreSQL runs as', async () => {
  const { d, calls, sim } = setup();
  // n2 leads an initialized cluster; n1's agent starts next to its running replica.
  const n2 = new SimDcsClient(sim, 'n2');
  await n2.attemptInitialize();
  await n2.writeInitialize(replicaPg.sysid as string);
  await n2.acquireLeader();
  await n2.touchMember({ conn_url: 'postgres://n2:5432/postgres', api_url: 'http://n2:8008/patroni', state: 'running', role: 'primary', timeline: 1 });
  await d.tick();
  await d.tick();
  assert.deepEqual(scripts(calls).filter((c) => c.includes('on_start')), ['spawn callback: /cb start on_start replica s']);
});

test('losing the lock while pre_promote runs kills it and abandons the promotion', async () => {
  const { d, calls } = setup({ hangUntilAborted: true });
  d.hookState = { called: true, role: 'replica', prePromoteFailedAt: undefined };
  d.startTask({ kind: 'promote' }, { cluster: view('n1') });
  await d.cancelTask();
  await d.task?.done;
  assert.equal(d.task?.state, 'failed');
  assert.equal(d.task?.error, 'promote cancelled');
  assert.ok(!calls.includes('promote'), calls.join('\n'));
  assert.equal(d.hookState.prePromoteFailedAt, undefined, 'a cancel is not a pre_promote failure');
});

test('primaryStopTimeoutMs: primary_stop_timeout only above 0 and in synchronous mode (on or quorum)', () => {
  assert.equal(primaryStopTimeoutMs({ primary_stop_timeout: 30, synchronous_mode: true }), 30_000);
  assert.equal(primaryStopTimeoutMs({ primary_stop_timeout: 30, synchronous_mode: 'quorum' }), 30_000);
  assert.equal(primaryStopTimeoutMs({ primary_stop_timeout: 30, synchronous_mode: false }), undefined);
  assert.equal(primaryStopTimeoutMs({ primary_stop_timeout: 0, synchronous_mode: true }), undefined);
  assert.equal(primaryStopTimeoutMs({ synchronous_mode: true }), undefined);
});
