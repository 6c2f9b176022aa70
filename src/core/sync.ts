// Synchronous replication (synchronous_mode on = priority, "quorum" = ANY): the leader's rules as
// pure functions. See ../shared/spec/patroni-behavior.md sections 5.2-5.5 and 11.
//
// The leader owns synchronous_standby_names (ssn) and the /sync key. Safety rests on ordering:
// - priority mode: a name enters /sync only after it is in ssn and confirmed caught up, and leaves
//   /sync before it leaves ssn (so every /sync standby holds every acknowledged commit);
// - quorum mode: after every single write (of /sync or of ssn) the overlap invariant of 11.5 holds
//   (quorumInvariant below), so `quorum` voters plus the candidate always include a holder of the
//   latest acknowledged commit.
// The core has no sleep: a step that must wait for a confirmation records memory.syncPendingSince
// and asks for a short wake; the next tick finishes with fresh facts. At most one /sync write is
// planned per tick (the agent CASes on the version read this tick, which the write changes).

import { isNoFailover, nameIn, syncModeOf, syncStandbyNames } from './election.ts';
import type { Action, ClusterView, DynamicConfig, LocalSync, LogLine, Member, Memory, Observation, SyncState, WalSender } from './model.ts';
import { isTrue } from './values.ts';

/** The name no standby may use: ssn that makes every commit wait (strict mode without standbys). */
export const SSN_PLACEHOLDER = '__patroni_strict_sync_replica_placeholder__';

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

// ---- names ------------------------------------------------------------------------------------

function lower(s: string): string {
  return s.toLowerCase();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x) => nameIn(b, x)) && b.every((x) => nameIn(a, x));
}

function subset(a: readonly string[], b: readonly string[]): boolean {
  return a.every((x) => nameIn(b, x));
}

function union(...lists: (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const l of lists) for (const x of l) if (!nameIn(out, x)) out.push(x);
  return out.sort();
}

function minus(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => !nameIn(b, x));
}

function intersect(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => nameIn(b, x));
}

/** /sync leader plus standbys (the members allowed to win a race in priority mode). */
export function syncMembers(cluster: ClusterView | undefined): string[] {
  const sync = cluster?.sync;
  if (sync === undefined) return [];
  return union(sync.leader !== undefined ? [sync.leader] : [], syncStandbyNames(sync));
}

// ---- synchronous_standby_names ----------------------------------------------------------------

const PLAIN_IDENT = /^[a-z_][a-z0-9_$]*$/;

