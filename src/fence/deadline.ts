// Fence and watchdog timeouts from the lock timings. Pure: no IO, no clock.
//
// The leader lock (an etcd lease of `ttl` seconds) can be taken by another member at the earliest
// `ttl` seconds after the START of our last successful refresh call. The fencer must have killed
// PostgreSQL before then, so its deadline is refreshStart + timeout with timeout < ttl, and the
// agent must get the next refresh through before the deadline of the previous one, so
// timeout > loop_wait + (the work of one healthy cycle).

/** Seconds reserved between the fence deadline and the earliest lock expiry: timer latency on a
 *  loaded host, the /proc scan and the kills (measured: a few milliseconds; see test/fence). */
export const KILL_RESERVE_MS = 1000;

/** Work of one healthy cycle beyond loop_wait between two refresh starts: reading the cluster,
 *  probing PostgreSQL, the refresh call itself, a GC pause. On loopback or a LAN this is well under
 *  a second; 2 s covers a slow etcd fsync. A cycle slower than this while the timeout is tight gets
 *  PostgreSQL fenced, which is the safe direction. */
export const REFRESH_SLACK_MS = 2000;

export interface LockTimings {
  /** Leader lock TTL, seconds. */
  ttl: number;
  /** HA loop period, seconds. */
  loopWait: number;
  /** watchdog.safety_margin, seconds; -1 means ttl/2 (Patroni's rule). */
  safetyMargin: number;
  /**
   * Failsafe mode is on: the next confirmation may come from a failsafe check instead of a lock
   * refresh, which happens only after the cluster read failed (up to retry_timeout) and every
   * member answered POST /failsafe (up to FAILSAFE_CHECK_MS). The slack must cover that.
   */
  failsafeRetryTimeout?: number;
}

/** Longest a failsafe check may take: 2 s per POST /failsafe attempt, one retry. */
export const FAILSAFE_CHECK_MS = 4000;

/** What one healthy cycle may add to loop_wait between two confirmations. */
function cycleSlackMs(t: LockTimings): number {
  const fs = t.failsafeRetryTimeout;
  if (fs === undefined || !Number.isFinite(fs) || fs < 0) return REFRESH_SLACK_MS;
  return Math.max(REFRESH_SLACK_MS, fs * 1000 + FAILSAFE_CHECK_MS);
}

export interface FenceTimeout {
  /** Fence deadline = refresh start + timeoutMs. */
  timeoutMs: number;
  /** Set when the settings could not be honoured as written; names them. */
  warning?: string;
}

/** Patroni's desired watchdog timeout in whole seconds: ttl - safety_margin, or ttl // 2 when -1. */
function desiredSeconds(t: LockTimings): number {
  return t.safetyMargin === -1 ? Math.floor(t.ttl / 2) : t.ttl - t.safetyMargin;
}

