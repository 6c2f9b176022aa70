// Pure renderers and parsers for connecting to PostgreSQL and authenticating: conn_url and
// listen parsing, libpq conninfo strings (primary_conninfo, pg_basebackup/pg_rewind DSNs), the
// pgpass file, pg_hba.conf, SQL quoting. No IO here.

import type { Credentials } from '../config/types.ts';

// ---------------------------------------------------------------------------------------------
// Connection strings

export interface ConnTarget {
  host: string;
  port: number;
  dbname?: string;
  user?: string;
}

/** Parses a member conn_url (postgres://host:port/dbname). Throws a clear error on bad input. */
export function parseConnUrl(connUrl: string): ConnTarget {
  let u: URL;
  try {
    u = new URL(connUrl);
  } catch {
    throw new Error(`invalid conn_url ${JSON.stringify(connUrl)}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new Error(`invalid conn_url ${JSON.stringify(connUrl)}: scheme must be postgres://`);
  }
  let host = decodeURIComponent(u.hostname);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') throw new Error(`invalid conn_url ${JSON.stringify(connUrl)}: no host`);
  const port = u.port === '' ? 5432 : Number(u.port);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const out: ConnTarget = { host, port };
  if (db !== '') out.dbname = db;
  if (u.username !== '') out.user = decodeURIComponent(u.username);
  return out;
}

/** Quotes one conninfo value (libpq keyword=value syntax). */
export function quoteConninfoValue(value: string): string {
  if (value !== '' && /^[^\s'\\]+$/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Renders libpq keyword=value pairs in the given order; undefined values are skipped. */
export function renderConninfo(pairs: Array<[string, string | number | undefined]>): string {
  return pairs
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${quoteConninfoValue(String(v))}`)
    .join(' ');
}

/**
 * The libpq settings of `creds` (sslmode, sslcert, ..., channel_binding) as conninfo pairs, in the
 * order Patroni writes them, with postgresql.krbsrvname (the Kerberos service name) when given.
 * `defaults` fills keywords the user did not set (primary_conninfo: sslmode, gssencmode and
 * channel_binding default to prefer, as Patroni writes them).
 */
export function libpqPairs(creds: Credentials, defaults: Record<string, string> = {}, krbsrvname?: string): Array<[string, string | undefined]> {
  const order = ['sslmode', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword', 'sslrootcert', 'sslcrl', 'sslcrldir', 'krbsrvname', 'gssencmode', 'channel_binding'];
  return order.map((k) => [k, k === 'krbsrvname' ? krbsrvname : (creds.libpq?.[k] ?? defaults[k])]);
}

/**
 * The Unix socket directory the agent dials with use_unix_socket(_repl): the first absolute path of
 * unix_socket_directories, else undefined (TCP, as Patroni falls back). Unset, it is the
 * compiled-in default of Debian's PostgreSQL, /var/run/postgresql.
 */
export function localSocketDir(unixSocketDirectories: string | number | boolean | undefined): string | undefined {
  if (unixSocketDirectories === undefined) return '/var/run/postgresql';
  for (const d of String(unixSocketDirectories).split(',')) {
    const t = d.trim();
    if (t.startsWith('/')) return t;
  }
  return undefined;
}

/** Splits settings.listen ("addr[,addr]:port") into listen_addresses, port and a host to dial locally. */
export function parseListen(listen: string): { addresses: string; port: number; localHost: string } {
  const idx = listen.lastIndexOf(':');
  if (idx <= 0) throw new Error(`invalid postgresql.listen ${JSON.stringify(listen)}: expected host:port`);
  const addresses = listen.slice(0, idx).trim();
  const port = Number(listen.slice(idx + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`invalid postgresql.listen ${JSON.stringify(listen)}: bad port`);
  }
  const first = (addresses.split(',')[0] ?? '').trim().replace(/^\[|\]$/g, '');
  let localHost = first;
  if (first === '' || first === '*' || first === '0.0.0.0') localHost = '127.0.0.1';
  else if (first === '::') localHost = '::1';
  return { addresses: addresses.replace(/\[|\]/g, ''), port, localHost };
}

// ---------------------------------------------------------------------------------------------
// pgpass

export interface PgpassEntry {
  host: string;
  port: number | '*';
  database: string;
  user: string;
  password: string;
}

function pgpassField(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

/** Renders pgpass lines ("host:port:db:user:password", ':' and '\' escaped). */
export function renderPgpass(entries: PgpassEntry[]): string {
  return entries
    .map((e) => [e.host, String(e.port), e.database, e.user, e.password].map((f, i) => (i < 3 && f === '*' ? f : pgpassField(f))).join(':'))
    .map((l) => l + '\n')
    .join('');
}

// ---------------------------------------------------------------------------------------------
// pg_hba.conf

function hbaName(name: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * pg_hba.conf: the configured lines first (first match wins), then defaults that let the agent
 * (superuser), replicas (replication user) and pg_rewind (rewind user) connect over loopback.
 * Users with a password authenticate with scram-sha-256; trust only when no password is set.
 */
export function renderPgHba(opts: {
  lines: string[];
  superuser: Credentials;
  replication: Credentials;
  rewind?: Credentials;
}): string {
  const m = (c: Credentials): string => (c.password !== undefined && c.password !== '' ? 'scram-sha-256' : 'trust');
  const anyPassword = [opts.superuser, opts.replication, opts.rewind].some(
    (c) => c !== undefined && c.password !== undefined && c.password !== '',
  );
  const other = anyPassword ? 'scram-sha-256' : 'trust';
  const out = ['# pg_hba.conf written by Vigil.', '# TYPE  DATABASE  USER  ADDRESS  METHOD'];
  for (const l of opts.lines) out.push(l.replace(/\n/g, ' '));
  out.push('# defaults');
  out.push(`local all all ${other}`);
  const row = (db: string, c: Credentials): void => {
    for (const addr of ['127.0.0.1/32', '::1/128']) out.push(`host ${db} ${hbaName(c.username)} ${addr} ${m(c)}`);
  };
  row('all', opts.superuser);
  row('replication', opts.replication);
  row('all', opts.replication);
  if (opts.rewind !== undefined) row('all', opts.rewind);
  for (const addr of ['127.0.0.1/32', '::1/128']) out.push(`host all all ${addr} ${other}`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// SQL quoting (for the few statements that cannot take bind parameters, e.g. CREATE ROLE)

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes an SQL string literal (standard_conforming_strings = on, the default since 9.1). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('string literal contains a NUL byte');
  return `'${value.replace(/'/g, "''")}'`;
}
