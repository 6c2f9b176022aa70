// The `log` section as Patroni reads it: type (plain | json), level, format (a Python logging format
// string; for json also a list of fields, a field given as {field: key} being renamed), dateformat,
// static_fields (json), loggers (per-logger levels), dir / mode / file_num / file_size (rotated
// files), max_queue_size. The agent applies it through src/log/logger.ts.

import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonField, Level } from '../log/format.ts';
import { LOG_FILE_NAME } from '../log/sink.ts';
import { DEFAULT_FORMAT, FORMAT_FIELDS, formatFieldNames } from '../log/format.ts';
import { show } from './dynamic.ts';
import { checkKeys, describe, int, isMap, section, str, type Issues, type Obj } from './fields.ts';

export interface LogSettings {
  type: 'plain' | 'json';
  level: Level;
  /** The format string (json: the source of the fields when `fields` is absent). */
  format: string;
  /** json: the list form of `format`. */
  fields?: JsonField[];
  dateformat?: string;
  staticFields: Record<string, unknown>;
  /** Vigil logger name (`vigil`, `vigil.ha`, ...) -> level. */
  loggers: Record<string, Level>;
  /** Log to `<dir>/patroni.log` instead of standard error. */
  dir?: string;
  /** Permission bits of the log file; undefined: 0666 less the umask. */
  mode?: number;
  fileNum: number;
  fileSize: number;
  maxQueueSize: number;
}

export const DEFAULT_LOG: LogSettings = {
  type: 'plain', level: 'info', format: DEFAULT_FORMAT, staticFields: {}, loggers: {}, fileNum: 4, fileSize: 25_000_000, maxQueueSize: 1000,
};

const LEVELS: Record<string, Level> = {
  DEBUG: 'debug', INFO: 'info', WARN: 'warn', WARNING: 'warn', ERROR: 'error', FATAL: 'fatal', CRITICAL: 'fatal',
};
const LEVEL_NUMBERS: Record<number, Level> = { 10: 'debug', 20: 'info', 30: 'warn', 40: 'error', 50: 'fatal' };

/** Vigil's component loggers. */
export const COMPONENTS = ['ha', 'postgres', 'dcs', 'api'] as const;

/**
 * Patroni's module loggers -> Vigil's (a module's submodules map with it): what `loggers` may name
 * besides Vigil's own `vigil` and `vigil.<component>`.
 */
const PATRONI_MODULES: [string, string][] = [
  ['patroni.ha', 'vigil.ha'],
  ['patroni.postgresql', 'vigil.postgres'],
  ['patroni.postmaster', 'vigil.postgres'],
  ['patroni.dcs', 'vigil.dcs'],
  ['patroni.api', 'vigil.api'],
  ['patroni.request', 'vigil.api'],
  ['patroni', 'vigil'],
];

/** The Vigil logger a `loggers` key stands for; undefined for one that has no Vigil counterpart. */
export function vigilLogger(name: string): string | undefined {
  if (name === 'vigil' || COMPONENTS.some((c) => name === `vigil.${c}`)) return name;
  for (const [mod, to] of PATRONI_MODULES) if (name === mod || name.startsWith(`${mod}.`)) return to;
  return undefined;
}

function level(issues: Issues, value: unknown, path: string): Level | undefined {
  if (typeof value === 'number' && LEVEL_NUMBERS[value] !== undefined) return LEVEL_NUMBERS[value];
  const l = typeof value === 'string' ? LEVELS[value.toUpperCase()] : undefined;
  if (l === undefined) issues.error(path, `expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got ${describe(value)}`);
  return l;
}

/** `mode`: an integer (YAML 0640 is octal already); a string "0640" or "0o640" is read as octal. */
function fileMode(issues: Issues, log: Obj): number | undefined {
  const v = log.mode;
  if (v === undefined || v === null) return undefined;
  let n: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'string' && /^\s*0o?[0-7]+\s*$/i.test(v)) n = parseInt(v.trim().replace(/^0o/i, ''), 8);
  else if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) n = Number(v);
  if (n === undefined || n < 0 || n > 0o7777) {
    issues.error('log.mode', `expected file permission bits such as 0640, got ${describe(v)}`);
    return undefined;
  }
  return n;
}

