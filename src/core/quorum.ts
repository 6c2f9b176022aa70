// Quorum mode (ANY n) as a pure state machine over (ssn, /sync): the invariant of
// patroni-behavior.md 11.5 and the single writes that move towards the steady state keeping it.

import { syncStandbyNames } from './election.ts';
import type { LocalSync, SyncState } from './model.ts';
import { intersect, lower, minus, parseSsn, sameSet, SSN_PLACEHOLDER, subset, union } from './ssn.ts';

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

export function applyMoves(st: QuorumState, moves: QuorumMove[]): QuorumState {
  return moves.reduce(applyMove, st);
}
