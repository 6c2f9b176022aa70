// The fast failover of synchronous modes (issue 13; docs/guarantees.md 7.5) in the simulation,
// which runs production's node driver and the fast path's shell (src/agent/fast-failover.ts).
//
// Faults: a crashed primary; a primary alive but cut off from the standbys and not from etcd; cut
// off from etcd and not from the standbys; cut off from both; flapping links; a slow standby; an
// old primary whose agent is frozen while PostgreSQL runs. Invariants (checked after every step by
// the world): never two writable primaries that can both acknowledge a commit, no acknowledged
// commit missing on a promoted node or on the lock holder. Then each step of the rule is removed
// in turn (FastMutations) and a fixed seed shows what breaks.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { FastMutations } from '../agent/fast-failover.ts';
import type { DynamicConfig } from '../core/model.ts';
import { randomRun } from './random.ts';
import { World, type NodeOptions, type WorldOptions } from './world.ts';

const MODES: Array<{ label: string; config: Partial<DynamicConfig> }> = [
  { label: 'synchronous_mode on, strict', config: { synchronous_mode: 'on', synchronous_mode_strict: true } },
  { label: 'synchronous_mode on', config: { synchronous_mode: 'on' } },
  { label: 'quorum, strict', config: { synchronous_mode: 'quorum', synchronous_mode_strict: true } },
  { label: 'quorum', config: { synchronous_mode: 'quorum' } },
];
const SEEDS = [1, 2, 3, 4, 5];

interface Setup {
  seed: number;
  config: Partial<DynamicConfig>;
  nodes?: Record<string, NodeOptions>;
  fast?: boolean;
  mutations?: FastMutations;
  takeDelay?: { node: string; ms: number };
}

/** A healthy three-node cluster with every standby streaming and /sync settled. */
async function healthy(s: Setup): Promise<{ w: World; leader: string; standbys: string[] }> {
  const opts: WorldOptions = { seed: s.seed, nodes: s.nodes ?? { n0: {}, n1: {}, n2: {} }, config: s.config, fastFailover: s.fast ?? true };
  if (s.mutations !== undefined) opts.fastMutations = s.mutations;
  if (s.takeDelay !== undefined) opts.fastTakeDelay = s.takeDelay;
  const w = new World(opts);
  w.at(0, 'start', () => [...w.nodes.keys()].forEach((n) => w.start(n)));
  const t = await w.runUntilConverged(120_000);
  assert.ok(t !== undefined, `no convergence: ${w.convergence()}`);
  await w.run(w.now + 25_000);
  const leader = w.dcs.leader?.value;
  assert.ok(leader !== undefined);
  return { w, leader, standbys: [...w.nodes.keys()].filter((n) => n !== leader) };
}

/** Step until `cond` or `ms` passed; the time it took (undefined: not met). */
async function until(w: World, ms: number, cond: () => boolean): Promise<number | undefined> {
  const t0 = w.now;
  while (w.now - t0 < ms) {
    await w.step();
    if (cond()) return w.now - t0;
  }
  return undefined;
}

const newPrimary = (w: World, old: string) => (): boolean => w.writablePrimaries().some((x) => x !== old) && w.dcs.leader !== undefined && w.dcs.leader.value !== old;
const show = (w: World): string => `${w.violations.join('\n')}\n${w.trace.slice(-60).map((l) => `${l.at} ${l.node} ${l.text}`).join('\n')}`;

test('a crashed primary: a /sync standby takes over before the lease expires, nothing acknowledged lost', async () => {
  const lines: string[] = [];
  for (const mode of MODES) {
    const times: number[] = [];
    for (const seed of SEEDS) {
      const { w, leader } = await healthy({ seed, config: mode.config });
      w.kill(leader);
      const took = await until(w, 60_000, newPrimary(w, leader));
      assert.ok(took !== undefined, `${mode.label} seed ${seed}: no new primary\n${show(w)}`);
      assert.equal(w.takeOvers.length, 1, `${mode.label} seed ${seed}: a take-over, not the lease rule\n${show(w)}`);
      const ev = w.takeOvers[0];
      assert.ok(ev !== undefined && ev.from === leader && (ev.leaseRemaining ?? 0) > 0, 'the old lease was still alive at the take-over');
      w.healAll();
      assert.ok((await w.runUntilConverged(w.now + 120_000)) !== undefined, `${mode.label} seed ${seed}: ${w.convergence()}`);
      assert.deepEqual(w.violations, [], `${mode.label} seed ${seed}`);
      times.push(took / 1000);
    }
    times.sort((a, b) => a - b);
    lines.push(`${mode.label}: host crash -> new writable primary ${times.map((x) => x.toFixed(1)).join(' ')} s (median ${times[Math.floor(times.length / 2)]?.toFixed(1)} s; ttl 30, loop_wait 10)`);
  }
  // The failover times, for docs/guarantees.md 7.4 (simulated clock, 100 ms steps).
  console.log(lines.join('\n'));
});

test('without the setting, the lease rule: no take-over', async () => {
  const { w, leader } = await healthy({ seed: 1, config: MODES[0]?.config ?? {}, fast: false });
  w.kill(leader);
  const took = await until(w, 60_000, newPrimary(w, leader));
  assert.ok(took !== undefined && took > 15_000, `took ${took}`);
  assert.equal(w.takeOvers.length, 0);
  assert.deepEqual(w.violations, []);
});

