// The `consul` section of Patroni's configuration (patroni-interfaces.md §4.2.6, §4.6), as a pure
// function: (raw section, environment) -> settings and issues. Every key Patroni reads there is
// implemented: host (h[:p], default 127.0.0.1:8500), url (scheme://h[:p], wins over host), port
// (wins over the port in host), scheme, token, verify, cacert, cert, key, dc, consistency,
// checks, register_service, service_tags, service_check_interval,
// service_check_tls_server_name. Other keys are warned about by name and ignored.
//
// Environment: PATRONI_CONSUL_<KEY> for HOST, PORT, URL, TOKEN, VERIFY, CACERT, CERT, KEY, DC,
// CONSISTENCY, CHECKS, REGISTER_SERVICE, SERVICE_TAGS, SERVICE_CHECK_INTERVAL,
// SERVICE_CHECK_TLS_SERVER_NAME win over the file (not SCHEME: Patroni does not read it). HOST or
// URL from the environment replaces both host and url of the file. Empty variables are ignored.
// A caller whose loader already merged these variables passes an empty env.

import { parse as parseYaml } from 'yaml';

import { isSecretKey, show } from '../config/dynamic.ts';

export interface ConsulSettings {
  /** host:port of the Consul agent. */
  host: string;
  scheme: 'http' | 'https';
  /** ACL token, sent as X-Consul-Token. */
  token?: string | undefined;
  /** Check the agent's TLS certificate (https). */
  verify: boolean;
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** Datacenter (?dc=); default: the agent's. */
  dc?: string | undefined;
  /** Read mode of the daemon's cluster reads. */
  consistency: 'default' | 'consistent' | 'stale';
  /** Check IDs the session is bound to (Patroni's default: none). */
  checks: string[];
  registerService: boolean;
  serviceTags: string[];
  /** Interval of the service's HTTP check, as Consul takes it ("5s"). */
  serviceCheckInterval: string;
  serviceCheckTlsServerName?: string | undefined;
}

export interface ConsulSettingsIssue {
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

const KNOWN = [
  'host', 'url', 'port', 'scheme', 'token', 'verify', 'cacert', 'cert', 'key', 'dc', 'consistency', 'checks',
  'register_service', 'service_tags', 'service_check_interval', 'service_check_tls_server_name',
] as const;

const ENV_KEYS = [
  'HOST', 'PORT', 'URL', 'TOKEN', 'VERIFY', 'CACERT', 'CERT', 'KEY', 'DC', 'CONSISTENCY', 'CHECKS',
  'REGISTER_SERVICE', 'SERVICE_TAGS', 'SERVICE_CHECK_INTERVAL', 'SERVICE_CHECK_TLS_SERVER_NAME',
] as const;

const DEFAULT_PORT = 8500;

function toBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(s)) return true;
    if (['false', 'no', 'off', '0'].includes(s)) return false;
  }
  if (v === 1) return true;
  if (v === 0) return false;
  return undefined;
}

/** A YAML list from an environment value ("a,b" is read as [a,b]). */
function envList(value: string): unknown {
  const t = value.trim();
  try {
    return parseYaml(t.startsWith('[') ? t : `[${t}]`) as unknown;
  } catch {
    return value;
  }
}

/** Go duration syntax ("5s", "1m30s", "500ms"). */
const GO_DURATION = /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))*$/;

