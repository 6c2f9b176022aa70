// A toy model of a PostgreSQL WAL history, for the simulator (tests only).
//
// A history is a list of contiguous segments; each segment is one stretch of one timeline. Every
// segment also carries a `branch`: a world-unique identity of the timeline. PostgreSQL only sees
// timeline *numbers*, and two nodes that promote independently from the same history can end up
// with the same number on different branches. The simulator lets PostgreSQL decide with numbers
// (as the real server does) and checks safety with branches (the truth).

export interface Segment {
  /** World-unique identity of this timeline (the truth). */
  branch: number;
  /** Timeline number, as PostgreSQL shows it. */
  tl: number;
  start: number;
  /** End of this segment; for the last segment: the current position. */
  end: number;
}

export type Wal = readonly Segment[];

export function walEnd(w: Wal): number {
  return w[w.length - 1]?.end ?? 0;
}

export function walTimeline(w: Wal): number {
  return w[w.length - 1]?.tl ?? 1;
}

/** A copy of `w` cut at `lsn` (lsn must not exceed walEnd(w)). */
export function truncate(w: Wal, lsn: number): Segment[] {
  const out: Segment[] = [];
  for (const s of w) {
    if (out.length > 0 && s.start > lsn) break;
    out.push({ ...s, end: Math.min(s.end, lsn) });
    if (s.end >= lsn) break;
  }
  return out;
}

/** Truth: is everything `a` holds also in `b` (a is a prefix of b)? false = diverged. */
export function isPrefix(a: Wal, b: Wal): boolean {
  for (let i = 0; i < a.length; i++) {
    const sa = a[i] as Segment;
    const sb = b[i];
    if (sb === undefined || sb.branch !== sa.branch || sb.start !== sa.start) return false;
    if (i < a.length - 1 ? sa.end !== sb.end : sa.end > sb.end) return false;
  }
  return true;
}

/**
 * PostgreSQL's own view (timeline numbers only): may a standby at the end of `a` stream from an
 * upstream whose history is `b`? Same timeline: only if not ahead of it. Older timeline: only if
 * the upstream left that timeline at or after our position. Newer timeline: never.
 */
export function pgCanStream(a: Wal, b: Wal): boolean {
  const atl = walTimeline(a);
  const btl = walTimeline(b);
  const pos = walEnd(a);
  if (atl === btl) return pos <= walEnd(b);
  if (atl > btl) return false;
  let switchAt: number | undefined;
  for (const s of b) if (s.tl === atl) switchAt = s.end;
  return switchAt !== undefined && pos <= switchAt;
}

/** Bytes a promotion writes on its new timeline at once (the end-of-recovery checkpoint). */
export const PROMOTE_BYTES = 100;

/** `w` promoted to a new timeline (highest number it knows + 1) on a new branch. */
export function promote(w: Wal, branch: number): Segment[] {
  const tl = Math.max(...w.map((s) => s.tl)) + 1;
  const end = walEnd(w);
  return [...w.map((s) => ({ ...s })), { branch, tl, start: end, end: end + PROMOTE_BYTES }];
}

/** `w` with `bytes` more written on its current timeline. */
export function append(w: Wal, bytes: number): Segment[] {
  const out = w.map((s) => ({ ...s }));
  const last = out[out.length - 1];
  if (last !== undefined) last.end += bytes;
  return out;
}
