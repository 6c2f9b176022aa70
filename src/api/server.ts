// The REST API server: a thin node:http(s) shell around handlers.ts and operations.ts. Safe requests
// (GET, HEAD, OPTIONS) are answered from getSnapshot() synchronously, so a hung PostgreSQL or DCS
// never holds them; only the client's own slowness can, and headersTimeout/requestTimeout bound that.
// Unsafe requests (POST, PATCH, PUT, DELETE) to a guarded endpoint first pass restapi.allowlist
// (allowlist.ts; may wait briefly on DNS), then the gate in handlers.ts (client certificate, Basic
// auth), and then run asynchronously in operations.ts against the OperationsPort; they may wait on
// the DCS and on PostgreSQL (a switchover waits up to 2*max(10, loop_wait) s for its result).
//
// restapi.http_extra_headers (and https_extra_headers with TLS) go on every reply that has
// headers, error pages included; status-line-only replies have none.
//
// One request per connection (Connection: close), like Patroni's HTTP/1.0 server. Status-line-only
// replies (HEAD, OPTIONS, /liveness, /readiness) are written raw as `HTTP/1.0 <code> <reason>\r\n\r\n`
// and the socket is ended: this is what HAProxy's `option httpchk` and Patroni's peers expect.
//
// Reload (ApiServer.reconfigure, called by `vigil agent` after SIGHUP or POST /reload): each
// request reads the settings (authentication, allowlist, extra headers) once, when it arrives, so
// a reload swaps them between two requests, never within one. A renewed certificate or key (same
// listen and verify_client) is put into the running listener with setSecureContext: connections
// made afterwards get it, open ones keep theirs. A new listen address, a switch between HTTP and
// HTTPS or a new verify_client need another node:http(s) server: it is bound before the old one
// stops listening when the address differs; the old one then finishes its requests in progress.

import { createServer, STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions, TLSSocket } from 'node:tls';

import { Allowlist } from './allowlist.ts';
import type { AllowlistOptions } from './allowlist.ts';
import { guardedOperation, operationGate } from './gate.ts';
import { handle } from './handlers.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import { errorPage } from './request.ts';
import { handleOperation, OPERATION_KEYS } from './operations.ts';
import type { OperationsPort } from './port.ts';
import type { NodeSnapshot } from './snapshot.ts';

/** pino-compatible subset. */
export interface ApiLogger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
  error?(obj: object, msg?: string): void;
}

export interface RequestInfo {
  method: string;
  path: string;
  status: number;
  remoteAddress: string | undefined;
  /** Clock units (ms) between the request's arrival and the reply. */
  durationMs: number;
}

export interface ApiServerOptions {
  /** restapi.listen, "host:port"; host '', '*' or '0.0.0.0' = all interfaces; "[::1]:8008" for IPv6. */
  listen: string;
  /** The agent's latest snapshot. Must not block; an exception gives 500. */
  getSnapshot: () => NodeSnapshot;
  /** restapi.authentication, required on unsafe endpoints. */
  auth?: { username: string; password: string };
  logger?: ApiLogger;
  /** Clock for the handlers' `nowMs`, same clock as the snapshot's times. Default Date.now. */
  clock?: () => number;
  /** Called after every reply (logging, metrics). Exceptions are swallowed. */
  onRequest?: (info: RequestInfo) => void;
  /** restapi.http_extra_headers: added to every reply except the status-line-only ones. */
  extraHeaders?: Readonly<Record<string, string>>;
  /** restapi.https_extra_headers: added as well when `tls` is set (they win over extraHeaders). */
  httpsExtraHeaders?: Readonly<Record<string, string>>;
  /**
   * restapi.allowlist and allowlist_include_members: client addresses allowed on the guarded
   * unsafe endpoints (others get 403 "Access is denied"). Without entries and include_members,
   * nothing is checked. Bad entries make startApiServer (and reconfigure) reject.
   */
  allowlist?: Omit<AllowlistOptions, 'logger'>;
  /** Largest accepted request body; larger -> 413. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Time allowed to receive the request headers. Default 5000 ms. */
  headersTimeoutMs?: number;
  /** Time allowed to receive the whole request. Default 10000 ms. */
  requestTimeoutMs?: number;
  /** The agent's side of the unsafe endpoints; without it they answer 503 "not supported yet". */
  operations?: OperationsPort;
  /** Wall clock for scheduled_at / schedule checks. Default () => new Date(). */
  wallClock?: () => Date;
  /** Interval between DCS reads while a switchover waits for its result. Default 1000 ms. */
  switchoverPollMs?: number;
  /** HTTPS (restapi.certfile & co.). Without it the server speaks plain HTTP. */
  tls?: ApiTlsOptions;
}

