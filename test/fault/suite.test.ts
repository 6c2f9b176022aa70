// Fault-injection suite: "no acknowledged write lost (synchronous modes), never two primaries". A
// three-node cluster runs in network namespaces (lib/netns.ts), one cluster per replication mode;
// writers insert unique ids through whichever node is primary (plus one sentinel per node); faults
// are injected one at a time, each bounded and healed; the checker then compares every
// acknowledged id with the final primary. docs/fault-testing.md explains all of it.
//
//   VIGIL_FAULTS=long (default; npm run test:faults): per mode, every fault type, the failover
//       faults with lagging replicas, the loss-window test, and a seeded random sequence
//       (VIGIL_FAULTS_SEED=<n> replays one; the seed is printed). Modes: async, sync, quorum.
//   VIGIL_FAULTS=short (scripts/test.sh, CI): async with lag (a loss must be seen, within the
//       bound), the primary's agent killed for longer than ttl (fencing), sync with the same lag
//       (no loss). Modes: async, sync.
//   VIGIL_FAULTS=partitions: the fast-failover rule's faults (issue 13), per mode (default sync,
//       quorum; etcd only): the primary cut from its standbys but not from etcd, cut from etcd but
//       not from its standbys, and a host crash (agent, fencer and PostgreSQL SIGKILLed), each
//       without and with lagging replicas. VIGIL_FAULTS_ONLY=standbys,etcd,crash picks among them.
//       (VIGIL_FAULTS_DCS is ignored: etcd only, the rule needs etcd's lease reading and Txn.)
//   VIGIL_FAULTS_VIGIL_EXTRA='<YAML or JSON mapping>' is deep-merged into every node's configuration
//       file at any level (e.g. to turn a setting on).
//   VIGIL_FAULTS_MODES=async,sync,quorum,sync-strict overrides the modes of any level.
//   VIGIL_FAULTS_KEEP=1 keeps every cluster's directory (agent logs, reports), not only failed ones.
//   VIGIL_FAULTS_DCS=etcd,zookeeper (default both): the DCS runs to include. Every mode above runs
//       on etcd v3. The ZooKeeper run (a real ZooKeeper 3.8 in the DCS namespace, the agents on its
//       `zookeeper` section) is one more cluster in sync mode: short, the primary cut from
//       ZooKeeper under the synchronous write load; long, that cut with and without lagging
//       replicas plus every fault that needs no fencing and the agent killed for longer than ttl.
//
// Asserted in every mode: no split brain. async: every lost write within the documented bound, and
// the loss-window test must see at least one loss. sync/quorum/sync-strict: no lost write at all.
// Needs root and `ip netns`; skipped otherwise (the reason is printed).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FaultCluster, FAULT_DCS, FAULT_KINDS, SAFE_FAULT_KINDS, FENCING_FAULT_KINDS, type FaultDcs, type FaultKind } from './lib/harness.ts';
import { netnsUnavailable } from './lib/netns.ts';
import { parseExtra } from '../../bench/lib/node-config.ts';
import { formatReport, verdict, isSynchronous, REPLICATION_MODES, type CheckReport, type ReplicationMode } from './lib/checker.ts';

