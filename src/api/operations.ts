// The REST API's unsafe endpoints (patroni-interfaces.md 2.9, 2.12 - 2.15; patroni-behavior.md 6.1;
// POST /failsafe, 2.10, is dispatched from here to failsafe.ts): request validation, Patroni's
// rules, status codes and messages. All IO goes through the OperationsPort; nothing here touches
// the DCS, PostgreSQL or the network directly.
//
// Authentication and client-certificate checks happen before this module (handlers.ts gate).
//
// Failure modes: a DCS read or write that rejects gives a 503 with a plain message; a port method
// that throws never escapes as an exception (the caller gets an ApiResponse in every case).

import type { ClusterView, SyncState } from '../core/model.ts';
import { syncModeOf } from '../core/election.ts';
import { toBool, validateDynamicConfig } from '../config/dynamic.ts';
import type { OperationsPort, RestartRequest, ScheduledRestart } from './port.ts';
import { postFailsafe } from './failsafe.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { errorPage, readJsonBody } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';

export interface OperationOptions {
  /** Wall clock (scheduled_at / schedule are compared with it). */
  now: () => Date;
  /** Interval between DCS reads while waiting for a switchover's result. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How long to wait for a switchover's result. Default 2 * max(10, loop_wait) seconds. */
  switchoverTimeoutMs?: number;
  /** Aborts the wait for a switchover's result (client gone, server closing). */
  signal?: AbortSignal;
  /** Told about failures that do not change the reply (e.g. a failed reload). */
  onError?: (what: string, err: unknown) => void;
}

/** Content type of Patroni's plain-message replies. */
const HTML_TYPE = 'text/html; charset=utf-8';
const JSON_TYPE = 'application/json';

/** The "METHOD segment" keys handled here (the others stay with handlers.ts). */
export const OPERATION_KEYS: ReadonlySet<string> = new Set([
  'POST switchover',
  'POST failover',
  'DELETE switchover',
  'POST restart',
  'DELETE restart',
  'POST reload',
  'POST reinitialize',
  'PATCH config',
  'PUT config',
  'POST failsafe',
]);

export async function handleOperation(
  req: ApiRequest,
  snap: NodeSnapshot,
  port: OperationsPort,
  opts: OperationOptions,
): Promise<ApiResponse> {
  const segment = req.path.split('/')[1] ?? '';
  try {
    switch (`${req.method} ${segment}`) {
      case 'POST switchover':
        return await postFailover(req, snap, port, opts, 'switchover');
      case 'POST failover':
        return await postFailover(req, snap, port, opts, 'failover');
      case 'DELETE switchover':
        return await deleteSwitchover(port);
      case 'POST restart':
        return await postRestart(req, snap, port, opts);
      case 'DELETE restart':
        return port.cancelScheduledRestart() ? message(200, 'scheduled restart deleted') : message(404, 'no restarts are scheduled');
      case 'POST reload':
        // SIGHUP semantics: the reload runs on its own; the reply does not wait for it.
        void Promise.resolve()
          .then(() => port.reload())
          .catch((err: unknown) => opts.onError?.('reload', err));
        return message(202, 'reload scheduled');
      case 'POST reinitialize':
        return await postReinitialize(req, port);
      case 'PATCH config':
        return await patchConfig(req, port);
      case 'PUT config':
        return await putConfig(req, port);
      case 'POST failsafe':
        return postFailsafe(req, snap, port);
      default:
        return errorPage(501, `Unsupported method (${JSON.stringify(req.method)})`);
    }
  } catch (err) {
    if (err instanceof DcsReadError) return message(503, `failed to read the cluster state from DCS: ${err.message}`);
    opts.onError?.(`${req.method} ${req.path}`, err);
    return errorPage(500, 'internal error');
  }
}

// ---------------------------------------------------------------------------------------------
// Timestamps: scheduled_at (switchover) and schedule (restart).

