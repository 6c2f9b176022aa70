// ZooKeeper backend (backend.ts) over our own client (zookeeper-client.ts), laid out as Patroni
// lays it out (patroni-interfaces.md §1.7.4): one znode per key under /<namespace>/<scope>/ (the
// prefix without its trailing '/'), values as UTF-8 data, parents created as needed, persistent
// except `leader` and `members/<name>`, which are ephemeral znodes of the client's session.
// ZookeeperDcs is the shared HA verbs (kv-dcs.ts) over it.
//
// Mapping onto DcsBackend:
// - Session: the client's ZooKeeper session, timeout = ttl seconds (as Patroni). Its token is the
//   session id in decimal, which is what a znode's ephemeralOwner reads (the RawKv `lease`; '0'
//   for a persistent znode). grantSession reuses the live session when its requested timeout is
//   the ttl asked for, else closes it (its ephemerals vanish, as Patroni does on a ttl change) and
//   starts one. keepAlive is a round trip on the live session; false when the session is no
//   longer the live one (the server expired it, or our own timer did while we were cut off: see
//   zookeeper-client.ts). A write naming a session that is not the live one: SessionNotFound.
// - Versions: the znode's mzxid (decimal), unique per modification, never 0 for an existing
//   znode (Patroni also uses mzxid as the config's modify version, and 0 means "invalid config").
//   A compare-and-set reads the znode's Stat, compares mzxid, and writes with the Stat's
//   dataVersion, so a change in between still fails (BadVersion) and a deleted-and-recreated znode
//   never matches an old version.
// - readTree: getChildren of the cluster znode and of members/, then getData of each child,
//   pipelined on the one connection (the server answers a session's requests in order). Not an
//   atomic snapshot, as with Patroni's ZooKeeper loader: a key changed between the reads is seen
//   either way, a key deleted meanwhile is left out. The revision is the zxid the server had
//   reached at the first read, so watch() wakes for any change not covered by the read. The
//   reads are made with watches and kept (zookeeper-cache.ts): while the connection holds, a
//   read is one request (an exists whose reply orders after every watch event of what changed)
//   plus a new read of what a watch reported changed; that file says why this is as fresh as
//   reading everything again.
// - watch('leader', revision): while that cache is valid, waits for its watch events on the
//   leader znode and the cluster's children (returns at once when one came, or a later read saw
//   them change, after the revision). Otherwise exists(leader) with a watch; returns at once when
//   the leader znode's mzxid, or the cluster znode's pzxid (children created or deleted), is past
//   the revision; otherwise waits for the watch event. A dropped connection wakes it (spuriously).
// - sync is never deleted: "delete" sets it to {} (as Patroni does on ZooKeeper), and readTree
//   leaves a {} sync key out, which is what Patroni makes of it (an empty sync state).
// - deleteTree deletes the cluster znode and everything under it (patronictl remove).
// - releaseLeader (kv-dcs.ts) deletes the leader znode by version; Patroni instead closes and
//   reopens its session, which also removes its member znode until the next cycle.

import { DcsError } from './dcs.ts';
import { SessionNotFound, type DcsBackend, type Op, type RawKv } from './backend.ts';
import { KvDcs } from './kv-dcs.ts';
import { EPHEMERAL, Err, OPEN_ACL, Op as Code, Writer, type Acl, type Stat } from './zookeeper-jute.ts';
import { ZkClient, type ZkClientOptions } from './zookeeper-client.ts';
import { ZkAborted, ZkClosed, ZkError, ZkSessionLost, ZkTimeout } from './zookeeper-errors.ts';
import { TreeCache, type TreeReads, type ZNode } from './zookeeper-cache.ts';

export interface ZookeeperOptions {
  hosts: string[];
  /** Cluster prefix, e.g. /service/batman/. */
  prefix: string;
  name: string;
  ttl: number;
  retryTimeout: number;
  /** ACL of the znodes we create (set_acls); world:anyone ALL when undefined. */
  acl?: Acl[] | undefined;
  auth?: { scheme: string; credential: string }[] | undefined;
  tls?: ZkClientOptions['tls'];
  /** patronictl-style: never binds keys to the session. */
  ctlMode?: boolean;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}

/** The value Patroni writes to the sync znode instead of deleting it. */
const EMPTY_SYNC = '{}';

