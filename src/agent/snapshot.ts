// The REST API's snapshot of this node, built from the driver's state. Pure: the handlers answer
// from it without touching the DCS or PostgreSQL.

import type { ClusterView, DynamicConfig, PgState, Role, TaskKind } from '../core/model.ts';
import type { Config } from '../config/types.ts';
import type { ScheduledRestart } from '../api/port.ts';
import type { NodeSnapshot } from '../api/snapshot.ts';
import { PATRONI_COMPAT_VERSION } from '../api/version.ts';
import { effectiveTags } from './member.ts';
import type { PgObservation } from './ports.ts';

/** What the snapshot is built from. */
export interface SnapshotFacts {
  config: Config;
  dynamic: DynamicConfig;
  pgState: PgState;
  role: Role;
  lastPg: PgObservation | undefined;
  lockRefreshedAt: number | undefined;
  cluster: ClusterView | undefined;
  clusterReadAt: number | undefined;
  task: { kind: TaskKind; state: 'running' | 'ok' | 'failed' } | undefined;
  lastReason: string;
  watchdogFailed: boolean;
  failsafeActive: boolean;
  pendingRestart: Record<string, { old_value: string; new_value: string }> | undefined;
  scheduledRestart: ScheduledRestart | undefined;
}

/**
 * The leader rule: we answer as the leader while our last lock refresh is younger than ttl and the
 * last view shows us holding the lock, except while a demotion runs (it keeps the lock until
 * PostgreSQL is down but must not be routed to) or a promotion has not made PostgreSQL writable yet
 * (routers would send writes to a read-only server).
 */
export function answersAsLeader(f: SnapshotFacts, now: number): boolean {
  const holdLock = f.lockRefreshedAt !== undefined && now - f.lockRefreshedAt < f.dynamic.ttl * 1000;
  const running = f.task?.state === 'running' ? f.task.kind : undefined;
  return holdLock && f.cluster?.leader?.name === f.config.name && !(running === 'demote' || (running === 'promote' && f.lastPg?.inRecovery === true));
}

/** The snapshot at monotonic time `now` (wall clock `wallNow`, epoch ms). */
export function buildSnapshot(f: SnapshotFacts, now: number, wallNow: number): NodeSnapshot {
  const pg = f.lastPg;
  const probe = pg?.probe;
  const snap: NodeSnapshot = {
    patroni: { version: PATRONI_COMPAT_VERSION, scope: f.config.scope, name: f.config.name },
    state: f.pgState === 'running' && pg?.ready !== true ? 'unknown' : f.pgState,
    role: f.role,
    isLeader: answersAsLeader(f, now),
    config: f.dynamic,
    tags: effectiveTags(f.config.tags),
    lastReason: f.lastReason,
    takenAt: now,
    nextRunAt: now + f.dynamic.loop_wait * 1000,
  };
  if (f.lockRefreshedAt !== undefined) snap.leaderValidUntil = f.lockRefreshedAt + f.dynamic.ttl * 1000;
  if (f.cluster !== undefined && f.clusterReadAt !== undefined) {
    snap.cluster = f.cluster;
    snap.clusterReadAt = f.clusterReadAt;
    snap.dcsLastSeen = Math.floor(wallNow / 1000 - (now - f.clusterReadAt) / 1000);
  }
  if (pg?.sysid !== undefined) snap.sysid = pg.sysid;
  if (pg?.timeline !== undefined) snap.timeline = pg.timeline;
  if (probe !== undefined && pg?.ready === true) {
    snap.postmasterStartTime = probe.postmasterStartTime;
    snap.serverVersion = probe.serverVersionNum;
    if (probe.replication !== undefined && probe.replication.length > 0) {
      snap.replication = probe.replication.map((r) => ({
        usename: r.usename,
        application_name: r.application_name,
        client_addr: r.client_addr,
        state: r.state,
        sync_state: r.sync_state,
        sync_priority: r.sync_priority,
      }));
    }
    if (pg.inRecovery) {
      snap.xlog = {
        received_location: pg.receiveLsn ?? pg.replayLsn ?? 0,
        replayed_location: pg.replayLsn ?? 0,
        replayed_timestamp: null,
        paused: probe.replayPaused,
      };
      snap.replicationState = pg.streaming ? 'streaming' : 'in archive recovery';
    } else if (pg.walLsn !== undefined) snap.xlog = { location: pg.walLsn };
  }
  if (f.dynamic.pause === true) snap.pause = true;
  if (f.watchdogFailed) snap.watchdogFailed = true;
  if (f.failsafeActive) snap.failsafeActive = true;
  if (f.pendingRestart !== undefined) {
    snap.pendingRestart = true;
    snap.pendingRestartReason = f.pendingRestart;
  }
  if (f.scheduledRestart !== undefined) snap.scheduledRestart = { ...f.scheduledRestart };
  return snap;
}
