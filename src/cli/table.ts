// The `vigil list` table: rows derived from a ClusterView the way Patroni's /cluster structure
// derives them (spec §2.7), rendered like `patronictl list` (spec §3.3) in pretty, tsv, json and
// yaml form. Pure functions: no IO, no clock.
//
// Input may come from a DCS holding odd values (written by other tools or old versions); every
// field is type-checked and anything unusable is shown blank rather than throwing.

import { stringify as yamlStringify } from 'yaml';
import type { ClusterView, Member } from '../core/model.ts';
import { isStandbyClusterConfig, nameIn, syncModeOf, syncStandbyNames } from '../core/election.ts';
import { isPaused } from '../core/values.ts';

export type ListFormat = 'pretty' | 'tsv' | 'json' | 'yaml';

/** One member line of the list, before formatting. Unknown values are undefined. */
export interface ListRow {
  member: string;
  /** host, or host:port when the Host rule asks for ports; '' when conn_url has no host. */
  host: string;
  /** Title-cased role: Leader, Standby Leader, Sync Standby, Quorum Standby, Replica. */
  role: string;
  state: string;
  tl: number | undefined;
  /**
   * LSN as int; 'unknown' when a non-leader did not report it (shown as `unknown`, as Patroni
   * does); undefined for the leader (blank).
   */
  receiveLsn: number | 'unknown' | undefined;
  /** Lag in bytes (>= 0); undefined when unknown or for the leader (blank). */
  receiveLag: number | undefined;
  replayLsn: number | 'unknown' | undefined;
  replayLag: number | undefined;
  /** Whether conn_url/conn_kwargs gave a host (optional columns only look at such members). */
  hasHost: boolean;
  pendingRestart: boolean;
  /** guc -> [old, new]. */
  pendingRestartReason: Array<[string, string, string]> | undefined;
  /** schedule text, with ` if version < X` when the restart is conditional. */
  scheduledRestart: string | undefined;
  tags: Record<string, unknown> | undefined;
}

export interface RenderOptions {
  format: ListFormat;
  extended: boolean;
}

const MB = 1024 * 1024;
const TWO32 = 2 ** 32;

/** LSN as PostgreSQL prints it: upper-case hex, `X/Y`, no zero padding. */
export function formatLsn(lsn: number): string {
  const hi = Math.floor(lsn / TWO32);
  const lo = lsn - hi * TWO32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** Bytes to MB, rounded half to even (as Python's round(), which patronictl uses). */
export function lagInMb(bytes: number): number {
  const x = bytes / MB;
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asLsn(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** host and port of a member's PostgreSQL (conn_kwargs, else conn_url); port defaults to 5432. */
export function memberHostPort(data: Record<string, unknown>): { host: string; port: number } | undefined {
  const kw = data['conn_kwargs'];
  if (isObject(kw)) {
    const host = asString(kw['host']);
    if (!host) return undefined;
    const p = Number(kw['port']);
    return { host, port: Number.isInteger(p) && p > 0 ? p : 5432 };
  }
  const url = asString(data['conn_url']);
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  let host = parsed.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host) return undefined;
  host = decodeURIComponent(host);
  const port = parsed.port === '' ? 5432 : Number(parsed.port);
  return { host, port };
}

function titleCase(role: string): string {
  return role
    .replace(/_/g, ' ')
    .split(' ')
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1).toLowerCase() : w))
    .join(' ');
}

function scheduledRestartText(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  const schedule = v['schedule'];
  if (schedule === undefined || schedule === null) return undefined;
  let text = String(schedule);
  if (v['postgres_version'] !== undefined && v['postgres_version'] !== null) text += ` if version < ${String(v['postgres_version'])}`;
  return text;
}

function pendingReasons(v: unknown): Array<[string, string, string]> | undefined {
  if (!isObject(v)) return undefined;
  const out: Array<[string, string, string]> = [];
  for (const [guc, change] of Object.entries(v)) {
    if (!isObject(change)) continue;
    out.push([guc, String(change['old_value'] ?? ''), String(change['new_value'] ?? '')]);
  }
  return out.length > 0 ? out : undefined;
}

