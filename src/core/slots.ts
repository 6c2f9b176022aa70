// Replication slots as Patroni 4.1 manages them (../shared/spec/patroni-behavior.md 10.2), as pure
// decisions: which slots this node should have (member slots, permanent physical and logical slots
// from /config `slots`), which of the slots it has must go (unknown ones unless paused or matched
// by `ignore_slots`, changed attributes, wal_status lost), which to advance to the positions the
// leader publishes in /status, the member-slot retention (`member_slots_ttl`) and the `slots` /
// `retain_slots` the leader publishes. The agent reads pg_replication_slots (LocalPg.slots) and
// executes the SlotOps (src/postgres/slots.ts).

import type { Action, ClusterView, LeaderStatus, Memory, Observation } from './model.ts';
import { isStandbyClusterConfig } from './election.ts';

/** One non-temporary row of pg_replication_slots. */
export interface LocalSlot {
  name: string;
  type: 'physical' | 'logical';
  plugin: string | null;
  database: string | null;
  active: boolean;
  restartLsn: number | undefined;
  confirmedFlushLsn: number | undefined;
  /** pg_replication_slots.wal_status (reserved, extended, unreserved, lost); null when unknown. */
  walStatus: string | null;
  /** The slot holds an xmin (hot_standby_feedback of a standby that streamed through it). */
  holdsXmin: boolean;
  /** pg_replication_slots.catalog_xmin (a logical slot's); undefined when null or not read. */
  catalogXmin?: number;
}

/** What a slot should look like on this node. */
export interface WantedSlot {
  name: string;
  type: 'physical' | 'logical';
  database?: string;
  plugin?: string;
  /** A member slot: its member should stream from this node (never advanced then). */
  expectActive?: boolean;
  /** Advance an inactive slot to this LSN when it is behind. */
  advanceTo?: number;
}

/** An effect on the local slots. Drops only ever drop an inactive slot (the SQL checks). */
export type SlotOp =
  | { op: 'drop'; name: string; why: string }
  | { op: 'createPhysical'; name: string }
  | { op: 'createLogical'; name: string; database: string; plugin: string }
  | { op: 'advance'; name: string; lsn: number; database?: string }
  /** Replica: copy these logical slots' state from the leader (stops and starts PostgreSQL). */
  | { op: 'copyLogical'; names: string[]; leader: string }
  /**
   * Replica: check which logical copies are ready (readinessStep) against the primary at connUrl,
   * where this replica's WAL comes through the physical slot `physical`; `copies` maps each local
   * copy to its catalog_xmin (null: none).
   */
  | { op: 'checkReady'; connUrl: string; physical: string; copies: Record<string, number | null> };

export interface IgnoreMatcher {
  name?: string;
  type?: string;
  database?: string;
  plugin?: string;
}

/**
 * A member's slot name, as Patroni derives it: lower case; `-` and `.` become `_`; any other
 * character outside [a-z0-9_] becomes `u` and its code point on four digits; at most 63 characters.
 */
export function memberSlotName(memberName: string): string {
  let out = '';
  for (const ch of memberName.toLowerCase()) {
    if (/^[a-z0-9_]$/.test(ch)) out += ch;
    else if (ch === '-' || ch === '.') out += '_';
    else out += 'u' + String(ch.codePointAt(0)).padStart(4, '0');
  }
  return out.slice(0, 63);
}

const VALID = /^[a-z0-9_]{1,63}$/;

/**
 * The permanent slots of /config (`permanent_replication_slots`, else `permanent_slots`, else
 * `slots`): an empty value is physical; without a type, database and plugin make it logical.
 * Invalid names, logical slots without database or plugin, and slots restricted to the other kind
 * of cluster (cluster_type primary or standby) are left out; so are logical slots in a standby
 * cluster (`standbyCluster`).
 */