export type ParsedTimestamp =
  | { ok: true; epochMs: number; iso: string }
  | { ok: false; reason: 'no-timezone' | 'unparsable' };

const TIMESTAMP_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/**
 * A strict ISO-8601 timestamp: `YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|±HH[[:]MM]]`, every field
 * range-checked (days per month, leap years). A valid timestamp without an offset is reported as
 * 'no-timezone' (Patroni answers 400 for that, 422 for anything unparsable). `iso` is the
 * normalised form with the original offset, as Python's isoformat() writes it, e.g.
 * "2024-05-01T10:00:00+02:00" or "2024-05-01T10:00:00.250000+00:00".
 */
export function parseTimestamp(input: unknown): ParsedTimestamp {
  if (typeof input !== 'string') return { ok: false, reason: 'unparsable' };
  const m = TIMESTAMP_RE.exec(input.trim());
  if (m === null) return { ok: false, reason: 'unparsable' };
  const [, ys, mos, ds, hs, mis, ss, frac, zulu, sign, ohs, oms] = m;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs ?? '0');
  const minute = Number(mis ?? '0');
  const second = Number(ss ?? '0');
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return { ok: false, reason: 'unparsable' };
  if (hour > 23 || minute > 59 || second > 59) return { ok: false, reason: 'unparsable' };
  let offsetMin: number;
  if (zulu !== undefined) offsetMin = 0;
  else if (sign !== undefined) {
    const oh = Number(ohs);
    const om = Number(oms ?? '0');
    if (oh > 23 || om > 59) return { ok: false, reason: 'unparsable' };
    offsetMin = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  } else {
    return { ok: false, reason: 'no-timezone' };
  }
  const micros = frac === undefined ? 0 : Number(frac.padEnd(6, '0').slice(0, 6));
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  d.setUTCFullYear(year);
  const epochMs = d.getTime() - offsetMin * 60_000 + Math.floor(micros / 1000);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const off = `${offsetMin < 0 ? '-' : '+'}${p2(Math.floor(Math.abs(offsetMin) / 60))}:${p2(Math.abs(offsetMin) % 60)}`;
  const iso =
    `${String(year).padStart(4, '0')}-${p2(month)}-${p2(day)}T${p2(hour)}:${p2(minute)}:${p2(second)}` +
    (micros !== 0 ? `.${String(micros).padStart(6, '0')}` : '') +
    off;
  return { ok: true, epochMs, iso };
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Patroni's schedule check: the error reply, or the normalised timestamp. */
function checkSchedule(value: unknown, action: 'switchover' | 'restart', now: Date): { error: ApiResponse } | { iso: string } {
  const t = parseTimestamp(value);
  if (!t.ok) {
    return t.reason === 'no-timezone'
      ? { error: message(400, `Timezone information is mandatory for the scheduled ${action}`) }
      : { error: message(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601') };
  }
  if (t.epochMs < now.getTime()) return { error: message(422, `Cannot schedule ${action} in the past`) };
  return { iso: t.iso };
}

// ---------------------------------------------------------------------------------------------
// POST /switchover, POST /failover, DELETE /switchover (2.12).

async function postFailover(
  req: ApiRequest,
  snap: NodeSnapshot,
  port: OperationsPort,
  opts: OperationOptions,
  requested: 'switchover' | 'failover',
): Promise<ApiResponse> {
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const r = body.value;
  for (const k of ['leader', 'candidate', 'member'] as const) {
    if (r[k] !== undefined && r[k] !== null && typeof r[k] !== 'string') return message(400, `${k} must be a member name (a string)`);
  }
  const leader = nonEmpty(r['leader']);
  const candidate = nonEmpty(r['candidate']) ?? nonEmpty(r['member']);
  const scheduledRaw = r['scheduled_at'];
  const scheduled = scheduledRaw !== undefined && scheduledRaw !== null && scheduledRaw !== '';
  let action = requested;

  if (action === 'failover' && candidate === undefined) return message(400, 'Failover could be performed only to a specific candidate');
  if (action === 'switchover' && leader === undefined) return message(400, 'Switchover could be performed only from a specific leader');
  const cluster = await readCluster(port);
  const paused = isPaused(snap, cluster);
  let scheduledAt: string | undefined;
  if (scheduled) {
    if (action === 'failover') return message(400, "Failover can't be scheduled");
    if (paused) return message(400, "Can't schedule switchover in the paused state");
    const s = checkSchedule(scheduledRaw, 'switchover', opts.now());
    if ('error' in s) return s.error;
    scheduledAt = s.iso;
  }
  if (paused && candidate === undefined) return message(400, 'Switchover is possible only to a specific candidate in a paused state');
  // A failover that names the current leader is a switchover.
  if (action === 'failover' && leader !== undefined) action = 'switchover';
  if (leader === candidate) return message(400, 'Switchover target and source are the same');

  if (scheduledAt === undefined) {
    const blocker = await failoverBlocker(cluster, snap, port, leader, candidate, action);
    if (blocker !== undefined) return message(412, blocker);
  }

  const value: Record<string, unknown> = {};
  if (leader !== undefined) value['leader'] = leader;
  if (candidate !== undefined) value['member'] = candidate;
  if (scheduledAt !== undefined) value['scheduled_at'] = scheduledAt;
  let written: boolean;
  try {
    written = await port.writeFailover(value);
  } catch {
    written = false;
  }
  if (!written) return message(503, 'failed to write failover key into DCS');
  port.wakeup();
  if (scheduledAt !== undefined) return message(202, 'Switchover scheduled');
  return pollResult(port, snap, cluster, cluster.leader?.name, candidate, action, opts);
}

/** Patroni's pre-check for an immediate request: why it cannot succeed, or undefined. */
async function failoverBlocker(
  cluster: ClusterView,
  snap: NodeSnapshot,
  port: OperationsPort,
  leader: string | undefined,
  candidate: string | undefined,
  action: 'switchover' | 'failover',
): Promise<string | undefined> {
  const lockHolder = cluster.leader?.name;
  if (leader !== undefined && lockHolder !== leader) return 'leader name does not match';
  const config = (cluster.config ?? snap.config) as NodeSnapshot['config'];
  const strictSync = syncModeOf(config) === 'on';
  let names: string[];
  if (candidate !== undefined) {
    if (action === 'switchover' && strictSync && !syncMatches(cluster.sync, candidate)) {
      return 'candidate name does not match with sync_standby';
    }
    if (!cluster.members.some((m) => m.name === candidate)) return 'candidate does not exists';
    names = [candidate];
  } else if (strictSync) {
    names = cluster.members.filter((m) => syncMatches(cluster.sync, m.name)).map((m) => m.name);
    if (names.length === 0) return `${action} is not possible: can not find sync_standby`;
  } else {
    names = cluster.members
      .filter((m) => lockHolder === undefined || (m.name !== lockHolder && typeof m.data.api_url === 'string' && m.data.api_url !== ''))
      .map((m) => m.name);
    if (names.length === 0) return `${action} is not possible: cluster does not have members except leader`;
  }
  // A good candidate: a member other than the lock holder whose GET /patroni answers, without
  // nofailover and without a failed watchdog. Checked in parallel, 2 s each (fetchPeer's deadline).
  const checks = names
    .filter((n) => n !== lockHolder)
    .map(async (name) => {
      const apiUrl = cluster.members.find((m) => m.name === name)?.data.api_url;
      if (typeof apiUrl !== 'string' || apiUrl === '') return false;
      try {
        const st = await port.fetchPeer(name, apiUrl);
        return st.reachable && !st.nofailover && !st.watchdogFailed;
      } catch {
        return false;
      }
    });
  const good = await Promise.all(checks);
  return good.some(Boolean) ? undefined : `${action} is not possible: no good candidates have been found`;
}

/** Wait for the leader to change (or the request to vanish), as spec 2.12 step 7 says. */
async function pollResult(
  port: OperationsPort,
  snap: NodeSnapshot,
  cluster: ClusterView,
  oldLeader: string | undefined,
  candidate: string | undefined,
  action: 'switchover' | 'failover',
  opts: OperationOptions,
): Promise<ApiResponse> {
  const loopWait = positiveNumber(cluster.config?.['loop_wait']) ?? positiveNumber(snap.config.loop_wait) ?? 10;
  const timeoutMs = opts.switchoverTimeoutMs ?? 2 * Math.max(10, loopWait) * 1000;
  const interval = Math.max(1, opts.pollIntervalMs ?? 1000);
  const rounds = Math.max(1, Math.ceil(timeoutMs / interval));
  const Action = action === 'switchover' ? 'Switchover' : 'Failover';
  const verb = action === 'switchover' ? 'switched over' : 'failed over';
  for (let i = 0; i < rounds; i++) {
    if (!(await sleep(interval, opts.signal))) break;
    let view: ClusterView;
    try {
      view = await port.readCluster();
    } catch {
      continue; // a DCS hiccup while waiting: try again next round
    }
    const now = view.leader?.name;
    if (now !== undefined && now !== oldLeader) {
      if (candidate === undefined || candidate === now) return message(200, `Successfully ${verb} to "${now}"`);
      return message(200, `${verb[0]?.toUpperCase()}${verb.slice(1)} to "${now}" instead of "${candidate}"`);
    }
    if (!hasRequest(view)) return message(503, `${Action} failed`);
  }
  const seconds = Math.round(timeoutMs / 1000);
  return message(503, `${Action} status unknown after ${seconds} seconds; operation may still be in progress`);
}

async function deleteSwitchover(port: OperationsPort): Promise<ApiResponse> {
  const cluster = await readCluster(port);
  const fo = cluster.failover;
  if (fo === undefined || typeof fo.scheduled_at !== 'string' || fo.scheduled_at === '') return message(404, 'no switchover is scheduled');
  let cleared: boolean;
  try {
    cleared = await port.writeFailover({}, fo.version);
  } catch {
    return message(503, 'failed to write failover key into DCS');
  }
  return cleared ? message(200, 'scheduled switchover deleted') : errorPage(409, 'the failover key changed meanwhile');
}

// ---------------------------------------------------------------------------------------------
// POST /restart (2.13).

async function postRestart(req: ApiRequest, snap: NodeSnapshot, port: OperationsPort, opts: OperationOptions): Promise<ApiResponse> {
  const body = readJsonBody(req, true);
  if (!body.ok) return body.response;
  const filters: RestartRequest = {};
  let schedule: string | undefined;
  // Checked in the body's key order; the first bad key decides the reply.
  for (const [k, v] of Object.entries(body.value)) {
    if (k === 'schedule') {
      const s = checkSchedule(v, 'restart', opts.now());
      if ('error' in s) return s.error;
      schedule = s.iso;
    } else if (k === 'role') {
      if (v !== 'primary' && v !== 'standby_leader' && v !== 'replica') {
        return message(400, 'PostgreSQL role should be either primary, standby_leader, or replica');
      }
      filters.role = v;
    } else if (k === 'postgres_version') {
      const problem = postgresVersionProblem(v);
      if (problem !== undefined) return message(400, problem);
      filters.postgres_version = String(v).trim();
    } else if (k === 'timeout') {
      const t = parseSecondsValue(v);
      if (t === undefined || t <= 0) return message(400, 'Timeout should be a positive number of seconds');
      filters.timeout = t;
    } else if (k === 'restart_pending') {
      // The key's presence enables the filter, whatever its value.
      filters.restart_pending = true;
    } else {
      return message(400, `Unknown filter for the scheduled restart: ${k}`);
    }
  }

  if (schedule === undefined) {
    let outcome;
    try {
      outcome = await port.restart(filters);
    } catch (err) {
      opts.onError?.('restart', err);
      return message(400, 'restart failed');
    }
    if (outcome.ok) return message(200, 'restarted successfully');
    return message(503, outcome.message !== '' ? outcome.message : defaultRestartMessage(outcome.reason));
  }

  let cluster: ClusterView | undefined;
  try {
    cluster = await port.readCluster();
  } catch {
    cluster = undefined; // decide from the snapshot alone
  }
  if (isPaused(snap, cluster)) return message(500, "Can't schedule restart in the paused state");
  const sr: ScheduledRestart = { schedule, ...filters };
  return port.scheduleRestart(sr) ? message(202, 'Restart scheduled') : message(409, 'Another restart is already scheduled');
}

function defaultRestartMessage(reason: 'conditions' | 'busy' | 'starting' | 'failed'): string {
  switch (reason) {
    case 'conditions':
      return 'restart conditions are not satisfied';
    case 'busy':
      return 'restart already in progress';
    case 'starting':
      return 'postgres is still starting';
    case 'failed':
      return 'restart failed';
  }
}

/** Patroni's version parser messages for `postgres_version`; undefined when acceptable. */
export function postgresVersionProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) {
    return `Invalid PostgreSQL major version format: ${JSON.stringify(v) ?? String(v)}`;
  }
  const text = String(v);
  const parts = text.trim().split('.');
  if (parts.some((p) => !/^\d+$/.test(p))) return `Invalid PostgreSQL major version format: ${text}`;
  const major = Number(parts[0]);
  if (parts.length < 2 || parts.length > 3 || (parts.length === 2 && major < 10)) {
    return `Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${text}`;
  }
  return undefined;
}

