// Synchronous replication as PostgreSQL does it, for the simulator (tests only):
// synchronous_standby_names on the primary (FIRST n / ANY n), the WAL senders with their
// sync_state, and which commits are acknowledged (the n-th best flush position of the listed,
// streaming standbys).

import { nameIn } from '../core/election.ts';
import type { LocalSync, WalSender } from '../core/model.ts';
import { parseSsn } from '../core/sync.ts';
import { isPrefix, truncate, walEnd, type Wal } from './wal.ts';
import type { SimNode, World } from './world.ts';

/** The running synchronous_standby_names of a node ('' unless Vigil set one). */
export function runningSsn(n: SimNode): string {
  return n.ssn ?? '';
}

/** Standbys streaming straight from `p`, with pg_stat_replication's sync_state. */
export function senders(w: World, p: SimNode): WalSender[] {
  const ssn = parseSsn(runningSsn(p));
  const streaming = [...w.nodes.values()].filter((r) => r !== p && r.pg.running && r.pg.streaming && r.pg.data?.standby === true && r.pg.data.upstream === p.name);
  const listed = ssn.names.flatMap((name) => streaming.filter((r) => nameIn([name], r.name)));
  const syncNow = ssn.kind === 'priority' ? listed.slice(0, ssn.num) : [];
  return streaming.map((r) => {
    const lsn = walEnd((r.pg.data as NonNullable<SimNode['pg']['data']>).wal);
    let syncState = 'async';
    if (ssn.kind === 'quorum' && listed.includes(r)) syncState = 'quorum';
    else if (ssn.kind === 'priority' && syncNow.includes(r)) syncState = 'sync';
    else if (ssn.kind === 'priority' && listed.includes(r)) syncState = 'potential';
    return { pid: r.senderPid, name: r.name, state: 'streaming', syncState, writeLsn: lsn, flushLsn: lsn, replayLsn: lsn };
  });
}

/** What the agent's probe reports on a running primary (PostgresController.syncFacts). */
export function localSync(w: World, n: SimNode): LocalSync {
  const ssn = runningSsn(n);
  if (ssn !== n.ssnSeen) {
    n.ssnSeen = ssn;
    n.ssnSetAt = n.pg.lsn;
  }
  return { ssn, managed: n.ssn !== null, synchronousCommit: 'on', senders: senders(w, n), ssnSetAtLsn: n.ssnSetAt };
}

/**
 * The LSN up to which commits on primary `p` are acknowledged to clients right now: its own end
 * with an empty ssn; else the position PostgreSQL waits for (FIRST n: the lowest of the n
 * highest-priority streaming standbys; ANY n: the n-th highest of the listed ones); undefined
 * while fewer than n of them stream (commits wait).
 */
export function ackLsn(w: World, p: SimNode): number | undefined {
  const ssn = parseSsn(runningSsn(p));
  if (ssn.kind === 'empty') return p.pg.lsn;
  if (ssn.kind === 'invalid') {
    w.violation(`${p.name} runs an invalid synchronous_standby_names: ${ssn.error}`);
    return undefined;
  }
  const all = senders(w, p);
  const wanted = ssn.kind === 'priority' ? all.filter((x) => x.syncState === 'sync') : all.filter((x) => x.syncState === 'quorum');
  if (wanted.length < ssn.num) return undefined;
  const lsns = wanted.map((x) => x.flushLsn ?? 0).sort((x, y) => y - x);
  return ssn.kind === 'priority' ? Math.min(...lsns) : lsns[ssn.num - 1];
}

/** Record what writable primaries acknowledged in this step (sync modes). */
export function recordAcks(w: World): void {
  if (w.syncMode === 'off') return;
  for (const p of w.nodes.values()) {
    const d = p.pg.data;
    if (!p.pg.writable || d === undefined) continue;
    const lsn = ackLsn(w, p);
    if (lsn === undefined) continue;
    const head = truncate(d.wal, lsn);
    if (w.ackHeads.some((h) => isPrefix(head, h))) continue;
    for (let i = w.ackHeads.length - 1; i >= 0; i--) if (isPrefix(w.ackHeads[i] as Wal, head)) w.ackHeads.splice(i, 1);
    w.ackHeads.push(head);
  }
}