const isZk = (err: unknown, code: number): boolean => err instanceof ZkError && err.code === code;

export class ZookeeperBackend implements DcsBackend {
  readonly prefix: string;
  readonly #base: string;
  readonly #zk: ZkClient;
  readonly #acl: Acl[];
  readonly #hosts: string;
  readonly #cache: TreeCache;

  constructor(opts: ZookeeperOptions) {
    this.prefix = opts.prefix;
    this.#base = opts.prefix.replace(/\/+$/, '');
    this.#acl = opts.acl ?? OPEN_ACL;
    this.#hosts = opts.hosts.join(',');
    this.#zk = new ZkClient({
      hosts: opts.hosts,
      sessionTimeoutMs: opts.ttl * 1000,
      // As Patroni: notice a dead server well before the session ends (it uses loop_wait - 2 s,
      // at least 2 s), and try each server for half the retry timeout (at least 1 s).
      readTimeoutMs: Math.max(2000, opts.retryTimeout * 1000),
      connectTimeoutMs: Math.max(1000, (opts.retryTimeout * 1000) / 2),
      tls: opts.tls,
      auth: opts.auth ?? [],
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    });
    this.#cache = new TreeCache(this.#base);
    this.#zk.onEvent((e) => this.#cache.onEvent(e));
  }

  now(): number {
    return Date.now();
  }

  #path(rel: string): string {
    return rel === '' ? this.#base || '/' : `${this.#base}/${rel}`;
  }

  /** One request, errors mapped to DcsError; ZkError codes the caller handles pass through. */
  async #call(type: number, body: Writer, op: Op, what: string, opts: { session?: bigint; pass?: number[]; idempotent?: boolean } = {}): Promise<{ zxid: bigint; body: import('./zookeeper-jute.ts').Reader }> {
    for (;;) {
      try {
        return await this.#zk.call(type, body, op, opts.session);
      } catch (err) {
        if (err instanceof ZkError && opts.pass?.includes(err.code)) throw err;
        if (err instanceof ZkClosed) throw new DcsError('DCS_UNAVAILABLE', 'ZooKeeper client closed', { retryable: false });
        if (err instanceof ZkAborted) throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper ${what}: aborted by caller`, { retryable: false });
        if (err instanceof ZkSessionLost) throw new SessionNotFound(`ZooKeeper: ${err.message}`);
        if (err instanceof ZkTimeout) throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper (${this.#hosts}) did not answer ${what} within ${op.budgetMs / 1000}s: ${err.message}`, { cause: err });
        if (err instanceof ZkError) {
          if (err.code === Err.connectionLoss) {
            if (opts.idempotent === true && Date.now() < op.deadline) continue;
            throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper ${what}: connection lost with the request in flight`, { cause: err });
          }
          if (err.code === Err.sessionExpired || err.code === Err.sessionMoved) throw new SessionNotFound(`ZooKeeper ${what}: session expired`);
          if (err.code === Err.noAuth || err.code === Err.authFailed || err.code === Err.invalidAcl) {
            throw new DcsError('DCS_AUTH', `ZooKeeper ${what}: not allowed (error ${err.code})`);
          }
          throw new DcsError('DCS_PROTOCOL', `ZooKeeper ${what}: error ${err.code}`);
        }
        throw new DcsError('DCS_PROTOCOL', `ZooKeeper ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
  }

  async #exists(path: string, op: Op, watch = false): Promise<Stat | undefined> {
    try {
      return (await this.#call(Code.exists, new Writer().string(path).bool(watch), op, `exists ${path}`, { pass: [Err.noNode], idempotent: true })).body.stat();
    } catch (err) {
      if (isZk(err, Err.noNode)) return undefined;
      throw err;
    }
  }

  async #getData(path: string, op: Op, watch = false): Promise<ZNode | undefined> {
    try {
      const { body } = await this.#call(Code.getData, new Writer().string(path).bool(watch), op, `get ${path}`, { pass: [Err.noNode], idempotent: true });
      const data = body.buffer();
      return { data: data === null ? '' : data.toString('utf8'), stat: body.stat() };
    } catch (err) {
      if (isZk(err, Err.noNode)) return undefined;
      throw err;
    }
  }

  /** getData with a watch; an absent znode gets an exists watch instead (it fires on creation). */
  async #watchedData(path: string, op: Op): Promise<ZNode | undefined> {
    const r = await this.#getData(path, op, true);
    if (r !== undefined) return r;
    if ((await this.#exists(path, op, true)) === undefined) return undefined;
    // Created in between: read it (its data watch is set by now; a deletion since fires it).
    return this.#getData(path, op, true);
  }

  async #children(path: string, op: Op, watch = false): Promise<{ names: string[]; zxid: bigint }> {
    try {
      const r = await this.#call(Code.getChildren, new Writer().string(path).bool(watch), op, `list ${path}`, { pass: [Err.noNode], idempotent: true });
      return { names: r.body.strings(), zxid: r.zxid };
    } catch (err) {
      if (isZk(err, Err.noNode)) return { names: [], zxid: -1n };
      throw err;
    }
  }

  /** Create `path`; its missing parents are created first (persistent, empty). */
  async #create(path: string, value: string, ephemeral: boolean, op: Op, session?: bigint): Promise<void> {
    const body = (): Writer => new Writer().string(path).buffer(Buffer.from(value, 'utf8')).acls(this.#acl).int(ephemeral ? EPHEMERAL : 0);
    const opts = { pass: [Err.noNode, Err.nodeExists], ...(session === undefined ? {} : { session }) };
    try {
      await this.#call(Code.create, body(), op, `create ${path}`, opts);
    } catch (err) {
      if (!isZk(err, Err.noNode)) throw err;
      await this.#ensure(path.slice(0, path.lastIndexOf('/')), op);
      await this.#call(Code.create, body(), op, `create ${path}`, opts);
    }
  }

  async #ensure(path: string, op: Op): Promise<void> {
    if (path === '') return;
    try {
      await this.#create(path, '', false, op);
    } catch (err) {
      if (!isZk(err, Err.nodeExists)) throw err;
    }
  }

  #kv(rel: string, data: string, stat: Stat): RawKv {
    return { key: this.prefix + rel, value: data, modRevision: stat.mzxid.toString(), createRevision: stat.czxid.toString(), lease: stat.ephemeralOwner.toString() };
  }

  #session(session: string): bigint {
    if (!/^\d+$/.test(session)) throw new SessionNotFound(`ZooKeeper: ${session} is not a session id`);
    return BigInt(session);
  }

  #version(version: string): bigint {
    if (!/^\d{1,19}$/.test(version)) throw new DcsError('DCS_PROTOCOL', `ZooKeeper: ${JSON.stringify(version)} is not a znode version (mzxid)`, { retryable: false });
    return BigInt(version);
  }

  /** The znode's dataVersion if its mzxid is still `version`; undefined if changed or absent. */
  async #matching(path: string, version: string, op: Op): Promise<number | undefined> {
    const want = this.#version(version);
    const st = await this.#exists(path, op);
    return st !== undefined && st.mzxid === want ? st.version : undefined;
  }

  // ---- primitives (backend.ts) ----------------------------------------------------------------

  async readTree(op: Op): Promise<{ kvs: RawKv[]; revision: string }> {
    const reads: TreeReads = {
      check: async () => {
        try {
          return (await this.#call(Code.exists, new Writer().string(this.#path('')).bool(false), op, 'check', { pass: [Err.noNode], idempotent: true })).zxid;
        } catch (err) {
          if (isZk(err, Err.noNode)) return undefined;
          throw err;
        }
      },
      children: async (path, watch) => {
        const r = await this.#children(path, op, watch);
        return r.zxid < 0n ? undefined : r;
      },
      data: (path, watch) => (watch ? this.#watchedData(path, op) : this.#getData(path, op)),
    };
    const { nodes, revision } = await this.#cache.read(reads);
    const kvs: RawKv[] = [];
    for (const [rel, r] of nodes) {
      // A znode that only holds others (e.g. a Citus group level) is not a key.
      if (r.data === '' && r.stat.numChildren > 0) continue;
      // An emptied sync key ({}: Patroni's delete on ZooKeeper) reads as no sync state, as in Patroni.
      if (rel === 'sync' && r.data === EMPTY_SYNC) continue;
      kvs.push(this.#kv(rel, r.data, r.stat));
    }
    return { kvs, revision: (revision >= 0n ? revision : 0n).toString() };
  }

  async get(rel: string, op: Op): Promise<RawKv | undefined> {
    const r = await this.#getData(this.#path(rel), op);
    return r === undefined ? undefined : this.#kv(rel, r.data, r.stat);
  }

  async create(rel: string, value: string, session: string | undefined, op: Op): Promise<boolean> {
    const s = session === undefined ? undefined : this.#session(session);
    try {
      await this.#create(this.#path(rel), value, s !== undefined, op, s);
      return true;
    } catch (err) {
      if (isZk(err, Err.nodeExists)) return false;
      throw err;
    }
  }

  async put(rel: string, value: string, opts: { version?: string | undefined; session?: string | undefined }, op: Op): Promise<boolean> {
    const path = this.#path(rel);
    if (opts.session !== undefined) return this.#putEphemeral(path, value, this.#session(opts.session), opts.version, op);
    const data = Buffer.from(value, 'utf8');
    for (let attempt = 0; attempt < 5; attempt++) {
      let dataVersion = -1;
      if (opts.version !== undefined) {
        const v = await this.#matching(path, opts.version, op);
        if (v === undefined) return false;
        dataVersion = v;
      }
      try {
        await this.#call(Code.setData, new Writer().string(path).buffer(data).int(dataVersion), op, `set ${path}`, { pass: [Err.noNode, Err.badVersion] });
        return true;
      } catch (err) {
        if (isZk(err, Err.badVersion)) return false;
        if (!isZk(err, Err.noNode)) throw err;
        if (opts.version !== undefined) return false;
      }
      try {
        await this.#create(path, value, false, op);
        return true;
      } catch (err) {
        if (!isZk(err, Err.nodeExists)) throw err; // created meanwhile: set it
      }
    }
    throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper: ${path} kept changing while being written`);
  }

  /**
   * An ephemeral znode of `session`: set when it already is one, else (absent, persistent, or of
   * another session) deleted and created ephemeral. With `version`, only if its mzxid is that.
   */
  async #putEphemeral(path: string, value: string, session: bigint, version: string | undefined, op: Op): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const st = await this.#exists(path, op);
      if (version !== undefined && (st === undefined || st.mzxid !== this.#version(version))) return false;
      try {
        if (st !== undefined && st.ephemeralOwner === session) {
          await this.#call(Code.setData, new Writer().string(path).buffer(Buffer.from(value, 'utf8')).int(st.version), op, `set ${path}`, { session, pass: [Err.noNode, Err.badVersion] });
          return true;
        }
        if (st !== undefined) await this.#call(Code.delete, new Writer().string(path).int(st.version), op, `delete ${path}`, { session, pass: [Err.noNode, Err.badVersion] });
        await this.#create(path, value, true, op, session);
        return true;
      } catch (err) {
        if (!(isZk(err, Err.noNode) || isZk(err, Err.badVersion) || isZk(err, Err.nodeExists))) throw err;
        if (version !== undefined) return false; // changed under us: the compare-and-set lost
      }
    }
    throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper: ${path} kept changing while being written`);
  }

  async delete(rel: string, version: string | undefined, op: Op): Promise<boolean> {
    const path = this.#path(rel);
    if (rel === 'sync') return this.#emptySync(path, version, op);
    let dataVersion = -1;
    if (version !== undefined) {
      const v = await this.#matching(path, version, op);
      if (v === undefined) return false;
      dataVersion = v;
    }
    try {
      await this.#call(Code.delete, new Writer().string(path).int(dataVersion), op, `delete ${path}`, { pass: [Err.noNode, Err.badVersion] });
      return true;
    } catch (err) {
      if (isZk(err, Err.noNode)) return version === undefined;
      if (isZk(err, Err.badVersion)) return false;
      throw err;
    }
  }

  /**
   * Patroni's "delete" of the sync key on ZooKeeper: set it to {} (by version when given); an
   * absent key is left absent.
   */
  async #emptySync(path: string, version: string | undefined, op: Op): Promise<boolean> {
    let dataVersion = -1;
    if (version !== undefined) {
      const v = await this.#matching(path, version, op);
      if (v === undefined) return false;
      dataVersion = v;
    }
    try {
      await this.#call(Code.setData, new Writer().string(path).buffer(Buffer.from(EMPTY_SYNC)).int(dataVersion), op, `set ${path}`, { pass: [Err.noNode, Err.badVersion] });
      return true;
    } catch (err) {
      if (isZk(err, Err.noNode)) return version === undefined;
      if (isZk(err, Err.badVersion)) return false;
      throw err;
    }
  }

  async deleteTree(op: Op): Promise<void> {
    const remove = async (path: string): Promise<void> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const { names } = await this.#children(path, op);
        await Promise.all(names.map((n) => remove(`${path === '/' ? '' : path}/${n}`)));
        if (path === '/') return;
        try {
          await this.#call(Code.delete, new Writer().string(path).int(-1), op, `delete ${path}`, { pass: [Err.noNode, Err.notEmpty] });
          return;
        } catch (err) {
          if (isZk(err, Err.noNode)) return;
          if (!isZk(err, Err.notEmpty)) throw err; // a child appeared: once more
        }
      }
      throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper: ${path} kept gaining children while being deleted`);
    };
    await remove(this.#path(''));
  }

  async grantSession(ttlSeconds: number, op: Op): Promise<string> {
    const ms = ttlSeconds * 1000;
    try {
      if (this.#zk.requestedTimeoutMs === ms) return (await this.#zk.ready(op)).toString();
      return (await this.#zk.newSession(ms, op)).toString();
    } catch (err) {
      if (err instanceof ZkClosed) throw new DcsError('DCS_UNAVAILABLE', 'ZooKeeper client closed', { retryable: false });
      if (err instanceof ZkAborted) throw new DcsError('DCS_UNAVAILABLE', 'ZooKeeper session: aborted by caller', { retryable: false });
      throw new DcsError('DCS_UNAVAILABLE', `ZooKeeper (${this.#hosts}): no session within ${op.budgetMs / 1000}s`, { cause: err });
    }
  }

  async keepAlive(session: string, op: Op): Promise<boolean> {
    const s = this.#session(session);
    if (this.#zk.sessionId !== s) {
      if (this.#zk.closed) throw new DcsError('DCS_UNAVAILABLE', 'ZooKeeper client closed', { retryable: false });
      return false;
    }
    try {
      await this.#call(Code.exists, new Writer().string(this.#path('')).bool(false), op, 'keepalive', { session: s, pass: [Err.noNode], idempotent: true });
    } catch (err) {
      if (err instanceof SessionNotFound) return false;
      if (!isZk(err, Err.noNode)) throw err;
    }
    return this.#zk.sessionId === s;
  }

  async watch(rel: string, revision: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#zk.closed || signal?.aborted) return;
    if (rel === 'leader') {
      const state = this.#cache.leaderState(/^\d+$/.test(revision) ? BigInt(revision) : undefined);
      if (state === 'changed') return;
      if (state === 'armed') return this.#waitCached(timeoutMs, signal);
    }
    const path = this.#path(rel);
    const op: Op = { signal, deadline: Date.now() + timeoutMs, budgetMs: timeoutMs };
    let unregister: () => void = () => undefined;
    const fired = new Promise<void>((resolve) => {
      unregister = this.#zk.onWatch(path, resolve);
    });
    try {
      const st = await this.#exists(path, op, true);
      if (/^\d+$/.test(revision)) {
        const rev = BigInt(revision);
        if (st !== undefined && st.mzxid > rev) return;
        const parent = await this.#exists(this.#path(''), op);
        if (parent !== undefined && parent.pzxid > rev) return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, op.deadline - Date.now()));
        signal?.addEventListener('abort', done, { once: true });
        void fired.then(done);
        function done(): void {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
      });
    } catch {
      // never rejects: the caller's next read reports the problem
    } finally {
      unregister();
    }
  }

  /** The leader watch on the cache's own watches (no request): an event, the timeout or the signal. */
  async #waitCached(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const w = this.#cache.waitLeader();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      void w.done.then(done);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        w.cancel();
        resolve();
      }
    });
  }

  async close(revoke: string | undefined): Promise<void> {
    await this.#zk.close(revoke !== undefined && this.#zk.sessionId?.toString() === revoke);
  }
}

/** The Dcs over ZooKeeper: the shared HA verbs (kv-dcs.ts) on a ZookeeperBackend. */
export class ZookeeperDcs extends KvDcs {
  constructor(opts: ZookeeperOptions) {
    super(new ZookeeperBackend(opts), {
      name: opts.name,
      ttl: opts.ttl,
      retryTimeout: opts.retryTimeout,
      noSessions: opts.ctlMode ?? false,
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    });
  }
}