const SECOND_UNITS: Record<string, number> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };

/** Seconds from a number or a string with an optional unit (ms, s, min, h, d), rounded. */
export function parseSecondsValue(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const m = /^\s*([+-]?\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$/.exec(v);
    if (m === null) return undefined;
    n = Number(m[1]) * (SECOND_UNITS[m[2] ?? 's'] ?? 1);
  } else return undefined;
  return Number.isFinite(n) ? Math.round(n) : undefined;
}

// ---------------------------------------------------------------------------------------------
// POST /reinitialize (2.15).

async function postReinitialize(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  const body = readJsonBody(req, true);
  if (!body.ok) return body.response;
  const force = toBool(body.value['force']) ?? false;
  const fromLeader = toBool(body.value['from_leader']) ?? false;
  const cluster = await readCluster(port);
  const leader = cluster.leader?.name;
  if (leader === undefined || leader === '') return message(503, 'Cluster has no leader, can not reinitialize');
  if (leader === port.name) return message(503, 'I am the leader, can not reinitialize');
  let res;
  try {
    res = await port.reinitialize({ force, fromLeader });
  } catch {
    return message(503, 'reinitialize failed');
  }
  return res.ok ? message(200, 'reinitialize started') : message(503, res.message);
}

// ---------------------------------------------------------------------------------------------
// PATCH /config, PUT /config (2.9).

