// The shell's side of standby clusters (core/standby.ts decides): what the remote member's reserved
// upstream name resolves to for PostgreSQL (primary_conninfo, slot, recovery settings), and the
// role the user's callbacks are told when PostgreSQL follows an upstream.

import { remoteFromName, remoteUpstream, standbyCluster } from '../core/standby.ts';
import type { Decision, Observation } from '../core/model.ts';
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
