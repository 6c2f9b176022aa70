// Observation: what the driver gathers for decide() at the start of a tick. The cluster view (within
// the time the fence deadline leaves), the local PostgreSQL facts, the failsafe facts, the peers'
// statuses when a leader race or a switchover needs them, and the divergence check when its answer
// matters. Updates the driver's memory of the last good cluster view, configuration and topology.

import { uncleanPrimaryShutdown } from '../core/decide.ts';
import type { ClusterView, DynamicConfig, LocalPg, Observation, TaskState } from '../core/model.ts';
import { activeRequest } from '../core/switchover.ts';
import { parseBool } from '../core/values.ts';
import type { PostgresqlSettings } from '../config/types.ts';
import { readBudgetMs } from '../fence/deadline.ts';
import { prePromoteBackoff } from './hooks.ts';
import { apiUrl, connUrl } from './member.ts';
import type { NodeDriver } from './driver.ts';
import { standbyDivergenceQuestion } from './standby.ts';
import { remoteUpstream, standbyCluster } from '../core/standby.ts';
import { resolveReplicaMethods } from '../config/replica-methods.ts';

export async function observe(d: NodeDriver): Promise<Observation> {
  const { clock, dcs } = d.ports;
  let cluster: ClusterView | undefined;
  let dcsError: string | undefined;
  // A primary whose fencer is armed stops waiting for the DCS in time to demote cleanly (a fast
  // shutdown with its checkpoint) before the fencer would SIGKILL PostgreSQL: waiting the whole
  // retry_timeout would only let the fencer win the race.
  const budget = readBudgetMs(d.fenceDeadline, clock.now(), d.dynamic.retry_timeout * 1000, d.dynamic.failsafe_mode === true);
  try {
    if (budget !== undefined && budget <= 0) throw new Error('no time left before the fence deadline to read the DCS');
    cluster = await dcs.readCluster(budget === undefined ? undefined : { signal: clock.timeout(budget) });
    d.cluster = cluster;
    d.clusterReadAt = clock.now();
    if (cluster.leader !== undefined) d.lastHealthy = cluster;
    if (cluster.config !== undefined) d.lastGoodConfig = cluster.config;
    if (cluster.failsafe !== undefined) d.failsafeTopology = cluster.failsafe;
  } catch (err) {
    dcsError = err instanceof Error ? err.message : String(err);
    if (budget !== undefined) dcsError = `the DCS did not answer within ${budget} ms, the time left before the fence deadline: ${dcsError}`;
  }
  d.applyDynamicConfig(d.lastGoodConfig ?? d.config.bootstrap?.dcs);

  const pg = await d.ports.pg.observe();
  const task = d.task;
  if (pg.running) {
    if (task?.state === 'running' && task.kind === 'start') d.pgState = 'starting';
    else if (pg.ready) d.pgState = 'running';
  } else if (task?.state !== 'running') {
    // In pause a dead postmaster is published as `stopped`, as Patroni does (it is not restarted).
    d.pgState = d.dynamic.pause !== true && (d.pgState === 'crashed' || pg.crashed) ? 'crashed' : 'stopped';
  }
  if (pg.dataDirEmpty && task === undefined) d.pgState = 'stopped';
  pg.crashed = d.pgState === 'crashed';

  const config = d.config;
  const obs: Observation = {
    now: clock.now(),
    wallClock: new Date(clock.wallNow()).toISOString(),
    self: {
      name: config.name,
      // A node whose required watchdog cannot work never races (behavior 12.1), nor one whose
      // pre_promote failed less than ttl ago (behavior 5.2 step 1).
      tags: d.watchdogFailed || prePromoteBackoff(d) ? { ...config.tags, nofailover: true } : config.tags,
      canBootstrap: config.bootstrap !== undefined,
      cloneWithoutLeader: cloneWithoutLeader(config.postgresql, d.dynamic),
      // What the lock holder writes to a missing or unparsable /config: the last /config this agent
      // read and parsed, else bootstrap.dcs (Patroni writes its cached dynamic configuration), so
      // that repairing a wiped or corrupted key never reverts the operator's edit-config changes.
      bootstrapDcs: d.lastGoodConfig ?? config.bootstrap?.dcs ?? {},
      ...removeDataDirectoryFlags(config.postgresql, d.dynamic.postgresql),
    },
    config: d.dynamic,
    cluster,
    pg,
    task: taskState(d),
    failures: d.failures,
    memory: d.memory,
  };
  if (dcsError !== undefined) obs.dcsError = dcsError;
  if (d.dynamic.failsafe_mode === true) obs.failsafe = await observeFailsafe(d, cluster, pg);
  if (d.lastHealthy !== undefined) obs.lastHealthyCluster = d.lastHealthy;
  if (d.lockRefreshedAt !== undefined) obs.lockRefreshedAt = d.lockRefreshedAt;

  if (cluster !== undefined) {
    const idle = d.task?.state !== 'running';
    const raceMatters = cluster.leader === undefined && pg.running && pg.inRecovery && idle;
    const switchoverMatters = cluster.leader?.name === config.name && activeRequest(cluster) !== undefined && idle;
    if (raceMatters || switchoverMatters) obs.peers = await fetchPeers(d, cluster);
    await observeDivergence(d, cluster, pg);
  }
  d.lastPg = pg;
  return obs;
}

