// Back-off for a log line that repeats (issue 14: a failing action retried every 100 ms logged eight
// lines a second). The first occurrence of a key is logged; while it keeps coming back, it is
// logged again at most once per interval, the interval doubling from `firstMs` up to `maxMs`, with
// the number of occurrences not logged since the last line. A key not seen for `quietMs` is
// forgotten (its next occurrence is logged at once, as new); if some of its occurrences were never
// reported, a summary line is due then (`expired`). forget(key) ends a run explicitly (the failure
// went away).

export interface RepeatOptions {
  firstMs?: number;
  maxMs?: number;
  quietMs?: number;
  /** Keys tracked at most (the oldest is forgotten first). */
  maxKeys?: number;
}

interface Run {
  /** When the key was last logged, and the interval before it may be logged again. */
  loggedAt: number;
  intervalMs: number;
  lastSeen: number;
  /** Occurrences not logged since the last line. */
  suppressed: number;
  /** What the caller attached to the latest occurrence. */
  payload: unknown;
}

/** A run that ended with occurrences nobody saw. */
export interface Expired {
  key: string;
  suppressed: number;
  lastSeen: number;
  /** The payload of the latest occurrence. */
  payload: unknown;
}

export class RepeatFilter {
  private readonly runs = new Map<string, Run>();
  private readonly firstMs: number;
  private readonly maxMs: number;
  private readonly quietMs: number;
  private readonly maxKeys: number;

  constructor(opts: RepeatOptions = {}) {
    this.firstMs = opts.firstMs ?? 1000;
    this.maxMs = opts.maxMs ?? 300_000;
    this.quietMs = opts.quietMs ?? 60_000;
    this.maxKeys = opts.maxKeys ?? 1000;
  }

  /**
   * One occurrence of `key` at `now` (ms, any monotonic clock). Returns undefined when it is not to
   * be logged, else the number of earlier occurrences that were not logged (0 for a new run).
   */
  hit(key: string, now: number, payload?: unknown): number | undefined {
    let run = this.runs.get(key);
    if (run !== undefined && now - run.lastSeen > this.quietMs) {
      this.runs.delete(key);
      run = undefined;
    }
    if (run === undefined) {
      if (this.runs.size >= this.maxKeys) {
        const oldest = this.runs.keys().next().value;
        if (oldest !== undefined) this.runs.delete(oldest);
      }
      this.runs.set(key, { loggedAt: now, intervalMs: this.firstMs, lastSeen: now, suppressed: 0, payload });
      return 0;
    }
    run.lastSeen = now;
    run.payload = payload;
    // Most recently seen last, so that the oldest key is the first to evict.
    this.runs.delete(key);
    this.runs.set(key, run);
    if (now - run.loggedAt < run.intervalMs) {
      run.suppressed++;
      return undefined;
    }
    const skipped = run.suppressed;
    run.suppressed = 0;
    run.loggedAt = now;
    run.intervalMs = Math.min(this.maxMs, run.intervalMs * 2);
    return skipped;
  }

  /** Ends the run of `key`: the occurrences not logged since its last line (0 if none or unknown). */
  forget(key: string): number {
    const run = this.runs.get(key);
    this.runs.delete(key);
    return run?.suppressed ?? 0;
  }

  /** Runs quiet for `quietMs` at `now`, removed; those with unreported occurrences are returned. */
  expired(now: number): Expired[] {
    const out: Expired[] = [];
    for (const [key, run] of this.runs) {
      if (now - run.lastSeen <= this.quietMs) continue;
      this.runs.delete(key);
      if (run.suppressed > 0) out.push({ key, suppressed: run.suppressed, lastSeen: run.lastSeen, payload: run.payload });
    }
    return out;
  }

  get size(): number {
    return this.runs.size;
  }
}
