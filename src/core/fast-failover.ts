// Failover before the lease expires in synchronous modes (issue 13): the pure rule of
// docs/guarantees.md section 7.2, steps 2 to 5, for one /sync standby C deciding on facts its shell
// gathered (src/agent/fast-failover.ts), the promise a detached standby keeps, and the setting
// that turns it all on (`vigil: {fast_failover: true}` in the dynamic configuration; off by
// default).
//
// Contract. `fastFailoverStep` returns one of:
// - `none`: the fast path does not apply (mode off, not a /sync standby, a Patroni leader, ...) or
//   a detection condition failed; the memory forgets any suspicion (the window starts over);
// - `suspect`: every detection condition holds now, but not yet for the whole window W;
// - `detach`: detection held for W: ask every /sync standby (C included) to detach from the old
//   primary for the pair (leader version R with lease L, /sync version V), see 7.2 step 3;
// - `take`: every /sync standby answered detached, C is the one to promote: run the single
//   transaction `txn` (7.2 step 5), then write /history and promote;
// - `yield`: the answers are in but another standby must be promoted (it is ahead, or C may not be).
// Safety rests on the argument of 7.1 (I1, I2); every condition below is one of its steps, and
// the tests name which.

import { failoverPriority, isNoFailover, nameIn, syncModeOf, syncStandbyNames } from './election.ts';
import type { DynamicConfig, Member, SyncState, Tags } from './model.ts';
import { lower, minus, union } from './ssn.ts';
import { isTrue, parseBool } from './values.ts';

/** Default detection window W (ms): at least 3 keep-alive periods of 1 s. */
export const DETECTION_WINDOW_MS = 3000;

/** One /sync standby's answer to the detachment request (7.2 step 3); undefined: no answer in time. */
export interface DetachAnswer {
  name: string;
  /** Its WAL receiver is stopped and pg_stat_wal_receiver is empty (or PostgreSQL is down and stays so). */
  detached: boolean;
  /** Highest WAL position it flushed (received and written to disk). */
  flushLsn: number;
  timeline: number;
  tags: Tags;
}

export interface FastFailoverInput {
  me: string;
  myTags: Tags;
  config: DynamicConfig;
  /** Monotonic ms. */
  now: number;
  /** The leader key as read this tick (name, mod_revision, lease). */
  leader: { name: string; version: string; session: string } | undefined;
  /** The old leader's member key (its `vigil` marker says it runs the 1 s keep-alive). */
  leaderMember: Member | undefined;
  sync: SyncState | undefined;
  /** LeaseTimeToLive of the leader's lease, read after the leader key; undefined: unknown lease. */
  lease: { remaining: number; granted: number } | undefined;
  /** My WAL receiver streams from the old primary. */
  streamingFromLeader: boolean;
  /** A direct connection to the old primary's PostgreSQL succeeded within 1 s. */
  leaderPgReachable: boolean;
  /** The old primary's REST API answered within 1 s. */
  leaderApiReachable: boolean;
  /** Answers of the /sync standbys to the detachment request (absent before it is sent). */
  answers?: Array<DetachAnswer | undefined>;
  /** When every detection condition first held, in a row (memory). */
  suspectSince: number | undefined;
  detectionMs?: number;
}

export type FastFailoverStep =
  | { kind: 'none'; reason: string }
  | { kind: 'suspect'; reason: string; suspectSince: number }
  | { kind: 'detach'; reason: string; suspectSince: number; pair: TakeOverExpect; standbys: string[] }
  | { kind: 'yield'; reason: string; suspectSince: number }
  | { kind: 'take'; reason: string; suspectSince: number; txn: { expect: TakeOverExpect; sync: { leader: string; sync_standby: string | null; quorum: number } } };

export interface TakeOverExpect {
  leaderVersion: string;
  leaderSession: string;
  syncVersion: string;
}

/** The /sync standbys (not its leader): every one must detach before anyone is promoted. */
export function syncStandbysOf(sync: SyncState | undefined): string[] {
  return syncStandbyNames(sync);
}

/**
 * Lease not renewed for at least `windowMs`, from LeaseTimeToLive's whole seconds. etcd may round
 * the remaining TTL either way, so one second is taken off the elapsed time (conservative).
 */
