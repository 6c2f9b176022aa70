// The client side of the leader race: GET a peer's api_url (its /patroni endpoint) and read what the
// election needs (behavior spec 5.1). One attempt, a hard deadline, and every failure folded into
// `reachable: false`: the caller must never wait on, or be thrown at by, a sick peer.
// peerRequest, the one HTTP exchange underneath, is shared with failsafe.ts (POST /failsafe).
//
// node:http/https rather than fetch: a peer may answer in HTTP/1.0 without Content-Length (read to
// the end of the connection), and the server certificate check is Patroni's agent's (peerRequest).

import { readFileSync } from 'node:fs';
import { request as httpRequest } from '../node-http.ts';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';

import { failoverPriority, isNoFailover } from '../core/election.ts';
import type { PeerStatus } from '../core/model.ts';
import type { RestApiSettings } from '../config/types.ts';
import { PATRONI_COMPAT_VERSION } from './version.ts';

export interface FetchPeerOptions {
  /** Deadline for the whole exchange (connect, headers, body). Default 2000 ms. */
  timeoutMs?: number;
  /** ctl.authentication (else restapi.authentication), sent as Basic auth. */
  auth?: { username: string; password: string };
  /** Client certificate and key (PEM) for peers that verify clients (peerTls). */
  tls?: PeerTls | undefined;
  /** Aborts the request early (e.g. the agent is stopping). */
  signal?: AbortSignal;
  /** Told why a peer counts as unreachable. */
  onError?: (name: string, apiUrl: string, reason: string) => void;
}

const MAX_BODY_BYTES = 1024 * 1024;

/** TLS of a call to a peer: a client certificate (with its key and passphrase) and the CAs to trust. */
export interface PeerTls {
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  ca?: string | Buffer;
  /** A file could not be read: every request fails with this reason (the peer counts as unreachable). */
  error?: string;
}

/**
 * The TLS of the agent's calls to its peers from restapi.peerTls (ctl.certfile, keyfile,
 * keyfile_password, cacert, else restapi's): undefined when none is set. The files are read at each
 * call (renewed certificates apply without a reload); never throws: a file that cannot be read
 * gives `error`, naming it.
 */
export function peerTls(rest: RestApiSettings): PeerTls | undefined {
  const f = rest.peerTls;
  if (f === undefined) return undefined;
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
    }
  };
  const out: PeerTls = {};
  try {
    if (f.certfile !== undefined) {
      out.cert = read('ctl.certfile', f.certfile);
      out.key = f.keyfile !== undefined ? read('ctl.keyfile', f.keyfile) : out.cert; // a combined PEM file
    }
    if (f.keyfilePassword !== undefined) out.passphrase = f.keyfilePassword;
    if (f.cafile !== undefined) out.ca = read('ctl.cacert', f.cafile);
  } catch (e) {
    return { error: (e as Error).message };
  }
  return out;
}

/** A peer we know nothing about: only `reachable` is meaningful. */
export function unreachablePeer(name: string): PeerStatus {
  return {
    name,
    reachable: false,
    inRecovery: true,
    walPosition: 0,
    timeline: undefined,
    nofailover: false,
    failoverPriority: 1,
    watchdogFailed: false,
  };
}

/**
 * Read a peer's status JSON into a PeerStatus; undefined when the object cannot be used
 * (no role, or a non-primary without xlog/wal: Patroni treats that peer as not reachable).
 */
export function parsePeerStatus(name: string, value: unknown): PeerStatus | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  const role = o['role'];
  if (typeof role !== 'string') return undefined;
  const xlogRaw = o['xlog'] ?? o['wal'];
  const xlog = xlogRaw !== null && typeof xlogRaw === 'object' && !Array.isArray(xlogRaw) ? (xlogRaw as Record<string, unknown>) : undefined;
  const isPrimary = role === 'primary' || role === 'master' || (xlog !== undefined && xlog['location'] !== undefined);
  let walPosition = 0;
  if (!isPrimary) {
    if (xlog === undefined) return undefined;
    walPosition = Math.max(lsnNumber(xlog['received_location']), lsnNumber(xlog['replayed_location']));
  }
  const timeline = typeof o['timeline'] === 'number' && Number.isFinite(o['timeline']) ? o['timeline'] : undefined;
  const tagsRaw = o['tags'];
  const tags = tagsRaw !== null && typeof tagsRaw === 'object' && !Array.isArray(tagsRaw) ? (tagsRaw as Record<string, unknown>) : {};
  return {
    name,
    reachable: true,
    inRecovery: !isPrimary,
    walPosition,
    timeline,
    nofailover: isNoFailover(tags),
    failoverPriority: failoverPriority(tags),
    watchdogFailed: o['watchdog_failed'] === true,
  };
}

function lsnNumber(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

/**
 * GET <apiUrl> once, with a deadline (default 2 s). Never rejects: any error, a status other than
 * 200/503, a body that is not a usable status object -> `reachable: false`.
 */
export async function fetchPeerStatus(name: string, apiUrl: string, opts: FetchPeerOptions = {}): Promise<PeerStatus> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  try {
    const { status, body } = await getOnce(apiUrl, timeoutMs, opts);
    if (status !== 200 && status !== 503) {
      opts.onError?.(name, apiUrl, `HTTP status ${status}`);
      return unreachablePeer(name);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      opts.onError?.(name, apiUrl, 'response is not JSON');
      return unreachablePeer(name);
    }
    const peer = parsePeerStatus(name, parsed);
    if (peer === undefined) {
      opts.onError?.(name, apiUrl, 'response lacks role or xlog');
      return unreachablePeer(name);
    }
    return peer;
  } catch (err) {
    opts.onError?.(name, apiUrl, err instanceof Error ? err.message : String(err));
    return unreachablePeer(name);
  }
}

