// What the REST API knows about this node: plain data, published by the agent after every tick and
// every PostgreSQL probe, read by the handlers without any IO. A hung PostgreSQL or DCS can only make
// the snapshot stale, never make a request wait.
//
// Times: every `...At` / `...Until` field is in milliseconds on the same clock the API server is given
// (`startApiServer({ clock })`, default Date.now). `dcsLastSeen` is wall-clock epoch seconds because
// it is published as is.

import type { ClusterView, DynamicConfig, PgState, Role, Tags } from '../core/model.ts';

/** xlog of a primary: `pg_current_wal_flush_lsn()` as int. */
export interface XlogPrimary {
  location: number;
}

/** xlog of a server in recovery. */
export interface XlogReplica {
  /** Received WAL (wal receiver written_lsn, else pg_last_wal_receive_lsn, else replay LSN). */
  received_location: number;
  replayed_location: number;
  /** pg_last_xact_replay_timestamp() as PostgreSQL text, null when nothing was replayed. */
  replayed_timestamp: string | null;
  paused: boolean;
}

/** One WAL sender row of pg_stat_replication, as published in the status JSON. */
export interface ReplicationRow {
  usename: string | null;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  sync_state: string | null;
  sync_priority: number | null;
}

export interface NodeSnapshot {
  /** Always published as `patroni`; `version` should be PATRONI_COMPAT_VERSION. */
  patroni: { version: string; scope: string; name: string };

  /** PostgreSQL state as the agent tracks it. */
  state: PgState;
  /**
   * The agent's internal role. Published as is while PostgreSQL is not answering; while it answers
   * (`xlog` present) the published role is derived from `xlog` (see status.ts statusJson).
   */
  role: Role;

  // ---- From the last successful PostgreSQL probe. Leave `xlog` undefined when the probe failed:
  // ---- a node whose state is running but has no xlog is published as state "unknown".
  /** pg_postmaster_start_time() as text, e.g. "2024-08-28 19:39:26.352526+00:00". */
  postmasterStartTime?: string;
  /** server_version_num, e.g. 150004. */
  serverVersion?: number;
  xlog?: XlogPrimary | XlogReplica;
  timeline?: number;
  /** Replica only: "streaming" or "in archive recovery". */
  replicationState?: string;
  /** WAL senders (omitted from the JSON when empty). */
  replication?: ReplicationRow[];
  /** Replica: pg_stat_wal_receiver.latest_end_lsn as int (enters leader_optime, readiness). */
  receiverLatestEndLsn?: number;

  // ---- Leadership and DCS.
  /** This node holds the leader lock (acquired or refreshed successfully). */
  isLeader: boolean;
  /** isLeader stops counting at this time (last successful acquire/refresh + ttl). */
  leaderValidUntil?: number;
  /** Last good read of the DCS. */
  cluster?: ClusterView;
  /** When `cluster` was read. Without it, or when older than ttl, handlers treat the view as absent. */
  clusterReadAt?: number;
  /** Epoch seconds of the last successful DCS read (published as dcs_last_seen; 0 when never). */
  dcsLastSeen?: number;
  /** Failsafe mode is currently keeping this node's role alive. */
  failsafeActive?: boolean;

  /** Effective dynamic configuration (from /config, else bootstrap.dcs), defaults filled. */
  config: DynamicConfig;
  /** Effective tags, as published in the member key (false predefined booleans omitted). */
  tags: Tags;
  /** Database system identifier (pg_controldata). */
  sysid?: string;
  pendingRestart?: boolean;
  pendingRestartReason?: Record<string, { old_value: string; new_value: string }>;
  /** Scheduled restart as published (without postmaster_start_time). */
  scheduledRestart?: Record<string, unknown>;
  /** Maintenance mode; defaults to config.pause. */
  pause?: boolean;
  /** Watchdog required but unusable: peers must not promote this node. */
  watchdogFailed?: boolean;

  // ---- Agent loop.
  /** The core's last one-line reason. */
  lastReason: string;
  /** When the agent published this snapshot. */
  takenAt: number;
  /** When the agent loop is next due to run (liveness); defaults to takenAt + loop_wait. */
  nextRunAt?: number;
}