// Each fault in each mode, three seeds: safe, and converged once healed.
const FAULTS: Array<{ label: string; run: (w: World, leader: string, standbys: string[]) => Promise<void>; takeOver: 'never' | 'maybe' | 'always' }> = [
  {
    label: 'primary alive, cut off from the standbys and not from etcd',
    takeOver: 'never',
    run: async (w, leader) => {
      w.partitionPeers(leader, true);
      await w.run(w.now + 40_000);
    },
  },
  {
    label: 'primary cut off from etcd and not from the standbys',
    takeOver: 'maybe',
    run: async (w, leader) => {
      w.partitionDcs(leader, true);
      await w.run(w.now + 40_000);
    },
  },
  {
    label: 'primary cut off from etcd and from the standbys',
    takeOver: 'always',
    run: async (w, leader) => {
      w.partitionDcs(leader, true);
      w.partitionPeers(leader, true);
      await w.run(w.now + 40_000);
    },
  },
  {
    label: 'flapping links (the primary loses etcd and the standbys for 2 to 4 s, 8 times)',
    takeOver: 'maybe',
    run: async (w, leader) => {
      for (let i = 0; i < 8; i++) {
        const down = 2000 + w.rng.int(20) * 100;
        w.partitionPeers(leader, true);
        w.partitionDcs(leader, true);
        await w.run(w.now + down);
        w.partitionPeers(leader, false);
        w.partitionDcs(leader, false);
        await w.run(w.now + 1000 + w.rng.int(30) * 100);
      }
    },
  },
  {
    label: 'old primary keeps running with its agent frozen',
    takeOver: 'maybe',
    run: async (w, leader) => {
      w.freezeAgent(leader, true);
      await w.run(w.now + 45_000);
      w.freezeAgent(leader, false);
      await w.run(w.now + 10_000);
    },
  },
  {
    label: 'old primary frozen and cut off from the standbys, then it wakes up',
    takeOver: 'always',
    run: async (w, leader) => {
      w.freezeAgent(leader, true);
      w.partitionPeers(leader, true);
      await w.run(w.now + 8_000);
      w.freezeAgent(leader, false);
      await w.run(w.now + 20_000);
    },
  },
];

for (const fault of FAULTS) {
  test(`fault: ${fault.label} (every mode, seeds 1-3)`, async () => {
    for (const mode of MODES) {
      for (const seed of [1, 2, 3]) {
        const { w, leader, standbys } = await healthy({ seed, config: mode.config });
        await fault.run(w, leader, standbys);
        const where = `${mode.label} seed ${seed}`;
        if (fault.takeOver === 'never') assert.equal(w.takeOvers.length, 0, `${where}: a take-over\n${show(w)}`);
        if (fault.takeOver === 'always') assert.ok(w.takeOvers.length >= 1, `${where}: no take-over\n${show(w)}`);
        w.healAll();
        assert.ok((await w.runUntilConverged(w.now + 180_000)) !== undefined, `${where}: ${w.convergence()}\n${show(w)}`);
        assert.deepEqual(w.violations, [], `${where}\n${show(w)}`);
      }
    }
  });
}

test('a slow standby (far behind): the one ahead is promoted, nothing lost', async () => {
  for (const mode of MODES) {
    for (const seed of SEEDS) {
      const { w, leader } = await healthy({ seed, config: mode.config, nodes: { n0: {}, n1: {}, n2: { lagBytes: 40_000 } } });
      w.kill(leader);
      await until(w, 60_000, newPrimary(w, leader));
      w.healAll();
      assert.ok((await w.runUntilConverged(w.now + 180_000)) !== undefined, `${mode.label} seed ${seed}: ${w.convergence()}`);
      assert.deepEqual(w.violations, [], `${mode.label} seed ${seed}\n${show(w)}`);
    }
  }
});

// Randomized: every fault kind of src/sim/random.ts (host and agent kills, postmaster kills,
// partitions from etcd and from the peers, etcd down, agents dead longer than ttl, agents frozen,
// cuts between two hosts) on 3 or 4 nodes with random lags and tags, then healed.
const RANDOM_SEEDS = Number(process.env['VIGIL_FAST_SEEDS'] ?? 10);
for (const mode of MODES) {
  test(`randomized fault runs with the fast failover, ${mode.label} (${RANDOM_SEEDS} seeds)`, async () => {
    const failures: string[] = [];
    let takeOvers = 0;
    for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
      const r = await randomRun(seed, { config: mode.config, fastFailover: true });
      takeOvers += r.world.takeOvers.length;
      if (r.violations.length === 0 && r.notConverged === undefined) continue;
      const why = [...r.violations, ...(r.notConverged !== undefined ? [`did not converge: ${r.notConverged}`] : [])];
      failures.push(`seed ${seed}: ${why.slice(0, 3).join('; ')}\n  replay: randomRun(${seed}, { config: ${JSON.stringify(mode.config)}, fastFailover: true }); faults:\n    ${r.script.join('\n    ')}`);
    }
    assert.deepEqual(failures, []);
    assert.ok(takeOvers > 0, 'some fault led to a take-over');
  });
}
