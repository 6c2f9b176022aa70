// Planned switchover and manual failover: the /failover key as read by the leader and by the
// other members (../shared/spec/patroni-behavior.md section 6). Pure.

import { activeSync, isNoFailover, memberLsn, nameIn, syncModeOf, syncStandbyNames } from './election.ts';
import type { ClusterView, FailoverRequest, LogLine, Member, Observation } from './model.ts';

/** A /failover value that asks for something (an empty `{}` asks for nothing). */
export function activeRequest(cluster: ClusterView | undefined): FailoverRequest | undefined {
  const fo = cluster?.failover;
  if (fo === undefined) return undefined;
  if ((fo.leader === undefined || fo.leader === '') && (fo.member === undefined || fo.member === '')) return undefined;
  return fo;
}

export type Timing =
  | { kind: 'now' }
  | { kind: 'later'; inMs: number }
  | { kind: 'stale' }
  | { kind: 'invalid' };

/**
 * When a scheduled request is due. The leader acts once the time is within loop_wait; a request
 * more than 1.5 x loop_wait in the past is stale and cleared (the leader was away at the time).
 */
export function requestTiming(fo: FailoverRequest, wallClock: string, loopWaitS: number): Timing {
  if (fo.scheduled_at === undefined || fo.scheduled_at === '') return { kind: 'now' };
  const at = Date.parse(fo.scheduled_at);
  const now = Date.parse(wallClock);
  if (!Number.isFinite(at) || !Number.isFinite(now)) return { kind: 'invalid' };
  if (now - at > 1.5 * loopWaitS * 1000) return { kind: 'stale' };
  if (at - now > loopWaitS * 1000) return { kind: 'later', inMs: at - now - loopWaitS * 1000 };
  return { kind: 'now' };
}

function member(cluster: ClusterView, name: string | undefined): Member | undefined {
  return name === undefined ? undefined : cluster.members.find((m) => m.name === name);
}

/**
 * The leader's check before demoting for a switchover: is there a member that can take over?
 * Uses the peers' live answers (GET /patroni) fetched this tick, and the lag limit against what
 * the leader publishes. Returns the reason it is not possible, or undefined when it is.
 */
export function switchoverBlocker(obs: Observation, fo: FailoverRequest, logs: LogLine[] = []): string | undefined {
  const cluster = obs.cluster as ClusterView;
  const me = obs.self.name;
  const optime = obs.pg.walLsn ?? cluster.status?.optime;
  const names = fo.member !== undefined && fo.member !== '' ? [fo.member] : cluster.members.map((m) => m.name).filter((n) => n !== me);
  if (names.length === 0) {
    logs.push({ level: 'warn', msg: 'manual failover: members list is empty' });
    return 'cluster does not have members except leader';
  }
  if (fo.member !== undefined && fo.member !== '' && member(cluster, fo.member) === undefined) return `candidate ${fo.member} does not exist`;
  // Sync mode active: a switchover may only go to a /sync standby (a manual failover, with no
  // leader named, may go anywhere: the operator chose).
  const sync = fo.leader !== undefined && fo.leader !== '' ? activeSync(obs) : undefined;
  const standbys = syncStandbyNames(sync);
  if (sync !== undefined && fo.member !== undefined && fo.member !== '' && !nameIn(standbys, fo.member)) {
    return `candidate ${fo.member} is not a synchronous standby`;
  }
  const peers = new Map((obs.peers ?? []).map((p) => [p.name, p]));
  const good = names.filter((n) => {
    if (sync !== undefined && !nameIn(standbys, n)) return false;
    const m = member(cluster, n);
    const p = peers.get(n);
    if (m === undefined || p === undefined) return false;
    // Patroni's reasons, logged at INFO with its words ("Member <name> is <reason>").
    const limitation = !p.reachable ? 'not reachable' : p.nofailover ? 'not allowed to promote' : p.watchdogFailed ? 'not watchdog capable' : undefined;
    if (limitation !== undefined) {
      logs.push({ level: 'info', msg: `Member ${n} is ${limitation}` });
      return false;
    }
    if (!p.inRecovery) return false;
    // A planned switchover must not lose data: the candidate must be close to the leader. A manual
    // failover (no leader named) is the operator's explicit choice and skips this.
    if (fo.leader !== undefined && optime !== undefined && optime - Math.max(p.walPosition, memberLsn(m)) > obs.config.maximum_lag_on_failover) {
      logs.push({ level: 'info', msg: `Member ${n} exceeds maximum replication lag` });
      return false;
    }
    return true;
  });
  if (good.length === 0) return 'no good candidates have been found';
  // Quorum mode without a named candidate: as many good candidates as /sync.quorum (5.4).
  if (sync !== undefined && (fo.member === undefined || fo.member === '') && syncModeOf(obs.config) === 'quorum') {
    const quorum = sync.quorum ?? 0;
    if (good.length < quorum) return `only ${good.length} good candidates, /sync quorum is ${quorum}`;
  }
  return undefined;
}

/**
 * A member without the lock, in an unlocked cluster, while /failover names a candidate or a
 * former leader: may it race? undefined: the request does not apply (race normally).
 */
export function manualRaceVerdict(obs: Observation): { race: boolean; reason: string } | undefined {
  const cluster = obs.cluster;
  const fo = activeRequest(cluster);
  if (cluster === undefined || fo === undefined) return undefined;
  const timing = requestTiming(fo, obs.wallClock, obs.config.loop_wait);
  if (timing.kind !== 'now') return undefined;
  const me = obs.self.name;
  if (fo.member !== undefined && fo.member !== '') {
    if (fo.member === me) {
      if (isNoFailover(obs.self.tags) && fo.leader !== undefined) return { race: false, reason: 'I am the switchover candidate but nofailover is set' };
      const sync = fo.leader !== undefined && fo.leader !== '' ? activeSync(obs) : undefined;
      if (sync !== undefined && !nameIn([...(sync.leader !== undefined ? [sync.leader] : []), ...syncStandbyNames(sync)], me)) {
        return { race: false, reason: 'I am the switchover candidate but not in /sync' };
      }
      return { race: true, reason: 'I am the candidate of a manual switchover/failover' };
    }
    const cand = member(cluster, fo.member);
    const candUsable = cand !== undefined && cand.data.state === 'running' && !isNoFailover(cand.data.tags);
    if (candUsable) return { race: false, reason: `waiting for the candidate ${fo.member} to take the lock` };
    // The candidate is gone: fall back to the normal race (but never the former leader that
    // gave the lock away on purpose).
  }
  if (fo.leader === me) return { race: false, reason: 'I released the lock for a switchover; not racing for it' };
  return undefined;
}
