// Failsafe mode's REST side (patroni-interfaces.md 2.10, patroni-behavior.md 4 and 8.4).
//
// Receiver (postFailsafe): a primary that cannot reach the DCS POSTs {name, conn_url, api_url,
// slots} to every other member of the last /failsafe value. Accepting ("200 Accepted") promises
// that this node will not race for the leader lock for ttl seconds; the agent keeps that promise
// through OperationsPort.failsafeReceived. Refusing makes the sender demote, so every doubt
// (unknown role, no port support) ends in a refusal.
//
// Client (checkFailsafeTopology): the primary's side of the same exchange. It succeeds only if
// EVERY other member answers 200 with the body exactly `Accepted`; anything else (timeout, refused,
// other status, other body) fails the whole check and the caller must demote.

import { peerRequest, PeerRequestError, type PeerTls } from './peers.ts';
import type { FailsafeSender, OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { errorPage, message, readJsonBody } from './request.ts';
import type { NodeSnapshot, XlogPrimary, XlogReplica } from './snapshot.ts';

// ---------------------------------------------------------------------------------------------
// Receiver: POST /failsafe.

/** A validated body, or the name of the offending field and why. */
export type ParsedFailsafeBody = { ok: true; sender: FailsafeSender } | { ok: false; field: string; message: string };

/**
 * Validate a POST /failsafe body: name, conn_url and api_url are required non-empty strings;
 * slots, when present and not null, is an object of slot name -> non-negative integer LSN.
 * Unknown fields are ignored (newer senders may add some).
 */
export function parseFailsafeBody(body: Record<string, unknown>): ParsedFailsafeBody {
  const str = (field: string): string | { field: string; message: string } => {
    const v = body[field];
    if (v === undefined || v === null) return { field, message: `${field} is required` };
    if (typeof v !== 'string') return { field, message: `${field} must be a string` };
    if (v === '') return { field, message: `${field} must not be empty` };
    return v;
  };
  const name = str('name');
  if (typeof name !== 'string') return { ok: false, ...name };
  const connUrl = str('conn_url');
  if (typeof connUrl !== 'string') return { ok: false, ...connUrl };
  const apiUrl = str('api_url');
  if (typeof apiUrl !== 'string') return { ok: false, ...apiUrl };
  const raw = body['slots'];
  let slots: Record<string, number> | undefined;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      return { ok: false, field: 'slots', message: 'slots must be an object of slot name -> LSN' };
    }
    slots = {};
    for (const [slot, lsn] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof lsn !== 'number' || !Number.isSafeInteger(lsn) || lsn < 0) {
        return { ok: false, field: `slots.${slot}`, message: `slots.${slot} must be a non-negative integer LSN` };
      }
      slots[slot] = lsn;
    }
  }
  return { ok: true, sender: { name, connUrl, apiUrl, slots } };
}

/**
 * POST /failsafe (auth and client certificate were checked by the gate in gate.ts):
 * - 502 (framework error) when failsafe_mode is off in the snapshot's dynamic config;
 * - 411 / 400 for a missing or unusable body (400 names the field);
 * - 500 `Running as a leader` when this node runs as a primary (or is being promoted);
 * - 503 when the port cannot take the sender (no failsafe support);
 * - else the sender goes to port.failsafeReceived and the answer is 200 `Accepted`, with header
 *   `lsn: <int>` when our receive/replay position is known (the port's answer, else the
 *   snapshot's replica xlog).
 * Never throws for bad input; a throwing port is turned into a 500 by handleOperation.
 */
export function postFailsafe(req: ApiRequest, snap: NodeSnapshot, port: OperationsPort): ApiResponse {
  if (snap.config.failsafe_mode !== true) return errorPage(502);
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const parsed = parseFailsafeBody(body.value);
  if (!parsed.ok) return errorPage(400, `Bad request: ${parsed.message}`);
  if (runsAsPrimary(snap)) return message(500, 'Running as a leader');
  if (port.failsafeReceived === undefined) return message(503, 'failsafe mode is not supported by this node');
  const { lsn } = port.failsafeReceived(parsed.sender);
  const known = validLsn(lsn) ?? snapshotLsn(snap);
  const response = message(200, 'Accepted');
  if (known !== undefined) response.headers = { lsn: String(known) };
  return response;
}