function checkTimings(t: LockTimings): string | undefined {
  for (const [k, v] of [['ttl', t.ttl], ['loop_wait', t.loopWait], ['safety_margin', t.safetyMargin]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return `${k} must be a finite number, got ${String(v)}`;
  }
  if (t.ttl <= 0) return `ttl must be positive, got ${t.ttl}`;
  if (t.loopWait <= 0) return `loop_wait must be positive, got ${t.loopWait}`;
  if (t.safetyMargin < -1) return `safety_margin must be -1 or at least 0, got ${t.safetyMargin}`;
  return undefined;
}

/**
 * The fence timeout for the given timings. Never throws: nonsense input (negative, NaN) gives the
 * largest safe value for whatever ttl can be used plus a warning.
 *
 * Rules:
 * - wanted = ttl - safety_margin (ttl // 2 when safety_margin is -1);
 * - at most ttl - KILL_RESERVE_MS: a deadline at or after the earliest lock expiry is useless;
 * - at least loop_wait + REFRESH_SLACK_MS, else a healthy primary would be killed between two
 *   refreshes: then use the largest safe value, ttl - KILL_RESERVE_MS, and warn. When even that
 *   leaves less than the slack (ttl too close to loop_wait), safety wins: the value stays, and the
 *   warning says that slow cycles will get PostgreSQL killed.
 */
export function fenceTimeout(t: LockTimings): FenceTimeout {
  const bad = checkTimings(t);
  const ttlMs = Number.isFinite(t.ttl) && t.ttl > 0 ? t.ttl * 1000 : 0;
  const maxMs = Math.max(0, ttlMs - KILL_RESERVE_MS);
  if (bad !== undefined) return { timeoutMs: maxMs, warning: `fence: ${bad}; using ${maxMs / 1000} s (ttl - ${KILL_RESERVE_MS / 1000} s)` };
  const wantedMs = desiredSeconds(t) * 1000;
  const slackMs = cycleSlackMs(t);
  const minMs = t.loopWait * 1000 + slackMs;
  const settings = `ttl ${t.ttl}, loop_wait ${t.loopWait}, safety_margin ${t.safetyMargin}${t.failsafeRetryTimeout !== undefined ? `, failsafe_mode with retry_timeout ${t.failsafeRetryTimeout}` : ''}`;
  if (wantedMs > maxMs) {
    return {
      timeoutMs: maxMs,
      warning: `fence: ${settings} puts the fence deadline ${wantedMs / 1000} s after a refresh, too close to the lock expiry (${t.ttl} s); using ${maxMs / 1000} s`,
    };
  }
  if (wantedMs >= minMs) return { timeoutMs: wantedMs };
  if (maxMs >= minMs) {
    return {
      timeoutMs: maxMs,
      warning: `fence: ${settings} gives a fence timeout of ${wantedMs / 1000} s, which leaves no room to refresh the lock every ${t.loopWait} s (needs at least ${minMs / 1000} s); using ${maxMs / 1000} s`,
    };
  }
  return {
    timeoutMs: maxMs,
    warning: `fence: ${settings} leaves less than ${slackMs / 1000} s between loop_wait and the fence deadline (${maxMs / 1000} s); a slow HA cycle will get PostgreSQL killed: lower loop_wait or raise ttl`,
  };
}

export interface WatchdogTimeouts {
  /** Desired device timeout, whole seconds (Patroni: ttl - safety_margin, or ttl // 2 when -1). */
  timeout: number;
  /** timeout - loop_wait: the time a cycle may overrun before the host is reset. */
  slack: number;
  /** false when slack < 0: Patroni then uses no watchdog (required mode: unhealthy). */
  supported: boolean;
}

/** Patroni 12.1's watchdog numbers. */
export function watchdogTimeouts(t: LockTimings): WatchdogTimeouts {
  const timeout = desiredSeconds(t);
  const slack = timeout - t.loopWait;
  return { timeout, slack, supported: Number.isFinite(slack) && slack >= 0 };
}

/**
 * Time kept between giving up on the DCS and the fence deadline, for a clean demotion: a fast
 * shutdown (backends terminated, shutdown checkpoint) takes well under a second on a small or idle
 * database; a busy one may need more, and then the fencer's SIGKILL finishes the job, which is
 * still safe.
 */
export const DEMOTE_RESERVE_MS = 1500;

/**
 * How long a primary with an armed fencer may wait for one DCS read so that, if the read fails, a
 * clean demotion (and, in failsafe mode, the POST /failsafe round first) still fits before the
 * fence deadline. undefined: no limit below retry_timeout is needed (or no fencer is armed).
 * Zero or negative: there is no time left to wait at all.
 */
export function readBudgetMs(fenceDeadline: number | undefined, now: number, retryMs: number, failsafe = false): number | undefined {
  if (fenceDeadline === undefined || !Number.isFinite(fenceDeadline)) return undefined;
  const budget = Math.floor(fenceDeadline - now - DEMOTE_RESERVE_MS - (failsafe ? FAILSAFE_CHECK_MS : 0));
  return budget >= retryMs ? undefined : budget;
}
