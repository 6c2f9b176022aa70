// The node status JSON (patroni-interfaces.md 2.4) and the facts about this node that the other
// read-only endpoints derive from the snapshot. Pure functions of (snapshot, time).

import type { ClusterView, DynamicConfig, SyncState } from '../core/model.ts';
import { isStandbyClusterConfig, nameIn, syncModeOf, syncStandbyNames } from '../core/election.ts';
import { isPaused as isPausedConfig } from '../core/values.ts';
import type { HandlerOptions } from './request.ts';
import type { NodeSnapshot, XlogPrimary, XlogReplica } from './snapshot.ts';
import { VIGIL_VERSION } from './version.ts';

/** PostgreSQL states in which Patroni queries the server for the status JSON. */
const QUERIED_STATES: ReadonlySet<string> = new Set(['running', 'starting', 'restarting']);

/** The DCS view if it was read less than ttl ago, else undefined (Patroni's cached cluster). */
export function freshCluster(snap: NodeSnapshot, nowMs: number): ClusterView | undefined {
  if (snap.cluster === undefined || snap.clusterReadAt === undefined) return undefined;
  return nowMs - snap.clusterReadAt <= ttlMs(snap.config) ? snap.cluster : undefined;
}

/** Holds the leader lock now: the agent says so and the lock has not outlived its ttl. */
export function isLeaderNow(snap: NodeSnapshot, nowMs: number): boolean {
  return snap.isLeader && (snap.leaderValidUntil === undefined || nowMs < snap.leaderValidUntil);
}

export function ttlMs(config: DynamicConfig): number {
  const ttl = typeof config.ttl === 'number' && Number.isFinite(config.ttl) && config.ttl > 0 ? config.ttl : 30;
  return ttl * 1000;
}

/** Maintenance mode as this node serves it: the agent's own view, else /config's pause (core/values.ts). */
export function isPaused(snap: NodeSnapshot): boolean {
  return snap.pause ?? isPausedConfig(snap.config);
}

/** name is listed in /sync's sync_standby (case-insensitive). */
export function syncListed(sync: SyncState | undefined, name: string): boolean {
  return nameIn(syncStandbyNames(sync), name);
}


export function isXlogPrimary(x: XlogPrimary | XlogReplica | undefined): x is XlogPrimary {
  return x !== undefined && typeof (x as XlogPrimary).location === 'number';
}

export function isXlogReplica(x: XlogPrimary | XlogReplica | undefined): x is XlogReplica {
  return x !== undefined && !isXlogPrimary(x);
}


// ---------------------------------------------------------------------------------------------
// Status JSON (2.4).

export type StatusJson = Record<string, unknown> & { state: string; role: string };

/**
 * The node status object. PostgreSQL fields appear only when the last probe answered (`xlog`
 * present) in a queried state; a node "running" whose probe failed is published as "unknown".
 */
export function statusJson(snap: NodeSnapshot, nowMs: number, opts: HandlerOptions = {}): StatusJson {
  const cluster = freshCluster(snap, nowMs);
  const answered = QUERIED_STATES.has(snap.state) && snap.xlog !== undefined;
  const out: Record<string, unknown> = {};
  if (answered) {
    const xlog = snap.xlog;
    const primary = isXlogPrimary(xlog);
    let role: string = primary ? 'primary' : 'replica';
    if (!primary && isStandbyClusterConfig(snap.config)) role = snap.role === 'standby_leader' ? 'standby_leader' : 'replica';
    out['state'] = snap.state;
    if (snap.postmasterStartTime !== undefined) out['postmaster_start_time'] = snap.postmasterStartTime;
    out['role'] = role;
    if (snap.serverVersion !== undefined) out['server_version'] = snap.serverVersion;
    out['xlog'] = primary
      ? { location: xlog.location }
      : {
          received_location: (xlog as XlogReplica).received_location,
          replayed_location: (xlog as XlogReplica).replayed_location,
          replayed_timestamp: (xlog as XlogReplica).replayed_timestamp ?? null,
          paused: Boolean((xlog as XlogReplica).paused),
        };
    const mode = syncModeOf(snap.config);
    if (role === 'replica' && mode !== 'off' && cluster !== undefined && syncListed(cluster.sync, snap.patroni.name)) {
      out[mode === 'quorum' ? 'quorum_standby' : 'sync_standby'] = true;
    }
    if (snap.timeline !== undefined) out['timeline'] = snap.timeline;
    if (snap.replicationState) out['replication_state'] = snap.replicationState;
    if (snap.replication !== undefined && snap.replication.length > 0) out['replication'] = snap.replication;
  } else {
    out['state'] = snap.state === 'running' ? 'unknown' : snap.state;
    out['role'] = snap.role;
  }
  if (isPaused(snap)) out['pause'] = true;
  if (cluster === undefined || cluster.leader === undefined) out['cluster_unlocked'] = true;
  if (snap.failsafeActive) out['failsafe_mode_is_active'] = true;
  out['dcs_last_seen'] = snap.dcsLastSeen ?? 0;
  if (Object.keys(snap.tags).length > 0) out['tags'] = snap.tags;
  if (snap.sysid) out['database_system_identifier'] = snap.sysid;
  if (snap.pendingRestart) {
    out['pending_restart'] = true;
    if (snap.pendingRestartReason !== undefined && Object.keys(snap.pendingRestartReason).length > 0) {
      out['pending_restart_reason'] = snap.pendingRestartReason;
    }
  }
  out['patroni'] = { version: snap.patroni.version, scope: snap.patroni.scope, name: snap.patroni.name };
  if (snap.scheduledRestart !== undefined) out['scheduled_restart'] = snap.scheduledRestart;
  if (snap.watchdogFailed) out['watchdog_failed'] = true;
  if (opts.vigilField !== false) out['vigil'] = { version: VIGIL_VERSION, last_reason: snap.lastReason };
  return out as StatusJson;
}