export function permanentSlots(config: Record<string, unknown>, standbyCluster = false): WantedSlot[] {
  const raw = config.permanent_replication_slots ?? config.permanent_slots ?? config.slots;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const out: WantedSlot[] = [];
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!VALID.test(name)) continue;
    const value = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    // cluster_type restricts a slot to primary or standby clusters; a standby cluster keeps only physical ones (spec 9.4).
    if (value.cluster_type === (standbyCluster ? 'primary' : 'standby')) continue;
    const database = typeof value.database === 'string' && value.database !== '' ? value.database : undefined;
    const plugin = typeof value.plugin === 'string' && value.plugin !== '' ? value.plugin : undefined;
    const type = value.type ?? (database !== undefined && plugin !== undefined ? 'logical' : 'physical');
    if (type === 'physical') out.push({ name, type });
    else if (standbyCluster) continue;
    else if (type === 'logical' && database !== undefined && plugin !== undefined) out.push({ name, type, database, plugin });
  }
  return out;
}

/** The `ignore_slots` matchers of /config (entries that are not mappings are left out). */
export function ignoreMatchers(config: Record<string, unknown>): IgnoreMatcher[] {
  const raw = config.ignore_slots;
  if (!Array.isArray(raw)) return [];
  const out: IgnoreMatcher[] = [];
  for (const m of raw as unknown[]) {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) continue;
    const r = m as Record<string, unknown>;
    const one: IgnoreMatcher = {};
    for (const k of ['name', 'type', 'database', 'plugin'] as const) if (typeof r[k] === 'string' && r[k] !== '') one[k] = r[k] as string;
    out.push(one);
  }
  return out;
}

/** A slot matches a matcher when every attribute the matcher names is equal. */
export function isIgnored(slot: LocalSlot, matchers: readonly IgnoreMatcher[]): boolean {
  return matchers.some(
    (m) =>
      (m.name === undefined || m.name === slot.name) &&
      (m.type === undefined || m.type === slot.type) &&
      (m.database === undefined || m.database === slot.database) &&
      (m.plugin === undefined || m.plugin === slot.plugin),
  );
}

/** What the slot decisions read about one member (from its member key). */
export interface SlotMember {
  name: string;
  replicatefrom?: string;
  nostream?: boolean;
  nofailover?: boolean;
  /** The member's published position (xlog_location). */
  lsn?: number;
}

/** Everything the slot decisions depend on. */
export interface SlotInputs {
  self: string;
  /** This node runs as the primary holding the leader lock. */
  leader: boolean;
  /** The lock holder's name (undefined: none). */
  leaderName: string | undefined;
  nofailover: boolean;
  nostream: boolean;
  paused: boolean;
  useSlots: boolean;
  memberSlotsTtl: number;
  members: SlotMember[];
  /** Member slot names to keep for absent members (the leader's retention, or /status.retain_slots). */
  retained: string[];
  permanent: WantedSlot[];
  ignore: IgnoreMatcher[];
  /** /status.slots as the leader published it (replicas advance to these). */
  published: Record<string, number>;
  /** This node's replay position (a replica's logical copies never go past it). */
  replayLsn: number | undefined;
}

/** The slots this node should have, by name. */
export function wantedSlots(i: SlotInputs): Map<string, WantedSlot> {
  const want = new Map<string, WantedSlot>();
  if (!i.useSlots) return want;
  const mine = memberSlotName(i.self);
  const isMember = (n: string | undefined) => n !== undefined && i.members.some((m) => m.name === n);
  for (const m of i.members) {
    if (m.name === i.self || m.nostream === true) continue;
    const rf = m.replicatefrom;
    const expectActive = i.leader ? rf === undefined || rf === i.self || !isMember(rf) : rf === i.self && m.name !== i.leaderName;
    // With member_slots_ttl every node keeps every member's slot (it survives a promotion); a
    // nofailover replica only those of members streaming from it.
    const keep = expectActive || (i.memberSlotsTtl > 0 && (i.leader || !i.nofailover));
    if (!keep) continue;
    const name = memberSlotName(m.name);
    const w: WantedSlot = { name, type: 'physical', expectActive };
    if (!expectActive) {
      // The member streams elsewhere: follow the leader's published position, or the member's own
      // (cascading members) when larger.
      const pub = i.leader ? undefined : i.published[name];
      const own = rf !== undefined ? m.lsn : undefined;
      const to = Math.max(pub ?? 0, own ?? 0);
      if (to > 0) w.advanceTo = to;
    }
    want.set(name, w);
  }
  if (i.memberSlotsTtl > 0 && (i.leader || !i.nofailover)) {
    for (const name of i.retained) {
      if (name === mine || want.has(name) || !VALID.test(name)) continue;
      const w: WantedSlot = { name, type: 'physical', expectActive: false };
      const pub = i.leader ? undefined : i.published[name];
      if (pub !== undefined) w.advanceTo = pub;
      want.set(name, w);
    }
  }
  if (i.leader || !i.nofailover) {
    for (const p of i.permanent) {
      if (want.has(p.name)) continue; // a member's slot wins over a permanent slot of the same name
      if (p.type === 'physical') {
        if (p.name === mine) continue;
        const w: WantedSlot = { ...p };
        if (!i.leader && i.published[p.name] !== undefined) w.advanceTo = i.published[p.name];
        want.set(p.name, w);
      } else if (i.leader || !i.nostream) {
        const w: WantedSlot = { ...p };
        const pub = i.published[p.name];
        if (!i.leader && pub !== undefined) w.advanceTo = i.replayLsn !== undefined ? Math.min(pub, i.replayLsn) : pub;
        want.set(p.name, w);
      }
    }
  }
  return want;
}