async function patchConfig(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const cluster = await readCluster(port);
  const stored = cluster.config;
  if (stored === undefined || !isMap(stored) || cluster.configVersion === undefined || cluster.configVersion === '' || cluster.configVersion === '0') {
    return errorPage(503, 'the cluster has no valid configuration in the DCS');
  }
  const merged = structuredClone(stored);
  const changed = patchConfigValue(merged, body.value);
  if (changed) {
    // Reject only what this patch breaks: a problem already present in the stored configuration
    // must not block an unrelated change (or the change that fixes it).
    const before = new Set(validateDynamicConfig(stored));
    const problems = validateDynamicConfig(merged).filter((p) => !before.has(p));
    if (problems.length > 0) return message(400, `Invalid dynamic configuration: ${problems.join('; ')}`);
    let ok: boolean;
    try {
      ok = await port.writeConfig(merged, cluster.configVersion);
    } catch {
      return message(503, 'failed to write config into DCS');
    }
    if (!ok) return errorPage(409, 'the configuration changed meanwhile');
  }
  port.wakeup();
  return { status: 200, body: JSON.stringify(merged), contentType: JSON_TYPE };
}

async function putConfig(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const problems = validateDynamicConfig(body.value);
  if (problems.length > 0) return message(400, `Invalid dynamic configuration: ${problems.join('; ')}`);
  const cluster = await readCluster(port);
  if (cluster.config === undefined || !sameConfig(body.value, cluster.config)) {
    let ok: boolean;
    try {
      ok = await port.writeConfig(body.value);
    } catch {
      ok = false;
    }
    if (!ok) return errorPage(502, 'failed to write config into DCS');
    port.wakeup();
  }
  return { status: 200, body: JSON.stringify(body.value), contentType: JSON_TYPE };
}

