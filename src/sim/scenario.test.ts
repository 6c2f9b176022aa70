// Failover stories as readable transcripts (design.md section 3, principle 5).
//
// Each src/sim/testdata/*.txt holds a script, `----`, and the output the simulator printed for
// it (src/sim/transcript.ts documents the format). A test fails when the output differs,
// when an `expect` line is not met, when a safety invariant is violated, or when the cluster does
// not converge. After a deliberate change of behaviour, regenerate the outputs with
//   VIGIL_UPDATE_TRANSCRIPTS=1 node --import tsx --test src/sim/scenario.test.ts
// and read the diff: it is the review of the change.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { decide } from '../core/decide.ts';
import { clusterView } from '../core/model.ts';
import type { ClusterView, DynamicConfig, Observation } from '../core/model.ts';
import { randomRun } from './random.ts';
import { runTranscript, SEPARATOR, splitTranscript } from './transcript.ts';
import { World } from './world.ts';
import { promotePg } from './pg-effects.ts';
import { defaultConfig } from '../core/testing.ts';
import { truncate } from './wal.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const update = process.env['VIGIL_UPDATE_TRANSCRIPTS'] === '1';

const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

test('the transcript directory holds the stories', async () => {
  for (const story of ['bootstrap-three-nodes', 'host-crash-rewind', 'postmaster-crash', 'dcs-outage', 'graceful-stop', 'lagging-replica', 'nofailover', 'failover-priority']) {
    assert.ok(files.includes(`${story}.txt`), story);
  }
});

for (const file of files) {
  test(`transcript ${file}`, async () => {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    const result = await runTranscript(text);
    if (update) writeFileSync(path, `${result.script}${SEPARATOR}\n${result.output}`);
    assert.deepEqual(result.errors, [], `${file}:\n${result.output}`);
    if (update) return;
    const { expected } = splitTranscript(text);
    assert.ok(expected !== undefined, `${file} has no expected output: run with VIGIL_UPDATE_TRANSCRIPTS=1`);
    assert.equal(result.output, expected, `${file}: the output changed (VIGIL_UPDATE_TRANSCRIPTS=1 regenerates it)`);
  });
}

test('a transcript whose output was edited by hand fails', async () => {
  const text = readFileSync(join(dir, 'postmaster-crash.txt'), 'utf8');
  const { script, expected } = splitTranscript(text);
  assert.ok(expected !== undefined);
  const tampered = `${script}${SEPARATOR}\n${expected.replace('starting primary after failure', 'something else')}`;
  const result = await runTranscript(tampered);
  assert.notEqual(result.output, splitTranscript(tampered).expected);
});

test('an expectation that is not met is reported', async () => {
  const result = await runTranscript(['nodes n0 n1', 'at 0 start n0 n1', 'run 30', 'expect n1: acquireLeader  # never happens'].join('\n'));
  assert.equal(result.errors.length, 1);
  assert.match(result.errors[0] ?? '', /not found/);
});

// ---- randomized fault runs ---------------------------------------------------------------------

const seeds = Number(process.env['VIGIL_SIM_SEEDS'] ?? 50);

test(`randomized fault runs (${seeds} seeds; VIGIL_SIM_SEEDS=n for more)`, async () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await randomRun(seed);
    if (r.violations.length === 0 && r.notConverged === undefined) continue;
    const why = [...r.violations, ...(r.notConverged !== undefined ? [`did not converge: ${r.notConverged}`] : [])];
    failures.push(`seed ${seed}: ${why.join('; ')}\n  replay: randomRun(${seed}) in src/sim/random.ts; faults:\n    ${r.script.join('\n    ')}`);
    console.error(`randomized run failed: seed ${seed}: ${why[0]}`);
  }
  assert.deepEqual(failures, []);
});

// Synchronous replication and the fencer, randomized: the world acknowledges a commit only when
// PostgreSQL would (synchronous_standby_names as the leader set it, FIRST n / ANY n over the
// streaming standbys) and checks that every acknowledged history is in every promoted node and in
// the lock holder's WAL; the fencer is modelled, agents are also killed for longer than ttl, and
// two writable primaries at once are a violation.
const syncVariants: Array<{ label: string; config: Partial<DynamicConfig> }> = [
  { label: 'synchronous_mode on', config: { synchronous_mode: 'on' } },
  { label: 'synchronous_mode quorum', config: { synchronous_mode: 'quorum' } },
  { label: 'synchronous_mode on, strict, 2 standbys', config: { synchronous_mode: 'on', synchronous_mode_strict: true, synchronous_node_count: 2 } },
  { label: 'quorum, ttl 10 / loop_wait 2 / retry_timeout 3', config: { synchronous_mode: 'quorum', ttl: 10, loop_wait: 2, retry_timeout: 3 } },
];
const syncSeeds = Math.max(1, Math.floor(seeds / 2));

