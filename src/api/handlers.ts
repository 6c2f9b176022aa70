// REST handlers as pure functions of (request, snapshot, time): no IO, no waiting. Status codes,
// paths and JSON follow Patroni 4.1.4 (shared/spec/patroni-interfaces.md section 2).
//
// Routing (2.1): the handler is picked by method and the first path segment. GET falls back to the
// generic health check for any path; HEAD and OPTIONS always use the health check and answer only
// the status line; POST/PATCH/PUT/DELETE go to operation(); anything else is 501.

import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';

import type { ClusterView, DynamicConfig, Member, SyncState, Tags } from '../core/model.ts';
import type { NodeSnapshot, XlogPrimary, XlogReplica } from './snapshot.ts';
import { VIGIL_VERSION } from './version.ts';
import { isStandbyClusterConfig, nameIn, syncModeOf, syncStandbyNames } from '../core/election.ts';

export interface ApiRequest {
  method: string;
  /** Path without the query string, e.g. "/replica". */
  path: string;
  query: URLSearchParams;
  /** Header names in lower case (node:http does that); looked up case-insensitively anyway. */
  headers: Record<string, string | undefined>;
  body?: string;
  /** HTTPS only: the client presented a certificate that verified against restapi.cafile. */
  clientCertVerified?: boolean;
}

export interface ApiResponse {
  status: number;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Answer with the bare line `HTTP/1.0 <code> <reason>\r\n\r\n` and nothing else. */
  statusLineOnly?: boolean;
}

export interface HandlerOptions {
  /** restapi.authentication: required (Basic) on unsafe endpoints when set. */
  auth?: { username: string; password: string };
  /** Add `vigil: {version, last_reason}` to the status JSON (default true; Patroni tools ignore it). */
  vigilField?: boolean;
  /** restapi.verify_client when HTTPS is on: optional/required demand a client certificate on unsafe endpoints. */
  verifyClient?: 'none' | 'optional' | 'required';
}

const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';
const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** PostgreSQL states in which Patroni queries the server for the status JSON. */
const QUERIED_STATES: ReadonlySet<string> = new Set(['running', 'starting', 'restarting']);

export function handle(req: ApiRequest, snap: NodeSnapshot, nowMs: number, opts: HandlerOptions = {}): ApiResponse {
  const segment = firstSegment(req.path);
  switch (req.method) {
    case 'GET':
      switch (segment) {
        case 'patroni':
          return json(200, statusJson(snap, nowMs, opts));
        case 'cluster':
          return getCluster(snap, nowMs);
        case 'history':
          return getHistory(snap);
        case 'config':
          return getConfig(snap);
        case 'failsafe':
          return getFailsafe(snap);
        case 'metrics':
          return { status: 200, body: metricsText(snap, nowMs), contentType: METRICS_TYPE };
        case 'liveness':
          return { status: livenessCode(snap, nowMs), statusLineOnly: true };
        case 'readiness':
          return { status: readinessCode(req.query, snap, nowMs), statusLineOnly: true };
        default:
          return json(healthCheckCode(req.path, req.query, snap, nowMs), statusJson(snap, nowMs, opts));
      }
    case 'HEAD':
    case 'OPTIONS':
      return { status: healthCheckCode(req.path, req.query, snap, nowMs), statusLineOnly: true };
    case 'POST':
    case 'PATCH':
    case 'PUT':
    case 'DELETE':
      return operation(req, segment, snap, nowMs, opts);
    default:
      return unsupportedMethod(req.method);
  }
}

// ---------------------------------------------------------------------------------------------
// Operations (unsafe methods). One place: auth first, then the operation itself.

/** Operation endpoints by "METHOD segment"; guarded = needs auth (2.2; POST /mpp is not guarded). */
const OPERATIONS: ReadonlyMap<string, { guarded: boolean }> = new Map([
  ['PATCH config', { guarded: true }],
  ['PUT config', { guarded: true }],
  ['POST reload', { guarded: true }],
  ['POST restart', { guarded: true }],
  ['DELETE restart', { guarded: true }],
  ['POST switchover', { guarded: true }],
  ['DELETE switchover', { guarded: true }],
  ['POST failover', { guarded: true }],
  ['POST reinitialize', { guarded: true }],
  ['POST citus', { guarded: true }],
  ['POST mpp', { guarded: false }],
  ['POST sigterm', { guarded: true }],
  ['POST failsafe', { guarded: true }],
]);

