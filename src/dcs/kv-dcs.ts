// The HA verbs of the Dcs interface (dcs.ts), written once over a backend's primitive storage
// operations (backend.ts). Values are encoded and decoded by codec.ts (Patroni's layout and
// compact JSON), so every backend stores the same bytes.
//
// The session (etcd: lease) is hidden here: granted on first need; kept alive by acquireLeader,
// takeLeader and refreshLeader (always) and by touchMember (when the last keepalive is a quarter
// of the TTL old, at least a second); granted anew when the store no longer knows it or setTtl
// changed the TTL (the replaced one then ended through opts.endSession, where given, once no key
// is bound to it); ended by close() unless keepLease. A write that names a session the store lost (SessionNotFound) is
// retried once with a new session.
//
// Each verb has one budget (retryTimeout seconds from its start, plus the caller's signal) shared
// by every primitive it calls. Outcomes as in dcs.ts: false = a compare-and-set lost; DcsError =
// the store did not answer or refused.

import { DcsError, type CallOptions, type Dcs } from './dcs.ts';
import type { DcsBackend, Op } from './backend.ts';
import { SessionNotFound } from './backend.ts';
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
  unusableConfigVersion,
} from './codec.ts';

export interface KvDcsOptions {
  /** Our member name (value of the leader key, name of members/<name>). */
  name: string;
  /** Session TTL, seconds. */
  ttl: number;
  /** Deadline of each verb (all its retries), seconds. */
  retryTimeout: number;
  /** Never start a session (patronictl-style tools): session-bound writes reject with DCS_PROTOCOL. */
  noSessions?: boolean;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
  /**
   * End a session that is no longer ours (Consul: destroy). Given, a session replaced after a
   * TTL change is ended once readCluster shows no key bound to it any more (the leader and member
   * keys re-bound to the new one), never before: ending it earlier would delete the leader key it
   * still holds and open the lock to others. Without it the old session lapses on its own TTL.
   */
  endSession?: (session: string, op: Op) => Promise<void>;
}

/**
 * Minimum spacing of the keepalives touchMember makes: a quarter of the TTL, at least a second
 * (the leader verbs always keep alive). A replica's session then lives on a keepalive every
 * ttl/4 plus one loop (Patroni: every loop_wait), not one per loop (issue 12: idle DCS requests).
 */
const memberKeepaliveMs = (ttlSeconds: number): number => Math.max(1000, ttlSeconds * 250);

export class KvDcs implements Dcs {
  readonly prefix: string;
  readonly #b: DcsBackend;
  readonly #name: string;
  readonly #noSessions: boolean;
  readonly #log: KvDcsOptions['logger'];
  #ttl: number;
  #retryMs: number;
  #session: { id: string; ttl: number } | undefined;
  #lastKeepalive = 0;
  /** A session replaced after a TTL change, to end once no key is bound to it (opts.endSession). */
  #retired: string | undefined;
  readonly #endSession: KvDcsOptions['endSession'];
  /** Last member value successfully written, and the session it was bound to. */
  #member: { value: string; session: string } | undefined;
  #closed = false;

  constructor(backend: DcsBackend, opts: KvDcsOptions) {
    this.#b = backend;
    this.prefix = backend.prefix;
    this.#name = opts.name;
    this.#noSessions = opts.noSessions ?? false;
    this.#log = opts.logger;
    this.#endSession = opts.endSession;
    this.#ttl = opts.ttl;
    this.#retryMs = opts.retryTimeout * 1000;
  }

  /** Our member name. */
  get name(): string {
    return this.#name;
  }

  /** The session (etcd lease ID) held now; undefined before the first grant and after close. */
  get session(): string | undefined {
    return this.#session?.id;
  }

  #op(opts: CallOptions | undefined): Op {
    return { signal: opts?.signal, deadline: this.#b.now() + this.#retryMs, budgetMs: this.#retryMs };
  }

  // ---- session -------------------------------------------------------------------------------

  async #grant(op: Op): Promise<string> {
    if (this.#noSessions) throw new DcsError('DCS_PROTOCOL', 'this DCS client holds no session (lease): session-bound writes are refused', { retryable: false });
    const ttl = this.#ttl;
    const id = await this.#b.grantSession(ttl, op);
    this.#session = { id, ttl };
    this.#lastKeepalive = this.#b.now();
    this.#log?.debug?.({ session: id, ttl }, 'DCS session granted');
    return id;
  }

