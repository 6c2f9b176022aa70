// Consul backend (backend.ts) over Consul's HTTP API (consul-http.ts), in Patroni's layout
// (patroni-interfaces.md §1.7.3): keys under /v1/kv/<namespace>/<scope>/ (no leading slash),
// versions are ModifyIndex, sessions are Consul sessions created with Patroni's body
// ({"Name":"<scope>-<name>","Checks":[consul.checks],"LockDelay":"0.001s","Behavior":"delete",
// "TTL":"<ttl/2>s"}: Consul invalidates a session between TTL and 2 x TTL after its last renewal, so
// the keys live about ttl), and session-bound writes use ?acquire=<session>, as Patroni's do.
// ConsulDcs is the shared HA verbs (kv-dcs.ts) over it, plus service registration
// (consul-service.ts) when register_service is set.
//
// DcsBackend fits Consul with these mappings (no interface change was needed):
// - create(key, session): PUT ?acquire=<session> (Patroni's leader acquire). Consul grants it when
//   nobody holds the key and the key is past its lock-delay: an existing key written without a
//   session is taken over, and our own session re-acquiring its key succeeds. Refused while nobody
//   holds the key (a lock-delay), it is tried again for up to 200 ms before returning false.
//   create(key) without a session: PUT ?cas=0 (only if absent).
// - put(key, {session}): ?acquire; if another (e.g. our previous) session holds the key it is
//   deleted first (by ?cas=<ModifyIndex>), as Patroni does for member keys; a short lock-delay is
//   waited out within the verb's deadline. put(key, {version, session}) (leader re-bind):
//   DELETE ?cas=<version>, then ?acquire. put(key, {version}): ?cas=<version>.
// - a session replaced after a ttl change is destroyed (endSession, through KvDcs) once our keys
//   are bound to the new one, instead of lingering until Consul invalidates it (up to 2 x TTL).
// - watch(leader, revision): blocking GET .../leader?index=&wait=. The backend remembers the
//   leader's ModifyIndex (or absence) at the last readTree revisions, so a wake-up that is not a
//   change of the leader key (Consul may answer early for an absent key) blocks again.
//
// Failure contract as backend.ts: a failed compare-and-set resolves false; no answer within the
// verb's deadline (connection refused, timeout, 5xx, 429) is DcsError('DCS_UNAVAILABLE'), and so
// is a TLS failure, at once (waiting would not change it); 403 is
// DCS_AUTH; 500 "invalid session" is SessionNotFound; other refusals are DCS_PROTOCOL.

import { DcsError } from './dcs.ts';
import { SessionNotFound, type DcsBackend, type Op, type RawKv } from './backend.ts';
import { KvDcs } from './kv-dcs.ts';
import { ConsulHttp, ConsulHttpError, loadConsulTls, type ConsulAnswer } from './consul-http.ts';
import { ConsulService, pySeconds } from './consul-service.ts';
import type { CallOptions } from './dcs.ts';
import type { MemberData } from '../core/model.ts';
import type { ConsulSettings } from './consul-settings.ts';
import { sleep } from './etcd-util.ts';

export { ConsulSettingError } from './consul-http.ts';

export interface ConsulOptions {
  settings: ConsulSettings;
  /** Cluster prefix, e.g. /service/batman/. */
  prefix: string;
  /** Cluster name (session name <scope>-<name>, service name and ID). */
  scope: string;
  /** Our member name. */
  name: string;
  /** Patroni's ttl, seconds (the session TTL is half of it). */
  ttl: number;
  retryTimeout: number;
  /** patronictl-style: consistent reads, no session, no service registration. */
  ctlMode?: boolean;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void; info?(obj: object, msg?: string): void };
}

interface KvJson { Key?: string; Value?: string | null; ModifyIndex?: number; CreateIndex?: number; Session?: string }

type Query = Record<string, string | undefined>;


function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function checkVersion(version: string): void {
  if (!/^\d+$/.test(version)) throw new DcsError('DCS_PROTOCOL', `consul: a version is a ModifyIndex (decimal), got ${JSON.stringify(version)}`, { retryable: false });
}

const LEADER_HISTORY = 16;
/** How long an ?acquire refused by a lock-delay is retried before the race counts as lost, ms. */
const LOCK_DELAY_PATIENCE_MS = 200;

