// Fencing policy: when the fencer is armed, when it is disarmed, and with which deadline. Pure.
//
// While we hold the lock and PostgreSQL runs, the fencer is armed with a deadline of (start of the
// last successful lock refresh or failsafe confirmation) + the fence timeout (ttl - safety_margin,
// see src/fence/deadline.ts). If no later refresh moves it, the fencer kills PostgreSQL at the
// deadline, before the lock can expire, whether the agent is alive, stuck, frozen or dead. A
// primary that lost the lock stays armed with its old deadline until PostgreSQL is stopped or
// read-only; only then (and in pause) is the fencer disarmed. The lock holder that (re)starts
// PostgreSQL arms for the data directory before the start: it may come up as a primary before the
// next tick.

import type { TaskKind } from '../core/model.ts';
import { fenceTimeout } from '../fence/deadline.ts';

export interface FenceFacts {
  /** decide() says we are the leader. */
  isLeader: boolean;
  /** Start of the last successful lock refresh (or failsafe confirmation); undefined: not held. */
  lockRefreshedAt: number | undefined;
  paused: boolean;
  /** PostgreSQL as last observed (undefined: never observed). */
  pg: { running: boolean; inRecovery: boolean } | undefined;
  /** The background task that is running, if any. */
  runningTask: TaskKind | undefined;
}

export type FenceWant = { want: 'keep' } | { want: 'disarm' } | { want: 'arm'; byDataDir: boolean };

/** What to do with the fencer after a tick. */
export function fenceWant(f: FenceFacts): FenceWant {
  const starting = (f.runningTask === 'start' || f.runningTask === 'restart') && f.isLeader && f.lockRefreshedAt !== undefined;
  if (f.paused) return { want: 'disarm' };
  if (f.isLeader && f.lockRefreshedAt !== undefined && (f.pg?.running === true || starting)) return { want: 'arm', byDataDir: starting };
  if (f.pg === undefined || !f.pg.running) return { want: 'disarm' };
  if (f.pg.inRecovery && f.runningTask !== 'promote') return { want: 'disarm' };
  return { want: 'keep' };
}

/** The fence timeout of the current settings (deadline = refresh start + timeoutMs). */
export function fenceTimeoutFor(dynamic: { ttl: number; loop_wait: number; retry_timeout: number; failsafe_mode?: boolean | undefined }, safetyMargin: number): { timeoutMs: number; warning?: string } {
  return fenceTimeout({
    ttl: dynamic.ttl,
    loopWait: dynamic.loop_wait,
    safetyMargin,
    ...(dynamic.failsafe_mode === true ? { failsafeRetryTimeout: dynamic.retry_timeout } : {}),
  });
}
