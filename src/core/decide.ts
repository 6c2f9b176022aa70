// The HA decision core: one pure function from an Observation to a Decision.
//
// It never performs IO and never reads the clock: time, the DCS view, the local PostgreSQL facts,
// peer answers and the outcome of the previous tick's actions are all inputs. The agent executes
// the returned actions in order and stops at the first that fails; the failure is an input of
// the next tick (which the agent runs at once).
//
// The rules follow ../shared/spec/patroni-behavior.md (sections 2, 3, 4, 9, 10.4) as our safety
// floor; where we deviate, the comment says why.

import { isFailoverPossible, isNoFailover } from './election.ts';
import { primaryMayStay } from './failsafe.ts';
import { manualRaceVerdict } from './switchover.ts';
import type { ClusterView, Decision, LocalPg, Observation, TaskState } from './model.ts';
import { DecisionBuilder, FAST_WAKE_MS, failed, memberOf, paused, upstreamFor } from './builder.ts';
import { replicaSlots } from './slots.ts';
import { describeRemote, remoteUpstream } from './standby.ts';
import { divergedFrom, handleDiverged } from './diverged.ts';
import { asLeader, unlocked } from './leader.ts';

export function decide(obs: Observation): Decision {
  const d = new DecisionBuilder(obs);
  return d.finish(decideInner(obs, d));
}