/**
 * Whether this member can create a replica while the cluster has no lock holder (Patroni's rule):
 * one of the methods it would copy with works without a replication connection (no_leader or
 * no_master; never basebackup). In a standby cluster those are standby_cluster.
 * create_replica_methods, resolved against this member's postgresql sections (none listed: none
 * works), since such a copy is made from the remote member; else postgresql.create_replica_methods.
 */
export function cloneWithoutLeader(local: Pick<PostgresqlSettings, 'createReplicaMethods' | 'replicaMethodSections'>, dynamic: DynamicConfig | Record<string, unknown>): boolean {
  const sc = standbyCluster(dynamic);
  const methods = sc === undefined
    ? (local.createReplicaMethods ?? [])
    : resolveReplicaMethods(sc.create_replica_methods ?? [], local.replicaMethodSections ?? {}).methods;
  return methods.some((m) => m.noLeader && m.command !== undefined);
}

/** remove_data_directory_on_*: the local section's keys when it sets them, else the dynamic configuration's (as in Patroni), else off. */
export function removeDataDirectoryFlags(
  local: Pick<PostgresqlSettings, 'removeDataDirectoryLocal' | 'removeDataDirectoryOnRewindFailure' | 'removeDataDirectoryOnDivergedTimelines'>,
  dynamicPg: Record<string, unknown>,
): { remove_data_directory_on_rewind_failure: boolean; remove_data_directory_on_diverged_timelines: boolean } {
  return {
    remove_data_directory_on_rewind_failure:
      local.removeDataDirectoryLocal?.onRewindFailure ?? parseBool(dynamicPg.remove_data_directory_on_rewind_failure) ?? local.removeDataDirectoryOnRewindFailure,
    remove_data_directory_on_diverged_timelines:
      local.removeDataDirectoryLocal?.onDivergedTimelines ?? parseBool(dynamicPg.remove_data_directory_on_diverged_timelines) ?? local.removeDataDirectoryOnDivergedTimelines,
  };
}

/** The running or just-finished task as decide() sees it; transient was classified when it failed. */
export function taskState(d: NodeDriver): TaskState | undefined {
  const t = d.task;
  if (t === undefined) return undefined;
  const s: TaskState = { kind: t.kind, startedAt: t.startedAt, state: t.state };
  if (t.error !== undefined) s.error = t.error;
  if (t.from !== undefined) s.from = t.from;
  if (t.state === 'failed' && t.transient) s.transient = true;
  return s;
}

/**
 * Failsafe facts. When the DCS cannot be read and we run as a primary (not paused), ask every
 * other member of the last /failsafe value to confirm us (POST /failsafe); all must accept. The
 * confirmation counts like a lock refresh that started when we began asking: each member that
 * accepted will not race for ttl seconds from its answer, which is later.
 */
