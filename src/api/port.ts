// What the REST API's unsafe endpoints need from the rest of the agent. The agent implements it;
// src/api/operations.ts validates requests, applies Patroni's rules and status codes, and calls
// these methods. Everything here may do IO and must honour its own deadline.

import type { ClusterView, PeerStatus } from '../core/model.ts';

/** A restart scheduled through POST /restart, as published in members/<name>.scheduled_restart. */
export interface ScheduledRestart {
  /** ISO-8601 with offset. */
  schedule: string;
  role?: 'primary' | 'standby_leader' | 'replica';
  postgres_version?: string;
  restart_pending?: boolean;
  timeout?: number;
}

export interface RestartRequest {
  role?: 'primary' | 'standby_leader' | 'replica';
  /** Restart only if the running server version is lower than this (e.g. "15.4"). */
  postgres_version?: string;
  /** Restart only if a pending restart is flagged. */
  restart_pending?: boolean;
  /** Seconds to wait for PostgreSQL to start (overrides primary_start_timeout for this start). */
  timeout?: number;
}

export type RestartOutcome =
  | { ok: true }
  | { ok: false; reason: 'conditions' | 'busy' | 'starting' | 'failed'; message: string };

/** A primary's POST /failsafe (patroni-interfaces.md 2.10), validated by the API. */
export interface FailsafeSender {
  /** The sender's member name (it claims to be the running primary). */
  name: string;
  /** Its PostgreSQL connection URL (replicas follow it while the DCS shows no leader). */
  connUrl: string;
  /** Its REST API URL. */
  apiUrl: string;
  /** Its replication slots, name -> LSN (its own slot name mapped to its current LSN); undefined when not sent. */
  slots: Record<string, number> | undefined;
}

export interface OperationsPort {
  /** This node's name. */
  readonly name: string;
  /** A fresh, consistent read of the cluster (never the cached view). Rejects on DCS errors. */
  readCluster(): Promise<ClusterView>;
  /** Write /failover ({} clears it); with a version, compare-and-set. false: CAS lost. */
  writeFailover(value: Record<string, unknown>, version?: string): Promise<boolean>;
  /** Write /config; with a version, compare-and-set. false: CAS lost. */
  writeConfig(config: Record<string, unknown>, version?: string): Promise<boolean>;
  /** GET a member's status (GET <api_url>), 2 s deadline, never rejects. */
  fetchPeer(name: string, apiUrl: string): Promise<PeerStatus>;
  /** Run the HA loop now (after a switchover request or a configuration change). */
  wakeup(): void;

  /** Restart PostgreSQL now if the filters match. Resolves when done (or refused). */
  restart(req: RestartRequest): Promise<RestartOutcome>;
  /** Store a scheduled restart for the loop to run. false: one is already scheduled. */
  scheduleRestart(sr: ScheduledRestart): boolean;
  /** Remove the scheduled restart. false: none was scheduled. */
  cancelScheduledRestart(): boolean;
  /** Re-read the configuration file and apply it (SIGHUP semantics). */
  reload(): Promise<void>;
  /** Wipe and re-clone this replica. Resolves when the re-clone started (or was refused). */
  reinitialize(opts: { force: boolean; fromLeader: boolean }): Promise<{ ok: true } | { ok: false; message: string }>;

  /**
   * POST /failsafe accepted (failsafe_mode is on and this node is not a running primary: the API
   * checked both from the snapshot). Cache the sender with the current time; the cache is valid
   * for ttl seconds (the core then follows it and does not race while the DCS shows no leader;
   * see FailsafeFacts.leader). Returns this node's last known receive/replay LSN, sent back in the
   * `lsn` response header (undefined: header omitted). Must not block or do IO.
   *
   * Optional so that a port without failsafe support still compiles: without it POST /failsafe
   * answers 503, which makes the sending primary demote (the safe side).
   */
  failsafeReceived?(sender: FailsafeSender): { lsn: number | undefined };

  /**
   * POST /vigil/detach (issue 13, ./detach.ts): stop streaming from `leader` and promise not to
   * stream from it while the leader key and /sync keep the versions given. Optional: without it the
   * endpoint answers 503 (the asking standby then keeps to the lease rule).
   */
  detachFrom?(req: { leader: string; leader_version: string; leader_session: string; sync_version: string }): Promise<{ name: string; detached: boolean; flushLsn: number; timeline: number; tags: Record<string, unknown> }>;
}
