// Pure encoding/decoding of Patroni's DCS values (spec patroni-interfaces.md §1.1-1.3). No IO.
//
// Readers are tolerant exactly as Patroni's are: odd contents never throw, they decode to "empty"
// (undefined or {}), so a corrupted key cannot crash an agent. Writers produce Patroni's compact
// JSON: separators ',' and ':' and, like Python's json.dumps, non-ASCII escaped as \uXXXX.

import type {
  ClusterView,
  FailoverRequest,
  HistoryLine,
  Leader,
  LeaderStatus,
  Member,
  MemberData,
  SyncState,
} from '../core/model.ts';
import { clusterView } from '../core/model.ts';

/** One key/value pair as read from the DCS, key and value already decoded to text. */
export interface RawKv {
  key: string;
  value: string;
  /** Opaque versions (etcd int64 as decimal strings). */
  modRevision: string;
  createRevision: string;
  /** Lease/session id, '' or '0' when none. */
  lease: string;
}

/** '/' + namespace + '/' + scope + '/', runs of '/' collapsed: clusterPrefix('/service/', 'batman') = '/service/batman/'. */
export function clusterPrefix(namespace: string, scope: string): string {
  return `/${namespace}/${scope}/`.replace(/\/{2,}/g, '/');
}

/** Python json.dumps(obj, separators=(',', ':')) equivalent (ensure_ascii on). */
export function compactJson(value: unknown): string {
  const s = JSON.stringify(value) ?? 'null';
  return s.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sessionOf(lease: string): string {
  return lease === '0' ? '' : lease;
}

/**
 * members/<name> value. JSON object -> as is; legacy Governor connection string
 * `postgres://u:p@h:port/db?application_name=<api_url>` -> {conn_url, api_url}; anything else -> {}.
 * `role` is kept verbatim (old Patroni writes `master`; consumers map it to primary).
 */
export function decodeMemberData(value: string): MemberData {
  if (value.startsWith('postgres')) {
    const cut = value.search(/[?#]/);
    const data: MemberData = { conn_url: cut < 0 ? value : value.slice(0, cut) };
    if (cut >= 0 && value[cut] === '?') {
      const query = value.slice(cut + 1).split('#')[0] ?? '';
      const api = new URLSearchParams(query).get('application_name');
      if (api !== null) data.api_url = api;
    }
    return data;
  }
  const parsed = parseJson(value);
  return isObject(parsed) ? (parsed as MemberData) : {};
}

/**
 * failover value. JSON object -> its string fields leader/member/scheduled_at; legacy
 * `leader:candidate` (not JSON) -> both names; empty or JSON non-object -> no fields.
 * The result always carries the key's version so the key can be cleared with CAS.
 */
export function decodeFailover(value: string, version: string): FailoverRequest {
  const out: FailoverRequest = { version };
  if (value === '') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    const [leader, member] = value.split(':').map((s) => s.trim());
    if (leader) out.leader = leader;
    if (member) out.member = member;
    return out;
  }
  if (!isObject(parsed)) return out;
  for (const field of ['leader', 'member', 'scheduled_at'] as const) {
    const v = parsed[field];
    if (typeof v === 'string' && v !== '') out[field] = v;
  }
  return out;
}

/** sync value; missing leader field is allowed, non-object or unparsable -> undefined. */
export function decodeSync(value: string, version: string): SyncState | undefined {
  const parsed = parseJson(value);
  if (!isObject(parsed)) return undefined;
  const out: SyncState = { version };
  if (typeof parsed.leader === 'string' && parsed.leader !== '') out.leader = parsed.leader;
  const standby = parsed.sync_standby;
  out.sync_standby = typeof standby === 'string' && standby !== '' ? standby : null;
  const quorum = typeof parsed.quorum === 'string' ? Number(parsed.quorum) : parsed.quorum;
  out.quorum = typeof quorum === 'number' && Number.isInteger(quorum) && quorum >= 0 ? quorum : null;
  return out;
}

/**
 * history value: JSON array of [timeline, lsn, reason, timestamp?, new_leader?]. Unparsable or
 * non-array -> undefined; malformed lines (no integer timeline/LSN) are skipped.
 */
export function decodeHistory(value: string): HistoryLine[] | undefined {
  const parsed = parseJson(value);
  if (!Array.isArray(parsed)) return undefined;
  const lines: HistoryLine[] = [];
  for (const item of parsed as unknown[]) {
    if (!Array.isArray(item)) continue;
    const [tl, lsn, reason, ts, leader] = item as unknown[];
    if (typeof tl !== 'number' || !Number.isInteger(tl) || typeof lsn !== 'number' || !Number.isInteger(lsn)) continue;
    const line: HistoryLine = [tl, lsn, typeof reason === 'string' ? reason : String(reason ?? '')];
    if (typeof ts === 'string') {
      line[3] = ts;
      if (typeof leader === 'string') line[4] = leader;
    }
    lines.push(line);
  }
  return lines;
}

function toLsn(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/**
 * status value: {"optime":N,"slots":{...},"retain_slots":[...]}, or a bare integer (old format:
 * optime only). slots/retain_slots may themselves be JSON strings; bad ones are dropped.
 * Unparsable or without a usable optime -> undefined.
 */
export function decodeStatus(value: string): LeaderStatus | undefined {
  const parsed = parseJson(value);
  const bare = toLsn(parsed);
  if (bare !== undefined) return { optime: bare };
  if (!isObject(parsed)) return undefined;
  const optime = toLsn(parsed.optime);
  if (optime === undefined) return undefined;
  const out: LeaderStatus = { optime };
  let slots = parsed.slots;
  if (typeof slots === 'string') slots = parseJson(slots);
  if (isObject(slots)) {
    const good: Record<string, number> = {};
    for (const [name, lsn] of Object.entries(slots)) {
      const n = toLsn(lsn);
      if (n !== undefined) good[name] = n;
    }
    out.slots = good;
  }
  let retain = parsed.retain_slots;
  if (typeof retain === 'string') retain = parseJson(retain);
  if (Array.isArray(retain)) out.retain_slots = (retain as unknown[]).filter((s): s is string => typeof s === 'string');
  return out;
}

/**
 * The configVersion of a /config that exists but cannot be read (not a JSON object: written by
 * another tool, or truncated), Patroni's modify_index 0 for such a key. It names no version the
 * key can have on any backend, and every writeConfig refuses a compare-and-set with it (false, no
 * request sent: on etcd v2 a prevIndex of 0 would not even compare), so that no read-modify-write
 * (PATCH /config, edit-config) silently replaces a configuration nobody could read. Replacing it
 * takes an unconditional write (PUT /config; the lock holder's bootstrap configuration, as Patroni
 * writes its own when /config holds no data).
 */
export const INVALID_CONFIG_VERSION = '0';

/** Whether a writeConfig with this version must be refused without asking the store. */
export function unusableConfigVersion(version: string | undefined): boolean {
  return version === INVALID_CONFIG_VERSION;
}

/** config value: JSON object, else undefined (an invalid /config: keep the last good one). */
export function decodeConfig(value: string): Record<string, unknown> | undefined {
  const parsed = parseJson(value);
  return isObject(parsed) ? parsed : undefined;
}

/** failsafe value: JSON object of member name -> api_url; non-string entries dropped. */
export function decodeFailsafe(value: string): Record<string, string> | undefined {
  const parsed = parseJson(value);
  if (!isObject(parsed)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * Build a ClusterView from every key under `prefix` (one consistent read at `revision`).
 * Keys outside the prefix and unknown keys (e.g. Citus group directories) are ignored.
 * configVersion is set whenever /config exists; when its content is invalid (config then
 * undefined) it is INVALID_CONFIG_VERSION, which no compare-and-set accepts. A leader key with an empty value is
 * returned with name '' (Patroni treats it as unlocked; the key still blocks an acquire).
 */
export function decodeCluster(prefix: string, kvs: RawKv[], revision: string): ClusterView {
  const view: ClusterView = clusterView({ revision });
  let legacyOptime: string | undefined;
  let statusRaw: string | undefined;
  for (const kv of kvs) {
    if (!kv.key.startsWith(prefix)) continue;
    const rel = kv.key.slice(prefix.length);
    const value = kv.value;
    switch (rel) {
      case 'initialize':
        view.initialize = value;
        break;
      case 'config':
        view.config = decodeConfig(value);
        view.configVersion = view.config === undefined ? INVALID_CONFIG_VERSION : kv.modRevision;
        break;
      case 'leader': {
        const leader: Leader = { name: value, version: kv.modRevision, session: sessionOf(kv.lease) };
        view.leader = leader;
        break;
      }
      case 'failover':
        view.failover = decodeFailover(value, kv.modRevision);
        break;
      case 'sync':
        view.sync = decodeSync(value, kv.modRevision);
        break;
      case 'history':
        view.history = decodeHistory(value);
        break;
      case 'status':
        statusRaw = value;
        break;
      case 'optime/leader':
        legacyOptime = value;
        break;
      case 'failsafe':
        view.failsafe = decodeFailsafe(value);
        break;
      default:
        if (rel.startsWith('members/')) {
          const name = rel.slice('members/'.length);
          if (name === '' || name.includes('/')) break;
          const member: Member = { name, data: decodeMemberData(value), version: kv.modRevision, session: sessionOf(kv.lease) };
          view.members.push(member);
        }
    }
  }
  if (statusRaw !== undefined) view.status = decodeStatus(statusRaw);
  if (view.status === undefined && legacyOptime !== undefined) {
    const optime = toLsn(legacyOptime);
    if (optime !== undefined) view.status = { optime };
  }
  return view;
}

// ---- writers -------------------------------------------------------------------------------

export function encodeMember(data: MemberData): string {
  return compactJson(data);
}

export function encodeConfig(config: Record<string, unknown>): string {
  return compactJson(config);
}

/** Only the set fields, in Patroni's order; {} clears the request. */
export function encodeFailover(value: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const k of ['leader', 'member', 'scheduled_at']) if (value[k] !== undefined && value[k] !== null && value[k] !== '') out[k] = value[k];
  for (const [k, v] of Object.entries(value)) if (!(k in out) && !['leader', 'member', 'scheduled_at'].includes(k) && v !== undefined) out[k] = v;
  return compactJson(out);
}

export function encodeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }): string {
  return compactJson({ leader: value.leader, quorum: value.quorum, sync_standby: value.sync_standby });
}

export function encodeHistory(history: HistoryLine[]): string {
  return compactJson(history);
}

/** slots and retain_slots are omitted when empty, as Patroni does. */
export function encodeStatus(status: LeaderStatus): string {
  const out: Record<string, unknown> = { optime: status.optime };
  if (status.slots && Object.keys(status.slots).length > 0) out.slots = status.slots;
  if (status.retain_slots && status.retain_slots.length > 0) out.retain_slots = status.retain_slots;
  return compactJson(out);
}

export function encodeFailsafe(value: Record<string, string>): string {
  return compactJson(value);
}
