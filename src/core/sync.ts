// Synchronous replication (synchronous_mode on = priority, "quorum" = ANY): the leader's rules as
// pure functions. See ../shared/spec/patroni-behavior.md sections 5.2-5.5 and 11.
//
// The leader owns synchronous_standby_names (ssn) and the /sync key. Safety rests on ordering:
// - priority mode: a name enters /sync only after it is in ssn and confirmed caught up, and leaves
//   /sync before it leaves ssn (so every /sync standby holds every acknowledged commit);
// - quorum mode: after every single write (of /sync or of ssn) the overlap invariant of 11.5 holds
//   (quorumInvariant in quorum.ts), so `quorum` voters plus the candidate always include a holder of the
//   latest acknowledged commit.
// The core has no sleep: a step that must wait for a confirmation records memory.syncPendingSince
// and asks for a short wake; the next tick finishes with fresh facts. At most one /sync write is
// planned per tick (the agent CASes on the version read this tick, which the write changes).

import { isNoFailover, nameIn, syncModeOf, syncStandbyNames } from './election.ts';
import type { Action, ClusterView, DynamicConfig, LocalSync, LogLine, Member, Memory, Observation, SyncState, WalSender } from './model.ts';
import { isTrue } from './values.ts';
import { buildSsn, intersect, lower, minus, parseSsn, sameSet, SSN_PLACEHOLDER, ssnIs, union } from './ssn.ts';
import { awaitingMemberKey } from './sync-watch.ts';
import { stalledSenders, stallThresholdMs, withoutStalled } from './sync-stall.ts';
import { quorumPlan, quorumStateOf, applyMoves, type QuorumInput } from './quorum.ts';

export type SyncMode = 'off' | 'on' | 'quorum';

export interface SyncSettings {
  mode: SyncMode;
  strict: boolean;
  /** synchronous_node_count, at least 1. */
  nodeCount: number;
  /** maximum_lag_on_syncnode in bytes; < 0 disables the check. */
  maxLag: number;
}

function intOf(v: unknown, def: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
  return def;
}

/** The sync settings from the effective dynamic config, read defensively. */
export function syncSettings(config: DynamicConfig): SyncSettings {
  return {
    mode: syncModeOf(config),
    strict: isTrue(config['synchronous_mode_strict']),
    nodeCount: Math.max(1, intOf(config['synchronous_node_count'], 1)),
    maxLag: intOf(config['maximum_lag_on_syncnode'], -1),
  };
}

/** /sync leader plus standbys (the members allowed to win a race in priority mode). */
export function syncMembers(cluster: ClusterView | undefined): string[] {
  const sync = cluster?.sync;
  if (sync === undefined) return [];
  return union(sync.leader !== undefined ? [sync.leader] : [], syncStandbyNames(sync));
}

// ---- candidates and confirmation (11.3) -------------------------------------------------------

/** The sender's LSN in the column synchronous_commit waits for. */
export function senderLsn(s: WalSender, synchronousCommit: string): number {
  const sc = synchronousCommit.trim().toLowerCase();
  const v = sc === 'remote_apply' ? s.replayLsn : sc === 'remote_write' ? s.writeLsn : s.flushLsn;
  return v ?? -1;
}

export interface Candidate {
  name: string;
  pid: number;
  syncState: string;
  lsn: number;
  nofailover: boolean;
}

function findMember(cluster: ClusterView | undefined, name: string): Member | undefined {
  const ms = cluster?.members ?? [];
  return ms.find((m) => m.name === name) ?? ms.find((m) => lower(m.name) === lower(name));
}

function syncPriority(m: Member): number {
  const p = m.data.tags?.sync_priority;
  return typeof p === 'number' && Number.isFinite(p) ? p : 1;
}

function syncStateRank(s: string): number {
  return s === 'sync' || s === 'quorum' ? 2 : s === 'potential' ? 1 : 0;
}

/**
 * Standbys that may be synchronous, best first: streaming senders whose name is a running member,
 * not nosync (or sync_priority <= 0), not me, not cascading from another member; sorted by
 * sync_priority, sync_state, LSN (all descending) with nofailover members last; those lagging
 * more than maximum_lag_on_syncnode behind the most advanced one (or the primary, when alone)
 * are left out. Names are the members' names.
 */
