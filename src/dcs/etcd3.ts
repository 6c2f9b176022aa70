// etcd v3 backend (backend.ts: leases are the sessions, mod_revision the versions) over etcd's
// JSON gRPC gateway (POST /v3/...), on node:http / node:https with a keep-alive Agent per adapter
// (etcd3-http.ts), so that https can use a private CA (etcd3.cacert) and a client certificate
// (etcd3.cert, etcd3.key, etcd3.key_password; read by etcd3-tls.ts). Etcd3Dcs is the shared HA
// verbs (kv-dcs.ts) over it. Spec: patroni-interfaces.md §1.7.1; design.md §4.
//
// Wire facts: keys/values are base64; int64 fields are decimal strings (lease IDs exceed 2^53, so
// they are never converted to Number); proto3 omits defaults (a failed txn has no `succeeded`, an
// empty range has no `kvs`, an empty value has no `value`).
//
// Endpoints (etcd-endpoints.ts): seeds from `hosts` or DNS SRV (`srv`, `srvSuffix`); unless
// useProxies, the member list is read in the background from the first member that answers, and
// the client spreads over every member's client URL. Each attempt gets a share of the verb's
// budget (retryTimeout / number of members, at least 1 s), so that a member that stops or hangs
// leaves time to reach another one within the same deadline: a leader's refresh does not miss it.
//
// Failure contract: every request has a deadline; on a connection error, timeout or "unavailable"
// answer (or a member shutting down: 408 "the client connection is closing") the next endpoint is
// tried, and a verb as a whole gives up after retryTimeout seconds
// with DcsError('DCS_UNAVAILABLE'). A TLS failure (server certificate not trusted, client
// certificate refused) also moves to the next endpoint; when every endpoint failed that way in a
// row the method gives up at once with DCS_UNAVAILABLE naming the TLS problem, since waiting
// would not change it. A failed compare-and-set resolves false. Other etcd errors are
// DcsError('DCS_PROTOCOL'), authentication/permission errors DcsError('DCS_AUTH').
//
// Settings that cannot be used (a TLS file that cannot be read, a wrong key_password) make the
// constructor throw an Etcd3SettingError naming the setting and the file.

import { DcsError } from './dcs.ts';
import { SessionNotFound, type DcsBackend, type Op, type RawKv } from './backend.ts';
import { KvDcs } from './kv-dcs.ts';
import { EtcdHttp, EtcdHttpError } from './etcd3-http.ts';
import { loadEtcd3Tls, type Etcd3Tls } from './etcd3-tls.ts';
import { EtcdEndpoints } from './etcd-endpoints.ts';
import { apiPrefixFor, b64, describe, prefixEnd, sleep, unb64 } from './etcd-util.ts';
import type { Etcd3Options } from './etcd3-options.ts';
import { KeyWatch } from './etcd3-watch.ts';

/** A watch stream kept between the loop's waits is replaced after this long (etcd3-watch.ts). */
const WATCH_MAX_AGE_MS = 60_000;
import { takeOverTxn, type AuthResponse, type ErrorBody, type GrantResponse, type KeepaliveResponse, type KvJson, type MemberListResponse, type RangeResponse, type TimeToLiveResponse, type TxnResponse } from './etcd3-wire.ts';

export { Etcd3SettingError } from './etcd3-tls.ts';

export type { Etcd3Options } from './etcd3-options.ts';

/** The etcd v3 store as a DcsBackend (lease = session, mod_revision = version). */
export class Etcd3Backend implements DcsBackend {
  readonly prefix: string;
  readonly #ep: EtcdEndpoints;
  readonly #http: EtcdHttp;
  readonly #ctl: boolean;
  readonly #user: string | undefined;
  readonly #password: string | undefined;
  readonly #log: Etcd3Options['logger'];
  readonly #srv: string | undefined;
  #api: string | undefined;
  /** undefined: not authenticated yet; '': auth not enabled on the server. */
  #token: string | undefined;
  #closed = false;
  readonly #inflight = new Set<AbortController>();
  readonly #watches = new Map<string, KeyWatch>();
  /** Failed requests so far: a kept watch stream is not trusted past one (etcd3-watch.ts). */
  #failovers = 0;

