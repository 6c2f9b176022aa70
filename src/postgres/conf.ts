// Pure renderers and parsers for postgresql.conf: the parameters Vigil controls, the recovery
// settings of a replica (primary_conninfo, primary_slot_name), the managed
// synchronous_standby_names block, what a change needs (reload or restart). No IO here.
// Connection strings, pgpass and pg_hba.conf are in conninfo.ts; the grammar check of a
// synchronous_standby_names value is in ssn-grammar.ts.
//
// Conventions follow Patroni (spec: patroni-interfaces.md 1.10 and 4.5) so that a Vigil node and
// a Patroni node can replicate from each other during a node-by-node migration.

import type { PostgresqlSettings } from '../config/types.ts';
import { libpqPairs, parseConnUrl, parseListen, renderConninfo, type PgpassEntry } from './conninfo.ts';
import { confValueToString, parseBool, parseIntValue, parseSizeMb, quoteConfValue } from './conf-values.ts';
import { bootstrapRecoveryConf } from './bootstrap-recovery.ts';
import { memberSlotName } from '../core/slots.ts';
import type { Upstream } from './upstream.ts';

// ---------------------------------------------------------------------------------------------
// Names

/**
 * Replication slot name of a member (spec 1.10): lower-case; '-' and '.' become '_'; any other
 * character outside [a-z0-9_] becomes 'u' + its code point as 4 decimal digits; max 63 chars.
 */
export function slotName(memberName: string): string {
  return memberSlotName(memberName);
}

/** A valid physical slot name (what PostgreSQL accepts). */
export function isValidSlotName(name: string): boolean {
  return /^[a-z0-9_]{1,63}$/.test(name);
}

export { quoteConfValue, confValueToString, parseBool, parseSizeMb } from './conf-values.ts';

const GUC_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

// ---------------------------------------------------------------------------------------------
// postgresql.conf

/** GUCs whose change needs a postmaster restart (PG 15, `postgres --describe-config`, context postmaster). */
export const POSTMASTER_GUCS: ReadonlySet<string> = new Set(
  (
    'archive_mode autovacuum_freeze_max_age autovacuum_max_workers autovacuum_multixact_freeze_max_age bonjour ' +
    'bonjour_name cluster_name data_directory data_sync_retry dynamic_shared_memory_type event_source ' +
    'external_pid_file hba_file hot_standby huge_page_size huge_pages ident_file jit_provider listen_addresses ' +
    'logging_collector max_connections max_files_per_process max_locks_per_transaction ' +
    'max_logical_replication_workers max_pred_locks_per_transaction max_prepared_transactions ' +
    'max_replication_slots max_wal_senders max_worker_processes min_dynamic_shared_memory old_snapshot_threshold ' +
    'port recovery_target recovery_target_action recovery_target_inclusive recovery_target_lsn recovery_target_name ' +
    'recovery_target_time recovery_target_timeline recovery_target_xid shared_buffers shared_memory_type ' +
    'shared_preload_libraries superuser_reserved_connections track_activity_query_size track_commit_timestamp ' +
    'unix_socket_directories unix_socket_group unix_socket_permissions wal_buffers wal_decode_buffer_size ' +
    'wal_level wal_log_hints'
  ).split(' '),
);

/** GUCs passed on the postgres command line so ALTER SYSTEM cannot override them (spec 4.5, 14.1). */
export const COMMAND_LINE_GUCS: readonly string[] = [
  'listen_addresses',
  'port',
  'cluster_name',
  'wal_level',
  'hot_standby',
  'max_connections',
  'max_wal_senders',
  'max_prepared_transactions',
  'max_locks_per_transaction',
  'track_commit_timestamp',
  'max_replication_slots',
  'max_worker_processes',
  'wal_log_hints',
];

