// Randomized fault runs over the simulator (tests only): bootstrap a cluster, inject a seeded
// sequence of faults, heal everything, and require convergence within a bound. Invariants are
// checked by the world after every step.

import { World, type NodeOptions } from './world.ts';
import type { DynamicConfig } from '../core/model.ts';

export interface RandomRunResult {
  seed: number;
  /** The faults injected, in order (to replay by hand). */
  script: string[];
  violations: string[];
  /** Why the cluster did not converge after healing (undefined: it did). */
  notConverged: string | undefined;
  world: World;
}

export interface RandomRunOptions {
  /** Simulated seconds of faults (default 400). */
  faultSeconds?: number;
  /** Seconds allowed to converge after healing (default 240). */
  convergeSeconds?: number;
  /** Dynamic configuration overrides. */
  config?: Partial<DynamicConfig>;
  /**
   * Also kill agents for longer than ttl (their PostgreSQL left running, so only the fencer stops
   * it) and model no fencer when false. Off by default so that recorded seeds replay as before.
   */
  longAgentFaults?: boolean;
  /** World option: model the fencer (default true). */
  fencing?: boolean;
  /**
   * Also kill an agent a moment after its PostgreSQL died, while it may be restarting it (the
   * shell's windows: a task half done, the fencer armed or not yet), and leave it dead for longer
   * than ttl. Off by default so that recorded seeds replay as before.
   */
  shellFaults?: boolean;
  /** World option: the agents' lease keep-alive period, ms (default 0: off). */
  leaseKeepAliveMs?: number;
  /**
   * World option: the fast failover of synchronous modes (issue 13); the faults then also include
   * every other kind above, frozen agents and cuts between two hosts. Off by default.
   */
  fastFailover?: boolean;
}

export async function randomRun(seed: number, opts: RandomRunOptions = {}): Promise<RandomRunResult> {
  const faultMs = (opts.faultSeconds ?? 400) * 1000;
  const convergeMs = (opts.convergeSeconds ?? 240) * 1000;
  const setup = new World({ seed, nodes: {} }).rng; // a separate stream for the topology
  const count = 3 + setup.int(2);
  const nodes: Record<string, NodeOptions> = {};
  for (let i = 0; i < count; i++) {
    const o: NodeOptions = { lagBytes: setup.pick([0, 4000, 4000, 20000]) };
    if (i > 0 && setup.next() < 0.15) o.tags = { nofailover: true };
    else if (setup.next() < 0.15) o.tags = { failover_priority: 1 + setup.int(3) };
    nodes[`n${i}`] = o;
  }
  const w = new World({ seed, nodes, ...(opts.config !== undefined ? { config: opts.config } : {}), ...(opts.fencing !== undefined ? { fencing: opts.fencing } : {}), ...(opts.leaseKeepAliveMs !== undefined ? { leaseKeepAliveMs: opts.leaseKeepAliveMs } : {}), ...(opts.fastFailover === true ? { fastFailover: true } : {}) });
  const ttlMs = w.config.ttl * 1000;
  const names = Object.keys(nodes);
  const script: string[] = [];
  const at = (t: number, label: string, fn: () => void): void => {
    script.push(`at ${(t / 1000).toFixed(1)} ${label}`);
    w.at(t, label, fn);
  };
  at(0, `start ${names.join(' ')}`, () => names.forEach((n) => w.start(n)));

  const rng = w.rng;
  let t = 40_000;
  while (t < 40_000 + faultMs) {
    t += (1 + rng.int(40)) * 1000 + rng.int(10) * 100;
    const n = rng.pick(names);
    const heal = t + (5 + rng.int(60)) * 1000;
    switch (rng.int(opts.fastFailover === true ? 13 : opts.shellFaults === true ? 11 : opts.longAgentFaults === true ? 10 : 9)) {
      case 0:
        at(t, `kill ${n}`, () => w.kill(n));
        at(heal, `restart ${n}`, () => w.start(n));
        break;
      case 1:
        at(t, `kill-agent ${n}`, () => w.killAgent(n));
        at(t + (1 + rng.int(10)) * 1000, `restart ${n}`, () => w.start(n));
        break;
      case 2:
        at(t, `kill-pg ${n}`, () => w.killPg(n));
        break;
      case 3:
        at(t, `stop ${n}`, () => w.stop(n));
        at(heal, `restart ${n}`, () => w.start(n));
        break;
      case 4:
        at(t, `partition-dcs ${n}`, () => w.partitionDcs(n, true));
        at(heal, `heal-dcs ${n}`, () => w.partitionDcs(n, false));
        break;
      case 5:
        at(t, `partition-peers ${n}`, () => w.partitionPeers(n, true));
        at(heal, `heal-peers ${n}`, () => w.partitionPeers(n, false));
        break;
      case 6:
        at(t, 'dcs-down', () => w.dcsUp(false));
        at(t + (2 + rng.int(40)) * 1000, 'dcs-up', () => w.dcsUp(true));
        break;
      case 7:
        at(t, rng.next() < 0.5 ? 'writes-off' : 'writes-on', () => (w.writing = !w.writing));
        break;
      case 9:
        // Longer than ttl: a replica is promoted while this PostgreSQL may still run.
        at(t, `kill-agent-long ${n}`, () => w.killAgent(n));
        at(t + ttlMs + (5 + rng.int(30)) * 1000, `restart ${n}`, () => w.start(n));
        break;
      case 10: {
        // The postmaster dies; the agent dies while it may be restarting it.
        const k = t + (1 + rng.int(25)) * 100;
        at(t, `kill-pg ${n}`, () => w.killPg(n));
        at(k, `kill-agent-long ${n}`, () => w.killAgent(n));
        at(k + ttlMs + (5 + rng.int(30)) * 1000, `restart ${n}`, () => w.start(n));
        break;
      }
      case 11:
        // SIGSTOP of an agent (its PostgreSQL and fencer run on), for up to twice ttl.
        at(t, `freeze-agent ${n}`, () => w.freezeAgent(n, true));
        at(t + (1 + rng.int(2 * w.config.ttl)) * 1000, `thaw-agent ${n}`, () => w.freezeAgent(n, false));
        break;
      case 12: {
        const m = rng.pick(names.filter((x) => x !== n));
        at(t, `cut ${n} ${m}`, () => w.cut(n, m, true));
        at(heal, `uncut ${n} ${m}`, () => w.cut(n, m, false));
        break;
      }
      default:
        at(t, 'heal-all', () => w.healAll());
    }
  }
  const end = Math.max(t, ...script.map((l) => Number(l.split(' ')[1]) * 1000)) + 1000;
  at(end, 'heal-all', () => {
    w.healAll();
    w.writing = true;
  });
  await w.run(end + 100);
  let notConverged: string | undefined;
  if ((await w.runUntilConverged(w.now + convergeMs)) === undefined) notConverged = w.convergence();
  return { seed, script: script.sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1])), violations: w.violations, notConverged, world: w };
}