function quoteName(name: string): string {
  if (PLAIN_IDENT.test(name) && name !== 'first' && name !== 'any') return name;
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The ssn value for `names` needing `num` acknowledgements. Quorum mode gives `ANY num (a,b)`;
 * priority gives `num (a,b)` with more than one name and the bare name with one. '*' among the
 * names, or no names with num >= 1, gives the placeholder (every commit waits); no names and
 * num 0 gives '' (no synchronous replication).
 */
export function buildSsn(names: readonly string[], num: number, quorum: boolean): string {
  if (names.includes('*') || (names.length === 0 && num >= 1)) return SSN_PLACEHOLDER;
  if (names.length === 0) return '';
  const list = [...new Set(names)].sort().map(quoteName).join(',');
  const n = Math.max(1, Math.min(num, names.length));
  if (quorum) return `ANY ${n} (${list})`;
  if (names.length === 1) return list;
  return `${n} (${list})`;
}

export type ParsedSsn =
  | { kind: 'empty'; num: 0; names: [] }
  | { kind: 'priority' | 'quorum'; num: number; names: string[] }
  | { kind: 'invalid'; error: string; num: 0; names: [] };

/**
 * Parse synchronous_standby_names as PostgreSQL reads it: '', a bare list (FIRST 1), `n (list)`,
 * `FIRST n (list)`, `ANY n (list)`; names bare (case kept; compare case-insensitively) or
 * double-quoted. Never throws: anything else is { kind: 'invalid' } (the leader rewrites it).
 */
export function parseSsn(value: string | undefined | null): ParsedSsn {
  const s = (value ?? '').trim();
  if (s === '') return { kind: 'empty', num: 0, names: [] };
  const tokens: { t: 'word' | 'quoted' | 'num' | '(' | ')' | ','; v: string }[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ t: c, v: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let out = '';
      for (;;) {
        if (j >= s.length) return { kind: 'invalid', error: 'unterminated quoted name', num: 0, names: [] };
        if (s[j] === '"') {
          if (s[j + 1] === '"') {
            out += '"';
            j += 2;
            continue;
          }
          break;
        }
        out += s[j];
        j++;
      }
      if (out === '') return { kind: 'invalid', error: 'empty quoted name', num: 0, names: [] };
      tokens.push({ t: 'quoted', v: out });
      i = j + 1;
    } else if (/\d/.test(c)) {
      const m = /^\d+/.exec(s.slice(i)) as RegExpExecArray;
      // A name may start with a digit only when quoted; a number followed by letters is invalid.
      if (/^[A-Za-z_$]/.test(s.slice(i + m[0].length))) return { kind: 'invalid', error: `bad token at "${s.slice(i, i + 20)}"`, num: 0, names: [] };
      tokens.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_\u0080-\uffff*]/.test(c)) {
      if (c === '*') {
        tokens.push({ t: 'word', v: '*' });
        i++;
        continue;
      }
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(s.slice(i)) as RegExpExecArray;
      tokens.push({ t: 'word', v: m[0] });
      i += m[0].length;
    } else {
      return { kind: 'invalid', error: `unexpected character ${JSON.stringify(c)}`, num: 0, names: [] };
    }
  }
  let pos = 0;
  let kind: 'priority' | 'quorum' = 'priority';
  let num = 1;
  let parenthesised = false;
  const first = tokens[0];
  const kw = first?.t === 'word' ? first.v.toLowerCase() : '';
  if ((kw === 'first' || kw === 'any') && tokens[1]?.t === 'num') {
    kind = kw === 'any' ? 'quorum' : 'priority';
    num = Number(tokens[1].v);
    pos = 2;
    parenthesised = true;
  } else if (first?.t === 'num') {
    num = Number(first.v);
    pos = 1;
    parenthesised = true;
  }
  if (parenthesised) {
    if (tokens[pos]?.t !== '(' || tokens[tokens.length - 1]?.t !== ')') return { kind: 'invalid', error: 'expected a parenthesised list after the number', num: 0, names: [] };
    pos++;
  }
  const end = parenthesised ? tokens.length - 1 : tokens.length;
  const names: string[] = [];
  for (;;) {
    const tok = tokens[pos];
    if (tok === undefined || pos >= end || (tok.t !== 'word' && tok.t !== 'quoted')) return { kind: 'invalid', error: 'expected a standby name', num: 0, names: [] };
    names.push(tok.v);
    pos++;
    if (pos === end) break;
    if (tokens[pos]?.t !== ',') return { kind: 'invalid', error: 'expected "," between names', num: 0, names: [] };
    pos++;
  }
  if (num < 1) return { kind: 'invalid', error: 'the number of synchronous standbys must be at least 1', num: 0, names: [] };
  return { kind, num, names };
}

/** The canonical form of an ssn value (undefined when unparsable), for comparisons. */
function canonicalSsn(value: string): string | undefined {
  const p = parseSsn(value);
  if (p.kind === 'invalid') return undefined;
  if (p.kind === 'empty') return '';
  if (p.names.length === 1 && p.names[0] === SSN_PLACEHOLDER && p.kind === 'priority') return SSN_PLACEHOLDER;
  return buildSsn(p.names, p.num, p.kind === 'quorum');
}