function decideInner(obs: Observation, d: DecisionBuilder): string {
  const { self, pg, config } = obs;
  const cluster = obs.cluster;
  const me = self.name;
  const ttlMs = config.ttl * 1000;

  // ---- Bootstrap bookkeeping ------------------------------------------------------------------
  // `bootstrapping` lasts while the bootstrap task runs or its outcome waits to be handled; a
  // decision to bootstrap whose task never started (the /initialize race was lost, startTask
  // failed) leaves no task, and must not leave the flag set: a node that cloned from the winner
  // and later loses the DCS would otherwise wait forever for "bootstrap to finish".
  let bootTask: TaskState | undefined = obs.task?.kind === 'bootstrap' ? obs.task : undefined;
  if (obs.memory.bootstrapping === true && bootTask === undefined) {
    const pending = obs.memory.bootstrapResult;
    if (pending === undefined) d.memory.bootstrapping = false;
    else if (cluster !== undefined) {
      bootTask = { kind: 'bootstrap', startedAt: obs.now, state: pending.state, ...(pending.error !== undefined ? { error: pending.error } : {}) };
      d.memory.bootstrapResult = undefined;
    }
  }

  // ---- DCS not readable --------------------------------------------------------------------
  if (cluster === undefined) {
    // A bootstrap that finishes now is handled when the DCS answers (the finished task is
    // reported only once).
    if (bootTask !== undefined && bootTask.state !== 'running') {
      d.memory.bootstrapResult = { state: bootTask.state, ...(bootTask.error !== undefined ? { error: bootTask.error } : {}) };
    }
    const why = `DCS is not accessible${obs.dcsError ? `: ${obs.dcsError}` : ''}`;
    if (paused(obs)) return why;
    if (!pg.running) {
      // PostgreSQL is down (the fencer killed a primary whose lock could not be confirmed, or it
      // crashed): bring it back read-only, following nobody. A standby cannot accept writes, so
      // this is safe without the DCS, and it serves reads and keeps the node ready to follow the
      // leader once the DCS answers (a diverged former primary is rewound then, as after any
      // demotion).
      const task = obs.task;
      if (task?.state === 'running') return `${why}; ${task.kind} in progress`;
      if (pg.dataDirEmpty) return `${why}; the data directory is empty`;
      if (pg.sysid === undefined) return `${why}; not starting postgres: its system identifier could not be read`;
      if (d.memory.bootstrapping === true) return `${why}; bootstrap did not finish`;
      // Not a data directory known to have diverged from the cluster (it would serve reads of
      // transactions the cluster never committed): it waits for the DCS and its repair.
      if (obs.memory.rewindCheck === 'need' || obs.memory.rewindCheck === 'failed' || obs.memory.rewindFailedFrom !== undefined) {
        const from = obs.memory.rewindFailedFrom ?? remoteUpstream(obs);
        return `${why}; not starting postgres: its timeline diverged from ${from !== undefined ? divergedFrom(from) : "the leader's"} and awaits repair`;
      }
      // A former primary only when it was the leader in the last view this agent saw (fenced or
      // crashed while leading: as after a demotion); otherwise another member may have been
      // promoted meanwhile and its tail be lost writes: it waits for the DCS and the timeline check.
      const wasLeader = obs.lastHealthyCluster?.leader?.name === self.name;
      if (!pg.inRecovery && !wasLeader) return `${why}; not starting postgres: it was a primary and this agent has not seen it lead`;
      d.add({ type: 'startTask', task: { kind: 'start', asPrimary: false, upstream: null } });
      return `${why}; starting postgres read-only, following nobody`;
    }
    if (!pg.inRecovery) {
      if (obs.task?.state === 'running' && obs.task.kind === 'demote') return 'demoting: DCS is not accessible';
      // Failsafe mode: every other member confirmed us in this cycle (and promised not to race
      // for ttl), so we keep running as the primary.
      const failsafe = primaryMayStay(obs);
      if (failsafe.stay) {
        d.isLeader = true;
        d.role = 'primary';
        d.memory.failsafeActive = true;
        d.wake(Math.min(obs.config.loop_wait * 1000, Math.floor((obs.config.ttl * 1000) / 3)));
        return `continue to run as a leader because failsafe mode is enabled and all members are accessible (${failsafe.reason})`;
      }
      // A primary that cannot see the DCS cannot know it still holds the lock, so it stops
      // accepting writes (fast stop) and restarts read-only, following nobody.
      d.memory.failsafeActive = false;
      d.role = 'demoted';
      d.add({ type: 'cancelTask' }, { type: 'startTask', task: { kind: 'demote', mode: 'offline', upstream: null } });
      return obs.config.failsafe_mode === true
        ? `demoting self because DCS is not accessible and I was a leader (failsafe: ${failsafe.reason})`
        : 'demoting self because DCS is not accessible and I was a leader';
    }
    return 'DCS is not accessible; staying a replica';
  }

  const leaderName = cluster.leader?.name;
  const iHoldLock = leaderName === me;
  if (leaderName !== undefined) delete d.memory.raceBackoff;
  if (iHoldLock) d.isLeader = obs.lockRefreshedAt !== undefined && obs.now - obs.lockRefreshedAt < ttlMs;

  // ---- What happened to the previous tick's lock operations -------------------------------
  const refreshFailure = failed(obs, 'refreshLeader');
  if (refreshFailure !== undefined && pg.running && !pg.inRecovery && !paused(obs)) {
    d.isLeader = false;
    d.role = 'demoted';
    const mode = refreshFailure.outcome === 'unreachable' ? 'offline' : 'immediate-nolock';
    d.add({ type: 'cancelTask' }, { type: 'startTask', task: { kind: 'demote', mode, upstream: null } });
    return `demoting self because the leader lock could not be updated (${refreshFailure.outcome}: ${refreshFailure.message})`;
  }

  // ---- A background task is running ---------------------------------------------------------
  const task = obs.task;
  if (task !== undefined && task.state === 'running') {
    if (iHoldLock) {
      d.add({ type: 'refreshLeader' });
      // A graceful demotion keeps the lock until PostgreSQL is down, but stops answering as primary.
      d.isLeader = task.kind !== 'demote';
      if (task.kind === 'start' && config.primary_start_timeout >= 0 && obs.now - task.startedAt > config.primary_start_timeout * 1000 && isFailoverPossible(obs)) {
        d.add({ type: 'cancelTask' }, { type: 'startTask', task: { kind: 'stop', mode: 'immediate', releaseLeader: true } });
        return `PostgreSQL did not start within primary_start_timeout (${config.primary_start_timeout} s); giving up the lock`;
      }
      return `updated leader lock during ${task.kind}`;
    }
    if (task.kind === 'promote') {
      // We lost the lock while promoting: stop the promotion; the next tick demotes if needed.
      d.add({ type: 'cancelTask' });
      return 'lost leader lock before promote finished';
    }
    d.wake(FAST_WAKE_MS);
    return `${task.kind} in progress`;
  }

  // ---- A background task finished since the last tick --------------------------------------
  if (bootTask !== undefined && bootTask.state !== 'running') {
    d.memory.bootstrapping = false;
    if (bootTask.state === 'failed' || !pg.running || pg.sysid === undefined) {
      d.add({ type: 'deleteInitialize' }, { type: 'removeDataDir' });
      return `bootstrap failed (${bootTask.error ?? 'postgres is not running'}); removed /initialize so the race can run again`;
    }
    // A standby cluster's first member cloned the remote member: it leads as the standby leader.
    d.role = pg.inRecovery && remoteUpstream(obs) !== undefined ? 'standby_leader' : 'primary';
    d.isLeader = true;
    d.add(
      { type: 'writeInitialize', sysid: pg.sysid },
      { type: 'writeConfig', config: self.bootstrapDcs },
      { type: 'takeLeader' },
    );
    return d.role === 'standby_leader' ? 'initialized a new standby cluster from the remote member' : 'initialized a new cluster';
  }
  if (task !== undefined && task.state === 'failed' && task.kind === 'start' && iHoldLock) {
    d.isLeader = false;
    d.add({ type: 'releaseLeader' });
    return `removed leader key after trying and failing to start postgres (${task.error ?? 'unknown error'})`;
  }
  if (task !== undefined && task.state === 'failed' && task.kind === 'rewind') {
    const source = leaderName !== undefined && leaderName !== me ? leaderName : undefined;
    const failedFrom = task.from ?? source;
    if (task.transient === true) {
      d.wake(FAST_WAKE_MS * 5);
      return `pg_rewind could not use ${failedFrom ?? 'the leader'} (${task.error ?? 'unknown error'}); will try again`;
    }
    if (source !== undefined && (self.remove_data_directory_on_rewind_failure || self.remove_data_directory_on_diverged_timelines)) {
      d.add({ type: 'startTask', task: { kind: 'reinitialize', from: source } });
      return `pg_rewind failed (${task.error ?? 'unknown error'}); re-creating the replica from ${source}`;
    }
    d.memory.rewindCheck = 'failed';
    if (failedFrom !== undefined) d.memory.rewindFailedFrom = failedFrom;
    return `pg_rewind failed (${task.error ?? 'unknown error'}); not retrying: set remove_data_directory_on_rewind_failure or reinitialize this member`;
  }
  if (task !== undefined && task.state === 'failed' && task.kind === 'clone') {
    d.wake(FAST_WAKE_MS * 5);
    return `creating a replica failed (${task.error ?? 'unknown error'}); will try again`;
  }

  // ---- Empty data directory -----------------------------------------------------------------
  if (pg.dataDirEmpty) {
    d.role = 'uninitialized';
    if (iHoldLock) {
      d.add({ type: 'releaseLeader' });
      return 'data directory is empty; released the leader lock';
    }
    if (leaderName === undefined && cluster.initialize === undefined && self.canBootstrap && !isNoFailover(self.tags)) {
      d.memory.bootstrapping = true;
      const remote = remoteUpstream(obs);
      if (remote !== undefined) {
        // A standby cluster is never initdb'ed: its first member clones the remote member (spec 9.1, 9.4).
        d.add({ type: 'createInitialize' }, { type: 'startTask', task: { kind: 'bootstrap', remote } });
        return `trying to bootstrap a new standby leader: clone from remote member ${describeRemote(remote)}`;
      }
      d.add({ type: 'createInitialize' }, { type: 'startTask', task: { kind: 'bootstrap' } });
      return 'trying to bootstrap a new cluster';
    }
    if (leaderName !== undefined) {
      const source = cloneSource(cluster, me, leaderName);
      if (source === undefined) {
        d.wake(FAST_WAKE_MS);
        return `waiting for the leader ${leaderName} to publish its connection address`;
      }
      d.add({ type: 'startTask', task: { kind: 'clone', from: source } });
      return `bootstrap from ${source === leaderName ? 'leader' : 'replica'} '${source}'`;
    }
    // Patroni's rule: with no leader, and the bootstrap race not open to this node, a member whose
    // create_replica_methods include a no_leader method restores on its own, unless a bootstrap
    // is in progress (/initialize is ""). In a standby cluster the copy is of the remote member
    // (with standby_cluster.create_replica_methods, which cloneWithoutLeader then judged).
    if (self.cloneWithoutLeader === true && cluster.initialize !== '') {
      d.add({ type: 'startTask', task: { kind: 'clone', from: remoteUpstream(obs) ?? null } });
      return 'bootstrap (without leader)';
    }
    d.wake(FAST_WAKE_MS);
    const who = remoteUpstream(obs) !== undefined ? 'standby_leader' : 'leader';
    return cluster.initialize === '' ? `waiting for ${who} to bootstrap (bootstrap in progress)` : `waiting for ${who} to bootstrap`;
  }

  // ---- Cluster identity ---------------------------------------------------------------------
  const init = cluster.initialize;
  const validInit = init !== undefined && /^\d{10,}$/.test(init);
  if (validInit && pg.sysid !== undefined && pg.sysid !== init) {
    // Patroni exits here. One key would then stop the whole cluster: every agent exits, the
    // primary is fenced and the replicas run without agents. Whether the key or the data
    // directory is wrong (someone wrote /initialize, or this node points at another cluster's
    // scope), the safe course is the same: stay up, never take or keep the lock, never accept
    // writes, keep serving reads, and say so on every tick until an operator fixes one of them.
    const why = `data directory belongs to another cluster: system identifier ${pg.sysid} differs from /initialize ${init}`;
    d.isLeader = false;
    if (iHoldLock) d.add({ type: 'releaseLeader' });
    if (paused(obs)) return `${why}; paused, so leaving postgres as it is`;
    if (pg.running && !pg.inRecovery) {
      d.role = 'demoted';
      d.add({ type: 'startTask', task: { kind: 'demote', mode: 'offline', upstream: null } });
      return `${why}; demoting to read-only until /initialize or the data directory is fixed`;
    }
    d.role = 'replica';
    return `${why}; staying read-only until /initialize or the data directory is fixed`;
  }
  if (!validInit && leaderName === undefined && pg.sysid !== undefined && !paused(obs) && obs.memory.started !== true) {
    if (pg.running && pg.inRecovery) {
      d.exit = 'the cluster has no /initialize key and this node runs a replica: start vigil on the primary first';
      return d.exit;
    }
    d.add({ type: 'writeInitialize', sysid: pg.sysid });
  }
  if (iHoldLock && !validInit && pg.sysid !== undefined) d.add({ type: 'writeInitialize', sysid: pg.sysid });
  if (iHoldLock && cluster.config === undefined) d.add({ type: 'writeConfig', config: self.bootstrapDcs });

  // ---- PostgreSQL is not running --------------------------------------------------------------
  if (!pg.running) return recover(obs, d, leaderName);

  // ---- PostgreSQL is running ----------------------------------------------------------------
  if (leaderName === undefined) return unlocked(obs, d);
  if (iHoldLock) return asLeader(obs, d);
  return follow(obs, d, leaderName);
}

