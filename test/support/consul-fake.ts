// A FAKE Consul agent for tests. It is NOT Consul: no Consul server can be installed on this
// machine (no Debian package, and current Consul is no longer open source), so the Consul backend
// (src/dcs/consul.ts) is tested against this in-process HTTP server, which reproduces the
// documented semantics of exactly the HTTP endpoints the backend uses (developer.hashicorp.com:
// "KV Store HTTP API", "Session HTTP Endpoint", "Sessions and distributed locks overview",
// "Blocking Queries", "Agent Service HTTP API"). See docs/dcs-consul.md.
//
// What it reproduces (one datacenter 'dc1', one node 'vigil-fake'):
// - KV entries with Key, Value (base64; null when empty), Flags, CreateIndex, ModifyIndex,
//   LockIndex, Session; one Raft-like index raised by every write; X-Consul-Index on reads.
//   GET ?recurse (404 when nothing), ?raw; single key 404 when absent. PUT answers true/false:
//   ?cas=0 create-only, ?cas=N only if ModifyIndex is N; ?acquire=<session> (false if another
//   session holds it or the key is inside its lock-delay; LockIndex raised on a new holder; the
//   holder may rewrite); ?release=<session>; a plain PUT keeps the lock holder. DELETE ?recurse,
//   ?cas=N (N must be > 0). Values over 512 kB are refused (413).
// - Sessions: create (Name, Node, Checks, LockDelay default 15s capped at 60s, Behavior release |
//   delete, TTL within [session_ttl_min, 24h] else 500 "Invalid Session TTL"), renew (404 when
//   unknown), destroy, info, list. A TTL is a lower bound: the session is invalidated 2 x TTL after
//   its last renewal, as Consul's servers do. Invalidation releases or deletes the keys it holds
//   (its Behavior) and starts their lock-delay. Checks are only validated (serfHealth, or the
//   service checks registered here), never run, so they never invalidate a session.
// - Blocking queries on KV GETs: ?index=N&wait=D holds the answer until the result's index is past
//   N or D (default 5m, at most 10m, plus up to D/16 jitter) passes. A single existing key answers
//   its ModifyIndex; an absent one the KV table's index; a recurse read the highest ModifyIndex
//   (or deletion index) under the prefix.
// - ACL: with a token configured, X-Consul-Token (or ?token=) must carry it: 403 otherwise.
// - /v1/agent/self (Config.SessionTTLMin in ns), /v1/agent/service/register, /deregister/<id>,
//   /v1/agent/services, /v1/agent/checks (checks recorded, status critical, never run).
// - ?dc= other than dc1: 500 "No path to datacenter". ?consistent / ?stale accepted (one server).
// - https with a server certificate, and client certificates required (verify_incoming) with a CA.
//
// Test controls: pause()/resume() (requests are held unanswered, as by a frozen server),
// options.now (a clock for TTLs and lock-delays; call reap() after moving a manual clock).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface ConsulFakeOptions {
  /** ACL token every request must carry (default: ACLs off). */
  token?: string;
  /** The agent's session_ttl_min, ms (Consul's default 10 s). */
  sessionTtlMinMs?: number;
  /** Clock for session TTLs and lock-delays, ms (default Date.now). */
  now?: () => number;
  /**
   * Serve https with this certificate and key (PEM); with `ca`, client certificates signed by it
   * are required, as Consul's verify_incoming does.
   */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
}

interface Entry {
  key: string;
  value: Buffer | null;
  flags: string;
  createIndex: number;
  modifyIndex: number;
  lockIndex: number;
  session: string;
}

interface Session {
  id: string;
  name: string;
  checks: string[];
  lockDelayNs: number;
  behavior: 'release' | 'delete';
  ttl: string;
  ttlMs: number;
  createIndex: number;
  /** When Consul invalidates it (2 x TTL after the last renewal); Infinity without TTL. */
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
}

interface Waiter {
  covers(key: string): boolean;
  wake(): void;
}

const MAX_VALUE = 512 * 1024;
const NODE = 'vigil-fake';
const DC = 'dc1';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go time.ParseDuration, in ms ("15.0s", "1m30s", "500ms"); undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  return matched === text.length && matched > 0 ? total : undefined;
}

