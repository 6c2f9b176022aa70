// Standby clusters (patroni-behavior.md section 9.4): the /config `standby_cluster` section, the
// "remote member" it describes (the other cluster's primary, or a router in front of it), and the
// decisions that differ from a primary cluster's. Pure.
//
// The remote member is named in actions (followUpstream, start, clone, rewind) by a reserved name
// that carries its whole description: REMOTE_PREFIX followed by JSON. The name is recorded in the
// generated postgresql.conf as the upstream followed, so any change of the section (a new host,
// another slot, a restore_command) reads as "a new upstream" and the follow step runs again. No
// member name can start with REMOTE_PREFIX (a member name is never given a leading '@' by Vigil's
// configuration, and the agent refuses to resolve such a member: see remoteFromName).

import type { DynamicConfig, Observation } from './model.ts';
import { DecisionBuilder, FAST_WAKE_MS, paused } from './builder.ts';
import { isStandbyClusterConfig } from './election.ts';
import { replicaSlots } from './slots.ts';

/** The settings of an active standby_cluster section (raw values as /config holds them). */
export interface StandbyCluster {
  host?: string;
  port?: number;
  /** Absent: no slot on the remote (Patroni's no_replication_slot, spec 9.4). */
  primary_slot_name?: string;
  create_replica_methods?: string[];
  restore_command?: string;
  archive_cleanup_command?: string;
  recovery_min_apply_delay?: string;
}

export const REMOTE_PREFIX = '@standby_cluster';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

/** The active standby_cluster section of a dynamic configuration; undefined when this is not a standby cluster. */
export function standbyCluster(config: Record<string, unknown> | DynamicConfig | undefined): StandbyCluster | undefined {
  if (!isStandbyClusterConfig(config as Record<string, unknown> | undefined)) return undefined;
  const sc = (config as Record<string, unknown>)['standby_cluster'] as Record<string, unknown>;
  const out: StandbyCluster = {};
  const host = str(sc['host']);
  if (host !== undefined) out.host = host;
  const port = typeof sc['port'] === 'number' ? sc['port'] : typeof sc['port'] === 'string' && /^\d+$/.test(sc['port']) ? Number(sc['port']) : undefined;
  if (port !== undefined) out.port = port;
  for (const key of ['primary_slot_name', 'restore_command', 'archive_cleanup_command', 'recovery_min_apply_delay'] as const) {
    const v = str(sc[key]);
    if (v !== undefined) out[key] = v;
  }
  const methods = sc['create_replica_methods'];
  if (Array.isArray(methods) && methods.every((m) => typeof m === 'string')) out.create_replica_methods = methods as string[];
  return out;
}

/** The reserved upstream name of the remote member described by `sc` (deterministic). */
export function remoteName(sc: StandbyCluster): string {
  const keys = Object.keys(sc).sort() as Array<keyof StandbyCluster>;
  return `${REMOTE_PREFIX} ${JSON.stringify(Object.fromEntries(keys.map((k) => [k, sc[k]])))}`;
}

export function isRemoteName(name: string | null | undefined): boolean {
  return typeof name === 'string' && name.startsWith(REMOTE_PREFIX);
}

/** How PostgreSQL follows the remote member (the agent turns it into primary_conninfo and recovery settings). */
export interface RemoteSource {
  /** postgres://host:port (no database: the local one is used); undefined without host and port (archive only). */
  connUrl: string | undefined;
  /** The slot to use on the remote; null: none. */
  slot: string | null;
  /** restore_command, archive_cleanup_command, recovery_min_apply_delay, when set. */
  recovery: Record<string, string>;
  createReplicaMethods: string[] | undefined;
}

/** The remote member a reserved name describes; undefined for a member name or an unreadable one. */
export function remoteFromName(name: string | null | undefined): RemoteSource | undefined {
  if (!isRemoteName(name)) return undefined;
  let sc: StandbyCluster;
  try {
    sc = JSON.parse((name as string).slice(REMOTE_PREFIX.length)) as StandbyCluster;
  } catch {
    return undefined;
  }
  return remoteSource(sc);
}

/** The remote member of a standby_cluster section. */
export function remoteSource(sc: StandbyCluster): RemoteSource {
  let connUrl: string | undefined;
  if (sc.host !== undefined || sc.port !== undefined) {
    const host = sc.host ?? 'localhost';
    connUrl = `postgres://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${sc.port ?? 5432}`;
  }
  const recovery: Record<string, string> = {};
  for (const key of ['restore_command', 'archive_cleanup_command', 'recovery_min_apply_delay'] as const) {
    const v = sc[key];
    if (v !== undefined) recovery[key] = v;
  }
  return { connUrl, slot: sc.primary_slot_name ?? null, recovery, createReplicaMethods: sc.create_replica_methods };
}

/** The reserved upstream name of this tick's remote member, when this is a standby cluster. */
export function remoteUpstream(obs: Pick<Observation, 'config'>): string | undefined {
  const sc = standbyCluster(obs.config);
  return sc === undefined ? undefined : remoteName(sc);
}

/**
 * PostgreSQL runs and this node holds the lock of a standby cluster: it is the standby leader and
 * follows the remote member, never promoted. A primary (the section was just added: Patroni's
 * demote-cluster) is stopped, keeping the lock, and started again following the remote (through
 * pg_rewind when its history diverged from the remote's: recover() handles that next).
 */
export function asStandbyLeader(obs: Observation, d: DecisionBuilder, remote: string): string {
  const { pg } = obs;
  d.isLeader = true;
  d.add({ type: 'refreshLeader' });
  if (!pg.inRecovery) {
    if (paused(obs)) {
      d.role = 'primary';
      return 'paused: standby_cluster is set but this primary is not demoted while paused';
    }
    d.role = 'demoted';
    d.add({ type: 'startTask', task: { kind: 'demote', mode: 'demote-cluster', upstream: remote } });
    return 'demoting the primary to a standby leader: standby_cluster is set in /config (demote-cluster)';
  }
  d.role = 'standby_leader';
  d.memory.rewindCheck = undefined;
  d.memory.rewindFailedFrom = undefined;
  if (pg.upstream !== remote) {
    d.add({ type: 'followUpstream', upstream: remote });
    return `following the remote primary as the standby leader (${describeRemote(remote)})`;
  }
  return `no action. I am (${obs.self.name}), the standby leader with the lock`;
}

/**
 * PostgreSQL runs as a replica in a standby cluster whose lock nobody holds and we may not take it
 * (or pause): follow the remote member directly, as Patroni does ("standby cluster is unhealthy").
 */
export function followRemoteUnlocked(obs: Observation, d: DecisionBuilder, remote: string, why: string): string {
  d.role = 'replica';
  d.wake(FAST_WAKE_MS);
  if (obs.pg.upstream !== remote) {
    d.add({ type: 'followUpstream', upstream: remote }, ...replicaSlots(obs, d.memory));
    return `trying to follow a remote member because standby cluster is unhealthy (${why})`;
  }
  d.add(...replicaSlots(obs, d.memory));
  return `following the remote member: standby cluster is unhealthy (${why})`;
}

/** The remote member for a reason line: host:port, or "the archive". */
export function describeRemote(name: string): string {
  const r = remoteFromName(name);
  if (r === undefined) return name;
  return r.connUrl !== undefined ? r.connUrl.replace(/^postgres:\/\//, '') : 'the archive (restore_command)';
}
