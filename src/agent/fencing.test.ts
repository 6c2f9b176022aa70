import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fenceTimeoutFor, fenceWant, type FenceFacts } from './fencing.ts';

const leader: FenceFacts = { isLeader: true, lockRefreshedAt: 1000, paused: false, pg: { running: true, inRecovery: false }, runningTask: undefined };

test('the lock holder with a running PostgreSQL arms the fencer for its postmaster', () => {
  assert.deepEqual(fenceWant(leader), { want: 'arm', byDataDir: false });
});

test('the lock holder arms by data directory while it (re)starts PostgreSQL, before the postmaster exists', () => {
  for (const runningTask of ['start', 'restart'] as const) {
    assert.deepEqual(fenceWant({ ...leader, pg: { running: false, inRecovery: false }, runningTask }), { want: 'arm', byDataDir: true }, runningTask);
  }
  // Not for other tasks: a clone or rewind never comes up as a primary.
  assert.deepEqual(fenceWant({ ...leader, pg: { running: false, inRecovery: true }, runningTask: 'rewind' }), { want: 'disarm' });
});

test('no arming without a confirmed lock: a leader whose refresh failed keeps the deadline it had', () => {
  assert.deepEqual(fenceWant({ ...leader, lockRefreshedAt: undefined }), { want: 'keep' });
  assert.deepEqual(fenceWant({ ...leader, isLeader: false }), { want: 'keep' });
});

test('disarmed once PostgreSQL is stopped, or read-only (not while a promotion runs), and in pause', () => {
  assert.deepEqual(fenceWant({ ...leader, isLeader: false, pg: { running: false, inRecovery: false } }), { want: 'disarm' });
  assert.deepEqual(fenceWant({ ...leader, isLeader: false, pg: undefined }), { want: 'disarm' });
  assert.deepEqual(fenceWant({ ...leader, isLeader: false, pg: { running: true, inRecovery: true } }), { want: 'disarm' });
  // A replica being promoted without a confirmed lock keeps whatever deadline it has.
  assert.deepEqual(fenceWant({ ...leader, lockRefreshedAt: undefined, pg: { running: true, inRecovery: true }, runningTask: 'promote' }), { want: 'keep' });
  assert.deepEqual(fenceWant({ ...leader, paused: true }), { want: 'disarm' });
});

test('the fence timeout follows the lock timings; failsafe mode leaves room for the POST /failsafe round', () => {
  assert.equal(fenceTimeoutFor({ ttl: 30, loop_wait: 10, retry_timeout: 10 }, 5).timeoutMs, 25_000);
  assert.equal(fenceTimeoutFor({ ttl: 30, loop_wait: 10, retry_timeout: 15 }, 5).timeoutMs, 25_000);
  const fs = fenceTimeoutFor({ ttl: 30, loop_wait: 10, retry_timeout: 15, failsafe_mode: true }, 5);
  assert.equal(fs.timeoutMs, 29_000);
  assert.match(fs.warning ?? '', /failsafe_mode/);
});
