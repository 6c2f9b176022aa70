// What happens to a node's simulated PostgreSQL when the ports (./ports.ts) or the world's faults
// act on it, for the simulator (tests only): start, stop (a clean stop hands the streaming
// replicas everything first), promotion (checked against the acknowledged histories in sync
// modes), initdb, and Vigil's synchronous_standby_names override.

import { isPrefix, pgCanStream, promote, truncate, walEnd, walTimeline } from './wal.ts';
import type { SimNode, World } from './world.ts';

export function startPg(n: SimNode): void {
  n.pg.start();
  n.crashed = false;
}

/** Stop PostgreSQL; a clean stop lets streaming replicas receive everything first. */
export function stopPg(w: World, n: SimNode, mode: 'fast' | 'immediate'): void {
  const d = n.pg.data;
  if (mode === 'fast' && n.pg.running && d !== undefined) {
    for (const r of w.nodes.values()) {
      const rd = r.pg.data;
      if (r === n || rd === undefined || !r.pg.running || !rd.standby || rd.upstream !== n.name || !w.reachable(r, n)) continue;
      if (pgCanStream(rd.wal, d.wal) && isPrefix(rd.wal, d.wal)) rd.wal = truncate(d.wal, walEnd(d.wal));
    }
  }
  n.pg.stop(mode);
}

/** Promote on a new WAL branch; in sync modes, a violation when an acknowledged commit is missing. */
export function promotePg(w: World, n: SimNode): void {
  const d = n.pg.data;
  if (d === undefined) return;
  if (w.syncMode !== 'off') {
    for (const h of w.ackHeads) {
      if (!isPrefix(h, d.wal)) w.violation(`acknowledged commits lost: ${n.name} promoted at tl${walTimeline(d.wal)}@${walEnd(d.wal)} without the acknowledged history up to tl${walTimeline(h)}@${walEnd(h)}`);
    }
  }
  d.wal = promote(d.wal, w.newBranch());
  d.standby = false;
  d.upstream = null;
  d.controlState = 'in production';
}

/** initdb: a new data directory with a new system identifier. */
export function initdb(w: World, n: SimNode): void {
  w.initdbs++;
  const sysid = w.newSysid();
  n.pg.data = { sysid, wal: [{ branch: w.newBranch(), tl: 1, start: 0, end: 1000 }], standby: false, upstream: null, controlState: 'shut down' };
}

/**
 * PostgresController.setSyncStandbyNames: kept in postgresql.conf; on a running primary it is
 * reloaded and its LSN recorded (the dummy transaction is not modelled).
 */
export function setSsn(n: SimNode, value: string | null): void {
  n.ssn = value;
  if (n.pg.writable) {
    n.ssnSeen = n.ssn ?? '';
    n.ssnSetAt = n.pg.lsn;
  }
}