/**
 * This node runs PostgreSQL as a primary: running, and either the probe saw it out of recovery or
 * the agent's role is primary/promoted. Either signal is enough to refuse (refusal is the safe side).
 */
function runsAsPrimary(snap: NodeSnapshot): boolean {
  if (snap.state !== 'running') return false;
  const x = snap.xlog as Partial<XlogPrimary> | undefined;
  return typeof x?.location === 'number' || snap.role === 'primary' || snap.role === 'promoted';
}

/** A replica's last known position from the snapshot: max(received, replayed). */
function snapshotLsn(snap: NodeSnapshot): number | undefined {
  const x = snap.xlog as Partial<XlogReplica> | undefined;
  if (x === undefined || (x as Partial<XlogPrimary>).location !== undefined) return undefined;
  const r = validLsn(x.received_location);
  const p = validLsn(x.replayed_location);
  if (r === undefined && p === undefined) return undefined;
  return Math.max(r ?? 0, p ?? 0);
}

function validLsn(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}


// ---------------------------------------------------------------------------------------------
// Client: the primary's check while the DCS is unreachable.

/** What the primary POSTs (Patroni's field names). */
export interface FailsafeBody {
  name: string;
  conn_url: string;
  api_url: string;
  /** The primary's replication slots with LSNs, plus its own slot name mapped to its current LSN. */
  slots?: Record<string, number> | undefined;
}

export interface FailsafeCheckOptions {
  /** This node's name; it must be a key of `topology`. */
  me: string;
  /** The last /failsafe value read from the DCS ({member name: api_url}). */
  topology: Record<string, string> | undefined;
  body: FailsafeBody;
  /** ctl.authentication (else restapi.authentication), sent as Basic auth. */
  auth?: { username: string; password: string } | undefined;
  /** Client certificate and key for peers that verify clients (peers.ts peerTls, peerRequest). */
  tls?: PeerTls | undefined;
  /** Deadline of one attempt (connect, headers, body). Default 2000 ms. */
  timeoutMs?: number;
  /** Further attempts after a transport failure (timeout, refused, connection closed). Default 1. */
  retries?: number;
  /** Aborts every request (the agent is stopping): the check then fails. */
  signal?: AbortSignal;
}

export interface FailsafeCheckResult {
  /** Every other member accepted (or I am the only member): the primary may stay primary. */
  ok: boolean;
  /** One line for the log / the tick's reason; on failure it names each failed member and how. */
  reason: string;
  /** The `lsn` header of each member that sent a valid one (member name -> LSN). */
  lsns: Record<string, number>;
}

type MemberOutcome = { name: string; ok: true; lsn: number | undefined } | { name: string; ok: false; why: string };

/**
 * Patroni's check_failsafe_topology. Topology not an object, or without `me` -> fail. Only `me` ->
 * ok (single-node cluster). Otherwise POST <origin of each other member's api_url>/failsafe with
 * `body`, all in parallel; each gets `timeoutMs` per attempt and `retries` more attempts after a
 * transport failure (an HTTP answer of any status is final). ok only if all answered 200 with the
 * body exactly `Accepted`. Never rejects; bounded by (1 + retries) * timeoutMs.
 */
