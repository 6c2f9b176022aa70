// The Decision under construction, and the small readings of an Observation that every part of
// the core uses (shared by decide.ts and leader.ts).

import { isPaused } from './values.ts';
import type { Action, ClusterView, Decision, LogLine, Member, Memory, Observation, Role } from './model.ts';

/** Bound on how soon we look again while something is changing (ms). */
export const FAST_WAKE_MS = 1000;

export class DecisionBuilder {
  actions: Action[] = [];
  memory: Memory;
  role: Role;
  isLeader = false;
  wakeAfterMs: number;
  exit: string | undefined;
  logs: LogLine[] = [];
  constructor(obs: Observation) {
    this.memory = { ...obs.memory, started: true };
    if (obs.pg.running || !isPaused(obs.config)) delete this.memory.startAfterDemote;
    this.wakeAfterMs = obs.config.loop_wait * 1000;
    const pg = obs.pg;
    this.role = pg.dataDirEmpty ? 'uninitialized' : pg.running && !pg.inRecovery ? 'primary' : pg.running ? 'replica' : 'demoted';
  }
  add(...a: Action[]): this {
    this.actions.push(...a);
    return this;
  }
  wake(ms: number): this {
    this.wakeAfterMs = Math.min(this.wakeAfterMs, ms);
    return this;
  }
  finish(reason: string): Decision {
    const out: Decision = {
      actions: this.actions,
      reason,
      wakeAfterMs: Math.max(0, this.wakeAfterMs),
      memory: this.memory,
      role: this.role,
      isLeader: this.isLeader,
    };
    if (this.exit !== undefined) out.exit = this.exit;
    if (this.logs.length > 0) out.logs = this.logs;
    return out;
  }
}

export function memberOf(cluster: ClusterView | undefined, name: string | undefined): Member | undefined {
  if (cluster === undefined || name === undefined) return undefined;
  return cluster.members.find((m) => m.name === name);
}

export function paused(obs: Observation): boolean {
  return isPaused(obs.config);
}

/** /config names slots to keep (slots, ignore_slots): not implemented yet, so no slot is dropped. */
export function declaresSlots(config: Observation['config']): boolean {
  const raw = config as Record<string, unknown>;
  return ['slots', 'permanent_slots', 'permanent_replication_slots', 'ignore_slots'].some((k) => raw[k] !== undefined && raw[k] !== null);
}

/** The member a replica should stream from: its replicatefrom member when present, else the leader. */
export function upstreamFor(obs: Observation, leader: string): string {
  const rf = obs.self.tags.replicatefrom;
  if (typeof rf === 'string' && rf !== obs.self.name && memberOf(obs.cluster, rf)?.data.conn_url !== undefined) return rf;
  return leader;
}

/**
 * Members the leader keeps a physical replication slot for. A member key without a conn_url (every
 * agent publishes one) cannot stream: garbage written under members/ gets no slot, which would
 * otherwise retain WAL without bound and use up max_replication_slots.
 */
export function slotMembers(obs: Observation): string[] {
  const names = new Set<string>();
  for (const view of [obs.lastHealthyCluster, obs.cluster]) {
    for (const m of view?.members ?? []) {
      if (m.name === obs.self.name || m.data.tags?.nostream === true || typeof m.data.conn_url !== 'string') continue;
      const rf = m.data.tags?.replicatefrom;
      if (typeof rf === 'string' && rf !== obs.self.name && memberOf(obs.cluster, rf) !== undefined) continue;
      names.add(m.name);
    }
  }
  return [...names].sort();
}

export function failed(obs: Observation, action: Action['type']) {
  return obs.failures.find((f) => f.action === action);
}
