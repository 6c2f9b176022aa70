// The lock holder's and the unlocked cluster's decisions: the leader race, the running primary
// (lock refresh, /status, failsafe topology, synchronous replication, slots) and the switchover or
// failover request it handles.

import { DecisionBuilder, declaresSlots, FAST_WAKE_MS, paused, slotMembers } from './builder.ts';
import { leaderSlots, sameStatus } from './slots.ts';
import { isHealthiest, syncModeOf, type Verdict } from './election.ts';
import { asStandbyLeader, followRemoteUnlocked, remoteUpstream } from './standby.ts';
import { handleDiverged } from './diverged.ts';
import { failsafeLeader, failsafeRaceRefusal, failsafeTopology, sameTopology } from './failsafe.ts';
import { activeRequest, manualRaceVerdict, requestTiming, switchoverBlocker } from './switchover.ts';
import { prepromoteActions, syncOffStep, syncStep } from './sync.ts';
import { raceBackoff } from './race-backoff.ts';
import type { ClusterView, FailoverRequest, Observation } from './model.ts';

/** Failsafe mode's race gates (behavior 8.4); undefined when they do not apply. */
export function failsafeVerdict(obs: Observation): Verdict | undefined {
  const refusal = failsafeRaceRefusal(obs);
  if (refusal !== undefined) return { ok: false, reason: refusal };
  const leader = failsafeLeader(obs);
  if (leader !== undefined && obs.pg.inRecovery) return { ok: false, reason: `${leader} confirmed itself as the primary in failsafe mode less than ttl ago` };
  return undefined;
}

/** PostgreSQL runs and no one holds the lock: the leader race. */
export function unlocked(obs: Observation, d: DecisionBuilder): string {
  const { pg } = obs;
  const manual = manualRaceVerdict(obs);
  if (paused(obs) && manual?.race !== true) {
    // In pause a running primary of this cluster takes its lock back (its agent restarted, say);
    // nobody else races.
    const init = obs.cluster?.initialize;
    if (!pg.inRecovery && (init === '' || init === pg.sysid)) {
      d.isLeader = true;
      d.role = 'primary';
      d.add({ type: 'acquireLeader' });
      return 'paused: taking the leader lock back as the running primary';
    }
    return 'cluster is unlocked and paused: no automatic failover';
  }
  const remote = remoteUpstream(obs);
  if (remote !== undefined) return unlockedStandby(obs, d, remote, manual);
  const backoff = raceBackoff(obs);
  if (backoff.memory !== undefined) d.memory.raceBackoff = backoff.memory;
  if (backoff.wait !== undefined) {
    if (backoff.wakeMs !== undefined) d.wake(backoff.wakeMs);
    return backoff.wait;
  }
  const verdict: Verdict = manual !== undefined ? { ok: manual.race, reason: manual.reason } : failsafeVerdict(obs) ?? isHealthiest(obs);
  if (verdict.ok) {
    d.isLeader = true;
    d.add({ type: 'acquireLeader' });
    if (activeRequest(obs.cluster) !== undefined) d.add({ type: 'clearFailover' });
    if (pg.inRecovery) {
      d.role = 'promoted';
      // Sync mode: /sync names me (CAS) before promote; a lost CAS stops the plan and postpones it.
      d.memory.syncConfirmed = undefined;
      d.memory.syncPendingSince = undefined;
      d.add(...prepromoteActions(obs), { type: 'startTask', task: { kind: 'promote' } });
      return manual !== undefined ? `promoted self to leader: ${verdict.reason}` : 'promoted self to leader by acquiring session lock';
    }
    d.role = 'primary';
    return 'acquired session lock as a leader';
  }
  d.wake(manual !== undefined ? FAST_WAKE_MS / 2 : FAST_WAKE_MS);
  if (!pg.inRecovery) {
    // A primary without the lock that may not take it back: stop writes at once.
    d.role = 'demoted';
    d.add({ type: 'startTask', task: { kind: 'demote', mode: 'immediate-nolock', upstream: null } });
    return `demoting self: cluster is unlocked and I may not take the lock (${verdict.reason})`;
  }
  return manual !== undefined ? verdict.reason : `not the healthiest node: ${verdict.reason}`;
}