async function observeFailsafe(d: NodeDriver, cluster: ClusterView | undefined, pg: LocalPg): Promise<NonNullable<Observation['failsafe']>> {
  const facts: NonNullable<Observation['failsafe']> = {};
  if (d.failsafeTopology !== undefined) facts.topology = d.failsafeTopology;
  const s = d.failsafeSender;
  if (s !== undefined) facts.leader = { name: s.name, connUrl: s.connUrl, apiUrl: s.apiUrl, at: s.at };
  if (cluster !== undefined || !pg.running || pg.inRecovery || d.dynamic.pause === true) return facts;
  const started = d.ports.clock.now();
  const me = d.config.name;
  const res = await d.ports.peers.checkFailsafe(me, d.failsafeTopology, { name: me, conn_url: connUrl(d.config), api_url: apiUrl(d.config), slots: {} });
  facts.check = { ok: res.ok, reason: res.reason };
  if (res.ok) d.lockRefreshedAt = started;
  return facts;
}

/** The statuses of the members of the last healthy and the current view (and, in failsafe mode, of /failsafe). */
function fetchPeers(d: NodeDriver, cluster: ClusterView) {
  const me = d.config.name;
  const byName = new Map<string, string>();
  for (const view of [d.lastHealthy, cluster]) {
    for (const m of view?.members ?? []) {
      if (m.name !== me && typeof m.data.api_url === 'string') byName.set(m.name, m.data.api_url);
    }
  }
  // Failsafe mode: every member of /failsafe is asked too (a primary cut off from the DCS may
  // still be running and confirming itself to some of them).
  if (d.dynamic.failsafe_mode === true) {
    for (const [name, url] of Object.entries(d.failsafeTopology ?? {})) if (name !== me && !byName.has(name)) byName.set(name, url);
  }
  return d.ports.peers.fetchStatuses([...byName].map(([name, apiUrl]) => ({ name, apiUrl })));
}

/**
 * When pg_rewind's question (did our history diverge from the leader's?) matters: PostgreSQL is
 * stopped with data while another member leads as a primary, or a running replica is not streaming
 * from a leader on a newer timeline. Returns the cache key of the question, or undefined when it
 * does not matter (or the core sends the node through pg_rewind anyway: an unclean primary).
 */
export function divergenceQuestion(me: string, cluster: ClusterView, pg: LocalPg, remote?: string): { key: string; connUrl: string } | 'not_asked' | 'irrelevant' | 'ahead' {
  const leader = cluster.leader?.name;
  if (remote !== undefined) {
    const q = standbyDivergenceQuestion(me, cluster, pg, remote);
    if (q !== undefined) return q;
  }
  const lm = cluster.members.find((m) => m.name === leader);
  if (leader === undefined || leader === me || lm?.data.conn_url === undefined || lm.data.role !== 'primary' || pg.dataDirEmpty) return 'not_asked';
  const leaderTl = typeof lm.data.timeline === 'number' ? lm.data.timeline : undefined;
  const stoppedWithData = !pg.running;
  const stuckReplica = pg.running && pg.ready && pg.inRecovery && !pg.streaming && leaderTl !== undefined && pg.timeline !== undefined && leaderTl > pg.timeline;
  if (!stoppedWithData && !stuckReplica) return 'irrelevant';
  if (stoppedWithData && uncleanPrimaryShutdown(pg)) return 'not_asked';
  return { key: `${leader}/${leaderTl}/${pg.controlState}/${pg.timeline}/${pg.walLsn}`, connUrl: lm.data.conn_url };
}

/** Ask the leader whether our history diverged, when it matters (see divergenceQuestion); cached per question. */
async function observeDivergence(d: NodeDriver, cluster: ClusterView, pg: LocalPg): Promise<void> {
  const q = divergenceQuestion(d.config.name, cluster, pg, remoteUpstream({ config: d.dynamic }));
  if (q === 'ahead') pg.divergence = 'need';
  if (q === 'irrelevant') d.divergenceCache = undefined;
  if (typeof q === 'string') return;
  if (d.divergenceCache?.key === q.key) {
    pg.divergence = d.divergenceCache.value;
    return;
  }
  try {
    const value = await d.ports.pg.checkDivergence({ connUrl: q.connUrl }, { timeoutMs: 5000 });
    d.divergenceCache = { key: q.key, value };
    pg.divergence = value;
  } catch (err) {
    d.log.warn({ leader: cluster.leader?.name }, `could not compare timelines with the leader: ${err instanceof Error ? err.message : String(err)}`);
  }
}
