// Routing of one request whose body was read: restapi.allowlist on the guarded unsafe endpoints
// (allowlist.ts; may wait briefly on DNS), then the gate (gate.ts: client certificate, Basic
// auth), then either the read-only handlers (handlers.ts, answered synchronously from the
// snapshot) or an unsafe operation (operations.ts, asynchronous, against the OperationsPort).

import type { Allowlist } from './allowlist.ts';
import { guardedOperation, operationGate } from './gate.ts';
import { handle } from './handlers.ts';
import type { ApiLogger } from './listener.ts';
import { handleOperation, OPERATION_KEYS } from './operations.ts';
import type { OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import { errorPage, text } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';

const UNSAFE_METHODS: ReadonlySet<string> = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/** What routing needs from the server; the same for every request. */
export interface RouterOptions {
  /** The agent's latest snapshot. Must not block; an exception gives 500. */
  getSnapshot: () => NodeSnapshot;
  /** Clock for the handlers' `nowMs`. */
  clock: () => number;
  /** The agent's side of the unsafe endpoints; without it they answer 503 "not supported yet". */
  operations: OperationsPort | undefined;
  /** Wall clock for scheduled_at / schedule checks. Default () => new Date(). */
  wallClock: (() => Date) | undefined;
  /** Interval between DCS reads while a switchover waits for its result. */
  switchoverPollMs: number | undefined;
  log: ApiLogger | undefined;
}

/** What routing needs from the request's connection and from the settings it arrived under. */
export interface RouteScope {
  /** Authentication and verify_client (on HTTPS). */
  handlerOptions: HandlerOptions;
  allowlist: Allowlist | undefined;
  /** The client's address, checked against the allowlist. */
  client: string | undefined;
  /** Aborted when waiting for an operation's result is pointless (client gone, server closing); asked for only by operations. */
  signal: () => AbortSignal;
}

const internalError = (): ApiResponse => text(500, 'internal error');

/**
 * The reply to `req`: synchronous for everything answered from the snapshot alone, a promise when
 * the allowlist must be checked or an operation runs. Never throws and never rejects (a failure
 * is logged and answered 500).
 */
export function route(req: ApiRequest, opts: RouterOptions, scope: RouteScope): ApiResponse | Promise<ApiResponse> {
  const { method, path } = req;
  const log = opts.log;
  const allowlist = scope.allowlist;
  // restapi.allowlist comes first on the guarded endpoints (2.2); the members count on all
  // of them but POST /failsafe.
  const guarded = allowlist !== undefined && UNSAFE_METHODS.has(method) ? guardedOperation(method, path) : undefined;
  if (allowlist === undefined || guarded === undefined || !allowlist.applies(guarded !== 'POST failsafe')) {
    return dispatch(req, opts, scope);
  }
  let memberUrls: (string | undefined)[] | undefined;
  if (guarded !== 'POST failsafe') {
    try {
      memberUrls = (opts.getSnapshot().cluster?.members ?? []).map((m) => m.data.api_url);
    } catch (err) {
      log?.error?.({ err, method, path }, 'REST API request failed');
      return internalError();
    }
  }
  const client = scope.client;
  return allowlist.allows(client, memberUrls).then(
    (ok) => {
      if (ok) return dispatch(req, opts, scope);
      log?.warn?.({ client, method, path }, 'REST API: client address not in restapi.allowlist');
      return errorPage(403, 'Access is denied');
    },
    (err: unknown) => {
      log?.error?.({ err, method, path }, 'REST API allowlist check failed');
      return internalError();
    },
  );
}

/** Answer a request that passed the allowlist. */
function dispatch(req: ApiRequest, opts: RouterOptions, scope: RouteScope): ApiResponse | Promise<ApiResponse> {
  try {
    const snap = opts.getSnapshot();
    if (opts.operations !== undefined && UNSAFE_METHODS.has(req.method)) {
      const gate = operationGate(req, scope.handlerOptions);
      if (gate.kind === 'answer') return gate.response;
      if (OPERATION_KEYS.has(gate.key)) return runOperation(req, snap, opts.operations, opts, scope);
    }
    return handle(req, snap, opts.clock(), scope.handlerOptions);
  } catch (err) {
    opts.log?.error?.({ err, method: req.method, path: req.path }, 'REST API request failed');
    return internalError();
  }
}

/** An unsafe operation: asynchronous; stops waiting when scope.signal() aborts. */
function runOperation(req: ApiRequest, snap: NodeSnapshot, port: OperationsPort, opts: RouterOptions, scope: RouteScope): Promise<ApiResponse> {
  const log = opts.log;
  return handleOperation(req, snap, port, {
    now: opts.wallClock ?? (() => new Date()),
    signal: scope.signal(),
    ...(opts.switchoverPollMs !== undefined ? { pollIntervalMs: opts.switchoverPollMs } : {}),
    onError: (what, err) => log?.error?.({ err, what }, 'REST API operation failed'),
  }).then(
    (r) => r,
    (err: unknown) => {
      log?.error?.({ err, method: req.method, path: req.path }, 'REST API operation failed');
      return internalError();
    },
  );
}