/**
 * Merge `patch` into `config` in place, Patroni's way: null deletes a key, objects merge into
 * objects, anything else replaces the value when its Python string form differs (so "5" over 5 is
 * no change). A new key is stored as given (nulls inside a new object stay). true when changed.
 */
export function patchConfigValue(config: Record<string, unknown>, patch: Record<string, unknown>): boolean {
  let changed = false;
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      if (Object.prototype.hasOwnProperty.call(config, k)) {
        if (config[k] !== null) changed = true;
        delete config[k];
      }
    } else if (Object.prototype.hasOwnProperty.call(config, k)) {
      const cur = config[k];
      if (isMap(v)) {
        if (isMap(cur)) {
          if (patchConfigValue(cur, v)) changed = true;
        } else {
          config[k] = v;
          changed = true;
        }
      } else if (pyStr(cur) !== pyStr(v)) {
        config[k] = v;
        changed = true;
      }
    } else {
      config[k] = v;
      changed = true;
    }
  }
  return changed;
}

/** Deep equality with scalars compared by their Python string form (Patroni's deep_compare). */
function sameConfig(a: unknown, b: unknown): boolean {
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameConfig(a[k], b[k]));
  }
  if (isMap(a) || isMap(b)) return false;
  return pyStr(a) === pyStr(b);
}