export interface ApiTlsOptions {
  /** Server certificate chain, PEM (restapi.certfile). */
  cert: string;
  /** Private key, PEM (restapi.keyfile; may be the same file as cert). */
  key: string;
  /** restapi.keyfile_password. */
  passphrase?: string;
  /** CA bundle, PEM, that client certificates must chain to (restapi.cafile). */
  ca?: string;
  /**
   * restapi.verify_client. none (default): no client certificate asked. optional: asked, and
   * required on unsafe endpoints (403 "client certificate required" otherwise). required: the TLS
   * handshake fails without a valid one, for every request.
   */
  verifyClient?: 'none' | 'optional' | 'required';
}

export interface ApiServer {
  /** The bound port of the listener in use (useful with port 0; follows a listen change). */
  readonly port: number;
  /**
   * Apply reloaded restapi settings (the whole new state). Authentication, allowlist and extra
   * headers count from the next request on; new TLS material with the same listen and
   * verify_client goes into the running listener (setSecureContext) for the next connections; a
   * new listen, a switch between HTTP and HTTPS or a new verify_client replaces the listener.
   * Resolves with a short description of what changed ("no change" when nothing did). Rejects,
   * with the running settings and listener untouched, when the new ones cannot be used (bad
   * allowlist entry or header, unusable TLS material, an address that cannot be bound), or when
   * the server is closed. Calls are applied one at a time, in call order.
   */
  reconfigure(next: ApiReloadableOptions): Promise<string>;
  /**
   * Stop accepting (on every listener, including those a reconfigure replaced), close idle
   * sockets, destroy the rest after a short grace. Idempotent.
   */
  close(): Promise<void>;
}

const UNSAFE_METHODS: ReadonlySet<string> = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/** Past this many body bytes we stop draining an oversized request and just drop the connection. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;
const CLOSE_GRACE_MS = 2000;

/**
 * The extra headers of every reply: http_extra_headers, plus https_extra_headers when TLS is on
 * (same name, case-insensitively: the https one wins). Throws on an invalid name or value.
 */
export function effectiveExtraHeaders(
  http: Readonly<Record<string, string>> | undefined,
  https: Readonly<Record<string, string>> | undefined,
  tls: boolean,
): Record<string, string> {
  const out = new Map<string, [string, string]>();
  for (const source of tls ? [http, https] : [http]) {
    for (const [name, value] of Object.entries(source ?? {})) {
      try {
        validateHeaderName(name);
        validateHeaderValue(name, value);
      } catch (err) {
        throw new Error(`REST API extra header ${JSON.stringify(name)}: ${(err as Error).message}`, { cause: err });
      }
      out.set(name.toLowerCase(), [name, value]);
    }
  }
  return Object.fromEntries(out.values());
}

/**
 * ApiTlsOptions from restapi's file settings: certfile (PEM chain; may also hold the key when
 * keyfile is not set), keyfile, keyfile_password, cafile, verify_client. Rejects with the file
 * and the reason when a file cannot be read.
 */