/** The running ssn already means `desired` (and Vigil manages it). */
export function ssnIs(local: LocalSync, desired: string): boolean {
  return local.managed && canonicalSsn(local.ssn) === canonicalSsn(desired);
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
  const local = obs.pg.sync;
  const mode = settings.mode;
  if (local === undefined || mode === 'off') return { actions: [], memory: { syncConfirmed: obs.memory.syncConfirmed, syncPendingSince: obs.memory.syncPendingSince }, note: '' };
  return mode === 'quorum' ? quorumStep(obs, local, settings) : priorityStep(obs, local, settings);
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

// ---- quorum mode (11.5) -----------------------------------------------------------------------

/** The quorum-relevant state: ssn names/num and /sync leader/voters/quorum. */
export interface QuorumState {
  /** ssn names (the placeholder counts as a name no standby has). */
  ssn: string[];
  numsync: number;
  /** /sync leader (undefined: /sync absent or without leader). */
  leader: string | undefined;
  voters: string[];
  quorum: number;
  /** /sync exists. */
  syncExists: boolean;
}

export type QuorumMove =
  | { kind: 'ssn'; names: string[]; numsync: number }
  | { kind: 'sync'; leader: string; voters: string[]; quorum: number };

/**
 * The invariant of 11.5 for leader `me`: with V = voters + /sync leader and S = ssn names + me,
 * when voters are non-empty: |V u S| <= quorum + numsync + 1, and V subset of S or S of V.
 */
export function quorumInvariant(st: QuorumState, me: string): boolean {
  if (st.voters.length === 0) return true;
  const V = union(st.voters, st.leader !== undefined ? [st.leader] : []);
  const S = union(st.ssn, [me]);
  if (union(V, S).length > st.quorum + st.numsync + 1) return false;
  return subset(V, S) || subset(S, V);
}

export interface QuorumInput {
  me: string;
  /** The desired synchronous set (eligible streaming candidates). */
  active: string[];
  /** Standbys confirmed caught up under the ssn running when the tick began. */
  confirmed: string[];
  nodeCount: number;
  strict: boolean;
}

function applyMove(st: QuorumState, m: QuorumMove): QuorumState {
  if (m.kind === 'ssn') return { ...st, ssn: [...m.names], numsync: m.numsync };
  return { ...st, leader: m.leader, voters: [...m.voters], quorum: m.quorum, syncExists: true };
}

/**
 * The next single write towards the optimal steady state (ssn = voters = active,
 * numsync = min(nodeCount, |active|), quorum = |active| - numsync), keeping quorumInvariant after
 * the write; undefined when there is nothing to do. Path: make /sync a superset (raising quorum
 * first), then set ssn to the target, then shrink /sync to the target; a freshly listed standby
 * that is not confirmed yet keeps the quorum higher by one until it is.
 */
export function quorumNext(st: QuorumState, inp: QuorumInput): QuorumMove | undefined {
  const me = inp.me;
  const S = st.ssn.filter((n) => lower(n) !== lower(me));
  const realS = S.filter((n) => n !== SSN_PLACEHOLDER && n !== '*');
  if (!st.syncExists) return { kind: 'sync', leader: me, voters: [], quorum: 0 };
  // After a failover /sync still names the former leader: it becomes a voter, I leave the voters.
  if (st.leader === undefined || lower(st.leader) !== lower(me)) {
    // No former voters: nothing was acknowledged by standbys, so start without voters.
    if (minus(st.voters, [me]).length === 0) return { kind: 'sync', leader: me, voters: [], quorum: 0 };
    const V2 = minus(union(st.voters, st.leader !== undefined ? [st.leader] : []), [me]);
    const move: QuorumMove = { kind: 'sync', leader: me, voters: V2, quorum: st.quorum };
    if (quorumInvariant(applyMove(st, move), me)) return move;
    return { kind: 'ssn', names: V2, numsync: Math.max(1, V2.length - move.quorum) };
  }
  const V = minus(st.voters, [me]);
  if (V.length > 0 && !quorumInvariant(st, me)) {
    // Repair an inconsistent state from ssn (Patroni: voters = ssn names).
    return { kind: 'sync', leader: me, voters: realS, quorum: Math.max(0, realS.length - st.numsync) };
  }
  const T = union(minus(inp.active, [me]));
  if (T.length === 0) {
    if (inp.strict) {
      // Keep requiring acknowledgements from the last voters (or block every commit).
      const names = V.length > 0 ? V : [SSN_PLACEHOLDER];
      const num = V.length > 0 ? Math.max(1, V.length - st.quorum) : 1;
      if (sameSet(S, names) && st.numsync === num) return undefined;
      return { kind: 'ssn', names, numsync: num };
    }
    if (V.length > 0 || st.quorum !== 0) return { kind: 'sync', leader: me, voters: [], quorum: 0 };
    if (S.length > 0 || st.numsync !== 0) return { kind: 'ssn', names: [], numsync: 0 };
    return undefined;
  }
  const nT = Math.min(inp.nodeCount, T.length);
  const qT = T.length - nT;
  if (V.length === 0) {
    // No voters: ssn first (the invariant does not constrain it), voters once confirmed.
    if (!sameSet(S, T) || st.numsync !== nT) return { kind: 'ssn', names: T, numsync: nT };
    const conf = intersect(T, inp.confirmed).length;
    if (conf === 0) return undefined;
    return { kind: 'sync', leader: me, voters: T, quorum: qT + Math.max(0, nT - conf) };
  }
  if (!sameSet(S, T) || st.numsync !== nT) {
    const U = union(V, S, T);
    const q1 = Math.max(st.quorum, U.length - Math.min(st.numsync, nT));
    if (!sameSet(V, U) || st.quorum < q1) return { kind: 'sync', leader: me, voters: U, quorum: q1 };
    return { kind: 'ssn', names: T, numsync: nT };
  }
  const qWant = qT + Math.max(0, nT - intersect(T, inp.confirmed).length);
  if (!sameSet(V, T) || st.quorum !== qWant) return { kind: 'sync', leader: me, voters: T, quorum: qWant };
  return undefined;
}

/**
 * The writes of one tick: successive quorumNext moves, at most one /sync write (the next would
 * need the version it creates), and none after a leader change (the standbys get one cycle to
 * reconnect to the new primary). `more` is true when moves remain for a later tick.
 */
export function quorumPlan(st: QuorumState, inp: QuorumInput): { moves: QuorumMove[]; more: boolean } {
  const moves: QuorumMove[] = [];
  let cur = st;
  let syncWritten = false;
  for (let i = 0; i < 8; i++) {
    const m = quorumNext(cur, inp);
    if (m === undefined) return { moves, more: false };
    if (m.kind === 'sync') {
      if (syncWritten) return { moves, more: true };
      syncWritten = true;
    }
    const leaderChange = m.kind === 'sync' && cur.syncExists && (cur.leader === undefined || lower(cur.leader) !== lower(inp.me));
    moves.push(m);
    cur = applyMove(cur, m);
    if (leaderChange) return { moves, more: true };
  }
  return { moves, more: true };
}

/** The quorum state as read this tick. */
export function quorumStateOf(local: LocalSync, sync: SyncState | undefined): QuorumState {
  const p = parseSsn(local.ssn);
  const st: QuorumState = {
    ssn: p.names,
    numsync: p.num,
    leader: sync?.leader,
    voters: syncStandbyNames(sync),
    quorum: typeof sync?.quorum === 'number' && sync.quorum >= 0 ? sync.quorum : 0,
    syncExists: sync !== undefined,
  };
  return st;
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

function applyMoves(st: QuorumState, moves: QuorumMove[]): QuorumState {
  return moves.reduce(applyMove, st);
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
