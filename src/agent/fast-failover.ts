// The shell of the fast failover in synchronous modes (issue 13; docs/guarantees.md section 7.2):
// the facts a /sync standby gathers between ticks (the leader's lease, its own WAL receiver, a
// direct connection to the old primary's PostgreSQL and its REST API), the detachment request it
// sends to every /sync standby, the answer it gives to one (POST /vigil/detach), the promise a
// detached standby keeps, and the take-over transaction. The decisions are src/core/fast-failover.ts.
//
// Contracts:
// - Runs only while `vigil: {fast_failover: true}` is in the dynamic configuration, synchronous_mode
//   is on or quorum, the DCS offers the transaction (etcd v3, the simulator) and no task runs.
// - The promise: after a detachment for (leader key R/L, /sync V) this agent never configures
//   PostgreSQL to stream from that leader while the leader key and /sync are still (R/L, V) (the
//   guarded writeConfig, which also serializes every configuration write with the detachment, so a
//   tick's write that started before the promise cannot land after the detachment's). It is
//   recorded (PromiseStore: a file next to the data directory) before it is kept, so an agent
//   restarted during a take-over keeps it.
// - After a successful transaction the lock is ours: the next tick promotes through the ordinary
//   path ("I hold the leader lock and run as a replica"), whose /sync compare-and-set then reads
//   the /sync the transaction wrote; /history carries the take-over's reason.

import {
  allowedUpstream,
  DETECTION_WINDOW_MS,
  fastFailoverEnabled,
  PROMISE_MS,
  TAKE_WITHIN_MS,
  fastFailoverStep,
  syncStandbysOf,
  type DetachAnswer,
  type DetachPromise,
  type FastFailoverInput,
  type TakeOverExpect,
} from '../core/fast-failover.ts';
import { nameIn, syncModeOf } from '../core/election.ts';
import type { ClusterView } from '../core/model.ts';
import type { NodeDriver } from './driver.ts';
import type { PgPort } from './ports.ts';

/** The body of POST /vigil/detach (7.2 step 3). */
export interface DetachRequest {
  leader: string;
  leader_version: string;
  leader_session: string;
  sync_version: string;
}

/** The network facts and calls of the fast path. None rejects: no answer in time is an answer. */
export interface FastPeers {
  /** A direct connection to the PostgreSQL at connUrl succeeded within timeoutMs. */
  pgReachable(target: { name: string; connUrl: string }, timeoutMs: number): Promise<boolean>;
  /** The REST API at apiUrl answered (any HTTP status) within timeoutMs. */
  apiReachable(target: { name: string; apiUrl: string }, timeoutMs: number): Promise<boolean>;
  /** POST /vigil/detach; undefined: no (valid) answer within timeoutMs. */
  detach(target: { name: string; apiUrl: string }, req: DetachRequest, timeoutMs: number): Promise<DetachAnswer | undefined>;
}

/**
 * Test-only switches, each skipping one step of the rule, so that the simulation can show that
 * each step matters (src/sim/fast-failover.test.ts). Never set in production.
 */
export interface FastMutations {
  /** Detection: no lease window and no wait (suspect -> detach at once). */
  noWindow?: boolean;
  /** Detection: ignore the old primary's PostgreSQL (direct connection and our own WAL receiver). */
  noPgCheck?: boolean;
  /** Skip the detachment: every /sync standby is taken as detached without asking it. */
  noDetach?: boolean;
  /** The transaction compares the versions read just before it, not those the standbys promised on. */
  noTxnCompare?: boolean;
  /** A detached standby does not keep its promise (follows the old leader again at once). */
  reattach?: boolean;
  /** The promise is not recorded: a restarted agent forgets it. */
  noStore?: boolean;
}

export interface TakeOverEvent {
  at: number;
  from: string;
  reason: string;
  /** The old leader's lease as read during detection (remaining seconds). */
  leaseRemaining: number | undefined;
}

/** Keeps a detachment promise across agent restarts (a file next to the data directory). */
export interface PromiseStore {
  load(): DetachPromise | undefined;
  /** Durable when it returns; throws when it could not be written (the detachment is then refused). */
  save(p: DetachPromise): void;
}

export const DETACH_TIMEOUT_MS = 2000;
const PROBE_MS = 1000;

