// The domain model shared by the decision core, the adapters and the API.
// Everything here is plain data: no classes, no IO. Names follow Patroni's DCS vocabulary
// (see ../shared/spec/patroni-interfaces.md section 1) and PostgreSQL's (timeline, LSN).

import type { LocalSlot, SlotOp } from './slots.ts';

/** PostgreSQL states as published in members/<name>.state (Patroni's list). */
export type PgState =
  | 'initializing new cluster'
  | 'initdb failed'
  | 'running custom bootstrap script'
  | 'custom bootstrap failed'
  | 'starting after custom bootstrap'
  | 'creating replica'
  | 'running'
  | 'starting'
  | 'start failed'
  | 'restarting'
  | 'restart failed'
  | 'stopping'
  | 'stopped'
  | 'stop failed'
  | 'crashed'
  | 'unknown';

/** Roles as published in members/<name>.role. `master` from old Patroni is read as `primary`. */
export type Role = 'primary' | 'replica' | 'standby_leader' | 'demoted' | 'uninitialized' | 'promoted';

/** Tags as configured on a node (predefined ones typed, custom ones kept verbatim). */
export interface Tags {
  nofailover?: boolean;
  failover_priority?: number;
  noloadbalance?: boolean;
  clonefrom?: boolean;
  nosync?: boolean;
  sync_priority?: number;
  nostream?: boolean;
  replicatefrom?: string;
  [custom: string]: unknown;
}

/** The JSON value of members/<name>, as Patroni writes it (field order matters only for humans). */
export interface MemberData {
  conn_url?: string;
  api_url?: string;
  state?: string;
  role?: string;
  version?: string;
  proxy_url?: string;
  checkpoint_after_promote?: boolean;
  tags?: Tags;
  pending_restart?: boolean;
  pending_restart_reason?: Record<string, { old_value: string; new_value: string }>;
  xlog_location?: number;
  replay_lsn?: number;
  receive_lsn?: number;
  replication_state?: string;
  timeline?: number;
  scheduled_restart?: Record<string, unknown>;
  pause?: boolean;
  [other: string]: unknown;
}

export interface Member {
  name: string;
  data: MemberData;
  /** DCS version of the key (etcd mod_revision), opaque. */
  version: string;
  /** Lease/session the key is bound to, opaque ('' when none). */
  session: string;
}

export interface Leader {
  name: string;
  version: string;
  session: string;
}

export interface FailoverRequest {
  leader?: string;
  member?: string;
  scheduled_at?: string;
  version: string;
}

export interface SyncState {
  leader?: string;
  sync_standby?: string | null;
  quorum?: number | null;
  version: string;
}

/** One line of /history: [timeline, switch_lsn, reason, timestamp?, new_leader?]. */
export type HistoryLine = [number, number, string, string?, string?];

export interface LeaderStatus {
  optime: number;
  slots?: Record<string, number>;
  retain_slots?: string[];
}

