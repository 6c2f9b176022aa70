// A small Kubernetes API client for the Kubernetes DCS (kubernetes.ts), on node:https: the handful
// of core/v1 calls it makes (GET, LIST, POST, PATCH, DELETE, watch streams) with in-cluster
// credentials (design.md section 4): a bearer token (the service account's token file, re-read
// every minute because projected tokens rotate, or a token given in the settings) and the cluster
// CA file. The API server is KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT (kubernetes-settings.ts).
//
// Contract: request() resolves with the status and the parsed JSON body for every answer the caller
// must read (2xx, 404, 409, ...); it retries transport failures and the retriable statuses (500,
// 503, 504 and the configured ones, as Patroni) until the verb's deadline, then rejects with
// DcsError DCS_UNAVAILABLE (retryable); 401/403 reject with DcsError DCS_AUTH; a caller's abort
// rejects with DcsError DCS_UNAVAILABLE, not retryable. Every exchange ends (deadline or abort
// destroys the request and its socket).

import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { DcsError } from './dcs.ts';
import type { Op } from './backend.ts';

export interface K8sApiOptions {
  host: string;
  port: number;
  /** PEM text of the CA that signed the API server's certificate. */
  ca: string;
  /** A fixed bearer token; otherwise tokenFile is read (and re-read every minute). */
  token?: string | undefined;
  tokenFile?: string | undefined;
  /** Statuses retried in addition to 500, 503 and 504. */
  retriableHttpCodes?: readonly number[];
  /** Clock of the deadlines, ms. */
  now?: () => number;
}

export interface K8sAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

const TOKEN_REREAD_MS = 60_000;
const RETRY_PAUSE_MS = 200;

export class K8sApi {
  readonly #opts: K8sApiOptions;
  readonly #agent: Agent;
  readonly #retriable: Set<number>;
  readonly #now: () => number;
  #token: { value: string; readAt: number } | undefined;
  #closed = false;
  readonly #inflight = new Set<ClientRequest>();

  constructor(opts: K8sApiOptions) {
    this.#opts = opts;
    this.#agent = new Agent({ keepAlive: true, ca: opts.ca, maxSockets: 16 });
    this.#retriable = new Set([500, 503, 504, ...(opts.retriableHttpCodes ?? [])]);
    this.#now = opts.now ?? Date.now;
  }

  #bearer(): string {
    if (this.#opts.token !== undefined) return this.#opts.token;
    const file = this.#opts.tokenFile;
    if (file === undefined) throw new DcsError('DCS_AUTH', 'kubernetes: no service-account token (token or token file)', { retryable: false });
    const t = this.#token;
    if (t !== undefined && Date.now() - t.readAt < TOKEN_REREAD_MS) return t.value;
    try {
      const value = readFileSync(file, 'utf8').trim();
      this.#token = { value, readAt: Date.now() };
      return value;
    } catch (err) {
      if (t !== undefined) return t.value;
      throw new DcsError('DCS_AUTH', `kubernetes: cannot read the service-account token ${file}: ${(err as Error).message}`, { cause: err, retryable: false });
    }
  }

  #options(method: string, path: string, headers: Record<string, string>): RequestOptions {
    return {
      host: this.#opts.host,
      port: this.#opts.port,
      method,
      path,
      agent: this.#agent,
      headers: { Accept: 'application/json', Authorization: `Bearer ${this.#bearer()}`, ...headers },
    };
  }

  /** One exchange; rejects with a plain Error on transport failure or timeout. */
  #once(method: string, path: string, body: string | undefined, contentType: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = body !== undefined ? { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)) } : {};
      const req = httpsRequest(this.#options(method, path, headers));
      this.#inflight.add(req);
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), Math.max(1, timeoutMs));
      const onAbort = (): void => {
        req.destroy(new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#inflight.delete(req);
      };
      req.on('error', (err) => {
        done();
        reject(err);
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => {
          done();
          reject(err);
        });
        res.on('end', () => {
          done();
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(body);
    });
  }

  /** A call retried until op.deadline (see the header for the outcomes). */
  async request(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, op: Op, body?: unknown, contentType = 'application/json'): Promise<K8sAnswer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    let last = 'no attempt';
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'kubernetes: the client is closed', { retryable: false });
      if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', 'kubernetes: call aborted by the caller', { retryable: false });
      const left = op.deadline - this.#now();
      if (left <= 0 && attempt > 0) break;
      try {
        const r = await this.#once(method, path, text, contentType, Math.max(left, 1), op.signal);
        if (r.status === 401 || r.status === 403) throw new DcsError('DCS_AUTH', `kubernetes: ${method} ${path} refused (${r.status}): ${messageOf(r.text)}`, { retryable: false });
        if (!this.#retriable.has(r.status)) return { status: r.status, body: parseBody(r.text) };
        last = `HTTP ${r.status}: ${messageOf(r.text)}`;
      } catch (err) {
        if (err instanceof DcsError) throw err;
        if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', 'kubernetes: call aborted by the caller', { retryable: false, cause: err });
        if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'kubernetes: the client is closed', { retryable: false, cause: err });
        last = (err as Error).message;
      }
      const pause = Math.min(RETRY_PAUSE_MS, op.deadline - this.#now());
      if (pause <= 0) break;
      await sleep(pause, undefined, { signal: op.signal }).catch(() => undefined);
    }
    throw new DcsError('DCS_UNAVAILABLE', `kubernetes API ${this.#opts.host}:${this.#opts.port} did not answer ${method} ${path} within ${op.budgetMs} ms (${last})`);
  }

  /**
   * A watch stream (GET with watch=1): yields each event line until the server ends the stream,
   * `signal` aborts or the client closes. Transport failures end the iteration (no throw).
   */
  async *watch(path: string, signal: AbortSignal): AsyncGenerator<WatchEvent, void, undefined> {
    if (this.#closed || signal.aborted) return;
    const req = httpsRequest(this.#options('GET', path, {}));
    this.#inflight.add(req);
    const onAbort = (): void => {
      req.destroy(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await new Promise<IncomingMessage | undefined>((resolve) => {
        req.on('error', () => resolve(undefined));
        req.on('response', resolve);
        req.end();
      });
      if (res === undefined || res.statusCode !== 200) {
        res?.resume();
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      try {
        for await (const chunk of res as AsyncIterable<string>) {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            const ev = parseBody(line) as unknown as WatchEvent;
            if (typeof ev.type === 'string') yield ev;
          }
        }
      } catch {
        // the stream broke: end the iteration
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      this.#inflight.delete(req);
    }
  }

  /** Abort every exchange in flight; later calls reject. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const req of this.#inflight) req.destroy(new Error('client closed'));
    this.#inflight.clear();
    this.#agent.destroy();
  }
}

function parseBody(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function messageOf(text: string): string {
  const m = parseBody(text).message;
  return typeof m === 'string' ? m : text.slice(0, 200);
}

/** '/api/v1/namespaces/<ns>/<resource>[/<name>]' with the query parameters given. */
export function apiPath(namespace: string, resource: string, name?: string, query?: Record<string, string | undefined>): string {
  let p = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  const q = Object.entries(query ?? {}).filter((e): e is [string, string] => e[1] !== undefined);
  if (q.length > 0) p += `?${new URLSearchParams(q).toString()}`;
  return p;
}