function operation(req: ApiRequest, segment: string, _snap: NodeSnapshot, _nowMs: number, opts: HandlerOptions): ApiResponse {
  const gate = operationGate(req, opts);
  if (gate.kind === 'answer') return gate.response;
  // Reached only without an OperationsPort: server.ts sends the implemented operations to
  // operations.ts itself.
  return text(503, `${req.method} /${segment} is not supported yet`);
}

/** The "METHOD segment" key of a guarded unsafe endpoint (server.ts checks restapi.allowlist first), else undefined. */
export function guardedOperation(method: string, path: string): string | undefined {
  const key = `${method} ${firstSegment(path)}`;
  return OPERATIONS.get(key)?.guarded === true ? key : undefined;
}

/**
 * The checks in front of an unsafe endpoint (2.2): unknown "METHOD segment" -> 501; then the
 * client certificate (HTTPS with verify_client optional/required) -> 403; then Basic auth -> 401.
 * `proceed` carries the "METHOD segment" key of the operation to run.
 */
export function operationGate(
  req: ApiRequest,
  opts: HandlerOptions,
): { kind: 'answer'; response: ApiResponse } | { kind: 'proceed'; key: string } {
  const key = `${req.method} ${firstSegment(req.path)}`;
  const op = OPERATIONS.get(key);
  if (op === undefined) return { kind: 'answer', response: unsupportedMethod(req.method) };
  if (op.guarded) {
    if ((opts.verifyClient === 'optional' || opts.verifyClient === 'required') && req.clientCertVerified !== true) {
      return { kind: 'answer', response: errorPage(403, 'client certificate required') };
    }
    if (opts.auth !== undefined) {
      const denied = checkBasicAuth(req.headers, opts.auth);
      if (denied !== undefined) return { kind: 'answer', response: denied };
    }
  }
  return { kind: 'proceed', key };
}

/** undefined when the Authorization header matches; else the 401 to send. */
export function checkBasicAuth(
  headers: Record<string, string | undefined>,
  auth: { username: string; password: string },
): ApiResponse | undefined {
  const challenge = { 'WWW-Authenticate': 'Basic realm="Patroni"' };
  const given = header(headers, 'authorization');
  if (given === undefined || given === '') {
    return { status: 401, body: 'no auth header received', contentType: HTML_TYPE, headers: challenge };
  }
  const expected = 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
  // Hash both sides so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  if (!timingSafeEqual(a, b)) {
    return { status: 401, body: 'not authenticated', contentType: HTML_TYPE, headers: challenge };
  }
  return undefined;
}

function unsupportedMethod(method: string): ApiResponse {
  return errorPage(501, `Unsupported method (${JSON.stringify(method)})`);
}

// ---------------------------------------------------------------------------------------------
// Request bodies (2.1): by Content-Length only; Content-Type is ignored.

type Body = { ok: true; value: Record<string, unknown> } | { ok: false; response: ApiResponse };

/**
 * The JSON object in the body. Required bodies: no Content-Length -> 411; not JSON, not an object
 * or an empty object -> 400. Optional bodies: no Content-Length or Content-Length 0 -> {}.
 */
export function readJsonBody(req: ApiRequest, optional: boolean): Body {
  const cl = header(req.headers, 'content-length');
  if (cl === undefined) {
    return optional ? { ok: true, value: {} } : { ok: false, response: errorPage(411, 'Content-Length is required') };
  }
  if (!/^\s*\d+\s*$/.test(cl)) return { ok: false, response: errorPage(400, 'Bad request: invalid Content-Length') };
  const text = req.body ?? '';
  if (Number(cl) === 0 && optional) return { ok: true, value: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, response: errorPage(400, 'Bad request: the body is not valid JSON') };
  }
  if (!isMap(parsed)) return { ok: false, response: errorPage(400, 'Bad request: the body must be a JSON object') };
  if (!optional && Object.keys(parsed).length === 0) {
    return { ok: false, response: errorPage(400, 'Bad request: the body must be a non-empty JSON object') };
  }
  return { ok: true, value: parsed };
}

