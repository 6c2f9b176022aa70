// Read-mostly commands (spec §3.2): `vigil topology`, `vigil history`, `vigil dsn`,
// `vigil version` and `vigil remove` (the one that deletes: the whole cluster subtree, after three
// typed confirmations).

import type { ClusterView } from '../../core/model.ts';
import { VIGIL_VERSION } from '../../api/version.ts';
import { CliError, UsageError } from '../args.ts';
import {
  clusterRows,
  clusterTitle,
  formatLsn,
  lagInMb,
  memberHostPort,
  prettyTable,
  pyJson,
  renderTable,
  serviceInfo,
  type ListFormat,
  type ListRow,
} from '../table.ts';
import { formatConfig, membersWithRole, optBool, optString, parseRole, runCommand, type Parsed } from './common.ts';
import { prompt, type Io } from './io.ts';

// ---------------------------------------------------------------------------------------------
// topology

const TOPOLOGY_USAGE = `usage: vigil topology [-c CONFIG] [-d DCS_URL] [-W] [-w SEC] [CLUSTER...]

Like list, with members ordered as a replication tree (replicatefrom tags).`;

/**
 * Rows in tree order: the leader, then its replicas depth first; a member's parent is its
 * replicatefrom tag when that names another non-leader member, else the leader. Names below the
 * root get `+ ` indented two spaces per level beyond the first.
 */
export function topologyRows(rows: ListRow[]): ListRow[] {
  const isLeader = (r: ListRow): boolean => r.role.endsWith('Leader');
  const leader = rows.find(isLeader);
  const replicas = new Set(rows.filter((r) => !isLeader(r)).map((r) => r.member));
  const children = new Map<string | undefined, ListRow[]>();
  for (const r of rows) {
    if (isLeader(r)) continue;
    const rf = r.tags?.['replicatefrom'];
    const parent = typeof rf === 'string' && rf !== r.member && replicas.has(rf) ? rf : leader?.member;
    const list = children.get(parent) ?? [];
    list.push(r);
    children.set(parent, list);
  }
  const out: ListRow[] = [];
  const seen = new Set<string>();
  const walk = (level: number, name: string | undefined, row: ListRow | undefined): void => {
    if (row !== undefined) {
      if (seen.has(row.member)) return; // a replicatefrom cycle
      seen.add(row.member);
      out.push(level > 0 ? { ...row, member: `${' '.repeat((level - 1) * 2)}+ ${row.member}` } : row);
    }
    for (const c of children.get(name) ?? []) walk(level + 1, c.member, c);
  };
  walk(0, leader?.member, leader);
  // Members caught in a replicatefrom cycle hang off nothing; show them rather than drop them.
  for (const r of rows) if (!seen.has(r.member)) out.push({ ...r, member: `+ ${r.member}` });
  return out;
}

/** The topology table (pretty only), with list's columns and footer. */
export function renderTopology(scope: string, view: ClusterView): string {
  const rows = topologyRows(clusterRows(view));
  const lsn = (v: number | 'unknown' | undefined): string => (typeof v === 'number' ? formatLsn(v) : (v ?? ''));
  const cols: Array<{ title: string; align: 'l' | 'r'; value(r: ListRow): string }> = [
    { title: 'Member', align: 'l', value: (r) => r.member },
    { title: 'Host', align: 'l', value: (r) => r.host },
    { title: 'Role', align: 'l', value: (r) => r.role },
    { title: 'State', align: 'l', value: (r) => r.state },
    { title: 'TL', align: 'r', value: (r) => (r.tl === undefined ? '' : String(r.tl)) },
    { title: 'Receive LSN', align: 'r', value: (r) => lsn(r.receiveLsn) },
    { title: 'Lag', align: 'r', value: (r) => (r.receiveLag === undefined ? '' : String(lagInMb(r.receiveLag))) },
    { title: 'Replay LSN', align: 'r', value: (r) => lsn(r.replayLsn) },
    { title: 'Lag', align: 'r', value: (r) => (r.replayLag === undefined ? '' : String(lagInMb(r.replayLag))) },
  ];
  const withHost = rows.filter((r) => r.hasHost);
  if (withHost.some((r) => r.pendingRestart)) cols.push({ title: 'Pending restart', align: 'l', value: (r) => (r.pendingRestart ? '*' : '') });
  if (withHost.some((r) => r.pendingRestartReason !== undefined)) {
    cols.push({
      title: 'Pending restart reason',
      align: 'l',
      value: (r) =>
        (r.pendingRestartReason ?? [])
          .map(([g, o, n]) => (`${g}: ${o}->${n}`.length > 50 ? `${g}: [hidden - too long]` : `${g}: ${o}->${n}`))
          .join('\n'),
    });
  }
  if (withHost.some((r) => r.scheduledRestart !== undefined)) cols.push({ title: 'Scheduled restart', align: 'l', value: (r) => r.scheduledRestart ?? '' });
  if (withHost.some((r) => r.tags !== undefined && Object.keys(r.tags).length > 0)) {
    cols.push({ title: 'Tags', align: 'l', value: (r) => (r.tags === undefined ? '' : formatConfig(r.tags).trim()) });
  }
  const table = prettyTable(
    clusterTitle(scope, view),
    cols.map((c) => c.title),
    cols.map((c) => c.align),
    rows.map((r) => cols.map((c) => c.value(r))),
  );
  const info = serviceInfo(view);
  return info.length === 0 ? table : `${table}\n ${info.join('\n ')}`;
}

