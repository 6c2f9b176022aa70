// etcd v3 adapter over etcd's JSON gRPC gateway (POST /v3/...), on node:http / node:https with a
// keep-alive Agent per adapter (etcd3-http.ts), so that https can use a private CA (etcd3.cacert) and
// a client certificate (etcd3.cert, etcd3.key, etcd3.key_password; read by etcd3-tls.ts).
// Spec: patroni-interfaces.md §1.7.1; design.md §4.
//
// Wire facts: keys/values are base64; int64 fields are decimal strings (lease IDs exceed 2^53, so
// they are never converted to Number); proto3 omits defaults (a failed txn has no `succeeded`, an
// empty range has no `kvs`, an empty value has no `value`).
//
// Failure contract: every request has a deadline; on a connection error, timeout or "unavailable"
// answer the next endpoint is tried, and a method as a whole gives up after retryTimeout seconds
// with DcsError('DCS_UNAVAILABLE'). A TLS failure (server certificate not trusted, client
// certificate refused) also moves to the next endpoint; when every endpoint failed that way in a
// row the method gives up at once with DCS_UNAVAILABLE naming the TLS problem, since waiting
// would not change it. A failed compare-and-set resolves false. Other etcd errors are
// DcsError('DCS_PROTOCOL'), authentication/permission errors DcsError('DCS_AUTH').
//
// Settings that cannot be used (a TLS file that cannot be read, a wrong key_password) make the
// constructor throw an Etcd3SettingError naming the setting and the file.

import { DcsError, type CallOptions, type Dcs } from './dcs.ts';
import type { ClusterView, HistoryLine, LeaderStatus, MemberData } from '../core/model.ts';
import {
  decodeCluster,
  encodeConfig,
  encodeFailover,
  encodeFailsafe,
  encodeHistory,
  encodeMember,
  encodeStatus,
  encodeSync,
  type RawKv,
} from './codec.ts';
import { EtcdHttp, EtcdHttpError } from './etcd3-http.ts';
import { loadEtcd3Tls, type Etcd3Tls } from './etcd3-tls.ts';

export { Etcd3SettingError } from './etcd3-tls.ts';

export interface Etcd3Options {
  /** host:port, tried in order; the first that answers is kept until it fails. */
  hosts: string[];
  protocol: 'http' | 'https';
  /** Cluster prefix, e.g. /service/batman/ (see clusterPrefix). */
  prefix: string;
  /** Our member name (value of the leader key, name of members/<name>). */
  name: string;
  /** Lease TTL, seconds. */
  ttl: number;
  /** Deadline of each method (all its retries), seconds. */
  retryTimeout: number;
  username?: string;
  password?: string;
  /**
   * TLS (protocol https only; ignored for http), as file paths, read once by the constructor:
   * cacert: PEM CA certificate(s) etcd's server certificate must chain to (default: the system's
   * CAs); cert: PEM client certificate, which may also hold its key; key: PEM private key of
   * cert; keyPassword: passphrase of an encrypted key. The server's name or IP as written in
   * `hosts` must be in its certificate's subjectAltName.
   */
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  keyPassword?: string | undefined;
  /** patronictl-style: linearizable reads, never grants a lease (lease-bound writes reject). */
  ctlMode?: boolean;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}

interface Header { revision?: string }
interface KvJson { key?: string; value?: string; mod_revision?: string; create_revision?: string; lease?: string }
interface RangeResponse { header?: Header; kvs?: KvJson[] }
interface TxnResponse { succeeded?: boolean; responses?: { response_txn?: { succeeded?: boolean } }[] }
interface GrantResponse { ID?: string; TTL?: string }
interface KeepaliveResponse { result?: { ID?: string; TTL?: string } }
interface ErrorBody { error?: unknown; message?: string; code?: number }
interface AuthResponse { token?: string }

/** etcd answered "requested lease not found": the caller grants a new lease and retries once. */
class LeaseNotFound extends DcsError {
  constructor() {
    super('DCS_PROTOCOL', 'etcd: requested lease not found', { retryable: false });
  }
}

