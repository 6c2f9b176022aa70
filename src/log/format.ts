// Log records rendered as Patroni renders them (its `log` section): plain lines from a Python
// logging format string (`%(asctime)s %(levelname)s: %(message)s` by default), or one JSON object a
// line whose keys are the format's fields (renamed as the list form asks), the static fields, then
// the record's own structured fields. Pure: the time zone is the process's (TZ), as in Python.

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export const LEVEL_RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, fatal: 50 };

/** Python's level names: what `%(levelname)s` prints and what `log.level` / `loggers` accept. */
export const LEVEL_NAME: Record<Level, string> = { debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR', fatal: 'CRITICAL' };

export interface LogRecord {
  /** Epoch milliseconds. */
  time: number;
  level: Level;
  /** The logger's name (`%(name)s`): `vigil` or `vigil.<component>`. */
  logger: string;
  msg: string;
  /** The call's structured fields (`log.warn({ host }, ...)`). */
  fields: Readonly<Record<string, unknown>>;
}

/** The record attributes a format may name (Python LogRecord attributes Vigil can fill). */
export const FORMAT_FIELDS = [
  'asctime', 'created', 'msecs', 'relativeCreated', 'levelname', 'levelno', 'message', 'name', 'process', 'processName', 'thread', 'threadName',
] as const;

/** One JSON key: the record attribute and the key it is written under. */
export interface JsonField {
  field: string;
  key: string;
}

export interface FormatSettings {
  type: 'plain' | 'json';
  /** plain: the format string. json: used only when `fields` is absent (its %(...) names). */
  format: string;
  /** json only: the fields from the list form of `format`, in order. */
  fields?: readonly JsonField[];
  /** strftime-style; undefined: Python's default `YYYY-MM-DD HH:MM:SS,mmm`. */
  dateformat?: string;
  /** json only: added to every record. */
  staticFields?: Readonly<Record<string, unknown>>;
}

export const DEFAULT_FORMAT = '%(asctime)s %(levelname)s: %(message)s';

const PROCESS_START = Date.now();
const FIELD_RE = /%%|%\((\w+)\)([-#0 +]*)(\d+)?(?:\.(\d+))?([diouxXeEfFgGcrsa])/g;

/** The %(name) fields a format string names, in order (duplicates once). */
export function formatFieldNames(format: string): string[] {
  const out: string[] = [];
  for (const m of format.matchAll(/%\((\w+)\)/g)) if (!out.includes(m[1] as string)) out.push(m[1] as string);
  return out;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

function utcOffset(d: Date): string {
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${off < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}${pad(a % 60)}`;
}

function zoneName(d: Date): string {
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
  return part?.value ?? utcOffset(d);
}

/**
 * C strftime's common directives in local time: %Y %y %m %d %e %H %I %M %S %p %a %A %b %B %j %z %Z
 * %f (microseconds, as in Python's datetime) and %%; others are printed as they are.
 */
export function strftime(format: string, epochMs: number): string {
  const d = new Date(epochMs);
  return format.replace(/%([a-zA-Z%])/g, (all, c: string) => {
    switch (c) {
      case 'Y': return String(d.getFullYear());
      case 'y': return pad(d.getFullYear() % 100);
      case 'm': return pad(d.getMonth() + 1);
      case 'd': return pad(d.getDate());
      case 'e': return String(d.getDate()).padStart(2, ' ');
      case 'H': return pad(d.getHours());
      case 'I': return pad(d.getHours() % 12 === 0 ? 12 : d.getHours() % 12);
      case 'M': return pad(d.getMinutes());
      case 'S': return pad(d.getSeconds());
      case 'p': return d.getHours() < 12 ? 'AM' : 'PM';
      case 'a': return (DAYS[d.getDay()] as string).slice(0, 3);
      case 'A': return DAYS[d.getDay()] as string;
      case 'b': return (MONTHS[d.getMonth()] as string).slice(0, 3);
      case 'B': return MONTHS[d.getMonth()] as string;
      case 'j': return pad(Math.floor((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1)) / 86_400_000) + 1, 3);
      case 'z': return utcOffset(d);
      case 'Z': return zoneName(d);
      case 'f': return pad(d.getMilliseconds() * 1000, 6);
      case '%': return '%';
      default: return all;
    }
  });
}

/** Python's formatTime: the date format without milliseconds, or `YYYY-MM-DD HH:MM:SS,mmm`. */
export function asctime(epochMs: number, dateformat?: string): string {
  if (dateformat !== undefined) return strftime(dateformat, epochMs);
  return `${strftime('%Y-%m-%d %H:%M:%S', epochMs)},${pad(Math.floor(epochMs % 1000), 3)}`;
}

/** A field value for a plain line: bare when it is a simple word, JSON otherwise. */
function plainValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return safeJson(v);
}

/** JSON that never throws: Errors as their message, bigints as strings, cycles as "[cycle]". */
export function safeJson(v: unknown): string {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(v, (_k, x: unknown) => {
      if (x instanceof Error) return x.message;
      if (typeof x === 'bigint') return x.toString();
      if (typeof x === 'object' && x !== null) {
        if (seen.has(x)) return '[cycle]';
        seen.add(x);
      }
      return x;
    }) ?? 'null';
  } catch {
    return JSON.stringify(String(v));
  }
}

/** The structured fields that are set (undefined ones are left out). */
function setFields(fields: Readonly<Record<string, unknown>>): [string, unknown][] {
  return Object.entries(fields).filter(([, v]) => v !== undefined);
}

/**
 * `%(message)s` of a plain line: the message, then the record's structured fields as `key=value`
 * (so that what a JSON line carries is not lost in a plain one); empty lists and mappings are left out.
 */
export function plainMessage(r: LogRecord): string {
  const empty = (v: unknown): boolean => (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Error) && Object.keys(v).length === 0);
  const extra = setFields(r.fields).filter(([, v]) => !empty(v));
  if (extra.length === 0) return r.msg;
  return `${r.msg} ${extra.map(([k, v]) => `${k}=${plainValue(v)}`).join(' ')}`;
}

/** A record attribute by its Python name; undefined for one Vigil does not have. */
function attribute(r: LogRecord, field: string, dateformat: string | undefined, message: string): string | number | undefined {
  switch (field) {
    case 'asctime': return asctime(r.time, dateformat);
    case 'created': return r.time / 1000;
    case 'msecs': return r.time % 1000;
    case 'relativeCreated': return r.time - PROCESS_START;
    case 'levelname': return LEVEL_NAME[r.level];
    case 'levelno': return LEVEL_RANK[r.level];
    case 'message': return message;
    case 'name': return r.logger;
    case 'process': return process.pid;
    case 'processName': return 'MainProcess';
    case 'thread': return 0;
    case 'threadName': return 'MainThread';
    default: return undefined;
  }
}

/** Python's %-formatting of one value: flags `-` and `0`, width, precision; s/r/a, d/i, f/F. */
function conversion(value: string | number | undefined, flags: string, width: string | undefined, precision: string | undefined, type: string): string {
  let s: string;
  if (value === undefined) s = '';
  else if ('di'.includes(type) && typeof value === 'number') s = String(Math.trunc(value));
  else if ('fF'.includes(type) && typeof value === 'number') s = value.toFixed(precision === undefined ? 6 : Number(precision));
  else {
    s = String(value);
    if (precision !== undefined && 'sra'.includes(type)) s = s.slice(0, Number(precision));
  }
  const w = width === undefined ? 0 : Number(width);
  if (s.length >= w) return s;
  if (flags.includes('-')) return s.padEnd(w, ' ');
  return s.padStart(w, flags.includes('0') && typeof value === 'number' ? '0' : ' ');
}

/** A plain line (without its newline). */
export function formatPlain(r: LogRecord, format: string, dateformat?: string): string {
  const message = plainMessage(r);
  return format.replace(FIELD_RE, (all, field: string, flags: string, width: string | undefined, precision: string | undefined, type: string) =>
    all === '%%' ? '%' : conversion(attribute(r, field, dateformat, message), flags, width, precision, type),
  );
}

/** The JSON keys of a json-type configuration. */
export function jsonFields(s: FormatSettings): readonly JsonField[] {
  return s.fields ?? formatFieldNames(s.format).map((f) => ({ field: f, key: f }));
}

/** A JSON line (without its newline). */
export function formatJson(r: LogRecord, fields: readonly JsonField[], dateformat?: string, staticFields?: Readonly<Record<string, unknown>>): string {
  const out: Record<string, unknown> = {};
  for (const { field, key } of fields) {
    const v = attribute(r, field, dateformat, r.msg);
    out[key] = v === undefined ? null : v;
  }
  for (const [k, v] of Object.entries(staticFields ?? {})) if (!Object.hasOwn(out, k)) out[k] = v;
  for (const [k, v] of setFields(r.fields)) out[Object.hasOwn(out, k) ? `extra_${k}` : k] = v;
  return safeJson(out);
}

/** The formatter of a configuration: record -> line (without its newline). */
export function formatter(s: FormatSettings): (r: LogRecord) => string {
  if (s.type === 'json') {
    const fields = jsonFields(s);
    return (r) => formatJson(r, fields, s.dateformat, s.staticFields);
  }
  return (r) => formatPlain(r, s.format, s.dateformat);
}