/** PostgreSQL runs and we hold the lock. */
export function asLeader(obs: Observation, d: DecisionBuilder): string {
  const { pg, self, config } = obs;
  const cluster = obs.cluster as ClusterView;
  const remote = remoteUpstream(obs);
  if (remote !== undefined) {
    const fo = activeRequest(cluster);
    if (fo !== undefined && pg.inRecovery) {
      // A switchover or failover inside the standby cluster: the standby leader hands the lock over.
      const handled = leaderHandlesRequest(obs, d, fo);
      if (handled !== undefined) return handled;
    }
    if (pg.inRecovery && pg.divergence === 'need') {
      // The remote's history forked before our position (its failover lost WAL we replayed).
      d.isLeader = true;
      d.role = 'standby_leader';
      d.add({ type: 'refreshLeader' });
      return handleDiverged(obs, d, remote);
    }
    const why = asStandbyLeader(obs, d, remote);
    if (d.role === 'standby_leader') d.add(...standbyLeaderSlots(obs, d));
    return why;
  }
  d.isLeader = true;
  d.add({ type: 'refreshLeader' });
  if (pg.inRecovery) {
    d.role = 'promoted';
    d.memory.syncConfirmed = undefined;
    d.memory.syncPendingSince = undefined;
    d.add(...prepromoteActions(obs), { type: 'startTask', task: { kind: 'promote' } });
    return 'promoting: I hold the leader lock and run as a replica';
  }
  d.role = 'primary';
  const slotStep = leaderSlots(obs, d.memory);
  if (slotStep.status !== undefined && !sameStatus(slotStep.status, cluster.status)) d.add({ type: 'writeStatus', status: slotStep.status });
  d.memory.failsafeActive = false;
  if (config.failsafe_mode === true) {
    const topology = failsafeTopology(obs);
    if (topology !== undefined && !sameTopology(topology, cluster.failsafe)) d.add({ type: 'writeFailsafe', value: topology });
  }
  const syncNote = leaderSync(obs, d);
  // Without slot facts (the simulator, a failed read): the members' slots the old way.
  if (config.postgresql.use_slots !== false && pg.slots === undefined) d.add({ type: 'ensureSlots', members: slotMembers(obs), dropUnknown: !paused(obs) && !declaresSlots(config) });
  d.add(...slotStep.actions);
  const fo = activeRequest(cluster);
  if (fo !== undefined) {
    const handled = leaderHandlesRequest(obs, d, fo);
    if (handled !== undefined) return handled;
  }
  return syncNote !== '' ? `${syncNote}. I am (${self.name}), the leader with the lock` : `no action. I am (${self.name}), the leader with the lock`;
}

/**
 * Synchronous replication on the running primary that holds the lock: the sync step when the
 * mode is on or quorum; the clean-up (delete /sync, give ssn back) when it was turned off. Needs
 * the facts of obs.pg.sync; without them nothing is changed this tick. Returns a note ('' if none).
 */
export function leaderSync(obs: Observation, d: DecisionBuilder): string {
  if (obs.pg.sync === undefined) return '';
  if (syncModeOf(obs.config) === 'off') {
    d.memory.syncConfirmed = undefined;
    d.memory.syncPendingSince = undefined;
    const cleanup = syncOffStep(obs);
    d.add(...cleanup);
    return cleanup.length > 0 ? 'synchronous mode turned off: removed /sync and gave synchronous_standby_names back' : '';
  }
  const plan = syncStep(obs);
  d.add(...plan.actions);
  if (plan.logs !== undefined) d.logs.push(...plan.logs);
  d.memory.syncConfirmed = plan.memory.syncConfirmed;
  d.memory.syncPendingSince = plan.memory.syncPendingSince;
  if (plan.wakeMs !== undefined) d.wake(plan.wakeMs);
  return plan.note;
}