/** Recovery GUCs Vigil always owns (written explicitly so included files cannot set them). */
const RECOVERY_GUCS = [
  'primary_conninfo',
  'primary_slot_name',
  'recovery_target_timeline',
  'recovery_target',
  'recovery_target_lsn',
  'recovery_target_name',
  'recovery_target_time',
  'recovery_target_xid',
];

const OWNED = new Set([...COMMAND_LINE_GUCS, 'wal_keep_size', 'wal_keep_segments', ...RECOVERY_GUCS]);

interface IntRule {
  def: number;
  min: number;
}
const INT_RULES: Record<string, IntRule> = {
  max_connections: { def: 100, min: 25 },
  max_wal_senders: { def: 10, min: 3 },
  max_prepared_transactions: { def: 0, min: 0 },
  max_locks_per_transaction: { def: 64, min: 32 },
  max_replication_slots: { def: 10, min: 4 },
  max_worker_processes: { def: 8, min: 2 },
};

export interface BuildParamsInput {
  settings: Pick<PostgresqlSettings, 'listen' | 'parameters' | 'pgpass' | 'database' | 'useSlots' | 'authentication' | 'recoveryConf'>;
  memberName: string;
  /** cluster_name (the scope), when known. */
  scope?: string;
  role: 'primary' | 'replica';
  upstream?: Upstream | null;
  /** tags.nostream: no primary_conninfo and no slot (the upstream is still recorded as followed). */
  nostream?: boolean;
  /** Dynamic parameters (/config postgresql.parameters). */
  dynamic?: Record<string, unknown> | null;
  /** The dynamic postgresql.use_slots (a replica then names its slot); default settings.useSlots. */
  useSlots?: boolean;
  /** The dynamic postgresql.recovery_conf: used when the local section has none (local replaces it whole, as in Patroni). */
  dynamicRecoveryConf?: Record<string, unknown>;
  /**
   * The effective parameters_<role> of the node's current role (roles.ts roleParameters): merged
   * over the local and dynamic parameters; the Patroni-controlled GUCs in it are ignored.
   */
  roleParameters?: Record<string, unknown>;
  /** postgresql.krbsrvname: written into primary_conninfo. */
  krbsrvname?: string;
  /**
   * A custom bootstrap's recovery (the node is a primary being restored): bootstrap.<method>.recovery_conf
   * written in place of the blank recovery targets, and hot_standby off when the recovery ends in a
   * promotion or the script's own recovery settings are kept, as Patroni does (see bootstrap-recovery.ts).
   */
  bootstrapRecovery?: { recoveryConf?: Record<string, unknown>; keepExisting: boolean };
  /** hot_standby_feedback forced on, over any configured value (logical slot copies need it). */
  hotStandbyFeedback?: boolean;
}

export type { Upstream } from './upstream.ts';

export interface BuiltParams {
  /** Everything written to postgresql.conf, in file order. */
  conf: Array<[string, string]>;
  /** The subset passed on the postgres command line. */
  commandLine: Record<string, string>;
  /** The pgpass entry for the upstream, when a replication password is configured. */
  pgpass: PgpassEntry | undefined;
  /** standby.signal must exist. */
  standby: boolean;
  upstreamName: string | null;
  /** Parameters dropped, with the reason (for a log line). */
  ignored: string[];
}

/**
 * Computes the effective parameters. Patroni-controlled GUCs (spec 4.5) come only from the dynamic
 * configuration and are validated (invalid values fall back to the default); local
 * postgresql.parameters override dynamic ones for everything else.
 */
