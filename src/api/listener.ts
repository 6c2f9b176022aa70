// The REST API's listeners: node:http(s) servers bound to restapi.listen, the sockets they accepted,
// and their lifecycle (bind, replace on reload, shut down with a grace for requests in progress).
//
// Keep-alive: node's keepAlive with a 1 s keepAliveTimeout (an idle keep-alive connection is closed
// after 1 s); exchange.ts decides per reply whether the connection stays open.
//
// Replacement (ListenerPool.replace): a listener on another address is bound before the old one
// stops listening; on the same address the old one has to let go first (connections are refused
// for the few milliseconds in between). The replaced listener finishes its requests in progress
// within RETIRE_GRACE_MS.

import { createServer, STATUS_CODES } from '../node-http.ts';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

import { secureContextOptions, sameTlsMaterial, tlsSetupError } from './tls.ts';
import type { ApiTlsOptions } from './tls.ts';

/** pino-compatible subset. */
export interface ApiLogger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
  error?(obj: object, msg?: string): void;
}

/** One node:http(s) server (bound or about to be) and the sockets it accepted. */
export interface Listener {
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

/** "HTTP on 127.0.0.1:8008", "HTTPS on :8443 (verify_client required)". */
export function describeListener(l: { listen: string; tls: ApiTlsOptions | undefined; verifyClient: string }): string {
  return `${l.tls !== undefined ? 'HTTPS' : 'HTTP'} on ${l.listen}${l.tls !== undefined && l.verifyClient !== 'none' ? ` (verify_client ${l.verifyClient})` : ''}`;
}

/**
 * What a reload does to the running listener `old` given the new listen and TLS settings:
 * 'restart' (another node:http(s) server: new address, switch between HTTP and HTTPS, or new
 * verify_client), 'renew' (same listener, new certificate/key/CA: setSecureContext) or 'keep'.
 * Throws on a bad listen address.
 */
export function listenerChange(
  old: Pick<Listener, 'host' | 'configuredPort' | 'tls' | 'verifyClient'>,
  listen: string,
  tls: ApiTlsOptions | undefined,
): 'restart' | 'renew' | 'keep' {
  const nextVerify = tls !== undefined ? (tls.verifyClient ?? 'none') : 'none';
  const where = parseListen(listen);
  const restart =
    where.host !== old.host ||
    where.port !== old.configuredPort ||
    (tls === undefined) !== (old.tls === undefined) ||
    (tls !== undefined && nextVerify !== old.verifyClient);
  if (restart) return 'restart';
  return tls !== undefined && old.tls !== undefined && !sameTlsMaterial(old.tls, tls) ? 'renew' : 'keep';
}

export interface ListenerPoolOptions {
  /** Time allowed to receive the request headers (and, with TLS, to complete the handshake). */
  headersTimeoutMs: number;
  /** Time allowed to receive the whole request. */
  requestTimeoutMs: number;
  log: ApiLogger | undefined;
  /** Called for every request on any of the pool's listeners. */
  onRequest: (l: Listener, req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * The listener in use (`current`) and every listener not yet fully closed (those a reload
 * replaced keep finishing their requests).
 */
export class ListenerPool {
  current: Listener;
  private readonly open = new Set<Listener>();
  private readonly opts: ListenerPoolOptions;

  /** Makes (does not bind) the first listener; throws on unusable TLS material or a bad listen address. */
  constructor(opts: ListenerPoolOptions, listen: string, tls: ApiTlsOptions | undefined) {
    this.opts = opts;
    this.current = this.make(listen, tls);
  }

  /** A new (not yet bound) listener; throws on unusable TLS material or a bad listen address. */
  make(listen: string, tls: ApiTlsOptions | undefined): Listener {
    const { log, onRequest } = this.opts;
    const httpOptions = {
      requestTimeout: this.opts.requestTimeoutMs,
      headersTimeout: this.opts.headersTimeoutMs,
      // Check the timeouts every second instead of node's default 30 s.
      connectionsCheckingInterval: 1_000,
      keepAlive: true,
      noDelay: true,
    };
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
          handshakeTimeout: this.opts.headersTimeoutMs,
        });
      } catch (err) {
        throw tlsSetupError(err);
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
  async bind(l: Listener): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      l.server.once('error', onError);
      l.server.listen({ host: l.host, port: l.configuredPort }, () => {
        l.server.off('error', onError);
        resolve();
      });
    });
    l.server.on('error', (err) => this.opts.log?.error?.({ err }, 'REST API server error'));
    const address = l.server.address();
    l.boundPort = typeof address === 'object' && address !== null ? address.port : l.configuredPort;
    this.open.add(l);
  }

  /**
   * Stop accepting, destroy idle sockets and those still in the TLS handshake, and destroy the
   * rest after `graceMs`. A second call with a shorter grace shortens it. Resolves once every
   * connection is gone.
   */
  shut(l: Listener, graceMs: number): Promise<void> {
    if (l.shut === undefined) {
      l.shut = new Promise<void>((resolve) => {
        l.server.close(() => {
          this.open.delete(l);
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

  /** Shut every listener (the current one and those being retired) with `graceMs`. */
  async shutAll(graceMs: number): Promise<void> {
    await Promise.all([...this.open, this.current].map((l) => this.shut(l, graceMs)));
  }

  /**
   * Replace the current listener by `next` (not bound yet) and call `installed` the moment it is
   * bound and current. Rejects with the old listener still current (and `installed` not called)
   * when it cannot be bound (or, in the rare case where the old one had to let go of its address
   * first and the new one then fails, after binding a copy of the old one again).
   */
  async replace(next: Listener, installed: () => void): Promise<void> {
    const old = this.current;
    const log = this.opts.log;
    const sameAddress = next.configuredPort !== 0 && next.configuredPort === old.configuredPort && next.host === old.host;
    if (!sameAddress) {
      // Another address: the new listener is bound first, so that there is no moment without one.
      try {
        await this.bind(next);
        this.current = next;
        installed();
        void this.shut(old, RETIRE_GRACE_MS);
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
    void this.shut(old, RETIRE_GRACE_MS);
    try {
      await this.bind(next);
    } catch (err) {
      const why = `REST API cannot listen on ${next.listen}: ${(err as Error).message}`;
      // Bring the previous listener back (a fresh server with the same settings).
      const again = this.make(old.listen, old.tls);
      try {
        await this.bind(again);
      } catch (err2) {
        this.current = again;
        log?.error?.({ err: err2 }, `REST API: ${describeListener(old)} could not be restored either: the REST API is not listening`);
        throw new Error(`${why}; restoring ${describeListener(old)} failed too (${(err2 as Error).message}): the REST API is not listening`, { cause: err2 });
      }
      this.current = again;
      throw new Error(`${why}; kept ${describeListener(old)}`, { cause: err });
    }
    this.current = next;
    installed();
  }
}