/** The WAL position replicas' lag is measured against: /status optime, else the leader's xlog_location, else 0. */
function clusterLsn(view: ClusterView): number {
  const optime = asLsn(view.status?.optime);
  if (optime !== undefined) return optime;
  const leaderName = view.leader?.name;
  const leader = view.members.find((m) => m.name === leaderName);
  return asLsn(leader?.data.xlog_location) ?? 0;
}

/**
 * The member rows of `patronictl list`, sorted by member name (code point order, as Python sorts).
 * Lag = max(0, cluster LSN - member LSN) in bytes; the leader has no LSN/lag cells.
 */
export function clusterRows(view: ClusterView): ListRow[] {
  const leaderName = view.leader?.name;
  const mode = syncModeOf(view.config);
  const syncSet = mode === 'off' ? [] : syncStandbyNames(view.sync);
  const lastLsn = clusterLsn(view);
  const members: Member[] = [...view.members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const addrs = members.map((m) => memberHostPort(isObject(m.data) ? m.data : {}));
  const withHost = addrs.filter((a): a is { host: string; port: number } => a !== undefined);
  const appendPort =
    withHost.some((a) => a.port !== 5432) || new Set(withHost.map((a) => a.host)).size < withHost.length;

  return members.map((m, i) => {
    const data: Record<string, unknown> = isObject(m.data) ? m.data : {};
    const isLeader = leaderName !== undefined && m.name === leaderName;
    let role: string;
    if (isLeader) {
      role = isStandbyClusterConfig(view.config) ? 'standby_leader' : 'leader';
    } else if (nameIn(syncSet, m.name)) {
      role = mode === 'quorum' ? 'quorum_standby' : 'sync_standby';
    } else {
      role = 'replica';
    }
    // Every role but `leader` (a standby leader too) shows replication_state when it has one.
    const memberState = asString(data['state']) ?? '';
    const replState = role === 'leader' ? '' : (asString(data['replication_state']) ?? '');
    const state = replState || memberState;

    const addr = addrs[i];
    const host = addr === undefined ? '' : appendPort ? `${addr.host}:${addr.port}` : addr.host;
    const tl = typeof data['timeline'] === 'number' && Number.isFinite(data['timeline']) ? data['timeline'] : undefined;

    let receiveLsn: number | 'unknown' | undefined;
    let replayLsn: number | 'unknown' | undefined;
    if (!isLeader) {
      // 0 counts as not reported, as in Patroni.
      receiveLsn = asLsn(data['receive_lsn']) || 'unknown';
      replayLsn = asLsn(data['replay_lsn']) || 'unknown';
      const xlog = asLsn(data['xlog_location']);
      // Members of old versions report only xlog_location: show it as what it most likely is.
      if (receiveLsn === 'unknown' && replayLsn === 'unknown' && xlog) {
        if (state === 'streaming') receiveLsn = xlog;
        else replayLsn = xlog;
      }
    }
    const lagOf = (lsn: number | 'unknown' | undefined): number | undefined =>
      typeof lsn === 'number' ? Math.max(0, lastLsn - lsn) : undefined;
    const tags = isObject(data['tags']) ? data['tags'] : undefined;

    return {
      member: m.name,
      host,
      role: titleCase(role),
      state,
      tl,
      receiveLsn,
      receiveLag: lagOf(receiveLsn),
      replayLsn,
      replayLag: lagOf(replayLsn),
      hasHost: addr !== undefined,
      pendingRestart: data['pending_restart'] === true,
      pendingRestartReason: pendingReasons(data['pending_restart_reason']),
      scheduledRestart: scheduledRestartText(data['scheduled_restart']),
      tags,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Cell values and formatting

type Cell = string | number | Record<string, unknown>;

interface Column {
  /** Name in tsv/json/yaml. */
  name: string;
  /** Name in the pretty table header. */
  title: string;
  align: 'l' | 'r';
  value(row: ListRow, fmt: ListFormat): Cell;
}

function lsnCell(lsn: number | 'unknown' | undefined): string {
  return typeof lsn === 'number' ? formatLsn(lsn) : (lsn ?? '');
}

const BASE_COLUMNS: Column[] = [
  { name: 'Member', title: 'Member', align: 'l', value: (r) => r.member },
  { name: 'Host', title: 'Host', align: 'l', value: (r) => r.host },
  { name: 'Role', title: 'Role', align: 'l', value: (r) => r.role },
  { name: 'State', title: 'State', align: 'l', value: (r) => r.state },
  { name: 'TL', title: 'TL', align: 'r', value: (r) => r.tl ?? '' },
  { name: 'Receive LSN', title: 'Receive LSN', align: 'r', value: (r) => lsnCell(r.receiveLsn) },
  { name: 'Receive Lag', title: 'Lag', align: 'r', value: (r) => (r.receiveLag === undefined ? '' : lagInMb(r.receiveLag)) },
  { name: 'Replay LSN', title: 'Replay LSN', align: 'r', value: (r) => lsnCell(r.replayLsn) },
  { name: 'Replay Lag', title: 'Lag', align: 'r', value: (r) => (r.replayLag === undefined ? '' : lagInMb(r.replayLag)) },
];

const PENDING_REASON_MAX = 50;

const OPTIONAL_COLUMNS: Array<Column & { present(r: ListRow): boolean }> = [
  {
    name: 'Pending restart',
    title: 'Pending restart',
    align: 'l',
    present: (r) => r.pendingRestart,
    value: (r) => (r.pendingRestart ? '*' : ''),
  },
  {
    name: 'Pending restart reason',
    title: 'Pending restart reason',
    align: 'l',
    present: (r) => r.pendingRestartReason !== undefined,
    value: (r, fmt) =>
      (r.pendingRestartReason ?? [])
        .map(([guc, oldV, newV]) => {
          const line = `${guc}: ${oldV}->${newV}`;
          return fmt === 'pretty' && line.length > PENDING_REASON_MAX ? `${guc}: [hidden - too long]` : line;
        })
        .join('\n'),
  },
  {
    name: 'Scheduled restart',
    title: 'Scheduled restart',
    align: 'l',
    present: (r) => r.scheduledRestart !== undefined,
    value: (r) => r.scheduledRestart ?? '',
  },
  {
    name: 'Tags',
    title: 'Tags',
    align: 'l',
    present: (r) => r.tags !== undefined && Object.keys(r.tags).length > 0,
    value: (r, fmt) => {
      if (r.tags === undefined) return '';
      if (fmt === 'pretty') return Object.keys(r.tags).length === 0 ? '{}' : yamlBlock(r.tags).trim();
      if (fmt === 'tsv') return yamlFlow(r.tags);
      return r.tags;
    },
  },
];

function columnsFor(rows: ListRow[], extended: boolean): Column[] {
  // As patronictl: only members with a host count when deciding whether to show an optional column.
  return [...BASE_COLUMNS, ...OPTIONAL_COLUMNS.filter((c) => extended || rows.some((r) => r.hasHost && c.present(r)))];
}

/** YAML block style with sorted keys, as PyYAML's safe_dump(default_flow_style=False). */
function yamlBlock(value: unknown): string {
  return yamlStringify(value, { sortMapEntries: true, lineWidth: 200, version: '1.1', singleQuote: true });
}

/** YAML flow style with sorted keys, as PyYAML's safe_dump(default_flow_style=True): `{a: 1, b: x}`. */
function yamlFlow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(yamlFlow).join(', ')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${yamlScalar(k)}: ${yamlFlow(value[k])}`).join(', ')}}`;
  }
  return yamlScalar(value);
}

function yamlScalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  const s = yamlStringify(v, { version: '1.1', lineWidth: 0 }).trimEnd();
  // Flow context forbids unquoted , [ ] { } in plain scalars.
  if (typeof v === 'string' && /[,[\]{}]/.test(v) && !/^['"]/.test(s)) return `'${v.replace(/'/g, "''")}'`;
  return s;
}

/** JSON as Python's json.dumps with default settings: `", "` and `": "` separators, ASCII only. */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
    return Number.isInteger(value) ? String(value) : JSON.stringify(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (isObject(value)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`)
      .join(', ')}}`;
  }
  return pyJson(String(value));
}

function cellText(c: Cell): string {
  return typeof c === 'string' ? c : typeof c === 'number' ? String(c) : pyJson(c);
}

/**
 * A table in prettytable's default style (as patronictl prints it): `+---+` rules, one space of
 * padding, per-column alignment that also applies to the header, multi-line cells top-aligned,
 * rules between rows only when some cell has several lines. `title`, when given, overwrites the
 * top rule from its second character on (truncated so the last `+` stays).
 */
export function prettyTable(title: string | undefined, headers: string[], aligns: Array<'l' | 'r'>, rows: string[][]): string {
  const widths = headers.map((h, i) => {
    let w = h.length;
    for (const r of rows) for (const line of (r[i] ?? '').split('\n')) w = Math.max(w, line.length);
    return w;
  });
  const rule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const line = (cells: string[]): string =>
    '|' +
    cells
      .map((c, i) => {
        const w = widths[i]!;
        return ' ' + (aligns[i] === 'r' ? c.padStart(w) : c.padEnd(w)) + ' ';
      })
      .join('|') +
    '|';
  const block = (cells: string[]): string[] => {
    const split = cells.map((c) => c.split('\n'));
    const height = Math.max(1, ...split.map((s) => s.length));
    const out: string[] = [];
    for (let k = 0; k < height; k++) out.push(line(split.map((s) => s[k] ?? '')));
    return out;
  };
  let top = rule;
  if (title) {
    const t = title.slice(0, rule.length - 2);
    top = rule[0] + t + rule.slice(1 + t.length);
  }
  const allRules = rows.some((r) => r.some((c) => c.includes('\n')));
  const out = [top, ...block(headers), rule];
  rows.forEach((r, i) => {
    out.push(...block(r));
    if (allRules && i < rows.length - 1) out.push(rule);
  });
  out.push(rule);
  return out.join('\n');
}

/** ` Cluster: <scope> (<sysid>|uninitialized|initializing) ` */
export function clusterTitle(scope: string, view: ClusterView): string {
  const init = view.initialize === undefined ? 'uninitialized' : view.initialize === '' ? 'initializing' : view.initialize;
  return ` Cluster: ${scope} (${init}) `;
}

/** Footer lines of the pretty form: maintenance mode and a scheduled switchover. */
export function serviceInfo(view: ClusterView): string[] {
  const info: string[] = [];
  if (isPaused(view.config)) info.push('Maintenance mode: on');
  const f = view.failover;
  if (f && typeof f.scheduled_at === 'string' && f.scheduled_at) {
    let text = `Switchover scheduled at: ${f.scheduled_at.replace(/Z$/, '+00:00')}`;
    if (typeof f.leader === 'string' && f.leader) text += `\n${'from'.padStart(24)}: ${f.leader}`;
    if (typeof f.member === 'string' && f.member) text += `\n${'to'.padStart(24)}: ${f.member}`;
    info.push(text);
  }
  return info;
}

/**
 * The whole `list` output for one cluster, without a trailing newline. pretty: the table plus
 * footer lines; tsv: header and rows with the Cluster column; json/yaml: an array of objects keyed
 * by column name, empty cells omitted.
 */
export function renderTable(scope: string, view: ClusterView, opts: RenderOptions): string {
  const rows = clusterRows(view);
  const cols = columnsFor(rows, opts.extended);
  const fmt = opts.format;
  if (fmt === 'json' || fmt === 'yaml') {
    const elements = rows.map((r) => {
      const o: Record<string, unknown> = { Cluster: scope };
      for (const c of cols) {
        const v = c.value(r, fmt);
        if (cellText(v) !== '') o[c.name] = v;
      }
      return o;
    });
    return fmt === 'json' ? pyJson(elements) : yamlBlock(elements).trimEnd();
  }
  if (fmt === 'tsv') {
    const lines = [['Cluster', ...cols.map((c) => c.name)].join('\t')];
    for (const r of rows) lines.push([scope, ...cols.map((c) => cellText(c.value(r, fmt)))].join('\t'));
    return lines.join('\n');
  }
  const table = prettyTable(
    clusterTitle(scope, view),
    cols.map((c) => c.title),
    cols.map((c) => c.align),
    rows.map((r) => cols.map((c) => cellText(c.value(r, fmt)))),
  );
  const info = serviceInfo(view);
  return info.length === 0 ? table : `${table}\n ${info.join('\n ')}`;
}