export function leaseSilentFor(lease: { remaining: number; granted: number } | undefined, windowMs: number): boolean {
  if (lease === undefined) return false;
  const elapsedSeconds = lease.granted - lease.remaining - 1;
  return elapsedSeconds * 1000 >= windowMs;
}

/** Whether a member key says its agent runs Vigil's keep-alive (member data `vigil: {keepalive_ms}`). */
export function runsKeepAlive(m: Member | undefined, windowMs: number): boolean {
  const v = (m?.data as Record<string, unknown> | undefined)?.['vigil'];
  if (typeof v !== 'object' || v === null) return false;
  const ka = (v as Record<string, unknown>)['keepalive_ms'];
  return typeof ka === 'number' && ka > 0 && ka * 3 <= windowMs;
}

export function fastFailoverStep(inp: FastFailoverInput): FastFailoverStep {
  const W = inp.detectionMs ?? DETECTION_WINDOW_MS;
  const mode = syncModeOf(inp.config);
  const none = (reason: string): FastFailoverStep => ({ kind: 'none', reason });
  // Asynchronous mode keeps the lease rule (section 2's loss bound is measured from the lease).
  if (mode === 'off') return none('asynchronous mode: the lease rule applies');
  const leader = inp.leader;
  const sync = inp.sync;
  if (leader === undefined) return none('no leader key: the ordinary race applies');
  if (lower(leader.name) === lower(inp.me)) return none('I hold the lock');
  if (sync === undefined || sync.leader === undefined || lower(sync.leader) !== lower(leader.name)) return none('/sync does not name the lock holder');
  const standbys = syncStandbysOf(sync);
  if (!nameIn(standbys, inp.me)) return none('I am not a /sync standby');
  if (isNoFailover(inp.myTags)) return none('nofailover');
  // 7.3: the old leader must renew every second, or a silent lease means nothing within W.
  if (!runsKeepAlive(inp.leaderMember, W)) return none('the leader does not run the 1 s keep-alive (Patroni or an older Vigil)');
  // 7.2 step 2: all three conditions, at once: the old primary unreachable (its PostgreSQL, its
  // REST API, our WAL receiver) without a break for W, and its lease not renewed for W. The
  // window of unreachability starts even while the lease is still fresh (both run concurrently).
  if (inp.streamingFromLeader) return none('my WAL receiver still streams from the leader');
  if (inp.leaderPgReachable) return none("the leader's PostgreSQL answers");
  if (inp.leaderApiReachable) return none("the leader's REST API answers");
  const since = inp.suspectSince ?? inp.now;
  if (!leaseSilentFor(inp.lease, W)) return { kind: 'suspect', reason: `leader ${leader.name} unreachable for ${inp.now - since} ms, its lease renewed within ${W} ms`, suspectSince: since };
  if (inp.now - since < W) return { kind: 'suspect', reason: `leader ${leader.name} unreachable for ${inp.now - since} ms`, suspectSince: since };
  const pair: TakeOverExpect = { leaderVersion: leader.version, leaderSession: leader.session, syncVersion: sync.version };
  if (inp.answers === undefined) return { kind: 'detach', reason: `leader ${leader.name} unreachable for ${inp.now - since} ms: detaching every /sync standby`, suspectSince: since, pair, standbys };
  // 7.2 step 3: every /sync standby detached (an agent that did not answer stops the fast path).
  const byName = new Map(inp.answers.filter((a): a is DetachAnswer => a !== undefined).map((a) => [lower(a.name), a]));
  const missing = standbys.filter((n) => byName.get(lower(n))?.detached !== true);
  if (missing.length > 0) return none(`not every /sync standby detached (${missing.join(',')}): the lease rule applies`);
  const answers = standbys.map((n) => byName.get(lower(n)) as DetachAnswer);
  // 7.2 step 4: the highest flush position (ties: failover_priority, then name), on the newest timeline.
  const newest = Math.max(...answers.map((a) => a.timeline));
  const eligible = answers.filter((a) => !isNoFailover(a.tags) && a.timeline === newest);
  eligible.sort((a, b) => b.flushLsn - a.flushLsn || failoverPriority(b.tags) - failoverPriority(a.tags) || a.name.localeCompare(b.name));
  const best = eligible[0];
  if (best === undefined || lower(best.name) !== lower(inp.me)) return { kind: 'yield', reason: `${best?.name ?? 'nobody'} is to be promoted, not me`, suspectSince: since };
  // 7.2 step 5: /sync for the new leader, as the ordinary promotion would write it (sync.ts
  // prepromoteActions), in the same transaction as the leader key.
  const members = union([leader.name], standbys);
  const others = minus(members, [inp.me]).sort();
  const strict = isTrue(inp.config['synchronous_mode_strict']);
  const quorum = typeof sync.quorum === 'number' ? sync.quorum : 0;
  const next =
    mode === 'on'
      ? { leader: inp.me, sync_standby: strict && others.length > 0 ? others.join(',') : null, quorum: 0 }
      : { leader: inp.me, sync_standby: others.length > 0 ? others.join(',') : null, quorum };
  return { kind: 'take', reason: `took over from ${leader.name}: lease not renewed for ${W / 1000} s, every /sync standby detached`, suspectSince: since, txn: { expect: pair, sync: next } };
}

