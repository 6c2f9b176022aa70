// What a DCS backend implements: primitive storage operations on the keys of one cluster. The HA
// verbs of the Dcs interface (dcs.ts) are written once over these, in kv-dcs.ts; a backend (etcd3
// today; ZooKeeper, etcd v2, Consul, Kubernetes later) only maps them to its store.
//
// Keys are relative to the backend's prefix ('leader', 'members/a'). Values are text, already
// encoded by codec.ts (Patroni's compact JSON). Versions are the backend's opaque modification
// tokens (etcd: mod_revision as a decimal string); sessions are its opaque liveness tokens (etcd: a
// lease ID), and a key written with a session vanishes when that session ends.
//
// Failure contract of every operation, as in dcs.ts: a failed precondition (key exists, version
// changed) resolves false; a store that did not answer within op.deadline, or refused, rejects with
// DcsError('DCS_UNAVAILABLE'); a write naming a session the store no longer knows rejects with
// SessionNotFound (the verbs then start a new session and retry once); other refusals are
// DcsError('DCS_PROTOCOL') or DcsError('DCS_AUTH'). After close() every operation rejects with
// DcsError('DCS_UNAVAILABLE', not retryable).

import { DcsError } from './dcs.ts';
import type { RawKv } from './codec.ts';

export type { RawKv } from './codec.ts';

/** The budget of one HA verb, shared by every primitive it calls. */
export interface Op {
  signal: AbortSignal | undefined;
  /** End of all attempts, on the backend's clock (now()), ms. */
  deadline: number;
  /** The retry timeout the deadline came from, ms (for pacing attempts and error messages). */
  budgetMs: number;
}

/** The store does not know the session a write named (expired or revoked). */
export class SessionNotFound extends DcsError {
  constructor(message = 'session (lease) not found') {
    super('DCS_PROTOCOL', message, { retryable: false });
    this.name = 'SessionNotFound';
  }
}

export interface DcsBackend {
  /** Absolute key prefix of the cluster, starting and ending with '/'. */
  readonly prefix: string;

  /** The clock deadlines and keepalive spacing are measured on, ms (Date.now for real stores). */
  now(): number;

  /** Every key under the prefix in one consistent read (RawKv keys are absolute), and its revision. */
  readTree(op: Op): Promise<{ kvs: RawKv[]; revision: string }>;
  /** One key, or undefined when absent. */
  get(rel: string, op: Op): Promise<RawKv | undefined>;
  /** Create the key only if absent, bound to `session` when given. false: it exists. */
  create(rel: string, value: string, session: string | undefined, op: Op): Promise<boolean>;
  /**
   * Write the key, bound to `session` when given (unbound otherwise). With `version`: only if the
   * key's version is still that one (false otherwise); without: unconditionally (true).
   */
  put(rel: string, value: string, opts: { version?: string | undefined; session?: string | undefined }, op: Op): Promise<boolean>;
  /** Delete the key; with `version` only if its version is still that one (false otherwise). */
  delete(rel: string, version: string | undefined, op: Op): Promise<boolean>;
  /** Delete every key under the prefix. */
  deleteTree(op: Op): Promise<void>;

  /** Start a session that ends `ttlSeconds` after its last keepalive; its token. */
  grantSession(ttlSeconds: number, op: Op): Promise<string>;
  /** Extend the session. false: the store no longer knows it (expired or revoked). */
  keepAlive(session: string, op: Op): Promise<boolean>;

  /**
   * Optional (issue 13, docs/guarantees.md 7.2 step 2): the seconds left on a session and the TTL
   * it was granted with, as the store counts them; undefined when it does not know the session.
   */
  sessionTimeToLive?(session: string, op: Op): Promise<{ remaining: number; granted: number } | undefined>;
  /**
   * Optional (issue 13, 7.2 step 5): one atomic transaction. If `leader` has version
   * `expect.leaderVersion` and is bound to `expect.leaderSession`, and `sync` has version
   * `expect.syncVersion`, put `leader` = `leaderValue` bound to `session` and `sync` = `syncValue`;
   * otherwise write nothing and resolve false.
   */
  takeOver?(
    expect: { leaderVersion: string; leaderSession: string; syncVersion: string },
    leaderValue: string,
    session: string,
    syncValue: string,
    op: Op,
  ): Promise<boolean>;

  /**
   * Resolve when the key changes (written, deleted, re-bound) after `revision` (a readTree
   * revision; anything else: after now), or `timeoutMs` passes, or `signal` aborts. Never rejects.
   */
  watch(rel: string, revision: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void>;

  /**
   * Abort everything in flight and release resources; then every operation rejects. With
   * `revoke`, end that session first (best effort, bounded), so its keys vanish at once.
   * Idempotent.
   */
  close(revoke: string | undefined): Promise<void>;
}