/** The leader and a /failover request: demote gracefully for a feasible one, clear a bad one. */
export function leaderHandlesRequest(obs: Observation, d: DecisionBuilder, fo: FailoverRequest): string | undefined {
  const me = obs.self.name;
  const timing = requestTiming(fo, obs.wallClock, obs.config.loop_wait);
  if (timing.kind === 'invalid' || timing.kind === 'stale') {
    d.add({ type: 'clearFailover' });
    return `cleared ${timing.kind === 'stale' ? 'a stale' : 'an unreadable'} scheduled switchover (scheduled_at ${fo.scheduled_at})`;
  }
  if (timing.kind === 'later') {
    d.wake(timing.inMs);
    return undefined;
  }
  if (fo.leader !== undefined && fo.leader !== '' && fo.leader !== me) {
    d.add({ type: 'clearFailover' });
    return `manual failover: leader name does not match: ${fo.leader} != ${me}`;
  }
  if (fo.member === me) {
    d.add({ type: 'clearFailover' });
    return 'manual failover: I am already the leader, no need to switch over';
  }
  if (obs.peers === undefined) {
    d.wake(0);
    return 'manual switchover requested: checking the candidates';
  }
  const blocker = switchoverBlocker(obs, fo, d.logs);
  if (blocker !== undefined) {
    d.logs.push({ level: 'warn', msg: 'manual failover: no healthy members found, failover is not possible' });
    d.logs.push({ level: 'info', msg: 'Cleaning up failover key' });
    d.add({ type: 'clearFailover' });
    return `manual ${fo.leader ? 'switchover' : 'failover'} is not possible: ${blocker}`;
  }
  d.role = 'demoted';
  d.isLeader = false;
  d.add({ type: 'startTask', task: { kind: 'demote', mode: 'graceful', upstream: fo.member ?? null } });
  return `manual ${fo.leader ? 'switchover' : 'failover'}: demoting myself in favour of ${fo.member ?? 'the healthiest replica'}`;
}

/**
 * The standby leader's slots and /status: the members' physical slots (its replicas stream from
 * it) and the permanent physical ones, as a primary's (core/slots.ts); the caller adds the actions.
 */
function standbyLeaderSlots(obs: Observation, d: DecisionBuilder): ClusterActions {
  const cluster = obs.cluster as ClusterView;
  const out: ClusterActions = [];
  const slotStep = leaderSlots(obs, d.memory);
  if (slotStep.status !== undefined && !sameStatus(slotStep.status, cluster.status)) out.push({ type: 'writeStatus', status: slotStep.status });
  if (obs.config.postgresql.use_slots !== false && obs.pg.slots === undefined) out.push({ type: 'ensureSlots', members: slotMembers(obs), dropUnknown: !paused(obs) && !declaresSlots(obs.config) });
  out.push(...slotStep.actions);
  return out;
}

type ClusterActions = DecisionBuilder['actions'];

/**
 * A standby cluster without a lock holder (spec 9.4): the usual race, without the race backoff;
 * the winner becomes the standby leader and follows the remote member (never promoted). A loser
 * follows the remote member directly; a primary that may not take the lock is demoted.
 */
function unlockedStandby(obs: Observation, d: DecisionBuilder, remote: string, manual: { race: boolean; reason: string } | undefined): string {
  const { pg } = obs;
  const verdict: Verdict = manual !== undefined ? { ok: manual.race, reason: manual.reason } : failsafeVerdict(obs) ?? isHealthiest(obs);
  if (verdict.ok) {
    d.isLeader = true;
    d.add({ type: 'acquireLeader' });
    if (activeRequest(obs.cluster) !== undefined) d.add({ type: 'clearFailover' });
    if (!pg.inRecovery) {
      // A primary in a standby cluster: take the lock; the next tick demotes it (demote-cluster).
      d.role = 'primary';
      d.wake(0);
      return 'acquired session lock as a primary of a standby cluster: demoting it next';
    }
    d.role = 'standby_leader';
    if (pg.upstream !== remote) d.add({ type: 'followUpstream', upstream: remote });
    return 'acquired session lock as a standby leader (no promotion in a standby cluster)';
  }
  if (!pg.inRecovery) {
    d.wake(FAST_WAKE_MS);
    d.role = 'demoted';
    d.add({ type: 'startTask', task: { kind: 'demote', mode: 'immediate-nolock', upstream: remote } });
    return `demoting self: standby cluster is unlocked and I may not take the lock (${verdict.reason})`;
  }
  if (pg.divergence === 'need') return handleDiverged(obs, d, remote);
  return followRemoteUnlocked(obs, d, remote, `not the healthiest node: ${verdict.reason}`);
}
