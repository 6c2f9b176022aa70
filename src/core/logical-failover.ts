// Logical slot failover on PostgreSQL < 17 (Patroni 4's rules), as pure decisions next to
// core/slots.ts: whether a node must run with hot_standby_feedback on, and the readiness of a
// replica's copies of the permanent logical slots (the catalog_xmin check). The IO side (reading
// the primary's slots, logging) is in src/postgres/slots.ts.

import type { ClusterView, Tags } from './model.ts';
import { permanentSlots, slotMembersOf, slotNameOnPrimary, type SlotMember } from './slots.ts';

/** What enforceHotStandbyFeedback reads. */
export interface FeedbackInputs {
  self: string;
  tags: Pick<Tags, 'nofailover' | 'nostream' | 'replicatefrom'>;
  config: Record<string, unknown>;
  useSlots: boolean;
  leaderName: string | undefined;
  members: readonly SlotMember[];
}

/**
 * Whether this node must run with hot_standby_feedback on (Patroni 4 enforces it): it would keep
 * copies of permanent logical slots as a replica (slots in use, not a standby cluster, a failover
 * candidate that streams), or a member cascading from it does (its feedback goes through this node
 * to the primary). Without the feedback the primary may remove catalog rows that the copies need.
 */
export function enforceHotStandbyFeedback(i: FeedbackInputs): boolean {
  if (!i.useSlots) return false;
  const sc = i.config.standby_cluster;
  if (sc !== null && typeof sc === 'object') return false;
  const logical = permanentSlots(i.config).some((p) => p.type === 'logical');
  const seen = new Set<string>();
  const needs = (name: string, tags: FeedbackInputs['tags']): boolean => {
    if (seen.has(name)) return false;
    seen.add(name);
    if (slotNameOnPrimary(name, i.members, tags, i.leaderName) === undefined) return false;
    if (logical && tags.nofailover !== true) return true;
    return i.members.some((m) => m.replicatefrom === name && m.name !== i.leaderName && needs(m.name, m));
  };
  return needs(i.self, i.tags);
}

/** enforceHotStandbyFeedback for this node, from the dynamic configuration and the cluster view. */
export function hotStandbyFeedbackFor(self: string, tags: Tags, config: Record<string, unknown>, cluster: ClusterView | undefined): boolean {
  const pg = config.postgresql;
  const useSlots = pg === null || typeof pg !== 'object' || (pg as Record<string, unknown>).use_slots !== false;
  return enforceHotStandbyFeedback({ self, tags, config, useSlots, leaderName: cluster?.leader?.name, members: slotMembersOf(cluster) });
}

/**
 * Readiness of a replica's logical copies (Patroni 4's check). A copy made from the primary's
 * slot is safe to use after this replica is promoted only once the primary keeps the catalog rows
 * the copy needs: the physical slot this replica's WAL goes through (slotNameOnPrimary) must carry
 * a catalog_xmin (hot_standby_feedback), that catalog_xmin must have reached the catalog_xmin the
 * primary's logical slot had when the physical slot's was first seen, and it must not be newer
 * than the copy's own. Until then the copy is pending ("not ready"): it is still kept and advanced,
 * and a promotion with copies pending is logged as possibly unsafe for them.
 */
export interface Readiness {
  /** The first check has run (every copy found then starts pending, as after a copy). */
  started: boolean;
  /** Pending copy -> the primary slot's catalog_xmin to reach (null: not read yet). */
  pending: Record<string, number | null>;
}

/** XID order modulo 2^32, as PostgreSQL compares normal transaction ids. */
function xidLe(a: number, b: number): boolean {
  return (b - a) >>> 0 < 0x80000000;
}

/** The copies just written (copyLogical): pending again, their primary catalog_xmin unknown. */
export function readinessCopied(r: Readiness, names: readonly string[]): Readiness {
  const pending = { ...r.pending };
  for (const n of names) pending[n] = null;
  return { started: r.started, pending };
}

/**
 * Before a check: the pending copies still present (`copies`: the local copies), every present
 * copy pending on the first check, and which names the primary must give a catalog_xmin for.
 */
export function readinessBegin(r: Readiness, copies: Record<string, number | null>): { state: Readiness; ask: string[] } {
  const pending: Record<string, number | null> = {};
  if (!r.started) for (const n of Object.keys(copies)) pending[n] = null;
  for (const [n, v] of Object.entries(r.pending)) if (n in copies) pending[n] = v;
  const ask = Object.keys(pending).filter((n) => pending[n] === null).sort();
  return { state: { started: true, pending }, ask };
}

/**
 * One check with the primary's answer: `physical` is the catalog_xmin of this replica's physical
 * slot there (null: the slot holds none: the replica does not stream or has no
 * hot_standby_feedback; nothing can be decided), `primary` the catalog_xmin of the primary's
 * logical slots asked for. Returns the new state and the copies that became ready.
 */
export function readinessStep(r: Readiness, physical: number | null, primary: Record<string, number | null>, copies: Record<string, number | null>): { state: Readiness; ready: string[] } {
  if (physical === null) return { state: r, ready: [] };
  const pending: Record<string, number | null> = {};
  const ready: string[] = [];
  for (const [n, v] of Object.entries(r.pending)) {
    const target = v ?? primary[n] ?? null;
    const own = copies[n] ?? null;
    if (target !== null && own !== null && xidLe(target, physical) && xidLe(physical, own)) ready.push(n);
    else pending[n] = target;
  }
  return { state: { started: r.started, pending }, ready: ready.sort() };
}
