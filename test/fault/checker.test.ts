// The checker's definitions on hand-made histories (no servers): it must see loss, tell losses
// within the asynchronous bound from those outside it, and flag interleaved acknowledgements.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { check, splitBrainWindows, formatReport, type Ack, type FaultRecord } from './lib/checker.ts';

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