for (const v of syncVariants) {
  test(`randomized fault runs, ${v.label}, agents also dead for longer than ttl (${syncSeeds} seeds): no acknowledged commit lost, never two primaries`, async () => {
    const failures: string[] = [];
    let acked = 0;
    let fencings = 0;
    for (let seed = 1; seed <= syncSeeds; seed++) {
      const r = await randomRun(seed, { config: v.config, longAgentFaults: true });
      acked += r.world.ackHeads.length > 0 ? 1 : 0;
      fencings += r.world.fencings;
      if (r.violations.length === 0 && r.notConverged === undefined) continue;
      const why = [...r.violations, ...(r.notConverged !== undefined ? [`did not converge: ${r.notConverged}`] : [])];
      failures.push(`seed ${seed}: ${why.slice(0, 3).join('; ')}\n  replay: randomRun(${seed}, { config: ${JSON.stringify(v.config)}, longAgentFaults: true }); faults:\n    ${r.script.join('\n    ')}`);
    }
    assert.deepEqual(failures, []);
    // The checks had something to check: commits were acknowledged, and the fencer had to act.
    assert.equal(acked, syncSeeds, 'every run acknowledged commits');
    if (syncSeeds >= 20) assert.ok(fencings > 0, 'the fencer fired in some run');
  });
}

// The lease keep-alive (issue 13, docs/guarantees.md 7.2 step 1): every second between ticks the
// lock holder extends its lease, confirms the leader key and moves its fencing deadline. The same
// faults (agents also dead for longer than ttl) must stay safe and converge.
for (const v of [{ label: 'asynchronous', config: {} }, ...syncVariants.slice(0, 2)]) {
  test(`randomized fault runs with the lease keep-alive every second, ${v.label} (${syncSeeds} seeds)`, async () => {
    const failures: string[] = [];
    let keptAlive = 0;
    for (let seed = 1; seed <= syncSeeds; seed++) {
      const r = await randomRun(seed, { config: v.config, longAgentFaults: true, leaseKeepAliveMs: 1000 });
      keptAlive += r.world.keepAlives;
      if (r.violations.length === 0 && r.notConverged === undefined) continue;
      const why = [...r.violations, ...(r.notConverged !== undefined ? [`did not converge: ${r.notConverged}`] : [])];
      failures.push(`seed ${seed}: ${why.slice(0, 3).join('; ')}\n  replay: randomRun(${seed}, { config: ${JSON.stringify(v.config)}, longAgentFaults: true, leaseKeepAliveMs: 1000 }); faults:\n    ${r.script.join('\n    ')}`);
    }
    assert.deepEqual(failures, []);
    assert.ok(keptAlive > 0, 'some keep-alive moved a fencing deadline');
  });
}

test('with the keep-alive, a lock holder whose loop is 30 s apart keeps its lease and fencing deadline about a second fresh', async () => {
  const w = new World({ seed: 3, nodes: { n0: {}, n1: {} }, config: { loop_wait: 30, ttl: 60, retry_timeout: 10 }, leaseKeepAliveMs: 1000 });
  w.at(0, 'start', () => ['n0', 'n1'].forEach((n) => w.start(n)));
  await w.run(60_000);
  const leader = w.dcs.leader;
  assert.ok(leader !== undefined);
  const lease = w.dcs.leaseOf(Number(leader.lease));
  let worst = 0;
  for (let i = 0; i < 600; i++) {
    await w.step();
    const l = w.dcs.leaseOf(Number(leader.lease));
    assert.ok(l !== undefined && lease !== undefined);
    worst = Math.max(worst, w.now - (l.expiresAt - l.ttlMs));
    const fence = w.node(leader.value).fenceDeadline;
    assert.ok(fence !== undefined && fence - w.now >= 60_000 - 5_000 - 1_200, `fencing deadline ${fence} at ${w.now}`);
  }
  assert.ok(worst <= 1_100, `the lease went ${worst} ms without renewal`);
  assert.deepEqual(w.violations, []);
});