export function buildParameters(input: BuildParamsInput): BuiltParams {
  const ignored: string[] = [];
  const dynamic = input.dynamic ?? {};
  const listen = parseListen(input.settings.listen);
  const controlled: Record<string, string> = {
    listen_addresses: listen.addresses,
    port: String(listen.port),
  };
  if (input.scope !== undefined && input.scope !== '') controlled.cluster_name = input.scope;

  const wl = typeof dynamic.wal_level === 'string' ? dynamic.wal_level.toLowerCase() : undefined;
  controlled.wal_level = wl === 'logical' ? 'logical' : 'replica';
  if (wl !== undefined && !['replica', 'hot_standby', 'logical'].includes(wl)) ignored.push(`wal_level=${wl}: invalid`);
  controlled.hot_standby = 'on';
  for (const [name, rule] of Object.entries(INT_RULES)) {
    const raw = dynamic[name];
    const v = parseIntValue(raw);
    if (raw !== undefined && (v === undefined || v < rule.min)) ignored.push(`${name}=${String(raw)}: must be an integer >= ${rule.min}`);
    controlled[name] = String(v !== undefined && v >= rule.min ? v : rule.def);
  }
  for (const [name, def] of [['track_commit_timestamp', false], ['wal_log_hints', true]] as const) {
    const raw = dynamic[name];
    const b = parseBool(raw);
    if (raw !== undefined && b === undefined) ignored.push(`${name}=${String(raw)}: not a boolean`);
    controlled[name] = (b ?? def) ? 'on' : 'off';
  }

  let keepMb = parseSizeMb(dynamic.wal_keep_size);
  if (keepMb === undefined && dynamic.wal_keep_segments !== undefined) {
    const segs = parseIntValue(dynamic.wal_keep_segments);
    if (segs !== undefined) keepMb = segs * 16;
  }
  if (keepMb === undefined || keepMb < 16) keepMb = 128;

  const others = new Map<string, string>();
  const take = (src: Record<string, unknown>, origin: string): void => {
    for (const [name, raw] of Object.entries(src)) {
      const lname = name.toLowerCase();
      if (OWNED.has(lname)) {
        if (origin === 'local' && lname in controlled) ignored.push(`${name}: set only through the dynamic configuration`);
        continue;
      }
      if (!GUC_NAME_RE.test(name)) {
        ignored.push(`${name}: invalid parameter name`);
        continue;
      }
      const v = confValueToString(raw);
      if (v === undefined) {
        if (raw !== null && raw !== undefined) ignored.push(`${name}: unsupported value type`);
        continue;
      }
      others.set(lname, v);
    }
  };
  take(dynamic, 'dynamic');
  take(input.settings.parameters, 'local');
  if (input.roleParameters !== undefined) {
    for (const name of Object.keys(input.roleParameters)) {
      if (OWNED.has(name.toLowerCase())) ignored.push(`${name}: set by Vigil, not by a role's parameters`);
    }
    take(input.roleParameters, 'role');
  }
  const recovery = input.bootstrapRecovery !== undefined ? bootstrapRecoveryConf(input.bootstrapRecovery, COMMAND_LINE_GUCS) : undefined;
  if (recovery !== undefined) {
    ignored.push(...recovery.ignored);
    if (recovery.hotStandbyOff) controlled.hot_standby = 'off';
  }
  if (input.hotStandbyFeedback === true) others.set('hot_standby_feedback', 'on');

  const conf: Array<[string, string]> = [];
  for (const name of COMMAND_LINE_GUCS) if (controlled[name] !== undefined) conf.push([name, controlled[name]]);
  conf.push(['wal_keep_size', `${Math.round(keepMb)}MB`]);
  for (const name of [...others.keys()].sort()) conf.push([name, others.get(name)!]);

  // Recovery settings: always written (empty when unused) so included files cannot set them.
  const standby = input.role === 'replica' || recovery?.standby === true;
  const upstream = standby ? (input.upstream ?? null) : null;
  let conninfo = '';
  let slot = '';
  let pgpass: PgpassEntry | undefined;
  if (upstream !== null && input.nostream !== true && upstream.connUrl !== '') {
    const t = parseConnUrl(upstream.connUrl);
    const repl = input.settings.authentication.replication;
    const hasPassword = repl.password !== undefined && repl.password !== '';
    conninfo = renderConninfo([
      ['host', t.host],
      ['port', t.port],
      ['user', repl.username],
      ['passfile', hasPassword ? input.settings.pgpass : undefined],
      ['dbname', t.dbname ?? input.settings.database],
      ['application_name', input.memberName],
      ...libpqPairs(repl, { sslmode: 'prefer', gssencmode: 'prefer', channel_binding: 'prefer' }, input.krbsrvname),
    ]);
    if (input.useSlots ?? input.settings.useSlots) slot = upstream.slot !== undefined ? (upstream.slot ?? '') : slotName(input.memberName);
    if (hasPassword) pgpass = { host: t.host, port: t.port, database: '*', user: repl.username, password: repl.password! };
  }
  conf.push(['primary_conninfo', conninfo]);
  conf.push(['primary_slot_name', slot]);
  conf.push(['recovery_target_timeline', 'latest']);
  for (const n of ['', '_lsn', '_name', '_time', '_xid']) conf.push([`recovery_target${n}`, '']);
  // A custom bootstrap's recovery_conf: its settings (recovery targets included) replace these.
  for (const [name, v] of recovery?.params ?? []) {
    const at = conf.findIndex(([k]) => k === name);
    if (at >= 0) conf.splice(at, 1);
    conf.push([name, v]);
  }
  // postgresql.recovery_conf: a replica's own recovery settings (override postgresql.parameters).
  for (const [name, raw] of Object.entries(input.role === 'replica' ? (input.settings.recoveryConf ?? input.dynamicRecoveryConf ?? {}) : {})) {
    const lname = name.toLowerCase();
    const v = confValueToString(raw);
    if (v === undefined || !GUC_NAME_RE.test(name) || OWNED.has(lname) || /^(recovery_target.*|primary_conninfo|primary_slot_name|standby_mode)$/.test(lname)) {
      ignored.push(`recovery_conf.${name}: ${v === undefined ? 'unsupported value type' : 'not settable'}`);
    } else {
      const at = conf.findIndex(([k]) => k === lname);
      if (at >= 0) conf.splice(at, 1);
      conf.push([lname, v]);
    }
  }
  for (const [name, v] of Object.entries(upstream?.recovery ?? {})) {
    const at = conf.findIndex(([k]) => k === name);
    if (at >= 0) conf.splice(at, 1);
    conf.push([name, v]);
  }

  const commandLine: Record<string, string> = {};
  for (const name of COMMAND_LINE_GUCS) if (controlled[name] !== undefined) commandLine[name] = controlled[name];
  return { conf, commandLine, pgpass, standby, upstreamName: upstream?.name ?? null, ignored };
}

