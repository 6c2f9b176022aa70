// The checker: pure functions over what the writers recorded and what the final primary holds.
// Definitions (docs/fault-testing.md explains them):
//
// - Lost write: an acknowledged id absent on the final primary.
// - Loss bound (asynchronous replication): a lost write must have been acknowledged by the node
//   that was primary when a fault began, at a WAL position above
//     lsnAt(thatPrimary, faultStart - ttl) - maximum_lag_on_failover,
//   where lsnAt(n, t) is the highest position n acknowledged at or before t. That is the spec's
//   "async worst-case loss = maximum_lag_on_failover + WAL written in the last ttl seconds"
//   (before the fault, plus anything the old primary accepted after it began). A lost write outside
//   every fault's window, or acknowledged by another node, violates the bound.
// - Split brain: an epoch is one writer connection to one node; its interval is [first, last]
//   server-clock start time of the INSERTs acknowledged over it. All servers share one clock, and a
//   correct handover orders old primary's last commit < its demotion < new primary's promotion <
//   new primary's first statement, so intervals of two different nodes must not intersect at all.
// - Verdict per replication mode (verdict()): every mode: no split brain. async: every lost write
//   within the bound above. sync / quorum / sync-strict: no lost write at all.
// - A write whose commit PostgreSQL reported with "canceling wait for synchronous replication"
//   (Ack.syncCancelled) was never acknowledged as replicated: it never counts as lost, but it does
//   count as the node accepting a write for the split-brain check.

/** Replication modes the suite runs (set through bootstrap.dcs; see harness.ts replicationDcs). */
export const REPLICATION_MODES = ['async', 'sync', 'quorum', 'sync-strict'] as const;
export type ReplicationMode = (typeof REPLICATION_MODES)[number];

/** Whether the mode promises that no acknowledged write is lost on failover. */
export function isSynchronous(mode: ReplicationMode): boolean {
  return mode !== 'async';
}

export interface Ack {
  id: number;
  writer: string;
  node: string;
  at: number;
  serverUs: number;
  lsn: number;
  epoch: number;
  /** Committed with the "canceling wait for synchronous replication" warning: not acknowledged. */
  syncCancelled?: boolean;
}

export interface FaultRecord {
  name: string;
  /** performance.now() when injection began / the fault was healed / the cluster was healthy again. */
  start: number;
  healed: number;
  recovered: number;
  /** Node that answered /primary just before the fault. */
  primaryBefore: string | undefined;
  /** Node that answered /primary once healthy again. */
  primaryAfter: string | undefined;
  /** Free-form detail (e.g. the switchover reply). */
  note?: string;
}

export interface EpochInterval {
  node: string;
  writer: string;
  epoch: number;
  firstUs: number;
  lastUs: number;
  acks: number;
}

export interface SplitBrainWindow {
  a: EpochInterval;
  b: EpochInterval;
  /** Intersection of the two intervals (server clock, µs). */
  fromUs: number;
  toUs: number;
}

export interface FaultResult {
  fault: FaultRecord;
  /** Acknowledged writes (all writers) between the fault's start and recovery. */
  acked: number;
  lost: number[];
  /** Lowest WAL position a write could be lost at while staying within the bound. */
  boundLsn: number | undefined;
  /** Longest stretch (ms) without an acknowledgement from the main writer while the fault lasted. */
  unavailableMs: number;
  recoveryMs: number;
}

export interface CheckReport {
  totalAcked: number;
  /** Writes committed with the sync-wait-cancelled warning (not acknowledged, not checked for loss). */
  syncCancelled: number;
  lost: number[];
  /** Lost ids not explained by any fault within the bound (must be empty in async mode). */
  unbounded: number[];
  splitBrain: SplitBrainWindow[];
  faults: FaultResult[];
}

export function epochIntervals(acks: readonly Ack[]): EpochInterval[] {
  const m = new Map<number, EpochInterval>();
  for (const a of acks) {
    const e = m.get(a.epoch);
    if (e === undefined) m.set(a.epoch, { node: a.node, writer: a.writer, epoch: a.epoch, firstUs: a.serverUs, lastUs: a.serverUs, acks: 1 });
    else {
      e.firstUs = Math.min(e.firstUs, a.serverUs);
      e.lastUs = Math.max(e.lastUs, a.serverUs);
      e.acks++;
    }
  }
  return [...m.values()].sort((x, y) => x.firstUs - y.firstUs);
}

/** Every pair of epochs on different nodes whose intervals intersect. */
export function splitBrainWindows(acks: readonly Ack[]): SplitBrainWindow[] {
  const iv = epochIntervals(acks);
  const out: SplitBrainWindow[] = [];
  for (let i = 0; i < iv.length; i++) {
    const a = iv[i]!;
    for (let j = i + 1; j < iv.length && iv[j]!.firstUs <= a.lastUs; j++) {
      const b = iv[j]!;
      if (b.node !== a.node) out.push({ a, b, fromUs: Math.max(a.firstUs, b.firstUs), toUs: Math.min(a.lastUs, b.lastUs) });
    }
  }
  return out;
}

/** Highest LSN `node` acknowledged at or before time t (performance.now() scale). */
function lsnAt(acks: readonly Ack[], node: string, t: number): number | undefined {
  let best: number | undefined;
  for (const a of acks) if (a.node === node && a.at <= t && (best === undefined || a.lsn > best)) best = a.lsn;
  return best;
}

export interface CheckInput {
  acks: readonly Ack[];
  /** Name of the writer whose gaps measure unavailability. */
  mainWriter: string;
  present: ReadonlySet<number>;
  faults: readonly FaultRecord[];
  ttlSeconds: number;
  maximumLagOnFailover: number;
}