/** The per-method budget: caller's signal and the absolute deadline of all retries. */
interface Op {
  signal: AbortSignal | undefined;
  deadline: number;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** range_end covering every key starting with `prefix` (last byte + 1). */
function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  let i = bytes.length - 1;
  while (i >= 0 && bytes[i] === 0xff) i--;
  if (i < 0) return Buffer.from([0]).toString('base64'); // every key
  const end = bytes.subarray(0, i + 1);
  end[i] = (end[i] ?? 0) + 1;
  return end.toString('base64');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function describe(err: unknown): string {
  if (err === undefined) return 'no attempt fitted in the deadline';
  if (err instanceof EtcdHttpError) return err.message;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}

/** API prefix from GET /version (etcdcluster, else etcdserver): <3.3 /v3alpha, 3.3 /v3beta, else /v3. */
function apiPrefixFor(version: { etcdcluster?: string; etcdserver?: string }): string {
  const m = /^(\d+)\.(\d+)/.exec(version.etcdcluster ?? '') ?? /^(\d+)\.(\d+)/.exec(version.etcdserver ?? '');
  if (!m) return '/v3';
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 3 && minor < 3) return '/v3alpha';
  if (major === 3 && minor === 3) return '/v3beta';
  return '/v3';
}

export class Etcd3Dcs implements Dcs {
  readonly prefix: string;
  readonly #hosts: string[];
  readonly #http: EtcdHttp;
  readonly #name: string;
  readonly #ctl: boolean;
  readonly #user: string | undefined;
  readonly #password: string | undefined;
  readonly #log: Etcd3Options['logger'];
  #ttl: number;
  #retryMs: number;
  #endpoint = 0;
  #api: string | undefined;
  /** undefined: not authenticated yet; '': auth not enabled on the server. */
  #token: string | undefined;
  #lease: { id: string; ttl: number } | undefined;
  #lastKeepalive = 0;
  /** Last member value successfully put, and the lease it was bound to. */
  #member: { value: string; lease: string } | undefined;
  #closed = false;
  readonly #inflight = new Set<AbortController>();

  constructor(opts: Etcd3Options) {
    if (opts.hosts.length === 0) throw new Error('etcd3: at least one host is required');
    if (!opts.prefix.startsWith('/') || !opts.prefix.endsWith('/')) throw new Error(`etcd3: prefix must start and end with '/': ${opts.prefix}`);
    this.prefix = opts.prefix;
    this.#hosts = [...opts.hosts];
    const tls: Etcd3Tls | undefined = opts.protocol === 'https'
      ? loadEtcd3Tls({ cacert: opts.cacert, cert: opts.cert, key: opts.key, keyPassword: opts.keyPassword })
      : undefined;
    this.#http = new EtcdHttp(opts.protocol, tls);
    this.#name = opts.name;
    this.#ctl = opts.ctlMode ?? false;
    this.#user = opts.username;
    this.#password = opts.password;
    this.#log = opts.logger;
    this.#ttl = opts.ttl;
    this.#retryMs = opts.retryTimeout * 1000;
  }

  // ---- transport ---------------------------------------------------------------------------