// ---------------------------------------------------------------------------------------------
// Derived facts shared by the handlers.

/** The DCS view if it was read less than ttl ago, else undefined (Patroni's cached cluster). */
export function freshCluster(snap: NodeSnapshot, nowMs: number): ClusterView | undefined {
  if (snap.cluster === undefined || snap.clusterReadAt === undefined) return undefined;
  return nowMs - snap.clusterReadAt <= ttlMs(snap.config) ? snap.cluster : undefined;
}

/** Holds the leader lock now: the agent says so and the lock has not outlived its ttl. */
export function isLeaderNow(snap: NodeSnapshot, nowMs: number): boolean {
  return snap.isLeader && (snap.leaderValidUntil === undefined || nowMs < snap.leaderValidUntil);
}

function ttlMs(config: DynamicConfig): number {
  const ttl = typeof config.ttl === 'number' && Number.isFinite(config.ttl) && config.ttl > 0 ? config.ttl : 30;
  return ttl * 1000;
}

function isPaused(snap: NodeSnapshot): boolean {
  return snap.pause ?? truthy(snap.config.pause);
}

/** name is listed in /sync's sync_standby (case-insensitive). */
function syncListed(sync: SyncState | undefined, name: string): boolean {
  return nameIn(syncStandbyNames(sync), name);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isXlogPrimary(x: XlogPrimary | XlogReplica | undefined): x is XlogPrimary {
  return x !== undefined && typeof (x as XlogPrimary).location === 'number';
}

function isXlogReplica(x: XlogPrimary | XlogReplica | undefined): x is XlogReplica {
  return x !== undefined && !isXlogPrimary(x);
}

/** Patroni's boolean reading of tag/config values. */
function truthy(v: unknown): boolean {
  if (typeof v === 'string') return ['true', 'on', 'yes', '1', 'y', 't'].includes(v.trim().toLowerCase());
  return Boolean(v);
}

function header(headers: Record<string, string | undefined>, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function firstSegment(path: string): string {
  return path.split('/')[1] ?? '';
}

/** First non-empty value of a query parameter (Python's parse_qs drops blank values). */
function queryValue(q: URLSearchParams, key: string): string | undefined {
  for (const v of q.getAll(key)) if (v !== '') return v;
  return undefined;
}

const SIZE_UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** Byte size with an optional unit (B, kB, MB, GB, TB; case-sensitive). undefined when invalid. */
export function parseSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)?\s*$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]) * (SIZE_UNITS[m[2] ?? 'B'] ?? 1);
  return Number.isFinite(n) ? Math.round(n) : undefined;
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

// ---------------------------------------------------------------------------------------------
// Health checks (2.3).

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
    !truthy(snap.tags.noloadbalance) &&
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

// ---------------------------------------------------------------------------------------------
// /cluster, /history, /config, /failsafe (2.7 - 2.10).

function getCluster(snap: NodeSnapshot, nowMs: number): ApiResponse {
  const cluster = freshCluster(snap, nowMs);
  if (cluster === undefined) return text(503, 'DCS view is not available');
  return json(200, clusterJson(cluster, snap));
}

