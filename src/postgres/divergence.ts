// Divergence detection (spec 10.3): does the local data directory hold WAL the leader's timeline
// does not have, so that pg_rewind (or a new base backup) is needed before following it? Pure.

import { lsnToNumber, maybeLsn } from './lsn.ts';
import type { LocalPosition } from './controldata.ts';

export interface HistoryEntry {
  /** The timeline that ended (parent of the next one). */
  parentTli: number;
  /** Where it ended: the first byte on the next timeline. */
  switchLsn: number;
}

/** Parses a timeline history file ("parentTLI<TAB>X/Y<TAB>reason" lines, '#' comments). */
export function parseTimelineHistory(content: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of content.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const f = t.split(/\s+/);
    const tli = Number(f[0]);
    const lsn = maybeLsn(f[1]);
    if (!Number.isInteger(tli) || tli <= 0 || lsn === undefined) continue;
    out.push({ parentTli: tli, switchLsn: lsn });
  }
  return out;
}

export interface DivergenceInput {
  local: LocalPosition;
  leaderTimeline: number;
  /** Leader's history (TIMELINE_HISTORY of its timeline); empty when it is on timeline 1. */
  history: HistoryEntry[];
  /** End of the local shutdown checkpoint record (from pg_waldump), when known. */
  checkpointEnd?: number;
}

/** The decision of spec 10.3 step 3. */
export function decideDivergence(input: DivergenceInput): 'need' | 'not_needed' {
  const { local, leaderTimeline, history } = input;
  if (local.timeline > leaderTimeline) return 'need';
  if (local.timeline === leaderTimeline) return 'not_needed';
  for (const e of history) {
    if (e.parentTli === local.timeline) {
      if (local.inRecovery) return local.lsn > e.switchLsn ? 'need' : 'not_needed';
      // A cleanly shut down primary: its checkpoint record must end exactly at the switch point.
      if (local.lsn >= e.switchLsn) return 'need';
      return input.checkpointEnd !== undefined && input.checkpointEnd === e.switchLsn ? 'not_needed' : 'need';
    }
    if (e.parentTli > local.timeline) return 'need';
  }
  return 'need';
}

/**
 * End of the checkpoint record at `ckptLsn` from `pg_waldump -s <ckpt> -n 2` output (stdout and
 * stderr together): the start of the next record, else the position of the "invalid record
 * length at X/Y" error that ends the WAL, else the record's start + total length, 8-aligned.
 */
export function parseWaldumpRecordEnd(output: string, ckptLsn: number): number | undefined {
  const starts = [...output.matchAll(/lsn: ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/g)].map((m) => lsnToNumber(m[1]!));
  const next = starts.find((s) => s > ckptLsn);
  if (next !== undefined) return next;
  const err = /invalid record length at ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(output);
  if (err !== null) {
    const at = lsnToNumber(err[1]!);
    if (at > ckptLsn) return at;
  }
  const len = /len \(rec\/tot\):\s*\d+\/\s*(\d+)/.exec(output);
  if (len !== null && starts[0] === ckptLsn) {
    const end = ckptLsn + Number(len[1]);
    return Math.ceil(end / 8) * 8;
  }
  return undefined;
}
