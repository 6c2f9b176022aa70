// `vigil query [CLUSTER]` (spec §3.2): run SQL on the leader (default), a member with a role, or a
// named member, found through the DCS, over a direct connection to its conn_url host and port
// (connect_timeout 5 s, application name 'Patroni ctl'). After the verb, -c and -d are the SQL and
// the database, so the configuration file and DCS URL are --config-file and --dcs-url there, or
// -c and -d before the verb (global-options.ts), as with patronictl.
//
// Failure contract: a connection or SQL error prints `<ts>\tERROR, SQLSTATE: <code or message>`
// as patronictl does, and the command exits 1.

import { readFile } from 'node:fs/promises';
import pg from 'pg';
import '../../postgres/pg-guard.ts';
import type { ClusterView } from '../../core/model.ts';
import { CliError, UsageError } from '../args.ts';
import { memberHostPort } from '../table.ts';
import { CtlContext, membersWithRole, optBool, optString, parseRole, runCommand, timestamp, type RoleChoice } from './common.ts';
import { prompt, type Io } from './io.ts';
import { parseFormat, printOutput } from './info.ts';

const USAGE = `usage: vigil query [--config-file CONFIG] [--dcs-url URL] (-c SQL | -f FILE) [-U USER] [--password] [-d DBNAME] [-r ROLE | -m MEMBER] [--format tsv|pretty|json|yaml] [--delimiter D] [-W] [-w SEC] [CLUSTER]

Run SQL on the leader (default), on a member with ROLE, or on MEMBER. After the verb, -c is the SQL
and -d the database: give the configuration file and the DCS URL as --config-file and --dcs-url
there, or as -c and -d before the verb (vigil -c FILE query -c SQL).`;

export interface QueryResult {
  columns: string[] | undefined;
  rows: unknown[][];
  /** true when the rows are an error line rather than a result. */
  failed: boolean;
}

/** A text value from PostgreSQL shown as Python's str() would show psycopg's value. */
export function cellValue(v: unknown, dataTypeId?: number): unknown {
  if (v === null || v === undefined) return null;
  if (dataTypeId === 16 && typeof v === 'string') return v === 't' ? 'True' : v === 'f' ? 'False' : v;
  return v;
}

/** The connection parameters for a member (conn_url host/port; user, password, dbname when given). */
export function connectionConfig(
  data: Record<string, unknown>,
  opts: { user?: string; password?: string; dbname?: string },
): pg.ClientConfig | undefined {
  const hp = memberHostPort(data);
  if (hp === undefined) return undefined;
  const cfg: pg.ClientConfig = {
    host: hp.host,
    port: hp.port,
    connectionTimeoutMillis: 5000,
    fallback_application_name: 'Patroni ctl',
    // Every value as PostgreSQL's text (booleans turned into Python spelling by cellValue).
    types: { getTypeParser: () => (v: string) => v },
  };
  if (opts.user !== undefined) cfg.user = opts.user;
  if (opts.password !== undefined) cfg.password = opts.password;
  if (opts.dbname !== undefined) cfg.database = opts.dbname;
  return cfg;
}

function errorRow(err: unknown): unknown[][] {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : String(e?.message ?? err);
  return [[timestamp(0), `ERROR, SQLSTATE: ${code.replace(/\n/g, ' ')}`]];
}