/** The /cluster object: members sorted by name with roles, states and lags. */
export function clusterJson(view: ClusterView, snap: NodeSnapshot): Record<string, unknown> {
  const config = snap.config;
  const leaderName = view.leader?.name;
  const mode = syncModeOf(config);
  const standby = isStandbyClusterConfig(config);
  const optime = typeof view.status?.optime === 'number' ? view.status.optime : 0;
  const members = [...view.members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: Record<string, unknown> = {
    members: members.map((m) => memberJson(m, leaderName, standby, mode, view.sync, optime)),
    scope: snap.patroni.scope,
  };
  if (isPaused(snap)) out['pause'] = true;
  const f = view.failover;
  if (f !== undefined && typeof f.scheduled_at === 'string' && f.scheduled_at !== '') {
    const s: Record<string, unknown> = { at: f.scheduled_at };
    if (f.leader) s['from'] = f.leader;
    if (f.member) s['to'] = f.member;
    out['scheduled_switchover'] = s;
  }
  return out;
}

function memberJson(
  m: Member,
  leaderName: string | undefined,
  standby: boolean,
  mode: 'off' | 'on' | 'quorum',
  sync: SyncState | undefined,
  optime: number,
): Record<string, unknown> {
  const d = m.data;
  let role: string;
  if (m.name === leaderName) role = standby ? 'standby_leader' : 'leader';
  else if (mode !== 'off' && syncListed(sync, m.name)) role = mode === 'quorum' ? 'quorum_standby' : 'sync_standby';
  else role = 'replica';
  const memberState = typeof d.state === 'string' && d.state !== '' ? d.state : 'unknown';
  const replState = role !== 'leader' && typeof d.replication_state === 'string' ? d.replication_state : '';
  const out: Record<string, unknown> = {
    name: m.name,
    role,
    state: replState || memberState,
    api_url: typeof d.api_url === 'string' ? d.api_url : null,
  };
  const hp = hostPort(d);
  if (hp !== undefined) {
    out['host'] = hp.host;
    if (hp.port !== undefined) out['port'] = hp.port;
  }
  for (const k of ['timeline', 'pending_restart', 'pending_restart_reason', 'scheduled_restart', 'tags']) {
    if (d[k] !== undefined) out[k] = d[k];
  }
  if (m.name !== leaderName) {
    const lsns: [string, string, unknown][] = [
      ['receive_lsn', 'receive_lag', d.receive_lsn],
      ['replay_lsn', 'replay_lag', d.replay_lsn],
      ['lsn', 'lag', d.xlog_location],
    ];
    for (const [lsnKey, lagKey, value] of lsns) {
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
        out[lagKey] = Math.max(0, optime - value);
        out[lsnKey] = formatLsn(value);
      } else {
        out[lagKey] = 'unknown';
        out[lsnKey] = 'unknown';
      }
    }
  }
  return out;
}

/** host and port of a member's PostgreSQL from conn_url (port default 5432) or conn_kwargs. */
function hostPort(d: Member['data']): { host: string; port: number | undefined } | undefined {
  if (typeof d.conn_url === 'string' && d.conn_url !== '') {
    try {
      const u = new URL(d.conn_url);
      const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
      if (host === '') return undefined;
      return { host: decodeURIComponent(host), port: u.port === '' ? 5432 : Number(u.port) };
    } catch {
      return undefined;
    }
  }
  const kw = d['conn_kwargs'];
  if (kw !== null && typeof kw === 'object') {
    const k = kw as Record<string, unknown>;
    if (typeof k['host'] === 'string' && k['host'] !== '') {
      const port = Number(k['port'] ?? 5432);
      return { host: k['host'], port: Number.isInteger(port) ? port : undefined };
    }
  }
  return undefined;
}