export function parseConsulSettings(raw: unknown, env: Record<string, string | undefined> = {}): { settings: ConsulSettings | undefined; issues: ConsulSettingsIssue[] } {
  const issues: ConsulSettingsIssue[] = [];
  const origin = new Map<string, string>();
  const error = (key: string, message: string): void => {
    const from = origin.get(key);
    issues.push({ path: `consul.${key}`, message: from ? `${message} (from ${from})` : message, severity: 'error' });
  };
  const warn = (key: string, message: string): void => {
    issues.push({ path: key === '' ? 'consul' : `consul.${key}`, message, severity: 'warning' });
  };
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    issues.push({ path: 'consul', message: 'expected a mapping', severity: 'error' });
    return { settings: undefined, issues };
  }
  const sec: Record<string, unknown> = { ...(raw as Record<string, unknown> | null | undefined ?? {}) };

  for (const k of ENV_KEYS) {
    const name = `PATRONI_CONSUL_${k}`;
    const v = env[name];
    if (v === undefined || v === '') continue;
    const key = k.toLowerCase();
    if (key === 'host' || key === 'url') {
      for (const other of ['host', 'url']) if (!origin.has(other)) delete sec[other];
    }
    sec[key] = k === 'CHECKS' || k === 'SERVICE_TAGS' ? envList(v) : v;
    origin.set(key, name);
  }

  for (const key of Object.keys(sec)) {
    if (!(KNOWN as readonly string[]).includes(key)) warn(key, 'unknown key, ignored (not a key of Patroni\'s consul section)');
  }

  // A mistyped value for a message: a token's only by its type; secrets nested inside are hidden.
  const shown = (key: string, v: unknown): string => (isSecretKey(key) ? `${Array.isArray(v) ? 'a list' : typeof v} (value hidden)` : show(v));
  const str = (key: string): string | undefined => {
    const v = sec[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') {
      error(key, `expected a string, got ${shown(key, v)}`);
      return undefined;
    }
    return v.trim() === '' ? undefined : v.trim();
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = sec[key];
    if (v === undefined || v === null) return dflt;
    const b = toBool(v);
    if (b === undefined) {
      error(key, `expected a boolean, got ${shown(key, v)}`);
      return dflt;
    }
    return b;
  };
  const list = (key: string): string[] => {
    const v = sec[key];
    if (v === undefined || v === null) return [];
    if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' && typeof x !== 'number')) {
      error(key, `expected a list of strings, got ${shown(key, v)}`);
      return [];
    }
    return v.map(String);
  };

  // Where the agent is.
  let scheme: 'http' | 'https' = 'http';
  let hostname = '127.0.0.1';
  let port = DEFAULT_PORT;
  const hostPort = (text: string, key: string): { host: string; port: number | undefined } | undefined => {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:/\s[\]]+)(?::(\d+))?$/.exec(text);
    if (!m) {
      error(key, `expected host or host:port, got ${JSON.stringify(text)}`);
      return undefined;
    }
    const p = m[2] === undefined ? undefined : Number(m[2]);
    if (p !== undefined && (p < 1 || p > 65535)) {
      error(key, `port must be 1-65535, got ${p}`);
      return undefined;
    }
    return { host: m[1] as string, port: p };
  };
  const url = str('url');
  const host = str('host');
  if (url !== undefined) {
    const m = /^([a-z]+):\/\/([^/]+)\/?$/i.exec(url);
    const s = m?.[1]?.toLowerCase();
    if (!m || (s !== 'http' && s !== 'https')) {
      error('url', `expected http://host:port or https://host:port, got ${JSON.stringify(url)}`);
    } else {
      scheme = s;
      const hp = hostPort(m[2] as string, 'url');
      if (hp) {
        hostname = hp.host;
        port = hp.port ?? DEFAULT_PORT;
      }
    }
    if (host !== undefined) warn('host', 'ignored: url is set');
  } else {
    if (host !== undefined) {
      const hp = hostPort(host, 'host');
      if (hp) {
        hostname = hp.host;
        port = hp.port ?? DEFAULT_PORT;
      }
    }
    const explicitPort = sec.port;
    if (explicitPort !== undefined && explicitPort !== null) {
      const p = typeof explicitPort === 'number' ? explicitPort : /^\s*\d+\s*$/.test(String(explicitPort)) ? Number(explicitPort) : NaN;
      if (!Number.isInteger(p) || p < 1 || p > 65535) error('port', `expected a port 1-65535, got ${JSON.stringify(explicitPort)}`);
      else port = p;
    }
    const sch = str('scheme');
    if (sch !== undefined) {
      const l = sch.toLowerCase();
      if (l === 'http' || l === 'https') scheme = l;
      else error('scheme', `expected http or https, got ${JSON.stringify(sch)}`);
    }
  }
  if (url !== undefined && sec.port !== undefined) warn('port', 'ignored: url is set');
  if (url !== undefined && sec.scheme !== undefined) warn('scheme', 'ignored: url is set');

  let consistency: ConsulSettings['consistency'] = 'default';
  const c = str('consistency');
  if (c !== undefined) {
    if (c === 'default' || c === 'consistent' || c === 'stale') consistency = c;
    else error('consistency', `expected default, consistent or stale, got ${JSON.stringify(c)}`);
  }

  let interval = '5s';
  const iv = sec.service_check_interval;
  if (typeof iv === 'number' && iv > 0) interval = `${iv}s`;
  else if (iv !== undefined && iv !== null) {
    const t = str('service_check_interval');
    if (t !== undefined && GO_DURATION.test(t)) interval = t;
    else if (t !== undefined || typeof iv !== 'string') error('service_check_interval', `expected a duration such as 5s, got ${JSON.stringify(iv)}`);
  }

  const settings: ConsulSettings = {
    host: hostname.includes(':') ? `[${hostname}]:${port}` : `${hostname}:${port}`,
    scheme,
    verify: bool('verify', true),
    consistency,
    checks: list('checks'),
    registerService: bool('register_service', false),
    serviceTags: list('service_tags'),
    serviceCheckInterval: interval,
  };
  const optional = { token: 'token', cacert: 'cacert', cert: 'cert', key: 'key', dc: 'dc', serviceCheckTlsServerName: 'service_check_tls_server_name' } as const;
  for (const [field, key] of Object.entries(optional) as [keyof typeof optional, string][]) {
    const v = str(key);
    if (v !== undefined) settings[field] = v;
  }
  if (settings.key !== undefined && settings.cert === undefined) error('key', 'set without cert');
  const tlsKeys = (['cacert', 'cert', 'key'] as const).filter((k) => settings[k] !== undefined);
  if (scheme === 'http' && tlsKeys.length > 0) warn('', `${tlsKeys.join(', ')} ignored: the scheme is http (set scheme: https, or url: https://host:port)`);
  if (scheme === 'http' && sec.verify !== undefined) warn('verify', 'ignored: the scheme is http');

  return { settings: issues.some((i) => i.severity === 'error') ? undefined : settings, issues };
}
