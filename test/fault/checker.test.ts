// The checker's definitions on hand-made histories (no servers): it must see loss, tell losses
// within the asynchronous bound from those outside it, flag interleaved acknowledgements, and
// give each replication mode its verdict.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { check, splitBrainWindows, formatReport, verdict, type Ack, type FaultRecord } from './lib/checker.ts';

function ack(id: number, node: string, epoch: number, at: number, lsn: number, writer = 'main'): Ack {
  return { id, writer, node, at, serverUs: at * 1000, lsn, epoch };
}

const fault: FaultRecord = { name: 'partition-primary', start: 1000, healed: 2000, recovered: 3000, primaryBefore: 'a', primaryAfter: 'b' };

test('a clean handover has no split brain and no loss', () => {
  const acks = [ack(1, 'a', 1, 100, 10), ack(2, 'a', 1, 900, 20), ack(3, 'b', 2, 1500, 30), ack(4, 'b', 2, 2500, 40)];
  const r = check({ acks, mainWriter: 'main', present: new Set([1, 2, 3, 4]), faults: [fault], ttlSeconds: 0.5, maximumLagOnFailover: 100 });
  assert.deepEqual(r.lost, []);
  assert.deepEqual(r.splitBrain, []);
  assert.equal(r.faults[0]!.acked, 2);
  assert.equal(r.faults[0]!.unavailableMs, 1000);
  assert.equal(r.faults[0]!.recoveryMs, 2000);
});

test('losses of the last writes of the old primary are within the bound', () => {
  // The old primary acknowledged 2..4 near the fault; the new one never got them.
  const acks = [ack(1, 'a', 1, 100, 1000), ack(2, 'a', 1, 800, 1050), ack(3, 'a', 1, 950, 1100), ack(4, 'a', 1, 1100, 1150), ack(5, 'b', 2, 2000, 1060)];
  const r = check({ acks, mainWriter: 'main', present: new Set([1, 5]), faults: [fault], ttlSeconds: 0.5, maximumLagOnFailover: 100 });
  assert.deepEqual(r.lost, [2, 3, 4]);
  assert.deepEqual(r.unbounded, []);
  // Highest position acknowledged at or before start - ttl (500) is 1000.
  assert.equal(r.faults[0]!.boundLsn, 1000 - 100);
});

test('an old write lost beyond maximum_lag_on_failover is outside the bound', () => {
  const acks = [ack(1, 'a', 1, 100, 100), ack(2, 'a', 1, 600, 5000), ack(3, 'b', 2, 2000, 5100)];
  const r = check({ acks, mainWriter: 'main', present: new Set([2, 3]), faults: [fault], ttlSeconds: 0.2, maximumLagOnFailover: 1000 });
  assert.deepEqual(r.lost, [1]);
  assert.deepEqual(r.unbounded, [1]);
});

test('a lost write acknowledged by the new primary, or outside every fault, is outside the bound', () => {
  const acks = [ack(1, 'a', 1, 900, 100), ack(2, 'b', 2, 2000, 200), ack(3, 'b', 2, 5000, 300)];
  const r = check({ acks, mainWriter: 'main', present: new Set([1]), faults: [fault], ttlSeconds: 0.5, maximumLagOnFailover: 100 });
  assert.deepEqual(r.unbounded, [2, 3]);
  assert.match(formatReport('t', r), /NO \(1\)/);
});

test('interleaved acknowledgements from two nodes are a split brain', () => {
  const acks = [
    ack(1, 'a', 1, 100, 10),
    ack(2, 'b', 2, 150, 10, 'sentinel-b'),
    ack(3, 'a', 1, 200, 20),
    ack(4, 'b', 2, 400, 30, 'sentinel-b'),
    ack(5, 'c', 3, 500, 30),
  ];
  const w = splitBrainWindows(acks);
  assert.equal(w.length, 1);
  assert.equal(w[0]!.a.node, 'a');
  assert.equal(w[0]!.b.node, 'b');
  assert.equal(w[0]!.fromUs, 150_000);
  assert.equal(w[0]!.toUs, 200_000);
  assert.match(formatReport('t', check({ acks, mainWriter: 'main', present: new Set([1, 2, 3, 4, 5]), faults: [], ttlSeconds: 1, maximumLagOnFailover: 1 })), /split-brain windows: 1/);
});

