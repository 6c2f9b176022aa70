// Parsing of Patroni's `etcd` section (v2 API) and of the etcd3 keys the configuration loader does
// not take yet (srv, srv_suffix, proxy, use_proxies), as one pure function for both sections:
// (raw section, environment) -> { settings, issues }. Keys (patroni-interfaces.md §4.2.6):
//   host (h[:p]), hosts (list or comma string), url (http[s]://h:p, comma-separated), proxy (an URL:
//   used as the only endpoint, with use_proxies), srv (DNS SRV domain; hosts, when also set, are
//   the fallback), srv_suffix, use_proxies (no member discovery), protocol (http|https; else the
//   scheme of the URLs), username, password, cacert, cert, key, key_password. Default port 2379.
// Environment (§4.6): PATRONI_<ETCD|ETCD3>_<HOST|HOSTS|URL|PROXY|SRV|SRV_SUFFIX|PROTOCOL|
// USE_PROXIES|USERNAME|PASSWORD|CACERT|CERT|KEY|KEY_PASSWORD> override the file; a host given in
// the environment (HOST, HOSTS, URL, PROXY, SRV) replaces every way the file names the servers. A
// loader that already merged these variables into the section may pass them again: same result.
// Unknown keys are errors naming the key.

export interface EtcdSettings {
  /** host:port seeds (empty when only srv is set). */
  hosts: string[];
  protocol: 'http' | 'https';
  srv?: string;
  srvSuffix?: string;
  useProxies?: boolean;
  username?: string;
  password?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  keyPassword?: string;
}

export interface SettingIssue {
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

const KEYS = ['host', 'hosts', 'url', 'proxy', 'srv', 'srv_suffix', 'use_proxies', 'protocol', 'username', 'password', 'cacert', 'cert', 'key', 'key_password'];
const SERVER_KEYS = ['host', 'hosts', 'url', 'proxy', 'srv'];
const DEFAULT_PORT = 2379;

type Obj = Record<string, unknown>;

const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'a list' : isMap(v) ? 'a map' : String(v);
}

/** host[:port] or http(s)://host[:port][/]: host:port and the scheme, or an error message. */
export function parseEndpoint(value: string): { hostPort: string; scheme?: 'http' | 'https' } | string {
  let s = value.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\/([^/]*)\/?$/i.exec(s);
  if (m) {
    scheme = (m[1] as string).toLowerCase() as 'http' | 'https';
    s = m[2] as string;
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    return `unsupported scheme in ${JSON.stringify(value)}: expected http or https`;
  }
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  const plain = /^([^:[\]]+)(?::(\d+))?$/.exec(s);
  const parts = v6 ?? plain;
  if (!parts || parts[1] === '') return `expected host:port, got ${JSON.stringify(value)}`;
  const port = parts[2] === undefined ? DEFAULT_PORT : Number(parts[2]);
  if (!(port >= 1 && port <= 65535)) return `port out of range in ${JSON.stringify(value)}`;
  const host = v6 ? `[${parts[1]}]` : (parts[1] as string);
  return scheme === undefined ? { hostPort: `${host}:${port}` } : { hostPort: `${host}:${port}`, scheme };
}

