// Every plan survives interruption (design.md section 3, principle 4).
//
// For a set of interesting decisions (bootstrap finished, leader race won, demotion, crash restart,
// following a new upstream, pg_rewind), the simulator runs only the first k actions of the plan
// (k = 0..n), then crashes the node: the whole host (PostgreSQL dies too) or only the agent
// (PostgreSQL keeps running, memory and the background task are lost). The node is restarted,
// every fault is healed, and the world must converge to one primary with every other node
// streaming from it, with the safety invariants (src/sim/world.ts) holding at every step.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Decision } from '../core/model.ts';
import { World } from './world.ts';

interface Case {
  name: string;
  /** Schedule the story that leads to the decision. */
  setup: (w: World) => void;
  /** The decision to cut short (the first one that matches). */
  match: (node: string, d: Decision) => boolean;
}

const has = (d: Decision, type: string, kind?: string): boolean =>
  d.actions.some((a) => a.type === type && (kind === undefined || (a.type === 'startTask' && a.task.kind === kind)));

function cluster(w: World): void {
  w.at(0, 'start n0', () => w.start('n0'));
  w.at(5_000, 'start n1 n2', () => {
    w.start('n1');
    w.start('n2');
  });
}

const cases: Case[] = [
  {
    name: 'bootstrap finished (/initialize, /config, leader key)',
    setup: (w) => w.at(0, 'start n0 n1 n2', () => ['n0', 'n1', 'n2'].forEach((n) => w.start(n))),
    match: (_n, d) => d.reason === 'initialized a new cluster',
  },
  {
    name: 'leader race won (acquire, promote)',
    setup: (w) => {
      cluster(w);
      w.at(60_000, 'kill n0', () => w.kill('n0'));
      w.at(150_000, 'restart n0', () => w.start('n0'));
    },
    match: (_n, d) => has(d, 'acquireLeader') && has(d, 'startTask', 'promote'),
  },
  {
    name: 'demotion of a primary that lost the DCS',
    setup: (w) => {
      cluster(w);
      w.at(60_000, 'partition-dcs n0', () => w.partitionDcs('n0', true));
      w.at(120_000, 'heal-dcs n0', () => w.partitionDcs('n0', false));
    },
    match: (_n, d) => has(d, 'startTask', 'demote'),
  },
  {
    name: 'a demoted primary that diverged stops to repair (then pg_rewind)',
    setup: (w) => {
      cluster(w);
      // n0 loses the DCS and its peers: it demotes offline with WAL nobody received, n1 or n2
      // takes over, and n0 comes back as a running replica that cannot stream.
      w.at(60_000, 'partition n0', () => {
        w.partitionDcs('n0', true);
        w.partitionPeers('n0', true);
      });
      w.at(130_000, 'heal n0', () => {
        w.partitionDcs('n0', false);
        w.partitionPeers('n0', false);
      });
    },
    match: (n, d) => n === 'n0' && has(d, 'startTask', 'stop'),
  },
  {
    name: 'crash restart of the primary in place',
    setup: (w) => {
      cluster(w);
      w.at(60_000, 'kill-pg n0', () => w.killPg('n0'));
    },
    match: (_n, d) => d.reason === 'starting primary after failure',
  },
  {
    name: 'following a new upstream',
    setup: (w) => {
      cluster(w);
      w.at(60_000, 'kill n0', () => w.kill('n0'));
      w.at(150_000, 'restart n0', () => w.start('n0'));
    },
    match: (_n, d) => has(d, 'followUpstream'),
  },
  {
    name: 'the old primary rejoins through pg_rewind',
    setup: (w) => {
      cluster(w);
      w.at(60_000, 'kill n0', () => w.kill('n0'));
      w.at(150_000, 'restart n0', () => w.start('n0'));
    },
    match: (_n, d) => has(d, 'startTask', 'rewind'),
  },
];

interface Outcome {
  planLength: number | undefined;
  node: string | undefined;
  world: World;
  converged: number | undefined;
}

/** Run a case; with `cut`, crash the matching node after k actions of the matching plan. */
async function runCase(c: Case, seed: number, cut?: { k: number; crash: 'host' | 'agent' }): Promise<Outcome> {
  const w = new World({ seed, nodes: { n0: {}, n1: {}, n2: {} } });
  c.setup(w);
  let planLength: number | undefined;
  let node: string | undefined;
  w.intercept = (name, decision) => {
    if (planLength !== undefined || !c.match(name, decision)) return undefined;
    planLength = decision.actions.length;
    node = name;
    if (cut === undefined) return undefined;
    const back = w.now + (cut.crash === 'host' ? 20_000 : 3_000);
    w.at(back, `restart ${name}`, () => w.start(name));
    return cut;
  };
  await w.run(200_000);
  w.at(w.now + 100, 'heal-all', () => w.healAll());
  const converged = await w.runUntilConverged(w.now + 300_000);
  return { planLength, node, world: w, converged };
}

function explain(o: Outcome): string {
  return [...o.world.violations, `convergence: ${o.world.convergence() ?? 'ok'}`, ...o.world.trace.map((l) => `${(l.at / 1000).toFixed(1)} ${l.node} ${l.text}`)].join('\n');
}

for (const c of cases) {
  test(`interrupted plan: ${c.name}`, async () => {
    const seed = 11;
    const dry = await runCase(c, seed);
    assert.ok(dry.planLength !== undefined && dry.planLength > 0, `the story never produced the plan:\n${explain(dry)}`);
    assert.deepEqual(dry.world.violations, [], explain(dry));
    assert.ok(dry.converged !== undefined, explain(dry));
    for (const crash of ['host', 'agent'] as const) {
      for (let k = 0; k <= dry.planLength; k++) {
        const o = await runCase(c, seed, { k, crash });
        const where: string = `${c.name}: ${crash} crash of ${o.node} after ${k} of ${dry.planLength} actions`;
        assert.equal(o.planLength, dry.planLength, `${where}: the same plan was cut`);
        assert.ok(o.world.trace.some((l) => l.text === `CRASH (${crash})`), `${where}: the crash happened`);
        assert.deepEqual(o.world.violations, [], `${where}\n${explain(o)}`);
        assert.ok(o.converged !== undefined, `${where}: did not converge\n${explain(o)}`);
        // A sane end state: one system identifier everywhere, the leader on the newest timeline.
        const sysids = new Set([...o.world.nodes.values()].map((n) => n.pg.data?.sysid));
        assert.equal(sysids.size, 1, `${where}: one cluster`);
        const leader = o.world.node(o.world.dcs.leader?.value ?? '');
        const maxTl = Math.max(...[...o.world.nodes.values()].map((n) => n.pg.timeline ?? 0));
        assert.equal(leader.pg.timeline, maxTl, `${where}: the leader is on the newest timeline`);
      }
    }
  });
}