export function syncCandidates(obs: Observation, local: LocalSync, settings: SyncSettings): Candidate[] {
  const me = obs.self.name;
  const rows: { c: Candidate; prio: number }[] = [];
  for (const s of local.senders) {
    if (s.state !== 'streaming' || typeof s.name !== 'string') continue;
    const m = findMember(obs.cluster, s.name);
    if (m === undefined || lower(m.name) === lower(me) || m.data.state !== 'running') continue;
    const tags = m.data.tags;
    if (tags?.nosync === true || syncPriority(m) <= 0) continue;
    const rf = tags?.replicatefrom;
    if (typeof rf === 'string' && lower(rf) !== lower(me) && lower(rf) !== lower(m.name) && findMember(obs.cluster, rf) !== undefined) continue;
    if (rows.some((r) => lower(r.c.name) === lower(m.name))) continue;
    rows.push({ c: { name: m.name, pid: s.pid, syncState: s.syncState, lsn: senderLsn(s, local.synchronousCommit), nofailover: isNoFailover(tags) }, prio: syncPriority(m) });
  }
  rows.sort((a, b) => b.prio - a.prio || syncStateRank(b.c.syncState) - syncStateRank(a.c.syncState) || b.c.lsn - a.c.lsn || a.c.name.localeCompare(b.c.name));
  let out = rows.map((r) => r.c);
  if (settings.maxLag >= 0 && out.length > 0) {
    const ref = out.length === 1 ? (obs.pg.walLsn ?? out[0]?.lsn ?? 0) : Math.max(...out.map((c) => c.lsn));
    out = out.filter((c) => ref - c.lsn <= settings.maxLag);
  }
  return [...out.filter((c) => !c.nofailover), ...out.filter((c) => c.nofailover)];
}

/**
 * Which standbys are confirmed synchronous, and the memory to keep. A standby listed in the
 * running ssn is confirmed once its sender reports at least ssnSetAtLsn and its sync_state shows
 * PostgreSQL waits for it ('sync'; in quorum mode also 'quorum') or it is already in /sync. The
 * confirmation is kept per sender pid (a reconnect confirms again) and dropped when the name
 * leaves ssn. Returns member names.
 */
export function syncConfirmation(
  local: LocalSync,
  mode: 'on' | 'quorum',
  sync: SyncState | undefined,
  remembered: Record<string, number> | undefined,
): { confirmed: string[]; memory: Record<string, number> } {
  const ssn = parseSsn(local.ssn);
  const memory: Record<string, number> = {};
  const confirmed: string[] = [];
  // Under an ANY list a standby need not hold every commit: priority mode confirms nobody until
  // the running value is priority-typed again (and starts over then).
  if (mode === 'on' && ssn.kind === 'quorum') return { confirmed, memory };
  const inSync = syncStandbyNames(sync);
  for (const s of local.senders) {
    if (s.state !== 'streaming' || !nameIn(ssn.names, s.name) || nameIn(confirmed, s.name)) continue;
    const before = remembered?.[s.name];
    let ok = before === s.pid;
    if (!ok && local.ssnSetAtLsn !== undefined && senderLsn(s, local.synchronousCommit) >= local.ssnSetAtLsn) {
      const waitedFor = s.syncState === 'sync' || (mode === 'quorum' && s.syncState === 'quorum');
      ok = waitedFor || nameIn(inSync, s.name);
    }
    if (ok) {
      memory[s.name] = s.pid;
      confirmed.push(s.name);
    }
  }
  return { confirmed, memory };
}

// ---- the leader's step ------------------------------------------------------------------------

export interface SyncPlan {
  actions: Action[];
  /** New values for memory.syncConfirmed / memory.syncPendingSince (undefined: delete). */
  memory: Pick<Memory, 'syncConfirmed' | 'syncPendingSince'>;
  /** Ask for the next tick within this many ms (a confirmation or a deferred write is pending). */
  wakeMs?: number;
  /** Short human note for the decision's reason ('' when nothing happened). */
  note: string;
  /** Patroni's log lines for what this step did (absent when none). */
  logs?: LogLine[];
}

