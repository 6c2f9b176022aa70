// A simulated DCS with etcd v3 semantics, for the simulator (tests only).
//
// Keys live under one cluster; /leader and members/<name> are bound to a per-node lease that
// expires `ttl` after its last keepalive on the simulated clock. Every write bumps the revision.
// The operations mirror src/dcs/etcd3.ts: create-if-absent for /initialize and /leader, the
// leader refresh that re-binds or re-creates a key holding our name, release only by the owner.
// Failures are typed like the real adapter's: `false` for a failed compare, SimDcsUnavailable
// when the DCS is down or the caller is partitioned from it, SimLeaseNotFound when a write names
// a lease the DCS does not know (any more).
//
// Leader watches (watchLeader) are promises the world wakes: on every change of /leader, and on
// tick(), which the world calls after advancing the simulated clock (it expires leases and ends
// watches whose timeout passed). No real timer is ever used.

import type { ClusterView, HistoryLine, LeaderStatus, Member, MemberData } from '../core/model.ts';

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

interface Watcher {
  node: string;
  /** Wake when leaderRevision exceeds this. */
  after: number;
  /** Simulated time at which the watch ends anyway. */
  deadline: number;
  resolve: () => void;
}

interface Kv<T> {
  value: T;
  modRevision: number;
  /** 0: not bound to a lease. */
  lease: number;
}

interface Lease {
  id: number;
  owner: string;
  ttlMs: number;
  expiresAt: number;
}

export class SimDcs {
  up = true;
  /** Nodes that cannot reach the DCS. */
  readonly partitioned = new Set<string>();
  revision = 1;
  /** Revision of the last change to /leader (created, deleted, re-bound). */
  leaderRevision = 0;

  initialize: Kv<string> | undefined;
  config: Kv<Record<string, unknown>> | undefined;
  leader: Kv<string> | undefined;
  status: Kv<LeaderStatus> | undefined;
  history: Kv<HistoryLine[]> | undefined;
  failover: Kv<Record<string, unknown>> | undefined;
  sync: Kv<{ leader: string; sync_standby: string | null; quorum: number | null }> | undefined;
  failsafe: Kv<Record<string, string>> | undefined;
  readonly members = new Map<string, Kv<MemberData>>();
  private readonly leases = new Map<number, Lease>();
  private nextLease = 100;
  private readonly watchers = new Set<Watcher>();

  constructor(private readonly clock: () => number) {}