/** Python's str() of a JSON value (repr for containers). */
export function pyStr(v: unknown): string {
  if (typeof v === 'string') return v;
  return pyRepr(v);
}

function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (isMap(v)) return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Helpers.

class DcsReadError extends Error {}

async function readCluster(port: OperationsPort): Promise<ClusterView> {
  try {
    return await port.readCluster();
  } catch (err) {
    throw new DcsReadError(err instanceof Error ? err.message : String(err));
  }
}

function isPaused(snap: NodeSnapshot, cluster: ClusterView | undefined): boolean {
  return snap.pause === true || truthy(snap.config.pause) || truthy(cluster?.config?.['pause']);
}

function hasRequest(view: ClusterView): boolean {
  const fo = view.failover;
  return fo !== undefined && (nonEmpty(fo.leader) !== undefined || nonEmpty(fo.member) !== undefined);
}

/** The name is listed in /sync's sync_standby (case-insensitive). */
function syncMatches(sync: SyncState | undefined, name: string): boolean {
  if (sync === undefined || typeof sync.sync_standby !== 'string') return false;
  const want = name.toLowerCase();
  return sync.sync_standby.split(',').some((n) => n.trim().toLowerCase() === want);
}

function truthy(v: unknown): boolean {
  return toBool(v) === true;
}

function nonEmpty(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function positiveNumber(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A plain-message reply (Patroni sends these as text/html with the bare message). */
function message(status: number, text: string): ApiResponse {
  return { status, body: text, contentType: HTML_TYPE };
}

/** Sleep; false when aborted. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
