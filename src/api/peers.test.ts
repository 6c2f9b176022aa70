import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parsePeerStatus, unreachablePeer } from './peers.ts';

test('primary: not in recovery, wal position 0', () => {
  assert.deepEqual(parsePeerStatus('a', { state: 'running', role: 'primary', xlog: { location: 500 }, timeline: 4 }), {
    name: 'a', reachable: true, inRecovery: false, walPosition: 0, timeline: 4, nofailover: false, failoverPriority: 1, watchdogFailed: false,
  });
  // Old Patroni: role master; xlog.location alone also means primary.
  assert.equal(parsePeerStatus('a', { role: 'master', xlog: { location: 1 } })?.inRecovery, false);
  assert.equal(parsePeerStatus('a', { role: 'demoted', xlog: { location: 1 } })?.inRecovery, false);
  // A primary whose query failed has no xlog but is still a primary.
  assert.equal(parsePeerStatus('a', { state: 'unknown', role: 'primary' })?.inRecovery, false);
});

test('replica: wal position = max(received, replayed); "wal" accepted for "xlog"', () => {
  const r = parsePeerStatus('b', { role: 'replica', xlog: { received_location: 900, replayed_location: 950, paused: false }, timeline: 2 });
  assert.equal(r?.inRecovery, true);
  assert.equal(r?.walPosition, 950);
  assert.equal(r?.timeline, 2);
  assert.equal(parsePeerStatus('b', { role: 'replica', wal: { received_location: 10, replayed_location: 5 } })?.walPosition, 10);
  assert.equal(parsePeerStatus('b', { role: 'replica', xlog: { received_location: 'x', replayed_location: null } })?.walPosition, 0);
});

test('a replica without xlog, or no role, is unusable', () => {
  assert.equal(parsePeerStatus('b', { state: 'stopped', role: 'replica' }), undefined);
  assert.equal(parsePeerStatus('b', { xlog: { received_location: 1 } }), undefined);
  assert.equal(parsePeerStatus('b', [1, 2]), undefined);
  assert.equal(parsePeerStatus('b', null), undefined);
  assert.equal(parsePeerStatus('b', 'primary'), undefined);
});

test('tags: nofailover, failover_priority, watchdog_failed', () => {
  const base = { role: 'replica', xlog: { received_location: 1, replayed_location: 1 } };
  const p = (extra: Record<string, unknown>) => parsePeerStatus('c', { ...base, ...extra });
  assert.deepEqual([p({})?.nofailover, p({})?.failoverPriority], [false, 1]);
  assert.deepEqual([p({ tags: { failover_priority: 5 } })?.nofailover, p({ tags: { failover_priority: 5 } })?.failoverPriority], [false, 5]);
  assert.deepEqual([p({ tags: { failover_priority: 0 } })?.nofailover, p({ tags: { failover_priority: 0 } })?.failoverPriority], [true, 0]);
  assert.deepEqual([p({ tags: { nofailover: true } })?.nofailover, p({ tags: { nofailover: true } })?.failoverPriority], [true, 0]);
  assert.equal(p({ tags: { nofailover: false, failover_priority: 3 } })?.nofailover, false);
  // Patroni 4.1: an explicit nofailover: false wins over failover_priority 0, which then only ranks.
  assert.deepEqual([p({ tags: { nofailover: false, failover_priority: 0 } })?.nofailover, p({ tags: { nofailover: false, failover_priority: 0 } })?.failoverPriority], [false, 0]);
  assert.equal(p({ tags: 'odd' })?.nofailover, false);
  assert.equal(p({ watchdog_failed: true })?.watchdogFailed, true);
  assert.equal(p({ watchdog_failed: 'yes' })?.watchdogFailed, false);
});

test('unreachablePeer', () => {
  const u = unreachablePeer('d');
  assert.equal(u.reachable, false);
  assert.equal(u.name, 'd');
});