export async function checkFailsafeTopology(opts: FailsafeCheckOptions): Promise<FailsafeCheckResult> {
  const topology: unknown = opts.topology;
  if (topology === undefined || topology === null) {
    return { ok: false, reason: 'failsafe check failed: no /failsafe topology was read from the DCS', lsns: {} };
  }
  if (typeof topology !== 'object' || Array.isArray(topology)) {
    return { ok: false, reason: 'failsafe check failed: the /failsafe topology is not an object', lsns: {} };
  }
  const entries = Object.entries(topology as Record<string, unknown>);
  if (!entries.some(([name]) => name === opts.me)) {
    return { ok: false, reason: `failsafe check failed: ${opts.me} is not a member of /failsafe`, lsns: {} };
  }
  const others = entries.filter(([name]) => name !== opts.me);
  if (others.length === 0) return { ok: true, reason: `${opts.me} is the only member of /failsafe`, lsns: {} };

  const payload = JSON.stringify(opts.body);
  const outcomes = await Promise.all(others.map(([name, apiUrl]) => callMember(name, apiUrl, payload, opts)));
  const lsns: Record<string, number> = {};
  for (const o of outcomes) if (o.ok && o.lsn !== undefined) lsns[o.name] = o.lsn;
  const failed = outcomes.filter((o): o is Extract<MemberOutcome, { ok: false }> => !o.ok);
  if (failed.length > 0) {
    return { ok: false, reason: `failsafe check failed: ${failed.map((f) => `${f.name}: ${f.why}`).join('; ')}`, lsns };
  }
  const names = outcomes.map((o) => o.name).join(', ');
  return { ok: true, reason: `all ${outcomes.length} other members of /failsafe accepted (${names})`, lsns };
}

async function callMember(name: string, apiUrl: unknown, payload: string, opts: FailsafeCheckOptions): Promise<MemberOutcome> {
  if (typeof apiUrl !== 'string') return { name, ok: false, why: 'no api_url in /failsafe' };
  let target: string;
  try {
    const u = new URL(apiUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    target = `${u.origin}/failsafe`;
  } catch {
    return { name, ok: false, why: `unusable api_url ${JSON.stringify(apiUrl)}` };
  }
  // Nonsense options fall back to the defaults rather than disabling the check.
  const timeoutMs = typeof opts.timeoutMs === 'number' && opts.timeoutMs >= 1 && Number.isFinite(opts.timeoutMs) ? Math.floor(opts.timeoutMs) : 2000;
  const retries = typeof opts.retries === 'number' && opts.retries >= 0 && Number.isFinite(opts.retries) ? Math.floor(opts.retries) : 1;
  const attempts = 1 + retries;
  let lastError = 'not attempted';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let res: Awaited<ReturnType<typeof peerRequest>>;
    try {
      res = await peerRequest(target, {
        method: 'POST',
        timeoutMs,
        jsonBody: payload,
        auth: opts.auth,
        tls: opts.tls,
        signal: opts.signal,
      });
    } catch (err) {
      const e = err instanceof PeerRequestError ? err : new PeerRequestError(String(err), 'other');
      lastError = e.kind === 'timeout' ? `timeout (${e.message})` : e.kind === 'refused' ? 'refused' : e.message;
      if (e.kind === 'aborted') return { name, ok: false, why: 'aborted' };
      continue;
    }
    if (res.status !== 200) return { name, ok: false, why: `HTTP ${res.status}${bodyHint(res.body)}` };
    if (res.body !== 'Accepted') return { name, ok: false, why: `HTTP 200 but the body is not Accepted${bodyHint(res.body)}` };
    return { name, ok: true, lsn: parseLsnHeader(res.headers['lsn']) };
  }
  return { name, ok: false, why: attempts > 1 ? `${lastError} after ${attempts} attempts` : lastError };
}

/** The `lsn` response header as an integer; undefined when absent or not a plain integer. */
export function parseLsnHeader(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || !/^\s*\d+\s*$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A short, single-line quote of a reply body for the reason text. */
function bodyHint(body: string): string {
  const t = body.replace(/\s+/g, ' ').trim();
  if (t === '') return '';
  return ` ${JSON.stringify(t.length > 80 ? `${t.slice(0, 80)}...` : t)}`;
}