  #op(opts: CallOptions | undefined): Op {
    return { signal: opts?.signal, deadline: Date.now() + this.#retryMs };
  }

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
    const perAttempt = Math.max(1000, this.#retryMs / Math.max(2, this.#hosts.length));
    while (true) {
      if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'etcd3 adapter closed', { retryable: false });
      if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', `etcd ${path}: aborted by caller`, { cause: op.signal.reason, retryable: false });
      const remaining = op.deadline - Date.now();
      if (remaining <= 0) break;
      const index = this.#endpoint;
      const host = this.#hosts[index] ?? '';
      const ctrl = new AbortController();
      this.#inflight.add(ctrl);
      const signal = op.signal ? AbortSignal.any([ctrl.signal, op.signal]) : ctrl.signal;
      const budget = Math.min(remaining, perAttempt);
      const attemptEnd = Date.now() + budget;
      let res: { status: number; body: unknown; text: string };
      try {
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
        const cutShort = budget < perAttempt && err instanceof EtcdHttpError && err.kind === 'timeout' && lastError !== undefined;
        if (!cutShort) lastError = err;
        this.#failover(index, host, path, err);
        // A TLS failure on every endpoint in a row will not go away by waiting: report it now.
        tlsFailures = err instanceof EtcdHttpError && err.kind === 'tls' ? tlsFailures + 1 : 0;
        if (tlsFailures >= this.#hosts.length) break;
        if (++attempts % this.#hosts.length === 0) await sleep(Math.min(200, Math.max(0, op.deadline - Date.now())), op.signal);
        continue;
      } finally {
        this.#inflight.delete(ctrl);
      }
      tlsFailures = 0;
      if (res.status === 200) {
        // Streaming endpoints (lease/keepalive) report errors inside a 200 body.
        const streamError = (res.body as { error?: { grpc_code?: number; http_code?: number; message?: string } } | undefined)?.error;
        if (typeof streamError !== 'object' || streamError === null) return res.body as T;
        res = { status: streamError.http_code ?? 500, body: { code: streamError.grpc_code, message: streamError.message }, text: res.text };
      }

      const err = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as ErrorBody;
      const message = err.message ?? (typeof err.error === 'string' ? err.error : res.text.slice(0, 200));
      if (/requested lease not found/.test(message)) throw new LeaseNotFound();
      if (this.#user !== undefined && !reauthenticated && /invalid auth token|auth: revision in header is old/.test(message)) {
        reauthenticated = true;
        this.#token = undefined;
        continue;
      }
      if (err.code === 7 || err.code === 16 || /permission denied|invalid auth token|user name is empty|authentication failed/.test(message)) {
        throw new DcsError('DCS_AUTH', `etcd ${path}: ${message}`);
      }
      if (res.status >= 500 || err.code === 14 || err.code === 4 || err.code === 8) {
        lastError = new Error(`HTTP ${res.status}: ${message}`);
        this.#failover(index, host, path, lastError);
        if (++attempts % this.#hosts.length === 0) await sleep(Math.min(200, Math.max(0, op.deadline - Date.now())), op.signal);
        continue;
      }
      throw new DcsError('DCS_PROTOCOL', `etcd ${path}: HTTP ${res.status}: ${message}`);
    }
    if (lastError instanceof EtcdHttpError && lastError.kind === 'tls') {
      throw new DcsError('DCS_UNAVAILABLE', `etcd (${this.#hosts.join(',')}): no TLS connection for ${path}: ${lastError.message}`, { cause: lastError });
    }
    throw new DcsError('DCS_UNAVAILABLE', `etcd (${this.#hosts.join(',')}) did not answer ${path} within ${this.#retryMs / 1000}s: ${describe(lastError)}`, {
      cause: lastError,
    });
  }

  /** Move to the next endpoint, unless a concurrent call already did. */
  #failover(index: number, host: string, path: string, err: unknown): void {
    if (this.#endpoint === index) this.#endpoint = (index + 1) % this.#hosts.length;
    this.#log?.warn({ host, path, err: describe(err) }, 'etcd request failed; trying the next endpoint');
  }

  #key(rel: string): string {
    return b64(this.prefix + rel);
  }

  async #put(rel: string, value: string, op: Op, lease?: string): Promise<void> {
    const req: Record<string, string> = { key: this.#key(rel), value: b64(value) };
    if (lease) req.lease = lease;
    await this.#call('/kv/put', req, op);
  }

  async #delete(rel: string, op: Op): Promise<void> {
    await this.#call('/kv/deleterange', { key: this.#key(rel) }, op);
  }