// The shell's windows: a postmaster dies and its agent dies a moment later, while it may be
// restarting it (the start task half done). The lock holder's fencer must be armed for the data
// directory before the start can reach PostgreSQL (src/agent/fencing.ts and the start task), else
// a primary outlives its lock. With that rule broken in both places, seed 3 fails (11 of the
// first 100 seeds).
test(`randomized fault runs with agents killed while restarting their PostgreSQL (${seeds} seeds)`, async () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await randomRun(seed, { longAgentFaults: true, shellFaults: true });
    if (r.violations.length === 0 && r.notConverged === undefined) continue;
    const why = [...r.violations, ...(r.notConverged !== undefined ? [`did not converge: ${r.notConverged}`] : [])];
    failures.push(`seed ${seed}: ${why.slice(0, 3).join('; ')}\n  replay: randomRun(${seed}, { longAgentFaults: true, shellFaults: true }); faults:\n    ${r.script.join('\n    ')}`);
  }
  assert.deepEqual(failures, []);
});

test('the acknowledged-commit check can fail: a sync standby that lost its data is promoted', async () => {
  const w = new World({ seed: 11, nodes: { n0: {}, n1: {}, n2: {} }, config: { synchronous_mode: 'on' } });
  w.at(0, 'start', () => ['n0', 'n1', 'n2'].forEach((n) => w.start(n)));
  await w.run(60_000);
  assert.equal(w.convergence(), undefined);
  assert.ok(w.ackHeads.length > 0, 'commits were acknowledged');
  // A replica promoted from a WAL cut before the last acknowledgement (think: a disk that lost
  // its last writes): the world must report the loss.
  const leader = w.dcs.leader?.value;
  const other = [...w.nodes.values()].find((n) => n.name !== leader);
  assert.ok(other?.pg.data !== undefined);
  other.pg.data.wal = truncate(other.pg.data.wal, 1000);
  promotePg(w, other);
  assert.ok(w.violations.some((x) => /acknowledged commits lost/.test(x)), w.violations.join('\n'));
});

test('without the fencer, an agent dead for longer than ttl leaves two primaries (the strict check is the fencer\'s)', async () => {
  let overlaps = 0;
  for (let seed = 1; seed <= 30 && overlaps === 0; seed++) {
    const r = await randomRun(seed, { longAgentFaults: true, fencing: false });
    if (r.violations.some((x) => /writable primaries at once/.test(x))) overlaps++;
  }
  assert.ok(overlaps > 0, 'some run without a fencer had two writable primaries');
});

test('the invariant checks can fail: a primary promoted behind the core\'s back is caught', async () => {
  const w = new World({ seed: 5, nodes: { n0: {}, n1: {}, n2: {} } });
  w.at(0, 'start', () => ['n0', 'n1', 'n2'].forEach((n) => w.start(n)));
  await w.run(60_000);
  assert.equal(w.convergence(), undefined);
  // n1's agent is gone and someone runs pg_ctl promote by hand: nothing demotes it.
  w.killAgent('n1');
  promotePg(w, w.node('n1'));
  await w.run(120_000);
  assert.ok(w.violations.some((v) => /writable primaries at once/.test(v)), w.violations.join('\n'));
});

test('the core demotes a primary promoted by hand while it is still running its agent', async () => {
  // A promotion by hand is a second primary no fencer can prevent: the world's strict "never two
  // writable primaries" check (fencing on) does not apply, the bounded-overlap one does.
  const w = new World({ seed: 5, nodes: { n0: {}, n1: {}, n2: {} }, fencing: false });
  w.at(0, 'start', () => ['n0', 'n1', 'n2'].forEach((n) => w.start(n)));
  await w.run(60_000);
  promotePg(w, w.node('n1'));
  await w.run(200_000);
  assert.deepEqual(w.violations, []);
  assert.equal(w.convergence(), undefined, w.trace.map((l) => `${l.at} ${l.node} ${l.text}`).join('\n'));
});