  /** The simulated clock (ms). */
  now(): number {
    return this.clock();
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

  leaseOf(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  /**
   * The world calls this after advancing the clock (and may after any change of up/partitioned):
   * expires leases, then resolves the watches that are due (see watchLeader).
   */
  tick(): void {
    this.expire();
    this.wakeWatchers();
  }

  /** Number of watches still pending (for tests and the world's bookkeeping). */
  get pendingWatches(): number {
    return this.watchers.size;
  }

  private reachable(node: string): boolean {
    return this.up && !this.partitioned.has(node);
  }

  private wakeWatchers(): void {
    const now = this.clock();
    for (const w of [...this.watchers]) {
      if (w.deadline <= now || (this.leaderRevision > w.after && this.reachable(w.node))) {
        this.watchers.delete(w);
        w.resolve();
      }
    }
  }

  // ---- the client's side (one call = one request from `node`) ----------------------------------

  private check(node: string): void {
    if (!this.up) throw new SimDcsUnavailable('DCS is down');
    if (this.partitioned.has(node)) throw new SimDcsUnavailable(`${node} is partitioned from the DCS`);
    this.expire();
  }

  private bump(): number {
    return ++this.revision;
  }

  private put<T>(value: T, lease = 0): Kv<T> {
    return { value, modRevision: this.bump(), lease };
  }

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

  revoke(id: number): void {
    if (!this.leases.delete(id)) return;
    if (this.leader?.lease === id) this.setLeader(undefined);
    for (const [name, kv] of this.members) if (kv.lease === id) this.members.delete(name);
    this.bump();
  }

  revokeAs(node: string, id: number): void {
    this.check(node);
    this.revoke(id);
  }

  private setLeader(kv: Kv<string> | undefined): void {
    this.leader = kv;
    this.leaderRevision = this.bump();
    this.wakeWatchers();
  }

  private requireLease(id: number): void {
    if (!this.leases.has(id)) throw new SimLeaseNotFound(id);
  }

  /**
   * Resolve when /leader changes after revision `after` (seen by `node`: a node that cannot reach
   * the DCS is not told, its watch hangs like a stream to a silent server), or when the clock
   * reaches `clock() + timeoutMs`, or when the signal aborts. Never rejects.
   */
  watchLeader(node: string, after: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) {
        resolve();
        return;
      }
      const w: Watcher = {
        node,
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

  readCluster(node: string): ClusterView {
    this.check(node);
    const members: Member[] = [...this.members].sort(([a], [b]) => a.localeCompare(b)).map(([name, kv]) => ({
      name,
      data: structuredClone(kv.value),
      version: String(kv.modRevision),
      session: String(kv.lease),
    }));
    const view: ClusterView = {
      initialize: this.initialize?.value,
      config: this.config === undefined ? undefined : structuredClone(this.config.value),
      configVersion: this.config === undefined ? undefined : String(this.config.modRevision),
      leader: this.leader === undefined ? undefined : { name: this.leader.value, version: String(this.leader.modRevision), session: String(this.leader.lease) },
      members,
      failover: undefined,
      sync: this.sync === undefined ? undefined : { ...this.sync.value, version: String(this.sync.modRevision) },
      history: this.history === undefined ? undefined : structuredClone(this.history.value),
      status: this.status === undefined ? undefined : structuredClone(this.status.value),
      failsafe: this.failsafe === undefined ? undefined : { ...this.failsafe.value },
      revision: String(this.revision),
    };
    const fo = this.failover?.value;
    if (fo !== undefined && Object.keys(fo).length > 0) {
      view.failover = { version: String(this.failover?.modRevision), ...(fo as { leader?: string; member?: string; scheduled_at?: string }) };
    }
    return view;
  }

  createInitialize(node: string): boolean {
    this.check(node);
    if (this.initialize !== undefined) return false;
    this.initialize = this.put('');
    return true;
  }

  writeInitialize(node: string, sysid: string): void {
    this.check(node);
    this.initialize = this.put(sysid);
  }

  deleteInitialize(node: string): void {
    this.check(node);
    this.initialize = undefined;
    this.bump();
  }

  /** Compare-and-set on the version when one is given, else a plain put. */
  writeConfig(node: string, config: Record<string, unknown>, version?: string): boolean {
    this.check(node);
    if (version !== undefined && (this.config === undefined || String(this.config.modRevision) !== version)) return false;
    this.config = this.put(structuredClone(config));
    return true;
  }

  writeStatus(node: string, status: LeaderStatus): void {
    this.check(node);
    this.status = this.put({ ...status });
  }

  writeHistory(node: string, history: HistoryLine[]): void {
    this.check(node);
    this.history = this.put(structuredClone(history));
  }

  /** Compare-and-set on the version when one is given, else a plain put. */
  writeFailover(node: string, value: Record<string, unknown>, version?: string): boolean {
    this.check(node);
    if (version !== undefined && (this.failover === undefined || String(this.failover.modRevision) !== version)) return false;
    this.failover = this.put(structuredClone(value));
    return true;
  }

  writeFailsafe(node: string, value: Record<string, string>): void {
    this.check(node);
    this.failsafe = this.put({ ...value });
  }

  /** Delete every key of the cluster (leases stay). */
  deleteCluster(node: string): void {
    this.check(node);
    this.initialize = this.config = this.status = this.history = this.failover = this.sync = this.failsafe = undefined;
    this.members.clear();
    if (this.leader !== undefined) this.setLeader(undefined);
    else this.bump();
  }

  /** etcd3.ts writeSync: compare-and-set on the version when one is given, else a plain put. */
  writeSync(node: string, value: { leader: string; sync_standby: string | null; quorum: number | null }, version?: string): boolean {
    this.check(node);
    if (version !== undefined && (this.sync === undefined || String(this.sync.modRevision) !== version)) return false;
    this.sync = this.put({ ...value });
    return true;
  }

  /** etcd3.ts deleteSync: compare-and-delete on the version when one is given. */
  deleteSync(node: string, version?: string): boolean {
    this.check(node);
    if (version !== undefined && (this.sync === undefined || String(this.sync.modRevision) !== version)) return false;
    this.sync = undefined;
    this.bump();
    return true;
  }

  /** Create /leader bound to `lease` only if absent. */
  acquireLeader(node: string, lease: number): boolean {
    this.check(node);
    this.requireLease(lease);
    if (this.leader !== undefined) return false;
    this.setLeader(this.put(node, lease));
    return true;
  }

  /** Unconditional put of /leader (right after bootstrap). */
  takeLeader(node: string, lease: number): void {
    this.check(node);
    this.requireLease(lease);
    this.setLeader(this.put(node, lease));
  }

  /** etcd3.ts refreshLeader: already ours on our lease, or re-bind ours, or re-create if absent. */
  refreshLeader(node: string, lease: number): boolean {
    this.check(node);
    this.requireLease(lease);
    const cur = this.leader;
    if (cur !== undefined && cur.value === node && cur.lease === lease) return true;
    if (cur !== undefined && cur.value !== node) return false;
    this.setLeader(this.put(node, lease));
    return true;
  }

  /** Delete /leader if it holds our name. */
  releaseLeader(node: string): boolean {
    this.check(node);
    if (this.leader?.value !== node) return false;
    this.setLeader(undefined);
    return true;
  }

  touchMember(node: string, lease: number, data: MemberData): void {
    this.check(node);
    this.requireLease(lease);
    const cur = this.members.get(node);
    if (cur !== undefined && cur.lease === lease && JSON.stringify(cur.value) === JSON.stringify(data)) return;
    this.members.set(node, this.put(structuredClone(data), lease));
  }

  deleteMember(node: string): void {
    this.check(node);
    if (this.members.delete(node)) this.bump();
  }
}