/** fetchPeerStatus for every member, in parallel; results in the members' order. */
export async function fetchPeers(
  members: { name: string; apiUrl: string }[],
  opts: FetchPeerOptions = {},
): Promise<PeerStatus[]> {
  return Promise.all(members.map((m) => fetchPeerStatus(m.name, m.apiUrl, opts)));
}

function getOnce(apiUrl: string, timeoutMs: number, opts: FetchPeerOptions): Promise<{ status: number; body: string }> {
  return peerRequest(apiUrl, { ...opts, method: 'GET', timeoutMs, accept: 'application/json' });
}

export interface PeerRequestOptions {
  method: 'GET' | 'POST';
  /** Deadline for the whole exchange (connect, headers, body). */
  timeoutMs: number;
  /** Sent with Content-Length (and Content-Type: application/json). */
  jsonBody?: string;
  /** Accept header (default none). */
  accept?: string;
  auth?: { username: string; password: string } | undefined;
  tls?: PeerTls | undefined;
  signal?: AbortSignal | undefined;
}

/** A failed exchange with a peer: `kind` tells the caller whether retrying can help. */
export class PeerRequestError extends Error {
  constructor(
    message: string,
    /** timeout: no full answer before the deadline; refused: nothing listens; closed: the peer
     * dropped the connection; aborted: the caller's signal; other: anything else (DNS, TLS, ...). */
    readonly kind: 'timeout' | 'refused' | 'closed' | 'aborted' | 'other',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PeerRequestError';
  }
}

/**
 * One HTTP(S) exchange with a peer's REST API, with a hard deadline; rejects with a
 * PeerRequestError. Any HTTP status resolves (the caller judges it). As Patroni's agent: without a
 * client certificate the peer's server certificate is not verified; with one, its chain is checked
 * against `tls.ca` (else the system's CAs) but not its host name. The
 * body is read to the end of the response (HTTP/1.0 without Content-Length works), at most 1 MiB.
 */
export function peerRequest(
  target: string,
  opts: PeerRequestOptions,
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return Promise.reject(new PeerRequestError(`invalid URL ${JSON.stringify(target)}`, 'other'));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new PeerRequestError(`unsupported api_url scheme ${url.protocol}`, 'other'));
  }
  if (opts.tls?.error !== undefined && url.protocol === 'https:') return Promise.reject(new PeerRequestError(opts.tls.error, 'other'));
  const timeoutMs = opts.timeoutMs;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal !== undefined ? AbortSignal.any([deadline, opts.signal]) : deadline;
  const headers: Record<string, string> = {
    'User-Agent': `Patroni/${PATRONI_COMPAT_VERSION} Vigil`,
    Connection: 'close',
  };
  if (opts.accept !== undefined) headers['Accept'] = opts.accept;
  if (opts.auth !== undefined) {
    headers['Authorization'] = 'Basic ' + Buffer.from(`${opts.auth.username}:${opts.auth.password}`, 'utf8').toString('base64');
  }
  const payload = opts.jsonBody !== undefined ? Buffer.from(opts.jsonBody, 'utf8') : undefined;
  if (payload !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(payload.length);
  }
  const classify = (err: unknown): PeerRequestError => {
    if (err instanceof PeerRequestError) return err;
    if (deadline.aborted) return new PeerRequestError(`no answer within ${timeoutMs} ms`, 'timeout', { cause: err });
    if (signal.aborted) return new PeerRequestError('request aborted', 'aborted', { cause: err });
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const msg = err instanceof Error ? err.message : String(err);
    if (code === 'ECONNREFUSED') return new PeerRequestError('connection refused (ECONNREFUSED)', 'refused', { cause: err });
    if (code === 'ECONNRESET' || code === 'EPIPE' || msg === 'socket hang up' || msg === 'response aborted') {
      return new PeerRequestError(`connection closed by the peer (${code ?? msg})`, 'closed', { cause: err });
    }
    return new PeerRequestError(msg, 'other', { cause: err });
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      reject(classify(err));
    };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          res.destroy();
          fail(new PeerRequestError('response body too large', 'other'));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (err) => fail(err));
      res.on('aborted', () => fail(new Error('response aborted')));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
      });
    };
    const common = { method: opts.method, headers, signal, agent: false as const };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...common, ...httpsOptions(opts.tls) }, onResponse)
        : httpRequest(url, common, onResponse);
    req.on('error', (err) => fail(err));
    req.end(payload);
  });
}

function httpsOptions(tls: PeerTls | undefined): Record<string, unknown> {
  if (tls?.cert === undefined) return { rejectUnauthorized: false, ...(tls?.ca !== undefined ? { ca: tls.ca } : {}) };
  return {
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
    cert: tls.cert,
    key: tls.key,
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
  };
}
