// Shared helpers for patronictl-like vigil subcommands (list, and later switchover, edit-config...):
// finding the configuration file, reading the few settings a control command needs from it
// without full validation (as patronictl does), --dcs-url, and CLI errors with exit codes.

import type { Etcd3TlsFiles } from '../dcs/etcd3-tls.ts';
import { notImplementedMessage, type DcsSections } from '../dcs/factory.ts';
import { access, readFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../config/load.ts';
import { isTrue } from '../core/values.ts';
import { CliError } from './errors.ts';
import { parseConsulSettings } from '../dcs/consul-settings.ts';
import { parseEtcdSettings } from '../dcs/etcd-settings.ts';
import { parseKubernetesSettings } from '../dcs/kubernetes-settings.ts';
import { parseZookeeperSettings } from '../dcs/zookeeper-settings.ts';
import { dcsUrlHostPort, dcsUrlSections, parseDcsUrl } from './dcs-url.ts';

export { CliError, UsageError } from './errors.ts';

export interface Etcd3Target {
  /** host:port entries. */
  hosts: string[];
  protocol: 'http' | 'https';
  username?: string;
  password?: string;
  /** etcd3.cacert, cert, key, key_password (file paths; used with https). */
  tls?: Etcd3TlsFiles;
}

/** What a control command needs from the configuration. */
export interface CtlSettings {
  /** scope from the file (or PATRONI_SCOPE); undefined when neither sets it. */
  scope: string | undefined;
  namespace: string;
  /** undefined when no etcd3 section (and no --dcs-url) was found. */
  etcd3: Etcd3Target | undefined;
  /** The DCS section of a valid configuration whose DCS is not etcd3 (Consul, Kubernetes). */
  sections?: DcsSections;
  /** Why no etcd3 target was found, when that is known (for the error message). */
  notes: string[];
  /** The file's kubernetes section as written (a kubernetes:// --dcs-url takes its labels etc.). */
  fileKubernetes?: unknown;
  /** How error messages name the DCS, when --dcs-url chose it (e.g. `zookeeper at h:2181`). */
  dcsLabel?: string;
  /** How control commands talk to members' REST APIs (ctl section, else restapi fallbacks). */
  rest: RestClientSettings;
}

/** REST client settings of a control command (patronictl's ctl section). */
export interface RestClientSettings {
  /** Basic auth: ctl.authentication, else restapi.authentication. */
  auth?: { username: string; password: string };
  /** CA bundle file: ctl.cacert, else restapi.cafile. */
  cacert?: string;
  certfile?: string;
  keyfile?: string;
  keyfilePassword?: string;
  /** Skip server certificate verification (ctl.insecure or -k). */
  insecure: boolean;
}

/** patronictl's default file: ~/.config/patroni/patronictl.yaml (XDG_CONFIG_HOME honoured). */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'patroni', 'patronictl.yaml');
}

const DEFAULT_ETCD_PORT = 2379;

/** Normalize one etcd endpoint (`h`, `h:p`, `http://h:p`) to host:port. */
function hostPort(entry: string): { host: string; protocol?: 'http' | 'https' } | undefined {
  let s = entry.trim();
  if (!s) return undefined;
  let protocol: 'http' | 'https' | undefined;
  const m = /^(https?):\/\/(.*)$/i.exec(s);
  if (m) {
    protocol = m[1]!.toLowerCase() as 'http' | 'https';
    s = m[2]!.replace(/\/.*$/, '');
  }
  if (!s) return undefined;
  const hasPort = /^\[.*\]:\d+$/.test(s) || (/^[^:]*:\d+$/.test(s) && !s.startsWith('['));
  return { host: hasPort ? s : `${s}:${DEFAULT_ETCD_PORT}`, ...(protocol ? { protocol } : {}) };
}