  /** Put (version undefined) or compare mod_revision and put/delete. false: the version changed. */
  async #cas(rel: string, value: string | null, version: string | undefined, op: Op): Promise<boolean> {
    const key = this.#key(rel);
    if (version === undefined) {
      if (value === null) await this.#call('/kv/deleterange', { key }, op);
      else await this.#call('/kv/put', { key, value: b64(value) }, op);
      return true;
    }
    const request = value === null ? { request_delete_range: { key } } : { request_put: { key, value: b64(value) } };
    const r = await this.#call<TxnResponse>('/kv/txn', {
      compare: [{ key, target: 'MOD', result: 'EQUAL', mod_revision: version }],
      success: [request],
    }, op);
    return r.succeeded === true;
  }

  // ---- lease ---------------------------------------------------------------------------------

  async #grant(op: Op): Promise<string> {
    if (this.#ctl) throw new DcsError('DCS_PROTOCOL', 'etcd3: a ctlMode adapter holds no lease', { retryable: false });
    const ttl = this.#ttl;
    const r = await this.#call<GrantResponse>('/lease/grant', { TTL: ttl }, op);
    if (!r.ID) throw new DcsError('DCS_PROTOCOL', 'etcd: lease grant answered without an ID');
    this.#lease = { id: r.ID, ttl };
    this.#lastKeepalive = Date.now();
    this.#log?.debug?.({ lease: r.ID, ttl }, 'etcd lease granted');
    return r.ID;
  }

  /**
   * Our lease ID, after a keepalive when `force` or when the last one is over a second old.
   * A new lease is granted when there is none, the TTL changed, or the lease is gone.
   */
  async #keepalive(force: boolean, op: Op): Promise<string> {
    const lease = this.#lease;
    if (!lease || lease.ttl !== this.#ttl) return this.#grant(op);
    if (!force && Date.now() - this.#lastKeepalive < 1000) return lease.id;
    const r = await this.#call<KeepaliveResponse>('/lease/keepalive', { ID: lease.id }, op);
    if (!r.result?.TTL || !(Number(r.result.TTL) > 0)) {
      this.#log?.warn({ lease: lease.id }, 'etcd lease expired or revoked; granting a new one');
      this.#lease = undefined;
      return this.#grant(op);
    }
    this.#lastKeepalive = Date.now();
    return lease.id;
  }

  /** Run `fn` with our lease; if etcd no longer knows it, grant a new one and run `fn` once more. */
  async #withLease<T>(op: Op, force: boolean, fn: (lease: string) => Promise<T>): Promise<T> {
    const id = await this.#keepalive(force, op);
    try {
      return await fn(id);
    } catch (err) {
      if (!(err instanceof LeaseNotFound)) throw err;
      this.#lease = undefined;
      return fn(await this.#grant(op));
    }
  }

  // ---- Dcs -----------------------------------------------------------------------------------

  async readCluster(opts?: CallOptions): Promise<ClusterView> {
    const r = await this.#call<RangeResponse>('/kv/range', {
      key: b64(this.prefix),
      range_end: prefixEnd(this.prefix),
      serializable: !this.#ctl,
    }, this.#op(opts));
    const kvs: RawKv[] = (r.kvs ?? []).map((kv) => ({
      key: unb64(kv.key),
      value: unb64(kv.value),
      modRevision: kv.mod_revision ?? '0',
      createRevision: kv.create_revision ?? '0',
      lease: kv.lease ?? '0',
    }));
    return decodeCluster(this.prefix, kvs, r.header?.revision ?? '0');
  }

  async touchMember(data: MemberData, opts?: CallOptions): Promise<void> {
    const value = encodeMember(data);
    const rel = `members/${this.#name}`;
    const op = this.#op(opts);
    await this.#withLease(op, false, async (lease) => {
      if (this.#member?.value === value && this.#member.lease === lease) return;
      this.#member = undefined;
      await this.#put(rel, value, op, lease);
      this.#member = { value, lease };
    });
  }

  async deleteMember(opts?: CallOptions): Promise<void> {
    this.#member = undefined;
    await this.#delete(`members/${this.#name}`, this.#op(opts));
  }

  async attemptInitialize(opts?: CallOptions): Promise<boolean> {
    const key = this.#key('initialize');
    const r = await this.#call<TxnResponse>('/kv/txn', {
      compare: [{ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key, value: b64('') } }],
    }, this.#op(opts));
    return r.succeeded === true;
  }

  async writeInitialize(sysid: string, opts?: CallOptions): Promise<void> {
    await this.#put('initialize', sysid, this.#op(opts));
  }

  async deleteInitialize(opts?: CallOptions): Promise<void> {
    await this.#delete('initialize', this.#op(opts));
  }

  async acquireLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    const key = this.#key('leader');
    return this.#withLease(op, true, async (lease) => {
      const r = await this.#call<TxnResponse>('/kv/txn', {
        compare: [{ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
        success: [{ request_put: { key, value: b64(this.#name), lease } }],
      }, op);
      return r.succeeded === true;
    });
  }

  async takeLeader(opts?: CallOptions): Promise<void> {
    const op = this.#op(opts);
    await this.#withLease(op, true, (lease) => this.#put('leader', this.#name, op, lease));
  }

  async refreshLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    const key = this.#key('leader');
    const value = b64(this.#name);
    return this.#withLease(op, true, async (lease) => {
      // Already ours and bound to our lease: the keepalive was the refresh; the key is not
      // rewritten, so its mod_revision stays and watchers are not woken.
      const bound = await this.#call<TxnResponse>('/kv/txn', {
        compare: [
          { key, target: 'VALUE', result: 'EQUAL', value },
          { key, target: 'LEASE', result: 'EQUAL', lease },
        ],
      }, op);
      if (bound.succeeded === true) return true;
      // Re-bind to the current lease if the value is still ours, or re-create it if it is gone.
      const put = { request_put: { key, value, lease } };
      const r = await this.#call<TxnResponse>('/kv/txn', {
        compare: [{ key, target: 'VALUE', result: 'EQUAL', value }],
        success: [put],
        failure: [{ request_txn: { compare: [{ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }], success: [put] } }],
      }, op);
      return r.succeeded === true || r.responses?.[0]?.response_txn?.succeeded === true;
    });
  }

  async releaseLeader(opts?: CallOptions): Promise<boolean> {
    const key = this.#key('leader');
    const r = await this.#call<TxnResponse>('/kv/txn', {
      compare: [{ key, target: 'VALUE', result: 'EQUAL', value: b64(this.#name) }],
      success: [{ request_delete_range: { key } }],
    }, this.#op(opts));
    return r.succeeded === true;
  }

  writeConfig(config: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#cas('config', encodeConfig(config), version, this.#op(opts));
  }

  writeFailover(value: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#cas('failover', encodeFailover(value), version, this.#op(opts));
  }

  writeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#cas('sync', encodeSync(value), version, this.#op(opts));
  }

  deleteSync(version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#cas('sync', null, version, this.#op(opts));
  }

  async writeHistory(history: HistoryLine[], opts?: CallOptions): Promise<void> {
    await this.#put('history', encodeHistory(history), this.#op(opts));
  }

  async writeStatus(status: LeaderStatus, opts?: CallOptions): Promise<void> {
    await this.#put('status', encodeStatus(status), this.#op(opts));
  }

  async writeFailsafe(value: Record<string, string>, opts?: CallOptions): Promise<void> {
    await this.#put('failsafe', encodeFailsafe(value), this.#op(opts));
  }

  async deleteCluster(opts?: CallOptions): Promise<void> {
    this.#member = undefined;
    await this.#call('/kv/deleterange', { key: b64(this.prefix), range_end: prefixEnd(this.prefix) }, this.#op(opts));
  }

  async watchLeader(revision: string, timeoutMs: number, opts?: CallOptions): Promise<void> {
    if (this.#closed || opts?.signal?.aborted) return;
    const ctrl = new AbortController();
    this.#inflight.add(ctrl);
    const signals = [ctrl.signal, AbortSignal.timeout(Math.max(0, timeoutMs))];
    if (opts?.signal) signals.push(opts.signal);
    const signal = AbortSignal.any(signals);
    const index = this.#endpoint;
    const host = this.#hosts[index] ?? '';
    let stream: Awaited<ReturnType<EtcdHttp['stream']>> | undefined;
    try {
      await this.#prepare(host, signal, undefined);
      const create: Record<string, string> = { key: this.#key('leader') };
      if (/^\d+$/.test(revision)) create.start_revision = (BigInt(revision) + 1n).toString();
      stream = await this.#http.stream(host, `${this.#api ?? '/v3'}/watch`, {
        method: 'POST',
        headers: this.#headers(),
        body: JSON.stringify({ create_request: create }),
        signal,
      });
      if (stream.status !== 200) return;
      // The gateway streams one JSON object per line: first the "created" ack, then events.
      for await (const line of stream.lines) {
        const msg = JSON.parse(line) as {
          error?: unknown;
          result?: { events?: unknown[]; canceled?: boolean; compact_revision?: string };
        };
        const r = msg.result;
        if (msg.error !== undefined || !r) return;
        if (r.events?.length || r.canceled || (r.compact_revision && r.compact_revision !== '0')) return;
      }
    } catch (err) {
      const timedOut = signal.aborted;
      if (!timedOut) this.#failover(index, host, '/watch', err);
    } finally {
      stream?.close();
      ctrl.abort();
      this.#inflight.delete(ctrl);
    }
  }

  setTtl(ttlSeconds: number): void {
    this.#ttl = ttlSeconds;
  }

  setRetryTimeout(seconds: number): void {
    this.#retryMs = seconds * 1000;
  }

  /**
   * Abort everything in flight, revoke the lease (best effort, 1 s per endpoint), close the
   * connections. Idempotent.
   */
  async close(opts?: { keepLease?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const ctrl of this.#inflight) ctrl.abort();
    this.#inflight.clear();
    const lease = this.#lease;
    this.#lease = undefined;
    this.#member = undefined;
    try {
      if (!lease || this.#api === undefined || opts?.keepLease === true) return;
      for (let i = 0; i < this.#hosts.length; i++) {
        const host = this.#hosts[(this.#endpoint + i) % this.#hosts.length] ?? '';
        try {
          const res = await this.#http.request(host, `${this.#api}/lease/revoke`, {
            method: 'POST',
            headers: this.#headers(),
            body: JSON.stringify({ ID: lease.id }),
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

export function createEtcd3Dcs(opts: Etcd3Options): Dcs {
  return new Etcd3Dcs(opts);
}
