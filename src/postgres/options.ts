// Command-line options of initdb, pg_basebackup and pg_rewind from the configuration
// (bootstrap.initdb, postgresql.basebackup, postgresql.rewind): which ones Vigil refuses and why, and how the allowed ones render.
// The single source for both the configuration check (src/config) and the controller, which
// rejects a refused option with a PgOptionError naming it instead of dropping it.
//
// Option names are given without leading dashes, as in Patroni's configuration ("data-checksums",
// {encoding: UTF8}); a one-letter name is the program's short option (D = pgdata).

import { PgOptionError } from './errors.ts';

export type OptionTool = 'initdb' | 'pg_basebackup' | 'pg_rewind';

/** initdb options Vigil sets itself or that would break the bootstrap, with the reason. */
export const INITDB_REFUSED: ReadonlyMap<string, string> = new Map([
  ['pgdata', 'Vigil passes the data directory (postgresql.data_dir)'],
  ['nosync', 'a data directory not synced to disk may be lost in a crash right after bootstrap'],
  ['pwfile', 'Vigil writes the superuser password file itself (postgresql.authentication.superuser.password)'],
  ['sync-only', 'it only syncs an existing data directory and creates none'],
  ['version', 'it prints the version and creates no data directory'],
  ['username', 'Vigil sets it to postgresql.authentication.superuser.username'],
]);

/** pg_basebackup options Vigil sets itself or that would not make a runnable replica, with the reason. */
export const BASEBACKUP_REFUSED: ReadonlyMap<string, string> = new Map([
  ['pgdata', 'Vigil passes the data directory (postgresql.data_dir)'],
  ['format', 'a replica needs the plain format'],
  ['wal-method', 'Vigil streams WAL (-X stream) so that the copy is consistent'],
  ['xlog-method', 'Vigil streams WAL (-X stream) so that the copy is consistent'],
  ['gzip', 'client-side compression needs the tar format; a replica needs the plain format'],
  ['version', 'it prints the version and copies nothing'],
  ['dbname', "Vigil connects to the leader's conn_url"],
  ['host', "Vigil connects to the leader's conn_url"],
  ['port', "Vigil connects to the leader's conn_url"],
  ['username', 'Vigil connects as postgresql.authentication.replication.username'],
  ['password', 'Vigil passes postgresql.authentication.replication.password in a password file'],
]);

/**
 * pg_rewind options Vigil sets itself or that would defeat the rewind, with the reason (the same
 * list as Patroni's).
 */
export const REWIND_REFUSED: ReadonlyMap<string, string> = new Map([
  ['target-pgdata', 'Vigil passes the data directory (postgresql.data_dir)'],
  ['source-pgdata', "Vigil rewinds from the leader's conn_url"],
  ['source-server', "Vigil rewinds from the leader's conn_url"],
  ['write-recovery-conf', 'Vigil writes the replica configuration itself after the rewind'],
  ['dry-run', 'the rewind would change nothing and the node would stay diverged'],
  ['restore-target-wal', 'Vigil adds it itself when a restore_command is configured'],
  ['config-file', 'Vigil adds it itself when postgresql.config_dir is outside the data directory'],
  ['no-ensure-shutdown', 'Vigil stops PostgreSQL cleanly before the rewind'],
  ['version', 'it prints the version and rewinds nothing'],
  ['help', 'it prints the help and rewinds nothing'],
]);

/** compress: only server-side compression (PG 15+ "server-<method>[:detail]") or none. */
const BASEBACKUP_COMPRESS_REASON = 'only server-side compression ("server-gzip", "server-lz4:5", ...) or "none" fits the plain format a replica needs';

/** Short options -> long names (only those whose long form is refused or managed). */
const SHORT: Record<OptionTool, Record<string, string>> = {
  initdb: { D: 'pgdata', N: 'nosync', S: 'sync-only', V: 'version', U: 'username' },
  pg_basebackup: {
    D: 'pgdata', F: 'format', X: 'wal-method', z: 'gzip', Z: 'compress', V: 'version', d: 'dbname', h: 'host', p: 'port', U: 'username',
    W: 'password', c: 'checkpoint',
  },
  pg_rewind: { D: 'target-pgdata', R: 'write-recovery-conf', n: 'dry-run', c: 'restore-target-wal', V: 'version', '?': 'help' },
};

/** The long name of an option given without dashes (or with them), short letters expanded. */
export function canonicalOption(tool: OptionTool, name: string): string {
  const bare = name.replace(/^-+/, '');
  return bare.length === 1 ? (SHORT[tool][bare] ?? bare) : bare.toLowerCase();
}

/** Why `name` (with `value`, if any) is refused for `tool`; undefined when it is allowed. */
export function optionRefusal(tool: OptionTool, name: string, value?: string | number): string | undefined {
  const opt = canonicalOption(tool, name);
  if (tool === 'initdb') return INITDB_REFUSED.get(opt);
  if (tool === 'pg_rewind') return REWIND_REFUSED.get(opt);
  const reason = BASEBACKUP_REFUSED.get(opt);
  if (reason !== undefined) return reason;
  if (opt === 'compress') {
    const v = value === undefined ? '' : String(value);
    return /^server-/.test(v) || v === 'none' ? undefined : BASEBACKUP_COMPRESS_REASON;
  }
  return undefined;
}

/** One allowed option as an argument: --name, or --name=value. */
export function renderOption(name: string, value?: string | number): string {
  const opt = name.replace(/^-+/, '');
  return value === undefined ? `--${opt}` : `--${opt}=${value}`;
}

/** Splits a rendered argument (--name=value, --name, -Xvalue) into name and value. */
export function parseRenderedOption(arg: string): { name: string; value?: string } {
  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    return eq < 0 ? { name: arg.slice(2) } : { name: arg.slice(2, eq), value: arg.slice(eq + 1) };
  }
  if (arg.startsWith('-') && arg.length >= 2) return arg.length > 2 ? { name: arg[1]!, value: arg.slice(2) } : { name: arg[1]! };
  return { name: arg };
}

/**
 * Checks already rendered arguments (the configuration's postgresql.basebackup, bootstrap.initdb)
 * and returns them unchanged; throws PgOptionError for the first refused one. Arguments must be
 * self-contained (`--name=value`, not `--name value`).
 */
export function checkRenderedOptions(tool: OptionTool, args: readonly string[]): string[] {
  for (const arg of args) {
    const { name, value } = parseRenderedOption(arg);
    const reason = optionRefusal(tool, name, value);
    if (reason !== undefined) throw new PgOptionError(tool, canonicalOption(tool, name), reason);
  }
  return [...args];
}

/**
 * The arguments Vigil appends to its own for pg_basebackup: the configured ones (checked) plus
 * --checkpoint=fast unless a checkpoint mode is configured.
 */
export function basebackupExtraArgs(configured: readonly string[]): string[] {
  const out = checkRenderedOptions('pg_basebackup', configured);
  if (!out.some((a) => canonicalOption('pg_basebackup', parseRenderedOption(a).name) === 'checkpoint')) out.push('--checkpoint=fast');
  return out;
}