export const CONF_HEADER = '# Do not edit this file manually!\n# It will be overwritten by Vigil!\n';
const UPSTREAM_MARK = '# vigil-upstream: ';
/**
 * Marks the synchronous_standby_names override (setSyncStandbyNames). The block is always the last
 * two lines of the file: this marker (value as JSON) and the setting itself. PostgreSQL uses the
 * last occurrence of a parameter, so the override wins over the user's own value written earlier
 * in the file, which applies again once the block is removed.
 */
const SSN_MARK = '# vigil-synchronous-standby-names (managed, overrides the value above): ';

function ssnBlock(value: string): string[] {
  return [SSN_MARK + JSON.stringify(value), `synchronous_standby_names = ${quoteConfValue(value)}`];
}

/** Renders Vigil's postgresql.conf. syncOverride: the managed synchronous_standby_names, if any. */
export function renderPostgresqlConf(opts: {
  conf: Array<[string, string]>;
  includeBase: boolean;
  /** postgresql.custom_conf: included in place of postgresql.base.conf. */
  customConf?: string;
  /** The base file's name, relative to the generated file (default postgresql.base.conf). */
  baseName?: string;
  upstreamName: string | null;
  syncOverride?: string | null;
}): string {
  const lines = [CONF_HEADER.trimEnd()];
  if (opts.customConf !== undefined) lines.push(`include ${quoteConfValue(opts.customConf)}`);
  else if (opts.includeBase) lines.push(`include ${quoteConfValue(opts.baseName ?? 'postgresql.base.conf')}`);
  lines.push(UPSTREAM_MARK + JSON.stringify(opts.upstreamName));
  lines.push('');
  for (const [k, v] of opts.conf) lines.push(`${k} = ${quoteConfValue(v)}`);
  if (typeof opts.syncOverride === 'string') lines.push(...ssnBlock(opts.syncOverride));
  return lines.join('\n') + '\n';
}