function sameAttributes(w: WantedSlot, h: LocalSlot): boolean {
  if (w.type !== h.type) return false;
  return w.type === 'physical' || (w.database === h.database && w.plugin === h.plugin);
}

/**
 * The operations that turn `have` into what `i` wants, in order: drops, creations, copies of
 * logical slots (a replica), advances. `have` undefined (slots not read): nothing.
 */
export function planSlots(i: SlotInputs, have: readonly LocalSlot[] | undefined): SlotOp[] {
  if (have === undefined) return [];
  const want = wantedSlots(i);
  const ops: SlotOp[] = [];
  const creates: SlotOp[] = [];
  const advances: SlotOp[] = [];
  const copies: string[] = [];
  const present = new Set<string>();
  const mayDropXmin = i.leader || (i.leaderName !== undefined && i.leaderName !== i.self);
  for (const h of have) {
    const w = want.get(h.name);
    if (w === undefined) {
      if (!i.paused && !h.active && !isIgnored(h, i.ignore)) ops.push({ op: 'drop', name: h.name, why: 'unknown' });
      continue;
    }
    if (h.active) {
      present.add(h.name);
      continue;
    }
    if (!sameAttributes(w, h)) {
      ops.push({ op: 'drop', name: h.name, why: `attributes changed (${h.type} ${h.database ?? ''} ${h.plugin ?? ''})`.replace(/ +\)/, ')') });
      continue; // created again below
    }
    if (h.walStatus === 'lost') {
      ops.push({ op: 'drop', name: h.name, why: 'wal_status lost' });
      present.add(h.name); // recreated on the next pass, from fresh facts
      continue;
    }
    if (h.type === 'physical' && h.restartLsn === undefined) {
      ops.push({ op: 'drop', name: h.name, why: 'no restart_lsn (created without reserving WAL)' });
      present.add(h.name);
      continue;
    }
    if (h.type === 'physical' && w.expectActive !== true && h.holdsXmin && mayDropXmin) {
      ops.push({ op: 'drop', name: h.name, why: 'holds an xmin while no member streams through it' });
      present.add(h.name);
      continue;
    }
    present.add(h.name);
    const at = h.type === 'logical' ? h.confirmedFlushLsn : h.restartLsn;
    // A replica cannot move a slot past what it has replayed (PostgreSQL clamps it): ask no more.
    const to = w.advanceTo !== undefined && !i.leader && i.replayLsn !== undefined ? Math.min(w.advanceTo, i.replayLsn) : w.advanceTo;
    if (to !== undefined && at !== undefined && to > at) {
      advances.push(w.type === 'logical' ? { op: 'advance', name: h.name, lsn: to, database: w.database as string } : { op: 'advance', name: h.name, lsn: to });
    }
  }
  for (const w of want.values()) {
    if (present.has(w.name)) continue;
    if (w.type === 'physical') creates.push({ op: 'createPhysical', name: w.name });
    else if (i.leader) creates.push({ op: 'createLogical', name: w.name, database: w.database as string, plugin: w.plugin as string });
    else if (i.published[w.name] !== undefined) copies.push(w.name); // only slots the leader has published
  }
  ops.push(...creates, ...advances);
  if (copies.length > 0 && i.leaderName !== undefined && !i.leader) ops.push({ op: 'copyLogical', names: copies.sort(), leader: i.leaderName });
  return ops;
}

