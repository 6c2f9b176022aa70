// PATRONI_* environment variables applied over the parsed file, as Patroni reads them.

import { parse as parseYaml } from 'yaml';
import { isMap, type Issues, type Obj } from './fields.ts';
import { LIBPQ_AUTH_KEYS } from './postgresql.ts';
import { YAML_OPTIONS } from './yaml.ts';

const LOG_ENV = ['TYPE', 'LEVEL', 'TRACEBACK_LEVEL', 'FORMAT', 'DATEFORMAT', 'STATIC_FIELDS', 'MAX_QUEUE_SIZE', 'DIR', 'MODE', 'FILE_NUM', 'FILE_SIZE', 'LOGGERS', 'DEDUPLICATE_HEARTBEAT_LOGS'];
const RESTAPI_ENV = ['LISTEN', 'CONNECT_ADDRESS', 'CERTFILE', 'KEYFILE', 'KEYFILE_PASSWORD', 'CAFILE', 'CIPHERS', 'VERIFY_CLIENT', 'HTTP_EXTRA_HEADERS', 'HTTPS_EXTRA_HEADERS', 'ALLOWLIST', 'ALLOWLIST_INCLUDE_MEMBERS', 'REQUEST_QUEUE_SIZE', 'SERVER_TOKENS'];
const CTL_ENV = ['INSECURE', 'CACERT', 'CERTFILE', 'KEYFILE', 'KEYFILE_PASSWORD'];
const POSTGRESQL_ENV = ['LISTEN', 'CONNECT_ADDRESS', 'PROXY_ADDRESS', 'CONFIG_DIR', 'DATA_DIR', 'PGPASS', 'BIN_DIR'];
const PG_BINARIES = ['PG_CTL', 'INITDB', 'PG_CONTROLDATA', 'PG_BASEBACKUP', 'POSTGRES', 'PG_ISREADY', 'PG_REWIND'];
// SSLNEGOTIATION is read so that it is refused as the file's key is (PostgreSQL 15's libpq does not know it).
const CREDENTIAL_ENV = ['USERNAME', 'PASSWORD', ...LIBPQ_AUTH_KEYS.map((k) => k.toUpperCase()), 'SSLNEGOTIATION'];
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

/** PATRONI_LOG_FORMAT: a YAML list of fields (json) when written as one (`[...]`), else a format string. */
function envLogFormat(value: string): unknown {
  return !value.includes('%(') && value.trim().startsWith('[') ? envList(value) : value;
}

/**
 * Applies PATRONI_* variables to the parsed file (in place), recording for every path set which
 * variable supplied it. Empty variables are ignored, as in Patroni.
 */
export function applyEnvironment(root: Obj, env: NodeJS.ProcessEnv, issues: Issues): void {
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
  simple('PATRONI_LOGFORMAT', ['log', 'format'], envLogFormat);
  simple('PATRONI_LOG_DATEFMT', ['log', 'dateformat']);
  for (const k of LOG_ENV) {
    simple(`PATRONI_LOG_${k}`, ['log', k.toLowerCase()], k === 'STATIC_FIELDS' || k === 'LOGGERS' ? envMap : k === 'FORMAT' ? envLogFormat : undefined);
  }
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
