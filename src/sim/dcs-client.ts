// One node's Dcs client over the simulated etcd (./dcs.ts), for the simulator's node driver.
//
// It hides the lease the way src/dcs/etcd3.ts does: granted on first need, kept alive by
// acquireLeader/takeLeader/refreshLeader (always) and touchMember (when the last keepalive is a
// second old or more), re-granted when the DCS no longer knows it or when setTtl changed the TTL,
// revoked by close() unless keepLease. touchMember skips the write when the value and the lease
// are unchanged.
//
// Every method does its work synchronously when called and returns a settled promise: nothing
// waits for real time (the simulator runs on a simulated clock). watchLeader is the exception by nature: it resolves when
// the world changes /leader or advances the clock past the timeout (SimDcs.tick()).
//
// Outcomes as in the Dcs contract: `false` = a compare-and-set failed; DcsError('DCS_UNAVAILABLE')
// (retryable) when the simulated DCS is down or this node is partitioned from it; after close(),
// or when the caller's signal is already aborted, DcsError('DCS_UNAVAILABLE') not retryable.

import { DcsError, type CallOptions, type Dcs } from '../dcs/dcs.ts';
import { encodeMember } from '../dcs/codec.ts';
import type { ClusterView, HistoryLine, LeaderStatus, MemberData } from '../core/model.ts';
import { SimDcsUnavailable, SimLeaseNotFound, type SimDcs } from './dcs.ts';

export interface SimDcsClientOptions {
  /** Cluster prefix reported by `prefix` (the simulated DCS holds one cluster). */
  prefix?: string;
  /** Lease TTL, seconds (default 30). */
  ttl?: number;
  /** Kept for the interface: a simulated call never waits (default 10). */
  retryTimeout?: number;
}

export class SimDcsClient implements Dcs {
  readonly prefix: string;
  readonly #dcs: SimDcs;
  readonly #name: string;
  readonly #clock: () => number;
  #ttlMs: number;
  #retryTimeout: number;
  #lease: { id: number; ttlMs: number } | undefined;
  #lastKeepalive = 0;
  /** Last member value written, and the lease it was bound to. */
  #member: { value: string; lease: number } | undefined;
  #closed = false;
  /** Aborted by close(): ends our pending watches. */
  readonly #closing = new AbortController();

  constructor(dcs: SimDcs, name: string, opts: SimDcsClientOptions = {}) {
    this.#dcs = dcs;
    this.#name = name;
    this.#clock = () => dcs.now();
    this.prefix = opts.prefix ?? '/service/sim/';
    this.#ttlMs = (opts.ttl ?? 30) * 1000;
    this.#retryTimeout = opts.retryTimeout ?? 10;
  }

  get name(): string {
    return this.#name;
  }

  /** The lease this client holds now (undefined before the first grant and after close). */
  get leaseId(): number | undefined {
    return this.#lease?.id;
  }

  get retryTimeout(): number {
    return this.#retryTimeout;
  }