/**
 * The promise a detached standby keeps (7.2 step 3): it does not stream from `leader` while the
 * leader key is still at `leaderVersion` bound to `leaderSession` and /sync still at `syncVersion`.
 */
export interface DetachPromise {
  leader: string;
  leaderVersion: string;
  leaderSession: string;
  syncVersion: string;
  /**
   * Wall-clock ms when it ends by itself (PROMISE_MS after it was made): the candidate gives up
   * its transaction TAKE_WITHIN_MS after it asked, far sooner, so a take-over can no longer follow.
   * Without it a standby detached for a take-over that never came would never follow its live
   * leader again. Absent: no end.
   */
  untilWall?: number;
}

/** How long a detachment promise binds at most (ms). */
export const PROMISE_MS = 30_000;
/** The candidate runs its transaction only this soon after it sent the detachment requests (ms). */
export const TAKE_WITHIN_MS = 5_000;

/**
 * Whether a detachment promise still binds, on the last cluster view read (undefined: the DCS could
 * not be read, and the promise binds). It ends only when the leader key or /sync changed: a new
 * take-over, a new leader, or the old leader's own write to /sync (then the old leader could not
 * lose the race for /sync any more, and the ordinary rules apply again), or when its time is up.
 */
export function detachBinds(p: DetachPromise | undefined, cluster: { leader: { name: string; version: string; session: string } | undefined; sync: SyncState | undefined } | undefined, wallNow?: number): boolean {
  if (p === undefined) return false;
  if (p.untilWall !== undefined && wallNow !== undefined && wallNow >= p.untilWall) return false;
  if (cluster === undefined) return true;
  const l = cluster.leader;
  if (l === undefined || lower(l.name) !== lower(p.leader) || l.version !== p.leaderVersion || l.session !== p.leaderSession) return false;
  return (cluster.sync?.version ?? '') === p.syncVersion;
}

/** The upstream a replica may be configured with: none instead of a leader it promised not to follow. */
export function allowedUpstream<T extends { name: string }>(upstream: T | null, p: DetachPromise | undefined, cluster: Parameters<typeof detachBinds>[1], wallNow?: number): T | null {
  if (upstream === null || !detachBinds(p, cluster, wallNow) || lower(upstream.name) !== lower((p as DetachPromise).leader)) return upstream;
  return null;
}

/** The keep-alive period the fast path needs of a leader (7.2 step 1). */
export const FAST_KEEPALIVE_MS = 1000;

/**
 * Whether the fast path is turned on: in synchronous_mode on or quorum it is, unless the dynamic
 * key `vigil: {fast_failover: false}` (a mapping Patroni does not know and leaves alone) turns it
 * off. On by default since session 7: the whole test suite, the fault suite's partitions level and
 * the stress bench ran with it on (docs/guarantees.md 7.4).
 */
export function fastFailoverEnabled(config: DynamicConfig): boolean {
  if (syncModeOf(config) === 'off') return false;
  const v = config['vigil'];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return true;
  return parseBool((v as Record<string, unknown>)['fast_failover']) !== false;
}

/** The lease keep-alive period (ms, 0: off): the agent's own option, else 1 s while the fast path is on. */
export function keepAlivePeriodMs(config: DynamicConfig, optionMs: number | undefined): number {
  if (optionMs !== undefined && optionMs > 0) return optionMs;
  return fastFailoverEnabled(config) ? FAST_KEEPALIVE_MS : 0;
}