export class ConsulBackend implements DcsBackend {
  readonly prefix: string;
  readonly #s: ConsulSettings;
  readonly #host: string;
  readonly #http: ConsulHttp;
  readonly #sessionName: string;
  readonly #ctl: boolean;
  readonly #log: ConsulOptions['logger'];
  /** The agent's session_ttl_min (s), learnt when it refused our TTL. */
  #minSessionTtl = 0;
  #closed = false;
  readonly #inflight = new Set<AbortController>();
  /** readTree revision -> the leader key's ModifyIndex then ('' = absent). */
  readonly #leaderAt = new Map<string, string>();

  constructor(opts: ConsulOptions) {
    if (!opts.prefix.startsWith('/') || !opts.prefix.endsWith('/')) throw new Error(`consul: prefix must start and end with '/': ${opts.prefix}`);
    this.prefix = opts.prefix;
    this.#s = opts.settings;
    this.#host = opts.settings.host;
    const tls = opts.settings.scheme === 'https'
      ? loadConsulTls({ cacert: opts.settings.cacert, cert: opts.settings.cert, key: opts.settings.key, verify: opts.settings.verify })
      : undefined;
    this.#http = new ConsulHttp(opts.settings.scheme, tls);
    this.#sessionName = `${opts.scope}-${opts.name}`;
    this.#ctl = opts.ctlMode ?? false;
    this.#log = opts.logger;
  }

  now(): number {
    return Date.now();
  }

  // ---- transport ---------------------------------------------------------------------------

  #path(base: string, query: Query): string {
    const q = new URLSearchParams();
    if (this.#s.dc !== undefined) q.set('dc', this.#s.dc);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v);
    // Flag parameters (recurse, consistent, stale) are sent bare, as Consul documents them.
    const text = q.toString().replace(/=(?=&|$)/g, '');
    return text === '' ? base : `${base}?${text}`;
  }

