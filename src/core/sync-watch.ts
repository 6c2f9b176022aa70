// A caught-up standby becomes synchronous within about a second of streaming, not at the
// primary's next loop (issue 13, item 5). Two halves, both pure:
// - between ticks, the shell re-probes PostgreSQL about once a second; on a lock-holding primary in
//   synchronous mode it compares the streaming WAL senders with those the last tick saw
//   (`watchedSenders`) and ticks at once when a new one appears (`newSenderAppeared`);
// - the tick then may find the sender's member key not yet saying `running` (its agent publishes
//   that right after its PostgreSQL started, a moment after it connects): `awaitingMemberKey`
//   names such standbys, and the sync step keeps looking every SYNC_WAKE_MS for at most one
//   loop_wait (memory.syncPendingSince), as it does while a confirmation is pending.

import { syncModeOf } from './election.ts';
import type { LocalSync, Observation } from './model.ts';
import { lower } from './ssn.ts';

/**
 * The WAL senders a lock-holding primary in synchronous mode (on or quorum) has taken into account
 * this tick (their application names), or undefined when nothing is to be watched between ticks
 * (not the leader, mode off, no facts).
 */
export function watchedSenders(obs: Observation, isLeader: boolean): string[] | undefined {
  const local = obs.pg.sync;
  if (!isLeader || local === undefined || syncModeOf(obs.config) === 'off' || obs.pg.inRecovery) return undefined;
  return local.senders.filter((s) => s.state === 'streaming').map((s) => s.name);
}

/** A streaming sender whose name the last tick did not see (pg_stat_replication rows of a probe). */
export function newSenderAppeared(known: readonly string[], rows: ReadonlyArray<{ application_name: string | null; state: string | null }>): boolean {
  const seen = new Set(known.map(lower));
  return rows.some((r) => r.state === 'streaming' && typeof r.application_name === 'string' && r.application_name !== '' && !seen.has(lower(r.application_name)));
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
