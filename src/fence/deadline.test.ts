import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMOTE_RESERVE_MS, FAILSAFE_CHECK_MS, fenceTimeout, readBudgetMs, watchdogTimeouts } from './deadline.ts';

test('fenceTimeout: table', () => {
  // [ttl, loop_wait, safety_margin] -> timeout ms, warning pattern (undefined: none)
  const rows: Array<[number, number, number, number, RegExp | undefined]> = [
    [30, 10, 5, 25_000, undefined], // Patroni defaults
    [30, 10, -1, 15_000, undefined], // ttl // 2
    [31, 10, -1, 15_000, undefined], // integer division as Patroni
    [20, 10, 5, 15_000, undefined],
    [30, 10, 0, 29_000, /too close to the lock expiry/], // deadline at the expiry: pulled in
    [30, 10, 1, 29_000, undefined], // exactly the kill reserve
    [20, 10, 10, 19_000, /loop_wait 10.*no room to refresh.*using 19 s/], // 10 s <= loop_wait + slack
    [5, 1, 5, 4000, /no room to refresh/], // Vigil's minimum ttl
    [5, 1, -1, 4000, /no room to refresh/],
    [5, 3, 1, 4000, /a slow HA cycle will get PostgreSQL killed/], // even ttl - 1 s is too tight
    [30, 10, -2, 29_000, /safety_margin must be -1 or at least 0/],
    [Number.NaN, 10, 5, 0, /ttl must be a finite number/],
    [30, 0, 5, 29_000, /loop_wait must be positive/],
  ];
  for (const [ttl, loopWait, safetyMargin, ms, warn] of rows) {
    const r = fenceTimeout({ ttl, loopWait, safetyMargin });
    const label = `ttl ${ttl}, loop_wait ${loopWait}, safety_margin ${safetyMargin}`;
    assert.equal(r.timeoutMs, ms, label);
    if (warn === undefined) assert.equal(r.warning, undefined, label);
    else assert.match(r.warning ?? '', warn, label);
    assert.ok(r.timeoutMs < ttl * 1000 || !Number.isFinite(ttl), `${label}: the deadline must come before the lock expiry`);
  }
});

test('fenceTimeout in failsafe mode leaves room for the cluster read and the POST /failsafe round', () => {
  // Patroni defaults: 10 + 10 + 4 = 24 s <= 25 s: the margin is kept.
  assert.deepEqual(fenceTimeout({ ttl: 30, loopWait: 10, safetyMargin: 5, failsafeRetryTimeout: 10 }), { timeoutMs: 25_000 });
  // Fast timings: 2 + 3 + 4 = 9 s > 5 s: the deadline moves to ttl - 1 s, with a warning naming failsafe.
  const fast = fenceTimeout({ ttl: 10, loopWait: 2, safetyMargin: 5, failsafeRetryTimeout: 3 });
  assert.equal(fast.timeoutMs, 9000);
  assert.match(fast.warning ?? '', /failsafe_mode with retry_timeout 3.*no room to refresh/);
  // Without failsafe the same timings keep the margin.
  assert.deepEqual(fenceTimeout({ ttl: 10, loopWait: 2, safetyMargin: 5 }), { timeoutMs: 5000 });
  // Too tight even at ttl - 1 s: safety wins, and the warning says so.
  const tight = fenceTimeout({ ttl: 10, loopWait: 3, safetyMargin: 5, failsafeRetryTimeout: 3 });
  assert.equal(tight.timeoutMs, 9000);
  assert.match(tight.warning ?? '', /less than 7 s between loop_wait and the fence deadline/);
});

test('watchdogTimeouts: Patroni 12.1 numbers', () => {
  assert.deepEqual(watchdogTimeouts({ ttl: 30, loopWait: 10, safetyMargin: 5 }), { timeout: 25, slack: 15, supported: true });
  assert.deepEqual(watchdogTimeouts({ ttl: 30, loopWait: 10, safetyMargin: -1 }), { timeout: 15, slack: 5, supported: true });
  assert.deepEqual(watchdogTimeouts({ ttl: 25, loopWait: 10, safetyMargin: -1 }), { timeout: 12, slack: 2, supported: true });
  assert.deepEqual(watchdogTimeouts({ ttl: 20, loopWait: 10, safetyMargin: 10 }), { timeout: 10, slack: 0, supported: true });
  assert.deepEqual(watchdogTimeouts({ ttl: 20, loopWait: 10, safetyMargin: 11 }), { timeout: 9, slack: -1, supported: false });
});

test('readBudgetMs: a primary stops waiting for the DCS in time to demote before the fencer fires', () => {
  // No fencer armed, or plenty of time: retry_timeout applies unchanged.
  assert.equal(readBudgetMs(undefined, 1000, 3000), undefined);
  assert.equal(readBudgetMs(25_000, 10_000, 10_000), undefined); // Patroni defaults: 25 s timeout, read at 10 s
  // ttl 10 / loop_wait 2 / retry_timeout 3 / safety_margin 5: fence 5 s after the refresh, read starts 2.1 s in.
  const b = readBudgetMs(5000, 2100, 3000);
  assert.equal(b, 5000 - 2100 - DEMOTE_RESERVE_MS);
  assert.ok(b !== undefined && b > 0 && b < 3000);
  // failsafe mode reserves the POST /failsafe round as well
  assert.equal(readBudgetMs(9000, 2100, 3000, true), 9000 - 2100 - DEMOTE_RESERVE_MS - FAILSAFE_CHECK_MS);
  // past the point of no return: zero or negative, the caller does not read at all
  assert.ok((readBudgetMs(5000, 4000, 3000) ?? 1) <= 0);
  assert.equal(readBudgetMs(Number.NaN, 0, 3000), undefined);
});