function envList(v: string): unknown {
  const t = v.trim();
  if (t.startsWith('[') && t.endsWith(']')) {
    return t.slice(1, -1).split(',').map((x) => x.trim().replace(/^["']|["']$/g, '')).filter((x) => x !== '');
  }
  return t;
}

function envBool(v: string): unknown {
  const t = v.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(t)) return true;
  if (['false', 'no', 'off', '0'].includes(t)) return false;
  return v;
}

/** The section with PATRONI_<SECTION>_* applied. */
function withEnv(raw: Obj, section: 'etcd' | 'etcd3', env: Record<string, string | undefined>, origins: Map<string, string>): Obj {
  const out: Obj = { ...raw };
  const prefix = `PATRONI_${section.toUpperCase()}_`;
  const given = KEYS.filter((k) => env[prefix + k.toUpperCase()] !== undefined);
  if (given.some((k) => SERVER_KEYS.includes(k))) {
    for (const k of SERVER_KEYS) if (!given.includes(k)) delete out[k];
  }
  for (const k of given) {
    const v = env[prefix + k.toUpperCase()] as string;
    out[k] = k === 'hosts' ? envList(v) : k === 'use_proxies' ? envBool(v) : v;
    origins.set(k, prefix + k.toUpperCase());
  }
  return out;
}

/**
 * Parse an `etcd` (v2) or `etcd3` section. settings is undefined when an error was found (every
 * error is in issues).
 */
export function parseEtcdSettings(
  raw: unknown,
  env: Record<string, string | undefined> = {},
  section: 'etcd' | 'etcd3' = 'etcd',
): { settings: EtcdSettings | undefined; issues: SettingIssue[] } {
  const issues: SettingIssue[] = [];
  const origins = new Map<string, string>();
  const path = (k: string): string => origins.get(k) ?? `${section}.${k}`;
  const error = (k: string, message: string): void => void issues.push({ path: k === '' ? section : path(k), message, severity: 'error' });
  const warn = (k: string, message: string): void => void issues.push({ path: k === '' ? section : path(k), message, severity: 'warning' });
  if (raw !== undefined && raw !== null && !isMap(raw)) {
    error('', `expected a map, got ${show(raw)}`);
    return { settings: undefined, issues };
  }
  const sec = withEnv(isMap(raw) ? raw : {}, section, env, origins);
  for (const k of Object.keys(sec)) {
    if (!KEYS.includes(k)) error(k, `unknown key (the ${section} section takes: ${KEYS.join(', ')})`);
  }
  const str = (k: string): string | undefined => {
    const v = sec[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && (k === 'password' || k === 'username' || k === 'key_password')) return String(v);
    error(k, `expected a string, got ${show(v)}`);
    return undefined;
  };

  const hosts: string[] = [];
  const schemes = new Set<string>();
  const add = (value: unknown, k: string): void => {
    if (typeof value !== 'string' || value.trim() === '') {
      error(k, `expected host:port, got ${show(value)}`);
      return;
    }
    const e = parseEndpoint(value);
    if (typeof e === 'string') {
      error(k, e);
      return;
    }
    hosts.push(e.hostPort);
    if (e.scheme) schemes.add(e.scheme);
  };
  const errorsBefore = issues.length;
  let useProxies: boolean | undefined;
  const proxy = str('proxy');
  const srv = str('srv');
  const hostsValue = sec.hosts;
  if (proxy !== undefined) {
    // Patroni: the proxy is the only endpoint, and no members are discovered behind it.
    add(proxy, 'proxy');
    useProxies = true;
    for (const k of ['host', 'hosts', 'url', 'srv']) if (sec[k] !== undefined && sec[k] !== null) warn(k, 'ignored: proxy is set');
  } else if (hostsValue !== undefined && hostsValue !== null && hostsValue !== '' && !(Array.isArray(hostsValue) && hostsValue.length === 0)) {
    if (typeof hostsValue === 'string') hostsValue.split(',').map((h) => h.trim()).filter((h) => h !== '').forEach((h) => add(h, 'hosts'));
    else if (Array.isArray(hostsValue)) hostsValue.forEach((h) => add(h, 'hosts'));
    else error('hosts', `expected a list or a comma-separated string of host:port, got ${show(hostsValue)}`);
  } else if (sec.host !== undefined && sec.host !== null) {
    add(sec.host, 'host');
  } else if (sec.url !== undefined && sec.url !== null) {
    const url = str('url');
    if (url !== undefined) url.split(',').forEach((u) => add(u.trim(), 'url'));
  } else if (srv === undefined) {
    error('host', 'required: one of host, hosts, url, proxy or srv');
  }
  if (srv !== undefined && proxy === undefined && srv.trim() === '') error('srv', 'empty: give a DNS domain');
  const srvSuffix = str('srv_suffix');
  if (srvSuffix !== undefined && srv === undefined) warn('srv_suffix', 'ignored: srv is not set');
  if (hosts.length === 0 && srv === undefined && issues.length === errorsBefore) error('hosts', 'empty: give at least one host:port');

  let protocol: 'http' | 'https' = 'http';
  const proto = str('protocol');
  if (proto !== undefined) {
    const p = proto.toLowerCase();
    if (p === 'http' || p === 'https') protocol = p;
    else error('protocol', `expected http or https, got ${JSON.stringify(proto)}`);
    if (schemes.size > 0 && !schemes.has(p)) warn('protocol', `${p} used; the URLs say ${[...schemes].join(', ')}`);
  } else if (schemes.size === 1) {
    protocol = [...schemes][0] as 'http' | 'https';
  }
  if (schemes.size > 1) error('hosts', 'the URLs mix http:// and https://');

  const up = sec.use_proxies;
  if (up !== undefined && up !== null) {
    if (typeof up === 'boolean') useProxies = useProxies === true || up;
    else error('use_proxies', `expected true or false, got ${show(up)}`);
  }

  const out: EtcdSettings = { hosts, protocol };
  if (srv !== undefined && proxy === undefined) out.srv = srv.trim();
  if (srvSuffix !== undefined && out.srv !== undefined) out.srvSuffix = srvSuffix;
  if (useProxies !== undefined) out.useProxies = useProxies;
  for (const k of ['username', 'password', 'cacert', 'cert', 'key'] as const) {
    const v = str(k);
    if (v !== undefined) out[k] = v;
  }
  const keyPassword = str('key_password');
  if (keyPassword !== undefined) out.keyPassword = keyPassword;
  if ((out.username === undefined) !== (out.password === undefined)) {
    error(out.username === undefined ? 'username' : 'password', 'required when the other of username/password is set');
  }
  if (out.key !== undefined && out.cert === undefined) error('key', 'set without cert');
  const tls = (['cacert', 'cert', 'key'] as const).filter((k) => out[k] !== undefined);
  if (protocol === 'http' && tls.length > 0) warn('', `${tls.join(', ')} ignored: protocol is http (set protocol: https)`);
  const failed = issues.some((i) => i.severity === 'error');
  return { settings: failed ? undefined : out, issues };
}
