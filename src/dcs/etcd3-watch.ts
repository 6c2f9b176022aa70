// The etcd v3 backend's watch on one key (etcd3.ts watch), kept open between the HA loop's waits
// (issue 12): the loop waits on it once per loop_wait, and a new watch stream each time was a new
// gRPC Watch call (and, through the JSON gateway, a new TCP connection) per loop and node.
//
// Contract of wait(revision): resolves when the key changed after `revision` (an event whose
// mod_revision is past it: at once if the open stream already delivered one), when `timeoutMs`
// passes, when `signal` aborts, or when the stream ends (a spurious wake). Never rejects.
//
// The stream is kept while it can answer for the revision asked: it started at or before
// revision + 1 (so no change after `revision` can have been missed), on the endpoint the backend
// uses now, with no request failed since (epoch), and for at most maxAgeMs (a stream that stopped
// delivering without the socket noticing, e.g. a member restarted behind a partition, is replaced
// within that time). Otherwise it is replaced by one starting at revision + 1, as before.

/** An opened watch stream: etcd's JSON lines ("created" ack, then events). */
export interface OpenedWatch {
  lines: AsyncIterable<string>;
  close(): void;
}

export interface KeyWatchOptions {
  /** Open the stream from `from` (undefined: from now); undefined when it cannot be opened. */
  open(from: bigint | undefined, signal: AbortSignal): Promise<OpenedWatch | undefined>;
  /** Changes whenever the stream may no longer be trusted (endpoint switched, a request failed). */
  epoch(): string;
  /** The stream broke while open (not on stop). */
  broken?(err: unknown): void;
  maxAgeMs: number;
}

interface Running {
  from: bigint | undefined;
  epoch: string;
  started: number;
  ctrl: AbortController;
  /** Highest mod_revision of an event delivered. */
  lastEvent: bigint;
  ended: boolean;
}

interface WatchMessage {
  error?: unknown;
  result?: { events?: { kv?: { mod_revision?: string } }[]; canceled?: boolean; compact_revision?: string; header?: { revision?: string } };
}

export class KeyWatch {
  readonly #o: KeyWatchOptions;
  #s: Running | undefined;
  /** Waiting callers and the revision each waits past (undefined: any event from now). */
  #waiters = new Map<() => void, bigint | undefined>();

  constructor(opts: KeyWatchOptions) {
    this.#o = opts;
  }

  async wait(revision: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return;
    const rev = /^\d+$/.test(revision) ? BigInt(revision) : undefined;
    const s = this.#s;
    const usable = s !== undefined && !s.ended && s.epoch === this.#o.epoch() && Date.now() - s.started < this.#o.maxAgeMs
      && (rev === undefined || (s.from !== undefined && s.from <= rev + 1n));
    if (!usable) this.#start(rev === undefined ? undefined : rev + 1n);
    else if (rev !== undefined && s.lastEvent > rev) return;
    const running = this.#s;
    const waiters = this.#waiters;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener('abort', done, { once: true });
      waiters.set(done, rev);
      if (running === undefined || running.ended) done();
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        resolve();
      }
    });
  }

  /** End the stream (and wake the waiters). */
  close(): void {
    this.#stop();
    this.#wake();
  }

  #stop(): void {
    const s = this.#s;
    this.#s = undefined;
    if (s !== undefined) {
      s.ended = true;
      s.ctrl.abort();
    }
  }

  #start(from: bigint | undefined): void {
    this.#stop();
    const s: Running = { from, epoch: this.#o.epoch(), started: Date.now(), ctrl: new AbortController(), lastEvent: -1n, ended: false };
    this.#s = s;
    // Not kept past its age when nobody waits (a leader does not watch its own key).
    setTimeout(() => {
      if (this.#s === s && this.#waiters.size === 0) this.#stop();
    }, this.#o.maxAgeMs).unref();
    void this.#run(s);
  }

  async #run(s: Running): Promise<void> {
    let w: OpenedWatch | undefined;
    try {
      w = await this.#o.open(s.from, s.ctrl.signal);
      if (w === undefined || s.ended) return;
      for await (const line of w.lines) {
        const msg = JSON.parse(line) as WatchMessage;
        const r = msg.result;
        if (msg.error !== undefined || !r) return;
        if (r.canceled || (r.compact_revision && r.compact_revision !== '0')) return;
        if (r.events?.length) {
          for (const ev of r.events) {
            const m = ev.kv?.mod_revision ?? r.header?.revision;
            if (m !== undefined && /^\d+$/.test(m) && BigInt(m) > s.lastEvent) s.lastEvent = BigInt(m);
          }
          this.#wake(s.lastEvent);
        }
      }
    } catch (err) {
      if (!s.ended) this.#o.broken?.(err);
    } finally {
      w?.close();
      if (!s.ended) {
        s.ended = true;
        if (this.#s === s) this.#s = undefined;
        this.#wake();
      }
    }
  }

  /** Wake the waiters an event at `upTo` concerns; all of them without it (the stream ended). */
  #wake(upTo?: bigint): void {
    for (const [w, rev] of [...this.#waiters]) if (upTo === undefined || rev === undefined || upTo > rev) w();
  }
}
