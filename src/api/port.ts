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
}