const level = process.env['VIGIL_FAULTS'] === 'short' ? 'short' : process.env['VIGIL_FAULTS'] === 'partitions' ? 'partitions' : 'long';
const modes = parseModes(process.env['VIGIL_FAULTS_MODES'], level === 'short' ? ['async', 'sync'] : level === 'partitions' ? ['sync', 'quorum'] : ['async', 'sync', 'quorum']);
const dcsRuns = parseDcs(process.env['VIGIL_FAULTS_DCS']);
const extra = process.env['VIGIL_FAULTS_VIGIL_EXTRA'] !== undefined ? [parseExtra(process.env['VIGIL_FAULTS_VIGIL_EXTRA'])] : [];
const PARTITION_CASES = ['standbys', 'etcd', 'crash'] as const;
const only = (process.env['VIGIL_FAULTS_ONLY'] ?? PARTITION_CASES.join(',')).split(',').map((x) => x.trim()).filter(Boolean);
for (const o of only) if (!(PARTITION_CASES as readonly string[]).includes(o)) throw new Error(`VIGIL_FAULTS_ONLY: unknown case "${o}" (known: ${PARTITION_CASES.join(', ')})`);
const seed = Number(process.env['VIGIL_FAULTS_SEED'] ?? Date.now() % 1_000_000);
const unavailable = await netnsUnavailable();
const skip = unavailable === undefined ? false : `network namespaces unavailable: ${unavailable}`;
if (skip !== false) console.log(`fault suite skipped: ${skip}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Attempts of the lagging partition before concluding that the async loss window never opened. */
const LOSS_ATTEMPTS = 3;

function parseModes(raw: string | undefined, dflt: ReplicationMode[]): ReplicationMode[] {
  if (raw === undefined || raw.trim() === '') return dflt;
  const out: ReplicationMode[] = [];
  for (const m of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(REPLICATION_MODES as readonly string[]).includes(m)) throw new Error(`VIGIL_FAULTS_MODES: unknown mode "${m}" (known: ${REPLICATION_MODES.join(', ')})`);
    out.push(m as ReplicationMode);
  }
  return out;
}

function parseDcs(raw: string | undefined): FaultDcs[] {
  if (raw === undefined || raw.trim() === '') return [...FAULT_DCS];
  const out: FaultDcs[] = [];
  for (const d of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(FAULT_DCS as readonly string[]).includes(d)) throw new Error(`VIGIL_FAULTS_DCS: unknown DCS "${d}" (known: ${FAULT_DCS.join(', ')})`);
    out.push(d as FaultDcs);
  }
  return out;
}

/** Deterministic PRNG (mulberry32) so a random sequence can be replayed from its seed. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Step {
  kind: FaultKind;
  lag?: boolean;
}

/** One line per scenario for the closing summary. */
const summary: string[] = [];

after(() => {
  if (summary.length === 0) return;
  console.log(['== fault suite summary (level ' + level + ', seed ' + seed + ')', ...summary].join('\n'));
});

/**
 * One cluster (fresh, on `dcs`, in replication `mode`) for the tests `body` declares; `scenario`
 * runs faults under load, verifies, prints the report and asserts the mode's guarantees.
 */
function clusterSuite(dcs: FaultDcs, mode: ReplicationMode, body: (scenario: (title: string, steps: Step[]) => Promise<CheckReport>) => void): void {
  const prefix = dcs === 'etcd' ? '' : `${dcs} `;
  describe(`${prefix}replication ${mode}`, { skip }, () => {
    let fc: FaultCluster | undefined;
    let failed = false;

    before(async () => {
      fc = await FaultCluster.start({ replication: mode, dcs, extra });
    });

    after(async () => {
      if (fc === undefined) return;
      // Keep the logs of a failed run for the report (of every run with VIGIL_FAULTS_KEEP=1).
      const keep = failed || process.env['VIGIL_FAULTS_KEEP'] === '1';
      await fc.close(keep);
      if (keep) console.log(`logs kept in ${fc.base}`);
    });

    /** Runs faults under load, verifies, prints the report, asserts the mode's guarantees. */
    async function scenario(title: string, steps: Step[]): Promise<CheckReport> {
      const c = fc;
      if (c === undefined) throw new Error('the cluster did not start');
      c.faults.length = 0;
      c.writers.length = 0;
      c.startWriters();
      try {
        await sleep(2000);
        for (const s of steps) await c.inject(s.kind, { lag: s.lag === true });
        await sleep(1000);
      } catch (err) {
        failed = true;
        await c.stopWriters();
        throw err;
      }
      const report = await c.verify();
      const name = `${dcs === 'etcd' ? '' : `${dcs}-`}${mode}-${title}`;
      const text = formatReport(name, report, mode);
      console.log(text);
      await writeFile(join(c.base, `${name.replace(/\W+/g, '-')}.txt`), text + '\n' + c.log.join('\n') + '\n').catch(() => undefined);
      const problems = verdict(report, mode);
      summary.push(
        `${name}: ${report.faults.length} faults, acknowledged ${report.totalAcked}, lost ${report.lost.length} (outside bound ${report.unbounded.length}), ` +
          `split-brain windows ${report.splitBrain.length}, max unavailability ${Math.round(Math.max(0, ...report.faults.map((f) => f.unavailableMs)))} ms, ` +
          `max recovery ${Math.round(Math.max(0, ...report.faults.map((f) => f.recoveryMs)))} ms: ${problems.length === 0 ? 'ok' : problems.join('; ')}`,
      );
      if (problems.length > 0) {
        failed = true;
        assert.fail(`${name}: ${problems.join('; ')} (report above)`);
      }
      return report;
    }

    body(scenario);
  });
}

for (const mode of dcsRuns.includes('etcd') ? modes : []) {
  clusterSuite('etcd', mode, (scenario) => {
    /**
     * The loss window: the primary is partitioned while its replicas are throttled behind it. In
     * async mode the checker must see a loss (within the bound) in one of LOSS_ATTEMPTS tries, or
     * the test fails saying the window never opened; synchronous modes run the same conditions and
     * must lose nothing in any attempt.
     */
    async function lossWindow(attempts: number): Promise<void> {
      const seen: number[] = [];
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const r = await scenario(`loss-window-${attempt}`, [{ kind: 'partition-primary', lag: true }]);
        seen.push(r.lost.length);
        if (!isSynchronous(mode) && r.lost.length > 0) return;
      }
      if (!isSynchronous(mode)) {
        assert.fail(
          `the loss window was not opened: ${attempts} partitions of a primary with lagging replicas lost no acknowledged write, ` +
            'so this run does not show the checker can see loss (were the replicas really behind? see the lag in the notes)',
        );
      }
    }

    const lossTitle = isSynchronous(mode)
      ? `${mode}: a partitioned primary whose replicas lag loses no acknowledged write`
      : 'async: a partitioned primary whose replicas lag loses its last writes, within the bound';

    if (level === 'partitions') {
      // Issue 13's faults for the fast-failover rule; with the rule off they check the lease rule.
      if (only.includes('standbys')) {
        test(`${mode}: the primary cut from its standbys but not from etcd: no split brain, no lost write`, { timeout: 400_000 }, async () => {
          await scenario('cut-from-standbys', [{ kind: 'partition-primary-standbys' }, { kind: 'partition-primary-standbys', lag: true }]);
        });
      }
      if (only.includes('etcd')) {
        test(`${mode}: the primary cut from etcd but not from its standbys: no split brain, no lost write`, { timeout: 400_000 }, async () => {
          await scenario('cut-from-etcd', [{ kind: 'partition-primary-etcd' }, { kind: 'partition-primary-etcd', lag: true }]);
        });
      }
      if (only.includes('crash')) {
        test(`${mode}: host crash of the primary (agent, fencer, PostgreSQL): no split brain, no lost write`, { timeout: 400_000 }, async () => {
          await scenario('host-crash', [{ kind: 'host-crash' }, { kind: 'host-crash', lag: true }]);
        });
      }
      return;
    }

    if (level === 'short') {
      test(lossTitle, { timeout: 300_000 }, async () => {
        await lossWindow(isSynchronous(mode) ? 1 : LOSS_ATTEMPTS);
      });
      if (mode === modes[0]) {
        test(`${mode}: the primary's agent killed for longer than ttl (fencing): no split brain`, { timeout: 240_000 }, async () => {
          await scenario('kill-agent-long', [{ kind: 'kill-agent-long' }]);
        });
      }
      return;
    }

    test(`${mode}: every fault that needs no fencing, no lag`, { timeout: 900_000 }, async () => {
      await scenario('safe-faults', SAFE_FAULT_KINDS.map((kind) => ({ kind })));
    });
    test(`${mode}: failover faults while the replicas lag`, { timeout: 600_000 }, async () => {
      await scenario('lagging', [
        { kind: 'partition-primary', lag: true },
        { kind: 'partition-primary-etcd', lag: true },
        { kind: 'kill-postgres', lag: true },
        { kind: 'switchover', lag: true },
      ]);
    });
    for (const kind of FENCING_FAULT_KINDS) {
      test(`${mode}: ${kind} (fencing), with and without lag`, { timeout: 400_000 }, async () => {
        await scenario(kind, [{ kind }, { kind, lag: true }]);
      });
    }
    test(lossTitle, { timeout: 400_000 }, async () => {
      await lossWindow(isSynchronous(mode) ? 2 : LOSS_ATTEMPTS);
    });
    test(`${mode}: random sequence (seed ${seed})`, { timeout: 900_000 }, async () => {
      console.log(`random fault sequence seed ${seed} (VIGIL_FAULTS_SEED=${seed} replays it, in every mode)`);
      // The same seed gives every mode the same sequence.
      const rnd = prng(seed);
      const steps = Array.from({ length: 8 }, () => ({ kind: FAULT_KINDS[Math.floor(rnd() * FAULT_KINDS.length)]!, lag: rnd() < 0.3 }));
      console.log(`sequence: ${steps.map((s) => `${s.kind}${s.lag ? '+lag' : ''}`).join(', ')}`);
      await scenario(`random-${seed}`, steps);
    });
  });
}