/** The member a new replica copies from: a running clonefrom member, else the leader. */
export function cloneSource(cluster: ClusterView | undefined, me: string, leaderName: string): string | undefined {
  const candidates = (cluster?.members ?? []).filter(
    (m) => m.name !== me && m.name !== leaderName && m.data.tags?.clonefrom === true && m.data.state === 'running' && m.data.conn_url !== undefined,
  );
  // Deterministic choice (the core has no randomness): the clonefrom member with the most WAL.
  candidates.sort((a, b) => (b.data.xlog_location ?? 0) - (a.data.xlog_location ?? 0) || a.name.localeCompare(b.name));
  if (candidates[0] !== undefined) return candidates[0].name;
  return memberOf(cluster, leaderName)?.data.conn_url !== undefined ? leaderName : undefined;
}

/** PostgreSQL is down (crashed, stopped, or never started by this agent). */
function recover(obs: Observation, d: DecisionBuilder, leaderName: string | undefined): string {
  const { pg, config, self } = obs;
  const iHoldLock = leaderName === self.name;
  if (paused(obs)) {
    if (iHoldLock) {
      d.add({ type: 'releaseLeader' });
      return 'removed leader lock because postgres is not running';
    }
    // Pause starts nothing, except a former primary that a switchover (or another demotion) just
    // stopped: it is started again as a replica, as Patroni's demote does.
    const demoted = (obs.task?.kind === 'demote' && obs.task.state === 'ok') || obs.memory.startAfterDemote === true;
    if (!demoted) return 'postgres is not running (paused: not starting it)';
    d.memory.startAfterDemote = true;
  }

  const remote = remoteUpstream(obs);
  if (remote !== undefined && (iHoldLock || (leaderName === undefined && !paused(obs)))) return startFollowingRemote(obs, d, remote, iHoldLock);

  if (iHoldLock) {
    if (config.primary_start_timeout === 0 && isFailoverPossible(obs)) {
      d.isLeader = false;
      d.add({ type: 'releaseLeader' });
      return 'postgres is not running and primary_start_timeout is 0: released the lock so a replica takes over';
    }
    // Restart in place. A data directory that was a primary restarts as a primary (crash recovery
    // first, done by PostgreSQL itself); one that was a replica starts read-only and is promoted by
    // the next tick, like any replica that holds the lock.
    d.isLeader = true;
    d.add({ type: 'refreshLeader' }, { type: 'startTask', task: { kind: 'start', asPrimary: !pg.inRecovery, upstream: null } });
    d.memory.crashStartAt = obs.now;
    return pg.crashed ? 'starting primary after failure' : 'starting postgres as the leader with the lock';
  }

  if (leaderName === undefined) {
    const manual = manualRaceVerdict(obs);
    if (manual !== undefined && !manual.race) {
      d.wake(FAST_WAKE_MS / 2);
      return `not starting postgres yet: ${manual.reason}`;
    }
    // Nobody holds the lock. Start read-only following nobody; the race happens once it runs.
    d.add({ type: 'startTask', task: { kind: 'start', asPrimary: false, upstream: null } });
    return 'starting as a read-only standby: the cluster has no leader';
  }

  const upstream = upstreamFor(obs, leaderName);
  const lm = memberOf(obs.cluster, leaderName);
  // In a standby cluster the repair source is the remote member, always ready to be asked.
  const leaderReady = (lm?.data.role === 'primary' && lm.data.conn_url !== undefined) || remote !== undefined;
  // In a standby cluster the repair source is the remote member (its standby leader is in recovery).
  if (pg.divergence === 'need' || (leaderReady && uncleanPrimaryShutdown(pg))) return handleDiverged(obs, d, remote ?? leaderName);
  if (pg.divergence === undefined && !pg.inRecovery && pg.controlState !== 'shut down in recovery' && pg.controlState !== 'in archive recovery') {
    // This data directory was a primary and the leader could not be asked whether our history
    // diverged from its. Starting it as a replica could stream over a divergence; wait.
    d.wake(FAST_WAKE_MS * 2);
    return `waiting to compare timelines with the leader ${leaderName} before starting as a replica`;
  }
  d.add({ type: 'startTask', task: { kind: 'start', asPrimary: false, upstream } });
  return `starting as a replica of ${upstream}`;
}

