// The REST API's request and reply model, shared by every handler family (status and health
// endpoints, unsafe operations, POST /failsafe) and by the HTTP layer that carries them.

import { STATUS_CODES } from '../node-http.ts';
import { nestedTooDeeply, tooDeepMessage } from '../config/depth.ts';
import type { LoginFailureReason } from './login-log.ts';

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
  /** Told when the gate refuses a guarded endpoint for authentication (gate.ts); logs it (login-log.ts). */
  onLoginFailure?: (reason: LoginFailureReason) => void;
}

export const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';
/** Content type of Patroni's plain-message replies and error pages. */
export const HTML_TYPE = 'text/html; charset=utf-8';

// ---------------------------------------------------------------------------------------------
// Request bodies (2.1): by Content-Length only; Content-Type is ignored.

type Body = { ok: true; value: Record<string, unknown> } | { ok: false; response: ApiResponse };

/**
 * The JSON object in the body. Required bodies: no Content-Length -> 411; not JSON, not an object
 * an empty object, or nesting over MAX_NESTING levels -> 400. Optional bodies: no Content-Length or Content-Length 0 -> {}.
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
  if (nestedTooDeeply(parsed)) return { ok: false, response: errorPage(400, `Bad request: the body is ${tooDeepMessage()}`) };
  if (!optional && Object.keys(parsed).length === 0) {
    return { ok: false, response: errorPage(400, 'Bad request: the body must be a non-empty JSON object') };
  }
  return { ok: true, value: parsed };
}

// ---------------------------------------------------------------------------------------------
// Request parts.

export function header(headers: Record<string, string | undefined>, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

export function firstSegment(path: string): string {
  return path.split('/')[1] ?? '';
}

/** First non-empty value of a query parameter (Python's parse_qs drops blank values). */
export function queryValue(q: URLSearchParams, key: string): string | undefined {
  for (const v of q.getAll(key)) if (v !== '') return v;
  return undefined;
}

export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Replies.

export function json(status: number, value: unknown): ApiResponse {
  return { status, body: JSON.stringify(value), contentType: JSON_TYPE };
}

export function text(status: number, body: string): ApiResponse {
  return { status, body, contentType: TEXT_TYPE };
}

/** A plain-message reply (Patroni sends these as text/html with the bare message). */
export function message(status: number, text: string): ApiResponse {
  return { status, body: text, contentType: HTML_TYPE };
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
