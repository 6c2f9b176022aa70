// A synchronous standby that stopped answering without closing its connection (its host crashed, or
// a partition drops its packets, or its WAL receiver is frozen) keeps its WAL sender, and its row
// in pg_stat_replication, until wal_sender_timeout (60 s by default); until then PostgreSQL waits
// for it and, in priority mode, the leader would keep it synchronous. The leader instead counts
// such a standby as not streaming for its synchronous replication decisions, so the usual removal
// path replaces it (/sync by compare-and-set first, synchronous_standby_names after; strict mode
// keeps requiring it; quorum mode keeps its overlap invariant). docs/guarantees.md 3 states the
// resulting bound.
//
// Two halves, both pure:
// - trackSilence (run by the adapter on every probe, about once a second between loops): how long
//   each WAL sender has been behind the primary without any sign of life from its standby, measured
//   on the primary's clock. A sign of life is any change of its write, flush or replay position or
//   of its reply_time (compared as opaque values: the standby's clock is never trusted);
// - stalledSenders: the senders silent for at least stallThresholdMs while backends wait on
//   synchronous replication (or that are not listed in synchronous_standby_names: listing them
//   would make commits wait). A stale reply alone means nothing: an idle standby replies only
//   every wal_receiver_status_interval (10 s), and one with nothing left to confirm is not behind.
//   A standby listed but silent while no commit waits (ANY 1 with another voter answering) stays.

import { nameIn } from './election.ts';
import type { DynamicConfig, LocalSync } from './model.ts';
import { parseSsn } from './ssn.ts';

/**
 * How long a synchronous standby may stay silent while commits wait before the leader replaces
 * it: max(5 s, loop_wait / 2). 5 s is well above what a slow but working standby shows (a 2 s disk
 * stall, a saturated CPU: its WAL receiver still confirms each flush within about a second) and
 * well below wal_sender_timeout's default of 60 s; a longer loop_wait (a user who accepts slower
 * reactions) raises it so that a replacement is never more eager than the loop that manages /sync.
 */
export function stallThresholdMs(config: Pick<DynamicConfig, 'loop_wait'>): number {
  const lw = Number.isFinite(config.loop_wait) ? config.loop_wait : 10;
  return Math.max(5000, Math.round(lw * 500));
}

/** What trackSilence remembers per WAL sender pid: its last reported values, and since when they are unchanged while behind. */
export type SilenceState = ReadonlyMap<number, { key: string; since: number }>;

export interface SilenceRow {
  pid: number | null;
  write_lsn: number | undefined;
  flush_lsn: number | undefined;
  replay_lsn: number | undefined;
  /** pg_stat_replication.reply_time as text (null: none yet, or PostgreSQL before 12). */
  reply_time?: string | null | undefined;
}

/**
 * One probe's silence per row (ms, same order as rows) and the state for the next probe. A row is
 * silent since the first probe that saw it behind (flush_lsn below primaryFlush) with the values
 * it still reports; caught up, changed, or without a pid: 0. primaryFlush undefined (not a
 * primary): everything 0 and no state. `now` is a monotonic clock in ms.
 */
export function trackSilence(prev: SilenceState, rows: readonly SilenceRow[], primaryFlush: number | undefined, now: number): { state: SilenceState; silentMs: number[] } {
  const state = new Map<number, { key: string; since: number }>();
  const silentMs = rows.map((r) => {
    if (primaryFlush === undefined || r.pid === null) return 0;
    if (r.flush_lsn !== undefined && r.flush_lsn >= primaryFlush) return 0;
    const key = `${r.write_lsn ?? '-'}/${r.flush_lsn ?? '-'}/${r.replay_lsn ?? '-'}/${r.reply_time ?? '-'}`;
    const before = prev.get(r.pid);
    const since = before !== undefined && before.key === key ? before.since : now;
    state.set(r.pid, { key, since });
    return Math.max(0, now - since);
  });
  return { state, silentMs };
}

/** The facts stalledSenders reads (a LocalSync, or the same read from a probe between loops). */
export interface StallFacts {
  ssn: string;
  syncRepWaiters?: number | undefined;
  senders: ReadonlyArray<{ name: string; state: string; silentMs?: number | undefined }>;
}

/**
 * Streaming senders of cluster members (`members`: other senders, e.g. a logical subscriber's
 * that answers every 10 s, are never judged) the leader must not count as streaming: silent for
 * at least thresholdMs while a backend waits on synchronous replication, or while not listed in
 * the running synchronous_standby_names (once replaced, it stays out until it answers again,
 * instead of being listed again as soon as commits stop waiting for it).
 */
export function stalledSenders(f: StallFacts, thresholdMs: number, members: readonly string[]): string[] {
  const listed: readonly string[] = parseSsn(f.ssn).names;
  const waiting = (f.syncRepWaiters ?? 0) > 0;
  const isListed = (name: string): boolean => listed.includes('*') || nameIn(listed, name);
  return f.senders
    .filter((s) => s.state === 'streaming' && nameIn(members, s.name) && (s.silentMs ?? 0) >= thresholdMs && (waiting || !isListed(s.name)))
    .map((s) => s.name);
}

/** The streaming senders that are not stalled (their names). */
export function healthySenders(f: StallFacts, thresholdMs: number, members: readonly string[]): string[] {
  const stalled = stalledSenders(f, thresholdMs, members);
  return f.senders.filter((s) => s.state === 'streaming' && !nameIn(stalled, s.name)).map((s) => s.name);
}

/** local with its stalled senders shown as state 'stalled' (so every sync rule skips them). */
export function withoutStalled(local: LocalSync, thresholdMs: number, members: readonly string[]): LocalSync {
  const stalled = stalledSenders(local, thresholdMs, members);
  if (stalled.length === 0) return local;
  return { ...local, senders: local.senders.map((s) => (s.state === 'streaming' && nameIn(stalled, s.name) ? { ...s, state: 'stalled' } : s)) };
}
