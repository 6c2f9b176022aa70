// A caught-up standby becomes synchronous within about a second of streaming, not at the
// primary's next loop (issue 13, item 5). Two halves, both pure:
// - between ticks, the shell re-probes PostgreSQL about once a second; on a lock-holding primary in
//   synchronous mode it compares the streaming WAL senders with those the last tick saw
//   (`watchedSenders`) and ticks at once when a new one appears, or a watched one stops streaming
//   or stalls (stops answering: ./sync-stall.ts) (`sendersChanged`);
// - the tick then may find the sender's member key not yet saying `running` (its agent publishes
//   that right after its PostgreSQL started, a moment after it connects): `awaitingMemberKey`
//   names such standbys, and the sync step keeps looking every SYNC_WAKE_MS for at most one
//   loop_wait (memory.syncPendingSince), as it does while a confirmation is pending.

import { syncModeOf } from './election.ts';
import type { LocalSync, Observation } from './model.ts';
import { lower } from './ssn.ts';
import { healthySenders, stallThresholdMs } from './sync-stall.ts';

/** What the last tick took into account: its streaming, not stalled senders, and the cluster's members. */
export interface WatchedSenders {
  names: string[];
  members: string[];
}

/**
 * The WAL senders a lock-holding primary in synchronous mode (on or quorum) has taken into account
 * this tick as streaming (their application names; stalled ones left out), or undefined when
 * nothing is to be watched between ticks (not the leader, mode off, no facts).
 */
export function watchedSenders(obs: Observation, isLeader: boolean): WatchedSenders | undefined {
  const local = obs.pg.sync;
  if (!isLeader || local === undefined || syncModeOf(obs.config) === 'off' || obs.pg.inRecovery) return undefined;
  const members = (obs.cluster?.members ?? []).map((m) => m.name);
  return { names: healthySenders(local, stallThresholdMs(obs.config), members).filter((n) => n !== ''), members };
}

/** What a probe between ticks tells about the WAL senders (the fields of the adapter's ProbeResult it needs). */
export interface SenderProbe {
  replication: ReadonlyArray<{ application_name: string | null; state: string | null; silent_ms?: number }>;
  syncRepWaiters?: number;
  synchronousStandbyNames?: string;
}

/**
 * Compared with the senders the last tick watched: 'new' when a streaming, not stalled sender
 * appears whose name the tick did not see (in any case); 'lost' when a watched one is gone, no
 * longer streaming, or stalled; undefined when nothing changed. Senders without a name are ignored.
 */
export function sendersChanged(known: WatchedSenders, probe: SenderProbe, thresholdMs: number): 'new' | 'lost' | undefined {
  const facts = {
    ssn: probe.synchronousStandbyNames ?? '',
    syncRepWaiters: probe.syncRepWaiters,
    senders: probe.replication
      .filter((r) => typeof r.application_name === 'string' && r.application_name !== '')
      .map((r) => ({ name: r.application_name as string, state: r.state ?? '', silentMs: r.silent_ms })),
  };
  const healthy = healthySenders(facts, thresholdMs, known.members);
  const seen = new Set(known.names.map(lower));
  if (healthy.some((n) => !seen.has(lower(n)))) return 'new';
  const now = new Set(healthy.map(lower));
  if ([...seen].some((n) => !now.has(n))) return 'lost';
  return undefined;
}

/**
 * Streaming standbys that are members of the cluster and would be candidates for synchronous
 * replication but for their member key, which does not say `running` yet (or says it in another
 * case than the sender's name). Not me, not nosync, not sync_priority <= 0.
 */
export function awaitingMemberKey(obs: Observation, local: LocalSync): string[] {
  const out: string[] = [];
  for (const s of local.senders) {
    if (s.state !== 'streaming' || s.name === '' || lower(s.name) === lower(obs.self.name)) continue;
    const m = obs.cluster?.members.find((x) => lower(x.name) === lower(s.name));
    if (m === undefined || m.data.state === 'running') continue;
    const tags = m.data.tags;
    const prio = tags?.sync_priority;
    if (tags?.nosync === true || (typeof prio === 'number' && prio <= 0)) continue;
    out.push(m.name);
  }
  return out;
}