/**
 * The leader's member-slot retention: every member's slot name (its own included) is seen now; a
 * name /status.retain_slots lists that the memory does not know yet (a new lock holder) starts its
 * timer now; a name unseen for member_slots_ttl is forgotten.
 */
export function retainStep(prev: Record<string, number> | undefined, memberNames: string[], statusRetain: readonly string[] | undefined, now: number, ttlSeconds: number): Record<string, number> {
  const next: Record<string, number> = {};
  if (ttlSeconds <= 0) return next;
  for (const [n, t] of Object.entries(prev ?? {})) if (now - t <= ttlSeconds * 1000) next[n] = t;
  for (const n of statusRetain ?? []) if (next[n] === undefined) next[n] = now;
  for (const m of memberNames) next[memberSlotName(m)] = now;
  return next;
}

/**
 * The physical slot on the primary through which `self` receives WAL, as Patroni finds it: its own
 * member slot, or for a cascading replica (replicatefrom) the slot of the first member of the
 * chain that streams from the primary (a member whose replicatefrom names the leader streams from
 * it through its own slot). Undefined: no such slot (nostream on the way, a loop).
 */
export function slotNameOnPrimary(self: string, members: readonly SlotMember[], tags: { replicatefrom?: string; nostream?: boolean }, leaderName?: string): string | undefined {
  const seen = new Set<string>();
  let name = self;
  let t = tags;
  for (;;) {
    seen.add(name);
    if (t.nostream === true) return undefined;
    const rf = t.replicatefrom;
    const up = rf !== undefined && rf !== name && rf !== leaderName ? members.find((m) => m.name === rf) : undefined;
    if (up === undefined) return memberSlotName(name);
    if (seen.has(up.name)) return undefined;
    name = up.name;
    t = up;
  }
}

// ---------------------------------------------------------------------------------------------
// From an Observation

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * The members as the slot decisions read them. A member key without a conn_url (every agent
 * publishes one) cannot stream: garbage written under members/ gets no slot (see slotMembers in
 * builder.ts).
 */
export function slotMembersOf(cluster: ClusterView | undefined): SlotMember[] {
  return (cluster?.members ?? []).filter((m) => typeof m.data.conn_url === 'string').map((m) => {
    const out: SlotMember = { name: m.name };
    const rf = m.data.tags?.replicatefrom;
    if (typeof rf === 'string') out.replicatefrom = rf;
    if (m.data.tags?.nostream === true) out.nostream = true;
    if (m.data.tags?.nofailover === true) out.nofailover = true;
    const lsn = num(m.data.xlog_location);
    if (lsn !== undefined) out.lsn = lsn;
    return out;
  });
}

/** The slot inputs of this tick (`retained`: the leader's memory, else /status.retain_slots). */
export function slotInputs(obs: Observation, leader: boolean, retained: string[]): SlotInputs {
  const cluster = obs.cluster;
  const config = obs.config as unknown as Record<string, unknown>;
  const members = slotMembersOf(cluster);
  return {
    self: obs.self.name,
    leader,
    leaderName: cluster?.leader?.name,
    nofailover: obs.self.tags.nofailover === true,
    nostream: obs.self.tags.nostream === true,
    paused: obs.config.pause === true,
    useSlots: obs.config.postgresql.use_slots !== false,
    memberSlotsTtl: num(config.member_slots_ttl) ?? 1800,
    members,
    retained,
    permanent: permanentSlots(config, isStandbyClusterConfig(config)),
    ignore: ignoreMatchers(config),
    published: cluster?.status?.slots ?? {},
    replayLsn: obs.pg.replayLsn,
  };
}

/**
 * The leader's slot step: the /status value to publish (optime, and when the slots were read the
 * positions of the wanted slots and its own slot name at its current LSN, with retain_slots) and
 * the slot actions. Without slot facts (the simulator, a failed read) only optime is published and
 * no slot action is planned (the caller falls back to creating the members' physical slots).
 */