/** LSN as PostgreSQL text, e.g. 67108960 -> "0/4000060". */
export function formatLsn(lsn: number): string {
  const hi = Math.floor(lsn / 2 ** 32);
  const lo = lsn - hi * 2 ** 32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/**
 * /history, /config and /failsafe serve the last good DCS read whatever its age: Patroni would read
 * the DCS afresh, which we never do from a request.
 */
function getHistory(snap: NodeSnapshot): ApiResponse {
  if (snap.cluster === undefined) return text(503, 'DCS view is not available');
  return json(200, snap.cluster.history ?? []);
}

function getConfig(snap: NodeSnapshot): ApiResponse {
  const config = snap.cluster?.config;
  if (config === undefined || config === null || typeof config !== 'object') return errorPage(502);
  return json(200, config);
}

function getFailsafe(snap: NodeSnapshot): ApiResponse {
  const failsafe = snap.cluster?.failsafe;
  if (failsafe === undefined || failsafe === null || typeof failsafe !== 'object') return errorPage(502);
  return json(200, failsafe);
}

// ---------------------------------------------------------------------------------------------
// /metrics (2.11).

const PG_STATE_NUMBERS: Record<string, number> = {
  'initializing new cluster': 0,
  'initdb failed': 1,
  'running custom bootstrap script': 2,
  'custom bootstrap failed': 3,
  'creating replica': 4,
  running: 5,
  starting: 6,
  'starting after custom bootstrap': 7,
  'start failed': 8,
  restarting: 9,
  'restart failed': 10,
  stopping: 11,
  stopped: 12,
  'stop failed': 13,
  crashed: 14,
};

/** Prometheus text exposition with Patroni's metric names, in Patroni's order. */
export function metricsText(snap: NodeSnapshot, nowMs: number): string {
  const status = statusJson(snap, nowMs, { vigilField: false });
  const cluster = freshCluster(snap, nowMs);
  const labels = `{scope=${promLabel(snap.patroni.scope)},name=${promLabel(snap.patroni.name)}}`;
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number | string, extra?: string): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    if (extra !== undefined) lines.push(extra);
    lines.push(`${name}${labels} ${value}`);
  };
  const xlog = status['xlog'] as XlogPrimary | XlogReplica | undefined;
  const role = status.role;
  const flag = (b: boolean): number => (b ? 1 : 0);
  const serverVersion = typeof status['server_version'] === 'number' ? status['server_version'] : 0;
  const replState = status['replication_state'];
  const tags = snap.tags;
  const priority = nofailoverOf(tags) ? 0 : failoverPriorityOf(tags);

  metric('patroni_version', 'gauge', 'Patroni semver without periods.', versionNumber(snap.patroni.version));
  metric('patroni_postgres_running', 'gauge', 'Value is 1 if Postgres is running, 0 otherwise.', flag(status.state === 'running'));
  metric('patroni_postmaster_start_time', 'gauge', 'Epoch seconds since Postgres started.',
    epochOfPgTimestamp(status['postmaster_start_time']) ?? 0);
  metric('patroni_primary', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', flag(role === 'primary'));
  metric('patroni_xlog_location', 'counter', 'Current location of the Postgres transaction log, 0 if this node is not the leader.',
    isXlogPrimary(xlog) ? xlog.location : 0);
  metric('patroni_standby_leader', 'gauge', 'Value is 1 if standby leader, 0 otherwise.', flag(role === 'standby_leader'));
  metric('patroni_replica', 'gauge', 'Value is 1 if this node is a replica, 0 otherwise.', flag(role === 'replica'));
  metric('patroni_sync_standby', 'gauge', 'Value is 1 if this node is a sync standby, 0 otherwise.', flag(status['sync_standby'] === true));
  metric('patroni_quorum_standby', 'gauge', 'Value is 1 if this node is a quorum standby, 0 otherwise.', flag(status['quorum_standby'] === true));
  metric('patroni_xlog_received_location', 'counter', 'Current location of the received Postgres transaction log, 0 if this node is not a replica.',
    isXlogReplica(xlog) ? xlog.received_location : 0);
  metric('patroni_xlog_replayed_location', 'counter', 'Current location of the replayed Postgres transaction log, 0 if this node is not a replica.',
    isXlogReplica(xlog) ? xlog.replayed_location : 0);
  metric('patroni_xlog_replayed_timestamp', 'gauge', 'Current timestamp of the replayed Postgres transaction log, 0 if null.',
    isXlogReplica(xlog) ? (epochOfPgTimestamp(xlog.replayed_timestamp) ?? 0) : 0);
  metric('patroni_xlog_paused', 'gauge', 'Value is 1 if the Postgres xlog is paused, 0 otherwise.', flag(isXlogReplica(xlog) && xlog.paused));
  if (serverVersion >= 90600) {
    metric('patroni_postgres_streaming', 'gauge', 'Value is 1 if Postgres is streaming, 0 otherwise.', flag(replState === 'streaming'));
    metric('patroni_postgres_in_archive_recovery', 'gauge', 'Value is 1 if Postgres is replicating from archive, 0 otherwise.',
      flag(replState === 'in archive recovery'));
  }
  metric('patroni_postgres_server_version', 'gauge', 'Version of Postgres (if running), 0 otherwise.', serverVersion);
  metric('patroni_cluster_unlocked', 'gauge', 'Value is 1 if the cluster is unlocked, 0 if locked.', flag(status['cluster_unlocked'] === true));
  metric('patroni_failsafe_mode_is_active', 'gauge', 'Value is 1 if failsafe mode is active, 0 if inactive.',
    flag(status['failsafe_mode_is_active'] === true));
  metric('patroni_failsafe_mode_enabled', 'gauge', 'Value is 1 if failsafe mode is enabled, 0 otherwise.', flag(truthy(snap.config.failsafe_mode)));
  metric('patroni_failsafe_member', 'gauge', 'Value is 1 if this node is a failsafe member, 0 otherwise.',
    flag(cluster?.failsafe !== undefined && Object.prototype.hasOwnProperty.call(cluster.failsafe, snap.patroni.name)));
  metric('patroni_postgres_timeline', 'gauge', 'Postgres timeline of this node (if running), 0 otherwise.',
    typeof status['timeline'] === 'number' ? status['timeline'] : 0);
  metric('patroni_dcs_last_seen', 'gauge', 'Epoch timestamp when DCS was last contacted successfully.', snap.dcsLastSeen ?? 0);
  metric('patroni_pending_restart', 'gauge', 'Value is 1 if the node needs a restart, 0 otherwise.', flag(status['pending_restart'] === true));
  metric('patroni_is_paused', 'gauge', 'Value is 1 if auto failover is disabled, 0 otherwise.', flag(status['pause'] === true));
  metric('patroni_postgres_state', 'gauge', 'Numeric representation of Postgres state.', PG_STATE_NUMBERS[status.state] ?? -1,
    '# Values: 0=initdb, 1=initdb_failed, 2=custom_bootstrap, 3=custom_bootstrap_failed, 4=creating_replica, 5=running, ' +
      '6=starting, 7=bootstrap_starting, 8=start_failed, 9=restarting, 10=restart_failed, 11=stopping, 12=stopped, ' +
      '13=stop_failed, 14=crashed');
  metric('patroni_failover_priority', 'gauge', 'Value is 0 if nofailover is set, else the failover_priority tag.', priority);
  return lines.join('\n') + '\n';
}

