// Remove one step of the fast failover's rule (src/agent/fast-failover.ts FastMutations) and the
// simulation fails (docs/guarantees.md 7.5): each test runs a fault with the rule whole (no
// violation) and with one step skipped (the violation it guards against). Fixed seeds; each
// scenario is built so that the step is the only thing standing between the fault and the
// violation.
//
// Detachment, the promise and the transaction's comparisons guard safety (an acknowledged commit
// lost). The detection window and the PostgreSQL check guard against false failovers (a take-over
// of a primary whose lease was just renewed, or whose PostgreSQL still runs and streams), which the
// safety invariants cannot see: detachment makes even those safe, so their violation is that the
// take-over happened at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { FastMutations } from '../agent/fast-failover.ts';
import type { DynamicConfig } from '../core/model.ts';
import { World, type NodeOptions, type WorldOptions } from './world.ts';

interface Run {
  w: World;
  leader: string;
  others: string[];
}

async function cluster(seed: number, config: Partial<DynamicConfig>, nodes: Record<string, NodeOptions>, mutations: FastMutations | undefined, takeDelay?: (leader: string, others: string[]) => { node: string; ms: number }): Promise<Run> {
  // The leader is not known before the cluster runs: a first world finds it, the second (same
  // seed, same script) is the one that runs with the take delay.
  const build = (delay?: { node: string; ms: number }): World => {
    const opts: WorldOptions = { seed, nodes, config, fastFailover: true };
    if (mutations !== undefined) opts.fastMutations = mutations;
    if (delay !== undefined) opts.fastTakeDelay = delay;
    const w = new World(opts);
    w.at(0, 'start', () => [...w.nodes.keys()].forEach((n) => w.start(n)));
    return w;
  };
  const settle = async (w: World): Promise<string> => {
    assert.ok((await w.runUntilConverged(120_000)) !== undefined, `no convergence: ${w.convergence()}`);
    await w.run(w.now + 25_000);
    const l = w.dcs.leader?.value;
    assert.ok(l !== undefined);
    return l;
  };
  let w = build();
  let leader = await settle(w);
  let others = [...w.nodes.keys()].filter((n) => n !== leader).sort();
  if (takeDelay !== undefined) {
    w = build(takeDelay(leader, others));
    leader = await settle(w);
    others = [...w.nodes.keys()].filter((n) => n !== leader).sort();
  }
  return { w, leader, others };
}

const lost = (w: World): string[] => {
  if (process.env['FFDBG'] === '1') console.log(`take-overs ${w.takeOvers.map((t) => `${t.at} ${t.node}<-${t.from}`).join(',')} | ${w.violations.slice(0, 2).join(' / ')}`);
  return w.violations.filter((v) => /acknowledged commits lost|both believe|both able/.test(v));
};
const trace = (w: World): string => w.trace.slice(-40).map((l) => `${l.at} ${l.node} ${l.text}`).join('\n');

/** Quorum mode, three nodes: /sync names both standbys. */
const QUORUM = { synchronous_mode: 'quorum' } as const;
/** Quorum mode with loop_wait 2: the other standby's loop runs within the candidate's slow moment (the candidate gives up after TAKE_WITHIN_MS). */
const FAST_LOOP = { synchronous_mode: 'quorum', loop_wait: 2 } as const;

test('detachment: without it, a standby that still streams from the old primary lets it acknowledge what the new one lacks', async () => {
  // The old primary loses etcd and its link to one standby (n-a); the other (n-b) still streams
  // and acknowledges. n-a sees a dead primary and takes over.
  const scenario = async (mutations: FastMutations | undefined, seed: number): Promise<World> => {
    const { w, leader, others } = await cluster(seed, QUORUM, { n0: {}, n1: {}, n2: {} }, mutations);
    const [a] = others as [string, string];
    w.partitionDcs(leader, true);
    w.cut(leader, a, true);
    await w.run(w.now + 40_000);
    w.healAll();
    await w.run(w.now + 60_000);
    return w;
  };
  for (const seed of [1, 2, 3]) {
    const whole = await scenario(undefined, seed);
    lost(whole);
    assert.deepEqual(whole.violations, [], `seed ${seed}\n${trace(whole)}`);
  }
  const broken = await Promise.all([1, 2, 3].map((seed) => scenario({ noDetach: true }, seed)));
  assert.ok(broken.some((w) => lost(w).length > 0), broken.map((w) => trace(w)).join('\n----\n'));
});

test("the transaction's comparisons: without them, a take-over overwrites the /sync the old leader changed meanwhile", async () => {
  // synchronous_mode on (not strict): the old primary's agent freezes and it loses the link to its
  // /sync standby S; S detaches and is slow before its transaction; the old agent wakes up, moves
  // /sync (compare-and-set) to the other standby, which streams and acknowledges; S's
  // transaction must then fail.
  const scenario = async (mutations: FastMutations | undefined, seed: number): Promise<World> => {
    const base = await cluster(seed, { synchronous_mode: 'on', loop_wait: 2 }, { n0: {}, n1: {}, n2: {} }, undefined);
    const syncStandby = JSON.parse(base.w.dcs.getKey(base.leader, 'sync')?.value ?? '{}').sync_standby as string;
    const { w, leader } = await cluster(seed, { synchronous_mode: 'on', loop_wait: 2 }, { n0: {}, n1: {}, n2: {} }, mutations, () => ({ node: syncStandby, ms: 4_000 }));
    w.freezeAgent(leader, true);
    w.cut(leader, syncStandby, true);
    await w.run(w.now + 6_000);
    w.freezeAgent(leader, false);
    await w.run(w.now + 30_000);
    w.healAll();
    await w.run(w.now + 60_000);
    return w;
  };
  for (const seed of [1, 2, 3]) {
    const whole = await scenario(undefined, seed);
    lost(whole);
    assert.deepEqual(whole.violations, [], `seed ${seed}\n${trace(whole)}`);
  }
  const broken = await Promise.all([1, 2, 3].map((seed) => scenario({ noTxnCompare: true }, seed)));
  assert.ok(broken.some((w) => lost(w).length > 0), broken.map((w) => `${w.violations.slice(0, 3).join('\n')}\n${trace(w)}`).join('\n----\n'));
});