/** How soon to look again while a step waits for a confirmation. */
export const SYNC_WAKE_MS = 1000;

function writeSyncAction(leader: string, standbys: readonly string[], quorum: number, sync: SyncState | undefined): Action {
  const a: Action = { type: 'writeSync', leader, syncStandby: [...standbys].sort(), quorum };
  if (sync !== undefined) a.version = sync.version;
  return a;
}

/**
 * The leader's synchronous replication step (mode on or quorum), for a running primary whose
 * facts were read (obs.pg.sync). Returns the actions in the order they must run.
 */
export function syncStep(obs: Observation): SyncPlan {
  const settings = syncSettings(obs.config);
  const read = obs.pg.sync;
  const mode = settings.mode;
  if (read === undefined || mode === 'off') return { actions: [], memory: { syncConfirmed: obs.memory.syncConfirmed, syncPendingSince: obs.memory.syncPendingSince }, note: '' };
  // A standby that stopped answering counts as not streaming (./sync-stall.ts).
  const threshold = stallThresholdMs(obs.config);
  const members = (obs.cluster?.members ?? []).map((m) => m.name);
  const stalled = stalledSenders(read, threshold, members);
  const local = withoutStalled(read, threshold, members);
  const plan = mode === 'quorum' ? quorumStep(obs, local, settings) : priorityStep(obs, local, settings);
  if (stalled.length > 0) {
    const note = `[${stalled.join(',')}] silent for ${threshold / 1000} s or more: not counted as streaming`;
    plan.note = plan.note === '' ? note : `${note}; ${plan.note}`;
  }
  // A standby streams but its member key does not say running yet: look again soon (./sync-watch.ts).
  const awaiting = awaitingMemberKey(obs, local);
  if (awaiting.length > 0) {
    plan.memory.syncPendingSince ??= obs.memory.syncPendingSince ?? obs.now;
    const w = pendingWake({ ...obs, memory: { ...obs.memory, syncPendingSince: plan.memory.syncPendingSince } });
    if (w !== undefined) plan.wakeMs = Math.min(plan.wakeMs ?? w, w);
  }
  return plan;
}

/** Sync mode turned off: CAS-delete /sync, then give ssn back to the user's parameter. */
export function syncOffStep(obs: Observation): Action[] {
  const out: Action[] = [];
  const sync = obs.cluster?.sync;
  if (sync !== undefined) out.push({ type: 'deleteSync', version: sync.version });
  if (obs.pg.sync?.managed === true) out.push({ type: 'setSyncStandbyNames', value: null });
  return out;
}

function pendingWake(obs: Observation): number | undefined {
  const since = obs.memory.syncPendingSince ?? obs.now;
  // Wait fast for a confirmation for about one loop; after that the normal cadence is enough.
  return obs.now - since < obs.config.loop_wait * 1000 ? SYNC_WAKE_MS : undefined;
}

