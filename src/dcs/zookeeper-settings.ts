// The `zookeeper` configuration section (patroni-interfaces.md §4.2.6) and its PATRONI_ZOOKEEPER_*
// environment variables (§4.6), as a pure function: raw section + environment -> settings and
// issues. Every key Patroni reads there is implemented: hosts (required: a list or a comma-separated
// string of host[:port], port 2181 by default), use_ssl, cacert, cert, key, key_password, verify,
// set_acls (principal -> permissions; principal `scheme:credential`, scheme x509 when it has no
// ':'), auth_data (scheme -> credential). Unknown keys are warned about by name. A host with a
// chroot path (`h:2181/app`) is refused: Vigil places keys under /<namespace>/<scope> only.

import { parse as parseYaml } from 'yaml';

import { Perms, type Acl } from './zookeeper-jute.ts';

export interface ZookeeperSettings {
  /** host:port, in order. */
  hosts: string[];
  useSsl: boolean;
  /** TLS files (use_ssl): CA bundle, client certificate, its key, the key's passphrase. */
  cacert?: string;
  cert?: string;
  key?: string;
  keyPassword?: string;
  /** Check the server's certificate (use_ssl). */
  verify: boolean;
  /** ACL given to the znodes Vigil creates; undefined: world:anyone with every permission. */
  acl?: Acl[];
  /** Credentials added to every connection. */
  auth: { scheme: string; credential: string }[];
}

export interface SettingIssue {
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

const KNOWN = ['hosts', 'use_ssl', 'cacert', 'cert', 'key', 'key_password', 'verify', 'set_acls', 'auth_data'];
/** Injected by Patroni from the global configuration; not set in the section. */
const INJECTED = ['ttl', 'loop_wait', 'retry_timeout', 'namespace', 'scope', 'name'];
const PERMS: Record<string, number> = { CREATE: Perms.CREATE, READ: Perms.READ, WRITE: Perms.WRITE, DELETE: Perms.DELETE, ADMIN: Perms.ADMIN, ALL: Perms.ALL };

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** PATRONI_ZOOKEEPER_<KEY> values, typed as Patroni does (YAML list/map, bool). */
function fromEnv(env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const yaml = (v: string, wrap: '[]' | '{}'): unknown => {
    const t = v.trim();
    try {
      return parseYaml(t.startsWith(wrap[0] as string) ? t : `${wrap[0]}${t}${wrap[1]}`, { version: '1.1' }) as unknown;
    } catch {
      return v;
    }
  };
  const bool = (v: string): unknown => (/^(true|yes|on|1)$/i.test(v.trim()) ? true : /^(false|no|off|0)$/i.test(v.trim()) ? false : v);
  for (const key of KNOWN) {
    const v = env[`PATRONI_ZOOKEEPER_${key.toUpperCase()}`];
    if (v === undefined) continue;
    if (key === 'hosts') out[key] = yaml(v, '[]');
    else if (key === 'set_acls' || key === 'auth_data') out[key] = yaml(v, '{}');
    else if (key === 'use_ssl' || key === 'verify') out[key] = bool(v);
    else out[key] = v;
  }
  return out;
}

export function parseZookeeperSettings(raw: unknown, env: Record<string, string | undefined> = {}): { settings: ZookeeperSettings | undefined; issues: SettingIssue[] } {
  const issues: SettingIssue[] = [];
  const err = (path: string, message: string): void => void issues.push({ path: `zookeeper.${path}`, message, severity: 'error' });
  const warn = (path: string, message: string): void => void issues.push({ path: `zookeeper.${path}`, message, severity: 'warning' });
  if (raw !== undefined && raw !== null && !isMap(raw)) {
    issues.push({ path: 'zookeeper', message: 'must be a mapping', severity: 'error' });
    return { settings: undefined, issues };
  }
  const s: Record<string, unknown> = { ...(raw ?? {}), ...fromEnv(env) };
  for (const k of Object.keys(s)) {
    if (INJECTED.includes(k)) warn(k, `${k} is taken from the global configuration; ignored here`);
    else if (!KNOWN.includes(k)) warn(k, `unknown key ${k} (Patroni's zookeeper section has: ${KNOWN.join(', ')}); ignored`);
  }

  const hosts: string[] = [];
  const rawHosts = typeof s.hosts === 'string' ? s.hosts.split(',') : s.hosts;
  if (!Array.isArray(rawHosts) || rawHosts.length === 0) {
    err('hosts', 'required: a list of host:port, or a comma-separated string');
  } else {
    for (const h of rawHosts) {
      const t = typeof h === 'string' ? h.trim() : '';
      if (t === '') {
        err('hosts', `not a host: ${JSON.stringify(h)}`);
        continue;
      }
      if (t.includes('/')) {
        err('hosts', `${t}: a chroot path is not supported (keys live under /<namespace>/<scope>)`);
        continue;
      }
      const m = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+)(?::(\d+))?$/.exec(t);
      const bracketless = /^[0-9a-fA-F:]+$/.test(t) && t.split(':').length > 2; // bare IPv6, no port
      if (bracketless) {
        hosts.push(`[${t}]:2181`);
        continue;
      }
      const port = m?.[2] === undefined ? 2181 : Number(m[2]);
      if (!m || !Number.isInteger(port) || port < 1 || port > 65535) err('hosts', `${t}: expected host or host:port`);
      else hosts.push(`${m[1]}:${port}`);
    }
  }