// Issue 13, item 5: a standby that starts streaming is made synchronous within about a second,
// not at the primary's next loop (loop_wait 30 here). Simulated time, deterministic per seed.
for (const mode of ['on', 'quorum'] as const) {
  test(`synchronous_mode ${mode}: a new standby is in /sync within about a second of streaming, long before the next loop`, async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const w = new World({ seed, nodes: { n0: {}, n1: {} }, config: { synchronous_mode: mode, loop_wait: 30, ttl: 60, retry_timeout: 10 } });
      w.at(0, 'start n0', () => w.start('n0'));
      w.at(40_000, 'start n1', () => w.start('n1'));
      let streamAt: number | undefined;
      let syncAt: number | undefined;
      while (w.now < 200_000 && syncAt === undefined) {
        await w.step();
        if (streamAt === undefined && w.node('n1').pg.streaming) streamAt = w.now;
        const raw = w.dcs.raw('sync');
        if (streamAt !== undefined && raw !== undefined && (JSON.parse(raw.value) as { sync_standby?: string | null }).sync_standby?.includes('n1') === true) syncAt = w.now;
      }
      assert.ok(streamAt !== undefined && syncAt !== undefined, `seed ${seed}: n1 never became synchronous`);
      // Without the watch the primary's next loop came about 20 s later.
      assert.ok(syncAt - streamAt <= 2500, `seed ${seed}: /sync named n1 ${syncAt - streamAt} ms after it started streaming`);
      assert.deepEqual(w.violations, []);
    }
  });
}

// ---- regressions: bugs the simulator found in the core, now fixed -------------------------------

// Fixed: election.ts refuses a replica behind /history whatever check_timeline says.
// Was: election.ts isHealthiest lets a replica whose timeline is behind /history win the race when
// check_timeline is off; its promotion reuses a timeline number, and nodes on the other branch then
// stream over a divergence PostgreSQL cannot see

test('a replica behind the cluster timeline must not win the race (decide)', async () => {
  const cluster: ClusterView = {
    initialize: '7300000000000000001',
    config: {},
    configVersion: '1',
    leader: undefined,
    members: [],
    failover: undefined,
    sync: undefined,
    // n1 was promoted to timeline 2 at LSN 900; n0 never saw it.
    history: [[1, 900, 'no recovery target specified']],
    status: { optime: 1200 },
    failsafe: undefined,
    revision: '9',
  };
  const d = decide({
    now: 500_000,
    wallClock: '2026-01-01T00:08:20.000Z',
    self: { name: 'n0', tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig({ check_timeline: false }),
    cluster,
    pg: {
      dataDirEmpty: false, sysid: '7300000000000000001', running: true, ready: true, inRecovery: true, walLsn: 1000, receiveLsn: 1000, replayLsn: 1000,
      timeline: 1, streaming: false, upstream: null, controlState: 'in archive recovery', rewindable: true, crashed: false,
    },
    // n2 (nofailover) holds timeline 2 up to 1200: ignored as a peer, as in Patroni.
    peers: [{ name: 'n2', reachable: true, inRecovery: true, walPosition: 1200, timeline: 2, nofailover: true, failoverPriority: 0, watchdogFailed: false }],
    task: undefined,
    failures: [],
    memory: { started: true },
  });
  assert.ok(!d.actions.some((a) => a.type === 'acquireLeader'), d.reason);
});

test('a replica behind the cluster timeline must not win the race (simulated, seed 172)', async () => {
  const r = await randomRun(172);
  assert.deepEqual(r.violations, []);
});

// Fixed: Memory.rewindFailedFrom makes a new leader get a new pg_rewind attempt.
// Was: decide.ts: after a pg_rewind failed (rewindCheck "failed") the node never tries again, even
// when the failure was its source going away and another member now leads; Patroni retries unless
// pg_rewind itself became impossible

test('a pg_rewind that failed against one leader is tried again against the next (decide)', async () => {
  const base = (leader: string, memory: Observation['memory'], task?: Observation['task']): Observation => ({
    now: 300_000,
    wallClock: '2026-01-01T00:05:00.000Z',
    self: { name: 'n3', tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig(),
    cluster: {
      initialize: '7300000000000000001', config: {}, configVersion: '1', leader: { name: leader, version: '5', session: '1' },
      members: ['n1', 'n2'].map((name) => ({ name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, api_url: `http://${name}:8008/patroni`, state: 'running', role: name === leader ? 'primary' : 'replica' } })),
      failover: undefined, sync: undefined, history: [[1, 900, 'no recovery target specified']], status: { optime: 2000 }, failsafe: undefined, revision: '20',
    },
    pg: {
      dataDirEmpty: false, sysid: '7300000000000000001', running: false, ready: false, inRecovery: false, walLsn: undefined, receiveLsn: undefined, replayLsn: undefined,
      timeline: 1, streaming: false, upstream: null, controlState: 'in production', rewindable: true, crashed: false, divergence: 'need',
    },
    task,
    failures: [],
    memory,
  });
  // pg_rewind from n1 failed because n1 went down in the middle.
  const first = decide(base('n1', { started: true }, { kind: 'rewind', startedAt: 290_000, state: 'failed', error: 'could not connect to n1' }));
  assert.equal(first.memory.rewindCheck, 'failed');
  // n2 took over: the repair should be attempted against n2.
  const next = decide(base('n2', first.memory));
  assert.deepEqual(next.actions, [{ type: 'startTask', task: { kind: 'rewind', from: 'n2' } }], next.reason);
});

test('a pg_rewind that failed against one leader is tried again against the next (simulated, seed 374)', async () => {
  const r = await randomRun(374, { config: { check_timeline: true } });
  assert.deepEqual(r.violations, []);
  assert.equal(r.notConverged, undefined);
});

// Fixed: the agent arms the fencer by data directory before the lock holder (re)starts PostgreSQL.
// Was: agent.ts updateFence disarmed the fencer whenever PostgreSQL was not running, so a primary
// restarted in place after a crash ran unfenced until the agent's next tick; an agent killed in
// that window left a primary that kept running after its lock expired and a replica was promoted
// (found by the simulator once it modelled the fencer)

test('an agent killed while restarting its crashed primary leaves it fenced (simulated, seeds 1-20)', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const w = new World({ seed, nodes: { n0: {}, n1: {}, n2: {} } });
    w.at(0, 'start', () => ['n0', 'n1', 'n2'].forEach((n) => w.start(n)));
    await w.run(60_000);
    const leader = w.dcs.leader?.value;
    assert.ok(leader !== undefined);
    w.killPg(leader);
    for (let i = 0; i < 200 && w.node(leader).agent?.task?.spec.kind !== 'start'; i++) await w.step();
    assert.equal(w.node(leader).agent?.task?.spec.kind, 'start', 'the agent restarts its PostgreSQL');
    w.killAgent(leader); // the PRNG decides whether the start already reached PostgreSQL
    await w.run(w.now + 120_000);
    assert.deepEqual(w.violations, [], `seed ${seed}`);
  }
});