/**
 * Replaces (or, with null, removes) the synchronous_standby_names override block of a generated
 * postgresql.conf, leaving every other line as it is. The result equals what renderPostgresqlConf
 * gives for the same inputs with the new syncOverride.
 */
export function withSyncOverride(text: string, value: string | null): string {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.startsWith(SSN_MARK)) {
      if (/^\s*synchronous_standby_names\s*=/i.test(lines[i + 1] ?? '')) i++;
      continue;
    }
    out.push(lines[i]!);
  }
  if (value !== null) out.push(...ssnBlock(value));
  return out.join('\n') + '\n';
}

/** Whether a postgresql.conf was generated by Vigil (starts with our header). */
export function isGeneratedConf(text: string): boolean {
  return text.startsWith(CONF_HEADER);
}

/**
 * Parses `name = value` lines of a postgresql.conf (quoted values unescaped, comments dropped,
 * include directives skipped) and Vigil's upstream marker.
 */
export function parseConf(text: string): {
  params: Record<string, string>;
  upstreamName: string | null | undefined;
  /** The managed synchronous_standby_names (override block), undefined when there is none. */
  syncOverride: string | undefined;
} {
  const params: Record<string, string> = {};
  let upstreamName: string | null | undefined;
  let syncOverride: string | undefined;
  for (const rawLine of text.split('\n')) {
    if (rawLine.startsWith(SSN_MARK)) {
      try {
        const v: unknown = JSON.parse(rawLine.slice(SSN_MARK.length));
        if (typeof v === 'string') syncOverride = v;
      } catch {
        // tolerate a damaged marker: the setting line itself still applies
      }
      continue;
    }
    if (rawLine.startsWith(UPSTREAM_MARK)) {
      try {
        const v: unknown = JSON.parse(rawLine.slice(UPSTREAM_MARK.length));
        if (v === null || typeof v === 'string') upstreamName = v;
      } catch {
        // tolerate a damaged marker
      }
      continue;
    }
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*(.*)$/.exec(rawLine);
    if (m === null) continue;
    const name = m[1]!.toLowerCase();
    if (name === 'include' || name === 'include_if_exists' || name === 'include_dir') continue;
    const rest = m[2]!;
    let value: string;
    if (rest.startsWith("'")) {
      value = '';
      let i = 1;
      for (; i < rest.length; i++) {
        const c = rest[i]!;
        if (c === '\\' && i + 1 < rest.length) {
          const n = rest[++i]!;
          value += n === 'n' ? '\n' : n === 'r' ? '\r' : n === 't' ? '\t' : n === 'b' ? '\b' : n === 'f' ? '\f' : n;
        } else if (c === "'") {
          if (rest[i + 1] === "'") {
            value += "'";
            i++;
          } else break;
        } else value += c;
      }
    } else {
      value = rest.replace(/#.*$/, '').trim();
    }
    params[name] = value;
  }
  return { params, upstreamName, syncOverride };
}

/** Names of parameters that differ between two parameter maps, split by what applying them needs. */
export function diffParams(
  before: Record<string, string>,
  after: Record<string, string>,
): { restart: string[]; reload: string[] } {
  const restart: string[] = [];
  const reload: string[] = [];
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const n of [...names].sort()) {
    if (before[n] === after[n]) continue;
    (POSTMASTER_GUCS.has(n) ? restart : reload).push(n);
  }
  return { restart, reload };
}
