// A simulated DCS with etcd v3 semantics, for the simulator (tests only).
//
// A key-value store of one cluster: text values (Patroni's compact JSON, encoded by
// src/dcs/codec.ts), a revision bumped by every write, per key a modification revision (the
// version compare-and-set works on) and an optional lease. Leases expire `ttl` after their last
// keepalive on the simulated clock; their keys vanish with them.
//
// Two faces:
//   - primitives for one node's Dcs client (./dcs-client.ts, the shared HA verbs of
//     src/dcs/kv-dcs.ts over them): range, getKey, createKey, putKey, deleteKey, deleteAll,
//     grant, keepalive, revokeAs, watch;
//   - the world's typed calls (./world.ts): readCluster, acquireLeader, touchMember, ... encoded
//     with the same codec, with the semantics of src/dcs/etcd3.ts.
// Failures are typed like the real store's: `false` for a failed compare, SimDcsUnavailable when
// the DCS is down or the caller is partitioned from it, SimLeaseNotFound when a write names a
// lease the DCS does not know (any more), SimBadRequest for a malformed version.
//
// Watches are promises the world wakes: on every change of the watched key, and on tick(), which
// the world calls after advancing the simulated clock (it expires leases and ends watches whose
// timeout passed). No real timer is ever used.

import type { ClusterView, HistoryLine, LeaderStatus, MemberData } from '../core/model.ts';
import {
  decodeCluster,
  encodeConfig,
  encodeFailover,
  encodeFailsafe,
  encodeHistory,
  encodeMember,
  encodeStatus,
  encodeSync,
  type RawKv,
} from '../dcs/codec.ts';

export class SimDcsUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimDcsUnavailable';
  }
}

/** A write named a lease the DCS does not know (expired or revoked): etcd's "requested lease not found". */
export class SimLeaseNotFound extends Error {
  constructor(lease: number) {
    super(`lease ${lease} not found`);
    this.name = 'SimLeaseNotFound';
  }
}

/** A request the store refuses (a version that is not a revision number). */
export class SimBadRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimBadRequest';
  }
}

export interface SimKv {
  value: string;
  modRevision: number;
  createRevision: number;
  /** 0: not bound to a lease. */
  lease: number;
}

interface Lease {
  id: number;
  owner: string;
  ttlMs: number;
  expiresAt: number;
}

interface Watcher {
  node: string;
  key: string;
  /** Wake when the key changed after this revision. */
  after: number;
  /** Simulated time at which the watch ends anyway. */
  deadline: number;
  resolve: () => void;
}

type SyncValue = { leader: string; sync_standby: string | null; quorum: number | null };

export class SimDcs {
  /** Absolute prefix of the cluster's keys (readCluster decodes under it). */
  readonly prefix: string;
  up = true;
  /** Nodes that cannot reach the DCS. */
  readonly partitioned = new Set<string>();
  revision = 1;

  /** Relative key -> entry. */
  private readonly kv = new Map<string, SimKv>();
  /** Relative key -> revision of its last change (written or deleted). */
  private readonly changed = new Map<string, number>();
  private readonly leases = new Map<number, Lease>();
  private nextLease = 100;
  private readonly watchers = new Set<Watcher>();

  constructor(
    private readonly clock: () => number,
    prefix = '/service/sim/',
  ) {
    this.prefix = prefix;
  }

  /** The simulated clock (ms). */
  now(): number {
    return this.clock();
  }

  // ---- inspection (world and tests; no request, no failure) -----------------------------------

  get leader(): SimKv | undefined {
    return this.kv.get('leader');
  }

  get initialize(): SimKv | undefined {
    return this.kv.get('initialize');
  }

  /** Revision of the last change to /leader (created, deleted, re-bound); 0: never. */
  get leaderRevision(): number {
    return this.changed.get('leader') ?? 0;
  }