/** -W / -w SEC: seconds between repeats, undefined for once. */
function watchSeconds(p: Parsed): number | undefined {
  const w = optString(p, 'watch');
  if (w !== undefined) {
    const n = Number(w);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`-w/--watch needs a positive number of seconds, got '${w}'`);
    return n;
  }
  return optBool(p, 'W') ? 2 : undefined;
}

export function runTopology(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    TOPOLOGY_USAGE,
    { W: { type: 'boolean', short: 'W' }, watch: { type: 'string', short: 'w' } },
    async (p, _io, context) => {
      const watch = watchSeconds(p);
      const ctx = await context();
      const clusters = p.positionals.length > 0 ? p.positionals : [ctx.clusterName(undefined)];
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      if (watch !== undefined) {
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
      }
      try {
        for (;;) {
          const texts: string[] = [];
          for (const c of clusters) texts.push(`${renderTopology(c, await ctx.readCluster(c))}\n`);
          ctx.io.out((watch !== undefined && process.stdout.isTTY === true ? '\x1b[2J\x1b[H' : '') + texts.join(''));
          if (watch === undefined || stop.signal.aborted) return 0;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, watch * 1000);
            stop.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
          });
          if (stop.signal.aborted) return 0;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
    io,
  );
}

// ---------------------------------------------------------------------------------------------
// history

const HISTORY_USAGE = `usage: vigil history [-c CONFIG] [-d DCS_URL] [-f pretty|tsv|json|yaml] [CLUSTER]

Print the timeline history (/history key): TL, LSN, Reason, Timestamp, New Leader.`;

export function parseFormat(v: string | undefined, dflt: ListFormat): ListFormat {
  if (v === undefined) return dflt;
  const f = v.toLowerCase();
  if (f === 'pretty' || f === 'tsv' || f === 'json' || f === 'yaml') return f;
  if (f === 'yml') return 'yaml';
  throw new UsageError(`Unknown output format '${v}': use pretty, tsv, json or yaml`);
}

/** A generic table as patronictl's print_output without a title: pretty, tsv, json or yaml. */
export function printOutput(columns: string[], rows: unknown[][], fmt: ListFormat, rightAligned: string[] = [], delimiter = '\t'): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? 'None' : typeof v === 'string' ? v : typeof v === 'object' ? pyJson(v) : String(v));
  if (fmt === 'json' || fmt === 'yaml') {
    const elements = rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? null])));
    return fmt === 'json' ? pyJson(elements) : formatConfig(elements).trimEnd();
  }
  if (fmt === 'tsv') return [columns, ...rows].map((r) => r.map(cell).join(delimiter)).join('\n');
  return prettyTable(
    undefined,
    columns,
    columns.map((c) => (rightAligned.includes(c) ? 'r' : 'l')),
    rows.map((r) => r.map(cell)),
  );
}

/** History rows padded to five columns with ''. */
export function historyRows(view: ClusterView): unknown[][] {
  return (view.history ?? []).map((line) => {
    const r: unknown[] = Array.isArray(line) ? [...line] : [];
    while (r.length < 5) r.push('');
    return r.slice(0, Math.max(5, r.length));
  });
}

export function runHistory(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    HISTORY_USAGE,
    { format: { type: 'string', short: 'f' } },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`history takes at most one CLUSTER, got ${p.positionals.length}`);
      const fmt = parseFormat(optString(p, 'format'), 'pretty');
      const ctx = await context();
      const view = await ctx.readCluster(ctx.clusterName(p.positionals[0]));
      const columns = ['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader'];
      ctx.io.out(`${printOutput(columns, historyRows(view), fmt, ['TL', 'LSN'])}\n`);
      return 0;
    },
    io,
  );
}

// ---------------------------------------------------------------------------------------------
// dsn

const DSN_USAGE = `usage: vigil dsn [-c CONFIG] [-d DCS_URL] [-r ROLE | -m MEMBER] [CLUSTER]

Print 'host=H port=P' of the leader (default), of a member with ROLE, or of MEMBER.`;

