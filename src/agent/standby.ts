// The shell's side of standby clusters (core/standby.ts decides): what the remote member's reserved
// upstream name resolves to for PostgreSQL (primary_conninfo, slot, recovery settings), and the
// role the user's callbacks are told when PostgreSQL follows an upstream.

import { remoteFromName, remoteUpstream, standbyCluster } from '../core/standby.ts';
import type { ClusterView, Decision, LocalPg, Observation } from '../core/model.ts';
import { uncleanPrimaryShutdown } from '../core/decide.ts';
import type { Upstream } from '../postgres/conf.ts';
import type { CallbackRole } from './hooks.ts';
import type { NodeDriver } from './driver.ts';

/**
 * The upstream for a reserved remote name (undefined for a member name). A remote without host and
 * port streams nothing (connUrl ''): WAL comes from restore_command only.
 */
export function remoteTarget(name: string): Upstream | undefined {
  const r = remoteFromName(name);
  if (r === undefined) return undefined;
  return { connUrl: r.connUrl ?? '', name, slot: r.slot, recovery: r.recovery };
}

/**
 * In a standby cluster the members that follow the standby leader use the standby_cluster's
 * restore_command and archive_cleanup_command too (spec 10.1); {} otherwise.
 */
export function memberRecovery(dynamic: Record<string, unknown>): Pick<Upstream, 'recovery'> {
  const sc = standbyCluster(dynamic);
  if (sc === undefined) return {};
  const recovery: Record<string, string> = {};
  if (sc.restore_command !== undefined) recovery.restore_command = sc.restore_command;
  if (sc.archive_cleanup_command !== undefined) recovery.archive_cleanup_command = sc.archive_cleanup_command;
  return Object.keys(recovery).length > 0 ? { recovery } : {};
}

/**
 * The callbacks' role of a node that follows `upstream`: standby_leader when it follows the remote
 * as the lock holder (the role decided this tick), else replica.
 */
export function followRole(d: Pick<NodeDriver, 'role'>, upstream: string | null): CallbackRole {
  return remoteFromName(upstream) !== undefined && d.role === 'standby_leader' ? 'standby_leader' : 'replica';
}

/**
 * Whether the fencer guards this node as the leader: the lock holder, except in a standby cluster
 * while its PostgreSQL runs read-only (a standby leader cannot accept writes; a primary being
 * demoted by demote-cluster still can, and stays guarded).
 */
export function fencedAsLeader(decision: Pick<Decision, 'isLeader'>, obs: Pick<Observation, 'pg' | 'config'>): boolean {
  return decision.isLeader && !(obs.pg.running && obs.pg.inRecovery && remoteUpstream(obs) !== undefined);
}

/**
 * pg_rewind's question in a standby cluster (observe.ts divergenceQuestion), undefined when the
 * usual rules apply. The source of truth is the remote member: a standby leader is in recovery and
 * cannot be asked.
 * - The lock holder, or a member of an unlocked standby cluster, follows the remote: asked when
 *   stopped with data (a former primary after demote-cluster, or any member before it starts) and
 *   while it runs but cannot stream (the remote's failover may have forked its history before our
 *   position).
 * - A member following the standby leader: 'ahead' (diverged, no need to ask) when it cannot
 *   stream and is on a timeline newer than the one its standby leader publishes (the cluster was
 *   promoted, then demoted back onto the remote's history); the remote is asked when it is
 *   stopped, or cannot stream from a standby leader on a newer timeline.
 */
export function standbyDivergenceQuestion(me: string, cluster: ClusterView, pg: LocalPg, remote: string): { key: string; connUrl: string } | 'not_asked' | 'irrelevant' | 'ahead' | undefined {
  const leader = cluster.leader?.name;
  const connUrl = remoteTarget(remote)?.connUrl ?? '';
  const stuck = pg.running && pg.ready && pg.inRecovery && !pg.streaming;
  const key = { key: `${remote}/${pg.running}/${pg.controlState}/${pg.timeline}/${pg.walLsn}`, connUrl };
  if (pg.dataDirEmpty) return 'irrelevant';
  if (leader === undefined || leader === me) {
    if ((pg.running && !stuck) || connUrl === '') return 'irrelevant';
    if (!pg.running && uncleanPrimaryShutdown(pg)) return 'not_asked';
    return key;
  }
  const sl = cluster.members.find((m) => m.name === leader && m.data.role === 'standby_leader');
  if (sl === undefined) return undefined;
  const leaderTl = typeof sl.data.timeline === 'number' ? sl.data.timeline : undefined;
  // Not while streaming: what a replica streams comes from its leader, whose published timeline
  // may lag a switch.
  if (!pg.streaming && leaderTl !== undefined && pg.timeline !== undefined && pg.timeline > leaderTl) return 'ahead';
  if (connUrl === '') return 'not_asked';
  if (!pg.running) return uncleanPrimaryShutdown(pg) ? 'not_asked' : key;
  if (stuck && leaderTl !== undefined && pg.timeline !== undefined && leaderTl > pg.timeline) return key;
  return 'irrelevant';
}