/** etcd hosts given as a YAML list or a comma-separated string. */
function hostList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map((v) => String(v));
  if (typeof value === 'string') return value.split(',');
  return [];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/**
 * The etcd3 section read leniently: `hosts` (list or comma string), `host`, or `url`; protocol
 * from `protocol` or the URL scheme. PATRONI_ETCD3_* environment variables override the file.
 */
export function etcd3FromRaw(section: unknown, env: NodeJS.ProcessEnv): Etcd3Target | undefined {
  const s: Record<string, unknown> = isObject(section) ? { ...section } : {};
  const fromEnv = (k: string): string | undefined => env[`PATRONI_ETCD3_${k}`];
  if (fromEnv('HOSTS') !== undefined) s['hosts'] = fromEnv('HOSTS');
  if (fromEnv('HOST') !== undefined) s['host'] = fromEnv('HOST');
  if (fromEnv('URL') !== undefined) s['url'] = fromEnv('URL');
  if (fromEnv('PROTOCOL') !== undefined) s['protocol'] = fromEnv('PROTOCOL');
  if (fromEnv('USERNAME') !== undefined) s['username'] = fromEnv('USERNAME');
  if (fromEnv('PASSWORD') !== undefined) s['password'] = fromEnv('PASSWORD');
  for (const k of ['cacert', 'cert', 'key', 'key_password']) {
    const v = fromEnv(k.toUpperCase());
    if (v !== undefined) s[k] = v;
  }
  if (!isObject(section) && Object.keys(s).length === 0) return undefined;

  const entries = [...hostList(s['hosts']), ...(str(s['host']) !== undefined ? [str(s['host'])!] : []), ...(str(s['url']) !== undefined ? [str(s['url'])!] : [])];
  const parsed = entries.map(hostPort).filter((h): h is NonNullable<typeof h> => h !== undefined);
  if (parsed.length === 0) return undefined;
  const protoRaw = str(s['protocol'])?.toLowerCase();
  const protocol: 'http' | 'https' = protoRaw === 'https' || (protoRaw === undefined && parsed.some((p) => p.protocol === 'https')) ? 'https' : 'http';
  const out: Etcd3Target = { hosts: [...new Set(parsed.map((p) => p.host))], protocol };
  const username = str(s['username']);
  const password = str(s['password']);
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  const tls: Etcd3TlsFiles = {};
  for (const [k, field] of [['cacert', 'cacert'], ['cert', 'cert'], ['key', 'key'], ['key_password', 'keyPassword']] as const) {
    const v = s[k];
    const text = typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
    if (text !== undefined) tls[field] = text;
  }
  if (Object.keys(tls).length > 0) out.tls = tls;
  return out;
}

/**
 * A DCS section other than etcd3, read with the backend's own parser (a patronictl file is rarely a
 * valid daemon configuration, so the loader cannot be relied on for it); why not, as a string.
 */
function otherDcsSection(name: string, raw: unknown, env: NodeJS.ProcessEnv): DcsSections | string {
  const parsed =
    name === 'etcd' ? parseEtcdSettings(raw, env, 'etcd')
      : name === 'consul' ? parseConsulSettings(raw, env)
        : name === 'zookeeper' ? parseZookeeperSettings(raw, env)
          : name === 'kubernetes' ? parseKubernetesSettings(raw, env) : undefined;
  if (parsed === undefined) return notImplementedMessage(name);
  if (parsed.settings === undefined) return parsed.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`).join('; ');
  return { [name]: parsed.settings };
}

/** Minimal, validation-free read of scope, namespace and the DCS section (YAML 1.1). */
export function ctlSettingsFromYaml(text: string, env: NodeJS.ProcessEnv): CtlSettings {
  let doc: unknown;
  try {
    doc = parseYaml(text, { version: '1.1' }) as unknown;
  } catch (err) {
    throw new CliError(`cannot parse the configuration file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const root: Record<string, unknown> = isObject(doc) ? doc : {};
  const scope = env['PATRONI_SCOPE'] ?? str(root['scope']);
  const namespace = env['PATRONI_NAMESPACE'] ?? str(root['namespace']) ?? 'service';
  const notes: string[] = [];
  const etcd3 = etcd3FromRaw(root['etcd3'], env);
  let sections: DcsSections | undefined;
  if (etcd3 === undefined) {
    // Patroni's order (sorted names) among the other DCS sections.
    const other = ['consul', 'etcd', 'exhibitor', 'kubernetes', 'raft', 'zookeeper'].find((k) => root[k] !== undefined && root[k] !== null);
    if (other !== undefined) {
      const r = otherDcsSection(other, root[other], env);
      if (typeof r === 'string') notes.push(r);
      else sections = r;
    }
  }
  const out: CtlSettings = { scope: scope || undefined, namespace, etcd3, notes, rest: restFromRaw(root, env) };
  if (sections !== undefined) out.sections = sections;
  if (root['kubernetes'] !== undefined) out.fileKubernetes = root['kubernetes'];
  return out;
}