// Fixed: election.ts ignores the position of a peer behind the cluster timeline.
// Was: a replica on the newest timeline yielded to a peer further ahead on an older timeline,
// which itself refuses to race (behind the cluster timeline): nobody ever took the lock (found by
// the simulator in synchronous_mode_strict, seed 1134, after the former leader was fenced)

test('a peer ahead on an older timeline does not block the only up-to-date replica (decide)', async () => {
  const cluster = clusterView({
    initialize: '7300000000000000001', config: {}, configVersion: '1',
    members: ['n0', 'n1'].map((name) => ({ name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, api_url: `http://${name}:8008/patroni`, state: 'running', role: 'replica' } })),
    sync: { leader: 'n1', sync_standby: 'n0', quorum: 0, version: '7' },
    history: [[1, 2799000, 'no recovery target specified'], [2, 3039100, 'no recovery target specified'], [3, 3541200, 'no recovery target specified']],
    status: { optime: 3543300 },
    revision: '30',
  });
  const obs: Observation = {
    now: 500_000,
    wallClock: '2026-01-01T00:08:20.000Z',
    self: { name: 'n1', tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig({ synchronous_mode: 'on', synchronous_mode_strict: true }),
    cluster,
    pg: {
      dataDirEmpty: false, sysid: '7300000000000000001', running: true, ready: true, inRecovery: true, walLsn: 4041300, receiveLsn: 4041300, replayLsn: 4041300,
      timeline: 4, streaming: false, upstream: null, controlState: 'in archive recovery', rewindable: true, crashed: false,
    },
    // n0 holds timeline 3 up to 4559200: past the switch to timeline 4 at 3541200.
    peers: [{ name: 'n0', reachable: true, inRecovery: true, walPosition: 4559200, timeline: 3, nofailover: false, failoverPriority: 1, watchdogFailed: false }],
    task: undefined,
    failures: [],
    memory: { started: true },
  };
  const d = decide(obs);
  assert.ok(d.actions.some((a) => a.type === 'acquireLeader'), d.reason);
  // The same peer on the current timeline and ahead still wins.
  const d2 = decide({ ...obs, peers: [{ ...obs.peers![0]!, timeline: 4 }] });
  assert.ok(!d2.actions.some((a) => a.type === 'acquireLeader'), d2.reason);
});

test('a peer ahead on an older timeline does not block the only up-to-date replica (simulated, strict, seed 1134)', async () => {
  const r = await randomRun(1134, { config: { synchronous_mode: 'on', synchronous_mode_strict: true }, longAgentFaults: true });
  assert.deepEqual(r.violations, []);
  assert.equal(r.notConverged, undefined);
});