  /** The stored text of a key (relative), as on etcd's wire. */
  raw(rel: string): SimKv | undefined {
    const e = this.kv.get(rel);
    return e === undefined ? undefined : { ...e };
  }

  leaseOf(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  /** Number of watches still pending. */
  get pendingWatches(): number {
    return this.watchers.size;
  }

  // ---- the world's side ------------------------------------------------------------------------

  /** Delete keys of leases that expired (only while the DCS runs: a stopped etcd expires nothing). */
  expire(): void {
    if (!this.up) return;
    const now = this.clock();
    for (const l of [...this.leases.values()]) if (l.expiresAt <= now) this.revoke(l.id);
  }

  /** etcd restores leases with a fresh TTL when it comes back (a new raft leader renews them). */
  setUp(up: boolean): void {
    if (up && !this.up) for (const l of this.leases.values()) l.expiresAt = this.clock() + l.ttlMs;
    this.up = up;
  }

  /**
   * The world calls this after advancing the clock (and may after any change of up/partitioned):
   * expires leases, then resolves the watches that are due (see watch).
   */
  tick(): void {
    this.expire();
    this.wakeWatchers();
  }

  /** End a lease now: its keys vanish (one revision). */
  revoke(id: number): void {
    if (!this.leases.delete(id)) return;
    const rev = this.bump();
    for (const [rel, e] of [...this.kv]) {
      if (e.lease !== id) continue;
      this.kv.delete(rel);
      this.changed.set(rel, rev);
    }
    this.wakeWatchers();
  }

  // ---- internals -------------------------------------------------------------------------------

  private check(node: string): void {
    if (!this.up) throw new SimDcsUnavailable('DCS is down');
    if (this.partitioned.has(node)) throw new SimDcsUnavailable(`${node} is partitioned from the DCS`);
    this.expire();
  }

  private reachable(node: string): boolean {
    return this.up && !this.partitioned.has(node);
  }

  private bump(): number {
    return ++this.revision;
  }

  private requireLease(id: number): void {
    if (id !== 0 && !this.leases.has(id)) throw new SimLeaseNotFound(id);
  }

  private versionOf(version: string): number {
    if (!/^\d+$/.test(version)) throw new SimBadRequest(`invalid version ${JSON.stringify(version)}`);
    return Number(version);
  }

  private write(rel: string, value: string, lease: number): void {
    const rev = this.bump();
    const cur = this.kv.get(rel);
    this.kv.set(rel, { value, modRevision: rev, createRevision: cur?.createRevision ?? rev, lease });
    this.changed.set(rel, rev);
    this.wakeWatchers();
  }

  private remove(rel: string): boolean {
    if (!this.kv.delete(rel)) return false;
    this.changed.set(rel, this.bump());
    this.wakeWatchers();
    return true;
  }

  private wakeWatchers(): void {
    const now = this.clock();
    for (const w of [...this.watchers]) {
      if (w.deadline <= now || ((this.changed.get(w.key) ?? 0) > w.after && this.reachable(w.node))) {
        this.watchers.delete(w);
        w.resolve();
      }
    }
  }

  // ---- primitives: one call = one request from `node` ------------------------------------------

  grant(node: string, ttlMs: number): number {
    this.check(node);
    const id = this.nextLease++;
    this.leases.set(id, { id, owner: node, ttlMs, expiresAt: this.clock() + ttlMs });
    return id;
  }

  /** true: the lease is alive and was extended; false: etcd does not know it. */
  keepalive(node: string, id: number): boolean {
    this.check(node);
    const l = this.leases.get(id);
    if (l === undefined) return false;
    l.expiresAt = this.clock() + l.ttlMs;
    return true;
  }

  /** etcd's LeaseTimeToLive: seconds left (rounded down) and granted; undefined: unknown lease. */
  leaseTimeToLive(node: string, id: number): { remaining: number; granted: number } | undefined {
    this.check(node);
    const l = this.leases.get(id);
    if (l === undefined) return undefined;
    return { remaining: Math.max(0, Math.floor((l.expiresAt - this.clock()) / 1000)), granted: Math.round(l.ttlMs / 1000) };
  }

  /**
   * The take-over transaction (etcd: one Txn, one revision): if /leader is at `leaderVersion` bound
   * to `leaderLease` and /sync at `syncVersion`, put /leader = `node` bound to `lease` and /sync =
   * `syncValue`. false: a comparison failed, nothing written.
   */
  takeOver(node: string, expect: { leaderVersion: string; leaderLease: number; syncVersion: string }, lease: number, syncValue: string): boolean {
    this.check(node);
    const leader = this.kv.get('leader');
    if ((leader?.modRevision ?? 0) !== this.versionOf(expect.leaderVersion) || (leader?.lease ?? 0) !== expect.leaderLease) return false;
    if ((this.kv.get('sync')?.modRevision ?? 0) !== this.versionOf(expect.syncVersion)) return false;
    this.requireLease(lease);
    const rev = this.bump();
    for (const [rel, value, l] of [['leader', node, lease], ['sync', syncValue, 0]] as const) {
      const cur = this.kv.get(rel);
      this.kv.set(rel, { value, modRevision: rev, createRevision: cur?.createRevision ?? rev, lease: l });
      this.changed.set(rel, rev);
    }
    this.wakeWatchers();
    return true;
  }

  revokeAs(node: string, id: number): void {
    this.check(node);
    this.revoke(id);
  }

  /** Every key of the cluster (absolute keys, sorted), and the revision of this read. */
  range(node: string): { kvs: RawKv[]; revision: string } {
    this.check(node);
    const kvs = [...this.kv].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([rel, e]) => this.rawKv(rel, e));
    return { kvs, revision: String(this.revision) };
  }