export function check(inp: CheckInput): CheckReport {
  const { faults } = inp;
  // Split brain looks at every write a node accepted; everything else only at acknowledged ones.
  const acks = inp.acks.filter((a) => a.syncCancelled !== true);
  const lostAcks = acks.filter((a) => !inp.present.has(a.id));
  const main = acks.filter((a) => a.writer === inp.mainWriter).map((a) => a.at).sort((x, y) => x - y);
  const explained = new Set<number>();
  const results: FaultResult[] = faults.map((f, idx) => {
    const windowStart = f.start - inp.ttlSeconds * 1000;
    const prevRecovered = idx > 0 ? faults[idx - 1]!.recovered : -Infinity;
    const ref = f.primaryBefore === undefined ? undefined : lsnAt(acks, f.primaryBefore, windowStart);
    const boundLsn = ref === undefined ? undefined : ref - inp.maximumLagOnFailover;
    const lost: number[] = [];
    for (const a of lostAcks) {
      // A write belongs to this fault if acknowledged after the previous fault recovered and before
      // this one did; it is within the bound if the fault's primary acknowledged it above boundLsn.
      if (a.at <= prevRecovered || a.at > f.recovered) continue;
      lost.push(a.id);
      if (a.node === f.primaryBefore && (boundLsn === undefined || a.lsn > boundLsn)) explained.add(a.id);
    }
    let gap = 0;
    let prev = f.start;
    for (const t of main) {
      if (t <= f.start) continue;
      gap = Math.max(gap, t - prev);
      prev = t;
      if (t > f.recovered) break;
    }
    if (prev <= f.recovered) gap = Math.max(gap, f.recovered - prev);
    const acked = acks.filter((a) => a.at > f.start && a.at <= f.recovered).length;
    return { fault: f, acked, lost, boundLsn, unavailableMs: gap, recoveryMs: f.recovered - f.start };
  });
  return {
    totalAcked: acks.length,
    syncCancelled: inp.acks.length - acks.length,
    lost: lostAcks.map((a) => a.id),
    unbounded: lostAcks.filter((a) => !explained.has(a.id)).map((a) => a.id),
    splitBrain: splitBrainWindows(inp.acks),
    faults: results,
  };
}

/**
 * What the report violates in `mode` (empty = the run passes): split brain in every mode; in async
 * mode a lost write outside the bound; in synchronous modes any lost write.
 */
export function verdict(r: CheckReport, mode: ReplicationMode): string[] {
  const out: string[] = [];
  if (r.totalAcked === 0) out.push('the writers acknowledged nothing');
  if (r.splitBrain.length > 0) out.push(`${r.splitBrain.length} split-brain window(s)`);
  if (isSynchronous(mode)) {
    if (r.lost.length > 0) out.push(`${r.lost.length} acknowledged write(s) lost in ${mode} mode, where none may be [${ids(r.lost)}]`);
  } else if (r.unbounded.length > 0) {
    out.push(`${r.unbounded.length} write(s) lost outside the asynchronous bound [${ids(r.unbounded)}]`);
  }
  return out;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd()).join('\n');
}

function ids(list: readonly number[], max = 12): string {
  return list.length <= max ? list.join(',') : `${list.slice(0, max).join(',')},… (${list.length})`;
}

/** Human-readable report: one row per fault, then totals and any split-brain window. */
export function formatReport(title: string, r: CheckReport, mode?: ReplicationMode): string {
  const rows = [['fault', 'primary before→after', 'acked', 'lost', 'in bound', 'unavail ms', 'recovery ms', 'note']];
  for (const f of r.faults) {
    const unb = f.lost.filter((id) => r.unbounded.includes(id)).length;
    rows.push([
      f.fault.name,
      `${f.fault.primaryBefore ?? '?'}→${f.fault.primaryAfter ?? '?'}`,
      String(f.acked),
      String(f.lost.length),
      f.lost.length === 0 ? '-' : mode !== undefined && isSynchronous(mode) ? 'NO (none allowed)' : unb === 0 ? 'yes' : `NO (${unb})`,
      String(Math.round(f.unavailableMs)),
      String(Math.round(f.recoveryMs)),
      f.fault.note ?? '',
    ]);
  }
  const out = [`== ${title}${mode === undefined ? '' : ` (replication: ${mode})`}`, table(rows)];
  out.push(`acknowledged ${r.totalAcked}${r.syncCancelled ? ` (+${r.syncCancelled} with sync wait cancelled, not counted)` : ''}, lost ${r.lost.length}${r.lost.length ? ` [${ids(r.lost)}]` : ''}, outside bound ${r.unbounded.length}${r.unbounded.length ? ` [${ids(r.unbounded)}]` : ''}`);
  out.push(`split-brain windows: ${r.splitBrain.length}`);
  for (const w of r.splitBrain) {
    out.push(
      `  ${w.a.node} (${w.a.writer}, epoch ${w.a.epoch}, ${w.a.acks} acks) and ${w.b.node} (${w.b.writer}, epoch ${w.b.epoch}, ${w.b.acks} acks) ` +
        `both acknowledged during ${new Date(w.fromUs / 1000).toISOString()} .. ${new Date(w.toUs / 1000).toISOString()} (${((w.toUs - w.fromUs) / 1000).toFixed(1)} ms)`,
    );
  }
  if (mode !== undefined) {
    const v = verdict(r, mode);
    out.push(`verdict (${mode}): ${v.length === 0 ? 'ok' : v.join('; ')}`);
  }
  return out.join('\n');
}