/** Priority mode (11.4): ssn first then /sync when adding; /sync first then ssn when removing. */
function priorityStep(obs: Observation, local: LocalSync, settings: SyncSettings): SyncPlan {
  const me = obs.self.name;
  let sync = obs.cluster?.sync;
  const actions: Action[] = [];
  const notes: string[] = [];
  const conf = syncConfirmation(local, 'on', sync, obs.memory.syncConfirmed);
  const memory: SyncPlan['memory'] = { syncConfirmed: conf.memory, syncPendingSince: undefined };
  const candidates = syncCandidates(obs, local, settings);
  const picked = candidates.slice(0, settings.nodeCount).map((c) => c.name).sort();
  const allow = picked.filter((n) => nameIn(conf.confirmed, n));
  let voters = syncStandbyNames(sync);
  let wrote = false;
  const plan = (wakeMs?: number): SyncPlan => {
    const out: SyncPlan = { actions, memory, note: notes.join('; ') };
    if (wakeMs !== undefined) out.wakeMs = wakeMs;
    return out;
  };
  const deferred = (): SyncPlan => {
    notes.push('next /sync change on the next tick');
    return plan(SYNC_WAKE_MS);
  };

  // 1. /sync must name me (absent: explicit enable; another leader: its standbys mean nothing now).
  if (sync === undefined || sync.leader !== me) {
    actions.push(writeSyncAction(me, [], 0, sync));
    notes.push(sync === undefined ? 'created /sync' : `took over /sync from ${sync.leader ?? 'nobody'}`);
    voters = [];
    wrote = true;
    sync = { leader: me, sync_standby: null, quorum: 0, version: '' };
  }
  // 2. Voters exactly the picked set but not all confirmed: shrink /sync to the confirmed ones.
  if (sameSet(picked, voters) && !sameSet(voters, allow)) {
    if (wrote) return deferred();
    actions.push(writeSyncAction(me, allow, 0, sync));
    notes.push(`/sync shrunk to confirmed standbys [${allow.join(',')}]`);
    voters = allow;
    wrote = true;
  }
  // 3. Strict mode without any usable standby: keep requiring the last /sync standbys.
  if (settings.strict && picked.length === 0) {
    const want = voters.length > 0 ? buildSsn(voters, voters.length, false) : SSN_PLACEHOLDER;
    if (!ssnIs(local, want)) {
      actions.push({ type: 'setSyncStandbyNames', value: want });
      notes.push(`strict mode without synchronous standbys: ssn ${want}`);
      // Patroni's warning when strict mode finds no standby to make synchronous.
      return { ...plan(), logs: [{ level: 'warn', msg: 'No standbys available!' }] };
    }
    return plan();
  }
  const want = picked.length > 0 ? buildSsn(picked, picked.length, false) : '';
  // 4. Steady state.
  if (sameSet(picked, voters) && ssnIs(local, want)) return plan();
  // 5. Removal: /sync drops what is not both confirmed and picked, before ssn changes.
  const keep = intersect(voters, allow);
  if (!sameSet(keep, voters)) {
    if (wrote) return deferred();
    actions.push(writeSyncAction(me, keep, 0, sync));
    notes.push(`/sync standbys [${keep.join(',')}]`);
    voters = keep;
    wrote = true;
  }
  // 6. ssn = the picked standbys (all of them required).
  if (!ssnIs(local, want)) {
    actions.push({ type: 'setSyncStandbyNames', value: want });
    notes.push(`ssn ${want === '' ? "''" : want}`);
  }
  // 7. Picked but not yet confirmed: look again soon (Patroni sleeps 2 s here).
  let wake: number | undefined;
  if (picked.length > 0 && !sameSet(allow, picked)) {
    memory.syncPendingSince = obs.memory.syncPendingSince ?? obs.now;
    wake = pendingWake(obs);
    notes.push(`waiting for [${minus(picked, allow).join(',')}] to confirm`);
  }
  // 8. Addition: confirmed standbys (already in the running ssn) enter /sync.
  if (allow.length > 0 && !sameSet(allow, voters)) {
    if (wrote) return deferred();
    actions.push(writeSyncAction(me, allow, 0, sync));
    notes.push(`/sync standbys [${allow.join(',')}]`);
  }
  return plan(wake);
}

