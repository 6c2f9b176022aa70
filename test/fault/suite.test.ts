// Fault-injection suite: "no acknowledged write lost, never two primaries". A three-node cluster
// runs in network namespaces (lib/netns.ts); writers insert unique ids through whichever node is
// primary (plus one sentinel per node); faults are injected one at a time, each bounded and healed;
// the checker then compares every acknowledged id with the final primary. docs/fault-testing.md.
//
//   VIGIL_FAULTS=short (default): partition, PostgreSQL crash, switchover, and a partition while the
//                                 replicas lag (asynchronous loss must be visible), < 3 minutes.
//   VIGIL_FAULTS=long:            every fault type, with and without replica lag, then a random
//                                 sequence (VIGIL_FAULTS_SEED=<n> replays one; the seed is printed).
//
// Asserts in asynchronous mode: no split brain ever; every lost write within the documented bound.
// Needs root and `ip netns`; skipped otherwise (the reason is printed).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FaultCluster, FAULT_KINDS, UNSAFE_FAULT_KINDS, type FaultKind } from './lib/harness.ts';
import { netnsUnavailable } from './lib/netns.ts';
import { formatReport, type CheckReport } from './lib/checker.ts';

const mode = process.env['VIGIL_FAULTS'] === 'long' ? 'long' : 'short';
const unavailable = await netnsUnavailable();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deterministic PRNG (mulberry32) so a random sequence can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let fc: FaultCluster | undefined;
let failed = false;

before(async () => {
  if (unavailable !== undefined) return;
  fc = await FaultCluster.start();
});

after(async () => {
  if (fc === undefined) return;
  // Keep the logs of a failed run for the report.
  await fc.close(failed);
  if (failed) console.log(`logs kept in ${fc.base}`);
});

/** Runs faults under load, verifies, prints the table, asserts the async guarantees. */
async function scenario(title: string, steps: { kind: FaultKind; lag?: boolean }[]): Promise<CheckReport> {
  const c = fc!;
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
  const text = formatReport(title, report);
  console.log(text);
  await writeFile(join(c.base, `${title.replace(/\W+/g, '-')}.txt`), text + '\n' + c.log.join('\n') + '\n').catch(() => undefined);
  try {
    assert.equal(report.splitBrain.length, 0, `split brain:\n${text}`);
    assert.deepEqual(report.unbounded, [], `writes lost outside the asynchronous bound:\n${text}`);
    assert.ok(report.totalAcked > 0, 'the writers acknowledged nothing');
  } catch (err) {
    failed = true;
    throw err;
  }
  return report;
}

const skip = unavailable === undefined ? false : `network namespaces unavailable: ${unavailable}`;

if (mode === 'short') {
  test('short: partition, PostgreSQL crash and switchover under load', { skip, timeout: 150_000 }, async () => {
    await scenario('short', [{ kind: 'partition-primary' }, { kind: 'kill-postgres' }, { kind: 'switchover' }]);
  });
} else {
  test('long: every fault type without replication lag', { skip, timeout: 900_000 }, async () => {
    await scenario(
      'long-every-fault',
      FAULT_KINDS.map((kind) => ({ kind })),
    );
  });
  test('long: failover faults while the replicas lag', { skip, timeout: 600_000 }, async () => {
    await scenario('long-lagging', [
      { kind: 'partition-primary', lag: true },
      { kind: 'partition-primary-etcd', lag: true },
      { kind: 'kill-postgres', lag: true },
      { kind: 'switchover', lag: true },
    ]);
  });
  // Known to fail (split brain): reported as TODO so the run shows the table without failing.
  for (const kind of UNSAFE_FAULT_KINDS) {
    test(`long: ${kind} (no watchdog)`, { skip, todo: 'Vigil has no watchdog: an unsupervised or resumed primary can accept writes beside a new one', timeout: 300_000 }, async () => {
      await scenario(`long-unsafe-${kind}`, [{ kind }, { kind, lag: true }]);
    });
  }
  test('long: random sequence', { skip, timeout: 900_000 }, async () => {
    const seed = Number(process.env['VIGIL_FAULTS_SEED'] ?? Date.now() % 1_000_000);
    console.log(`random fault sequence seed ${seed} (VIGIL_FAULTS_SEED=${seed} replays it)`);
    const rnd = prng(seed);
    const steps = Array.from({ length: 8 }, () => ({ kind: FAULT_KINDS[Math.floor(rnd() * FAULT_KINDS.length)]!, lag: rnd() < 0.3 }));
    await scenario(`long-random-${seed}`, steps);
  });
}

// Both modes: asynchronous replication can lose acknowledged writes, and the checker must see it.
test('async: a partitioned primary whose replicas lag loses its last writes, within the bound, without split brain', { skip, timeout: 300_000 }, async () => {
  let report: CheckReport | undefined;
  // Whether a loss happens depends on how much WAL was still unsent at the partition; a few tries
  // make the demonstration dependable without asserting on timing.
  for (let attempt = 1; attempt <= 3; attempt++) {
    report = await scenario(`async-loss-${attempt}`, [{ kind: 'partition-primary', lag: true }]);
    if (report.lost.length > 0) break;
  }
  assert.ok(report !== undefined && report.lost.length > 0, 'no acknowledged write was lost: the checker did not demonstrate it can see loss');
});