  constructor(opts: Etcd3Options) {
    if (opts.hosts.length === 0 && !opts.srv) throw new Error('etcd3: at least one host (or srv) is required');
    if (!opts.prefix.startsWith('/') || !opts.prefix.endsWith('/')) throw new Error(`etcd3: prefix must start and end with '/': ${opts.prefix}`);
    this.prefix = opts.prefix;
    this.#ep = new EtcdEndpoints({
      hosts: opts.hosts,
      protocol: opts.protocol,
      srv: opts.srv,
      srvSuffix: opts.srvSuffix,
      useProxies: opts.useProxies,
      dnsServers: opts.dnsServers,
      logger: opts.logger,
    });
    const tls: Etcd3Tls | undefined = opts.protocol === 'https'
      ? loadEtcd3Tls({ cacert: opts.cacert, cert: opts.cert, key: opts.key, keyPassword: opts.keyPassword })
      : undefined;
    this.#http = new EtcdHttp(opts.protocol, tls);
    this.#ctl = opts.ctlMode ?? false;
    this.#user = opts.username;
    this.#password = opts.password;
    this.#log = opts.logger;
    this.#srv = opts.srv;
  }

  // ---- transport ---------------------------------------------------------------------------

  #headers(): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#token) h.authorization = this.#token;
    return h;
  }

  /** One exchange with `host`; the answer parsed as JSON when it is JSON. */
  async #json(
    host: string,
    path: string,
    init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; signal: AbortSignal; timeoutMs: number | undefined },
  ): Promise<{ status: number; body: unknown; text: string }> {
    const { status, text } = await this.#http.request(host, path, init);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status, body, text };
  }

  /**
   * Learn the API prefix and, with credentials, a token, from `host`. `deadline` (epoch ms): the
   * end of the current attempt; undefined: only the signal ends it.
   */
  async #prepare(host: string, signal: AbortSignal, deadline: number | undefined): Promise<void> {
    const left = (): number | undefined => (deadline === undefined ? undefined : Math.max(0, deadline - Date.now()));
    if (this.#api === undefined) {
      const v = await this.#json(host, '/version', { method: 'GET', signal, timeoutMs: left() });
      if (v.status !== 200 || typeof v.body !== 'object' || v.body === null) {
        throw new DcsError('DCS_PROTOCOL', `etcd: GET /version answered ${v.status}: ${v.text.slice(0, 200)}`, { retryable: true });
      }
      this.#api = apiPrefixFor(v.body as { etcdcluster?: string; etcdserver?: string });
    }
    if (this.#token === undefined && this.#user !== undefined) {
      const r = await this.#json(host, `${this.#api}/auth/authenticate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: this.#user, password: this.#password ?? '' }),
        signal,
        timeoutMs: left(),
      });
      const err = r.body as ErrorBody | undefined;
      if (r.status === 200) {
        this.#token = (r.body as AuthResponse | undefined)?.token ?? '';
      } else if (/authentication is not enabled/.test(err?.message ?? r.text)) {
        this.#token = '';
      } else if (r.status >= 500 || err?.code === 14) {
        throw new DcsError('DCS_UNAVAILABLE', `etcd: authenticate: ${err?.message ?? r.status}`);
      } else {
        throw new DcsError('DCS_AUTH', `etcd: authenticate as ${this.#user} failed: ${err?.message ?? r.text.slice(0, 200)}`);
      }
    }
  }

  /**
   * POST {api}{path} with retries over the endpoints until op.deadline. Resolves with the parsed
   * 200 body; rejects with DcsError (LeaseNotFound for a missing lease).
   */
  async #call<T>(path: string, body: object, op: Op): Promise<T> {
    let lastError: unknown;
    let reauthenticated = false;
    let attempts = 0;
    let tlsFailures = 0;
    const perAttempt = (): number => Math.max(1000, op.budgetMs / Math.max(2, this.#ep.size));
    while (true) {
      if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'etcd3 adapter closed', { retryable: false });
      if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', `etcd ${path}: aborted by caller`, { cause: op.signal.reason, retryable: false });
      const remaining = op.deadline - Date.now();
      if (remaining <= 0) break;
      const ctrl = new AbortController();
      this.#inflight.add(ctrl);
      const signal = op.signal ? AbortSignal.any([ctrl.signal, op.signal]) : ctrl.signal;
      const budget = Math.min(remaining, perAttempt());
      const attemptEnd = Date.now() + budget;
      let res: { status: number; body: unknown; text: string };
      let index = -1;
      let host = '';
      try {
        if (this.#ep.current() === undefined) {
          const lookup = AbortSignal.any([signal, AbortSignal.timeout(Math.max(0, attemptEnd - Date.now()))]);
          await this.#ep.resolve((peer) => this.#peerMembers(peer, lookup, attemptEnd), lookup);
        }
        ({ index, host } = this.#ep.current() ?? { index: -1, host: '' });
        await this.#prepare(host, signal, attemptEnd);
        res = await this.#json(host, `${this.#api ?? '/v3'}${path}`, {
          method: 'POST',
          headers: this.#headers(),
          body: JSON.stringify(body),
          signal,
          timeoutMs: Math.max(0, attemptEnd - Date.now()),
        });
      } catch (err) {
        if (err instanceof DcsError && !err.retryable) throw err;
        if (op.signal?.aborted || this.#closed) continue; // reported at the top of the loop
        // A last attempt cut short by the method's deadline says less than the failure before it.
        const cutShort = budget < perAttempt() && err instanceof EtcdHttpError && err.kind === 'timeout' && lastError !== undefined;
        if (!cutShort) lastError = err;
        this.#failover(index, host, path, err);
        // A TLS failure on every endpoint in a row will not go away by waiting: report it now.
        tlsFailures = err instanceof EtcdHttpError && err.kind === 'tls' ? tlsFailures + 1 : 0;
        if (tlsFailures >= this.#ep.size) break;
        if (++attempts % this.#ep.size === 0) await this.#roundFailed(op);
        continue;
      } finally {
        this.#inflight.delete(ctrl);
      }
      tlsFailures = 0;
      if (res.status === 200) {
        // Streaming endpoints (lease/keepalive) report errors inside a 200 body.
        const streamError = (res.body as { error?: { grpc_code?: number; http_code?: number; message?: string } } | undefined)?.error;
        if (typeof streamError !== 'object' || streamError === null) {
          if (this.#ep.refreshDue(Date.now())) this.#discover(host);
          return res.body as T;
        }
        res = { status: streamError.http_code ?? 500, body: { code: streamError.grpc_code, message: streamError.message }, text: res.text };
      }

      const err = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as ErrorBody;
      const message = err.message ?? (typeof err.error === 'string' ? err.error : res.text.slice(0, 200));
      if (/requested lease not found/.test(message)) throw new SessionNotFound('etcd: requested lease not found');
      if (this.#user !== undefined && !reauthenticated && /invalid auth token|auth: revision in header is old/.test(message)) {
        reauthenticated = true;
        this.#token = undefined;
        continue;
      }
      if (err.code === 7 || err.code === 16 || /permission denied|invalid auth token|user name is empty|authentication failed/.test(message)) {
        throw new DcsError('DCS_AUTH', `etcd ${path}: ${message}`);
      }
      // A member shutting down answers 408 "grpc: the client connection is closing" (Canceled) from
      // its gateway: like a refused connection, the next member is tried.
      if (res.status >= 500 || res.status === 408 || err.code === 14 || err.code === 4 || err.code === 8 || err.code === 1 || /connection is closing|transport is closing/.test(message)) {
        lastError = new Error(`HTTP ${res.status}: ${message}`);
        this.#failover(index, host, path, lastError);
        if (++attempts % this.#ep.size === 0) await this.#roundFailed(op);
        continue;
      }
      throw new DcsError('DCS_PROTOCOL', `etcd ${path}: HTTP ${res.status}: ${message}`);
    }
    if (lastError instanceof EtcdHttpError && lastError.kind === 'tls') {
      throw new DcsError('DCS_UNAVAILABLE', `etcd (${this.#where()}): no TLS connection for ${path}: ${lastError.message}`, { cause: lastError });
    }
    throw new DcsError('DCS_UNAVAILABLE', `etcd (${this.#where()}) did not answer ${path} within ${op.budgetMs / 1000}s: ${describe(lastError)}`, {
      cause: lastError,
    });
  }

  /** Move to the next endpoint, unless a concurrent call already did. */
  #failover(index: number, host: string, path: string, err: unknown): void {
    this.#failovers++;
    if (index >= 0) this.#ep.failover(index);
    this.#log?.warn({ host, path, err: describe(err) }, 'etcd request failed; trying the next endpoint');
  }

  /** Every endpoint failed once in a row: add the seeds back, pause briefly before the next round. */
  async #roundFailed(op: Op): Promise<void> {
    this.#ep.roundFailed();
    await sleep(Math.min(200, Math.max(0, op.deadline - Date.now())), op.signal);
  }

  #where(): string {
    return this.#ep.list.length > 0 ? this.#ep.list.join(',') : `SRV ${this.#srv ?? ''}`;
  }

  /** The hosts in use now, in order of trial, and the current one (tests, logs). */
  endpoints(): { hosts: readonly string[]; current: string | undefined } {
    return { hosts: this.#ep.list, current: this.#ep.current()?.host };
  }

  /**
   * Read the member list from `host` (which just answered) in the background and spread over the
   * members' client URLs. A failure keeps the list as it is.
   */
  #discover(host: string): void {
    this.#ep.refreshStarted(Date.now());
    const ctrl = new AbortController();
    this.#inflight.add(ctrl);
    this.#json(host, `${this.#api ?? '/v3'}/cluster/member/list`, { method: 'POST', headers: this.#headers(), body: '{}', signal: ctrl.signal, timeoutMs: 2000 })
      .then((r) => {
        if (r.status !== 200 || this.#closed) return;
        const members = (r.body as MemberListResponse | undefined)?.members ?? [];
        this.#ep.adopt(members.flatMap((m) => m.clientURLs ?? []));
      })
      .catch((err: unknown) => this.#log?.debug?.({ host, err: describe(err) }, 'etcd: member list not read'))
      .finally(() => this.#inflight.delete(ctrl));
  }

  /** Client URLs of the members, from a peer URL (etcd's GET /members on the peer port). */
  async #peerMembers(peer: string, signal: AbortSignal, deadline: number): Promise<string[]> {
    const r = await this.#json(peer, '/members', { method: 'GET', signal, timeoutMs: Math.max(0, deadline - Date.now()) });
    if (r.status !== 200 || !Array.isArray(r.body)) throw new Error(`GET /members answered ${r.status}`);
    return (r.body as { clientURLs?: string[] }[]).flatMap((m) => m.clientURLs ?? []);
  }

  #key(rel: string): string {
    return b64(this.prefix + rel);
  }

  // ---- primitives (backend.ts) ----------------------------------------------------------------

  now(): number {
    return Date.now();
  }

  #kv(kv: KvJson): RawKv {
    return {
      key: unb64(kv.key),
      value: unb64(kv.value),
      modRevision: kv.mod_revision ?? '0',
      createRevision: kv.create_revision ?? '0',
      lease: kv.lease ?? '0',
    };
  }

  async readTree(op: Op): Promise<{ kvs: RawKv[]; revision: string }> {
    const r = await this.#call<RangeResponse>('/kv/range', {
      key: b64(this.prefix),
      range_end: prefixEnd(this.prefix),
      serializable: !this.#ctl,
    }, op);
    return { kvs: (r.kvs ?? []).map((kv) => this.#kv(kv)), revision: r.header?.revision ?? '0' };
  }

  async get(rel: string, op: Op): Promise<RawKv | undefined> {
    // Linearizable: the verbs decide on it (refreshLeader, releaseLeader); a stale follower must not answer.
    const r = await this.#call<RangeResponse>('/kv/range', { key: this.#key(rel) }, op);
    const kv = r.kvs?.[0];
    return kv === undefined ? undefined : this.#kv(kv);
  }

  async create(rel: string, value: string, session: string | undefined, op: Op): Promise<boolean> {
    const key = this.#key(rel);
    const put: Record<string, string> = { key, value: b64(value) };
    if (session !== undefined) put.lease = session;
    const r = await this.#call<TxnResponse>('/kv/txn', {
      compare: [{ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: put }],
    }, op);
    return r.succeeded === true;
  }

  async put(rel: string, value: string, opts: { version?: string | undefined; session?: string | undefined }, op: Op): Promise<boolean> {
    const key = this.#key(rel);
    const put: Record<string, string> = { key, value: b64(value) };
    if (opts.session !== undefined) put.lease = opts.session;
    if (opts.version === undefined) {
      await this.#call('/kv/put', put, op);
      return true;
    }
    const r = await this.#call<TxnResponse>('/kv/txn', {
      compare: [{ key, target: 'MOD', result: 'EQUAL', mod_revision: opts.version }],
      success: [{ request_put: put }],
    }, op);
    return r.succeeded === true;
  }

  async delete(rel: string, version: string | undefined, op: Op): Promise<boolean> {
    const key = this.#key(rel);
    if (version === undefined) {
      await this.#call('/kv/deleterange', { key }, op);
      return true;
    }
    const r = await this.#call<TxnResponse>('/kv/txn', {
      compare: [{ key, target: 'MOD', result: 'EQUAL', mod_revision: version }],
      success: [{ request_delete_range: { key } }],
    }, op);
    return r.succeeded === true;
  }

  async deleteTree(op: Op): Promise<void> {
    await this.#call('/kv/deleterange', { key: b64(this.prefix), range_end: prefixEnd(this.prefix) }, op);
  }

  async grantSession(ttlSeconds: number, op: Op): Promise<string> {
    const r = await this.#call<GrantResponse>('/lease/grant', { TTL: ttlSeconds }, op);
    if (!r.ID) throw new DcsError('DCS_PROTOCOL', 'etcd: lease grant answered without an ID');
    return r.ID;
  }

  async keepAlive(session: string, op: Op): Promise<boolean> {
    const r = await this.#call<KeepaliveResponse>('/lease/keepalive', { ID: session }, op);
    return Boolean(r.result?.TTL) && Number(r.result?.TTL) > 0;
  }

  async sessionTimeToLive(session: string, op: Op): Promise<{ remaining: number; granted: number } | undefined> {
    const r = await this.#call<TimeToLiveResponse>('/lease/timetolive', { ID: session }, op);
    const remaining = Number(r.TTL ?? -1);
    return remaining < 0 ? undefined : { remaining, granted: Number(r.grantedTTL ?? 0) };
  }

  async takeOver(expect: { leaderVersion: string; leaderSession: string; syncVersion: string }, leaderValue: string, session: string, syncValue: string, op: Op): Promise<boolean> {
    const body = takeOverTxn({ leader: this.#key('leader'), sync: this.#key('sync') }, expect, { leader: b64(leaderValue), sync: b64(syncValue) }, session);
    const r = await this.#call<TxnResponse>('/kv/txn', body, op);
    return r.succeeded === true;
  }

  /** A watch stream kept open between calls, per key (etcd3-watch.ts). */
  async watch(rel: string, revision: string, timeoutMs: number, callerSignal: AbortSignal | undefined): Promise<void> {
    if (this.#closed || callerSignal?.aborted) return;
    let w = this.#watches.get(rel);
    if (w === undefined) {
      let host = '';
      let index = -1;
      w = new KeyWatch({
        maxAgeMs: WATCH_MAX_AGE_MS,
        epoch: () => `${this.#ep.current()?.host ?? ''} ${this.#failovers}`,
        broken: (err) => this.#failover(index, host, '/watch', err),
        open: async (from, signal) => {
          const cur = this.#ep.current();
          if (cur === undefined || this.#closed) return undefined;
          ({ index, host } = cur);
          try {
            await this.#prepare(host, signal, undefined);
            const create: Record<string, string> = { key: this.#key(rel) };
            if (from !== undefined) create.start_revision = from.toString();
            // The gateway streams one JSON object per line: first the "created" ack, then events.
            const stream = await this.#http.stream(host, `${this.#api ?? '/v3'}/watch`, {
              method: 'POST',
              headers: this.#headers(),
              body: JSON.stringify({ create_request: create }),
              signal,
            });
            if (stream.status === 200) return stream;
            stream.close();
            return undefined;
          } catch (err) {
            if (!signal.aborted) this.#failover(index, host, '/watch', err);
            return undefined;
          }
        },
      });
      this.#watches.set(rel, w);
    }
    await w.wait(revision, timeoutMs, callerSignal);
  }

  /**
   * Abort everything in flight, revoke `revoke` (best effort, 1 s per endpoint), close the
   * connections. Idempotent.
   */
  async close(revoke: string | undefined): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watches.values()) w.close();
    for (const ctrl of this.#inflight) ctrl.abort();
    this.#inflight.clear();
    try {
      if (revoke === undefined || this.#api === undefined) return;
      const hosts = this.#ep.list;
      const start = this.#ep.current()?.index ?? 0;
      for (let i = 0; i < hosts.length; i++) {
        const host = hosts[(start + i) % hosts.length] ?? '';
        try {
          const res = await this.#http.request(host, `${this.#api}/lease/revoke`, {
            method: 'POST',
            headers: this.#headers(),
            body: JSON.stringify({ ID: revoke }),
            timeoutMs: 1000,
          });
          if (res.status === 200 || res.status === 404) return;
        } catch {
          // next endpoint
        }
      }
    } finally {
      this.#http.destroy();
    }
  }
}

/** The Dcs over etcd v3: the shared HA verbs (kv-dcs.ts) on an Etcd3Backend. */
export class Etcd3Dcs extends KvDcs {
  readonly #backend: Etcd3Backend;
  constructor(opts: Etcd3Options) {
    const backend = new Etcd3Backend(opts);
    super(backend, {
      name: opts.name,
      ttl: opts.ttl,
      retryTimeout: opts.retryTimeout,
      noSessions: opts.ctlMode ?? false,
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    });
    this.#backend = backend;
  }

  /** The etcd hosts in use now, in order of trial, and the current one. */
  endpoints(): { hosts: readonly string[]; current: string | undefined } {
    return this.#backend.endpoints();
  }
}

