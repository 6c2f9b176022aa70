// Health checks (patroni-interfaces.md 2.3) and liveness/readiness (2.6): status codes only, pure
// functions of (path, query, snapshot, time).

import type { ClusterView, Tags } from '../core/model.ts';
import { isStandbyClusterConfig } from '../core/election.ts';
import { isTrue } from '../core/values.ts';
import { queryValue } from './request.ts';
import type { NodeSnapshot, XlogPrimary, XlogReplica } from './snapshot.ts';
import type { StatusJson } from './status.ts';
import { freshCluster, isLeaderNow, isPaused, isXlogReplica, statusJson, ttlMs } from './status.ts';

const SIZE_UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** Byte size with an optional unit (B, kB, MB, GB, TB; case-sensitive). undefined when invalid. */
export function parseSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)?\s*$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]) * (SIZE_UNITS[m[2] ?? 'B'] ?? 1);
  return Number.isFinite(n) ? Math.round(n) : undefined;
}

interface HealthFacts {
  status: StatusJson;
  cluster: ClusterView | undefined;
  replicaCode: number;
  leaderCode: number;
  primaryCode: number;
  standbyLeaderCode: number;
}

function healthFacts(query: URLSearchParams, snap: NodeSnapshot, nowMs: number): HealthFacts {
  const status = statusJson(snap, nowMs, { vigilField: false });
  const cluster = freshCluster(snap, nowMs);
  const maxLag = parseSize(queryValue(query, 'lag')) ?? Infinity;
  const leaderOptime = Math.max(cluster?.status?.optime ?? 0, snap.receiverLatestEndLsn ?? 0);
  const xlog = status['xlog'] as XlogPrimary | XlogReplica | undefined;
  const replayed = isXlogReplica(xlog) ? xlog.replayed_location : 0;
  const lagging = leaderOptime !== 0 && leaderOptime > replayed + maxLag;
  const wantedReplState = queryValue(query, 'replication_state');
  const replicaOk =
    !isTrue(snap.tags.noloadbalance) &&
    !lagging &&
    status.role === 'replica' &&
    status.state === 'running' &&
    (wantedReplState === undefined || status['replication_state'] === wantedReplState);
  let replicaCode = replicaOk ? 200 : 503;

  let leaderCode = 503;
  let primaryCode = 503;
  let standbyLeaderCode = 503;
  const role = status.role;
  if (cluster === undefined && status['pause'] === true) {
    leaderCode = role === 'primary' || role === 'standby_leader' ? 200 : 503;
    primaryCode = role === 'primary' ? 200 : 503;
    standbyLeaderCode = role === 'standby_leader' ? 200 : 503;
  } else if (isLeaderNow(snap, nowMs)) {
    leaderCode = 200;
    if (isStandbyClusterConfig(snap.config)) {
      primaryCode = 503;
      replicaCode = 503;
      standbyLeaderCode = role === 'replica' || role === 'standby_leader' ? 200 : 503;
    } else {
      primaryCode = 200;
      standbyLeaderCode = 503;
    }
  }
  return { status, cluster, replicaCode, leaderCode, primaryCode, standbyLeaderCode };
}

/** The status code of a health check on `path` (2.3 dispatch table; substring rules in order). */
export function healthCheckCode(path: string, query: URLSearchParams, snap: NodeSnapshot, nowMs: number): number {
  const f = healthFacts(query, snap, nowMs);
  const p = path === '/' ? '/primary' : path;
  const has = (s: string): boolean => p.includes(s);
  const leaderish = f.primaryCode === 200 || f.standbyLeaderCode === 200;
  let code: number;
  let tagsApply = true;
  if (has('standby_leader') || has('standby-leader')) {
    code = f.standbyLeaderCode;
    tagsApply = false;
  } else if (has('leader')) {
    code = f.leaderCode;
    tagsApply = false;
  } else if (has('master') || has('primary') || has('read-write')) {
    code = f.primaryCode;
    tagsApply = false;
  } else if (has('replica')) {
    code = f.replicaCode;
  } else if (has('read-only') && !has('sync') && !has('quorum')) {
    code = leaderish ? 200 : f.replicaCode;
  } else if (has('health')) {
    code = f.status.state === 'running' ? 200 : 503;
  } else if (f.cluster !== undefined) {
    const isSync = f.status['sync_standby'] === true;
    const isQuorum = f.status['quorum_standby'] === true;
    code = 503;
    if (p === '/sync' || p === '/synchronous') {
      if (isSync) code = f.replicaCode;
    } else if (p === '/quorum') {
      if (isQuorum) code = f.replicaCode;
    } else if (p === '/async' || p === '/asynchronous') {
      if (!isSync && !isQuorum) code = f.replicaCode;
    } else if (p === '/read-only-quorum') {
      code = leaderish ? 200 : isQuorum ? f.replicaCode : 503;
    } else if (p === '/read-only-sync' || p === '/read-only-synchronous') {
      code = leaderish ? 200 : isSync ? f.replicaCode : 503;
    }
  } else {
    code = 503;
  }
  if (tagsApply && code === 200 && !tagsMatch(query, snap.tags)) code = 503;
  return code;
}

/** Every tag_<key>=<value> parameter names a configured tag with that value. */
function tagsMatch(query: URLSearchParams, tags: Tags): boolean {
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!key.startsWith('tag_') || seen.has(key)) continue;
    seen.add(key);
    const want = queryValue(query, key);
    if (want === undefined) continue;
    const have = tags[key.slice(4)];
    if (have === undefined || have === null) return false;
    const haveText = typeof have === 'string' ? have : String(have).toLowerCase();
    if (haveText !== want) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Liveness and readiness (2.6).

/** 200 when paused, or when the agent loop's next run + threshold (ttl as primary, else 2 ttl) is ahead. */
export function livenessCode(snap: NodeSnapshot, nowMs: number): number {
  if (isPaused(snap)) return 200;
  const loopWait = typeof snap.config.loop_wait === 'number' && snap.config.loop_wait > 0 ? snap.config.loop_wait : 10;
  const nextRun = snap.nextRunAt ?? snap.takenAt + loopWait * 1000;
  const runningPrimary = snap.role === 'primary' && snap.state === 'running';
  const threshold = runningPrimary ? ttlMs(snap.config) : 2 * ttlMs(snap.config);
  return nextRun + threshold > nowMs ? 200 : 503;
}

/** 200 for the leader; for a replica: running, streaming, and within `lag` of the leader. */
export function readinessCode(query: URLSearchParams, snap: NodeSnapshot, nowMs: number): number {
  if (isLeaderNow(snap, nowMs)) return 200;
  const status = statusJson(snap, nowMs, { vigilField: false });
  if (status.state !== 'running' || status['replication_state'] !== 'streaming') return 503;
  const cluster = freshCluster(snap, nowMs);
  if (cluster === undefined && snap.receiverLatestEndLsn === undefined) return snap.failsafeActive ? 200 : 503;
  const maxLag = parseSize(queryValue(query, 'lag')) ?? snap.config.maximum_lag_on_failover ?? 1048576;
  const leaderOptime = Math.max(cluster?.status?.optime ?? 0, snap.receiverLatestEndLsn ?? 0);
  const xlog = status['xlog'] as XlogPrimary | XlogReplica | undefined;
  if (!isXlogReplica(xlog)) return 503;
  const position = queryValue(query, 'mode') === 'write' ? xlog.received_location : xlog.replayed_location;
  return leaderOptime - position <= maxLag ? 200 : 503;
}