  #kvPath(key: string, query: Query = {}): string {
    return this.#path(`/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`, query);
  }

  #key(rel: string): string {
    return this.prefix.slice(1) + rel;
  }

  #headers(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.#s.token !== undefined) h['x-consul-token'] = this.#s.token;
    return h;
  }

  /**
   * One call with retries until op.deadline. Resolves with a 200 or 404 answer; rejects with
   * DcsError as the file header says.
   */
  async call(method: 'GET' | 'PUT' | 'DELETE', path: string, body: string | undefined, op: Op): Promise<ConsulAnswer> {
    // The first error is kept besides the last: an attempt started with a few milliseconds left
    // ends in a timeout that says nothing, while the first one (e.g. a TLS 1.3 peer that refused
    // our certificate and hung up) names the cause.
    let firstError: string | undefined;
    let lastError = 'no attempt fitted in the deadline';
    const perAttempt = Math.max(1000, op.budgetMs / 2);
    while (true) {
      if (this.#closed) throw new DcsError('DCS_UNAVAILABLE', 'consul adapter closed', { retryable: false });
      if (op.signal?.aborted) throw new DcsError('DCS_UNAVAILABLE', `consul ${method} ${path}: aborted by caller`, { cause: op.signal.reason, retryable: false });
      const remaining = op.deadline - Date.now();
      if (remaining <= 0) break;
      const ctrl = new AbortController();
      this.#inflight.add(ctrl);
      const signal = op.signal ? AbortSignal.any([ctrl.signal, op.signal]) : ctrl.signal;
      let res: ConsulAnswer;
      try {
        const headers = this.#headers();
        if (body !== undefined) headers['content-type'] = 'application/json';
        res = await this.#http.request(this.#host, path, { method, headers, signal, timeoutMs: Math.min(remaining, perAttempt), ...(body === undefined ? {} : { body }) });
      } catch (err) {
        if (op.signal?.aborted || this.#closed) continue; // reported at the top of the loop
        lastError = err instanceof Error ? err.message : String(err);
        firstError ??= lastError;
        // A TLS failure (certificate not trusted, client certificate refused) will not go away by waiting.
        if (err instanceof ConsulHttpError && err.kind === 'tls') {
          throw new DcsError('DCS_UNAVAILABLE', `consul (${this.#host}): no TLS connection for ${method} ${path}: ${lastError}`, { cause: err });
        }
        this.#log?.warn({ host: this.#host, path, err: lastError }, 'consul request failed; retrying');
        if (!(err instanceof ConsulHttpError && err.kind === 'timeout')) await sleep(Math.min(200, Math.max(0, op.deadline - Date.now())), op.signal);
        continue;
      } finally {
        this.#inflight.delete(ctrl);
      }
      if (res.status === 200 || res.status === 404) return res;
      const text = res.text.trim().slice(0, 300);
      if (res.status === 403) throw new DcsError('DCS_AUTH', `consul ${method} ${path}: 403 ${text} (check consul.token)`);
      if (res.status === 500 && /^Invalid Session TTL/.test(text)) throw new InvalidSessionTtl(text);
      if (res.status === 500 && /^invalid session/i.test(text)) throw new SessionNotFound(`consul: ${text}`);
      if (res.status >= 500 || res.status === 429) {
        lastError = `HTTP ${res.status}: ${text}`;
        firstError ??= lastError;
        await sleep(Math.min(200, Math.max(0, op.deadline - Date.now())), op.signal);
        continue;
      }
      throw new DcsError('DCS_PROTOCOL', `consul ${method} ${path}: HTTP ${res.status}: ${text}`, { retryable: false });
    }
    const errors = firstError === undefined || firstError === lastError ? lastError : `${firstError}; last: ${lastError}`;
    throw new DcsError('DCS_UNAVAILABLE', `consul (${this.#host}) did not answer ${method} ${path} within ${op.budgetMs / 1000}s: ${errors}`);
  }

  /** A KV write answering true/false. */
  async #write(method: 'PUT' | 'DELETE', rel: string, query: Query, value: string | undefined, op: Op): Promise<boolean> {
    const res = await this.call(method, this.#kvPath(this.#key(rel), query), value, op);
    if (res.status !== 200) throw new DcsError('DCS_PROTOCOL', `consul ${method} ${rel}: HTTP ${res.status}: ${res.text.slice(0, 200)}`, { retryable: false });
    return res.text.trim() === 'true';
  }

  /** One entry as read; fields of the wrong type (another tool, a proxy) read as empty, never throw. */
  #kv(kv: KvJson): RawKv {
    const index = (v: unknown): string => (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : '0');
    return {
      key: `/${typeof kv.Key === 'string' ? kv.Key : ''}`,
      value: typeof kv.Value === 'string' ? Buffer.from(kv.Value, 'base64').toString('utf8') : '',
      modRevision: index(kv.ModifyIndex),
      createRevision: index(kv.CreateIndex),
      lease: typeof kv.Session === 'string' ? kv.Session : '',
    };
  }

  #entries(res: ConsulAnswer, what: string): KvJson[] {
    if (res.status === 404) return [];
    try {
      const parsed = JSON.parse(res.text) as unknown;
      if (Array.isArray(parsed)) return parsed.filter((e): e is KvJson => typeof e === 'object' && e !== null);
    } catch {
      // reported below
    }
    throw new DcsError('DCS_PROTOCOL', `consul: the answer to ${what} is not a JSON list: ${res.text.slice(0, 200)}`);
  }

  #consistency(): Query {
    const mode = this.#ctl ? 'consistent' : this.#s.consistency;
    return mode === 'default' ? {} : { [mode]: '' };
  }

  // ---- primitives (backend.ts) ----------------------------------------------------------------

  async readTree(op: Op): Promise<{ kvs: RawKv[]; revision: string }> {
    const res = await this.call('GET', this.#kvPath(this.prefix.slice(1), { recurse: '', ...this.#consistency() }), undefined, op);
    const kvs = this.#entries(res, 'a recurse read').map((kv) => this.#kv(kv));
    const revision = String(res.headers['x-consul-index'] ?? '0');
    const leader = kvs.find((kv) => kv.key === `${this.prefix}leader`);
    this.#leaderAt.set(revision, leader?.modRevision ?? '');
    while (this.#leaderAt.size > LEADER_HISTORY) this.#leaderAt.delete(this.#leaderAt.keys().next().value as string);
    return { kvs, revision };
  }

  async get(rel: string, op: Op): Promise<RawKv | undefined> {
    // Consistent: the verbs decide on it (refreshLeader, releaseLeader).
    const res = await this.call('GET', this.#kvPath(this.#key(rel), { consistent: '' }), undefined, op);
    const kv = this.#entries(res, `GET ${rel}`)[0];
    return kv === undefined ? undefined : this.#kv(kv);
  }

  async create(rel: string, value: string, session: string | undefined, op: Op): Promise<boolean> {
    if (session === undefined) return this.#write('PUT', rel, { cas: '0' }, value, op);
    // Refused while nobody holds the key: it is inside the lock-delay of a session that just ended
    // (1 ms for Patroni's and ours). Try again for a short while, then report the race as lost.
    const giveUp = Math.min(op.deadline, Date.now() + LOCK_DELAY_PATIENCE_MS);
    while (true) {
      if (await this.#write('PUT', rel, { acquire: session }, value, op)) return true;
      const cur = await this.get(rel, op);
      if ((cur !== undefined && cur.lease !== '') || Date.now() >= giveUp) return false;
      await sleep(Math.min(20, Math.max(0, giveUp - Date.now())), op.signal);
    }
  }

  async put(rel: string, value: string, opts: { version?: string | undefined; session?: string | undefined }, op: Op): Promise<boolean> {
    if (opts.version !== undefined) checkVersion(opts.version);
    if (opts.session === undefined) return this.#write('PUT', rel, opts.version === undefined ? {} : { cas: opts.version }, value, op);
    if (opts.version !== undefined) {
      // Re-bind (Patroni's leader refresh after a new session): delete that version, then acquire.
      if (!(await this.#write('DELETE', rel, { cas: opts.version }, undefined, op))) return false;
      return this.#write('PUT', rel, { acquire: opts.session }, value, op);
    }
    while (true) {
      if (op.deadline - Date.now() <= 0) {
        throw new DcsError('DCS_UNAVAILABLE', `consul: ${rel} could not be acquired within ${op.budgetMs / 1000}s (lock-delay, or contended)`);
      }
      if (await this.#write('PUT', rel, { acquire: opts.session }, value, op)) return true;
      const cur = await this.get(rel, op);
      if (cur !== undefined && cur.lease !== '' && cur.lease !== opts.session) {
        // Held by another session (our previous one, or another member's for takeLeader).
        await this.#write('DELETE', rel, { cas: cur.modRevision }, undefined, op);
        continue;
      }
      // Not held, yet refused: the key is inside a lock-delay. Wait it out within the deadline.
      await sleep(Math.min(100, Math.max(0, op.deadline - Date.now())), op.signal);
    }
  }

  delete(rel: string, version: string | undefined, op: Op): Promise<boolean> {
    if (version !== undefined) checkVersion(version);
    return this.#write('DELETE', rel, version === undefined ? {} : { cas: version }, undefined, op);
  }

  async deleteTree(op: Op): Promise<void> {
    // With the trailing '/': a sibling cluster whose name starts with ours is not touched.
    await this.#write('DELETE', '', { recurse: '' }, undefined, op);
  }

  async grantSession(ttlSeconds: number, op: Op): Promise<string> {
    const create = async (): Promise<string> => {
      const ttl = Math.max(ttlSeconds / 2, this.#minSessionTtl);
      const body = JSON.stringify({ Name: this.#sessionName, Checks: this.#s.checks, LockDelay: '0.001s', Behavior: 'delete', TTL: `${pySeconds(ttl)}s` });
      const res = await this.call('PUT', this.#path('/v1/session/create', {}), body, op);
      const id = res.status === 200 ? (parseJson(res.text) as { ID?: unknown } | undefined)?.ID : undefined;
      if (typeof id !== 'string' || id === '') throw new DcsError('DCS_PROTOCOL', `consul: session create answered ${res.status}: ${res.text.slice(0, 200)}`);
      return id;
    };
    try {
      return await create();
    } catch (err) {
      if (!(err instanceof InvalidSessionTtl)) throw err;
      // As Patroni: use the agent's SessionTTLMin and try again.
      const self = await this.call('GET', '/v1/agent/self', undefined, op);
      const parsed = parseJson(self.text) as { Config?: { SessionTTLMin?: unknown } } | undefined;
      const ns = parsed?.Config?.SessionTTLMin;
      const min = (typeof ns === 'number' && ns > 0 ? ns : 10e9) / 1e9;
      this.#log?.warn({ from: ttlSeconds / 2, to: min, answer: err.message }, 'consul refused the session TTL; using its minimum');
      this.#minSessionTtl = min;
      return create();
    }
  }

  async keepAlive(session: string, op: Op): Promise<boolean> {
    const res = await this.call('PUT', this.#path(`/v1/session/renew/${encodeURIComponent(session)}`, {}), undefined, op);
    return res.status === 200;
  }

  async watch(rel: string, revision: string, timeoutMs: number, callerSignal: AbortSignal | undefined): Promise<void> {
    if (this.#closed || callerSignal?.aborted) return;
    const ctrl = new AbortController();
    this.#inflight.add(ctrl);
    const signals = [ctrl.signal, AbortSignal.timeout(Math.max(0, timeoutMs))];
    if (callerSignal) signals.push(callerSignal);
    const signal = AbortSignal.any(signals);
    const end = Date.now() + timeoutMs;
    const key = this.#key(rel);
    const stateOf = (res: ConsulAnswer): string => (res.status === 404 ? '' : String(this.#entries(res, `GET ${rel}`)[0]?.ModifyIndex ?? ''));
    const get = (query: Query): Promise<ConsulAnswer> => this.#http.request(this.#host, this.#kvPath(key, query), { method: 'GET', headers: this.#headers(), signal });
    try {
      let known = rel === 'leader' ? this.#leaderAt.get(revision) : undefined;
      let index = revision;
      if (known === undefined) {
        // An unknown revision: watch for changes after now.
        const first = await get({});
        if (first.status !== 200 && first.status !== 404) return;
        known = stateOf(first);
        index = String(first.headers['x-consul-index'] ?? '0');
      }
      while (!signal.aborted) {
        const left = Math.floor(end - Date.now());
        if (left < 1) return;
        const res = await get({ index, wait: `${left}ms` });
        if (res.status !== 200 && res.status !== 404) return;
        if (stateOf(res) !== known) return;
        const next = String(res.headers['x-consul-index'] ?? index);
        if (BigInt(next) > BigInt(index)) index = next;
      }
    } catch {
      // A broken watch just resolves (backend.ts).
    } finally {
      ctrl.abort();
      this.#inflight.delete(ctrl);
    }
  }

  /** Destroy a session (its keys go with it: Behavior delete). */
  async endSession(session: string, op: Op): Promise<void> {
    const res = await this.call('PUT', this.#path(`/v1/session/destroy/${encodeURIComponent(session)}`, {}), undefined, op);
    if (res.status !== 200) throw new DcsError('DCS_PROTOCOL', `consul: session destroy answered ${res.status}: ${res.text.slice(0, 200)}`, { retryable: false });
  }

  async close(revoke: string | undefined): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const ctrl of this.#inflight) ctrl.abort();
    this.#inflight.clear();
    try {
      if (revoke !== undefined) {
        await this.#http.request(this.#host, this.#path(`/v1/session/destroy/${encodeURIComponent(revoke)}`, {}), {
          method: 'PUT', headers: this.#headers(), timeoutMs: 1000,
        }).catch(() => undefined);
      }
    } finally {
      this.#http.destroy();
    }
  }
}

class InvalidSessionTtl extends DcsError {
  constructor(message: string) {
    super('DCS_PROTOCOL', `consul: ${message}`, { retryable: false });
    this.name = 'InvalidSessionTtl';
  }
}

/** The Dcs over Consul: the shared HA verbs (kv-dcs.ts) on a ConsulBackend, plus service registration. */
export class ConsulDcs extends KvDcs {
  readonly #service: ConsulService | undefined;
  readonly #backend: ConsulBackend;
  readonly #retryMs: () => number;
  #retry: number;

  constructor(opts: ConsulOptions) {
    const backend = new ConsulBackend(opts);
    super(backend, {
      name: opts.name,
      ttl: opts.ttl,
      retryTimeout: opts.retryTimeout,
      noSessions: opts.ctlMode ?? false,
      // After a ttl change the replaced session is destroyed once nothing is bound to it, rather
      // than left for Consul to invalidate up to 2 x its TTL later.
      endSession: (session, op) => backend.endSession(session, op),
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    });
    this.#backend = backend;
    this.#retry = opts.retryTimeout;
    this.#retryMs = () => this.#retry * 1000;
    this.#service = opts.settings.registerService && opts.ctlMode !== true
      ? new ConsulService({
        scope: opts.scope,
        name: opts.name,
        tags: opts.settings.serviceTags,
        interval: opts.settings.serviceCheckInterval,
        tlsServerName: opts.settings.serviceCheckTlsServerName,
        ttl: opts.ttl,
        call: (method, path, body, op) => backend.call(method, path, body, op),
        ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      })
      : undefined;
  }

  override async touchMember(data: MemberData, opts?: CallOptions): Promise<void> {
    await super.touchMember(data, opts);
    if (this.#service === undefined) return;
    const op: Op = { signal: opts?.signal, deadline: this.#backend.now() + this.#retryMs(), budgetMs: this.#retryMs() };
    await this.#service.update(data, op);
  }

  override setTtl(ttlSeconds: number): void {
    super.setTtl(ttlSeconds);
    this.#service?.setTtl(ttlSeconds);
  }

  override setRetryTimeout(seconds: number): void {
    super.setRetryTimeout(seconds);
    this.#retry = seconds;
  }
}