/** The dynamic configuration (/config), as far as the core reads it. Unknown keys are kept. */
export interface DynamicConfig {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
  maximum_lag_on_failover: number;
  primary_start_timeout: number;
  primary_stop_timeout?: number;
  /** Seconds a node waits before racing for an unlocked cluster's lock (0: off; core/race-backoff.ts). */
  primary_race_backoff?: number;
  check_timeline: boolean;
  pause?: boolean;
  synchronous_mode?: boolean | string;
  failsafe_mode?: boolean;
  max_timelines_history?: number;
  postgresql: {
    use_pg_rewind?: boolean;
    use_slots?: boolean;
    parameters?: Record<string, unknown> | null;
    pg_hba?: string[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** A consistent read of the whole cluster subtree in the DCS. */
export interface ClusterView {
  /** undefined: key absent; '': bootstrap in progress; digits: system identifier. */
  initialize: string | undefined;
  /** Parsed /config; undefined when absent or invalid. */
  config: Record<string, unknown> | undefined;
  configVersion: string | undefined;
  leader: Leader | undefined;
  members: Member[];
  failover: FailoverRequest | undefined;
  sync: SyncState | undefined;
  /** undefined: key absent or unparsable. */
  history: HistoryLine[] | undefined;
  status: LeaderStatus | undefined;
  failsafe: Record<string, string> | undefined;
  /** DCS revision of this read (etcd header revision), for watches. */
  revision: string;
}

/** A ClusterView with every key absent (an empty DCS), with `over` applied. */
export function clusterView(over: Partial<ClusterView> = {}): ClusterView {
  return {
    initialize: undefined,
    config: undefined,
    configVersion: undefined,
    leader: undefined,
    members: [],
    failover: undefined,
    sync: undefined,
    history: undefined,
    status: undefined,
    failsafe: undefined,
    revision: '0',
    ...over,
  };
}

/** What the agent observed about the local PostgreSQL in this tick (one probe, consistent). */
export interface LocalPg {
  /** Data directory holds a cluster (PG_VERSION present). */
  dataDirEmpty: boolean;
  /** System identifier from pg_controldata, when the data directory is initialised. */
  sysid: string | undefined;
  /** A postmaster for this data directory is alive. */
  running: boolean;
  /** The postmaster accepts connections and answered the probe query. */
  ready: boolean;
  /** pg_is_in_recovery() when ready; from the data directory (standby.signal) otherwise. */
  inRecovery: boolean;
  /** Current WAL position: flush LSN on a primary, max(receive, replay) on a replica. */
  walLsn: number | undefined;
  receiveLsn: number | undefined;
  replayLsn: number | undefined;
  timeline: number | undefined;
  /** Streaming from an upstream (pg_stat_wal_receiver status = streaming). */
  streaming: boolean;
  /** Member name of the upstream we are configured to follow (null: none configured). */
  upstream: string | null;
  /** pg_controldata "Database cluster state", e.g. "in production", "shut down". */
  controlState: string | undefined;
  /** Whether the data directory allows pg_rewind (wal_log_hints or data checksums). */
  rewindable: boolean;
  /** The postmaster exited on its own since the agent last started it (crash). */
  crashed: boolean;
  /**
   * Result of comparing our timeline and LSN with the current leader's timeline history
   * (pg_rewind's question), computed by the agent only when it matters: PostgreSQL is stopped
   * while another member holds the lock, or a running replica cannot stream from a leader on a
   * newer timeline. undefined: not checked (or the leader could not be asked).
   */
  divergence?: 'need' | 'not_needed';
  /** Synchronous replication facts; present while PostgreSQL runs as a primary and answered. */
  sync?: LocalSync;
  /** The non-temporary replication slots (pg_replication_slots); undefined when not read. */
  slots?: LocalSlot[];
}

/** One WAL sender of the primary (a row of pg_stat_replication). */
export interface WalSender {
  pid: number;
  /** application_name: the standby's member name. */
  name: string;
  /** pg_stat_replication.state: 'streaming', 'catchup', 'startup', 'backup', 'stopping'. */
  state: string;
  /** pg_stat_replication.sync_state: 'async', 'potential', 'sync' or 'quorum'. */
  syncState: string;
  writeLsn: number | undefined;
  flushLsn: number | undefined;
  replayLsn: number | undefined;
  /**
   * How long (ms, the primary's clock) this standby has been behind the primary without answering:
   * none of its reported positions nor its reply_time changed across the agent's probes while its
   * flush position stayed below the primary's (./sync-stall.ts trackSilence). 0 or absent: it
   * answers, or has nothing to answer (caught up).
   */
  silentMs?: number;
}

/** What the leader needs to manage synchronous replication (read from the running primary). */
export interface LocalSync {
  /** synchronous_standby_names as the running server uses it ('' when empty). */
  ssn: string;
  /** Vigil manages ssn (a setSyncStandbyNames value is in force), rather than the user's parameter. */
  managed: boolean;
  /** synchronous_commit as the running server uses it (on, remote_write, remote_apply, local, off). */
  synchronousCommit: string;
  /** The primary's WAL senders. */
  senders: WalSender[];
  /**
   * The primary's flush LSN recorded when the current ssn value was applied (or first seen by this
   * agent): a standby newly listed in ssn is confirmed only once it reports at least this LSN.
   */
  ssnSetAtLsn: number | undefined;
  /** Backends waiting for a synchronous standby's acknowledgement (pg_stat_activity wait_event 'SyncRep'); absent: not read. */
  syncRepWaiters?: number;
}

/** Failsafe-mode facts gathered by the agent (see ../shared/spec/patroni-behavior.md 8.4). */
export interface FailsafeFacts {
  /**
   * Primary, DCS unreachable, failsafe_mode on: the outcome of POST /failsafe to every other member
   * of the last /failsafe value read from the DCS (all must accept). undefined: not attempted.
   */
  check?: { ok: boolean; reason: string };
  /** Replica: a primary that POSTed /failsafe to us less than ttl ago. */
  leader?: { name: string; connUrl?: string; apiUrl?: string; at: number };
  /** Last /failsafe value read from the DCS (kept while the DCS is unreachable). */
  topology?: Record<string, string>;
}

/** What a peer answered on GET /patroni during a leader race. */
export interface PeerStatus {
  name: string;
  reachable: boolean;
  /** false when the peer reports it is a primary (xlog.location present or role primary). */
  inRecovery: boolean;
  walPosition: number;
  timeline: number | undefined;
  nofailover: boolean;
  failoverPriority: number;
  watchdogFailed: boolean;
}

/** Node identity and local settings the core needs (from the local configuration). */
export interface NodeSettings {
  name: string;
  tags: Tags;
  /** bootstrap section present: this node may win the bootstrap race. */
  canBootstrap: boolean;
  /**
   * Some create_replica_methods entry other than basebackup is marked no_leader (or no_master): an
   * empty data directory may be restored (from a backup) while the cluster has no leader. In a
   * standby cluster the entries are standby_cluster.create_replica_methods' (agent/observe.ts).
   */
  cloneWithoutLeader?: boolean;
  /**
   * The dynamic config written to /config after bootstrap and by the lock holder when /config is
   * missing or unparsable: the last /config the agent parsed, else bootstrap.dcs.
   */
  bootstrapDcs: Record<string, unknown>;
  remove_data_directory_on_rewind_failure: boolean;
  remove_data_directory_on_diverged_timelines: boolean;
}

/** The kinds of long-running work the agent runs in the background, one at a time. */
export type TaskKind =
  | 'bootstrap'
  | 'clone'
  | 'start'
  | 'promote'
  | 'demote'
  | 'rewind'
  | 'reinitialize'
  | 'restart'
  | 'stop';

export interface TaskState {
  kind: TaskKind;
  startedAt: number;
  /** running: in progress; ok/failed: finished since the last tick (reported once). */
  state: 'running' | 'ok' | 'failed';
  error?: string;
  /** The member the task copies from (clone, rewind, reinitialize). */
  from?: string;
  /** The failure was about reaching the source (worth retrying), not the work itself. */
  transient?: boolean;
}

/** Outcome of an action executed in the previous tick that did not succeed. */
export interface ActionFailure {
  action: Action['type'];
  /** lost: a compare-and-set precondition failed; unreachable: the DCS did not answer; error: anything else. */
  outcome: 'lost' | 'unreachable' | 'error';
  message: string;
}

/** The core's own memory, carried from one decide() to the next (opaque to the agent). */
export interface Memory {
  /** When PostgreSQL started in place after a crash while we held the lock. */
  crashStartAt?: number;
  /** The leader a pg_rewind failed against (a new leader gets a new attempt). */
  rewindFailedFrom?: string;
  /** The divergence check must run before following the current leader. */
  rewindCheck?: 'check' | 'need' | 'not_needed' | 'failed' | 'done';
  /** Name of the member we last pointed PostgreSQL at. */
  lastUpstream?: string | null;
  /**
   * We decided to bootstrap (create /initialize, run initdb) and its outcome is not handled yet.
   * Cleared when no bootstrap task runs or waits to be handled (the /initialize race was lost, or
   * the task could not start).
   */
  bootstrapping?: boolean;
  /** A bootstrap that finished while the DCS could not be read: handled once the DCS answers. */
  bootstrapResult?: { state: 'ok' | 'failed'; error?: string };
  /** First tick since the agent started. */
  started?: boolean;
  /**
   * Synchronous replication: standbys confirmed caught up since they entered ssn, by name, with the
   * WAL sender pid that confirmed (a reconnect must confirm again). Dropped when a name leaves ssn.
   */
  syncConfirmed?: Record<string, number>;
  /** Priority-mode step in progress: ssn was just widened, waiting to confirm before /sync. */
  syncPendingSince?: number;
  /** Failsafe mode kept us primary while the DCS was unreachable (cleared by a good DCS cycle). */
  failsafeActive?: boolean;
  /**
   * A demotion finished in pause: PostgreSQL is started again as a replica all the same (Patroni's
   * one exception to "pause starts nothing"). Cleared once PostgreSQL runs or pause ends.
   */
  startAfterDemote?: boolean;
  /** The leader's member-slot retention: slot name -> when its member was last seen (core/slots.ts). */
  slotsRetain?: Record<string, number>;
  /**
   * primary_race_backoff (core/race-backoff.ts): when this node first saw the cluster unlocked, and
   * its WAL position on the last unlocked tick. Cleared whenever a leader is seen.
   */
  raceBackoff?: { since: number; walLsn: number | undefined };
}

export interface Observation {
  /** Monotonic clock, milliseconds. */
  now: number;
  /** Wall clock as ISO-8601 with offset (for history timestamps and scheduled actions). */
  wallClock: string;
  self: NodeSettings;
  /** Effective dynamic configuration (from /config, else bootstrap.dcs), defaults filled. */
  config: DynamicConfig;
  /** The cluster view, or undefined when the DCS could not be read this tick. */
  cluster: ClusterView | undefined;
  dcsError?: string;
  /** Last cluster view that had a leader (members of a dead primary are still asked). */
  lastHealthyCluster?: ClusterView;
  pg: LocalPg;
  /** Failsafe-mode facts (only when failsafe_mode is on). */
  failsafe?: FailsafeFacts;
  /** Peer statuses fetched this tick (only when the cluster has no leader). */
  peers?: PeerStatus[];
  task: TaskState | undefined;
  /** Monotonic time (ms) of our last successful acquire/refresh/take of the leader lock. */
  lockRefreshedAt?: number;
  /** Actions of the previous tick that did not complete. */
  failures: ActionFailure[];
  /** Time the agent received SIGTERM (stop requested), if any. */
  stopRequested?: boolean;
  memory: Memory;
}

/** Effects, executed in order by the agent; the first one that fails stops the rest. */
export type Action =
  // DCS
  | { type: 'createInitialize' }
  | { type: 'writeInitialize'; sysid: string }
  | { type: 'deleteInitialize' }
  | { type: 'writeConfig'; config: Record<string, unknown> }
  | { type: 'acquireLeader' }
  | { type: 'takeLeader' }
  | { type: 'refreshLeader' }
  | { type: 'releaseLeader'; optime?: number }
  | { type: 'writeStatus'; status: LeaderStatus }
  | { type: 'writeHistory'; history: HistoryLine[] }
  | { type: 'clearFailover' }
  /** Write /sync (CAS on version when given; plain put when the key is absent). */
  | { type: 'writeSync'; leader: string; syncStandby: string[]; quorum: number | null; version?: string }
  | { type: 'deleteSync'; version?: string }
  /** Publish the members' API addresses in /failsafe (unconditional put). */
  | { type: 'writeFailsafe'; value: Record<string, string> }
  // PostgreSQL, inline (short)
  | { type: 'followUpstream'; upstream: string | null }
  // member names (the controller maps them to slot names); dropUnknown: drop the other inactive
  // physical slots (never while paused, nor when /config declares slots or ignore_slots, which
  // Vigil does not implement yet: those slots belong to backup tools and CDC consumers)
  | { type: 'ensureSlots'; members: string[]; dropUnknown: boolean }
  // the slot changes core/slots.ts planned from the observed slots (create, drop, advance, copy)
  | { type: 'syncSlots'; ops: SlotOp[] }
  /**
   * Set synchronous_standby_names (conf rewrite + reload when running; kept for later starts).
   * value is final (built by core/sync.ts); null: stop managing it (the user's parameter applies).
   */
  | { type: 'setSyncStandbyNames'; value: string | null }
  | { type: 'removeDataDir' }
  | { type: 'cancelTask' }
  // PostgreSQL, background tasks (one at a time)
  | { type: 'startTask'; task: TaskSpec };

export type TaskSpec =
  /** remote: a standby cluster's first member clones the remote member (core/standby.ts) instead of running initdb. */
  | { kind: 'bootstrap'; remote?: string }
  /**
   * from: the member to copy, or a standby cluster's remote member (its reserved name); in a standby
   * cluster every copy uses standby_cluster.create_replica_methods, as Patroni (agent/tasks.ts
   * copySource); null: no leader, only the no_leader replica methods run.
   */
  | { kind: 'clone'; from: string | null }
  | { kind: 'start'; asPrimary: boolean; upstream: string | null }
  | { kind: 'promote' }
  /** demote-cluster: fast stop keeping the lock; the next tick starts it as the standby leader (core/standby.ts). */
  | { kind: 'demote'; mode: 'graceful' | 'immediate' | 'immediate-nolock' | 'offline' | 'demote-cluster'; upstream: string | null }
  | { kind: 'rewind'; from: string }
  | { kind: 'reinitialize'; from: string }
  | { kind: 'stop'; mode: 'fast' | 'immediate'; releaseLeader: boolean }
  | { kind: 'restart'; timeoutMs?: number };

/**
 * A line Patroni logs for an HA decision, reproduced with the same words at the same level so that
 * operators' log alerts keep matching (docs/log-messages.md). `warn` is Patroni's WARNING.
 */
export interface LogLine {
  level: 'info' | 'warn';
  msg: string;
}

export interface Decision {
  actions: Action[];
  /** Patroni's log lines for this tick's decision, logged before the reason (absent when none). */
  logs?: LogLine[];
  /** One line, human readable: why this tick did what it did. */
  reason: string;
  /** When the next tick should run at the latest (ms from now). */
  wakeAfterMs: number;
  memory: Memory;
  /** What this node believes its role is after the actions (for the member key and the API). */
  role: Role;
  /** true while this node holds the leader lock and may serve writes. */
  isLeader: boolean;
  /** Set when the agent must exit (data of another cluster, replica without /initialize, ...). */
  exit?: string;
}