function quorumStep(obs: Observation, local: LocalSync, settings: SyncSettings): SyncPlan {
  const me = obs.self.name;
  const sync = obs.cluster?.sync;
  const conf = syncConfirmation(local, 'quorum', sync, obs.memory.syncConfirmed);
  const memory: SyncPlan['memory'] = { syncConfirmed: conf.memory, syncPendingSince: undefined };
  const candidates = syncCandidates(obs, local, settings);
  // All eligible candidates; nofailover ones only while fewer than synchronous_node_count.
  const active: string[] = [];
  for (const c of candidates) if (!c.nofailover || active.length < settings.nodeCount) active.push(c.name);
  const st = quorumStateOf(local, sync);
  const inp: QuorumInput = { me, active, confirmed: conf.confirmed, nodeCount: settings.nodeCount, strict: settings.strict };
  const parsed = parseSsn(local.ssn);
  const { moves, more } = parsed.kind === 'invalid' ? { moves: [], more: false } : quorumPlan(st, inp);
  const actions: Action[] = [];
  const notes: string[] = [];
  let version = sync;
  for (const m of moves) {
    if (m.kind === 'sync') {
      actions.push(writeSyncAction(m.leader, m.voters, m.quorum, version));
      notes.push(`/sync voters [${m.voters.join(',')}] quorum ${m.quorum}`);
      version = undefined;
    } else {
      const v = buildSsn(m.names, m.numsync, true);
      actions.push({ type: 'setSyncStandbyNames', value: v });
      notes.push(`ssn ${v === '' ? "''" : v}`);
    }
  }
  if (parsed.kind === 'invalid') {
    // An unparsable value: rewrite it from /sync (its members but me, numsync |names| - quorum),
    // which satisfies the invariant whatever the old value meant.
    const names = minus(union(st.voters, st.leader !== undefined ? [st.leader] : []), [me]);
    const v = names.length === 0 ? (settings.strict ? SSN_PLACEHOLDER : '') : buildSsn(names, Math.max(1, names.length - st.quorum), true);
    actions.push({ type: 'setSyncStandbyNames', value: v });
    notes.push(`replaced an unparsable ssn with ${v === '' ? "''" : v}`);
  } else if (moves.length === 0) {
    // Nothing to change in substance; make sure the running value is ours and ANY-typed.
    const names = minus(st.ssn, [me]);
    const want = names.length === 0 ? '' : names.length === 1 && names[0] === SSN_PLACEHOLDER ? SSN_PLACEHOLDER : buildSsn(names, st.numsync, true);
    if (!ssnIs(local, want)) {
      actions.push({ type: 'setSyncStandbyNames', value: want });
      notes.push(`ssn ${want === '' ? "''" : want}`);
    }
  }
  let wakeMs: number | undefined;
  if (more) wakeMs = SYNC_WAKE_MS;
  const final = applyMoves(st, moves);
  const unconfirmed = minus(final.ssn.filter((n) => n !== SSN_PLACEHOLDER), conf.confirmed).filter((n) => nameIn(active, n));
  if (unconfirmed.length > 0) {
    memory.syncPendingSince = obs.memory.syncPendingSince ?? obs.now;
    const w = pendingWake(obs);
    if (w !== undefined) wakeMs = Math.min(wakeMs ?? w, w);
  }
  const out: SyncPlan = { actions, memory, note: notes.join('; ') };
  if (wakeMs !== undefined) out.wakeMs = wakeMs;
  return out;
}

// ---- promotion (11.7) -------------------------------------------------------------------------

/**
 * What the new lock holder does before `promote`, in order. Priority mode: CAS-write
 * /sync = {me, standbys} (strict: the former /sync members but me; else none), then ssn to match;
 * a lost CAS stops the plan, which postpones the promotion. Quorum mode: no /sync write; ssn from
 * the former /sync members but me with numsync = |members| - quorum - 1 (+1 when I was not a
 * voter), at least 1 in strict mode. Mode off: nothing.
 */
export function prepromoteActions(obs: Observation): Action[] {
  const settings = syncSettings(obs.config);
  if (settings.mode === 'off') return [];
  const me = obs.self.name;
  const sync = obs.cluster?.sync;
  const members = syncMembers(obs.cluster);
  const others = minus(members, [me]);
  if (settings.mode === 'on') {
    const standbys = settings.strict ? others : [];
    const ssn = standbys.length > 0 ? buildSsn(standbys, standbys.length, false) : settings.strict ? SSN_PLACEHOLDER : '';
    return [writeSyncAction(me, standbys, 0, sync), { type: 'setSyncStandbyNames', value: ssn }];
  }
  const quorum = typeof sync?.quorum === 'number' ? sync.quorum : 0;
  let numsync = members.length - quorum - 1 + (nameIn(syncStandbyNames(sync), me) || (sync?.leader !== undefined && lower(sync.leader) === lower(me)) ? 0 : 1);
  if (settings.strict) numsync = Math.max(1, numsync);
  const ssn = others.length === 0 || numsync < 1 ? (settings.strict ? SSN_PLACEHOLDER : '') : buildSsn(others, numsync, true);
  return [{ type: 'setSyncStandbyNames', value: ssn }];
}
