// One HTTP exchange on a listener: read the request (target, headers, body within the size limit),
// route it (router.ts), write the reply with the extra headers, report it (onRequest).
//
// Keep-alive is honoured where the client asks for it (HTTP/1.1 without `Connection: close`, or
// HTTP/1.0 with `Connection: keep-alive`) on replies to safe methods; replies to the unsafe
// operations (POST/PATCH/PUT/DELETE) and to clients that did not ask say `Connection: close` and the
// connection ends, as with Patroni (whose HTTP/1.0 server closes every connection). Status-line-only
// replies (HEAD, OPTIONS, /liveness, /readiness) are written raw as `HTTP/1.0 <code> <reason>\r\n\r\n`
// and the socket is ended: this is what HAProxy's `option httpchk` and Patroni's peers expect.

import { STATUS_CODES } from '../node-http.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';

import type { Listener } from './listener.ts';
import type { LoginFailureLog } from './login-log.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import { route } from './router.ts';
import type { RouterOptions } from './router.ts';
import type { Settings } from './settings.ts';

export interface RequestInfo {
  method: string;
  path: string;
  status: number;
  remoteAddress: string | undefined;
  /** Clock units (ms) between the request's arrival and the reply. */
  durationMs: number;
}

export interface ExchangeOptions extends RouterOptions {
  /** Largest accepted request body; larger -> 413. */
  maxBodyBytes: number;
  /** Called after every reply (logging, metrics). Exceptions are swallowed. */
  onRequest: ((info: RequestInfo) => void) | undefined;
  /** Aborted when the server closes: operations stop waiting for their result. */
  closing: AbortSignal;
  /** Where failed logins go (rate-limited logging); the same for every request. */
  loginFailures: LoginFailureLog | undefined;
}

const UNSAFE: ReadonlySet<string> = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/** Past this many body bytes we stop draining an oversized request and just drop the connection. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

/**
 * Serve one request that arrived on `l` under `settings` (the settings current when it arrived:
 * a reload while it runs does not change them).
 */
export function serveRequest(l: Listener, settings: Settings, req: IncomingMessage, res: ServerResponse, opts: ExchangeOptions): void {
  const clock = opts.clock;
  const maxBody = opts.maxBodyBytes;
  const started = clock();
  const tls = l.tls !== undefined;
  const extraHeaders = tls ? settings.headers.tls : settings.headers.plain;
  l.busy.add(req.socket);
  const rawUrl = req.url ?? '/';
  const { path, query } = splitUrl(rawUrl);
  const method = req.method ?? 'GET';
  const logins = opts.loginFailures;
  const handlerOptions: HandlerOptions = {
    ...(settings.auth ? { auth: settings.auth } : {}),
    ...(tls ? { verifyClient: l.verifyClient } : {}),
    ...(logins !== undefined ? { onLoginFailure: (reason) => logins.failed({ client: req.socket.remoteAddress, method, path, reason }) } : {}),
  };

  let finished = false;
  const finish = (r: ApiResponse): void => {
    if (finished) return;
    finished = true;
    l.busy.delete(req.socket);
    const status = reply(req, res, r, extraHeaders);
    if (opts.onRequest !== undefined) {
      try {
        opts.onRequest({ method, path, status, remoteAddress: req.socket.remoteAddress, durationMs: clock() - started });
      } catch {
        // An observer must not break the server.
      }
    }
  };

  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > DRAIN_LIMIT_BYTES) {
    // Not worth draining: answer and drop the connection.
    finish(tooLarge(maxBody));
    req.socket.destroySoon();
    return;
  }

  const chunks: Buffer[] = [];
  let received = 0;
  let oversized = Number.isFinite(declared) && declared > maxBody;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBody) oversized = true;
    if (received > DRAIN_LIMIT_BYTES) {
      req.socket.destroy();
      return;
    }
    if (!oversized) chunks.push(chunk);
  });
  req.on('error', () => {
    // The client went away; nothing to answer.
  });
  req.on('end', () => {
    // Answer only once the body was read whole: replying earlier and closing the socket would
    // make the kernel reset the connection and the client might never see the 413.
    if (oversized) {
      finish(tooLarge(maxBody));
      return;
    }
    const body = chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : undefined;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const apiReq: ApiRequest = { method, path, query, headers, ...(body !== undefined ? { body } : {}) };
    if (tls) apiReq.clientCertVerified = (req.socket as TLSSocket).authorized === true;
    const r = route(apiReq, opts, {
      handlerOptions,
      allowlist: settings.allowlist,
      client: req.socket.remoteAddress,
      signal: () => {
        // Stop waiting when the client leaves or the server closes.
        const gone = new AbortController();
        res.on('close', () => gone.abort());
        return AbortSignal.any([gone.signal, opts.closing]);
      },
    });
    if (r instanceof Promise) void r.then(finish);
    else finish(r);
  });
}

/** Path (raw, not normalised, as Patroni sees it) and query of a request target. */
export function splitUrl(rawUrl: string): { path: string; query: URLSearchParams } {
  let target = rawUrl;
  if (!target.startsWith('/')) {
    // Absolute form ("http://host/path?q") or "*".
    try {
      const u = new URL(target);
      // "a:" or "mailto:x" have an empty or relative pathname: the path starts with "/" anyway.
      target = (u.pathname.startsWith('/') ? u.pathname : `/${u.pathname}`) + u.search;
    } catch {
      target = '/' + target;
    }
  }
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  let query: URLSearchParams;
  try {
    query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  } catch {
    query = new URLSearchParams();
  }
  return { path, query };
}

function tooLarge(maxBody: number): ApiResponse {
  return { status: 413, body: `request body larger than ${maxBody} bytes`, contentType: 'text/plain; charset=utf-8' };
}

/**
 * Write the reply; returns the status sent. Extra headers go on every reply that has headers
 * (error pages included); the reply's own headers win over extra ones of the same name.
 */
export function reply(req: IncomingMessage, res: ServerResponse, r: ApiResponse, extraHeaders: Readonly<Record<string, string>>): number {
  if (r.statusLineOnly) {
    // No headers at all, HTTP/1.0, then close: node's own writer would add headers and HTTP/1.1.
    const socket = req.socket;
    if (socket.writable) socket.end(`HTTP/1.0 ${r.status} ${STATUS_CODES[r.status] ?? 'Unknown'}\r\n\r\n`);
    else socket.destroy();
    return r.status;
  }
  const body = Buffer.from(r.body ?? '', 'utf8');
  // By lower-cased name: the reply's own headers win over extra ones of the same name, so that a
  // configured Content-Length or Connection cannot make the reply malformed.
  const headers = new Map<string, [string, string | number]>();
  const put = (name: string, value: string | number): void => void headers.set(name.toLowerCase(), [name, value]);
  for (const [k, v] of Object.entries(extraHeaders)) put(k, v);
  for (const [k, v] of Object.entries(r.headers ?? {})) put(k, v);
  if (r.contentType !== undefined) put('Content-Type', r.contentType);
  put('Content-Length', body.length);
  // res.shouldKeepAlive: what the client's request allows (set by node:http from its version and
  // Connection header). Written by us, so that a configured extra Connection header cannot override it.
  put('Connection', res.shouldKeepAlive && !UNSAFE.has(req.method ?? '') ? 'keep-alive' : 'close');
  try {
    res.writeHead(r.status, Object.fromEntries(headers.values()));
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    // Invalid extra header values or a socket that went away: drop the connection.
    req.socket.destroy();
  }
  return r.status;
}
