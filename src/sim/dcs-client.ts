// One node's Dcs client over the simulated etcd (./dcs.ts), for the simulator's node driver: the
// shared HA verbs of src/dcs/kv-dcs.ts (the same code as production) over SimBackend, the
// simulated store's primitives.
//
// So the lease is hidden as for the real etcd: granted on first need, kept alive by
// acquireLeader/takeLeader/refreshLeader (always) and touchMember (when the last keepalive is a
// second old or more, on the simulated clock), re-granted when the DCS no longer knows it or when
// setTtl changed the TTL, revoked by close() unless keepLease. touchMember skips the write when the
// value and the lease are unchanged.
//
// Nothing waits for real time (the simulator runs on a simulated clock): every method settles
// within the microtasks that follow the call. watchLeader is the exception by nature: it resolves
// when /leader changes or when the world advances the clock past the timeout (SimDcs.tick()).
//
// Outcomes as in the Dcs contract: `false` = a compare-and-set failed; DcsError('DCS_UNAVAILABLE')
// (retryable) when the simulated DCS is down or this node is partitioned from it; after close(),
// or when the caller's signal is already aborted, DcsError('DCS_UNAVAILABLE') not retryable;
// DcsError('DCS_PROTOCOL') for a malformed version.

import { DcsError } from '../dcs/dcs.ts';
import { SessionNotFound, type DcsBackend, type Op, type RawKv } from '../dcs/backend.ts';
import { KvDcs } from '../dcs/kv-dcs.ts';
import { SimBadRequest, SimDcsUnavailable, SimLeaseNotFound, type SimDcs } from './dcs.ts';

export interface SimDcsClientOptions {
  /** Cluster prefix the client reports and decodes under (default: the SimDcs's). */
  prefix?: string;
  /** Lease TTL, seconds (default 30). */
  ttl?: number;
  /** Kept for the interface: a simulated call never waits (default 10). */
  retryTimeout?: number;
}

/** The simulated store's primitives for one node, failures mapped to the backend contract. */
export class SimBackend implements DcsBackend {
  readonly prefix: string;
  readonly #dcs: SimDcs;
  readonly #node: string;
  #closed = false;
  /** Aborted by close(): ends our pending watches. */
  readonly #closing = new AbortController();

  constructor(dcs: SimDcs, node: string, prefix = dcs.prefix) {
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`SimBackend: prefix must start and end with '/': ${prefix}`);
    this.#dcs = dcs;
    this.#node = node;
    this.prefix = prefix;
  }

  /** The store's absolute keys, re-rooted under our prefix (the simulated store holds one cluster). */
  #rekey(kv: RawKv): RawKv {
    return { ...kv, key: this.prefix + kv.key.slice(this.#dcs.prefix.length) };
  }

  now(): number {
    return this.#dcs.now();
  }

  /** One simulated request: SimDcs failures become the backend contract's errors. */
  #call<T>(op: Op, fn: () => T): Promise<T> {
    try {
      if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'simulated DCS client closed', { retryable: false });
      if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', 'simulated DCS call aborted by caller', { cause: op.signal.reason, retryable: false });
      return Promise.resolve(fn());
    } catch (err) {
      if (err instanceof SimDcsUnavailable) return Promise.reject(new DcsError('DCS_UNAVAILABLE', `simulated DCS: ${err.message}`, { cause: err }));
      if (err instanceof SimLeaseNotFound) return Promise.reject(new SessionNotFound(`simulated DCS: ${err.message}`));
      if (err instanceof SimBadRequest) return Promise.reject(new DcsError('DCS_PROTOCOL', `simulated DCS: ${err.message}`, { cause: err }));
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  readTree(op: Op): Promise<{ kvs: RawKv[]; revision: string }> {
    return this.#call(op, () => {
      const { kvs, revision } = this.#dcs.range(this.#node);
      return { kvs: kvs.map((kv) => this.#rekey(kv)), revision };
    });
  }

  get(rel: string, op: Op): Promise<RawKv | undefined> {
    return this.#call(op, () => {
      const kv = this.#dcs.getKey(this.#node, rel);
      return kv === undefined ? undefined : this.#rekey(kv);
    });
  }

  create(rel: string, value: string, session: string | undefined, op: Op): Promise<boolean> {
    return this.#call(op, () => this.#dcs.createKey(this.#node, rel, value, session === undefined ? 0 : Number(session)));
  }

  put(rel: string, value: string, opts: { version?: string | undefined; session?: string | undefined }, op: Op): Promise<boolean> {
    return this.#call(op, () => this.#dcs.putKey(this.#node, rel, value, { version: opts.version, lease: opts.session === undefined ? 0 : Number(opts.session) }));
  }

  delete(rel: string, version: string | undefined, op: Op): Promise<boolean> {
    return this.#call(op, () => this.#dcs.deleteKey(this.#node, rel, version));
  }

  deleteTree(op: Op): Promise<void> {
    return this.#call(op, () => this.#dcs.deleteAll(this.#node));
  }

  grantSession(ttlSeconds: number, op: Op): Promise<string> {
    return this.#call(op, () => String(this.#dcs.grant(this.#node, ttlSeconds * 1000)));
  }

  keepAlive(session: string, op: Op): Promise<boolean> {
    return this.#call(op, () => this.#dcs.keepalive(this.#node, Number(session)));
  }

  sessionTimeToLive(session: string, op: Op): Promise<{ remaining: number; granted: number } | undefined> {
    return this.#call(op, () => this.#dcs.leaseTimeToLive(this.#node, Number(session)));
  }

  takeOver(expect: { leaderVersion: string; leaderSession: string; syncVersion: string }, leaderValue: string, session: string, syncValue: string, op: Op): Promise<boolean> {
    return this.#call(op, () => {
      if (leaderValue !== this.#node) throw new SimBadRequest('the simulated store writes a leader key naming its client only');
      return this.#dcs.takeOver(this.#node, { leaderVersion: expect.leaderVersion, leaderLease: Number(expect.leaderSession), syncVersion: expect.syncVersion }, Number(session), syncValue);
    });
  }

  /** While this node cannot reach the DCS the watch only times out (or ends on abort/close). */
  async watch(rel: string, revision: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed || signal?.aborted) return;
    const after = /^\d+$/.test(revision) ? Number(revision) : this.#dcs.revision;
    await this.#dcs.watch(this.#node, rel, after, timeoutMs, signal ? AbortSignal.any([this.#closing.signal, signal]) : this.#closing.signal);
  }

  async close(revoke: string | undefined): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    if (revoke === undefined) return;
    try {
      this.#dcs.revokeAs(this.#node, Number(revoke));
    } catch (err) {
      if (!(err instanceof SimDcsUnavailable)) throw err;
    }
  }
}

export class SimDcsClient extends KvDcs {
  constructor(dcs: SimDcs, name: string, opts: SimDcsClientOptions = {}) {
    super(new SimBackend(dcs, name, opts.prefix), { name, ttl: opts.ttl ?? 30, retryTimeout: opts.retryTimeout ?? 10 });
  }

  /** The lease held now (undefined before the first grant and after close). */
  get leaseId(): number | undefined {
    const s = this.session;
    return s === undefined ? undefined : Number(s);
  }
}