test('the promise: a detached standby that follows the old primary again lets it acknowledge what the new one lacks', async () => {
  // Quorum: the old primary's agent freezes and it is cut off from both standbys; the one ahead
  // (A) detaches both and is slow before its transaction; the links come back (the old agent still
  // frozen); the other standby (B), if it broke its promise, streams again and acknowledges.
  // The candidate's slowness stays under TAKE_WITHIN_MS (a later transaction is given up).
  const scenario = async (mutations: FastMutations | undefined, seed: number): Promise<World> => {
    const nodes = { n0: {}, n1: {}, n2: { lagBytes: 30_000 } };
    const { w, leader } = await cluster(seed, FAST_LOOP, nodes, mutations, (l, others) => ({ node: others.find((x) => x !== 'n2') ?? (others[0] as string), ms: 4_000 }));
    w.freezeAgent(leader, true);
    w.partitionPeers(leader, true);
    await w.run(w.now + 5_500);
    w.partitionPeers(leader, false);
    await w.run(w.now + 30_000);
    w.healAll();
    await w.run(w.now + 60_000);
    return w;
  };
  for (const seed of [1, 2, 3]) {
    const whole = await scenario(undefined, seed);
    lost(whole);
    assert.deepEqual(whole.violations, [], `seed ${seed}\n${trace(whole)}`);
  }
  const broken = await Promise.all([1, 2, 3].map((seed) => scenario({ reattach: true }, seed)));
  assert.ok(broken.some((w) => lost(w).length > 0), broken.map((w) => `${w.violations.slice(0, 3).join('\n')}\n${trace(w)}`).join('\n----\n'));
});

test('the detection window: without it, a primary that renews its lease is taken over as soon as the standbys lose it', async () => {
  const scenario = async (mutations: FastMutations | undefined): Promise<World> => {
    const { w, leader } = await cluster(1, { synchronous_mode: 'on', synchronous_mode_strict: true }, { n0: {}, n1: {}, n2: {} }, mutations);
    w.partitionPeers(leader, true);
    await w.run(w.now + 20_000);
    return w;
  };
  const whole = await scenario(undefined);
  assert.equal(whole.takeOvers.length, 0);
  const broken = await scenario({ noWindow: true });
  assert.ok(broken.takeOvers.some((t) => (t.leaseRemaining ?? 0) >= broken.config.ttl - 2), `a take-over of a leader whose lease was renewed within W: ${JSON.stringify(broken.takeOvers)}`);
});

test("the PostgreSQL check: without it, a primary whose agent is frozen (or starved) is taken over while its PostgreSQL runs and streams", async () => {
  const scenario = async (mutations: FastMutations | undefined): Promise<{ w: World; runningAtTake: boolean[] }> => {
    const { w, leader } = await cluster(1, { synchronous_mode: 'on', synchronous_mode_strict: true }, { n0: {}, n1: {}, n2: {} }, mutations);
    w.freezeAgent(leader, true);
    const runningAtTake: boolean[] = [];
    for (let i = 0; i < 200; i++) {
      const before = w.takeOvers.length;
      await w.step();
      if (w.takeOvers.length > before) runningAtTake.push(w.node(leader).pg.running);
    }
    return { w, runningAtTake };
  };
  const whole = await scenario(undefined);
  assert.deepEqual(whole.runningAtTake.filter((x) => x), [], 'with the rule whole, no take-over while the old PostgreSQL runs');
  const broken = await scenario({ noPgCheck: true });
  assert.ok(broken.runningAtTake.some((x) => x), `a take-over while the old primary's PostgreSQL runs: ${JSON.stringify(broken.runningAtTake)}`);
});

test('the recorded promise: a standby whose agent restarts after its detachment still refuses to follow the old primary', async () => {
  // As the promise test, but B keeps its promise and its agent is killed and restarted while A is
  // slow: only the recorded promise stops the new agent from following the old primary.
  const scenario = async (mutations: FastMutations | undefined, seed: number): Promise<World> => {
    const nodes = { n0: {}, n1: {}, n2: { lagBytes: 30_000 } };
    const { w, leader, others } = await cluster(seed, FAST_LOOP, nodes, mutations, (l, o) => ({ node: o.find((x) => x !== 'n2') ?? (o[0] as string), ms: 4_000 }));
    const b = others.includes('n2') ? 'n2' : (others[1] as string);
    w.freezeAgent(leader, true);
    w.partitionPeers(leader, true);
    await w.run(w.now + 5_000);
    w.killAgent(b);
    w.partitionPeers(leader, false);
    await w.run(w.now + 300);
    w.start(b);
    await w.run(w.now + 30_000);
    w.healAll();
    await w.run(w.now + 60_000);
    return w;
  };
  for (const seed of [1, 2, 3]) {
    const whole = await scenario(undefined, seed);
    lost(whole);
    assert.deepEqual(whole.violations, [], `seed ${seed}\n${trace(whole)}`);
  }
  const broken = await Promise.all([1, 2, 3].map((seed) => scenario({ noStore: true }, seed)));
  assert.ok(broken.some((w) => lost(w).length > 0), broken.map((w) => `${w.violations.slice(0, 3).join('\n')}\n${trace(w)}`).join('\n----\n'));
});