export async function readTlsFiles(s: {
  certfile: string;
  keyfile?: string | undefined;
  keyfilePassword?: string | undefined;
  cafile?: string | undefined;
  verifyClient?: 'none' | 'optional' | 'required' | undefined;
}): Promise<ApiTlsOptions> {
  const read = async (what: string, file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`restapi.${what} ${JSON.stringify(file)} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  const cert = await read('certfile', s.certfile);
  const key = s.keyfile !== undefined ? await read('keyfile', s.keyfile) : cert;
  return {
    cert,
    key,
    ...(s.keyfilePassword !== undefined ? { passphrase: s.keyfilePassword } : {}),
    ...(s.cafile !== undefined ? { ca: await read('cafile', s.cafile) } : {}),
    verifyClient: s.verifyClient ?? 'none',
  };
}

/** Parse restapi.listen into a host for net.Server#listen (undefined = all) and a port. */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const s = listen.trim();
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':') throw new Error(`invalid listen address ${JSON.stringify(listen)}: expected [host]:port`);
    host = s.slice(1, end);
    portText = s.slice(end + 2);
  } else {
    const colon = s.lastIndexOf(':');
    host = colon < 0 ? '' : s.slice(0, colon);
    portText = colon < 0 ? s : s.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new Error(`invalid listen address ${JSON.stringify(listen)}: bad port`);
  }
  const all = host === '' || host === '*' || host === '0.0.0.0' || host === '::';
  return { host: all ? undefined : host, port: Number(portText) };
}

/**
 * The restapi settings a reload may change (ApiServer.reconfigure). A call gives the whole new
 * state: a setting left out is unset (no authentication, no allowlist, no extra headers, HTTP).
 */
export type ApiReloadableOptions = Pick<ApiServerOptions, 'listen' | 'auth' | 'extraHeaders' | 'httpsExtraHeaders' | 'allowlist' | 'tls'>;

/** What requests read when they arrive; reconfigure replaces it as a whole. */
interface Settings {
  readonly auth: { username: string; password: string } | undefined;
  readonly allowlist: Allowlist | undefined;
  /** The options the allowlist was made from (to keep it, and its DNS cache, when they did not change). */
  readonly allowlistOptions: Omit<AllowlistOptions, 'logger'> | undefined;
  /** Effective extra headers on a plain HTTP and on an HTTPS listener. */
  readonly headers: { readonly plain: Readonly<Record<string, string>>; readonly tls: Readonly<Record<string, string>> };
}

/** One node:http(s) server (bound or about to be) and the sockets it accepted. */
interface Listener {
  readonly server: Server;
  /** restapi.listen as given, and parsed. */
  readonly listen: string;
  readonly host: string | undefined;
  readonly configuredPort: number;
  /** The TLS material in use (setSecureContext replaces it); undefined: plain HTTP. */
  tls: ApiTlsOptions | undefined;
  readonly verifyClient: 'none' | 'optional' | 'required';
  boundPort: number;
  // Sockets, and those with a request in progress (reading its body or waiting for an operation):
  // shutting the listener down destroys the others at once and gives these a grace. With TLS the
  // sockets tracked are the TLS ones; raw sockets still in the handshake are kept apart (by
  // remote address:port).
  readonly sockets: Set<Socket>;
  readonly busy: Set<Socket>;
  readonly handshaking: Map<string, Socket>;
  /** Set once the listener stops accepting; resolves when its last connection is gone. */
  shut: Promise<void> | undefined;
}

/** How long a listener replaced by reconfigure lets its requests in progress finish (a switchover waits up to 2*loop_wait). */
const RETIRE_GRACE_MS = 60_000;

function makeSettings(next: ApiReloadableOptions, previous: Settings | undefined, log: ApiLogger | undefined): Settings {
  const headers = {
    plain: effectiveExtraHeaders(next.extraHeaders, next.httpsExtraHeaders, false),
    tls: effectiveExtraHeaders(next.extraHeaders, next.httpsExtraHeaders, true),
  };
  let allowlist: Allowlist | undefined;
  if (next.allowlist !== undefined) {
    allowlist =
      previous?.allowlist !== undefined && sameAllowlist(previous.allowlistOptions, next.allowlist)
        ? previous.allowlist
        : new Allowlist({ ...next.allowlist, ...(log !== undefined ? { logger: log } : {}) });
  }
  return { auth: next.auth, allowlist, allowlistOptions: next.allowlist, headers };
}

function sameAllowlist(a: Omit<AllowlistOptions, 'logger'> | undefined, b: Omit<AllowlistOptions, 'logger'> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.entries.length === b.entries.length &&
    a.entries.every((e, i) => e === b.entries[i]) &&
    (a.includeMembers === true) === (b.includeMembers === true) &&
    a.lookup === b.lookup &&
    a.clock === b.clock &&
    a.ttlMs === b.ttlMs &&
    a.retryMs === b.retryMs &&
    a.waitMs === b.waitMs
  );
}

function sameHeaders(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const norm = (h: Readonly<Record<string, string>>): string => JSON.stringify(Object.entries(h).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return norm(a) === norm(b);
}

/** The parts of ApiTlsOptions that make the secure context (not verify_client). */
function secureContextOptions(tls: ApiTlsOptions): SecureContextOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
  };
}

function sameTlsMaterial(a: ApiTlsOptions, b: ApiTlsOptions): boolean {
  return a.cert === b.cert && a.key === b.key && a.passphrase === b.passphrase && a.ca === b.ca;
}

function describeListener(l: { listen: string; tls: ApiTlsOptions | undefined; verifyClient: string }): string {
  return `${l.tls !== undefined ? 'HTTPS' : 'HTTP'} on ${l.listen}${l.tls !== undefined && l.verifyClient !== 'none' ? ` (verify_client ${l.verifyClient})` : ''}`;
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const clock = opts.clock ?? Date.now;
  const maxBody = opts.maxBodyBytes ?? 64 * 1024;
  const log = opts.logger;

  const httpOptions = {
    requestTimeout: opts.requestTimeoutMs ?? 10_000,
    headersTimeout: opts.headersTimeoutMs ?? 5_000,
    // Check the timeouts every second instead of node's default 30 s.
    connectionsCheckingInterval: 1_000,
    keepAlive: true,
    noDelay: true,
  };

  let settings = makeSettings(opts, undefined, log);
  // Aborted by close(): operations waiting for a switchover result stop waiting.
  const closing$ = new AbortController();
  let closed = false;
  // Every listener not yet fully closed: the current one and those reconfigure replaced.
  const listeners = new Set<Listener>();

  /** A new (not yet bound) listener; throws on unusable TLS material or a bad listen address. */
  function makeListener(listen: string, tls: ApiTlsOptions | undefined): Listener {
    const { host, port } = parseListen(listen);
    const verifyClient = tls?.verifyClient ?? 'none';
    let server: Server;
    if (tls === undefined) {
      server = createServer(httpOptions);
    } else {
      try {
        server = createHttpsServer({
          ...httpOptions,
          ...secureContextOptions(tls),
          requestCert: verifyClient !== 'none',
          rejectUnauthorized: verifyClient === 'required',
          handshakeTimeout: opts.headersTimeoutMs ?? 5_000,
        });
      } catch (err) {
        throw new Error(`REST API TLS setup failed (certfile/keyfile/keyfile_password/cafile): ${(err as Error).message}`, { cause: err });
      }
    }
    server.keepAliveTimeout = 1_000;
    const l: Listener = {
      server,
      listen,
      host,
      configuredPort: port,
      tls,
      verifyClient,
      boundPort: port,
      sockets: new Set(),
      busy: new Set(),
      handshaking: new Map(),
      shut: undefined,
    };
    server.on('request', (req: IncomingMessage, res: ServerResponse) => onRequest(l, req, res));

    const track = (socket: Socket): void => {
      l.sockets.add(socket);
      socket.on('close', () => {
        l.sockets.delete(socket);
        l.busy.delete(socket);
      });
      socket.on('error', () => {
        // Resets by clients are normal for health checkers.
      });
    };
    const peerKey = (s: Socket): string => `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}`;
    if (tls === undefined) {
      server.on('connection', track);
    } else {
      server.on('connection', (raw: Socket) => {
        const k = peerKey(raw);
        l.handshaking.set(k, raw);
        raw.on('close', () => {
          if (l.handshaking.get(k) === raw) l.handshaking.delete(k);
        });
        raw.on('error', () => undefined);
      });
      server.on('secureConnection', (socket: TLSSocket) => {
        l.handshaking.delete(peerKey(socket));
        track(socket);
      });
      server.on('tlsClientError', (err: Error) => {
        log?.debug?.({ err: err.message }, 'REST API TLS handshake failed');
      });
    }

    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      log?.debug?.({ err: err.message, code: err.code }, 'REST API client error');
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.0 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\n\r\n`);
    });
    return l;
  }

  /** Bind a listener; rejects (and leaves it unbound) when the address cannot be used. */
  async function bind(l: Listener): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      l.server.once('error', onError);
      l.server.listen({ host: l.host, port: l.configuredPort }, () => {
        l.server.off('error', onError);
        resolve();
      });
    });
    l.server.on('error', (err) => log?.error?.({ err }, 'REST API server error'));
    const address = l.server.address();
    l.boundPort = typeof address === 'object' && address !== null ? address.port : l.configuredPort;
    listeners.add(l);
  }

  /**
   * Stop accepting, destroy idle sockets and those still in the TLS handshake, and destroy the
   * rest after `graceMs`. A second call with a shorter grace shortens it. Resolves once every
   * connection is gone.
   */
  function shut(l: Listener, graceMs: number): Promise<void> {
    if (l.shut === undefined) {
      l.shut = new Promise<void>((resolve) => {
        l.server.close(() => {
          listeners.delete(l);
          resolve();
        });
      });
      for (const raw of l.handshaking.values()) raw.destroy();
      l.handshaking.clear();
      l.server.closeIdleConnections();
      for (const socket of l.sockets) if (!l.busy.has(socket)) socket.destroy();
    }
    const timer = setTimeout(() => {
      l.server.closeAllConnections();
      for (const socket of l.sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    void l.shut.then(() => clearTimeout(timer));
    return l.shut;
  }

  function onRequest(l: Listener, req: IncomingMessage, res: ServerResponse): void {
    const started = clock();
    // The settings of this request: a reconfigure while it runs does not change them.
    const s = settings;
    const tls = l.tls !== undefined;
    const extraHeaders = tls ? s.headers.tls : s.headers.plain;
    const handlerOptions: HandlerOptions = {
      ...(s.auth ? { auth: s.auth } : {}),
      ...(tls ? { verifyClient: l.verifyClient } : {}),
    };
    const allowlist = s.allowlist;
    l.busy.add(req.socket);
    const rawUrl = req.url ?? '/';
    const { path, query } = splitUrl(rawUrl);
    const method = req.method ?? 'GET';

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
      // restapi.allowlist comes first on the guarded endpoints (2.2); the members count on all
      // of them but POST /failsafe.
      const guarded = allowlist !== undefined && UNSAFE_METHODS.has(method) ? guardedOperation(method, path) : undefined;
      if (allowlist === undefined || guarded === undefined || !allowlist.applies(guarded !== 'POST failsafe')) {
        dispatch();
        return;
      }
      let memberUrls: (string | undefined)[] | undefined;
      if (guarded !== 'POST failsafe') {
        try {
          memberUrls = (opts.getSnapshot().cluster?.members ?? []).map((m) => m.data.api_url);
        } catch (err) {
          log?.error?.({ err, method, path }, 'REST API request failed');
          finish({ status: 500, body: 'internal error', contentType: 'text/plain; charset=utf-8' });
          return;
        }
      }
      const client = req.socket.remoteAddress;
      allowlist.allows(client, memberUrls).then(
        (ok) => {
          if (ok) {
            dispatch();
            return;
          }
          log?.warn?.({ client, method, path }, 'REST API: client address not in restapi.allowlist');
          finish(errorPage(403, 'Access is denied'));
        },
        (err: unknown) => {
          log?.error?.({ err, method, path }, 'REST API allowlist check failed');
          finish({ status: 500, body: 'internal error', contentType: 'text/plain; charset=utf-8' });
        },
      );
    });

    /** Answer the request whose body was read (and which passed the allowlist). */
    function dispatch(): void {
      let response: ApiResponse;
      try {
        const snap = opts.getSnapshot();
        const body = chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : undefined;
        const headers: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        const apiReq: ApiRequest = { method, path, query, headers, ...(body !== undefined ? { body } : {}) };
        if (tls) apiReq.clientCertVerified = (req.socket as TLSSocket).authorized === true;
        if (opts.operations !== undefined && UNSAFE_METHODS.has(method)) {
          const gate = operationGate(apiReq, handlerOptions);
          if (gate.kind === 'answer') {
            response = gate.response;
          } else if (OPERATION_KEYS.has(gate.key)) {
            runOperation(apiReq, snap, opts.operations, finish);
            return;
          } else {
            response = handle(apiReq, snap, clock(), handlerOptions);
          }
        } else {
          response = handle(apiReq, snap, clock(), handlerOptions);
        }
      } catch (err) {
        log?.error?.({ err, method, path }, 'REST API request failed');
        response = { status: 500, body: 'internal error', contentType: 'text/plain; charset=utf-8' };
      }
      finish(response);
    }

    /** An unsafe operation: asynchronous; stops waiting when the client leaves or the server closes. */
    function runOperation(apiReq: ApiRequest, snap: NodeSnapshot, port: OperationsPort, done: (r: ApiResponse) => void): void {
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      const signal = AbortSignal.any([gone.signal, closing$.signal]);
      handleOperation(apiReq, snap, port, {
        now: opts.wallClock ?? (() => new Date()),
        signal,
        ...(opts.switchoverPollMs !== undefined ? { pollIntervalMs: opts.switchoverPollMs } : {}),
        onError: (what, err) => log?.error?.({ err, what }, 'REST API operation failed'),
      }).then(done, (err: unknown) => {
        log?.error?.({ err, method, path }, 'REST API operation failed');
        done({ status: 500, body: 'internal error', contentType: 'text/plain; charset=utf-8' });
      });
    }
  }

  let current = makeListener(opts.listen, opts.tls);
  await bind(current);
  // Resolve the allowlist's hostnames now rather than on the first unsafe request (never rejects).
  void settings.allowlist?.prime();

  /**
   * Replace the current listener by `next` (not bound yet) and install `nextSettings` the moment
   * it is bound. Rejects with the old listener and settings still in place when it cannot be
   * bound (or, in the rare case where the old one had to let go of its address first and the
   * new one then fails, after binding a copy of the old one again).
   */
  async function replaceListener(next: Listener, nextSettings: Settings): Promise<void> {
    const old = current;
    const sameAddress = next.configuredPort !== 0 && next.configuredPort === old.configuredPort && next.host === old.host;
    const install = (): void => {
      current = next;
      settings = nextSettings;
      void shut(old, RETIRE_GRACE_MS);
    };
    if (!sameAddress) {
      // Another address: the new listener is bound first, so that there is no moment without one.
      try {
        await bind(next);
        install();
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // The same port on an overlapping host ("127.0.0.1:8008" -> "*:8008"): the old listener
        // has to let go first, as for the same address.
        if (!(code === 'EADDRINUSE' && next.configuredPort === old.configuredPort)) {
          throw new Error(`REST API cannot listen on ${next.listen}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
    // The same address: the old listener must stop listening before the new one can bind it, so
    // connections are refused for the few milliseconds in between. This gap cannot be avoided
    // without SO_REUSEPORT, which node:net does not offer here. Requests in progress on the old
    // listener go on (RETIRE_GRACE_MS).
    void shut(old, RETIRE_GRACE_MS);
    try {
      await bind(next);
    } catch (err) {
      const why = `REST API cannot listen on ${next.listen}: ${(err as Error).message}`;
      // Bring the previous listener back (a fresh server with the same settings).
      const again = makeListener(old.listen, old.tls);
      try {
        await bind(again);
      } catch (err2) {
        current = again;
        log?.error?.({ err: err2 }, `REST API: ${describeListener(old)} could not be restored either: the REST API is not listening`);
        throw new Error(`${why}; restoring ${describeListener(old)} failed too (${(err2 as Error).message}): the REST API is not listening`, { cause: err2 });
      }
      current = again;
      throw new Error(`${why}; kept ${describeListener(old)}`, { cause: err });
    }
    current = next;
    settings = nextSettings;
  }

  async function reconfigure(next: ApiReloadableOptions): Promise<string> {
    if (closed) throw new Error('the REST API server is closed');
    // Everything is checked before anything changes: a bad setting leaves the running ones alone.
    const nextSettings = makeSettings(next, settings, log);
    const old = current;
    const nextVerify = next.tls !== undefined ? (next.tls.verifyClient ?? 'none') : 'none';
    const oldWhere = { host: old.host, port: old.configuredPort };
    const where = parseListen(next.listen);
    const restart =
      where.host !== oldWhere.host ||
      where.port !== oldWhere.port ||
      (next.tls === undefined) !== (old.tls === undefined) ||
      (next.tls !== undefined && nextVerify !== old.verifyClient);
    const newListener = restart ? makeListener(next.listen, next.tls) : undefined;
    const renew = !restart && next.tls !== undefined && old.tls !== undefined && !sameTlsMaterial(old.tls, next.tls);
    if (renew && next.tls !== undefined) {
      try {
        // Checked here: setSecureContext stores the options on the server before it builds the
        // context, so a failure there would leave them half replaced.
        createSecureContext(secureContextOptions(next.tls));
      } catch (err) {
        throw new Error(`REST API TLS setup failed (certfile/keyfile/keyfile_password/cafile): ${(err as Error).message}`, { cause: err });
      }
    }

    const changes: string[] = [];
    const prev = settings;
    const a = prev.auth;
    const b = nextSettings.auth;
    if (a === undefined && b !== undefined) changes.push('authentication set');
    else if (a !== undefined && b === undefined) changes.push('authentication removed');
    else if (a !== undefined && b !== undefined && (a.username !== b.username || a.password !== b.password)) changes.push('authentication changed');
    if (nextSettings.allowlist !== prev.allowlist) changes.push(nextSettings.allowlist === undefined ? 'allowlist removed' : 'allowlist changed');
    const tlsAfter = next.tls !== undefined;
    const tlsBefore = old.tls !== undefined;
    if (!sameHeaders(tlsBefore ? prev.headers.tls : prev.headers.plain, tlsAfter ? nextSettings.headers.tls : nextSettings.headers.plain)) {
      changes.push('extra headers changed');
    }

    if (newListener !== undefined) {
      await replaceListener(newListener, nextSettings);
      if (closed) {
        // close() ran while the new listener was being bound: it must not outlive it.
        void shut(newListener, 0);
        throw new Error('the REST API server is closed');
      }
      changes.push(`listener restarted: ${describeListener(old)} -> ${describeListener(newListener)}, port ${newListener.boundPort}`);
      if (newListener.tls !== undefined && old.tls !== undefined && !sameTlsMaterial(old.tls, newListener.tls)) changes.push('certificate reloaded');
    } else {
      if (renew && next.tls !== undefined) {
        try {
          (old.server as unknown as HttpsServer).setSecureContext(secureContextOptions(next.tls));
        } catch (err) {
          throw new Error(`REST API TLS setup failed (certfile/keyfile/keyfile_password/cafile): ${(err as Error).message}`, { cause: err });
        }
        old.tls = next.tls;
        changes.push('certificate reloaded');
      }
      settings = nextSettings;
    }
    if (nextSettings.allowlist !== undefined && nextSettings.allowlist !== prev.allowlist) void nextSettings.allowlist.prime();
    return changes.length > 0 ? changes.join('; ') : 'no change';
  }

  // One reconfigure at a time, in call order.
  let queue: Promise<unknown> = Promise.resolve();
  let closing: Promise<void> | undefined;
  return {
    get port(): number {
      return current.boundPort;
    },
    reconfigure(next: ApiReloadableOptions): Promise<string> {
      const run = queue.then(() => reconfigure(next));
      queue = run.catch(() => undefined);
      return run;
    },
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        closing$.abort();
        await Promise.all([...listeners, current].map((l) => shut(l, CLOSE_GRACE_MS)));
      })();
      return closing;
    },
  };
}

/** Path (raw, not normalised, as Patroni sees it) and query of a request target. */
function splitUrl(rawUrl: string): { path: string; query: URLSearchParams } {
  let target = rawUrl;
  if (!target.startsWith('/')) {
    // Absolute form ("http://host/path?q") or "*".
    try {
      const u = new URL(target);
      target = u.pathname + u.search;
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

/** Write the reply; returns the status sent. */
function reply(req: IncomingMessage, res: ServerResponse, r: ApiResponse, extraHeaders: Readonly<Record<string, string>>): number {
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
  put('Connection', 'close');
  try {
    res.writeHead(r.status, Object.fromEntries(headers.values()));
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    // Invalid extra header values or a socket that went away: drop the connection.
    req.socket.destroy();
  }
  return r.status;
}