  const boolOf = (k: string, dflt: boolean): boolean => {
    const v = s[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v === 'boolean') return v;
    err(k, 'must be true or false');
    return dflt;
  };
  const strOf = (k: string): string | undefined => {
    const v = s[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && v !== '') return v;
    err(k, 'must be a non-empty string');
    return undefined;
  };
  const useSsl = boolOf('use_ssl', false);
  const verify = boolOf('verify', true);
  const files = { cacert: strOf('cacert'), cert: strOf('cert'), key: strOf('key'), keyPassword: strOf('key_password') };
  if (!useSsl) {
    for (const k of ['cacert', 'cert', 'key', 'key_password']) if (s[k] !== undefined && s[k] !== null) warn(k, `${k} has no effect without use_ssl: true`);
  }
  if (files.key !== undefined && files.cert === undefined) err('key', 'key needs cert');

  let acl: Acl[] | undefined;
  if (s.set_acls !== undefined && s.set_acls !== null) {
    if (!isMap(s.set_acls)) {
      err('set_acls', 'must be a mapping of principal to a list of permissions');
    } else {
      acl = [];
      for (const [principal, perms] of Object.entries(s.set_acls)) {
        const colon = principal.indexOf(':');
        const scheme = colon < 0 ? 'x509' : principal.slice(0, colon);
        const id = colon < 0 ? principal : principal.slice(colon + 1);
        let bits = 0;
        const list = typeof perms === 'string' ? [perms] : perms;
        if (!Array.isArray(list) || list.length === 0) {
          err(`set_acls.${principal}`, `a list of permissions (${Object.keys(PERMS).join(', ')})`);
          continue;
        }
        for (const p of list) {
          const b = typeof p === 'string' ? PERMS[p.toUpperCase()] : undefined;
          if (b === undefined) err(`set_acls.${principal}`, `unknown permission ${JSON.stringify(p)} (${Object.keys(PERMS).join(', ')})`);
          else bits |= b;
        }
        acl.push({ scheme, id, perms: bits });
      }
    }
  }

  const auth: { scheme: string; credential: string }[] = [];
  if (s.auth_data !== undefined && s.auth_data !== null) {
    if (!isMap(s.auth_data)) err('auth_data', 'must be a mapping of scheme to credential');
    else {
      for (const [scheme, credential] of Object.entries(s.auth_data)) {
        if (typeof credential !== 'string') err(`auth_data.${scheme}`, 'the credential must be a string');
        else auth.push({ scheme, credential });
      }
    }
  }

  if (issues.some((i) => i.severity === 'error')) return { settings: undefined, issues };
  const settings: ZookeeperSettings = { hosts, useSsl, verify, auth };
  if (files.cacert !== undefined) settings.cacert = files.cacert;
  if (files.cert !== undefined) settings.cert = files.cert;
  if (files.key !== undefined) settings.key = files.key;
  if (files.keyPassword !== undefined) settings.keyPassword = files.keyPassword;
  if (acl !== undefined) settings.acl = acl;
  return { settings, issues };
}