export function runDsn(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    DSN_USAGE,
    { role: { type: 'string', short: 'r' }, member: { type: 'string', short: 'm' } },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`dsn takes at most one CLUSTER, got ${p.positionals.length}`);
      const member = optString(p, 'member');
      let role = parseRole(optString(p, 'role'), undefined);
      if (member !== undefined && role !== undefined) throw new UsageError('--role and --member are mutually exclusive options');
      if (member !== undefined) role = 'any';
      role ??= 'leader';
      const ctx = await context();
      const view = await ctx.readCluster(ctx.clusterName(p.positionals[0]));
      const m = membersWithRole(view, role).find((x) => member === undefined || x.name === member);
      if (m === undefined) throw new CliError('Can not find a suitable member');
      const hp = memberHostPort(m.data);
      if (hp === undefined) throw new CliError(`member ${m.name} publishes no usable conn_url`);
      ctx.io.out(`host=${hp.host} port=${hp.port}\n`);
      return 0;
    },
    io,
  );
}

// ---------------------------------------------------------------------------------------------
// version

const VERSION_USAGE = `usage: vigil version [-c CONFIG] [-d DCS_URL] [CLUSTER [MEMBER...]]

Print vigil's version and, with CLUSTER, each member's Patroni-compatible and PostgreSQL versions.`;

/** server_version_num as x.y.z (before 10) or x.y. */
export function formatPgVersion(v: number): string {
  if (v < 100000) return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
  return `${Math.floor(v / 10000)}.${v % 100}`;
}

/** `<member>: Patroni <ver>[ PostgreSQL <x.y>]` from a GET /patroni body. */
export function versionLine(member: string, body: string): string {
  const data = JSON.parse(body) as { patroni?: { version?: unknown }; server_version?: unknown };
  const ver = data.patroni?.version;
  const pg = typeof data.server_version === 'number' && data.server_version > 0 ? ` PostgreSQL ${formatPgVersion(data.server_version)}` : '';
  return `${member}: Patroni ${ver === undefined ? 'None' : String(ver)}${pg}`;
}

export function runVersion(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    VERSION_USAGE,
    {},
    async (p, out, context) => {
      out.out(`vigil version ${VIGIL_VERSION}\n`);
      const [cluster, ...names] = p.positionals;
      if (cluster === undefined) return 0;
      out.out('\n');
      const ctx = await context();
      const view = await ctx.readCluster(cluster);
      const unknown = names.filter((n) => !view.members.some((m) => m.name === n));
      for (const m of view.members) {
        if (typeof m.data.api_url !== 'string' || !m.data.api_url) continue;
        if (names.length > 0 && !names.includes(m.name)) continue;
        try {
          const r = await ctx.request(m, 'GET', 'patroni', undefined, 5000);
          out.out(`${versionLine(m.name, r.body)}\n`);
        } catch (err) {
          out.out(`${m.name}: failed to get version: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      if (unknown.length > 0) throw new CliError(`${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a member of cluster ${cluster}`);
      return 0;
    },
    io,
  );
}

// ---------------------------------------------------------------------------------------------
// remove

const REMOVE_USAGE = `usage: vigil remove [-c CONFIG] [-d DCS_URL] [-f pretty|tsv|json|yaml] CLUSTER

Delete every key of the cluster from the DCS, after typing the cluster name, "Yes I am aware" and,
when the cluster has a leader, the leader's name.`;

/** Whether a read found no key at all under the cluster prefix. */
export function emptyCluster(view: ClusterView): boolean {
  return (
    view.initialize === undefined &&
    view.config === undefined &&
    view.leader === undefined &&
    view.members.length === 0 &&
    view.failover === undefined &&
    view.sync === undefined &&
    view.history === undefined &&
    view.status === undefined &&
    view.failsafe === undefined
  );
}

export function runRemove(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    REMOVE_USAGE,
    { format: { type: 'string', short: 'f' } },
    async (p, _io, context) => {
      if (p.positionals.length !== 1) throw new UsageError('remove needs exactly one CLUSTER');
      const cluster = p.positionals[0]!;
      const fmt = parseFormat(optString(p, 'format'), 'pretty');
      const ctx = await context();
      const view = await ctx.readCluster(cluster);
      if (emptyCluster(view)) throw new CliError(`Cluster ${cluster} has no keys in the DCS (${ctx.prefix(cluster)}): nothing to remove`);
      ctx.io.out(`${renderTable(cluster, view, { format: fmt, extended: false })}\n`);
      const name = await prompt(ctx.io, 'Please confirm the cluster name to remove', { forceHint: false });
      if (name !== cluster) throw new CliError('Cluster names specified do not match');
      const aware = 'Yes I am aware';
      const typed = await prompt(ctx.io, `You are about to remove all information in DCS for ${cluster}, please type: "${aware}"`, { forceHint: false });
      if (typed !== aware) throw new CliError(`You did not exactly type "${aware}"`);
      if (view.leader?.name) {
        const l = await prompt(ctx.io, 'This cluster currently is healthy. Please specify the leader name to continue', { forceHint: false });
        if (l !== view.leader.name) throw new CliError('You did not specify the current leader of the cluster');
      }
      try {
        await ctx.dcs(cluster).deleteCluster();
      } catch (err) {
        throw ctx.dcsError(`cannot remove cluster '${cluster}'`, err);
      }
      return 0;
    },
    io,
  );
}


