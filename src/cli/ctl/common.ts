// Shared plumbing of the patronictl-like control commands (spec §3): option parsing with the
// common -c/-d/-k flags, the DCS in ctl mode, member selection by role, REST calls to members'
// api_url and PyYAML-like dumps (terminal input and output: io.ts).
//
// Failure contract: every command runs inside runCommand(), which prints `Error: <message>` on
// stderr and returns 1 for CliError/DcsError/anything else, 2 for UsageError (with the usage).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { request as httpRequest } from '../../node-http.ts';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { stringify as yamlStringify } from 'yaml';
import { Etcd3SettingError } from '../../dcs/etcd3.ts';
import { createDcs } from '../../dcs/factory.ts';
import { clusterPrefix } from '../../dcs/codec.ts';
import type { Dcs } from '../../dcs/dcs.ts';
import type { ClusterView, Member } from '../../core/model.ts';
import { CliError, UsageError, loadCtlSettings, type CtlSettings, type Etcd3Target, type RestClientSettings } from '../args.ts';
import { renderTable } from '../table.ts';
import { processIo, type Io } from './io.ts';
import { GLOBAL_OPTIONS_HELP } from '../global-options.ts';

// ---------------------------------------------------------------------------------------------
// Arguments

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** -c/--config-file, -d/--dcs-url (--dcs), -k/--insecure, -h/--help. */
export const COMMON_OPTIONS = {
  'config-file': { type: 'string', short: 'c' },
  'dcs-url': { type: 'string', short: 'd' },
  dcs: { type: 'string' },
  insecure: { type: 'boolean', short: 'k' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** node:util parseArgs with errors turned into UsageError. */
export function parseCommand(argv: string[], options: OptionSpec): Parsed {
  try {
    const p = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: p.values as Parsed['values'], positionals: p.positionals };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function optString(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  if (Array.isArray(v)) return v[v.length - 1];
  return typeof v === 'string' ? v : undefined;
}

export function optBool(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function optList(p: Parsed, name: string): string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** patronictl's role choices for -r/--role. */
export const ROLES = ['leader', 'primary', 'standby-leader', 'replica', 'standby', 'any', 'master'] as const;
export type RoleChoice = (typeof ROLES)[number];

export function parseRole(v: string | undefined, dflt: RoleChoice | undefined): RoleChoice | undefined {
  if (v === undefined) return dflt;
  const r = v.toLowerCase();
  if (!(ROLES as readonly string[]).includes(r)) {
    throw new UsageError(`Invalid value for '--role' / '-r': '${v}' is not one of ${ROLES.map((x) => `'${x}'`).join(', ')}`);
  }
  return r as RoleChoice;
}

// ---------------------------------------------------------------------------------------------
// Context: configuration, DCS, REST

/** Seconds a DCS call may take, retries included (Patroni's retry_timeout default). */
export const DCS_TIMEOUT_S = 10;

/**
 * A ctl-mode etcd3 client (no lease, linearizable reads) for `prefix`. TLS files that cannot be
 * used are a CliError (exit code 1) naming the setting and the file.
 */
export function ctlEtcd3Dcs(t: Etcd3Target, prefix: string, name: string, retryTimeout: number): Dcs {
  try {
    const etcd3 = {
      hosts: t.hosts,
      protocol: t.protocol,
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(t.tls ?? {}),
    };
    return createDcs({ etcd3 }, { prefix, name, ttl: 30, retryTimeout, ctl: true });
  } catch (err) {
    if (err instanceof Etcd3SettingError) throw new CliError(`configuration: ${err.message}`);
    throw err;
  }
}

export class CtlContext {
  readonly settings: CtlSettings;
  readonly io: Io;
  readonly #dcs = new Map<string, Dcs>();

  constructor(settings: CtlSettings, io: Io) {
    this.settings = settings;
    this.io = io;
  }

  /** Settings from -c/-d/-k of a parsed command line. */
  static async create(p: Parsed, io: Io): Promise<CtlContext> {
    const configFile = optString(p, 'config-file');
    const dcsUrl = optString(p, 'dcs-url') ?? optString(p, 'dcs');
    const settings = await loadCtlSettings({
      ...(configFile !== undefined ? { configFile } : {}),
      ...(dcsUrl !== undefined ? { dcsUrl } : {}),
    });
    if (optBool(p, 'insecure')) settings.rest = { ...settings.rest, insecure: true };
    return new CtlContext(settings, io);
  }

  /** The cluster argument, else scope from the configuration. */
  clusterName(arg: string | undefined): string {
    const name = arg ?? this.settings.scope;
    if (name === undefined || name === '') throw new UsageError('no cluster name given: pass CLUSTER or set scope in the configuration file');
    return name;
  }

  etcd3(): Etcd3Target {
    const t = this.settings.etcd3;
    if (t === undefined) {
      const why = this.settings.notes.length > 0 ? ` (${this.settings.notes.join('; ')})` : '';
      throw new CliError(`no usable DCS section in the configuration and no --dcs-url: cannot find the DCS${why}`);
    }
    return t;
  }

  prefix(scope: string): string {
    return clusterPrefix(this.settings.namespace, scope);
  }

  /** A ctl-mode adapter for one cluster (no lease, linearizable reads); closed by close(). */
  dcs(scope: string): Dcs {
    let d = this.#dcs.get(scope);
    if (d === undefined) {
      const sections = this.settings.sections;
      d = this.settings.etcd3 === undefined && sections !== undefined
        ? createDcs(sections, { prefix: this.prefix(scope), name: scope, ttl: 30, retryTimeout: DCS_TIMEOUT_S, ctl: true })
        : ctlEtcd3Dcs(this.etcd3(), this.prefix(scope), scope, DCS_TIMEOUT_S);
      this.#dcs.set(scope, d);
    }
    return d;
  }

  /** One consistent read of a cluster; errors name the endpoints tried. */
  async readCluster(scope: string): Promise<ClusterView> {
    try {
      return await this.dcs(scope).readCluster({ signal: AbortSignal.timeout((DCS_TIMEOUT_S + 5) * 1000) });
    } catch (err) {
      throw this.dcsError(`cannot read cluster '${scope}' (${this.prefix(scope)})`, err);
    }
  }

  dcsError(what: string, err: unknown): CliError {
    if (err instanceof CliError) return err;
    const t = this.settings.etcd3;
    const label = this.settings.dcsLabel;
    const where = t !== undefined ? ` from etcd at ${t.hosts.map((h) => `${t.protocol}://${h}`).join(', ')}` : label !== undefined ? ` from ${label}` : '';
    return new CliError(`${what}${where}: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** A REST call to a member (its api_url with the path replaced). */
  request(member: Member, method: string, endpoint: string, body?: unknown, timeoutMs = 30_000): Promise<RestResponse> {
    const url = memberApiUrl(member, endpoint);
    if (url === undefined) return Promise.reject(new Error(`member ${member.name} has no usable api_url`));
    return restRequest(url, method, body, this.settings.rest, timeoutMs);
  }

  async close(): Promise<void> {
    for (const d of this.#dcs.values()) await d.close().catch(() => undefined);
    this.#dcs.clear();
    this.io.close();
  }
}

export interface RestResponse {
  status: number;
  body: string;
}

/** member api_url with the path replaced by `/<endpoint>`; undefined when missing or unparsable. */
export function memberApiUrl(member: Member, endpoint: string): string | undefined {
  const raw = member.data.api_url;
  if (typeof raw !== 'string' || raw === '') return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  u.pathname = `/${endpoint.replace(/^\/+/, '')}`;
  u.search = '';
  u.hash = '';
  return u.toString();
}

/**
 * One HTTP(S) request with a deadline. Bodies are JSON without a Content-Type header (as
 * patronictl sends them). Rejects on connection errors and on the deadline; any HTTP status resolves.
 */
export function restRequest(url: string, method: string, body: unknown, rest: RestClientSettings, timeoutMs: number): Promise<RestResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string> = {};
    if (payload !== undefined) headers['Content-Length'] = String(payload.length);
    if (rest.auth !== undefined) headers['Authorization'] = `Basic ${Buffer.from(`${rest.auth.username}:${rest.auth.password}`).toString('base64')}`;
    const common = { method: method.toUpperCase(), headers, signal: AbortSignal.timeout(timeoutMs) };
    let req;
    try {
      if (u.protocol === 'https:') {
        const tls: Record<string, unknown> = { rejectUnauthorized: !rest.insecure };
        if (rest.cacert !== undefined) tls['ca'] = readFileSync(rest.cacert);
        if (rest.certfile !== undefined) tls['cert'] = readFileSync(rest.certfile);
        if (rest.keyfile !== undefined) tls['key'] = readFileSync(rest.keyfile);
        if (rest.keyfilePassword !== undefined) tls['passphrase'] = rest.keyfilePassword;
        req = httpsRequest(u, { ...common, ...tls });
      } else {
        req = httpRequest(u, common);
      }
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      reject(err.name === 'AbortError' ? new Error(`no answer from ${u.host} within ${Math.round(timeoutMs / 1000)} s`) : err);
    });
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// Members

/** The leader's member (a bare one without data when its member key is missing). */
export function leaderMember(view: ClusterView): Member | undefined {
  const name = view.leader?.name;
  if (!name) return undefined;
  return view.members.find((m) => m.name === name) ?? { name, data: {}, version: '', session: '' };
}

/**
 * Members matching a role, as patronictl selects them: leader roles give at most the lock holder
 * (`primary`: unless its role is standby_leader; `standby-leader`: unless primary/master);
 * `replica`/`standby`: every non-leader member; `any`: every member.
 */
export function membersWithRole(view: ClusterView, role: RoleChoice): Member[] {
  if (role === 'leader' || role === 'primary' || role === 'master' || role === 'standby-leader') {
    const l = leaderMember(view);
    if (l === undefined) return [];
    const r = l.data.role;
    if (role === 'leader') return [l];
    if (role === 'standby-leader') return r !== 'primary' && r !== 'master' ? [l] : [];
    return r !== 'standby_leader' ? [l] : [];
  }
  const leaderName = view.leader?.name;
  return view.members.filter((m) => role === 'any' || m.name !== leaderName);
}

/** Members that have an api_url, the leader first (pause/resume, flush switchover). */
export function membersLeaderFirst(view: ClusterView): Member[] {
  const hasApi = (m: Member): boolean => typeof m.data.api_url === 'string' && m.data.api_url !== '';
  const l = leaderMember(view);
  const first = l !== undefined && hasApi(l) ? [l] : [];
  return [...first, ...view.members.filter((m) => hasApi(m) && m.name !== first[0]?.name)];
}

/** loop_wait of the cluster's /config (10 when unset). */
export function loopWait(view: ClusterView): number {
  const v = Number(view.config?.['loop_wait']);
  return Number.isFinite(v) && v > 0 ? v : 10;
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** `YYYY-MM-DD HH:MM:SS.ffffff` cut to `precision` fraction digits (patronictl's timestamp()). */
export function timestamp(precision = 6, d: Date = new Date()): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const base = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  if (precision <= 0) return base;
  return `${base}.${p(d.getMilliseconds() * 1000, 6).slice(0, precision)}`;
}

/** YAML as PyYAML's safe_dump(default_flow_style=False, width=200): sorted keys, unindented lists. */
export function formatConfig(data: unknown): string {
  return yamlStringify(data, { sortMapEntries: true, lineWidth: 200, indentSeq: false, version: '1.1', singleQuote: true });
}

/** The pretty member table, as patronictl prints it before acting. */
export function membersTable(scope: string, view: ClusterView): string {
  return `${renderTable(scope, view, { format: 'pretty', extended: false })}\n`;
}

/**
 * `--scheduled` value: undefined for `now`/empty, else an ISO-8601 string with offset; a timestamp
 * without a zone is local time. Accepts ISO-8601 and `YYYY-MM-DD HH:MM[:SS]`.
 */
export function parseScheduled(value: string | undefined, now: Date = new Date()): string | undefined {
  void now;
  if (value === undefined || value.trim() === '' || value.trim().toLowerCase() === 'now') return undefined;
  const s = value.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(s);
  const fail = (): never => {
    throw new CliError(`Unable to parse scheduled timestamp (${value}). It should be in an unambiguous format (e.g. ISO 8601)`);
  };
  if (!m) return fail();
  const [, y, mo, d, h = '00', mi = '00', sec = '00', , tz] = m;
  const nums = [y, mo, d, h, mi, sec].map(Number) as [number, number, number, number, number, number];
  let date: Date;
  if (tz === undefined) {
    date = new Date(nums[0], nums[1] - 1, nums[2], nums[3], nums[4], nums[5]);
    if (date.getMonth() !== nums[1] - 1 || date.getDate() !== nums[2]) return fail();
    return isoWithOffset(date, -date.getTimezoneOffset());
  }
  let offsetMin = 0;
  if (tz.toUpperCase() !== 'Z') {
    const t = /^([+-])(\d{2}):?(\d{2})?$/.exec(tz);
    if (!t) return fail();
    offsetMin = (t[1] === '-' ? -1 : 1) * (Number(t[2]) * 60 + Number(t[3] ?? 0));
  }
  const utc = Date.UTC(nums[0], nums[1] - 1, nums[2], nums[3], nums[4], nums[5]) - offsetMin * 60_000;
  date = new Date(utc);
  if (Number.isNaN(utc) || nums[1] < 1 || nums[1] > 12 || nums[2] < 1 || nums[2] > 31 || nums[3] > 23 || nums[4] > 59 || nums[5] > 59) return fail();
  return isoWithOffset(date, offsetMin);
}

/** `YYYY-MM-DDTHH:MM:SS+HH:MM` of `date` shown at UTC offset `offsetMin` (Python's isoformat()). */
export function isoWithOffset(date: Date, offsetMin: number): string {
  const shifted = new Date(date.getTime() + offsetMin * 60_000);
  const p = (n: number): string => String(n).padStart(2, '0');
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  return (
    `${shifted.getUTCFullYear()}-${p(shifted.getUTCMonth() + 1)}-${p(shifted.getUTCDate())}T` +
    `${p(shifted.getUTCHours())}:${p(shifted.getUTCMinutes())}:${p(shifted.getUTCSeconds())}` +
    `${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`
  );
}

/** `YYYY-MM-DDTHH:MM` an hour from now (the example in the schedule prompts). */
export function nextHourExample(now: Date = new Date()): string {
  const d = new Date(now.getTime() + 3600_000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// ---------------------------------------------------------------------------------------------
// Running

/** A verb's usage followed by the global options' paragraph. */
function withGlobalHelp(usage: string): string {
  return `${usage}\n\n${GLOBAL_OPTIONS_HELP}`;
}

/**
 * Run a command body with a fresh context: prints usage on -h, maps errors to exit codes, closes
 * the DCS adapters and stdin whatever happens.
 */
export async function runCommand(
  argv: string[],
  usage: string,
  options: OptionSpec,
  body: (p: Parsed, io: Io, ctx: () => Promise<CtlContext>) => Promise<number | void>,
  io: Io = processIo(),
): Promise<number> {
  let ctx: CtlContext | undefined;
  try {
    const p = parseCommand(argv, { ...COMMON_OPTIONS, ...options });
    if (optBool(p, 'help')) {
      io.out(`${withGlobalHelp(usage)}\n`);
      return 0;
    }
    const code = await body(p, io, async () => (ctx ??= await CtlContext.create(p, io)));
    return code ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`Error: ${err.message}\n\n${withGlobalHelp(usage)}\n`);
      return 2;
    }
    io.err(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  } finally {
    if (ctx !== undefined) await ctx.close();
    else io.close();
  }
}
