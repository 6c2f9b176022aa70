// The DCS interface, in HA verbs. It hides sessions, leases, watches and CAS tokens. The verbs are
// written once (kv-dcs.ts) over each backend's primitive storage operations (backend.ts: etcd3.ts
// today; ZooKeeper, etcd v2, Consul, Kubernetes later); factory.ts makes the client for the
// configuration's DCS section, and test/dcs/contract.ts is the suite every backend passes.
//
// Outcomes the caller must tell apart (design.md principle 6):
//   - a compare-and-set precondition failed  -> the method resolves to `false`
//   - the DCS did not answer within the deadline, or refused -> the method rejects with DcsError
// Every method takes an optional AbortSignal in addition to the adapter's own deadline.

import type { ClusterView, HistoryLine, LeaderStatus, MemberData } from '../core/model.ts';

export type DcsErrorCode = 'DCS_UNAVAILABLE' | 'DCS_PROTOCOL' | 'DCS_AUTH';

export class DcsError extends Error {
  readonly code: DcsErrorCode;
  readonly retryable: boolean;
  constructor(code: DcsErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DcsError';
    this.code = code;
    this.retryable = options?.retryable ?? code === 'DCS_UNAVAILABLE';
  }
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface Dcs {
  /** Base path, e.g. /service/batman/ (always ends with '/'). */
  readonly prefix: string;

  /** Consistent read of the whole cluster subtree. */
  readCluster(opts?: CallOptions): Promise<ClusterView>;

  /** Publish this node's member key (bound to the node's lease; skipped when unchanged). */
  touchMember(data: MemberData, opts?: CallOptions): Promise<void>;
  /** Remove this node's member key. */
  deleteMember(opts?: CallOptions): Promise<void>;

  /** Create /initialize = "" if absent. true: we won the bootstrap race. */
  attemptInitialize(opts?: CallOptions): Promise<boolean>;
  /** Unconditionally write /initialize = sysid. */
  writeInitialize(sysid: string, opts?: CallOptions): Promise<void>;
  /** Delete /initialize (failed bootstrap). */
  deleteInitialize(opts?: CallOptions): Promise<void>;

  /** Create /leader = our name, bound to our lease, only if absent. true: we hold the lock. */
  acquireLeader(opts?: CallOptions): Promise<boolean>;
  /** Unconditionally put /leader = our name with our lease (right after bootstrap). */
  takeLeader(opts?: CallOptions): Promise<void>;
  /** Keep the lock: refresh the lease, re-bind the key if the lease changed. false: not ours any more. */
  refreshLeader(opts?: CallOptions): Promise<boolean>;
  /**
   * The lock holder's keep-alive between ticks (issue 13; KvDcs offers it): extend the session and
   * check, writing nothing, that /leader still holds our name bound to it. false: it does not (the
   * next tick's refreshLeader decides what to do).
   */
  keepLeader?(opts?: CallOptions): Promise<boolean>;
  /**
   * Issue 13 (docs/guarantees.md 7.2; not used by the agent yet): whether this DCS offers the two
   * verbs below (etcd v3 and the simulator do).
   */
  offersTakeOver?(): boolean;
  /** Seconds left on the leader's lease and its granted TTL; undefined: the store does not know it. */
  leaseTimeToLive?(session: string, opts?: CallOptions): Promise<{ remaining: number; granted: number } | undefined>;
  /**
   * In one transaction: if /leader is still at `expect.leaderVersion` bound to
   * `expect.leaderSession` and /sync still at `expect.syncVersion`, put /leader = our name with our
   * lease and /sync = `sync`. false: something changed, nothing was written.
   */
  takeOverLeader?(
    expect: { leaderVersion: string; leaderSession: string; syncVersion: string },
    sync: { leader: string; quorum: number | null; sync_standby: string | null },
    opts?: CallOptions,
  ): Promise<boolean>;
  /** Delete /leader if its value is our name. false: it was not ours. */
  releaseLeader(opts?: CallOptions): Promise<boolean>;

  /** Write /config; with a version, only if the key still has that version. */
  writeConfig(config: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean>;
  /** Write /failover ({} clears it); with a version, CAS. */
  writeFailover(value: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean>;
  /** Write /sync; with a version, CAS. */
  writeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }, version?: string, opts?: CallOptions): Promise<boolean>;
  deleteSync(version?: string, opts?: CallOptions): Promise<boolean>;
  writeHistory(history: HistoryLine[], opts?: CallOptions): Promise<void>;
  writeStatus(status: LeaderStatus, opts?: CallOptions): Promise<void>;
  writeFailsafe(value: Record<string, string>, opts?: CallOptions): Promise<void>;

  /** Delete every key of this cluster (vigil remove). */
  deleteCluster(opts?: CallOptions): Promise<void>;

  /**
   * Resolve when the leader key changes (created, deleted, re-bound) after `revision`, or when
   * `timeoutMs` passes, or when the signal aborts. Never rejects: a broken watch just resolves.
   */
  watchLeader(revision: string, timeoutMs: number, opts?: CallOptions): Promise<void>;

  /** Change the lease TTL (seconds); takes effect on the next lease grant. */
  setTtl(ttlSeconds: number): void;
  /** Set the retry deadline for each call (seconds). */
  setRetryTimeout(seconds: number): void;

  /**
   * Stop background work (keepalives, watches). Idempotent. By default the lease is revoked, so
   * our leader and member keys vanish at once; with keepLease they expire after ttl instead (an
   * agent whose PostgreSQL would not stop must not hand its lock over early).
   */
  close(opts?: { keepLease?: boolean }): Promise<void>;
}