export class ConsulFake {
  readonly #opts: ConsulFakeOptions;
  readonly #server: Server;
  readonly #now: () => number;
  #index = 1;
  #kvIndex = 0;
  readonly #kv = new Map<string, Entry>();
  /** Index of each key's deletion (Consul's tombstones). */
  readonly #tombstones = new Map<string, number>();
  readonly #sessions = new Map<string, Session>();
  /** Key -> end of its lock-delay (clock ms). */
  readonly #lockDelay = new Map<string, number>();
  readonly #services = new Map<string, Record<string, unknown>>();
  readonly #waiters = new Set<Waiter>();
  #paused = false;
  #held: (() => void)[] = [];
  /** Every request handled, as "METHOD path?query" (for tests of what a client sent). */
  readonly log: string[] = [];

  private constructor(opts: ConsulFakeOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      // A client that gave up (aborted) while the request was held or read: nothing to answer.
      const run = (): void => void this.#handle(req, res).catch(() => res.destroy());
      if (this.#paused) this.#held.push(run);
      else run();
    };
    const tls = opts.tls;
    this.#server = tls === undefined
      ? createServer(handler)
      : createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}) }, handler);
  }

  static async start(opts: ConsulFakeOptions = {}): Promise<ConsulFake> {
    const fake = new ConsulFake(opts);
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  /** host:port of the fake agent. */
  get address(): string {
    const a = this.#server.address() as AddressInfo;
    return `127.0.0.1:${a.port}`;
  }

  /** Hold every request (new and queued) unanswered until resume(). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    for (const run of held) run();
  }

  async stop(): Promise<void> {
    for (const s of this.#sessions.values()) clearTimeout(s.timer);
    for (const w of this.#waiters) w.wake();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Invalidate every session whose time is up on the clock (run by timers and each request). */
  reap(): void {
    const now = this.#now();
    for (const s of [...this.#sessions.values()]) if (s.expiresAt <= now) this.#invalidate(s);
  }

  /** The registered services, by ID (what GET /v1/agent/services shows). */
  services(): Record<string, Record<string, unknown>> {
    return Object.fromEntries(this.#services);
  }

  // ---- state changes ---------------------------------------------------------------------------

  #touchKv(key: string, index: number): void {
    this.#kvIndex = index;
    for (const w of [...this.#waiters]) if (w.covers(key)) w.wake();
  }

  #deleteKey(key: string, index: number): void {
    if (!this.#kv.delete(key)) return;
    this.#tombstones.set(key, index);
    this.#touchKv(key, index);
  }

  #invalidate(s: Session): void {
    if (!this.#sessions.delete(s.id)) return;
    clearTimeout(s.timer);
    const index = ++this.#index;
    const delayEnd = this.#now() + s.lockDelayNs / 1e6;
    for (const e of [...this.#kv.values()]) {
      if (e.session !== s.id) continue;
      if (s.behavior === 'delete') this.#deleteKey(e.key, index);
      else {
        e.session = '';
        e.modifyIndex = index;
        this.#touchKv(e.key, index);
      }
      if (s.lockDelayNs > 0) this.#lockDelay.set(e.key, delayEnd);
    }
  }

  #arm(s: Session): void {
    clearTimeout(s.timer);
    if (s.ttlMs <= 0) return;
    s.expiresAt = this.#now() + 2 * s.ttlMs;
    s.timer = setTimeout(() => this.reap(), 2 * s.ttlMs + 5);
    s.timer.unref();
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = url.searchParams;
    const path = decodeURIComponent(url.pathname);
    this.log.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const type = typeof payload === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
      res.writeHead(status, { 'content-type': type, 'x-consul-knownleader': 'true', 'x-consul-lastcontact': '0', ...headers });
      res.end(text);
    };
    this.reap();
    if (this.#opts.token !== undefined) {
      const given = req.headers['x-consul-token'] ?? q.get('token') ?? undefined;
      if (given !== this.#opts.token) return send(403, given === undefined ? 'Permission denied' : 'ACL not found');
    }
    const dc = q.get('dc');
    if (dc !== null && dc !== '' && dc !== DC) return send(500, `No path to datacenter`);
    try {
      if (path.startsWith('/v1/kv/')) return await this.#kvRequest(req.method ?? '', path.slice('/v1/kv/'.length), q, body, send);
      if (path.startsWith('/v1/session/')) return this.#sessionRequest(req.method ?? '', path.slice('/v1/session/'.length), body, send);
      if (path.startsWith('/v1/agent/')) return this.#agentRequest(req.method ?? '', path.slice('/v1/agent/'.length), body, send);
      send(404, `no handler for ${path} in the fake Consul`);
    } catch (err) {
      if (err instanceof HttpError) send(err.status, err.message);
      else send(400, `bad request: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #entryJson(e: Entry): Record<string, unknown> {
    const out: Record<string, unknown> = {
      LockIndex: e.lockIndex,
      Key: e.key,
      Flags: Number(e.flags),
      Value: e.value === null ? null : e.value.toString('base64'),
      CreateIndex: e.createIndex,
      ModifyIndex: e.modifyIndex,
    };
    if (e.session !== '') out.Session = e.session;
    return out;
  }

  /** The answer of a KV read now, and its index. */
  #kvRead(key: string, recurse: boolean): { entries: Entry[]; index: number } {
    const table = Math.max(this.#kvIndex, 1);
    if (!recurse) {
      const e = this.#kv.get(key);
      return e ? { entries: [e], index: e.modifyIndex } : { entries: [], index: table };
    }
    const entries = [...this.#kv.values()].filter((e) => e.key.startsWith(key)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (key === '') return { entries, index: table };
    let index = 0;
    for (const e of entries) index = Math.max(index, e.modifyIndex);
    for (const [k, i] of this.#tombstones) if (k.startsWith(key)) index = Math.max(index, i);
    return { entries, index: index === 0 ? table : index };
  }

  async #kvRequest(method: string, key: string, q: URLSearchParams, body: Buffer, send: (s: number, p: unknown, h?: Record<string, string>) => void): Promise<void> {
    const recurse = q.has('recurse');
    if (method === 'GET') {
      const min = q.has('index') ? Number(q.get('index')) : 0;
      if (!Number.isSafeInteger(min) || min < 0) return send(400, 'Invalid index');
      let read = this.#kvRead(key, recurse);
      if (min > 0 && read.index <= min) {
        let waitMs = q.has('wait') ? parseGoDuration(q.get('wait') ?? '') : 300_000;
        if (waitMs === undefined) return send(400, 'Invalid wait time');
        waitMs = Math.min(waitMs, 600_000);
        const deadline = Date.now() + waitMs + Math.random() * (waitMs / 16);
        while (read.index <= min && Date.now() < deadline) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => waiter.wake(), Math.max(0, deadline - Date.now()));
            const waiter: Waiter = {
              covers: (k) => (recurse ? k.startsWith(key) : k === key),
              wake: () => {
                clearTimeout(timer);
                this.#waiters.delete(waiter);
                resolve();
              },
            };
            this.#waiters.add(waiter);
          });
          read = this.#kvRead(key, recurse);
        }
      }
      const headers = { 'x-consul-index': String(read.index) };
      if (read.entries.length === 0) return send(404, '', headers);
      if (q.has('raw') && !recurse) return send(200, (read.entries[0] as Entry).value?.toString('utf8') ?? '', headers);
      return send(200, read.entries.map((e) => this.#entryJson(e)), headers);
    }
    if (method === 'PUT') {
      if (body.length > MAX_VALUE) return send(413, `Request body(${body.length} bytes) too large, max size: ${MAX_VALUE} bytes.`);
      return send(200, this.#kvPut(key, body.length === 0 ? null : body, q) ? 'true' : 'false');
    }
    if (method === 'DELETE') {
      if (recurse) {
        const index = ++this.#index;
        for (const k of [...this.#kv.keys()]) if (k.startsWith(key)) this.#deleteKey(k, index);
        return send(200, 'true');
      }
      if (q.has('cas')) {
        const cas = parseIndex(q.get('cas'));
        const e = this.#kv.get(key);
        if (cas === 0 || e === undefined || e.modifyIndex !== cas) return send(200, 'false');
      }
      if (this.#kv.has(key)) this.#deleteKey(key, ++this.#index);
      return send(200, 'true');
    }
    send(405, `method ${method} not allowed`);
  }

  #kvPut(key: string, value: Buffer | null, q: URLSearchParams): boolean {
    const flags = q.get('flags') ?? '0';
    if (!/^\d+$/.test(flags)) throw new Error('invalid flags');
    const cur = this.#kv.get(key);
    const write = (session: string, lockIndex: number): true => {
      const index = ++this.#index;
      this.#kv.set(key, { key, value, flags, createIndex: cur?.createIndex ?? index, modifyIndex: index, lockIndex, session });
      this.#touchKv(key, index);
      return true;
    };
    // Consul reads cas first, then acquire, then release: the last one given decides the operation.
    if (q.has('release')) {
      const s = q.get('release') ?? '';
      if (cur === undefined || cur.session !== s || s === '') return false;
      return write('', cur.lockIndex);
    }
    if (q.has('acquire')) {
      const s = q.get('acquire') ?? '';
      const delayEnd = this.#lockDelay.get(key);
      if (delayEnd !== undefined && delayEnd > this.#now()) return false;
      if (!this.#sessions.has(s)) throw new HttpError(500, `invalid session "${s}"`);
      if (cur !== undefined && cur.session !== '' && cur.session !== s) return false;
      if (cur !== undefined && cur.session === s) return write(s, cur.lockIndex);
      return write(s, (cur?.lockIndex ?? 0) + 1);
    }
    if (q.has('cas')) {
      const cas = parseIndex(q.get('cas'));
      if (cas === 0 ? cur !== undefined : cur === undefined || cur.modifyIndex !== cas) return false;
    }
    return write(cur?.session ?? '', cur?.lockIndex ?? 0);
  }

  #sessionJson(s: Session): Record<string, unknown> {
    return {
      ID: s.id, Name: s.name, Node: NODE, Checks: s.checks, NodeChecks: s.checks, ServiceChecks: null,
      LockDelay: s.lockDelayNs, Behavior: s.behavior, TTL: s.ttl, Namespace: 'default',
      CreateIndex: s.createIndex, ModifyIndex: s.createIndex,
    };
  }

  #sessionRequest(method: string, rest: string, body: Buffer, send: (s: number, p: unknown, h?: Record<string, string>) => void): void {
    const index = { 'x-consul-index': String(this.#index) };
    if (rest === 'create' && method === 'PUT') {
      // Go's JSON decoder matches field names case-insensitively.
      const raw = body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as Record<string, unknown>);
      const b = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
      const behavior = b.behavior === undefined || b.behavior === '' ? 'release' : b.behavior;
      if (behavior !== 'release' && behavior !== 'delete') return send(400, `Invalid Behavior setting '${String(behavior)}'`);
      let lockDelayNs = 15e9;
      if (b.lockdelay !== undefined) {
        const ms = typeof b.lockdelay === 'number' ? b.lockdelay / 1e6 : parseGoDuration(String(b.lockdelay));
        if (ms === undefined) return send(400, `Request decode failed: invalid LockDelay ${JSON.stringify(b.lockdelay)}`);
        // A number below one second is taken as seconds, as Consul does for bare numbers.
        lockDelayNs = Math.min(typeof b.lockdelay === 'number' && b.lockdelay < 1e9 ? b.lockdelay * 1e9 : ms * 1e6, 60e9);
      }
      const ttl = typeof b.ttl === 'string' ? b.ttl : '';
      let ttlMs = 0;
      if (ttl !== '') {
        const parsed = parseGoDuration(ttl);
        if (parsed === undefined) return send(400, `Request decode failed: invalid TTL ${JSON.stringify(ttl)}`);
        const min = this.#opts.sessionTtlMinMs ?? 10_000;
        if (parsed !== 0 && (parsed < min || parsed > 86_400_000)) {
          return send(500, `Invalid Session TTL '${Math.round(parsed * 1e6)}', must be between [${goDuration(min)}=24h0m0s]`);
        }
        ttlMs = parsed;
      }
      const checks = Array.isArray(b.checks) ? (b.checks as unknown[]).map(String) : b.checks === undefined || b.checks === null ? ['serfHealth'] : null;
      if (checks === null) return send(400, 'Request decode failed: Checks must be a list');
      for (const c of checks) {
        if (c !== 'serfHealth' && ![...this.#services.values()].some((s) => (s.Check as { CheckID?: string } | undefined)?.CheckID === c)) {
          return send(500, `Missing check '${c}' registration`);
        }
      }
      const s: Session = {
        id: randomUUID(), name: typeof b.name === 'string' ? b.name : '', checks, lockDelayNs, behavior, ttl, ttlMs,
        createIndex: ++this.#index, expiresAt: Infinity, timer: undefined,
      };
      this.#sessions.set(s.id, s);
      this.#arm(s);
      return send(200, { ID: s.id }, index);
    }
    const m = /^(renew|destroy|info)\/(.+)$/.exec(rest);
    if (m && (m[1] === 'info' ? method === 'GET' : method === 'PUT')) {
      const s = this.#sessions.get(m[2] as string);
      if (m[1] === 'destroy') {
        if (s) this.#invalidate(s);
        return send(200, 'true');
      }
      if (m[1] === 'renew') {
        if (!s) return send(404, `Session id '${m[2]}' not found`);
        this.#arm(s);
        return send(200, [this.#sessionJson(s)], index);
      }
      return send(200, s ? [this.#sessionJson(s)] : [], index);
    }
    if (rest === 'list' && method === 'GET') return send(200, [...this.#sessions.values()].map((s) => this.#sessionJson(s)), index);
    send(405, `${method} /v1/session/${rest} is not served by the fake Consul`);
  }

  #agentRequest(method: string, rest: string, body: Buffer, send: (s: number, p: unknown, h?: Record<string, string>) => void): void {
    if (rest === 'self' && method === 'GET') {
      const min = this.#opts.sessionTtlMinMs ?? 10_000;
      return send(200, {
        Config: { Datacenter: DC, NodeName: NODE, Server: true, Version: '0.0.0-vigil-fake', SessionTTLMin: min * 1e6 },
        DebugConfig: { SessionTTLMin: goDuration(min) },
        Member: { Name: NODE },
      });
    }
    if (rest === 'service/register' && method === 'PUT') {
      const raw = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const b = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
      if (typeof b.name !== 'string' || b.name === '') return send(400, 'Missing service name');
      const id = typeof b.id === 'string' && b.id !== '' ? b.id : b.name;
      const service: Record<string, unknown> = {
        ID: id, Service: b.name, Tags: b.tags ?? [], Address: b.address ?? '', Port: b.port ?? 0,
        EnableTagOverride: b.enable_tag_override ?? b.enabletagoverride ?? false,
      };
      if (b.check !== undefined && b.check !== null) {
        const check = Object.fromEntries(Object.entries(b.check as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]));
        service.Check = {
          CheckID: `service:${id}`, Name: `Service '${b.name}' check`, Status: 'critical', ServiceID: id,
          HTTP: check.http, Interval: check.interval, DeregisterCriticalServiceAfter: check.deregistercriticalserviceafter ?? check.deregister_critical_service_after,
          TLSServerName: check.tlsservername ?? check.tls_server_name,
        };
      }
      this.#services.set(id, service);
      return send(200, '');
    }
    const dereg = /^service\/deregister\/(.+)$/.exec(rest);
    if (dereg && method === 'PUT') {
      const id = dereg[1] as string;
      if (!this.#services.delete(id)) return send(404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      return send(200, '');
    }
    if (rest === 'services' && method === 'GET') {
      return send(200, Object.fromEntries([...this.#services].map(([id, s]) => [id, { ...s, Check: undefined }])));
    }
    if (rest === 'checks' && method === 'GET') {
      const checks = [...this.#services.values()].map((s) => s.Check as { CheckID: string } | undefined).filter((c) => c !== undefined);
      return send(200, Object.fromEntries(checks.map((c) => [c.CheckID, c])));
    }
    send(405, `${method} /v1/agent/${rest} is not served by the fake Consul`);
  }
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function parseIndex(text: string | null): number {
  if (text === null || !/^\d+$/.test(text)) throw new Error(`invalid index ${JSON.stringify(text)}`);
  return Number(text);
}

/** ms as Go prints a time.Duration ("10s", "1.5s", "500ms"). */
function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m${s - m * 60}s`;
}
