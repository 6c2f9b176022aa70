// The REST API server: a thin node:http(s) shell around handlers.ts and operations.ts. Safe requests
// (GET, HEAD, OPTIONS) are answered from getSnapshot() synchronously, so a hung PostgreSQL or DCS
// never holds them; only the client's own slowness can, and headersTimeout/requestTimeout bound that.
// Unsafe requests (POST, PATCH, PUT, DELETE) to a guarded endpoint first pass restapi.allowlist
// (allowlist.ts; may wait briefly on DNS), then the gate in gate.ts (client certificate, Basic
// auth), and then run asynchronously in operations.ts against the OperationsPort; they may wait on
// the DCS and on PostgreSQL (a switchover waits up to 2*max(10, loop_wait) s for its result).
// Refusals for authentication are logged, rate-limited per client address (login-log.ts).
//
// restapi.http_extra_headers (and https_extra_headers with TLS) go on every reply that has
// headers, error pages included; status-line-only replies have none.
//
// The pieces: listener.ts (node:http(s) servers, keep-alive, replacement on reload), tls.ts
// (certificates, verify_client), exchange.ts (one request: body, reply, report), router.ts
// (allowlist, gate, dispatch), settings.ts (what a request reads once, what a reload changes).
//
// Reload (ApiServer.reconfigure, called by `vigil agent` after SIGHUP or POST /reload): each
// request reads the settings (authentication, allowlist, extra headers) once, when it arrives, so
// a reload swaps them between two requests, never within one. A renewed certificate or key (same
// listen and verify_client) is put into the running listener with setSecureContext: connections
// made afterwards get it, open ones keep theirs. A new listen address, a switch between HTTP and
// HTTPS or a new verify_client need another node:http(s) server: it is bound before the old one
// stops listening when the address differs; the old one then finishes its requests in progress.

import type { Server as HttpsServer } from 'node:https';

import type { AllowlistOptions } from './allowlist.ts';
import { serveRequest } from './exchange.ts';
import type { RequestInfo } from './exchange.ts';
import { describeListener, ListenerPool, listenerChange } from './listener.ts';
import { LoginFailureLog } from './login-log.ts';
import type { ApiLogger } from './listener.ts';
import type { OperationsPort } from './port.ts';
import { makeSettings, settingsChanges } from './settings.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { checkTlsMaterial, sameTlsMaterial, secureContextOptions, tlsSetupError } from './tls.ts';
import type { ApiTlsOptions } from './tls.ts';

// Part of this module's interface (ApiServerOptions and the CLI's TLS setup).
export type { ApiLogger } from './listener.ts';
export type { RequestInfo } from './exchange.ts';
export { readTlsFiles } from './tls.ts';
export type { ApiTlsOptions } from './tls.ts';

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
  /** Failed logins are logged (warn) at most once per client address per this many clock ms, with a count of those not logged. Default 10000. */
  loginLogWindowMs?: number;
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

/**
 * The restapi settings a reload may change (ApiServer.reconfigure). A call gives the whole new
 * state: a setting left out is unset (no authentication, no allowlist, no extra headers, HTTP).
 */
export type ApiReloadableOptions = Pick<ApiServerOptions, 'listen' | 'auth' | 'extraHeaders' | 'httpsExtraHeaders' | 'allowlist' | 'tls'>;

const CLOSE_GRACE_MS = 2000;

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const log = opts.logger;
  let settings = makeSettings(opts, undefined, log);
  // Aborted by close(): operations waiting for a switchover result stop waiting.
  const closing$ = new AbortController();
  let closed = false;

  const exchange = {
    getSnapshot: opts.getSnapshot,
    clock: opts.clock ?? Date.now,
    operations: opts.operations,
    wallClock: opts.wallClock,
    switchoverPollMs: opts.switchoverPollMs,
    log,
    maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024,
    onRequest: opts.onRequest,
    closing: closing$.signal,
    loginFailures: new LoginFailureLog(log, opts.clock ?? Date.now, opts.loginLogWindowMs),
  };
  const pool = new ListenerPool(
    {
      headersTimeoutMs: opts.headersTimeoutMs ?? 5_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      log,
      // The settings of this request: a reconfigure while it runs does not change them.
      onRequest: (l, req, res) => serveRequest(l, settings, req, res, exchange),
    },
    opts.listen,
    opts.tls,
  );
  await pool.bind(pool.current);
  // Resolve the allowlist's hostnames now rather than on the first unsafe request (never rejects).
  void settings.allowlist?.prime();

  async function reconfigure(next: ApiReloadableOptions): Promise<string> {
    if (closed) throw new Error('the REST API server is closed');
    // Everything is checked before anything changes: a bad setting leaves the running ones alone.
    const nextSettings = makeSettings(next, settings, log);
    const old = pool.current;
    const change = listenerChange(old, next.listen, next.tls);
    const newListener = change === 'restart' ? pool.make(next.listen, next.tls) : undefined;
    // Checked here: setSecureContext stores the options on the server before it builds the
    // context, so a failure there would leave them half replaced.
    if (change === 'renew' && next.tls !== undefined) checkTlsMaterial(next.tls);

    const prev = settings;
    const changes = settingsChanges(prev, nextSettings, old.tls !== undefined, next.tls !== undefined);
    if (newListener !== undefined) {
      await pool.replace(newListener, () => {
        settings = nextSettings;
      });
      if (closed) {
        // close() ran while the new listener was being bound: it must not outlive it.
        void pool.shut(newListener, 0);
        throw new Error('the REST API server is closed');
      }
      changes.push(`listener restarted: ${describeListener(old)} -> ${describeListener(newListener)}, port ${newListener.boundPort}`);
      if (newListener.tls !== undefined && old.tls !== undefined && !sameTlsMaterial(old.tls, newListener.tls)) changes.push('certificate reloaded');
    } else {
      if (change === 'renew' && next.tls !== undefined) {
        try {
          (old.server as unknown as HttpsServer).setSecureContext(secureContextOptions(next.tls));
        } catch (err) {
          throw tlsSetupError(err);
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
      return pool.current.boundPort;
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
        await pool.shutAll(CLOSE_GRACE_MS);
      })();
      return closing;
    },
  };
}