function authFrom(v: unknown): { username: string; password: string } | undefined {
  if (!isObject(v)) return undefined;
  const username = str(v['username']);
  const password = str(v['password']);
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

/**
 * REST client settings from the raw file: `ctl` section, falling back to `restapi` for the
 * credentials and the CA. PATRONI_CTL_* and PATRONI_RESTAPI_{USERNAME,PASSWORD,CAFILE} override.
 */
export function restFromRaw(root: Record<string, unknown>, env: NodeJS.ProcessEnv): RestClientSettings {
  const ctl: Record<string, unknown> = isObject(root['ctl']) ? { ...root['ctl'] } : {};
  const restapi: Record<string, unknown> = isObject(root['restapi']) ? { ...root['restapi'] } : {};
  const envAuth = (prefix: string, section: Record<string, unknown>): void => {
    const u = env[`${prefix}_USERNAME`];
    const p = env[`${prefix}_PASSWORD`];
    if (u !== undefined && p !== undefined) section['authentication'] = { username: u, password: p };
  };
  envAuth('PATRONI_CTL', ctl);
  envAuth('PATRONI_RESTAPI', restapi);
  for (const k of ['insecure', 'cacert', 'certfile', 'keyfile', 'keyfile_password']) {
    const v = env[`PATRONI_CTL_${k.toUpperCase()}`];
    if (v !== undefined) ctl[k] = v;
  }
  if (env['PATRONI_RESTAPI_CAFILE'] !== undefined) restapi['cafile'] = env['PATRONI_RESTAPI_CAFILE'];
  const out: RestClientSettings = { insecure: isTrue(ctl['insecure']) };
  const auth = authFrom(ctl['authentication']) ?? authFrom(restapi['authentication']);
  if (auth !== undefined) out.auth = auth;
  const cacert = str(ctl['cacert']) ?? str(restapi['cafile']);
  if (cacert !== undefined) out.cacert = cacert;
  const certfile = str(ctl['certfile']);
  if (certfile !== undefined) out.certfile = certfile;
  const keyfile = str(ctl['keyfile']);
  if (keyfile !== undefined) out.keyfile = keyfile;
  const kp = str(ctl['keyfile_password']);
  if (kp !== undefined) out.keyfilePassword = kp;
  return out;
}

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Settings for a control command. The file is `configFile` (from -c), else PATRONICTL_CONFIG_FILE,
 * else the default patronictl.yaml, which may be missing. An explicitly named file that is missing
 * is an error. The file goes through the daemon's loader (config/load.ts); when that rejects it,
 * the few settings needed are read leniently instead. `dcsUrl` (or DCS_URL) replaces the DCS
 * section and, when it has a path, the namespace.
 */
export async function loadCtlSettings(opts: { configFile?: string; dcsUrl?: string; env?: NodeJS.ProcessEnv }): Promise<CtlSettings> {
  const env = opts.env ?? process.env;
  const explicit = opts.configFile ?? (env['PATRONICTL_CONFIG_FILE'] || undefined);
  const path = explicit ?? defaultConfigPath(env);
  let settings: CtlSettings;
  if (await readable(path)) {
    settings = await settingsFromFile(path, env);
  } else if (explicit !== undefined) {
    throw new CliError(`Provided config file ${path} not existing or no read rights. Check the -c/--config-file parameter`);
  } else {
    settings = ctlSettingsFromYaml('{}', env);
  }
  const dcsUrl = opts.dcsUrl ?? (env['DCS_URL'] || undefined);
  if (dcsUrl !== undefined) settings = withDcsUrl(settings, dcsUrl, env);
  return settings;
}

/**
 * The settings with their DCS replaced by the one `url` names (dcs-url.ts): every DCS section of
 * the file is dropped, as patronictl does; the URL's path, when present, is the namespace.
 */
export function withDcsUrl(settings: CtlSettings, url: string, env: NodeJS.ProcessEnv): CtlSettings {
  const u = parseDcsUrl(url);
  const sections = dcsUrlSections(url, u, settings.fileKubernetes, env);
  const out: CtlSettings = { ...settings, etcd3: undefined, notes: [], dcsLabel: `${u.scheme} at ${dcsUrlHostPort(u)}` };
  delete out.sections;
  if (sections.etcd3 !== undefined) out.etcd3 = { hosts: [...sections.etcd3.hosts], protocol: 'http' };
  else out.sections = sections;
  if (u.namespace !== undefined && u.scheme !== 'kubernetes') out.namespace = u.namespace;
  return out;
}

async function settingsFromFile(path: string, env: NodeJS.ProcessEnv): Promise<CtlSettings> {
  let loaded: Awaited<ReturnType<typeof loadConfigFile>> | undefined;
  try {
    loaded = await loadConfigFile(path, env);
  } catch {
    // unreadable for the loader: the lenient read below reports why
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The lenient read always runs: the REST client settings (ctl section) come from it.
  // The loader's own issues are not repeated: most are about sections `list` does not use.
  const lenient = ctlSettingsFromYaml(text, env);
  const cfg = loaded?.config;
  if (cfg !== undefined && cfg.etcd3 === undefined && (cfg.consul !== undefined || cfg.kubernetes !== undefined || cfg.etcd !== undefined || cfg.zookeeper !== undefined)) {
    // Another DCS than etcd3: the control commands use the same backend as the agent.
    const sections: DcsSections =
      cfg.consul !== undefined ? { consul: cfg.consul }
        : cfg.etcd !== undefined ? { etcd: cfg.etcd }
          : cfg.kubernetes !== undefined ? { kubernetes: cfg.kubernetes } : { zookeeper: cfg.zookeeper };
    return { scope: cfg.scope || undefined, namespace: cfg.namespace, etcd3: undefined, sections, notes: [], rest: lenient.rest, fileKubernetes: lenient.fileKubernetes };
  }
  if (cfg !== undefined && cfg.etcd3 !== undefined && cfg.etcd3.hosts.length > 0) {
    const etcd3: Etcd3Target = { hosts: [...cfg.etcd3.hosts], protocol: cfg.etcd3.protocol };
    if (cfg.etcd3.username !== undefined) etcd3.username = cfg.etcd3.username;
    if (cfg.etcd3.password !== undefined) etcd3.password = cfg.etcd3.password;
    const { cacert, cert, key, keyPassword } = cfg.etcd3;
    const tls: Etcd3TlsFiles = { ...(cacert !== undefined ? { cacert } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}), ...(keyPassword !== undefined ? { keyPassword } : {}) };
    if (Object.keys(tls).length > 0) etcd3.tls = tls;
    return { scope: cfg.scope || undefined, namespace: cfg.namespace, etcd3, notes: [], rest: lenient.rest, fileKubernetes: lenient.fileKubernetes };
  }
  // Not a valid daemon configuration (patronictl files usually are not): what we read is all we have.
  return lenient;
}

/** `YYYY-MM-DD HH:MM:SS` in local time (patronictl -t). */
export function formatTimestamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