function promLabel(v: string): string {
  return '"' + v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') + '"';
}

/** "4.1.4" -> "040104" (each component zero-padded to two digits). */
export function versionNumber(version: string): string {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10));
  if (parts.length === 0 || parts.some((n) => !Number.isFinite(n) || n < 0)) return '0';
  return parts.map((n) => String(n).padStart(2, '0')).join('');
}

/** Epoch seconds (with fractions) of a PostgreSQL timestamptz text, e.g. "2024-08-28 19:39:26.352526+00". */
export function epochOfPgTimestamp(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)?$/.exec(text.trim());
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  let epoch = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  if (frac !== undefined) epoch += Number(`0${frac}`);
  if (tz !== undefined && tz !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    const digits = tz.slice(1).replace(/:/g, '');
    const offset = Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || '0') * 60 + Number(digits.slice(4, 6) || '0');
    epoch -= sign * offset;
  }
  return Number.isFinite(epoch) ? epoch : undefined;
}

/** nofailover: the explicit tag wins; else failover_priority <= 0; else false. */
export function nofailoverOf(tags: Record<string, unknown> | undefined): boolean {
  const nf = tags?.['nofailover'];
  if (nf !== undefined && nf !== null) return truthy(nf);
  const p = numberOf(tags?.['failover_priority']);
  return p !== undefined && p <= 0;
}

/** failover_priority tag, default 1. */
export function failoverPriorityOf(tags: Record<string, unknown> | undefined): number {
  return numberOf(tags?.['failover_priority']) ?? 1;
}

function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Response helpers.

function json(status: number, value: unknown): ApiResponse {
  return { status, body: JSON.stringify(value), contentType: JSON_TYPE };
}

function text(status: number, body: string): ApiResponse {
  return { status, body, contentType: TEXT_TYPE };
}

/** A framework-style HTML error page (what Patroni's HTTP server sends for 501, 502, ...). */
export function errorPage(status: number, message?: string): ApiResponse {
  const reason = STATUS_CODES[status] ?? 'Error';
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const body =
    '<!DOCTYPE HTML>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error response</title>\n</head>\n<body>\n' +
    `<h1>Error response</h1>\n<p>Error code: ${status}</p>\n<p>Message: ${esc(message ?? reason)}.</p>\n</body>\n</html>\n`;
  return { status, body, contentType: HTML_TYPE };
}