  getKey(node: string, rel: string): RawKv | undefined {
    this.check(node);
    const e = this.kv.get(rel);
    return e === undefined ? undefined : this.rawKv(rel, e);
  }

  private rawKv(rel: string, e: SimKv): RawKv {
    return { key: this.prefix + rel, value: e.value, modRevision: String(e.modRevision), createRevision: String(e.createRevision), lease: String(e.lease) };
  }

  /** Create only if absent, bound to `lease` (0: none). false: it exists. */
  createKey(node: string, rel: string, value: string, lease = 0): boolean {
    this.check(node);
    if (this.kv.has(rel)) return false;
    this.requireLease(lease);
    this.write(rel, value, lease);
    return true;
  }

  /** Put bound to `lease` (0: none); with a version, only if the key's modRevision is it (absent = 0). */
  putKey(node: string, rel: string, value: string, opts: { version?: string | undefined; lease?: number } = {}): boolean {
    this.check(node);
    if (opts.version !== undefined && (this.kv.get(rel)?.modRevision ?? 0) !== this.versionOf(opts.version)) return false;
    this.requireLease(opts.lease ?? 0);
    this.write(rel, value, opts.lease ?? 0);
    return true;
  }

  /** Delete; with a version, only if the key's modRevision is it. */
  deleteKey(node: string, rel: string, version?: string): boolean {
    this.check(node);
    if (version !== undefined && (this.kv.get(rel)?.modRevision ?? 0) !== this.versionOf(version)) return false;
    this.remove(rel);
    return true;
  }

  /** Delete every key of the cluster (leases stay), in one revision. */
  deleteAll(node: string): void {
    this.check(node);
    if (this.kv.size === 0) return;
    const rev = this.bump();
    for (const rel of this.kv.keys()) this.changed.set(rel, rev);
    this.kv.clear();
    this.wakeWatchers();
  }

