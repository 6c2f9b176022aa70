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
//
// The work is split by responsibility: fields.ts (typed readers and the issue list), yaml.ts,
// env.ts (PATRONI_* overrides), options.ts (initdb/pg_basebackup), and one file per section
// (restapi, etcd3, postgresql, bootstrap, node: tags/log/watchdog).

import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { show } from './dynamic.ts';
import { applyEnvironment } from './env.ts';
import { checkKeys, describe, isMap, Issues, NOT_APPLICABLE, refused, str, type Obj } from './fields.ts';
import { parseBootstrap } from './bootstrap.ts';
import { DCS_SECTIONS, parseDcs } from './dcs.ts';
import { parseLog } from './log.ts';
import { parseTags, parseWatchdog } from './node.ts';
import { parsePostgresql } from './postgresql.ts';
import { parseRestApi } from './restapi.ts';
import type { Config, ConfigIssue } from './types.ts';
import { parseText, parseTextOffLoop } from './yaml.ts';

export { splitHostPort } from './fields.ts';

const RESERVED_NAME = '__patroni_strict_sync_replica_placeholder__';

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
function buildConfig(root: Obj, issues: Issues, env: NodeJS.ProcessEnv): Config | undefined {
  // The DCS sections are checked by parseDcs (src/config/dcs.ts).
  checkKeys(issues, root, '', ['scope', 'name', 'namespace', 'restapi', 'bootstrap', 'postgresql', 'tags', 'log', 'watchdog', ...DCS_SECTIONS], {
    citus: refused('Citus clusters'),
    ctl: 'read by vigil (the control commands); the agent uses only certfile, keyfile, keyfile_password and cacert, for its calls to its peers',
    thread_pool_size: NOT_APPLICABLE,
    thread_stack_size: NOT_APPLICABLE,
  });
  const scope = str(issues, root, 'scope', '', true);
  const name = str(issues, root, 'name', '', true);
  if (name === RESERVED_NAME) issues.error('name', `${show(name)} is reserved`);
  else if (name !== undefined && name.includes('/')) issues.error('name', `must not contain "/", got ${show(name)}`);
  if (scope !== undefined && scope.includes('/')) issues.error('scope', `must not contain "/", got ${show(scope)}`);
  const namespace = normalizeNamespace(str(issues, root, 'namespace', ''));
  const log = parseLog(issues, root);
  const logLevel = log.level;
  const restapi = parseRestApi(issues, root);
  const dcs = parseDcs(issues, root, env);
  const bootstrap = parseBootstrap(issues, root);
  const dcsPg = isMap(root.bootstrap) && isMap(root.bootstrap.dcs) && isMap(root.bootstrap.dcs.postgresql) ? root.bootstrap.dcs.postgresql : undefined;
  const postgresql = parsePostgresql(issues, root, name, dcsPg);
  const tags = parseTags(issues, root);
  const watchdog = parseWatchdog(issues, root);

  if (issues.hasErrors || scope === undefined || name === undefined || restapi === undefined || dcs === undefined || postgresql === undefined) {
    return undefined;
  }
  return deepFreeze({ scope, namespace, name, restapi, ...dcs, bootstrap, postgresql, tags, logLevel, log, watchdog });
}

// ---------------------------------------------------------------------------------------------
// Entry points

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
  const config = buildConfig(root, issues, env);
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
    // No file label: callers print the path in front of every issue (see formatIssues). Parsed
    // off the event loop when large (a reload runs on the agent's loop).
    const issues = new Issues();
    const raw = await parseTextOffLoop(text, issues, '');
    if (raw === undefined && issues.hasErrors) return { config: undefined, issues: issues.list };
    return finish(raw, env, issues);
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
    const raw = await parseTextOffLoop(text, issues, `${n}: `);
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

/** The variable that may hold the whole configuration (YAML) when no file is given. */
export const PATRONI_CONFIGURATION = 'PATRONI_CONFIGURATION';

/**
 * The configuration when no file is given, as Patroni takes it: the YAML document in
 * PATRONI_CONFIGURATION when that is set and not empty (the other PATRONI_* variables are then not
 * applied), else the PATRONI_* variables alone. `source` names where it came from, for messages.
 */
export function loadConfigFromEnvironment(env: NodeJS.ProcessEnv): { config: Config | undefined; issues: ConfigIssue[]; source: string } {
  const doc = env[PATRONI_CONFIGURATION];
  if (doc !== undefined && doc.trim() !== '') {
    return { ...loadConfig(doc, {}), source: PATRONI_CONFIGURATION };
  }
  return { ...finish({}, env, new Issues()), source: 'the environment' };
}