export class FastFailover {
  /** The promise this agent keeps (POST /vigil/detach). */
  promise: DetachPromise | undefined;
  private suspectSince: number | undefined;
  private lastLease: number | undefined;
  private writes: Promise<unknown> = Promise.resolve();
  /** The unguarded port (the detachment's own write is serialized, not filtered). */
  private raw: PgPort | undefined;

  constructor(
    private readonly driver: () => NodeDriver,
    private readonly peers: FastPeers,
    private readonly opts: {
      mutations?: FastMutations;
      onTakeOver?: (ev: TakeOverEvent) => void;
      /** Tests: this agent is slow between the detachment and the transaction. */
      beforeTake?: () => Promise<void>;
      /** Where the promise outlives the agent process (read once here, written before it is kept). */
      store?: PromiseStore;
    } = {},
  ) {
    this.promise = opts.mutations?.noStore === true ? undefined : opts.store?.load();
  }

  private get m(): FastMutations {
    return this.opts.mutations ?? {};
  }

  /** Run `fn` after every configuration write before it (and before the next). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** The PostgreSQL port with writeConfig guarded by the promise (see the contract above). */
  guard(pg: PgPort): PgPort {
    this.raw = pg;
    return {
      ...pg,
      writeConfig: (o) =>
        this.serial(() => {
          const upstream = this.m.reattach === true ? o.upstream : allowedUpstream(o.upstream, this.promise, this.driver().cluster, this.driver().ports.clock.wallNow());
          if (upstream !== o.upstream) this.driver().log.info({}, `not following ${o.upstream?.name ?? ''}: detached from it for a take-over`);
          return pg.writeConfig({ ...o, upstream });
        }),
    };
  }

  /**
   * POST /vigil/detach (7.2 step 3): promise not to stream from the leader for the pair, clear
   * primary_conninfo and reload, check that no WAL receiver runs; answer flush position and
   * timeline. `detached` is false when the WAL receiver still runs (or PostgreSQL's state cannot
   * be read while it runs).
   */
  async detach(req: DetachRequest): Promise<DetachAnswer> {
    const d = this.driver();
    const refused: DetachAnswer = { name: d.config.name, detached: false, flushLsn: 0, timeline: 0, tags: d.config.tags };
    // Never on the lock holder or a primary (a stale or forged request must not turn a primary's
    // configuration into a replica's): the answer is "not detached", which stops the fast path.
    // Nor while a task runs (a start, clone or rewind may be about to run PostgreSQL as the old
    // leader's follower with a configuration written before the promise).
    if (req.leader === d.config.name || d.lockRefreshedAt !== undefined || d.lastPg?.inRecovery === false || d.task?.state === 'running') return refused;
    const promise: DetachPromise = { leader: req.leader, leaderVersion: req.leader_version, leaderSession: req.leader_session, syncVersion: req.sync_version, untilWall: d.ports.clock.wallNow() + PROMISE_MS };
    try {
      if (this.m.noStore !== true) this.opts.store?.save(promise);
    } catch (err) {
      d.log.warn({}, `detachment refused: the promise could not be recorded: ${err instanceof Error ? err.message : String(err)}`);
      return refused;
    }
    this.promise = promise;
    d.log.warn({ leader: req.leader }, `detaching from ${req.leader} for a take-over (leader key ${req.leader_version}/${req.leader_session}, /sync ${req.sync_version})`);
    const pg = this.raw ?? d.ports.pg;
    const answer = refused;
    const running = (await pg.isRunning().catch(() => ({ running: true }))).running;
    if (!running) {
      // Down: its configuration loses primary_conninfo now, and the guard keeps it from being
      // started as the old leader's follower later.
      await this.serial(() => pg.writeConfig({ role: 'replica', upstream: null, ...d.pgInputs() })).catch(() => undefined);
      const last = d.lastPg;
      return { ...answer, detached: true, flushLsn: last?.walLsn ?? 0, timeline: last?.timeline ?? 0 };
    }
    try {
      if (!(await pg.probe({ timeoutMs: PROBE_MS })).inRecovery) return answer;
      await this.serial(async () => {
        await pg.writeConfig({ role: 'replica', upstream: null, ...d.pgInputs() });
        await pg.reload();
      });
      for (let i = 0; i < 10; i++) {
        const probe = await pg.probe({ timeoutMs: PROBE_MS });
        if (!probe.inRecovery) return answer;
        if (probe.walReceiver === undefined) {
          const flush = Math.max(probe.receiveLsn ?? 0, probe.replayLsn ?? 0, d.lastPg?.receiveLsn ?? 0);
          return { ...answer, detached: true, flushLsn: flush, timeline: Math.max(probe.timeline ?? 0, d.lastPg?.timeline ?? 0) };
        }
        await d.ports.clock.sleep(100);
      }
    } catch (err) {
      d.log.warn({}, `detachment: ${err instanceof Error ? err.message : String(err)}`);
    }
    return answer;
  }

