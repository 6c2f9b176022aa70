// Transport of the etcd v2 backend (etcd2.ts): requests to etcd's /v2/keys API over node:http /
// node:https (etcd3-http.ts, shared with the v3 backend, with its keep-alive agent and TLS), spread
// over the cluster's members (etcd-endpoints.ts: seeds from hosts or DNS SRV; unless useProxies, the
// client URLs from GET /v2/members). Basic auth with username/password.
//
// Failure contract, as the v3 backend's: each request attempt gets a share of the verb's budget;
// a connection error, a timeout, or an answer saying the member cannot serve now (5xx: raft
// internal error, leader election; 408) moves to the next member; the verb gives up after its
// deadline with DcsError('DCS_UNAVAILABLE'). 401/403 are DcsError('DCS_AUTH'). Every other answer
// (including etcd's errors: key not found, compare failed, node exists) is returned to the caller.

import { DcsError } from './dcs.ts';
import type { Op } from './backend.ts';
import { EtcdHttp, EtcdHttpError } from './etcd3-http.ts';
import { loadEtcd3Tls } from './etcd3-tls.ts';
import { EtcdEndpoints } from './etcd-endpoints.ts';
import { describe, sleep } from './etcd-util.ts';

export interface Etcd2ClientOptions {
  hosts: string[];
  protocol: 'http' | 'https';
  srv?: string | undefined;
  srvSuffix?: string | undefined;
  useProxies?: boolean | undefined;
  dnsServers?: string[] | undefined;
  username?: string | undefined;
  password?: string | undefined;
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  keyPassword?: string | undefined;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void } | undefined;
}

/** A node of etcd's v2 answers. */
export interface V2Node {
  key?: string;
  value?: string;
  dir?: boolean;
  nodes?: V2Node[];
  ttl?: number;
  expiration?: string;
  modifiedIndex?: number;
  createdIndex?: number;
}

export interface V2Answer {
  status: number;
  /** etcd's errorCode (100 key not found, 101 compare failed, 105 node exists, 401 index cleared...). */
  errorCode?: number;
  message?: string;
  action?: string;
  node?: V2Node;
  prevNode?: V2Node;
  /** X-Etcd-Index: the store's index when it answered ('' when absent). */
  index: string;
}

/** The v2 error codes the backend acts on. */
export const V2 = { KEY_NOT_FOUND: 100, COMPARE_FAILED: 101, NODE_EXISTS: 105, INDEX_CLEARED: 401 } as const;

/** "/v2/keys" + the key, each segment percent-encoded. */
export function keysPath(key: string): string {
  return `/v2/keys${key.split('/').map((s) => encodeURIComponent(s)).join('/')}`;
}

export class Etcd2Client {
  readonly #ep: EtcdEndpoints;
  readonly #http: EtcdHttp;
  readonly #auth: string | undefined;
  readonly #log: Etcd2ClientOptions['logger'];
  readonly #inflight = new Set<AbortController>();
  #closed = false;

  constructor(opts: Etcd2ClientOptions) {
    this.#ep = new EtcdEndpoints(opts);
    const tls = opts.protocol === 'https'
      ? loadEtcd3Tls({ cacert: opts.cacert, cert: opts.cert, key: opts.key, keyPassword: opts.keyPassword })
      : undefined;
    this.#http = new EtcdHttp(opts.protocol, tls);
    this.#auth = opts.username === undefined ? undefined : `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`;
    this.#log = opts.logger;
  }