/** Connect to the chosen member and run `sql`; errors become an error row. */
export async function queryMember(
  view: ClusterView,
  role: RoleChoice,
  member: string | undefined,
  sql: string,
  conn: { user?: string; password?: string; dbname?: string },
): Promise<QueryResult> {
  const m = membersWithRole(view, role).find((x) => member === undefined || x.name === member);
  const cfg = m === undefined ? undefined : connectionConfig(m.data, conn);
  const unavailable = (): QueryResult => ({
    columns: undefined,
    rows: [[timestamp(0), member !== undefined ? `No connection to member ${member} is available` : `No connection to role=${role} is available`]],
    failed: true,
  });
  if (cfg === undefined) return unavailable();
  const client = new pg.Client(cfg);
  client.on('error', () => undefined); // a dropped connection surfaces through the query
  try {
    await client.connect();
    if (role !== 'any' && role !== 'leader') {
      const r = await client.query<{ pg_is_in_recovery: string }>('SELECT pg_catalog.pg_is_in_recovery()');
      const inRecovery = r.rows[0]?.pg_is_in_recovery === 't';
      const ok = inRecovery ? ['replica', 'standby', 'standby-leader'].includes(role) : ['primary', 'master'].includes(role);
      if (!ok) return unavailable();
    }
    const res = (await client.query({ text: sql, rowMode: 'array' })) as unknown as pg.QueryArrayResult | pg.QueryArrayResult[];
    const last = Array.isArray(res) ? res[res.length - 1] : res;
    if (last === undefined) return { columns: undefined, rows: [], failed: false };
    const fields = last.fields ?? [];
    return {
      columns: fields.length > 0 ? fields.map((f) => f.name) : undefined,
      rows: (last.rows ?? []).map((r) => r.map((v, i) => cellValue(v, fields[i]?.dataTypeID))),
      failed: false,
    };
  } catch (err) {
    return { columns: undefined, rows: errorRow(err), failed: true };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function runQuery(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    USAGE,
    {
      'config-file': { type: 'string' },
      'dcs-url': { type: 'string' },
      command: { type: 'string', short: 'c' },
      file: { type: 'string', short: 'f' },
      username: { type: 'string', short: 'U' },
      password: { type: 'boolean' },
      dbname: { type: 'string', short: 'd' },
      role: { type: 'string', short: 'r' },
      member: { type: 'string', short: 'm' },
      format: { type: 'string' },
      delimiter: { type: 'string' },
      W: { type: 'boolean', short: 'W' },
      watch: { type: 'string', short: 'w' },
    },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`query takes at most one CLUSTER, got ${p.positionals.length}`);
      const member = optString(p, 'member');
      let role = parseRole(optString(p, 'role'), undefined);
      if (member !== undefined && role !== undefined) throw new UsageError('--role and --member are mutually exclusive options');
      if (member !== undefined) role = 'any';
      role ??= 'leader';
      const file = optString(p, 'file');
      let sql = optString(p, 'command');
      if (file !== undefined && sql !== undefined) throw new UsageError('--file and --command are mutually exclusive options');
      if (file === undefined && sql === undefined) throw new UsageError('You need to specify either --command or --file');
      const fmt = parseFormat(optString(p, 'format'), 'tsv');
      const delimiter = optString(p, 'delimiter') ?? '\t';
      let watch: number | undefined;
      const w = optString(p, 'watch');
      if (w !== undefined) {
        watch = Number(w);
        if (!Number.isFinite(watch) || watch <= 0) throw new UsageError(`-w/--watch needs a positive number of seconds, got '${w}'`);
      } else if (optBool(p, 'W')) watch = 2;
      if (file !== undefined) {
        try {
          sql = await readFile(file, 'utf8');
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      const ctx: CtlContext = await context();
      const conn: { user?: string; password?: string; dbname?: string } = {};
      const user = optString(p, 'username');
      const dbname = optString(p, 'dbname');
      if (user !== undefined) conn.user = user;
      if (dbname !== undefined) conn.dbname = dbname;
      if (optBool(p, 'password')) conn.password = await prompt(ctx.io, 'Password', { forceHint: false, hidden: true });
      const cluster = ctx.clusterName(p.positionals[0]);
      let code = 0;
      for (;;) {
        const view = await ctx.readCluster(cluster);
        const r = await queryMember(view, role, member, sql!, conn);
        if (r.failed) code = 1;
        const text = printOutput(r.columns ?? [], r.rows, fmt, [], delimiter);
        // tsv without a header (error lines) prints just the rows.
        ctx.io.out(`${r.columns === undefined && fmt === 'tsv' ? text.split('\n').slice(1).join('\n') : text}\n`);
        if (watch === undefined) return code;
        await new Promise((resolve) => setTimeout(resolve, watch * 1000));
      }
    },
    io,
  );
}