  /**
   * Resolve when `rel` changes after revision `after` (seen by `node`: a node that cannot reach
   * the DCS is not told, its watch hangs like a stream to a silent server), or when the clock
   * reaches `now() + timeoutMs`, or when the signal aborts. Never rejects.
   */
  watch(node: string, rel: string, after: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) {
        resolve();
        return;
      }
      const w: Watcher = {
        node,
        key: rel,
        after,
        deadline: this.clock() + Math.max(0, timeoutMs),
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        if (this.watchers.delete(w)) w.resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.watchers.add(w);
      this.wakeWatchers();
    });
  }

  /** watch() on /leader. */
  watchLeader(node: string, after: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.watch(node, 'leader', after, timeoutMs, signal);
  }

  // ---- the world's typed calls (the semantics of src/dcs/etcd3.ts) -----------------------------

  readCluster(node: string): ClusterView {
    const { kvs, revision } = this.range(node);
    return decodeCluster(this.prefix, kvs, revision);
  }

  createInitialize(node: string): boolean {
    return this.createKey(node, 'initialize', '');
  }

  writeInitialize(node: string, sysid: string): void {
    this.putKey(node, 'initialize', sysid);
  }

  deleteInitialize(node: string): void {
    this.deleteKey(node, 'initialize');
  }

  /** Compare-and-set on the version when one is given, else a plain put. */
  writeConfig(node: string, config: Record<string, unknown>, version?: string): boolean {
    return this.putKey(node, 'config', encodeConfig(config), { version });
  }

  writeStatus(node: string, status: LeaderStatus): void {
    this.putKey(node, 'status', encodeStatus(status));
  }

  writeHistory(node: string, history: HistoryLine[]): void {
    this.putKey(node, 'history', encodeHistory(history));
  }

  /** Compare-and-set on the version when one is given, else a plain put. */
  writeFailover(node: string, value: Record<string, unknown>, version?: string): boolean {
    return this.putKey(node, 'failover', encodeFailover(value), { version });
  }

  writeFailsafe(node: string, value: Record<string, string>): void {
    this.putKey(node, 'failsafe', encodeFailsafe(value));
  }

  /** Compare-and-set on the version when one is given, else a plain put. */
  writeSync(node: string, value: SyncValue, version?: string): boolean {
    return this.putKey(node, 'sync', encodeSync(value), { version });
  }

  /** Compare-and-delete on the version when one is given. */
  deleteSync(node: string, version?: string): boolean {
    return this.deleteKey(node, 'sync', version);
  }

  deleteCluster(node: string): void {
    this.deleteAll(node);
  }

  /** Create /leader bound to `lease` only if absent. */
  acquireLeader(node: string, lease: number): boolean {
    return this.createKey(node, 'leader', node, lease);
  }

  /** Unconditional put of /leader (right after bootstrap). */
  takeLeader(node: string, lease: number): void {
    this.putKey(node, 'leader', node, { lease });
  }

  /** Already ours on our lease (no write), or re-bind ours, or re-create if absent. */
  refreshLeader(node: string, lease: number): boolean {
    const cur = this.getKey(node, 'leader');
    if (cur !== undefined && cur.value === node && cur.lease === String(lease)) {
      this.requireLease(lease);
      return true;
    }
    if (cur !== undefined && cur.value !== node) return false;
    if (cur !== undefined) return this.putKey(node, 'leader', node, { version: cur.modRevision, lease });
    return this.createKey(node, 'leader', node, lease);
  }

  /** Delete /leader if it holds our name. */
  releaseLeader(node: string): boolean {
    const cur = this.getKey(node, 'leader');
    if (cur?.value !== node) return false;
    return this.deleteKey(node, 'leader', cur.modRevision);
  }

  /** Put members/<node> bound to `lease`, skipped when value and lease are unchanged. */
  touchMember(node: string, lease: number, data: MemberData): void {
    const value = encodeMember(data);
    const cur = this.getKey(node, `members/${node}`);
    if (cur !== undefined && cur.lease === String(lease) && cur.value === value) return;
    this.putKey(node, `members/${node}`, value, { lease });
  }

  deleteMember(node: string): void {
    this.deleteKey(node, `members/${node}`);
  }
}