  /** The hosts in use now, in order of trial, and the current one. */
  endpoints(): { hosts: readonly string[]; current: string | undefined } {
    return { hosts: this.#ep.list, current: this.#ep.current()?.host };
  }

  #headers(form: boolean): Record<string, string> {
    const h: Record<string, string> = {};
    if (form) h['content-type'] = 'application/x-www-form-urlencoded';
    if (this.#auth !== undefined) h.authorization = this.#auth;
    return h;
  }

  static #answer(status: number, text: string, headers: Record<string, string | string[] | undefined>): V2Answer {
    let body: Partial<V2Answer> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null) body = parsed as Partial<V2Answer>;
    } catch {
      body = { message: text.slice(0, 200) };
    }
    const index = headers['x-etcd-index'];
    return { ...body, status, index: typeof index === 'string' ? index : '' };
  }

  /**
   * One v2 request (`params` in the query for GET/DELETE, as a form for PUT) with retries over the
   * members until op.deadline.
   */
  async call(method: 'GET' | 'PUT' | 'DELETE', key: string, params: Record<string, string>, op: Op): Promise<V2Answer> {
    const form = method === 'PUT';
    const encoded = new URLSearchParams(params).toString();
    const path = keysPath(key) + (!form && encoded !== '' ? `?${encoded}` : '');
    let lastError: unknown;
    let attempts = 0;
    const perAttempt = (): number => Math.max(1000, op.budgetMs / Math.max(2, this.#ep.size));
    while (true) {
      if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'etcd (v2) client closed', { retryable: false });
      if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', `etcd ${method} ${key}: aborted by caller`, { cause: op.signal.reason, retryable: false });
      const remaining = op.deadline - Date.now();
      if (remaining <= 0) break;
      const ctrl = new AbortController();
      this.#inflight.add(ctrl);
      const signal = op.signal ? AbortSignal.any([ctrl.signal, op.signal]) : ctrl.signal;
      const attemptEnd = Date.now() + Math.min(remaining, perAttempt());
      let index = -1;
      let host = '';
      let answer: V2Answer;
      try {
        if (this.#ep.current() === undefined) {
          const lookup = AbortSignal.any([signal, AbortSignal.timeout(Math.max(0, attemptEnd - Date.now()))]);
          await this.#ep.resolve((peer) => this.#peerMembers(peer, lookup, attemptEnd), lookup);
        }
        ({ index, host } = this.#ep.current() ?? { index: -1, host: '' });
        const res = await this.#http.request(host, path, {
          method,
          headers: this.#headers(form),
          ...(form ? { body: encoded } : {}),
          signal,
          timeoutMs: Math.max(0, attemptEnd - Date.now()),
        });
        answer = Etcd2Client.#answer(res.status, res.text, res.headers);
      } catch (err) {
        if (err instanceof DcsError && !err.retryable) throw err;
        if (op.signal?.aborted || this.#closed) continue;
        lastError = err;
        this.#failover(index, host, key, err);
        if (++attempts % this.#ep.size === 0) await this.#roundFailed(op);
        continue;
      } finally {
        this.#inflight.delete(ctrl);
      }
      if (answer.status === 401 || answer.status === 403) {
        throw new DcsError('DCS_AUTH', `etcd ${method} ${key}: HTTP ${answer.status}: ${answer.message ?? ''}`);
      }
      if (answer.status >= 500 || answer.status === 408) {
        lastError = new Error(`HTTP ${answer.status}: ${answer.message ?? ''}`);
        this.#failover(index, host, key, lastError);
        if (++attempts % this.#ep.size === 0) await this.#roundFailed(op);
        continue;
      }
      if (this.#ep.refreshDue(Date.now())) this.#discover(host);
      return answer;
    }
    const where = this.#ep.list.length > 0 ? this.#ep.list.join(',') : 'SRV';
    throw new DcsError('DCS_UNAVAILABLE', `etcd (${where}) did not answer ${method} ${key} within ${op.budgetMs / 1000}s: ${describe(lastError)}`, { cause: lastError });
  }

  /**
   * A watch: GET key?wait=true&waitIndex=N on the current member, until an event, `signal`, or a
   * failure (then undefined; the member is marked failed). Never rejects.
   */
  async wait(key: string, waitIndex: string | undefined, signal: AbortSignal): Promise<V2Answer | undefined> {
    const cur = this.#ep.current();
    if (this.#closed || cur === undefined) return undefined;
    const ctrl = new AbortController();
    this.#inflight.add(ctrl);
    const both = AbortSignal.any([ctrl.signal, signal]);
    const params = new URLSearchParams({ wait: 'true', ...(waitIndex !== undefined ? { waitIndex } : {}) });
    try {
      const res = await this.#http.request(cur.host, `${keysPath(key)}?${params.toString()}`, { method: 'GET', headers: this.#headers(false), signal: both });
      const answer = Etcd2Client.#answer(res.status, res.text, res.headers);
      if (answer.status >= 500) this.#failover(cur.index, cur.host, key, new Error(`HTTP ${answer.status}`));
      return answer;
    } catch (err) {
      if (!both.aborted && !(err instanceof EtcdHttpError && err.kind === 'aborted')) this.#failover(cur.index, cur.host, key, err);
      return undefined;
    } finally {
      this.#inflight.delete(ctrl);
    }
  }

  #failover(index: number, host: string, key: string, err: unknown): void {
    if (index >= 0) this.#ep.failover(index);
    this.#log?.warn({ host, key, err: describe(err) }, 'etcd (v2) request failed; trying the next endpoint');
  }

  async #roundFailed(op: Op): Promise<void> {
    this.#ep.roundFailed();
    await sleep(Math.min(200, Math.max(0, op.deadline - Date.now())), op.signal);
  }

  /** Read GET /v2/members from `host` in the background; spread over the members' client URLs. */
  #discover(host: string): void {
    this.#ep.refreshStarted(Date.now());
    const ctrl = new AbortController();
    this.#inflight.add(ctrl);
    this.#http.request(host, '/v2/members', { method: 'GET', headers: this.#headers(false), signal: ctrl.signal, timeoutMs: 2000 })
      .then((r) => {
        if (r.status !== 200 || this.#closed) return;
        const body = JSON.parse(r.text) as { members?: { clientURLs?: string[] }[] };
        this.#ep.adopt((body.members ?? []).flatMap((m) => m.clientURLs ?? []));
      })
      .catch((err: unknown) => this.#log?.debug?.({ host, err: describe(err) }, 'etcd (v2): member list not read'))
      .finally(() => this.#inflight.delete(ctrl));
  }

  async #peerMembers(peer: string, signal: AbortSignal, deadline: number): Promise<string[]> {
    const r = await this.#http.request(peer, '/members', { method: 'GET', signal, timeoutMs: Math.max(0, deadline - Date.now()) });
    const body: unknown = JSON.parse(r.text);
    if (r.status !== 200 || !Array.isArray(body)) throw new Error(`GET /members answered ${r.status}`);
    return (body as { clientURLs?: string[] }[]).flatMap((m) => m.clientURLs ?? []);
  }

  /** Abort everything in flight; then every call rejects. `last` runs before the sockets close. */
  async close(last?: () => Promise<void>): Promise<void> {
    if (this.#closed) return;
    for (const ctrl of this.#inflight) ctrl.abort();
    this.#inflight.clear();
    try {
      await last?.();
    } finally {
      this.#closed = true;
      this.#http.destroy();
    }
  }
}