export function leaderSlots(obs: Observation, memory: Memory): { status: LeaderStatus | undefined; actions: Action[] } {
  const pg = obs.pg;
  const ttl = num((obs.config as unknown as Record<string, unknown>).member_slots_ttl) ?? 1800;
  const memberNames = (obs.cluster?.members ?? []).filter((m) => m.data.tags?.nostream !== true).map((m) => m.name);
  if (!memberNames.includes(obs.self.name)) memberNames.push(obs.self.name);
  const retain = retainStep(memory.slotsRetain, memberNames, obs.cluster?.status?.retain_slots, obs.now, ttl);
  memory.slotsRetain = Object.keys(retain).length > 0 ? retain : undefined;
  if (pg.walLsn === undefined) return { status: undefined, actions: [] };
  const useSlots = obs.config.postgresql.use_slots !== false;
  if (pg.slots === undefined) return { status: { optime: pg.walLsn }, actions: [] };
  const inputs = slotInputs(obs, true, Object.keys(retain));
  const want = wantedSlots(inputs);
  const status: LeaderStatus = { optime: pg.walLsn };
  const slots: Record<string, number> = {};
  for (const h of pg.slots) {
    const w = want.get(h.name);
    if (w === undefined || !sameAttributes(w, h)) continue;
    if (w.expectActive !== undefined && ttl <= 0) continue; // member slots only with member_slots_ttl
    const at = h.type === 'logical' ? h.confirmedFlushLsn : h.restartLsn;
    if (at !== undefined) slots[h.name] = at;
  }
  if (ttl > 0 && useSlots) slots[memberSlotName(obs.self.name)] = pg.walLsn;
  if (Object.keys(slots).length > 0) status.slots = slots;
  const retainSlots = useSlots ? Object.keys(retain).sort() : [];
  if (retainSlots.length > 0) status.retain_slots = retainSlots;
  const ops = planSlots(inputs, pg.slots);
  return { status, actions: ops.length > 0 ? [{ type: 'syncSlots', ops }] : [] };
}

/**
 * A replica's slot actions (none without slot facts). Forgets the leader's retention memory. A
 * replica that has copies of permanent logical slots also checks their readiness (checkReady).
 */
export function replicaSlots(obs: Observation, memory: Memory): Action[] {
  memory.slotsRetain = undefined;
  if (obs.pg.slots === undefined) return [];
  const inputs = slotInputs(obs, false, obs.cluster?.status?.retain_slots ?? []);
  const ops = planSlots(inputs, obs.pg.slots);
  const want = wantedSlots(inputs);
  const copies: Record<string, number | null> = {};
  for (const h of obs.pg.slots) {
    const w = want.get(h.name);
    if (h.type === 'logical' && w !== undefined && sameAttributes(w, h) && h.walStatus !== 'lost') copies[h.name] = h.catalogXmin ?? null;
  }
  const leader = obs.cluster?.members.find((m) => m.name === inputs.leaderName);
  const connUrl = leader?.data.conn_url;
  const tags: { replicatefrom?: string; nostream?: boolean } = {};
  if (typeof obs.self.tags.replicatefrom === 'string') tags.replicatefrom = obs.self.tags.replicatefrom;
  if (obs.self.tags.nostream === true) tags.nostream = true;
  const physical = slotNameOnPrimary(inputs.self, inputs.members, tags, inputs.leaderName);
  if (Object.keys(copies).length > 0 && typeof connUrl === 'string' && inputs.leaderName !== inputs.self && physical !== undefined) {
    ops.push({ op: 'checkReady', connUrl, physical, copies });
  }
  return ops.length > 0 ? [{ type: 'syncSlots', ops }] : [];
}

/** Whether two /status values carry the same information. */
export function sameStatus(a: LeaderStatus | undefined, b: LeaderStatus | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const slotsKey = (s: LeaderStatus) => JSON.stringify(Object.entries(s.slots ?? {}).sort(([x], [y]) => (x < y ? -1 : 1)));
  return a.optime === b.optime && slotsKey(a) === slotsKey(b) && JSON.stringify([...(a.retain_slots ?? [])].sort()) === JSON.stringify([...(b.retain_slots ?? [])].sort());
}