/**
 * A primary that did not shut down cleanly (a crash: "in production" in pg_control) has WAL past
 * its last checkpoint that pg_controldata cannot show, so no divergence check can clear it: it
 * always goes through pg_rewind (a no-op when nothing diverged) before following a new leader.
 * The agent uses this to skip the useless check.
 */
export function uncleanPrimaryShutdown(pg: LocalPg): boolean {
  return !pg.running && !pg.inRecovery && ['in production', 'in crash recovery', 'shutting down'].includes(pg.controlState ?? '');
}

/**
 * Standby cluster, PostgreSQL down, and this node holds the lock (the standby leader) or nobody
 * does: start it following the remote member, through pg_rewind when it was a primary whose history
 * diverged from the remote's (demote-cluster), never as a primary.
 */
function startFollowingRemote(obs: Observation, d: DecisionBuilder, remote: string, iHoldLock: boolean): string {
  const { pg } = obs;
  if (iHoldLock) {
    d.isLeader = true;
    d.add({ type: 'refreshLeader' });
  }
  d.role = iHoldLock ? 'standby_leader' : 'replica';
  if (pg.divergence === 'need' || uncleanPrimaryShutdown(pg)) return handleDiverged(obs, d, remote);
  if (pg.divergence === undefined && !pg.inRecovery && pg.controlState !== 'shut down in recovery' && pg.controlState !== 'in archive recovery') {
    d.wake(FAST_WAKE_MS * 2);
    return `waiting to compare timelines with the remote member ${describeRemote(remote)} before following it`;
  }
  d.add({ type: 'startTask', task: { kind: 'start', asPrimary: false, upstream: remote } });
  return iHoldLock
    ? `starting as a standby leader because i had the session lock (following ${describeRemote(remote)})`
    : `trying to follow a remote member because standby cluster is unhealthy (${describeRemote(remote)})`;
}