  /** Run one simulated request: SimDcs failures become DcsError. */
  #call<T>(opts: CallOptions | undefined, fn: () => T): T {
    if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'simulated DCS client closed', { retryable: false });
    if (opts?.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', 'simulated DCS call aborted by caller', { cause: opts.signal.reason, retryable: false });
    try {
      return fn();
    } catch (err) {
      if (err instanceof SimDcsUnavailable) throw new DcsError('DCS_UNAVAILABLE', `simulated DCS: ${err.message}`, { cause: err });
      throw err;
    }
  }

  #grant(): number {
    const ttlMs = this.#ttlMs;
    const id = this.#dcs.grant(this.#name, ttlMs);
    this.#lease = { id, ttlMs };
    this.#lastKeepalive = this.#clock();
    return id;
  }

  /** Our lease, after a keepalive when `force` or the last one is a second old; granted if needed. */
  #keepalive(force: boolean): number {
    const lease = this.#lease;
    if (lease === undefined || lease.ttlMs !== this.#ttlMs) return this.#grant();
    if (!force && this.#clock() - this.#lastKeepalive < 1000) return lease.id;
    if (!this.#dcs.keepalive(this.#name, lease.id)) {
      this.#lease = undefined;
      return this.#grant();
    }
    this.#lastKeepalive = this.#clock();
    return lease.id;
  }

  /** `fn` with our lease; if the DCS no longer knows it, once more with a new lease. */
  #withLease<T>(force: boolean, fn: (lease: number) => T): T {
    const id = this.#keepalive(force);
    try {
      return fn(id);
    } catch (err) {
      if (!(err instanceof SimLeaseNotFound)) throw err;
      this.#lease = undefined;
      return fn(this.#grant());
    }
  }

  async readCluster(opts?: CallOptions): Promise<ClusterView> {
    return this.#call(opts, () => this.#dcs.readCluster(this.#name));
  }

  async touchMember(data: MemberData, opts?: CallOptions): Promise<void> {
    const value = encodeMember(data);
    this.#call(opts, () =>
      this.#withLease(false, (lease) => {
        if (this.#member?.value === value && this.#member.lease === lease) return;
        this.#member = undefined;
        this.#dcs.touchMember(this.#name, lease, JSON.parse(value) as MemberData);
        this.#member = { value, lease };
      }),
    );
  }

  async deleteMember(opts?: CallOptions): Promise<void> {
    this.#member = undefined;
    this.#call(opts, () => this.#dcs.deleteMember(this.#name));
  }

  async attemptInitialize(opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#dcs.createInitialize(this.#name));
  }

  async writeInitialize(sysid: string, opts?: CallOptions): Promise<void> {
    this.#call(opts, () => this.#dcs.writeInitialize(this.#name, sysid));
  }

  async deleteInitialize(opts?: CallOptions): Promise<void> {
    this.#call(opts, () => this.#dcs.deleteInitialize(this.#name));
  }

  async acquireLeader(opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#withLease(true, (lease) => this.#dcs.acquireLeader(this.#name, lease)));
  }

  async takeLeader(opts?: CallOptions): Promise<void> {
    this.#call(opts, () => this.#withLease(true, (lease) => this.#dcs.takeLeader(this.#name, lease)));
  }

  async refreshLeader(opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#withLease(true, (lease) => this.#dcs.refreshLeader(this.#name, lease)));
  }

  async releaseLeader(opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#dcs.releaseLeader(this.#name));
  }

  async writeConfig(config: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#dcs.writeConfig(this.#name, config, version));
  }

  async writeFailover(value: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#dcs.writeFailover(this.#name, value, version));
  }

  async writeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#dcs.writeSync(this.#name, value, version));
  }

  async deleteSync(version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#call(opts, () => this.#dcs.deleteSync(this.#name, version));
  }

  async writeHistory(history: HistoryLine[], opts?: CallOptions): Promise<void> {
    this.#call(opts, () => this.#dcs.writeHistory(this.#name, history));
  }

  async writeStatus(status: LeaderStatus, opts?: CallOptions): Promise<void> {
    this.#call(opts, () => this.#dcs.writeStatus(this.#name, status));
  }

  async writeFailsafe(value: Record<string, string>, opts?: CallOptions): Promise<void> {
    this.#call(opts, () => this.#dcs.writeFailsafe(this.#name, value));
  }

  async deleteCluster(opts?: CallOptions): Promise<void> {
    this.#member = undefined;
    this.#call(opts, () => this.#dcs.deleteCluster(this.#name));
  }

  /**
   * Resolves when /leader changes after `revision` (a ClusterView.revision; anything else: after
   * the current revision), when the simulated clock passes `timeoutMs` from now, on abort or on
   * close. While this node cannot reach the DCS it only times out. Never rejects.
   */
  async watchLeader(revision: string, timeoutMs: number, opts?: CallOptions): Promise<void> {
    if (this.#closed || opts?.signal?.aborted) return;
    const after = /^\d+$/.test(revision) ? Number(revision) : this.#dcs.revision;
    const signal = opts?.signal ? AbortSignal.any([this.#closing.signal, opts.signal]) : this.#closing.signal;
    await this.#dcs.watchLeader(this.#name, after, timeoutMs, signal);
  }

  setTtl(ttlSeconds: number): void {
    this.#ttlMs = ttlSeconds * 1000;
  }

  setRetryTimeout(seconds: number): void {
    this.#retryTimeout = seconds;
  }

  /** End our watches; revoke the lease (best effort) unless keepLease. Idempotent. */
  async close(opts?: { keepLease?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    const lease = this.#lease;
    this.#lease = undefined;
    this.#member = undefined;
    if (lease === undefined || opts?.keepLease === true) return;
    try {
      this.#dcs.revokeAs(this.#name, lease.id);
    } catch (err) {
      if (!(err instanceof SimDcsUnavailable)) throw err;
    }
  }
}