  /** Our session, after a keepalive when `force` or the last one is memberKeepaliveMs old; granted when needed. */
  async #keepalive(force: boolean, op: Op): Promise<string> {
    const s = this.#session;
    if (!s) return this.#grant(op);
    if (s.ttl !== this.#ttl) {
      const id = await this.#grant(op);
      if (this.#endSession !== undefined) this.#retired = s.id;
      return id;
    }
    if (!force && this.#b.now() - this.#lastKeepalive < memberKeepaliveMs(s.ttl)) return s.id;
    const alive = await this.#b.keepAlive(s.id, op).catch((err: unknown) => {
      if (err instanceof SessionNotFound) return false;
      throw err;
    });
    if (!alive) {
      this.#log?.warn({ session: s.id }, 'DCS session expired or revoked; granting a new one');
      this.#session = undefined;
      return this.#grant(op);
    }
    this.#lastKeepalive = this.#b.now();
    return s.id;
  }

  /** Run `fn` with our session; if the store no longer knows it, once more with a new one. */
  async #withSession<T>(op: Op, force: boolean, fn: (session: string) => Promise<T>): Promise<T> {
    const id = await this.#keepalive(force, op);
    try {
      return await fn(id);
    } catch (err) {
      if (!(err instanceof SessionNotFound)) throw err;
      this.#session = undefined;
      return fn(await this.#grant(op));
    }
  }

  // ---- Dcs -----------------------------------------------------------------------------------

  /**
   * Besides decoding, two checks of what the store holds against what this client believes:
   * - our member key deleted or overwritten (by an operator or another tool) forgets the cached
   *   copy, so the next touchMember writes it again, bound to our session (otherwise it stayed
   *   missing, or lost its expiry, until our own data changed);
   * - a leader key bound to our session that does not carry our name (written by someone else with
   *   our lease) would hold the lock for as long as we live, with no member able to lead: it is
   *   deleted (compare-and-set on its version) and the view is returned without it.
   */
  async readCluster(opts?: CallOptions): Promise<ClusterView> {
    const op = this.#op(opts);
    const { kvs, revision } = await this.#b.readTree(op);
    await this.#endRetired(kvs, op);
    const mine = kvs.find((kv) => kv.key === `${this.prefix}members/${this.#name}`);
    const cached = this.#member;
    if (cached !== undefined && (mine === undefined || mine.value !== cached.value || mine.lease !== cached.session)) this.#member = undefined;
    const session = this.#session?.id;
    const leader = kvs.find((kv) => kv.key === `${this.prefix}leader`);
    if (session !== undefined && leader !== undefined && leader.lease === session && leader.value !== this.#name) {
      const deleted = await this.#b.delete('leader', leader.modRevision, op).catch(() => false);
      if (deleted) {
        this.#log?.warn({ value: leader.value }, `deleted a leader key bound to this member's session that named ${JSON.stringify(leader.value)}, not ${JSON.stringify(this.#name)}`);
        return decodeCluster(this.prefix, kvs.filter((kv) => kv !== leader), revision);
      }
    }
    return decodeCluster(this.prefix, kvs, revision);
  }

  /** Ends the retired session once no key read is bound to it (best effort: it lapses anyway). */
  async #endRetired(kvs: readonly { lease: string }[], op: Op): Promise<void> {
    const old = this.#retired;
    if (old === undefined || this.#endSession === undefined) return;
    if (old === this.#session?.id || kvs.some((kv) => kv.lease === old)) return;
    this.#retired = undefined;
    await this.#endSession(old, op).catch((err: unknown) => this.#log?.debug?.({ session: old, err: String(err) }, 'could not end the replaced DCS session; it lapses on its TTL'));
    this.#log?.debug?.({ session: old }, 'replaced DCS session ended');
  }

  async touchMember(data: MemberData, opts?: CallOptions): Promise<void> {
    const value = encodeMember(data);
    const op = this.#op(opts);
    await this.#withSession(op, false, async (session) => {
      if (this.#member?.value === value && this.#member.session === session) return;
      this.#member = undefined;
      await this.#b.put(`members/${this.#name}`, value, { session }, op);
      this.#member = { value, session };
    });
  }

  async deleteMember(opts?: CallOptions): Promise<void> {
    this.#member = undefined;
    await this.#b.delete(`members/${this.#name}`, undefined, this.#op(opts));
  }

  attemptInitialize(opts?: CallOptions): Promise<boolean> {
    return this.#b.create('initialize', '', undefined, this.#op(opts));
  }

  async writeInitialize(sysid: string, opts?: CallOptions): Promise<void> {
    await this.#b.put('initialize', sysid, {}, this.#op(opts));
  }

  async deleteInitialize(opts?: CallOptions): Promise<void> {
    await this.#b.delete('initialize', undefined, this.#op(opts));
  }

  acquireLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    return this.#withSession(op, true, (session) => this.#b.create('leader', this.#name, session, op));
  }

  async takeLeader(opts?: CallOptions): Promise<void> {
    const op = this.#op(opts);
    await this.#withSession(op, true, (session) => this.#b.put('leader', this.#name, { session }, op));
  }

  refreshLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    return this.#withSession(op, true, async (session) => {
      const cur = await this.#b.get('leader', op);
      // Ours and bound to our session: the keepalive was the refresh. The key is not rewritten, so
      // its version stays and watchers are not woken.
      if (cur !== undefined && cur.value === this.#name && cur.lease === session) return true;
      if (cur !== undefined && cur.value !== this.#name) return false;
      // Ours on another (or no) session: re-bind it; gone: re-create it. A concurrent change wins.
      if (cur !== undefined) return this.#b.put('leader', this.#name, { version: cur.modRevision, session }, op);
      return this.#b.create('leader', this.#name, session, op);
    });
  }

  keepLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    return this.#withSession(op, true, async (session) => {
      const cur = await this.#b.get('leader', op);
      return cur !== undefined && cur.value === this.#name && cur.lease === session;
    });
  }

  offersTakeOver(): boolean {
    return this.#b.takeOver !== undefined && this.#b.sessionTimeToLive !== undefined;
  }

  leaseTimeToLive(session: string, opts?: CallOptions): Promise<{ remaining: number; granted: number } | undefined> {
    if (this.#b.sessionTimeToLive === undefined) return Promise.reject(new DcsError('DCS_PROTOCOL', 'this DCS does not report a lease\'s time to live', { retryable: false }));
    return this.#b.sessionTimeToLive(session, this.#op(opts));
  }

  takeOverLeader(
    expect: { leaderVersion: string; leaderSession: string; syncVersion: string },
    sync: { leader: string; quorum: number | null; sync_standby: string | null },
    opts?: CallOptions,
  ): Promise<boolean> {
    const take = this.#b.takeOver?.bind(this.#b);
    if (take === undefined) return Promise.reject(new DcsError('DCS_PROTOCOL', 'this DCS offers no multi-key transaction for a take-over', { retryable: false }));
    const op = this.#op(opts);
    return this.#withSession(op, true, (session) => take(expect, this.#name, session, encodeSync(sync), op));
  }

  async releaseLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    const cur = await this.#b.get('leader', op);
    if (cur === undefined || cur.value !== this.#name) return false;
    return this.#b.delete('leader', cur.modRevision, op);
  }

  writeConfig(config: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    if (unusableConfigVersion(version)) return Promise.resolve(false);
    return this.#b.put('config', encodeConfig(config), { version }, this.#op(opts));
  }

  writeFailover(value: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#b.put('failover', encodeFailover(value), { version }, this.#op(opts));
  }

  writeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#b.put('sync', encodeSync(value), { version }, this.#op(opts));
  }

  deleteSync(version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#b.delete('sync', version, this.#op(opts));
  }

  async writeHistory(history: HistoryLine[], opts?: CallOptions): Promise<void> {
    await this.#b.put('history', encodeHistory(history), {}, this.#op(opts));
  }

  async writeStatus(status: LeaderStatus, opts?: CallOptions): Promise<void> {
    await this.#b.put('status', encodeStatus(status), {}, this.#op(opts));
  }

  async writeFailsafe(value: Record<string, string>, opts?: CallOptions): Promise<void> {
    await this.#b.put('failsafe', encodeFailsafe(value), {}, this.#op(opts));
  }

  async deleteCluster(opts?: CallOptions): Promise<void> {
    this.#member = undefined;
    await this.#b.deleteTree(this.#op(opts));
  }

  async watchLeader(revision: string, timeoutMs: number, opts?: CallOptions): Promise<void> {
    if (this.#closed || opts?.signal?.aborted) return;
    await this.#b.watch('leader', revision, timeoutMs, opts?.signal);
  }

  setTtl(ttlSeconds: number): void {
    this.#ttl = ttlSeconds;
  }

  setRetryTimeout(seconds: number): void {
    this.#retryMs = seconds * 1000;
  }

  /** Stop; end the session (its keys vanish at once) unless keepLease. Idempotent. */
  async close(opts?: { keepLease?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    this.#member = undefined;
    await this.#b.close(opts?.keepLease === true ? undefined : session?.id);
  }
}
