// primary_race_backoff (Patroni 4.x dynamic configuration; patroni-behavior.md section 3.1 step 1):
// when the leader key is gone, a node waits before racing for it while the former primary may
// still be alive, so that it can take its lock back instead of losing its writes to a failover.

import type { Memory, Observation } from './model.ts';
import { isStandbyClusterConfig } from './election.ts';
import { activeRequest } from './switchover.ts';

export interface BackoffStep {
  /** Why the race is postponed; undefined when the node may race now. */
  wait: string | undefined;
  /** When the next tick should run at the latest (ms from now), while waiting. */
  wakeMs?: number;
  /** The new Memory.raceBackoff. */
  memory: Memory['raceBackoff'];
}

/**
 * The backoff gate of an unlocked cluster, for a node whose PostgreSQL runs and that is not paused.
 * It applies when primary_race_backoff > 0, this is not a standby cluster, /failover names no
 * candidate, and the previous tick's WAL position is known (not on the agent's first tick). The
 * timer starts at the first unlocked tick (it is reset by decide() whenever a leader is seen). The
 * race is postponed while either:
 * - less than loop_wait has passed since the timer started (always at least one loop: the lock may
 *   have expired just after the primary's last refresh), or
 * - backoff time is left, this node streams, and its WAL position advanced since the previous
 *   tick (the primary is evidently still writing).
 */
export function raceBackoff(obs: Observation): BackoffStep {
  const backoffS = typeof obs.config.primary_race_backoff === 'number' ? obs.config.primary_race_backoff : 0;
  const prev = obs.memory.raceBackoff;
  const candidate = activeRequest(obs.cluster)?.member;
  const applies = backoffS > 0 && obs.memory.started === true && !isStandbyClusterConfig(obs.config) && (candidate === undefined || candidate === '');
  if (!applies) return { wait: undefined, memory: prev };
  const since = prev?.since ?? obs.now;
  const memory = { since, walLsn: obs.pg.walLsn };
  const backoffMs = backoffS * 1000;
  const timeLeft = since + backoffMs - obs.now;
  const prevLsn = prev?.walLsn;
  const moved = prev !== undefined && prevLsn !== undefined && obs.pg.walLsn !== undefined && obs.pg.walLsn > prevLsn;
  const firstLoop = timeLeft > backoffMs - obs.config.loop_wait * 1000;
  if (firstLoop || (timeLeft > 0 && obs.pg.streaming && moved)) {
    const why = firstLoop ? 'waiting at least one loop' : `wal position moved from ${prevLsn} to ${obs.pg.walLsn}`;
    return { wait: `primary_race_backoff: not racing for the leader lock yet (${why}; ${Math.ceil(Math.max(0, timeLeft) / 1000)}s of backoff left)`, wakeMs: Math.max(0, timeLeft), memory };
  }
  return { wait: undefined, memory };
}
