// etcd v2 backend (Patroni's `etcd:` section): the Dcs verbs (dcs.ts) over etcd's /v2/keys API,
// writing what Patroni's etcd backend writes (patroni-interfaces.md §1.7.2). Transport, member
// discovery and failover: etcd2-client.ts.
//
// Why the Dcs directly and not a DcsBackend under KvDcs: v2 has no leases. A key lives as long as
// its TTL and is kept alive by writing it again, which gives it a new modifiedIndex every time, and
// the store has nothing a session token could name. KvDcs's model (one lease that a keepalive
// extends, keys bound to it whose version stays when the lease is refreshed, unchanged member
// values not rewritten) would have to be faked by a client-side registry of keys to re-put. So the
// verbs map one to one to Patroni's v2 writes instead:
//   - members/<name>: PUT value with ttl=<ttl>, at every touchMember (the rewrite is the refresh);
//   - leader: acquire = PUT ttl prevExist=false; refresh = PUT ttl prevValue=<name>, and when the
//     key is gone (expired) an acquire; take = PUT ttl (unconditional); release = DELETE
//     prevValue=<name>;
//   - initialize: create with prevExist=false; writeInitialize writes it unconditionally (as the
//     Dcs contract says; Patroni's prevExist=true only differs when the key is absent);
//   - config, failover, sync: PUT (with a version: prevIndex=<version>); sync delete with prevIndex;
//   - history, status, failsafe: PUT; deleteCluster: recursive DELETE of the prefix.
// The "session" of a key, as Patroni reports it for v2, is its remaining TTL (RawKv.lease, so
// readCluster's leader.session / member.session are that number, '' for keys without TTL); the
// client's own `session` is the TTL it writes with, once it has written a TTL key. close() ends the
// "session" by deleting our leader (prevValue) and member keys; with keepLease they expire after ttl.
//
// Versions are modifiedIndex; readCluster's revision is the X-Etcd-Index of the read, and
// watchLeader waits with waitIndex = revision + 1. A refresh of the leader (same value rewritten)
// does not wake the watch; a new value, a delete and an expiry do.

import { DcsError, type CallOptions, type Dcs } from './dcs.ts';
import type { Op, RawKv } from './backend.ts';
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
import { Etcd2Client, V2, type Etcd2ClientOptions, type V2Answer, type V2Node } from './etcd2-client.ts';

export interface Etcd2Options extends Etcd2ClientOptions {
  /** Cluster prefix, e.g. /service/batman/. */
  prefix: string;
  name: string;
  /** TTL of the leader and member keys, seconds. */
  ttl: number;
  /** Deadline of each verb (all its retries), seconds. */
  retryTimeout: number;
  /** patronictl-style: quorum reads, never writes a TTL key (those verbs reject). */
  ctlMode?: boolean;
}

/** Flatten a recursive GET into RawKv (directories skipped; lease = remaining TTL, '0' for none). */
function flatten(node: V2Node | undefined, out: RawKv[]): RawKv[] {
  if (node === undefined) return out;
  if (node.dir === true || node.nodes !== undefined) {
    for (const n of node.nodes ?? []) flatten(n, out);
    return out;
  }
  if (node.key === undefined) return out;
  out.push({
    key: node.key,
    value: node.value ?? '',
    modRevision: String(node.modifiedIndex ?? 0),
    createRevision: String(node.createdIndex ?? 0),
    // A key in its last second reports an expiration but no ttl: still a TTL key.
    lease: node.ttl === undefined && node.expiration === undefined ? '0' : String(Math.max(1, node.ttl ?? 0)),
  });
  return out;
}

export class Etcd2Dcs implements Dcs {
  readonly prefix: string;
  readonly #c: Etcd2Client;
  readonly #name: string;
  readonly #ctl: boolean;
  #ttl: number;
  #retryMs: number;
  /** We wrote a TTL key (member or leader): close() deletes them unless keepLease. */
  #bound = false;
  #closed = false;
  readonly #closing = new AbortController();

  constructor(opts: Etcd2Options) {
    if (!opts.prefix.startsWith('/') || !opts.prefix.endsWith('/')) throw new Error(`etcd: prefix must start and end with '/': ${opts.prefix}`);
    this.prefix = opts.prefix;
    this.#c = new Etcd2Client(opts);
    this.#name = opts.name;
    this.#ctl = opts.ctlMode ?? false;
    this.#ttl = opts.ttl;
    this.#retryMs = opts.retryTimeout * 1000;
  }

