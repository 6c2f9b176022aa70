// pg_controldata output: parsing and the facts Vigil derives from it. Pure.

import { maybeLsn } from './lsn.ts';

/** Parses `Key:   value` lines of pg_controldata (run with LC_MESSAGES=C). */
export function parseControlData(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const idx = line.indexOf(':');
    if (idx <= 0) continue;
    out[line.slice(0, idx).trim()] = line.slice(idx + 1).trim();
  }
  return out;
}

/** The system identifier ("Database system identifier"), digits only. */
export function controlSysid(cd: Record<string, string>): string | undefined {
  const v = cd['Database system identifier'];
  return v !== undefined && /^\d+$/.test(v) ? v : undefined;
}

/** pg_rewind can run on this data directory: wal_log_hints on or data checksums enabled. */
export function controlRewindable(cd: Record<string, string>): boolean {
  const checksums = cd['Data page checksum version'];
  return cd['wal_log_hints setting'] === 'on' || (checksums !== undefined && checksums !== '0');
}

export interface LocalPosition {
  timeline: number;
  lsn: number;
  inRecovery: boolean;
  /** Start of the latest checkpoint record (for a cleanly shut down primary). */
  checkpointLsn?: number;
}

/**
 * Where a stopped data directory ends (spec 10.3 step 1):
 * - "shut down in recovery" / "in archive recovery": minimum recovery ending location and its
 *   timeline, in recovery (falling back to the checkpoint when that is 0/0 or timeline 0);
 * - otherwise ("shut down", or an unclean primary): latest checkpoint location and timeline.
 * undefined when the output lacks the fields.
 */
export function positionFromControlData(cd: Record<string, string>): LocalPosition | undefined {
  const state = cd['Database cluster state'];
  const ckptLsn = maybeLsn(cd['Latest checkpoint location']);
  const ckptTli = Number(cd["Latest checkpoint's TimeLineID"]);
  if (state === 'shut down in recovery' || state === 'in archive recovery') {
    const lsn = maybeLsn(cd['Minimum recovery ending location']);
    const tli = Number(cd["Min recovery ending loc's timeline"]);
    if (lsn !== undefined && lsn > 0 && Number.isInteger(tli) && tli > 0) return { timeline: tli, lsn, inRecovery: true };
  }
  if (ckptLsn === undefined || !Number.isInteger(ckptTli) || ckptTli <= 0) return undefined;
  return { timeline: ckptTli, lsn: ckptLsn, inRecovery: false, checkpointLsn: ckptLsn };
}

/** Start-up values PostgreSQL requires to be at least those recorded in pg_control (hot standby). */
export const CONTROL_MINIMUMS: Record<string, string> = {
  max_connections: 'max_connections setting',
  max_prepared_transactions: 'max_prepared_xacts setting',
  max_locks_per_transaction: 'max_locks_per_xact setting',
  max_worker_processes: 'max_worker_processes setting',
  max_wal_senders: 'max_wal_senders setting',
};
