// The postgresql section.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseBool } from '../core/values.ts';
import { show } from './dynamic.ts';
import { bool, checkKeys, connectAddress, describe, splitHostPort, int, listenValue, isMap, refused, section, str, stringList, sub, type Issues, type Obj } from './fields.ts';
import { checkMethodSections, parseReplicaMethods } from './replica-methods.ts';
import { parseHooks } from './hooks.ts';
import { renderOptions } from './options.ts';
import { CONFIG_ROLES, type ConfigRole, type Credentials, type PostgresqlSettings, type RoleOverrides } from './types.ts';

const PG_LIB_DIR = '/usr/lib/postgresql';

/** GUCs Patroni sets itself (listen/port/cluster_name) or takes only from the dynamic configuration. */
const GUC_FROM_LISTEN = new Set(['listen_addresses', 'port', 'cluster_name']);
const GUC_DYNAMIC_ONLY = new Set([
  'wal_level', 'hot_standby', 'max_connections', 'max_wal_senders', 'wal_keep_segments', 'wal_keep_size',
  'max_prepared_transactions', 'max_locks_per_transaction', 'track_commit_timestamp', 'max_replication_slots',
  'max_worker_processes', 'wal_log_hints',
]);
/** The libpq settings a user of postgresql.authentication may carry (Patroni passes them to libpq). */
export const LIBPQ_AUTH_KEYS = [
  'sslmode', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword', 'sslrootcert', 'sslcrl', 'sslcrldir', 'gssencmode', 'channel_binding',
];
const LIBPQ_ENUMS: Record<string, readonly string[]> = {
  sslmode: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'],
  gssencmode: ['disable', 'prefer', 'require'],
  channel_binding: ['disable', 'prefer', 'require'],
};

function parseCredentials(issues: Issues, auth: Obj | undefined, key: string, path: string, required: boolean): Credentials | undefined {
  const p = sub(path, key);
  if (auth === undefined || auth[key] === undefined || auth[key] === null) {
    if (required) issues.error(sub(p, 'username'), 'required');
    return undefined;
  }
  const sec = section(issues, auth, key, path);
  if (sec === undefined) return undefined;
  checkKeys(issues, sec, p, ['username', 'password', ...LIBPQ_AUTH_KEYS], {
    sslnegotiation: refused('PostgreSQL 15\'s libpq does not know sslnegotiation'),
  });
  const username = str(issues, sec, 'username', p, true);
  const password = str(issues, sec, 'password', p);
  const libpq: Record<string, string> = {};
  for (const k of LIBPQ_AUTH_KEYS) {
    const v = str(issues, sec, k, p);
    if (v === undefined) continue;
    const allowed = LIBPQ_ENUMS[k];
    if (allowed !== undefined && !allowed.includes(v)) {
      issues.error(sub(p, k), `expected one of ${allowed.join(', ')}, got ${show(v)}`);
      continue;
    }
    libpq[k] = v;
  }
  // The agent connects as each of these users too (superuser: locally; rewind: to the rewind source;
  // replication: IDENTIFY_SYSTEM locally and on the leader) with node-postgres, which has no GSSAPI
  // encryption and cannot insist on channel binding.
  if (libpq.gssencmode === 'require') {
    issues.error(sub(p, 'gssencmode'), "require cannot be honoured: the agent's own connections (node-postgres) have no GSSAPI encryption; use prefer or disable, or keep this node on Patroni");
  }
  if (libpq.channel_binding === 'require') {
    issues.error(sub(p, 'channel_binding'), "require cannot be honoured: the agent's own connections (node-postgres) cannot refuse to authenticate without channel binding; use prefer (SCRAM-SHA-256-PLUS is then used whenever the server offers it over TLS)");
  }
  if (username === undefined) return undefined;
  const out: Credentials = password === undefined ? { username } : { username, password };
  if (Object.keys(libpq).length > 0) out.libpq = libpq;
  return out;
}