  /** The TTL our keys are written with, once we wrote one (Patroni's v2 "session"); undefined before. */
  get session(): string | undefined {
    return this.#bound && !this.#closed ? String(this.#ttl) : undefined;
  }

  /** The etcd hosts in use now, in order of trial, and the current one. */
  endpoints(): { hosts: readonly string[]; current: string | undefined } {
    return this.#c.endpoints();
  }

  #op(opts: CallOptions | undefined): Op {
    return { signal: opts?.signal, deadline: Date.now() + this.#retryMs, budgetMs: this.#retryMs };
  }

  #key(rel: string): string {
    return this.prefix + rel;
  }

  #ttlKey(): void {
    if (this.#ctl) throw new DcsError('DCS_PROTOCOL', 'this DCS client holds no session: writes of TTL keys are refused', { retryable: false });
  }

  /** An answer other than success or the expected precondition failures is a protocol error. */
  static #fail(what: string, a: V2Answer): never {
    throw new DcsError('DCS_PROTOCOL', `etcd ${what}: HTTP ${a.status}${a.errorCode !== undefined ? ` (error ${a.errorCode})` : ''}: ${a.message ?? ''}`);
  }

  static #ok(a: V2Answer): boolean {
    return a.status >= 200 && a.status < 300;
  }

  /** PUT; true on success, false on a failed precondition (compare failed, exists, not found). */
  async #put(rel: string, value: string, params: Record<string, string>, op: Op): Promise<boolean> {
    const a = await this.#c.call('PUT', this.#key(rel), { value, ...params }, op);
    if (Etcd2Dcs.#ok(a)) return true;
    if (a.errorCode === V2.COMPARE_FAILED || a.errorCode === V2.NODE_EXISTS || a.errorCode === V2.KEY_NOT_FOUND) return false;
    return Etcd2Dcs.#fail(`PUT ${rel}`, a);
  }

  /** DELETE; true on success, false on a failed precondition (compare failed, not found). */
  async #delete(rel: string, params: Record<string, string>, op: Op): Promise<boolean> {
    const a = await this.#c.call('DELETE', this.#key(rel), params, op);
    if (Etcd2Dcs.#ok(a)) return true;
    if (a.errorCode === V2.COMPARE_FAILED || a.errorCode === V2.KEY_NOT_FOUND) return false;
    return Etcd2Dcs.#fail(`DELETE ${rel}`, a);
  }

  static #version(version: string | undefined): Record<string, string> {
    if (version === undefined) return {};
    if (!/^\d+$/.test(version)) throw new DcsError('DCS_PROTOCOL', `etcd: not a v2 index: ${JSON.stringify(version)}`, { retryable: false });
    return { prevIndex: version };
  }

  // ---- Dcs -----------------------------------------------------------------------------------

  async readCluster(opts?: CallOptions): Promise<ClusterView> {
    const a = await this.#c.call('GET', this.prefix.slice(0, -1), { recursive: 'true', ...(this.#ctl ? { quorum: 'true' } : {}) }, this.#op(opts));
    if (a.errorCode === V2.KEY_NOT_FOUND) return decodeCluster(this.prefix, [], a.index || '0');
    if (!Etcd2Dcs.#ok(a)) Etcd2Dcs.#fail('GET (cluster)', a);
    return decodeCluster(this.prefix, flatten(a.node, []), a.index || '0');
  }

  async touchMember(data: MemberData, opts?: CallOptions): Promise<void> {
    this.#ttlKey();
    this.#bound = true;
    await this.#put(`members/${this.#name}`, encodeMember(data), { ttl: String(this.#ttl) }, this.#op(opts));
  }

  async deleteMember(opts?: CallOptions): Promise<void> {
    await this.#delete(`members/${this.#name}`, {}, this.#op(opts));
  }

  async attemptInitialize(opts?: CallOptions): Promise<boolean> {
    return this.#put('initialize', '', { prevExist: 'false' }, this.#op(opts));
  }

  async writeInitialize(sysid: string, opts?: CallOptions): Promise<void> {
    await this.#put('initialize', sysid, {}, this.#op(opts));
  }

  async deleteInitialize(opts?: CallOptions): Promise<void> {
    await this.#delete('initialize', {}, this.#op(opts));
  }

  async acquireLeader(opts?: CallOptions): Promise<boolean> {
    this.#ttlKey();
    this.#bound = true;
    return this.#put('leader', this.#name, { ttl: String(this.#ttl), prevExist: 'false' }, this.#op(opts));
  }

  async takeLeader(opts?: CallOptions): Promise<void> {
    this.#ttlKey();
    this.#bound = true;
    await this.#put('leader', this.#name, { ttl: String(this.#ttl) }, this.#op(opts));
  }

  async refreshLeader(opts?: CallOptions): Promise<boolean> {
    this.#ttlKey();
    this.#bound = true;
    const op = this.#op(opts);
    const ttl = String(this.#ttl);
    const a = await this.#c.call('PUT', this.#key('leader'), { value: this.#name, ttl, prevValue: this.#name }, op);
    if (Etcd2Dcs.#ok(a)) return true;
    if (a.errorCode === V2.COMPARE_FAILED) return false;
    // Expired: take it again if nobody did meanwhile.
    if (a.errorCode === V2.KEY_NOT_FOUND) return this.#put('leader', this.#name, { ttl, prevExist: 'false' }, op);
    return Etcd2Dcs.#fail('PUT leader', a);
  }

  async releaseLeader(opts?: CallOptions): Promise<boolean> {
    return this.#delete('leader', { prevValue: this.#name }, this.#op(opts));
  }

  async writeConfig(config: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    if (unusableConfigVersion(version)) return false;
    return this.#put('config', encodeConfig(config), Etcd2Dcs.#version(version), this.#op(opts));
  }

  async writeFailover(value: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#put('failover', encodeFailover(value), Etcd2Dcs.#version(version), this.#op(opts));
  }

  async writeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }, version?: string, opts?: CallOptions): Promise<boolean> {
    return this.#put('sync', encodeSync(value), Etcd2Dcs.#version(version), this.#op(opts));
  }

  async deleteSync(version?: string, opts?: CallOptions): Promise<boolean> {
    const ok = await this.#delete('sync', Etcd2Dcs.#version(version), this.#op(opts));
    // Without a version, nothing to delete is fine.
    return ok || version === undefined;
  }

  async writeHistory(history: HistoryLine[], opts?: CallOptions): Promise<void> {
    await this.#put('history', encodeHistory(history), {}, this.#op(opts));
  }

  async writeStatus(status: LeaderStatus, opts?: CallOptions): Promise<void> {
    await this.#put('status', encodeStatus(status), {}, this.#op(opts));
  }

  async writeFailsafe(value: Record<string, string>, opts?: CallOptions): Promise<void> {
    await this.#put('failsafe', encodeFailsafe(value), {}, this.#op(opts));
  }

  async deleteCluster(opts?: CallOptions): Promise<void> {
    const a = await this.#c.call('DELETE', this.prefix.slice(0, -1), { recursive: 'true' }, this.#op(opts));
    if (!Etcd2Dcs.#ok(a) && a.errorCode !== V2.KEY_NOT_FOUND) Etcd2Dcs.#fail('DELETE (cluster)', a);
  }

  async watchLeader(revision: string, timeoutMs: number, opts?: CallOptions): Promise<void> {
    if (this.#closed || opts?.signal?.aborted) return;
    const signals = [this.#closing.signal, AbortSignal.timeout(Math.max(0, timeoutMs))];
    if (opts?.signal) signals.push(opts.signal);
    const signal = AbortSignal.any(signals);
    let waitIndex = /^\d+$/.test(revision) ? (BigInt(revision) + 1n).toString() : undefined;
    while (!signal.aborted) {
      const a = await this.#c.wait(this.#key('leader'), waitIndex, signal);
      if (a === undefined || !Etcd2Dcs.#ok(a)) return; // broken, or the index was cleared: the caller reads again
      const refresh = a.node?.value !== undefined && a.node.value === a.prevNode?.value && (a.action === 'compareAndSwap' || a.action === 'set' || a.action === 'update');
      if (!refresh || a.node?.modifiedIndex === undefined) return;
      waitIndex = String(a.node.modifiedIndex + 1);
    }
  }

  setTtl(ttlSeconds: number): void {
    this.#ttl = ttlSeconds;
  }

  setRetryTimeout(seconds: number): void {
    this.#retryMs = seconds * 1000;
  }

  /** Stop; delete our leader (if ours) and member keys, unless keepLease (they expire after ttl). */
  async close(opts?: { keepLease?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    const end = this.#bound && opts?.keepLease !== true;
    await this.#c.close(end ? () => this.#endSession() : undefined);
  }

  /** Best effort, 2 s in all. */
  async #endSession(): Promise<void> {
    const op: Op = { signal: undefined, deadline: Date.now() + 2000, budgetMs: 2000 };
    await Promise.all([
      this.#c.call('DELETE', this.#key('leader'), { prevValue: this.#name }, op),
      this.#c.call('DELETE', this.#key(`members/${this.#name}`), {}, op),
    ]).catch(() => undefined);
  }
}