/** Why `dir` cannot hold the log file (as Patroni, Vigil does not create it); undefined when it can. */
function unusableDir(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, fsConstants.W_OK);
    return undefined;
  } catch (err) {
    return `${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}

function warnUnknownFields(issues: Issues, names: string[], path: string): void {
  const unknown = names.filter((f) => !(FORMAT_FIELDS as readonly string[]).includes(f));
  if (unknown.length > 0) {
    issues.warn(path, `Vigil has no ${unknown.map((f) => `%(${f})s`).join(', ')} (Python source locations and the like): printed empty (JSON: null). It has ${FORMAT_FIELDS.join(', ')}`);
  }
}

/** The format of the section: the string, and for json its list form. */
function parseFormat(issues: Issues, log: Obj, type: LogSettings['type']): Pick<LogSettings, 'format' | 'fields'> {
  const v = log.format;
  if (v === undefined || v === null || v === '') return { format: DEFAULT_FORMAT };
  if (typeof v === 'string') {
    warnUnknownFields(issues, formatFieldNames(v), 'log.format');
    return { format: v };
  }
  if (!Array.isArray(v) || type !== 'json') {
    issues.error('log.format', `expected a string${type === 'json' ? ' or a list of field names' : ' (a list of fields needs type: json)'}, got ${describe(v)}`);
    return { format: DEFAULT_FORMAT };
  }
  const fields: JsonField[] = [];
  for (const item of v as unknown[]) {
    if (typeof item === 'string') fields.push({ field: item, key: item });
    else if (isMap(item) && Object.values(item).every((k) => typeof k === 'string')) {
      for (const [field, key] of Object.entries(item)) fields.push({ field, key: key as string });
    } else issues.error('log.format', `expected each field to be a name or a {field: key} mapping, got ${describe(item)}`);
  }
  if (fields.length === 0) return { format: DEFAULT_FORMAT };
  warnUnknownFields(issues, fields.map((f) => f.field), 'log.format');
  return { format: fields.map((f) => `%(${f.field})s`).join(' '), fields };
}

/** The `log` section (Patroni's defaults where absent). */
export function parseLog(issues: Issues, root: Obj): LogSettings {
  const log = section(issues, root, 'log', '');
  if (log === undefined) return { ...DEFAULT_LOG, staticFields: {}, loggers: {} };
  checkKeys(issues, log, 'log', ['type', 'level', 'format', 'dateformat', 'static_fields', 'loggers', 'dir', 'mode', 'file_num', 'file_size', 'max_queue_size'], {
    traceback_level: 'does not apply to Vigil (ignored): errors carry their message, unexpected ones their stack, at every level',
    deduplicate_heartbeat_logs: 'does not apply to Vigil (ignored): a repeated "no action." line is always logged at DEBUG only',
  });
  const out: LogSettings = { ...DEFAULT_LOG, staticFields: {}, loggers: {} };

  const type = str(issues, log, 'type', 'log');
  if (type !== undefined) {
    if (type === 'plain' || type === 'json') out.type = type;
    else issues.error('log.type', `expected plain or json, got ${show(type)}`);
  }
  if (log.level !== undefined && log.level !== null) out.level = level(issues, log.level, 'log.level') ?? 'info';
  Object.assign(out, parseFormat(issues, log, out.type));
  const dateformat = str(issues, log, 'dateformat', 'log');
  if (dateformat !== undefined) out.dateformat = dateformat;

  const sf = log.static_fields;
  if (sf !== undefined && sf !== null) {
    if (!isMap(sf)) issues.error('log.static_fields', `expected a mapping, got ${describe(sf)}`);
    else {
      out.staticFields = { ...sf };
      if (out.type !== 'json') issues.warn('log.static_fields', 'used by type: json only (ignored for plain lines, as in Patroni)');
    }
  }

  const lg = log.loggers;
  if (lg !== undefined && lg !== null) {
    if (!isMap(lg)) issues.error('log.loggers', `expected a mapping of logger name to level, got ${describe(lg)}`);
    else {
      const ignored: string[] = [];
      for (const [name, value] of Object.entries(lg)) {
        const l = level(issues, value, `log.loggers.${name}`);
        const to = vigilLogger(name);
        if (to === undefined) ignored.push(name);
        else if (l !== undefined) out.loggers[to] = l;
      }
      if (ignored.length > 0) {
        issues.warn('log.loggers', `${ignored.join(', ')}: no such logger in Vigil (ignored; Vigil's are vigil, ${COMPONENTS.map((c) => `vigil.${c}`).join(', ')}, and Patroni's patroni.ha, patroni.postgresql, patroni.dcs, patroni.api map to them)`);
      }
    }
  }

  const dir = str(issues, log, 'dir', 'log');
  if (dir !== undefined) {
    out.dir = dir;
    const why = unusableDir(dir);
    if (why !== undefined) issues.error('log.dir', `${why}: the log file ${join(dir, LOG_FILE_NAME)} cannot be written there`);
  }
  const mode = fileMode(issues, log);
  if (mode !== undefined) out.mode = mode;
  out.fileNum = int(issues, log, 'file_num', 'log', 0, 1000) ?? out.fileNum;
  out.fileSize = int(issues, log, 'file_size', 'log', 0) ?? out.fileSize;
  out.maxQueueSize = int(issues, log, 'max_queue_size', 'log', 1, 1_000_000) ?? out.maxQueueSize;
  if (out.dir === undefined) {
    for (const k of ['mode', 'file_num', 'file_size'] as const) if (log[k] !== undefined && log[k] !== null) issues.warn(`log.${k}`, 'used with log.dir only (ignored)');
  }
  return out;
}