  /** Whether a cluster view names a leader other than me and me among its /sync standbys (no IO). */
  private candidate(cluster: ClusterView | undefined, me: string): boolean {
    const leader = cluster?.leader;
    if (leader === undefined || leader.name === me) return false;
    return nameIn(syncStandbysOf(cluster?.sync), me);
  }

  /** One detection step between ticks (about once a second). */
  async step(): Promise<void> {
    const d = this.driver();
    const dcs = d.ports.dcs;
    const me = d.config.name;
    // The last loop's view may be up to loop_wait old (a standby just added to /sync would not see
    // itself there): only "I lead" is taken from it; the rest from a fresh read.
    if (!fastFailoverEnabled(d.dynamic) || d.dynamic.pause === true || d.task?.state === 'running' || d.cluster?.leader?.name === me) {
      this.suspectSince = undefined;
      return;
    }
    if (dcs.offersTakeOver?.() !== true || dcs.leaseTimeToLive === undefined || dcs.takeOverLeader === undefined) return;
    const clock = d.ports.clock;
    const W = DETECTION_WINDOW_MS;
    // In the steady state our WAL receiver streams from the leader: nothing else is asked (no DCS
    // read, no connection to the primary, whose log would show one a second).
    const streaming = await d.ports.pg.probe({ timeoutMs: PROBE_MS }).then(
      (p) => p.walReceiver?.status === 'streaming',
      () => false,
    );
    if (streaming && this.m.noPgCheck !== true) {
      this.suspectSince = undefined;
      return;
    }
    let cluster: ClusterView;
    let lease: FastFailoverInput['lease'];
    try {
      cluster = await dcs.readCluster({ signal: clock.timeout(PROBE_MS) });
      const session = cluster.leader?.session;
      lease = session === undefined || session === '' ? undefined : await dcs.leaseTimeToLive(session, { signal: clock.timeout(PROBE_MS) });
    } catch {
      this.suspectSince = undefined;
      return;
    }
    const leader = cluster.leader;
    if (leader === undefined || !this.candidate(cluster, me)) {
      this.suspectSince = undefined;
      return;
    }
    this.lastLease = lease?.remaining;
    const lm = cluster.members.find((x) => x.name === leader.name);
    const connUrl = lm?.data.conn_url;
    const apiUrl = lm?.data.api_url;
    const [pgUp, apiUp] = await Promise.all([
      connUrl === undefined ? Promise.resolve(false) : this.peers.pgReachable({ name: leader.name, connUrl }, PROBE_MS),
      apiUrl === undefined ? Promise.resolve(false) : this.peers.apiReachable({ name: leader.name, apiUrl }, PROBE_MS),
    ]);
    const now = clock.now();
    const input: FastFailoverInput = {
      me,
      myTags: d.config.tags,
      config: d.dynamic,
      now,
      leader: { name: leader.name, version: leader.version, session: leader.session },
      leaderMember: lm,
      sync: cluster.sync,
      lease: this.m.noWindow === true && lease !== undefined ? { remaining: 0, granted: lease.granted + W / 1000 + 1 } : lease,
      streamingFromLeader: this.m.noPgCheck === true ? false : streaming,
      leaderPgReachable: this.m.noPgCheck === true ? false : pgUp,
      leaderApiReachable: apiUp,
      suspectSince: this.m.noWindow === true ? now - W : this.suspectSince,
      detectionMs: W,
    };
    const step = fastFailoverStep(input);
    if (step.kind === 'none') {
      if (this.suspectSince !== undefined) d.log.info({}, `fast failover: no longer suspecting ${leader.name}: ${step.reason}`);
      this.suspectSince = undefined;
      return;
    }
    if (this.suspectSince === undefined) d.log.warn({}, `fast failover: suspecting ${leader.name}: ${step.reason}`);
    this.suspectSince = step.suspectSince;
    if (step.kind !== 'detach') return;
    const askedAt = clock.now();
    const answers = await this.gather(cluster, step.standbys, step.pair, leader.name);
    const final = fastFailoverStep({ ...input, answers });
    if (final.kind !== 'take') {
      d.log.warn({}, `fast failover: ${final.reason}`);
      return;
    }
    await this.take(cluster, final.txn, final.reason, leader.name, askedAt);
  }

