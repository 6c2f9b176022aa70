// The checks in front of the unsafe endpoints (patroni-interfaces.md 2.2): which "METHOD segment"
// keys exist, which are guarded, the client certificate and Basic authentication. restapi.allowlist
// is applied before this gate, by the router. A refusal for authentication is reported to
// HandlerOptions.onLoginFailure (the server logs it, rate-limited: login-log.ts).

import { createHash, timingSafeEqual } from 'node:crypto';

import type { LoginFailureReason } from './login-log.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import { errorPage, firstSegment, header, HTML_TYPE } from './request.ts';

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
  ['POST vigil', { guarded: true }],
]);

/** The "METHOD segment" key of a guarded unsafe endpoint (router.ts checks restapi.allowlist first), else undefined. */
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
      opts.onLoginFailure?.('no client certificate');
      return { kind: 'answer', response: errorPage(403, 'client certificate required') };
    }
    if (opts.auth !== undefined) {
      const denied = checkBasicAuth(req.headers, opts.auth);
      if (denied !== undefined) {
        opts.onLoginFailure?.(denied.reason);
        return { kind: 'answer', response: denied.response };
      }
    }
  }
  return { kind: 'proceed', key };
}

/** undefined when the Authorization header matches; else the 401 to send and why (never the header itself). */
export function checkBasicAuth(
  headers: Record<string, string | undefined>,
  auth: { username: string; password: string },
): { response: ApiResponse; reason: LoginFailureReason } | undefined {
  const challenge = { 'WWW-Authenticate': 'Basic realm="Patroni"' };
  const given = header(headers, 'authorization');
  if (given === undefined || given === '') {
    return { response: { status: 401, body: 'no auth header received', contentType: HTML_TYPE, headers: challenge }, reason: 'no Authorization header' };
  }
  const expected = 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
  // Hash both sides so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  if (!timingSafeEqual(a, b)) {
    return { response: { status: 401, body: 'not authenticated', contentType: HTML_TYPE, headers: challenge }, reason: 'wrong username or password' };
  }
  return undefined;
}

/** 501 for a method or "METHOD segment" with no handler. */
export function unsupportedMethod(method: string): ApiResponse {
  return errorPage(501, `Unsupported method (${JSON.stringify(method)})`);
}