test('the same node in two epochs, or two writers on one node, is not a split brain', () => {
  const acks = [ack(1, 'a', 1, 100, 10), ack(2, 'a', 2, 150, 10, 's'), ack(3, 'a', 1, 200, 20), ack(4, 'b', 3, 300, 30)];
  assert.deepEqual(splitBrainWindows(acks), []);
});

test('verdict: async tolerates losses within the bound; synchronous modes tolerate none', () => {
  const acks = [ack(1, 'a', 1, 100, 1000), ack(2, 'a', 1, 950, 1100), ack(3, 'b', 2, 2000, 1060)];
  const r = check({ acks, mainWriter: 'main', present: new Set([1, 3]), faults: [fault], ttlSeconds: 0.5, maximumLagOnFailover: 100 });
  assert.deepEqual(r.lost, [2]);
  assert.deepEqual(verdict(r, 'async'), []);
  for (const mode of ['sync', 'quorum', 'sync-strict'] as const) {
    const v = verdict(r, mode);
    assert.equal(v.length, 1);
    assert.match(v[0]!, new RegExp(`1 acknowledged write\\(s\\) lost in ${mode} mode`));
  }
  assert.match(formatReport('t', r, 'sync'), /NO \(none allowed\)[\s\S]*verdict \(sync\): 1 acknowledged/);
  assert.match(formatReport('t', r, 'async'), /verdict \(async\): ok/);
});

test('verdict: a loss outside the bound fails async; split brain fails every mode; no acks fails', () => {
  const old = [ack(1, 'a', 1, 100, 100), ack(2, 'a', 1, 600, 5000), ack(3, 'b', 2, 2000, 5100)];
  const r = check({ acks: old, mainWriter: 'main', present: new Set([2, 3]), faults: [fault], ttlSeconds: 0.2, maximumLagOnFailover: 1000 });
  assert.match(verdict(r, 'async').join(), /1 write\(s\) lost outside the asynchronous bound/);
  const sb = [ack(1, 'a', 1, 100, 10), ack(2, 'b', 2, 150, 10, 's'), ack(3, 'a', 1, 200, 20)];
  const r2 = check({ acks: sb, mainWriter: 'main', present: new Set([1, 2, 3]), faults: [], ttlSeconds: 1, maximumLagOnFailover: 1 });
  for (const mode of ['async', 'sync', 'quorum'] as const) assert.match(verdict(r2, mode).join(), /1 split-brain window/);
  const r3 = check({ acks: [], mainWriter: 'main', present: new Set(), faults: [], ttlSeconds: 1, maximumLagOnFailover: 1 });
  assert.match(verdict(r3, 'async').join(), /acknowledged nothing/);
});

test('a write committed with the sync wait cancelled is never lost, but still counts as the node accepting writes', () => {
  // id 2 was committed on a with "canceling wait for synchronous replication" and did not survive.
  const cancelled: Ack = { ...ack(2, 'a', 1, 950, 1100), syncCancelled: true };
  const acks = [ack(1, 'a', 1, 100, 1000), cancelled, ack(3, 'b', 2, 2000, 1060)];
  const r = check({ acks, mainWriter: 'main', present: new Set([1, 3]), faults: [fault], ttlSeconds: 0.5, maximumLagOnFailover: 100 });
  assert.deepEqual(r.lost, []);
  assert.equal(r.totalAcked, 2);
  assert.equal(r.syncCancelled, 1);
  assert.deepEqual(verdict(r, 'sync'), []);
  // Node b accepting a write while a's cancelled-wait commit happened is a split brain.
  const overlap = [ack(1, 'a', 1, 100, 10), ack(2, 'b', 2, 150, 10, 's'), { ...ack(3, 'a', 1, 200, 20), syncCancelled: true }];
  const r2 = check({ acks: overlap, mainWriter: 'main', present: new Set([1, 2, 3]), faults: [], ttlSeconds: 1, maximumLagOnFailover: 1 });
  assert.equal(r2.splitBrain.length, 1);
});