  /** Ask every /sync standby (me included) to detach; without the detachment (mutation) only read their member keys. */
  private async gather(cluster: ClusterView, standbys: string[], pair: TakeOverExpect, leader: string): Promise<Array<DetachAnswer | undefined>> {
    const d = this.driver();
    const req: DetachRequest = { leader, leader_version: pair.leaderVersion, leader_session: pair.leaderSession, sync_version: pair.syncVersion };
    return Promise.all(
      standbys.map((name) => {
        const m = cluster.members.find((x) => x.name.toLowerCase() === name.toLowerCase());
        if (this.m.noDetach === true) {
          const lsn = Number(m?.data['xlog_location'] ?? 0);
          return Promise.resolve<DetachAnswer>({ name, detached: true, flushLsn: name === d.config.name ? (d.lastPg?.walLsn ?? lsn) : lsn, timeline: Number(m?.data['timeline'] ?? 0) || (d.lastPg?.timeline ?? 0), tags: (m?.data.tags ?? {}) as DetachAnswer['tags'] });
        }
        if (name === d.config.name) return this.detach(req);
        const apiUrl = m?.data.api_url;
        return apiUrl === undefined ? Promise.resolve(undefined) : this.peers.detach({ name, apiUrl }, req, DETACH_TIMEOUT_MS);
      }),
    );
  }

  /** 7.2 step 5: the transaction; then the lock is ours and the next tick promotes. */
  private async take(cluster: ClusterView, txn: { expect: TakeOverExpect; sync: { leader: string; sync_standby: string | null; quorum: number } }, reason: string, from: string, askedAt: number): Promise<void> {
    const d = this.driver();
    const dcs = d.ports.dcs;
    const clock = d.ports.clock;
    await this.opts.beforeTake?.();
    // The standbys' promises end PROMISE_MS after they were made; the transaction, with its own
    // deadline, must be long over by then.
    if (clock.now() - askedAt > TAKE_WITHIN_MS) {
      d.log.warn({}, `fast failover: more than ${TAKE_WITHIN_MS} ms since the detachment requests: nothing taken`);
      this.suspectSince = undefined;
      return;
    }
    let expect = txn.expect;
    if (this.m.noTxnCompare === true) {
      const now = await dcs.readCluster({ signal: clock.timeout(PROBE_MS) }).catch(() => cluster);
      expect = { leaderVersion: now.leader?.version ?? '', leaderSession: now.leader?.session ?? '', syncVersion: now.sync?.version ?? '' };
    }
    const start = clock.now();
    let ok: boolean;
    try {
      ok = await (dcs.takeOverLeader as NonNullable<typeof dcs.takeOverLeader>)(expect, { leader: txn.sync.leader, sync_standby: txn.sync.sync_standby, quorum: syncModeOf(d.dynamic) === 'quorum' ? txn.sync.quorum : 0 }, { signal: clock.timeout(DETACH_TIMEOUT_MS) });
    } catch (err) {
      d.log.warn({}, `fast failover: the take-over transaction failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (!ok) {
      d.log.warn({}, 'fast failover: the leader key or /sync changed meanwhile: nothing taken');
      this.suspectSince = undefined;
      return;
    }
    this.suspectSince = undefined;
    d.takeOverReason = reason;
    d.tookLock(start);
    d.log.warn({}, reason);
    this.opts.onTakeOver?.({ at: start, from, reason, leaseRemaining: this.lastLease });
    d.wake();
  }
}