/** PostgreSQL runs and another member holds the lock. */
function follow(obs: Observation, d: DecisionBuilder, leaderName: string): string {
  const { pg } = obs;
  if (!pg.inRecovery) {
    if (paused(obs)) return `continue to run as primary without lock (paused; ${leaderName} holds the lock)`;
    d.role = 'demoted';
    d.add({ type: 'startTask', task: { kind: 'demote', mode: 'immediate-nolock', upstream: leaderName } });
    return `demoting self because I do not have the lock and I was a leader (${leaderName} holds it)`;
  }
  if (pg.divergence === 'need') return handleDiverged(obs, d, remoteUpstream(obs) ?? leaderName);
  d.memory.rewindCheck = undefined;
  d.memory.rewindFailedFrom = undefined;
  d.role = 'replica';
  const upstream = upstreamFor(obs, leaderName);
  if (remoteUpstream(obs) !== undefined && memberOf(obs.cluster, upstream)?.data.conn_url === undefined) {
    // The leader key names a member without a key (spec 9.4): keep the recovery settings as they are.
    return 'continue following the old known standby leader';
  }
  if (pg.upstream !== upstream) {
    d.add({ type: 'followUpstream', upstream }, ...replicaSlots(obs, d.memory));
    return `following new upstream ${upstream}`;
  }
  d.add(...replicaSlots(obs, d.memory));
  return `no action. I am (${obs.self.name}), a secondary, and following a leader (${leaderName})`;
}
