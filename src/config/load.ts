// Local configuration: Patroni-style YAML (parsed as YAML 1.1) plus PATRONI_* environment overrides
// -> one validated, fully defaulted, deep-frozen Config (patroni-interfaces.md section 4).
//
// Contract:
// - loadConfig never throws on bad input: every problem is returned as a ConfigIssue with the dotted
//   path in the file (or the name of the environment variable that supplied the value), all at once.
// - config is undefined exactly when at least one issue has severity 'error'.
// - Unknown keys are warnings. A key Patroni knows and Vigil does not implement yet is an error when
//   ignoring it would change what happens (hooks, TLS settings, slots, standby clusters, other DCS
//   backends, log files...): a Patroni configuration is never half-applied in silence. Keys that
//   cannot apply to Vigil (Python thread pools, queue sizes) stay warnings.
// - The environment is read, not modified (Patroni removes the PATRONI_* variables it consumed).
//
// Validation is written by hand rather than with zod: nearly every field needs a custom coercion
// (YAML 1.1 scalars, environment strings, Patroni's list-or-comma-string forms, host:port) and a
// message naming the path, and unknown keys must warn instead of failing.

import { accessSync, constants as fsConstants, existsSync, readdirSync, statSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { dirname, join } from 'node:path';
import { parse as parseYaml, parseDocument, type Tags as YamlTags } from 'yaml';
import { parseAllowlistEntry } from '../api/allowlist.ts';
import type { Tags } from '../core/model.ts';
import { dynamicConfigProblems, effectiveDynamicConfigNotes, show, toBool, unimplementedDynamicKeys } from './dynamic.ts';
import type { BootstrapSettings, Config, ConfigIssue, Credentials, Etcd3Settings, PostgresqlSettings, RestApiSettings, WatchdogSettings } from './types.ts';

type Obj = Record<string, unknown>;

const RESERVED_NAME = '__patroni_strict_sync_replica_placeholder__';
const DEFAULT_ETCD_PORT = 2379;
const PG_LIB_DIR = '/usr/lib/postgresql';

const INITDB_FORBIDDEN = new Set(['pgdata', 'nosync', 'pwfile', 'sync-only', 'version']);
const BASEBACKUP_FORBIDDEN = new Set([
  'pgdata', 'format', 'wal-method', 'xlog-method', 'gzip', 'version', 'dbname', 'host', 'port', 'username', 'password',
]);
/** GUCs Patroni sets itself (listen/port/cluster_name) or takes only from the dynamic configuration. */
const GUC_FROM_LISTEN = new Set(['listen_addresses', 'port', 'cluster_name']);
const GUC_DYNAMIC_ONLY = new Set([
  'wal_level', 'hot_standby', 'max_connections', 'max_wal_senders', 'wal_keep_segments', 'wal_keep_size',
  'max_prepared_transactions', 'max_locks_per_transaction', 'track_commit_timestamp', 'max_replication_slots',
  'max_worker_processes', 'wal_log_hints',
]);
const LIBPQ_AUTH_KEYS = [
  'sslmode', 'sslcert', 'sslkey', 'sslpassword', 'sslrootcert', 'sslcrl', 'sslcrldir', 'sslnegotiation', 'gssencmode', 'channel_binding',
];
const LOG_LEVELS: Record<string, string> = {
  DEBUG: 'debug', INFO: 'info', WARN: 'warn', WARNING: 'warn', ERROR: 'error', FATAL: 'error', CRITICAL: 'error',
};

/** A key Patroni knows that cannot apply to Vigil: a warning. */
const NOT_APPLICABLE = 'does not apply to Vigil (ignored)';

/** A key Patroni knows and Vigil does not implement yet, whose absence would change behaviour. */
interface Refusal {
  refuse: string;
}
/** `what` says what would silently not happen if the key were ignored. */
function refused(what: string): Refusal {
  return { refuse: `not implemented by Vigil yet (${what}); remove it to start, or keep this node on Patroni` };
}

// YAML 1.1 as PyYAML (Patroni) reads it: yes/no/on/off/true/false are booleans, but unlike the
// `yaml` package's 1.1 schema, y/Y/n/N stay strings (`name: n` is the string "n" for Patroni).
const PY_TRUE = /^(?:[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/;
const PY_FALSE = /^(?:[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/;
function pyyamlTags(tags: YamlTags): YamlTags {
  return tags.map((t) => {
    if (typeof t === 'object' && t.tag === 'tag:yaml.org,2002:bool' && 'test' in t && t.test instanceof RegExp) {
      return { ...t, test: t.test.test('true') ? PY_TRUE : PY_FALSE } as typeof t;
    }
    return t;
  });
}
const YAML_OPTIONS = { version: '1.1', customTags: pyyamlTags } as const;

// ---------------------------------------------------------------------------------------------
// Issue collection

class Issues {
  readonly list: ConfigIssue[] = [];
  /** Dotted path -> environment variable that supplied (or created) the value there. */
  readonly origins = new Map<string, string>();

  private where(path: string): string {
    return this.origins.get(path) ?? path;
  }
  error(path: string, message: string): void {
    this.list.push({ path: this.where(path), message, severity: 'error' });
  }
  warn(path: string, message: string): void {
    this.list.push({ path: this.where(path), message, severity: 'warning' });
  }
  get hasErrors(): boolean {
    return this.list.some((i) => i.severity === 'error');
  }
}

function isMap(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function sub(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function describe(v: unknown): string {
  if (typeof v === 'boolean') return `boolean ${v} (YAML 1.1 reads yes/no/on/off/true/false as booleans: quote it)`;
  if (v instanceof Date) return `a date ${show(v)} (quote it)`;
  if (Array.isArray(v)) return `a list ${show(v)}`;
  if (isMap(v)) return `a mapping ${show(v)}`;
  return show(v);
}

/**
 * Warns about every key of `obj` outside `known`; keys in `unsupported` get that message instead of
 * "unknown key".
 */
function checkKeys(issues: Issues, obj: Obj, path: string, known: readonly string[], unsupported: Record<string, string | Refusal> = {}): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const msg = Object.hasOwn(unsupported, key) ? unsupported[key] : undefined;
    if (typeof msg === 'object') {
      if (obj[key] !== undefined && obj[key] !== null) issues.error(sub(path, key), msg.refuse);
    } else issues.warn(sub(path, key), msg ?? 'unknown key');
  }
}

function section(issues: Issues, parent: Obj, key: string, path: string): Obj | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (!isMap(v)) {
    issues.error(sub(path, key), `expected a mapping, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A string; numbers are accepted and converted (e.g. `password: 1234`). */
function str(issues: Issues, parent: Obj, key: string, path: string, required = false): string | undefined {
  const v = parent[key];
  const p = sub(path, key);
  if (v === undefined || v === null || v === '') {
    if (required) issues.error(p, 'required');
    return undefined;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  issues.error(p, `expected a string, got ${describe(v)}`);
  return undefined;
}

function bool(issues: Issues, parent: Obj, key: string, path: string): boolean | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  const b = toBool(v);
  if (b === undefined) issues.error(sub(path, key), `expected a boolean, got ${describe(v)}`);
  return b;
}

function int(issues: Issues, parent: Obj, key: string, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  let n: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) n = Number(v);
  if (n === undefined) {
    issues.error(sub(path, key), `expected an integer, got ${describe(v)}`);
    return undefined;
  }
  if (n < min || n > max) {
    issues.error(sub(path, key), `must be between ${min} and ${max}, got ${n}`);
    return undefined;
  }
  return n;
}

function stringList(issues: Issues, parent: Obj, key: string, path: string): string[] | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  const p = sub(path, key);
  if (!Array.isArray(v)) {
    issues.error(p, `expected a list of strings, got ${describe(v)}`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    if (typeof item === 'string') out.push(item);
    else issues.error(`${p}[${i}]`, `expected a string, got ${describe(item)}`);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// host:port

interface HostPort {
  host: string;
  port: number;
}

/**
 * Patroni's split: the port follows the last colon; "[v6]:port" is accepted too. The host part may
 * be empty (":8008"). Returns an error message instead of throwing.
 */
export function splitHostPort(value: string): HostPort | string {
  const s = value.trim();
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(s);
  if (bracket) {
    host = bracket[1] as string;
    portText = bracket[2] as string;
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) return `expected host:port, got ${show(value)}`;
    host = s.slice(0, i);
    portText = s.slice(i + 1);
  }
  if (!/^\d+$/.test(portText)) return `expected host:port, got ${show(value)}`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port must be 1-65535, got ${portText} in ${show(value)}`;
  return { host, port };
}

const WILDCARDS = new Set(['', '*', '0.0.0.0', '::', '[::]']);

function listenValue(issues: Issues, parent: Obj, key: string, path: string, multiHost: boolean): { text: string; hosts: string[]; port: number } | undefined {
  const text = str(issues, parent, key, path, true);
  if (text === undefined) return undefined;
  const hp = splitHostPort(text);
  if (typeof hp === 'string') {
    issues.error(sub(path, key), hp);
    return undefined;
  }
  const hosts = multiHost ? hp.host.split(',').map((h) => h.trim()) : [hp.host.trim()];
  if (multiHost && hosts.length > 1 && hosts.some((h) => h === '')) {
    issues.error(sub(path, key), `empty host in ${show(text)}`);
    return undefined;
  }
  return { text: text.trim(), hosts, port: hp.port };
}

/**
 * connect_address: one connectable host and a port. Defaults to listen when listen names one
 * connectable host; otherwise it is required.
 */
function connectAddress(issues: Issues, parent: Obj, path: string, listen: { text: string; hosts: string[]; port: number } | undefined): string | undefined {
  const p = sub(path, 'connect_address');
  if (parent.connect_address === undefined || parent.connect_address === null) {
    if (listen === undefined) return undefined;
    const host = listen.hosts.find((h) => !WILDCARDS.has(h));
    if (host === undefined) {
      issues.error(p, `required when listen (${show(listen.text)}) is a wildcard address`);
      return undefined;
    }
    return `${host}:${listen.port}`;
  }
  const text = str(issues, parent, 'connect_address', path);
  if (text === undefined) return undefined;
  const hp = splitHostPort(text);
  if (typeof hp === 'string') {
    issues.error(p, hp);
    return undefined;
  }
  if (WILDCARDS.has(hp.host) || hp.host.includes(',')) {
    issues.error(p, `must name one host other members can connect to, got ${show(text)}`);
    return undefined;
  }
  return text.trim();
}

// ---------------------------------------------------------------------------------------------
// Command-line options (initdb, pg_basebackup)

/**
 * Renders Patroni's option forms as arguments: a list of strings ("data-checksums" -> --data-checksums)
 * and single-key maps ({encoding: UTF8} -> --encoding=UTF8), or one map of option -> value.
 */
function renderOptions(issues: Issues, parent: Obj, key: string, path: string, forbidden: Set<string>, who: string): string[] {
  const v = parent[key];
  const p = sub(path, key);
  if (v === undefined || v === null) return [];
  const out: string[] = [];
  const one = (name: string, value: unknown, itemPath: string): void => {
    const opt = name.replace(/^-+/, '');
    if (opt === '') {
      issues.error(itemPath, 'empty option name');
      return;
    }
    if (forbidden.has(opt)) {
      issues.error(itemPath, `option "${opt}" is not allowed (Vigil sets it for ${who})`);
      return;
    }
    if (value === undefined) out.push(`--${opt}`);
    else if (typeof value === 'string' || typeof value === 'number') out.push(`--${opt}=${value}`);
    else issues.error(itemPath, `expected a string or number value for option "${opt}", got ${describe(value)}`);
  };
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const itemPath = `${p}[${i}]`;
      if (typeof item === 'string') one(item, undefined, itemPath);
      else if (isMap(item)) {
        const entries = Object.entries(item);
        if (entries.length !== 1) issues.error(itemPath, `expected a single-key mapping like {encoding: UTF8}, got ${show(item)}`);
        else one(entries[0]![0], entries[0]![1], itemPath);
      } else issues.error(itemPath, `expected an option name or a single-key mapping, got ${describe(item)}`);
    });
  } else if (isMap(v)) {
    for (const [name, value] of Object.entries(v)) one(name, value, sub(p, name));
  } else {
    issues.error(p, `expected a list of options, got ${describe(v)}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Environment

const LOG_ENV = ['TYPE', 'LEVEL', 'TRACEBACK_LEVEL', 'FORMAT', 'DATEFORMAT', 'STATIC_FIELDS', 'MAX_QUEUE_SIZE', 'DIR', 'MODE', 'FILE_NUM', 'FILE_SIZE', 'LOGGERS', 'DEDUPLICATE_HEARTBEAT_LOGS'];
const RESTAPI_ENV = ['LISTEN', 'CONNECT_ADDRESS', 'CERTFILE', 'KEYFILE', 'KEYFILE_PASSWORD', 'CAFILE', 'CIPHERS', 'VERIFY_CLIENT', 'HTTP_EXTRA_HEADERS', 'HTTPS_EXTRA_HEADERS', 'ALLOWLIST', 'ALLOWLIST_INCLUDE_MEMBERS', 'REQUEST_QUEUE_SIZE', 'SERVER_TOKENS'];
const CTL_ENV = ['INSECURE', 'CACERT', 'CERTFILE', 'KEYFILE', 'KEYFILE_PASSWORD'];
const POSTGRESQL_ENV = ['LISTEN', 'CONNECT_ADDRESS', 'PROXY_ADDRESS', 'CONFIG_DIR', 'DATA_DIR', 'PGPASS', 'BIN_DIR'];
const PG_BINARIES = ['PG_CTL', 'INITDB', 'PG_CONTROLDATA', 'PG_BASEBACKUP', 'POSTGRES', 'PG_ISREADY', 'PG_REWIND'];
const CREDENTIAL_ENV = ['USERNAME', 'PASSWORD', ...LIBPQ_AUTH_KEYS.map((k) => k.toUpperCase())];
const RAFT_ENV = ['DATA_DIR', 'SELF_ADDR', 'PARTNER_ADDRS', 'PASSWORD', 'BIND_ADDR', 'MIN_TIMEOUT', 'MAX_TIMEOUT', 'CONNECTION_TIMEOUT', 'APPEND_ENTRIES_PERIOD', 'CONNECTION_RETRY_TIME', 'LEADER_FALLBACK_TIMEOUT'];
const DCS_SUFFIXES = new Set([
  'HOST', 'HOSTS', 'PORT', 'USE_PROXIES', 'PROTOCOL', 'SRV', 'SRV_SUFFIX', 'URL', 'PROXY', 'CACERT', 'CERT', 'KEY', 'KEY_PASSWORD',
  'VERIFY', 'TOKEN', 'CHECKS', 'DC', 'CONSISTENCY', 'REGISTER_SERVICE', 'SERVICE_CHECK_INTERVAL', 'SERVICE_CHECK_TLS_SERVER_NAME',
  'SERVICE_TAGS', 'NAMESPACE', 'CONTEXT', 'USE_ENDPOINTS', 'SCOPE_LABEL', 'ROLE_LABEL', 'LEADER_LABEL_VALUE', 'FOLLOWER_LABEL_VALUE',
  'STANDBY_LEADER_LABEL_VALUE', 'TMP_ROLE_LABEL', 'POD_IP', 'PORTS', 'LABELS', 'BOOTSTRAP_LABELS', 'BYPASS_API_SERVICE',
  'RETRIABLE_HTTP_CODES', 'USE_SSL', 'SET_ACLS', 'AUTH_DATA', 'GROUP', 'DATABASE',
]);
const DCS_LIST_SUFFIXES = new Set(['HOSTS', 'PORTS', 'CHECKS', 'SERVICE_TAGS', 'RETRIABLE_HTTP_CODES']);
const DCS_MAP_SUFFIXES = new Set(['LABELS', 'SET_ACLS', 'AUTH_DATA', 'BOOTSTRAP_LABELS']);
/** Section names whose variables are handled explicitly, never by the generic DCS or user rules. */
const EXPLICIT_SECTIONS = new Set(['RESTAPI', 'CTL', 'POSTGRESQL', 'LOG', 'SUPERUSER', 'REPLICATION', 'REWIND', 'RAFT', 'CONFIGURATION', 'NAME', 'SCOPE', 'NAMESPACE', 'THREAD', 'LOGLEVEL', 'LOGFORMAT']);

/** A YAML list from an environment value; a bare "a,b" is split on commas. */
function envList(value: string): unknown {
  const t = value.trim();
  if (t.startsWith('[')) {
    try {
      return parseYaml(t, YAML_OPTIONS) as unknown;
    } catch {
      return value;
    }
  }
  return t.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** A YAML mapping from an environment value; wrapped in {...} when needed. */
function envMap(value: string): unknown {
  const t = value.trim();
  try {
    return parseYaml(t.startsWith('{') ? t : `{${t}}`, YAML_OPTIONS) as unknown;
  } catch {
    return value;
  }
}

/**
 * Applies PATRONI_* variables to the parsed file (in place), recording for every path set which
 * variable supplied it. Empty variables are ignored, as in Patroni.
 */
function applyEnvironment(root: Obj, env: NodeJS.ProcessEnv, issues: Issues): void {
  const set = (path: string[], value: unknown, name: string): void => {
    let node = root;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i] as string;
      if (!isMap(node[key])) {
        node[key] = {};
        const created = path.slice(0, i + 1).join('.');
        if (!issues.origins.has(created)) issues.origins.set(created, name);
      }
      node = node[key] as Obj;
    }
    node[path[path.length - 1] as string] = value;
    issues.origins.set(path.join('.'), name);
  };
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const simple = (name: string, path: string[], convert?: (v: string) => unknown): void => {
    const v = get(name);
    if (v !== undefined) set(path, convert ? convert(v) : v, name);
  };

  simple('PATRONI_SCOPE', ['scope']);
  simple('PATRONI_NAME', ['name']);
  simple('PATRONI_NAMESPACE', ['namespace']);
  // Legacy names first so that the new ones win.
  simple('PATRONI_LOGLEVEL', ['log', 'level']);
  simple('PATRONI_LOGFORMAT', ['log', 'format']);
  simple('PATRONI_LOG_DATEFMT', ['log', 'dateformat']);
  for (const k of LOG_ENV) simple(`PATRONI_LOG_${k}`, ['log', k.toLowerCase()]);
  for (const k of RESTAPI_ENV) {
    const convert = k === 'ALLOWLIST' ? envList : k.endsWith('_EXTRA_HEADERS') ? envMap : undefined;
    simple(`PATRONI_RESTAPI_${k}`, ['restapi', k.toLowerCase()], convert);
  }
  simple('PATRONI_RESTAPI_USERNAME', ['restapi', 'authentication', 'username']);
  simple('PATRONI_RESTAPI_PASSWORD', ['restapi', 'authentication', 'password']);
  for (const k of CTL_ENV) simple(`PATRONI_CTL_${k}`, ['ctl', k.toLowerCase()]);
  simple('PATRONI_CTL_USERNAME', ['ctl', 'authentication', 'username']);
  simple('PATRONI_CTL_PASSWORD', ['ctl', 'authentication', 'password']);
  for (const k of POSTGRESQL_ENV) simple(`PATRONI_POSTGRESQL_${k}`, ['postgresql', k.toLowerCase()]);
  for (const b of PG_BINARIES) simple(`PATRONI_POSTGRESQL_BIN_${b}`, ['postgresql', 'bin_name', b.toLowerCase()]);
  for (const who of ['SUPERUSER', 'REPLICATION', 'REWIND']) {
    for (const k of CREDENTIAL_ENV) simple(`PATRONI_${who}_${k}`, ['postgresql', 'authentication', who.toLowerCase(), k.toLowerCase()]);
  }
  for (const k of RAFT_ENV) simple(`PATRONI_RAFT_${k}`, ['raft', k.toLowerCase()], k === 'PARTNER_ADDRS' ? envList : undefined);

  // Generic DCS/Citus variables and bootstrap users, in a stable order.
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('PATRONI_')) continue;
    const value = get(name);
    if (value === undefined) continue;
    const rest = name.slice('PATRONI_'.length);
    const i = rest.indexOf('_');
    if (i <= 0) continue;
    const section = rest.slice(0, i);
    const suffix = rest.slice(i + 1);
    if (EXPLICIT_SECTIONS.has(section)) continue;
    if (DCS_SUFFIXES.has(suffix)) {
      if (section === 'CITUS' && suffix !== 'GROUP' && suffix !== 'DATABASE') continue;
      const key = suffix.toLowerCase();
      const converted = suffix === 'PORT' ? (/^\d+$/.test(value) ? Number(value) : value)
        : DCS_LIST_SUFFIXES.has(suffix) ? envList(value)
          : DCS_MAP_SUFFIXES.has(suffix) ? envMap(value) : value;
      const sectionKey = section.toLowerCase();
      // A host given in the environment replaces every other way the file names the servers.
      if (['HOST', 'HOSTS', 'URL', 'PROXY', 'SRV'].includes(suffix) && isMap(root[sectionKey])) {
        for (const other of ['host', 'hosts', 'url', 'proxy', 'srv']) {
          const existing = root[sectionKey] as Obj;
          if (other !== key && !issues.origins.has(`${sectionKey}.${other}`)) delete existing[other];
        }
      }
      set([sectionKey, key], converted, name);
    } else if ((section === 'ETCD' || section === 'ETCD3') && (suffix === 'USERNAME' || suffix === 'PASSWORD')) {
      set([section.toLowerCase(), suffix.toLowerCase()], value, name);
    } else if (suffix === 'PASSWORD' || suffix === 'OPTIONS') {
      // Bootstrap users: PATRONI_<user>_PASSWORD and PATRONI_<user>_OPTIONS.
      if (suffix === 'OPTIONS' && get(`PATRONI_${section}_PASSWORD`) === undefined) continue;
      if (!isMap(root.bootstrap)) {
        if (suffix === 'PASSWORD') issues.warn(name, 'bootstrap user ignored: the configuration has no bootstrap section');
        continue;
      }
      const user = section.toLowerCase();
      set(['bootstrap', 'users', user, suffix.toLowerCase()], suffix === 'OPTIONS' ? envList(value) : value, name);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

function parseCredentials(issues: Issues, auth: Obj | undefined, key: string, path: string, required: boolean): Credentials | undefined {
  const p = sub(path, key);
  if (auth === undefined || auth[key] === undefined || auth[key] === null) {
    if (required) issues.error(sub(p, 'username'), 'required');
    return undefined;
  }
  const sec = section(issues, auth, key, path);
  if (sec === undefined) return undefined;
  const unsupported = Object.fromEntries(LIBPQ_AUTH_KEYS.map((k) => [k, refused(`the libpq setting ${k} would not be used: connections would fall back to libpq's defaults, e.g. sslmode=prefer`)]));
  checkKeys(issues, sec, p, ['username', 'password'], unsupported);
  const username = str(issues, sec, 'username', p, true);
  const password = str(issues, sec, 'password', p);
  if (username === undefined) return undefined;
  return password === undefined ? { username } : { username, password };
}

function parseRestApi(issues: Issues, root: Obj): RestApiSettings | undefined {
  const path = 'restapi';
  if (root.restapi === undefined || root.restapi === null) {
    issues.error('restapi.listen', 'required');
    return undefined;
  }
  const sec = section(issues, root, 'restapi', '');
  if (sec === undefined) return undefined;
  checkKeys(issues, sec, path, [
    'listen', 'connect_address', 'authentication', 'certfile', 'keyfile', 'keyfile_password', 'cafile', 'verify_client',
    'allowlist', 'allowlist_include_members', 'http_extra_headers', 'https_extra_headers',
  ], {
    ciphers: refused('the REST API would accept Node.js default TLS ciphers'),
    server_tokens: refused('the REST API would not hide its Server header as asked'),
    request_queue_size: NOT_APPLICABLE, thread_pool_size: NOT_APPLICABLE,
  });
  const listen = listenValue(issues, sec, 'listen', path, false);
  const connect = connectAddress(issues, sec, path, listen);
  let authentication: RestApiSettings['authentication'];
  const auth = section(issues, sec, 'authentication', path);
  if (auth !== undefined) {
    const ap = sub(path, 'authentication');
    checkKeys(issues, auth, ap, ['username', 'password']);
    const username = str(issues, auth, 'username', ap, true);
    const password = str(issues, auth, 'password', ap, true);
    if (username !== undefined && password !== undefined) authentication = { username, password };
  }
  const certfile = str(issues, sec, 'certfile', path);
  const keyfile = str(issues, sec, 'keyfile', path);
  const keyfilePassword = str(issues, sec, 'keyfile_password', path);
  const cafile = str(issues, sec, 'cafile', path);
  let verifyClient: RestApiSettings['verifyClient'];
  const vc = str(issues, sec, 'verify_client', path);
  if (vc !== undefined) {
    if (vc === 'required') {
      // The agent's own calls to its peers (leader race, switchover and failsafe checks) present no
      // client certificate yet (ctl.certfile is not used by the agent), so every peer would look
      // unreachable to every other.
      issues.error(sub(path, 'verify_client'), 'required is not implemented by Vigil yet (the agent\'s own calls to its peers present no client certificate, so every peer would look unreachable); use optional or none');
    } else if (vc === 'none' || vc === 'optional') verifyClient = vc;
    else issues.error(sub(path, 'verify_client'), `expected none, optional or required, got ${show(vc)}`);
  }
  if (keyfile !== undefined && certfile === undefined) issues.error(sub(path, 'keyfile'), 'set without certfile');
  const allowlist = allowlistValue(issues, sec, path);
  const allowlistIncludeMembers = bool(issues, sec, 'allowlist_include_members', path);
  const httpExtraHeaders = headerMap(issues, sec, 'http_extra_headers', path);
  const httpsExtraHeaders = headerMap(issues, sec, 'https_extra_headers', path);
  if (listen === undefined || connect === undefined) return undefined;
  const out: RestApiSettings = { listen: listen.text, connectAddress: connect };
  if (authentication) out.authentication = authentication;
  if (certfile !== undefined) out.certfile = certfile;
  if (keyfile !== undefined) out.keyfile = keyfile;
  if (keyfilePassword !== undefined) out.keyfilePassword = keyfilePassword;
  if (cafile !== undefined) out.cafile = cafile;
  if (verifyClient !== undefined) out.verifyClient = verifyClient;
  if (allowlist !== undefined && allowlist.length > 0) out.allowlist = allowlist;
  if (allowlistIncludeMembers !== undefined) out.allowlistIncludeMembers = allowlistIncludeMembers;
  if (httpExtraHeaders !== undefined) out.httpExtraHeaders = httpExtraHeaders;
  if (httpsExtraHeaders !== undefined) out.httpsExtraHeaders = httpsExtraHeaders;
  return out;
}

/** Where the value at `path` came from: the environment variable that set it, else the path itself. */
function origin(issues: Issues, path: string): string {
  return issues.origins.get(path) ?? path;
}

/** restapi.allowlist: a list of IP addresses, CIDR networks (IPv4 or IPv6) and hostnames. */
function allowlistValue(issues: Issues, sec: Obj, path: string): string[] | undefined {
  const v = sec.allowlist;
  if (v === undefined || v === null) return undefined;
  const p = sub(path, 'allowlist');
  if (!Array.isArray(v)) {
    issues.error(p, `expected a list of IP addresses, CIDR networks or hostnames, got ${describe(v)}`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    const entry = parseAllowlistEntry(item);
    if (typeof entry !== 'string') out.push((item as string).trim());
    else issues.error(`${origin(issues, p)}[${i}]`, typeof item === 'string' ? entry : `${entry}, got ${describe(item)}`);
  });
  return out;
}

/**
 * http_extra_headers / https_extra_headers: a mapping header name -> value. Values are strings
 * (numbers are accepted and converted, as Patroni prints them); names and values must be valid in
 * an HTTP header.
 */
function headerMap(issues: Issues, sec: Obj, key: string, path: string): Record<string, string> | undefined {
  const v = sec[key];
  if (v === undefined || v === null) return undefined;
  const p = sub(path, key);
  if (!isMap(v)) {
    issues.error(p, `expected a mapping of header names to values, got ${describe(v)}`);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(v)) {
    const hp = sub(origin(issues, p), name);
    const text = typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
    if (text === undefined) {
      issues.error(hp, `expected a string, got ${describe(value)}`);
      continue;
    }
    try {
      validateHeaderName(name);
    } catch {
      issues.error(hp, `not a valid HTTP header name: ${show(name)}`);
      continue;
    }
    try {
      validateHeaderValue(name, text);
    } catch {
      issues.error(hp, `not a valid HTTP header value (control characters such as line breaks are not allowed): ${show(text)}`);
      continue;
    }
    out[name] = text;
  }
  return out;
}

/** One etcd endpoint as host:port (default port 2379); a scheme, if any, is returned apart. */
function etcdEndpoint(issues: Issues, value: unknown, path: string): { hostPort: string; scheme?: 'http' | 'https' } | undefined {
  if (typeof value !== 'string' || value.trim() === '') {
    issues.error(path, `expected host:port, got ${describe(value)}`);
    return undefined;
  }
  let s = value.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\/(.*?)\/?$/i.exec(s);
  if (m) {
    scheme = (m[1] as string).toLowerCase() as 'http' | 'https';
    s = m[2] as string;
  } else if (/^[a-z]+:\/\//i.test(s)) {
    issues.error(path, `unsupported scheme in ${show(value)}: expected http or https`);
    return undefined;
  }
  // No colon at all (or a bare [v6] address): the default port applies.
  const hasPort = s.startsWith('[') ? /\]:/.test(s) : s.includes(':');
  const withPort = hasPort ? s : `${s}:${DEFAULT_ETCD_PORT}`;
  const hp = splitHostPort(withPort);
  if (typeof hp === 'string' || hp.host === '') {
    issues.error(path, typeof hp === 'string' ? hp : `expected host:port, got ${show(value)}`);
    return undefined;
  }
  return scheme === undefined ? { hostPort: withPort } : { hostPort: withPort, scheme };
}

function parseEtcd3(issues: Issues, root: Obj): Etcd3Settings | undefined {
  const path = 'etcd3';
  if (root.etcd3 === undefined || root.etcd3 === null) {
    const hint = isMap(root.etcd) ? ' (the file has an etcd section, for the v2 API: Patroni keeps those keys in the v2 store, which an etcd3 section does not see)' : '';
    issues.error(path, `required: an etcd3 section with host or hosts${hint}`);
    return undefined;
  }
  const sec = section(issues, root, 'etcd3', '');
  if (sec === undefined) return undefined;
  checkKeys(issues, sec, path, ['host', 'hosts', 'url', 'protocol', 'username', 'password', 'cacert', 'cert', 'key', 'key_password', 'use_proxies'], {
    proxy: refused('etcd would be reached without the proxy'),
    srv: refused('etcd members from DNS SRV records: set hosts instead'),
    srv_suffix: refused('etcd members from DNS SRV records: set hosts instead'),
  });
  const hosts: string[] = [];
  const schemes = new Set<string>();
  const add = (v: unknown, p: string): void => {
    const e = etcdEndpoint(issues, v, p);
    if (!e) return;
    hosts.push(e.hostPort);
    if (e.scheme) schemes.add(e.scheme);
  };
  const hostsValue = sec.hosts;
  const emptyHosts = hostsValue === '' || (Array.isArray(hostsValue) && hostsValue.length === 0);
  const errorsBefore = issues.list.length;
  if (hostsValue !== undefined && hostsValue !== null && !emptyHosts) {
    const p = sub(path, 'hosts');
    if (typeof hostsValue === 'string') {
      hostsValue.split(',').map((h) => h.trim()).filter((h) => h !== '').forEach((h) => add(h, p));
    } else if (Array.isArray(hostsValue)) {
      hostsValue.forEach((h, i) => add(h, `${p}[${i}]`));
    } else {
      issues.error(p, `expected a list or a comma-separated string of host:port, got ${describe(hostsValue)}`);
    }
  } else if (sec.host !== undefined && sec.host !== null) {
    add(sec.host, sub(path, 'host'));
  } else if (sec.url !== undefined && sec.url !== null) {
    const url = str(issues, sec, 'url', path);
    if (url !== undefined) url.split(',').forEach((u) => add(u.trim(), sub(path, 'url')));
  } else {
    issues.error(sub(path, emptyHosts ? 'hosts' : 'host'), emptyHosts ? 'empty: give at least one host:port' : 'required: host or hosts');
  }
  if (hosts.length === 0 && issues.list.length === errorsBefore) issues.error(sub(path, 'hosts'), 'empty: give at least one host:port');
  let protocol: 'http' | 'https' = 'http';
  const proto = str(issues, sec, 'protocol', path);
  if (proto !== undefined) {
    const p = proto.toLowerCase();
    if (p === 'http' || p === 'https') protocol = p;
    else issues.error(sub(path, 'protocol'), `expected http or https, got ${show(proto)}`);
  } else if (schemes.size === 1) {
    protocol = [...schemes][0] as 'http' | 'https';
  }
  if (schemes.size > 1) issues.error(path, 'hosts mix http:// and https://');
  bool(issues, sec, 'use_proxies', path);
  const out: Etcd3Settings = { hosts, protocol };
  for (const k of ['username', 'password', 'cacert', 'cert', 'key'] as const) {
    const v = str(issues, sec, k, path);
    if (v !== undefined) out[k] = v;
  }
  const keyPassword = str(issues, sec, 'key_password', path);
  if (keyPassword !== undefined) out.keyPassword = keyPassword;
  if ((out.username === undefined) !== (out.password === undefined)) {
    issues.error(sub(path, out.username === undefined ? 'username' : 'password'), 'required when the other of username/password is set');
  }
  if (out.key !== undefined && out.cert === undefined) issues.error(sub(path, 'key'), 'set without cert');
  if (out.keyPassword !== undefined && out.cert === undefined) issues.warn(sub(path, 'key_password'), 'ignored: no client certificate (cert, key) is set');
  // The files themselves are read when the etcd client is created (dcs/etcd3-tls.ts).
  const tlsKeys = (['cacert', 'cert', 'key'] as const).filter((k) => out[k] !== undefined);
  if (protocol === 'http' && tlsKeys.length > 0) {
    issues.warn(path, `${tlsKeys.join(', ')} ignored: protocol is http (set protocol: https, or write the hosts as https://host:port)`);
  }
  if (hosts.length === 0) return undefined;
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

function parseParameters(issues: Issues, pg: Obj, path: string): Record<string, string | number | boolean> {
  const params = section(issues, pg, 'parameters', path);
  const out: Record<string, string | number | boolean> = {};
  if (params === undefined) return out;
  const pp = sub(path, 'parameters');
  for (const [name, value] of Object.entries(params)) {
    const p = sub(pp, name);
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      issues.error(p, `expected a string, number or boolean, got ${describe(value)}`);
      continue;
    }
    if (GUC_FROM_LISTEN.has(name)) {
      issues.warn(p, `ignored: set from ${name === 'cluster_name' ? 'scope' : 'postgresql.listen'}`);
      continue;
    }
    if (GUC_DYNAMIC_ONLY.has(name)) {
      issues.warn(p, 'ignored in the local configuration: this parameter is only taken from the dynamic configuration (bootstrap.dcs.postgresql.parameters)');
      continue;
    }
    out[name] = value;
  }
  return out;
}

function parsePostgresql(issues: Issues, root: Obj, name: string | undefined, dcsPg: Obj | undefined): PostgresqlSettings | undefined {
  const path = 'postgresql';
  if (root.postgresql === undefined || root.postgresql === null) {
    for (const k of ['listen', 'data_dir', 'authentication.superuser.username', 'authentication.replication.username']) issues.error(`postgresql.${k}`, 'required');
    return undefined;
  }
  const pg = section(issues, root, 'postgresql', '');
  if (pg === undefined) return undefined;
  const unsupported: Record<string, string | Refusal> = {
    proxy_address: refused('proxy_url would not be published in the member key for routers'),
    config_dir: refused('the configuration files would be written into the data directory instead'),
    config_base_name: refused('the configuration file would be named postgresql.conf'),
    custom_conf: refused('the custom configuration file would not be included'),
    bin_name: refused('the standard binary names would be run instead'),
    callbacks: refused('on_start/on_stop/on_restart/on_reload/on_role_change scripts would never run'),
    pre_promote: refused('the script would not be run, and could not cancel a promotion'),
    before_stop: refused('the script would not be run before PostgreSQL stops'),
    create_replica_methods: refused('replicas would be cloned with pg_basebackup instead of these methods'),
    create_replica_method: refused('replicas would be cloned with pg_basebackup instead of these methods'),
    rewind: refused('pg_rewind would run without these options'),
    use_unix_socket: refused('the agent would connect over TCP'),
    use_unix_socket_repl: refused('replication would connect over TCP'),
    pg_ident: refused('pg_ident.conf would not be written'),
    recovery_conf: refused('these recovery settings would not be written'),
    krbsrvname: refused('Kerberos connections would use the default service name'),
  };
  for (const role of ['primary', 'replica', 'standby_leader']) {
    unsupported[`parameters_${role}`] = refused(`the ${role} role's parameters would not be applied`);
    unsupported[`pg_hba_${role}`] = refused(`the ${role} role's pg_hba lines would not be written`);
    unsupported[`pg_ident_${role}`] = refused(`the ${role} role's pg_ident lines would not be written`);
  }
  // create_replica_methods: [basebackup] is what Vigil does anyway.
  const crm = pg.create_replica_methods;
  if (Array.isArray(crm) && crm.length === 1 && crm[0] === 'basebackup') delete unsupported.create_replica_methods;
  checkKeys(issues, pg, path, [
    'listen', 'connect_address', 'data_dir', 'bin_dir', 'pgpass', 'database', 'authentication', 'parameters', 'pg_hba',
    'use_pg_rewind', 'use_slots', 'remove_data_directory_on_rewind_failure', 'remove_data_directory_on_diverged_timelines',
    'pg_ctl_timeout', 'basebackup', ...(unsupported.create_replica_methods ? [] : ['create_replica_methods']),
  ], unsupported);

  const listen = listenValue(issues, pg, 'listen', path, true);
  if (listen && listen.hosts.length === 1 && listen.hosts[0] === '') {
    issues.warn(sub(path, 'listen'), `no host in ${show(listen.text)}: PostgreSQL will not listen on TCP (use *:${listen.port} for all addresses)`);
  }
  const connect = connectAddress(issues, pg, path, listen && listen.hosts[0] === '' ? { ...listen, hosts: [] } : listen);
  const dataDir = str(issues, pg, 'data_dir', path, true);
  let binDir = str(issues, pg, 'bin_dir', path);
  if (binDir !== undefined) checkBinDir(issues, binDir, sub(path, 'bin_dir'));
  else binDir = detectBinDir();
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
  const pgHba = stringList(issues, pg, 'pg_hba', path) ?? [];

  const localRewind = bool(issues, pg, 'use_pg_rewind', path);
  const localSlots = bool(issues, pg, 'use_slots', path);
  if (localSlots !== undefined) {
    issues.warn(sub(path, 'use_slots'), 'Patroni reads use_slots only from the dynamic configuration (bootstrap.dcs.postgresql.use_slots); Vigil uses it as the local default');
  }
  const dcsSlots = dcsPg ? toBool(dcsPg.use_slots) : undefined;
  const removeOnRewindFailure = bool(issues, pg, 'remove_data_directory_on_rewind_failure', path) ?? false;
  const removeOnDiverged = bool(issues, pg, 'remove_data_directory_on_diverged_timelines', path) ?? false;
  const pgCtlTimeout = int(issues, pg, 'pg_ctl_timeout', path, 1) ?? 60;
  const basebackup = renderOptions(issues, pg, 'basebackup', path, BASEBACKUP_FORBIDDEN, 'pg_basebackup');

  if (listen === undefined || connect === undefined || dataDir === undefined || superuser === undefined || replication === undefined) return undefined;
  const authentication: PostgresqlSettings['authentication'] = { superuser, replication };
  if (rewind) authentication.rewind = rewind;
  return {
    listen: listen.text,
    connectAddress: connect,
    dataDir,
    binDir,
    pgpass: pgpassSet ?? join(dirname(dataDir), `pgpass.${name ?? 'vigil'}`),
    database,
    authentication,
    parameters,
    pgHba,
    ...(localRewind !== undefined ? { usePgRewind: localRewind } : {}),
    useSlots: localSlots ?? dcsSlots ?? true,
    removeDataDirectoryOnRewindFailure: removeOnRewindFailure,
    removeDataDirectoryOnDivergedTimelines: removeOnDiverged,
    pgCtlTimeout,
    basebackup,
  };
}

const DCS_LOCAL_ONLY = ['connect_address', 'proxy_address', 'listen', 'config_dir', 'data_dir', 'pgpass', 'authentication'];

function parseBootstrapDcs(issues: Issues, boot: Obj): Obj {
  const path = 'bootstrap.dcs';
  const dcs = section(issues, boot, 'dcs', 'bootstrap');
  if (dcs === undefined) return {};
  const problems = dynamicConfigProblems(dcs);
  for (const p of problems) issues.error(p.path === '' ? path : sub(path, p.path), p.message);
  for (const u of unimplementedDynamicKeys(dcs)) issues.error(sub(path, u.path), u.message);
  if (isMap(dcs.postgresql)) {
    for (const k of DCS_LOCAL_ONLY) {
      if (k in dcs.postgresql) issues.warn(sub(path, `postgresql.${k}`), 'not allowed in the dynamic configuration (ignored); set it in the local postgresql section');
    }
  }
  const out: Obj = { ...dcs };
  if (problems.length > 0) return out;
  const { config, notes } = effectiveDynamicConfigNotes(dcs);
  for (const n of notes) issues.warn(n.path === '' ? path : sub(path, n.path), n.message);
  const timings = ['ttl', 'loop_wait', 'retry_timeout'] as const;
  const adjusted = timings.some((k) => dcs[k] !== undefined && dcs[k] !== null && Number(dcs[k]) !== config[k])
    || notes.some((n) => n.path === 'loop_wait' && n.message.includes('must not exceed ttl'));
  if (adjusted) for (const k of timings) out[k] = config[k];
  return out;
}

function parseBootstrap(issues: Issues, root: Obj): BootstrapSettings | undefined {
  if (root.bootstrap === undefined || root.bootstrap === null) return undefined;
  const boot = section(issues, root, 'bootstrap', '');
  if (boot === undefined) return undefined;
  const path = 'bootstrap';
  const method = str(issues, boot, 'method', path) ?? 'initdb';
  if (method !== 'initdb') issues.error(sub(path, 'method'), `only initdb is supported by Vigil, got ${show(method)}`);
  checkKeys(issues, boot, path, ['dcs', 'method', 'initdb', 'pg_hba', 'users', ...(method !== 'initdb' ? [method] : [])], {
    post_bootstrap: refused('the script would not run after the cluster is initialized'),
    post_init: refused('the script would not run after the cluster is initialized'),
  });
  const dcs = parseBootstrapDcs(issues, boot);
  const initdb = renderOptions(issues, boot, 'initdb', path, INITDB_FORBIDDEN, 'initdb');
  const pgHba = stringList(issues, boot, 'pg_hba', path) ?? [];
  const users: BootstrapSettings['users'] = {};
  const usersSec = section(issues, boot, 'users', path);
  if (usersSec !== undefined) {
    for (const [user, spec] of Object.entries(usersSec)) {
      const up = sub(sub(path, 'users'), user);
      if (!isMap(spec)) {
        issues.error(up, `expected a mapping with password and options, got ${describe(spec)}`);
        continue;
      }
      checkKeys(issues, spec, up, ['password', 'options']);
      const password = str(issues, spec, 'password', up, true);
      const options = typeof spec.options === 'string'
        ? spec.options.split(',').map((s) => s.trim()).filter((s) => s !== '')
        : (stringList(issues, spec, 'options', up) ?? []);
      if (password !== undefined) users[user] = { password, options };
    }
  }
  return { dcs, initdb, pgHba, users };
}

const BOOL_TAGS = ['nofailover', 'noloadbalance', 'clonefrom', 'nosync', 'nostream'] as const;

function parseTags(issues: Issues, root: Obj): Tags {
  const sec = section(issues, root, 'tags', '');
  const tags: Tags = {};
  if (sec === undefined) return tags;
  for (const [key, value] of Object.entries(sec)) {
    if (value === null || value === undefined) continue;
    if ((BOOL_TAGS as readonly string[]).includes(key)) {
      const b = bool(issues, sec, key, 'tags');
      if (b !== undefined) tags[key] = b;
    } else if (key === 'failover_priority' || key === 'sync_priority') {
      const n = int(issues, sec, key, 'tags', 0);
      if (n !== undefined) tags[key] = n;
    } else if (key === 'replicatefrom') {
      const s = str(issues, sec, key, 'tags');
      if (s !== undefined) tags.replicatefrom = s;
    } else {
      tags[key] = value instanceof Date ? value.toISOString() : value;
    }
  }
  if (tags.nostream === true) {
    issues.error('tags.nostream', 'not implemented by Vigil yet (the member would still stream from its upstream and get a slot); remove it to start');
  }
  if (tags.replicatefrom !== undefined) {
    issues.error('tags.replicatefrom', 'not implemented by Vigil yet (the upstream replica would not create the replication slot, so the member could not stream); remove it to start');
  }
  if (tags.nofailover !== undefined && tags.failover_priority !== undefined) {
    issues.warn('tags', 'both nofailover and failover_priority are set: nofailover wins');
  }
  if (tags.nosync !== undefined && tags.sync_priority !== undefined) {
    issues.warn('tags', 'both nosync and sync_priority are set: nosync wins');
  }
  return tags;
}

function parseLogLevel(issues: Issues, root: Obj): string {
  const log = section(issues, root, 'log', '');
  if (log === undefined) return 'info';
  const unsupported: Record<string, string | Refusal> = Object.fromEntries([
    ...['type', 'format', 'dateformat', 'static_fields', 'loggers'].map((k) => [k, refused('log lines would keep Vigil\'s own format, so parsers and alerts could miss them')]),
    ...['dir', 'mode', 'file_num', 'file_size'].map((k) => [k, refused('logs would go to standard output, not to rotated files')]),
    ...['traceback_level', 'max_queue_size', 'deduplicate_heartbeat_logs'].map((k) => [k, NOT_APPLICABLE]),
  ]);
  checkKeys(issues, log, 'log', ['level'], unsupported);
  const level = str(issues, log, 'level', 'log');
  if (level === undefined) return 'info';
  const mapped = LOG_LEVELS[level.toUpperCase()];
  if (mapped === undefined) {
    issues.error('log.level', `expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got ${show(level)}`);
    return 'info';
  }
  return mapped;
}

const WATCHDOG_DEFAULTS: WatchdogSettings = { mode: 'automatic', device: '/dev/watchdog', safetyMargin: 5 };

/**
 * The watchdog section (Patroni's default when absent: automatic, /dev/watchdog, margin 5). Whether
 * the device can really be used (its timeout against ttl) is decided at run time by
 * fence/watchdog.ts planWatchdog; here `required` is an error only when the device cannot work at
 * all (missing or not writable), and an explicit `automatic` with such a device warns.
 */
function parseWatchdog(issues: Issues, root: Obj): WatchdogSettings {
  const wd = root.watchdog;
  if (wd === undefined || wd === null) return { ...WATCHDOG_DEFAULTS };
  if (!isMap(wd)) {
    issues.error('watchdog', `expected a mapping, got ${describe(wd)}`);
    return { ...WATCHDOG_DEFAULTS, mode: 'off' };
  }
  checkKeys(issues, wd, 'watchdog', ['mode', 'device', 'safety_margin']);
  let mode: WatchdogSettings['mode'];
  const raw = wd.mode === false ? 'off' : wd.mode === undefined || wd.mode === null ? 'automatic' : String(wd.mode).toLowerCase();
  if (['off', 'false', 'disable', 'disabled'].includes(raw)) mode = 'off';
  else if (raw === 'automatic' || raw === 'auto') mode = 'automatic';
  else if (raw === 'required' || raw === 'require') mode = 'required';
  else {
    // Patroni's reading: an unrecognised mode disables the watchdog.
    issues.warn('watchdog.mode', `expected off, automatic or required, got ${describe(wd.mode)}: the watchdog is off`);
    mode = 'off';
  }
  let device = str(issues, wd, 'device', 'watchdog') ?? WATCHDOG_DEFAULTS.device;
  if (!device.startsWith('/')) {
    issues.error('watchdog.device', `expected an absolute path, got ${show(device)}`);
    device = WATCHDOG_DEFAULTS.device;
  }
  const safetyMargin = int(issues, wd, 'safety_margin', 'watchdog', -1) ?? WATCHDOG_DEFAULTS.safetyMargin;
  if (mode !== 'off' && !issues.list.some((i) => i.path === 'watchdog.device')) {
    let why: string | undefined;
    if (!existsSync(device)) why = `device ${device} does not exist`;
    else {
      try {
        accessSync(device, fsConstants.W_OK);
      } catch (err) {
        why = `device ${device} is not writable (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
      }
    }
    if (why !== undefined && mode === 'required') issues.error('watchdog.mode', `required is not supported on this host: ${why}`);
    else if (why !== undefined) issues.warn('watchdog', `${why}: the node runs without a watchdog`);
  }
  return { mode, device, safetyMargin };
}

/** Namespace as a path prefix: "service" and "/service/" both give "/service/". */
function normalizeNamespace(ns: string | undefined): string {
  const trimmed = (ns ?? '').replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
  return `/${trimmed === '' ? 'service' : trimmed}/`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Validates the merged document (file + environment) and builds the Config. */
function buildConfig(root: Obj, issues: Issues): Config | undefined {
  checkKeys(issues, root, '', ['scope', 'name', 'namespace', 'restapi', 'etcd3', 'bootstrap', 'postgresql', 'tags', 'log', 'watchdog'], {
    etcd: refused('the etcd v2 API: Vigil runs on etcd3 only for now'),
    consul: refused('Consul as the DCS: Vigil runs on etcd3 only for now'),
    zookeeper: refused('ZooKeeper as the DCS: Vigil runs on etcd3 only for now'),
    exhibitor: refused('Exhibitor as the DCS: Vigil runs on etcd3 only for now'),
    kubernetes: refused('Kubernetes as the DCS: Vigil runs on etcd3 only for now'),
    raft: refused('Raft as the DCS: Vigil runs on etcd3 only for now'),
    citus: refused('Citus clusters'),
    ctl: 'read by vigil (the control commands) only; the agent ignores it',
    thread_pool_size: NOT_APPLICABLE,
    thread_stack_size: NOT_APPLICABLE,
  });
  const scope = str(issues, root, 'scope', '', true);
  const name = str(issues, root, 'name', '', true);
  if (name === RESERVED_NAME) issues.error('name', `${show(name)} is reserved`);
  else if (name !== undefined && name.includes('/')) issues.error('name', `must not contain "/", got ${show(name)}`);
  if (scope !== undefined && scope.includes('/')) issues.error('scope', `must not contain "/", got ${show(scope)}`);
  const namespace = normalizeNamespace(str(issues, root, 'namespace', ''));
  const logLevel = parseLogLevel(issues, root);
  const restapi = parseRestApi(issues, root);
  const etcd3 = parseEtcd3(issues, root);
  const bootstrap = parseBootstrap(issues, root);
  const dcsPg = isMap(root.bootstrap) && isMap(root.bootstrap.dcs) && isMap(root.bootstrap.dcs.postgresql) ? root.bootstrap.dcs.postgresql : undefined;
  const postgresql = parsePostgresql(issues, root, name, dcsPg);
  const tags = parseTags(issues, root);
  const watchdog = parseWatchdog(issues, root);

  if (issues.hasErrors || scope === undefined || name === undefined || restapi === undefined || etcd3 === undefined || postgresql === undefined) {
    return undefined;
  }
  return deepFreeze({ scope, namespace, name, restapi, etcd3, bootstrap, postgresql, tags, logLevel, watchdog });
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Parses YAML 1.1 text; YAML errors become issues (duplicate keys warn: the last one wins, as in Patroni). */
function parseText(text: string, issues: Issues, label: string): unknown {
  const doc = parseDocument(text, YAML_OPTIONS);
  let fatal = false;
  for (const e of doc.errors) {
    // First line of a pretty message: "<what> at line L, column C:".
    const msg = `${label}${(e.message.split('\n')[0] ?? '').replace(/:$/, '')}`;
    if (e.code === 'DUPLICATE_KEY') issues.warn('', `${msg}; the last value wins`);
    else {
      issues.error('', `YAML syntax error: ${msg}`);
      fatal = true;
    }
  }
  for (const w of doc.warnings) issues.warn('', `YAML: ${label}${w.message.split('\n')[0]}`);
  if (fatal) return undefined;
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    issues.error('', `YAML: ${label}${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

function finish(raw: unknown, env: NodeJS.ProcessEnv, issues: Issues): { config: Config | undefined; issues: ConfigIssue[] } {
  if (raw === undefined || raw === null) {
    issues.error('', 'the configuration is empty');
    return { config: undefined, issues: issues.list };
  }
  if (!isMap(raw)) {
    issues.error('', `expected a mapping at the top level, got ${describe(raw)}`);
    return { config: undefined, issues: issues.list };
  }
  const root = structuredClone(raw);
  applyEnvironment(root, env, issues);
  const config = buildConfig(root, issues);
  return { config, issues: issues.list };
}

/**
 * Loads a configuration from YAML text plus PATRONI_* variables of `env` (environment wins).
 * Never throws; `config` is undefined when any issue is an error. `opts.fileName` only labels
 * messages about the text itself.
 */
export function loadConfig(text: string, env: NodeJS.ProcessEnv, opts?: { fileName?: string }): { config: Config | undefined; issues: ConfigIssue[] } {
  const issues = new Issues();
  const label = opts?.fileName ? `${opts.fileName}: ` : '';
  const raw = parseText(text, issues, label);
  if (raw === undefined && issues.hasErrors) return { config: undefined, issues: issues.list };
  return finish(raw, env, issues);
}

/** Patroni's directory merge: mappings merge recursively, later files win, null deletes a key. */
function mergeInto(target: Obj, source: Obj): void {
  for (const [k, v] of Object.entries(source)) {
    if (v === null) delete target[k];
    else if (isMap(v) && isMap(target[k])) mergeInto(target[k] as Obj, v);
    else target[k] = v;
  }
}

/**
 * Loads a configuration file, or a directory whose *.yml / *.yaml files are merged in sorted order.
 * Throws an Error naming the path when it cannot be read (missing, permission, not a file or
 * directory, empty directory); configuration problems are returned as issues.
 */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config | undefined; issues: ConfigIssue[] }> {
  // "ENOENT: no such file or directory, open 'x'" -> "ENOENT: no such file or directory".
  const what = (err: unknown): string => (err instanceof Error ? err.message.replace(/, \w+ '.*'$/, '') : String(err));
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new Error(`cannot read configuration ${path}: ${what(err)}`, { cause: err });
  }
  if (!info.isDirectory()) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read configuration ${path}: ${what(err)}`, { cause: err });
    }
    // No file label: callers print the path in front of every issue (see formatIssues).
    return loadConfig(text, env);
  }
  let names: string[];
  try {
    names = (await readdir(path)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (err) {
    throw new Error(`cannot read configuration directory ${path}: ${what(err)}`, { cause: err });
  }
  if (names.length === 0) throw new Error(`configuration directory ${path} has no .yml or .yaml files`);
  const issues = new Issues();
  const merged: Obj = {};
  let fatal = false;
  for (const n of names) {
    const file = join(path, n);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read configuration ${file}: ${what(err)}`, { cause: err });
    }
    const raw = parseText(text, issues, `${n}: `);
    if (raw === undefined && issues.hasErrors) fatal = true;
    else if (raw === undefined || raw === null) continue;
    else if (!isMap(raw)) {
      issues.error('', `${n}: expected a mapping at the top level, got ${describe(raw)}`);
      fatal = true;
    } else mergeInto(merged, raw);
  }
  if (fatal) return { config: undefined, issues: issues.list };
  return finish(Object.keys(merged).length === 0 ? null : merged, env, issues);
}