if (dcsRuns.includes('zookeeper') && level !== 'partitions') {
  // The issue's ZooKeeper case: the primary cut from ZooKeeper (its session expires there, the
  // leader znode with it) while it keeps serving clients and replicas; synchronous mode must not
  // lose an acknowledged write, and there must never be two primaries.
  clusterSuite('zookeeper', 'sync', (scenario) => {
    test('zookeeper sync: the primary cut from ZooKeeper under load: no split brain, no lost write', { timeout: 300_000 }, async () => {
      await scenario('partition-primary-zookeeper', [{ kind: 'partition-primary-etcd' }]);
    });
    if (level === 'short') return;
    test('zookeeper sync: the primary cut from ZooKeeper while the replicas lag', { timeout: 300_000 }, async () => {
      await scenario('partition-primary-zookeeper-lag', [{ kind: 'partition-primary-etcd', lag: true }]);
    });
    test('zookeeper sync: every fault that needs no fencing, no lag', { timeout: 900_000 }, async () => {
      await scenario('safe-faults', SAFE_FAULT_KINDS.map((kind) => ({ kind })));
    });
    test("zookeeper sync: the primary's agent killed for longer than ttl (fencing)", { timeout: 400_000 }, async () => {
      await scenario('kill-agent-long', [{ kind: 'kill-agent-long' }, { kind: 'kill-agent-long', lag: true }]);
    });
  });
}
