// Typed readers of the configuration document: each reports problems as issues naming the dotted
// path (or the PATRONI_* variable that supplied the value) and never throws.

import { parseBool } from '../core/values.ts';
import { isSecretKey, show } from './dynamic.ts';
import type { ConfigIssue } from './types.ts';

export type Obj = Record<string, unknown>;

/** A key Patroni knows that cannot apply to Vigil: a warning. */
export const NOT_APPLICABLE = 'does not apply to Vigil (ignored)';

/** A key Patroni knows and Vigil does not implement yet, whose absence would change behaviour. */
export interface Refusal {
  refuse: string;
}
/** `what` says what would silently not happen if the key were ignored. */
export function refused(what: string): Refusal {
  return { refuse: `not implemented by Vigil yet (${what}); remove it to start, or keep this node on Patroni` };
}

// ---------------------------------------------------------------------------------------------
// Issue collection

export class Issues {
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

export function isMap(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export function sub(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

export { isSecretKey };

/** What kind of value `v` is, without the value: "a list (value hidden)". */
function kind(v: unknown): string {
  if (typeof v === 'boolean') return 'a boolean (value hidden; YAML 1.1 reads yes/no/on/off/true/false as booleans: quote it)';
  if (v instanceof Date) return 'a date (value hidden; quote it)';
  if (Array.isArray(v)) return 'a list (value hidden)';
  if (isMap(v)) return 'a mapping (value hidden)';
  if (typeof v === 'number') return 'a number (value hidden)';
  if (typeof v === 'string') return 'a string (value hidden)';
  return `${v === null ? 'null' : typeof v} (value hidden)`;
}

/**
 * A value for a message. `secret` (or a secret `key`, see isSecretKey) shows only its type; values
 * under secret keys inside lists and mappings are hidden by show().
 */
export function describe(v: unknown, key?: string | true): string {
  if (key === true || (key !== undefined && isSecretKey(key))) return kind(v);
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
export function checkKeys(issues: Issues, obj: Obj, path: string, known: readonly string[], unsupported: Record<string, string | Refusal> = {}): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const msg = Object.hasOwn(unsupported, key) ? unsupported[key] : undefined;
    if (typeof msg === 'object') {
      if (obj[key] !== undefined && obj[key] !== null) issues.error(sub(path, key), msg.refuse);
    } else issues.warn(sub(path, key), msg ?? 'unknown key');
  }
}

export function section(issues: Issues, parent: Obj, key: string, path: string): Obj | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (!isMap(v)) {
    issues.error(sub(path, key), `expected a mapping, got ${describe(v, key)}`);
    return undefined;
  }
  return v;
}

/** A string; numbers are accepted and converted (e.g. `password: 1234`). */
export function str(issues: Issues, parent: Obj, key: string, path: string, required = false): string | undefined {
  const v = parent[key];
  const p = sub(path, key);
  if (v === undefined || v === null || v === '') {
    if (required) issues.error(p, 'required');
    return undefined;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  issues.error(p, `expected a string, got ${describe(v, key)}`);
  return undefined;
}

export function bool(issues: Issues, parent: Obj, key: string, path: string): boolean | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  const b = parseBool(v);
  if (b === undefined) issues.error(sub(path, key), `expected a boolean, got ${describe(v, key)}`);
  return b;
}

export function int(issues: Issues, parent: Obj, key: string, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  let n: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) n = Number(v);
  if (n === undefined) {
    issues.error(sub(path, key), `expected an integer, got ${describe(v, key)}`);
    return undefined;
  }
  if (n < min || n > max) {
    issues.error(sub(path, key), `must be between ${min} and ${max}, got ${n}`);
    return undefined;
  }
  return n;
}

export function stringList(issues: Issues, parent: Obj, key: string, path: string): string[] | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  const p = sub(path, key);
  if (!Array.isArray(v)) {
    issues.error(p, `expected a list of strings, got ${describe(v, key)}`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    if (typeof item === 'string') out.push(item);
    else issues.error(`${p}[${i}]`, `expected a string, got ${describe(item, key)}`);
  });
  return out;
}

/** Where the value at `path` came from: the environment variable that set it, else the path itself. */
export function origin(issues: Issues, path: string): string {
  return issues.origins.get(path) ?? path;
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

export function listenValue(issues: Issues, parent: Obj, key: string, path: string, multiHost: boolean): { text: string; hosts: string[]; port: number } | undefined {
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
export function connectAddress(issues: Issues, parent: Obj, path: string, listen: { text: string; hosts: string[]; port: number } | undefined): string | undefined {
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