/** The newest /usr/lib/postgresql/<version>/bin, or '' (use PATH). */
function detectBinDir(): string {
  let versions: string[];
  try {
    versions = readdirSync(PG_LIB_DIR).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    return '';
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(PG_LIB_DIR, v, 'bin');
    if (existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return '';
}

function checkBinDir(issues: Issues, binDir: string, path: string): void {
  let isDir = false;
  try {
    isDir = statSync(binDir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) {
    issues.warn(path, `${binDir} is not a directory on this machine`);
    return;
  }
  const missing = ['postgres', 'pg_ctl', 'initdb', 'pg_controldata', 'pg_basebackup'].filter((b) => !existsSync(join(binDir, b)));
  if (missing.length > 0) issues.warn(path, `${binDir} has no ${missing.join(', ')}`);
}

/** Recovery settings Vigil sets itself; dropped from postgresql.recovery_conf with a warning, as Patroni drops them. */
const RECOVERY_MANAGED = /^(recovery_target.*|primary_conninfo|primary_slot_name|standby_mode)$/i;

function parseRecoveryConf(issues: Issues, pg: Obj, path: string): Record<string, string | number | boolean> | undefined {
  if (pg.recovery_conf === undefined || pg.recovery_conf === null) return undefined;
  const rc = section(issues, pg, 'recovery_conf', path);
  if (rc === undefined) return undefined;
  const rp = sub(path, 'recovery_conf');
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(rc)) {
    const p = sub(rp, name);
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      issues.error(p, `expected a string, number or boolean, got ${describe(value, name)}`);
    } else if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) {
      issues.error(p, 'invalid parameter name');
    } else if (RECOVERY_MANAGED.test(name)) {
      issues.warn(p, 'ignored: Vigil sets it for a replica itself');
    } else out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * postgresql.parameters, or (key parameters_<role>) a role's parameters: the same values, with the
 * Patroni-controlled GUCs warned and ignored in both.
 */
function parseParameters(issues: Issues, pg: Obj, path: string, key = 'parameters'): Record<string, string | number | boolean> {
  const params = section(issues, pg, key, path);
  const out: Record<string, string | number | boolean> = {};
  if (params === undefined) return out;
  const pp = sub(path, key);
  for (const [name, value] of Object.entries(params)) {
    const p = sub(pp, name);
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      issues.error(p, `expected a string, number or boolean, got ${describe(value, name)}`);
      continue;
    }
    if (GUC_FROM_LISTEN.has(name)) {
      issues.warn(p, `ignored: set from ${name === 'cluster_name' ? 'scope' : 'postgresql.listen'}`);
      continue;
    }
    if (GUC_DYNAMIC_ONLY.has(name)) {
      issues.warn(p, key === 'parameters'
        ? 'ignored in the local configuration: this parameter is only taken from the dynamic configuration (bootstrap.dcs.postgresql.parameters)'
        : `ignored: a role's parameters cannot set it; it is only taken from the dynamic configuration's parameters (bootstrap.dcs.postgresql.parameters)`);
      continue;
    }
    out[name] = value;
  }
  return out;
}

/** postgresql.parameters_<role>, pg_hba_<role>, pg_ident_<role> (src/postgres/roles.ts applies them). */
function parseRoleOverrides(issues: Issues, pg: Obj, path: string): Partial<Record<ConfigRole, RoleOverrides>> | undefined {
  const out: Partial<Record<ConfigRole, RoleOverrides>> = {};
  for (const role of CONFIG_ROLES) {
    const r: RoleOverrides = {};
    if (pg[`parameters_${role}`] !== undefined && pg[`parameters_${role}`] !== null) r.parameters = parseParameters(issues, pg, path, `parameters_${role}`);
    const hba = stringList(issues, pg, `pg_hba_${role}`, path);
    const ident = stringList(issues, pg, `pg_ident_${role}`, path);
    if (hba !== undefined && hba.length > 0) r.pgHba = hba;
    if (ident !== undefined && ident.length > 0) r.pgIdent = ident;
    if (Object.keys(r).length > 0) out[role] = r;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * bin_name keys and the standard binary each renames: Patroni's keys (ctl, pgcontroldata, ...)
 * and, as aliases, the binaries' own names.
 */
const BIN_NAME_KEYS: Record<string, string> = {
  postgres: 'postgres', initdb: 'initdb', pgcontroldata: 'pg_controldata', pgbasebackup: 'pg_basebackup', rewind: 'pg_rewind',
  pg_controldata: 'pg_controldata', pg_basebackup: 'pg_basebackup', pg_rewind: 'pg_rewind',
  // Vigil runs neither pg_ctl nor pg_isready: accepted, nothing to rename.
  ctl: 'pg_ctl', isready: 'pg_isready', pg_ctl: 'pg_ctl', pg_isready: 'pg_isready',
};

/** postgresql.bin_name: the standard binary name -> the name (in bin_dir) or path to run instead. */
function parseBinName(issues: Issues, pg: Obj, path: string): Record<string, string> | undefined {
  if (pg.bin_name === undefined || pg.bin_name === null) return undefined;
  const sec = section(issues, pg, 'bin_name', path);
  if (sec === undefined) return undefined;
  const p = sub(path, 'bin_name');
  checkKeys(issues, sec, p, Object.keys(BIN_NAME_KEYS));
  const out: Record<string, string> = {};
  for (const key of Object.keys(BIN_NAME_KEYS)) {
    const v = str(issues, sec, key, p);
    if (v !== undefined && v.trim() !== '') out[BIN_NAME_KEYS[key]!] = v.trim();
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** postgresql.proxy_address: host[:port] (port 5432 when absent), published as the member's proxy_url. */
function parseProxyAddress(issues: Issues, pg: Obj, path: string): string | undefined {
  const text = str(issues, pg, 'proxy_address', path);
  if (text === undefined || text.trim() === '') return undefined;
  const t = text.trim();
  const withPort = t.includes(':') ? t : `${t}:5432`;
  const hp = splitHostPort(withPort);
  if (typeof hp === 'string' || hp.host === '') {
    issues.error(sub(path, 'proxy_address'), typeof hp === 'string' ? hp : `no host in ${show(text)}`);
    return undefined;
  }
  return withPort;
}

export function parsePostgresql(issues: Issues, root: Obj, name: string | undefined, dcsPg: Obj | undefined): PostgresqlSettings | undefined {
  const path = 'postgresql';
  if (root.postgresql === undefined || root.postgresql === null) {
    for (const k of ['listen', 'data_dir', 'authentication.superuser.username', 'authentication.replication.username']) issues.error(`postgresql.${k}`, 'required');
    return undefined;
  }
  const pg = section(issues, root, 'postgresql', '');
  if (pg === undefined) return undefined;
  const replicaMethods = parseReplicaMethods(issues, pg, path);
  const roleKeys = CONFIG_ROLES.flatMap((r) => [`parameters_${r}`, `pg_hba_${r}`, `pg_ident_${r}`]);
  const fixedKeys = [
    'listen', 'connect_address', 'proxy_address', 'data_dir', 'config_dir', 'config_base_name', 'recovery_conf', 'bin_dir', 'bin_name', 'custom_conf', 'pgpass', 'database', 'authentication', 'parameters', 'pg_hba', 'pg_ident',
    ...roleKeys, 'krbsrvname',
    'use_pg_rewind', 'use_slots', 'remove_data_directory_on_rewind_failure', 'remove_data_directory_on_diverged_timelines',
    'pg_ctl_timeout', 'basebackup', 'rewind', 'use_unix_socket', 'use_unix_socket_repl', 'callbacks', 'pre_promote', 'before_stop', 'create_replica_methods', 'create_replica_method',
  ];
  // Every other key may be the section of a replica method that a standby cluster's
  // standby_cluster.create_replica_methods names (read when this member copies the remote).
  const replicaMethodSections = Object.fromEntries(Object.entries(pg).filter(([k]) => !fixedKeys.includes(k)));
  // Those that bootstrap.dcs.standby_cluster.create_replica_methods names are checked now.
  const sc = isMap(root.bootstrap) && isMap(root.bootstrap.dcs) ? root.bootstrap.dcs.standby_cluster : undefined;
  const standbyNames = isMap(sc) && Array.isArray(sc.create_replica_methods) ? sc.create_replica_methods.filter((n): n is string => typeof n === 'string') : [];
  const standbyKeys = checkMethodSections(issues, pg, path, standbyNames.filter((n) => !replicaMethods.sectionKeys.includes(n)));
  const unlisted = Object.fromEntries(Object.entries(pg).filter(([, v]) => isMap(v)).map(([k]) => [k, 'unknown key (read only as the settings of a replica method that standby_cluster.create_replica_methods names)']));
  checkKeys(issues, pg, path, [...fixedKeys, ...replicaMethods.sectionKeys, ...standbyKeys], unlisted);

  const listen = listenValue(issues, pg, 'listen', path, true);
  if (listen && listen.hosts.length === 1 && listen.hosts[0] === '') {
    issues.warn(sub(path, 'listen'), `no host in ${show(listen.text)}: PostgreSQL will not listen on TCP (use *:${listen.port} for all addresses)`);
  }
  const connect = connectAddress(issues, pg, path, listen && listen.hosts[0] === '' ? { ...listen, hosts: [] } : listen);
  const proxyAddress = parseProxyAddress(issues, pg, path);
  const dataDir = str(issues, pg, 'data_dir', path, true);
  const configDir = str(issues, pg, 'config_dir', path);
  const configBaseName = str(issues, pg, 'config_base_name', path);
  if (configBaseName !== undefined && (configBaseName === '' || configBaseName.includes('/'))) {
    issues.error(sub(path, 'config_base_name'), `expected a file name without a directory, got ${JSON.stringify(configBaseName)}`);
  }
  let binDir = str(issues, pg, 'bin_dir', path);
  if (binDir !== undefined) checkBinDir(issues, binDir, sub(path, 'bin_dir'));
  else binDir = detectBinDir();
  const binName = parseBinName(issues, pg, path);
  const customConf = str(issues, pg, 'custom_conf', path);
  if (customConf !== undefined && customConf !== '' && !existsSync(customConf.startsWith('/') || dataDir === undefined ? customConf : join(dataDir, customConf))) {
    issues.warn(sub(path, 'custom_conf'), `${customConf} does not exist on this machine: PostgreSQL will not start without it`);
  }
  const pgpassSet = str(issues, pg, 'pgpass', path);
  const database = str(issues, pg, 'database', path) ?? 'postgres';

  const ap = sub(path, 'authentication');
  let auth: Obj | undefined;
  if (pg.authentication === undefined || pg.authentication === null) auth = undefined;
  else auth = section(issues, pg, 'authentication', path);
  if (auth !== undefined) checkKeys(issues, auth, ap, ['superuser', 'replication', 'rewind']);
  const badAuthSection = pg.authentication !== undefined && pg.authentication !== null && auth === undefined;
  const superuser = badAuthSection ? undefined : parseCredentials(issues, auth, 'superuser', ap, true);
  const replication = badAuthSection ? undefined : parseCredentials(issues, auth, 'replication', ap, true);
  const rewind = badAuthSection ? undefined : parseCredentials(issues, auth, 'rewind', ap, false);

  const parameters = parseParameters(issues, pg, path);
  const recoveryConf = parseRecoveryConf(issues, pg, path);
  const pgHba = stringList(issues, pg, 'pg_hba', path) ?? [];
  const pgIdent = stringList(issues, pg, 'pg_ident', path);
  const roleOverrides = parseRoleOverrides(issues, pg, path);
  // Kerberos service name: libpq's krbsrvname in primary_conninfo and the pg_basebackup / pg_rewind
  // connection strings. The agent's own connections (node-postgres) cannot do GSSAPI: they work
  // unless the server asks them for GSSAPI, and then fail with node-postgres's error naming it.
  const krbsrvname = str(issues, pg, 'krbsrvname', path);

  const localRewind = bool(issues, pg, 'use_pg_rewind', path);
  const localSlots = bool(issues, pg, 'use_slots', path);
  const useUnixSocket = bool(issues, pg, 'use_unix_socket', path);
  const useUnixSocketRepl = bool(issues, pg, 'use_unix_socket_repl', path);
  if (localSlots !== undefined) {
    issues.warn(sub(path, 'use_slots'), 'ignored: replication slots are switched on or off for the whole cluster, in the dynamic configuration (bootstrap.dcs.postgresql.use_slots), as in Patroni');
  }
  const dcsSlots = dcsPg ? parseBool(dcsPg.use_slots) : undefined;
  const removeOnRewindFailureLocal = bool(issues, pg, 'remove_data_directory_on_rewind_failure', path);
  const removeOnDivergedLocal = bool(issues, pg, 'remove_data_directory_on_diverged_timelines', path);
  const removeOnRewindFailure = removeOnRewindFailureLocal ?? false;
  const removeOnDiverged = removeOnDivergedLocal ?? false;
  const pgCtlTimeout = int(issues, pg, 'pg_ctl_timeout', path, 1) ?? 60;
  const basebackup = renderOptions(issues, pg, 'basebackup', path, 'pg_basebackup');
  const rewindOptions = renderOptions(issues, pg, 'rewind', path, 'pg_rewind');
  const hooks = parseHooks(issues, pg, path);

  if (listen === undefined || connect === undefined || dataDir === undefined || superuser === undefined || replication === undefined) return undefined;
  const authentication: PostgresqlSettings['authentication'] = { superuser, replication };
  if (rewind) authentication.rewind = rewind;
  return {
    listen: listen.text,
    connectAddress: connect,
    ...(proxyAddress !== undefined ? { proxyAddress } : {}),
    dataDir,
    ...(configDir !== undefined && configDir !== '' ? { configDir } : {}),
    ...(configBaseName !== undefined && configBaseName !== '' && !configBaseName.includes('/') ? { configBaseName } : {}),
    binDir,
    ...(binName !== undefined ? { binName } : {}),
    ...(customConf !== undefined && customConf !== '' ? { customConf } : {}),
    pgpass: pgpassSet ?? join(dirname(dataDir), `pgpass.${name ?? 'vigil'}`),
    database,
    authentication,
    parameters,
    ...(recoveryConf !== undefined ? { recoveryConf } : {}),
    pgHba,
    ...(pgIdent !== undefined && pgIdent.length > 0 ? { pgIdent } : {}),
    ...(roleOverrides !== undefined ? { roleOverrides } : {}),
    ...(krbsrvname !== undefined && krbsrvname.trim() !== '' ? { krbsrvname: krbsrvname.trim() } : {}),
    ...(localRewind !== undefined ? { usePgRewind: localRewind } : {}),
    ...(useUnixSocket === true ? { useUnixSocket } : {}),
    ...(useUnixSocketRepl === true ? { useUnixSocketRepl } : {}),
    useSlots: dcsSlots ?? true,
    removeDataDirectoryOnRewindFailure: removeOnRewindFailure,
    removeDataDirectoryOnDivergedTimelines: removeOnDiverged,
    ...(removeOnRewindFailureLocal !== undefined || removeOnDivergedLocal !== undefined
      ? {
          removeDataDirectoryLocal: {
            ...(removeOnRewindFailureLocal !== undefined ? { onRewindFailure: removeOnRewindFailureLocal } : {}),
            ...(removeOnDivergedLocal !== undefined ? { onDivergedTimelines: removeOnDivergedLocal } : {}),
          },
        }
      : {}),
    pgCtlTimeout,
    basebackup,
    ...(rewindOptions.length > 0 ? { rewind: rewindOptions } : {}),
    ...(replicaMethods.methods !== undefined ? { createReplicaMethods: replicaMethods.methods } : {}),
    ...(Object.keys(replicaMethodSections).length > 0 ? { replicaMethodSections } : {}),
    ...hooks,
  };
}
