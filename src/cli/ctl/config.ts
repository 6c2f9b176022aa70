// `vigil show-config [CLUSTER]` and `vigil edit-config [CLUSTER]` (spec §3.2): the /config key
// read from and written to the DCS directly, as patronictl does (no REST call). Writes are a
// compare-and-set on the version read, so a concurrent change aborts instead of being lost.

import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter as pathDelimiter, join } from 'node:path';
import { accessSync, constants as fsConstants } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { nestedTooDeeply, tooDeepMessage } from '../../config/depth.ts';
import { dynamicConfigProblems, unimplementedDynamicKeys } from '../../config/dynamic.ts';
import { CliError, UsageError } from '../args.ts';
import { formatConfig, optBool, optList, optString, runCommand } from './common.ts';
import { confirm, type Io } from './io.ts';
import { unifiedDiff } from './diff.ts';

const SHOW_USAGE = `usage: vigil show-config [-c CONFIG] [-d DCS_URL] [CLUSTER]

Print the dynamic configuration (/config key) of the cluster as YAML.`;

const EDIT_USAGE = `usage: vigil edit-config [-c CONFIG] [-d DCS_URL] [-q] [-s KEY=VAL]... [-p NAME=VAL]... [--apply FILE|-] [--replace FILE|-] [--force] [CLUSTER]

Change the dynamic configuration (/config key). Without -s/-p/--apply/--replace, opens $EDITOR
(else editor, vi) on the YAML. Prints a unified diff and asks 'Apply these changes?' unless --force.

  -s, --set KEY=VAL     set a dotted path; VAL is YAML; null (or nothing) deletes (repeatable)
  -p, --pg NAME=VAL     shorthand for -s postgresql.parameters.NAME=VAL (NAME may contain dots)
      --apply FILE      merge YAML from FILE (- for stdin; null deletes)
      --replace FILE    replace the configuration with YAML from FILE (- for stdin)
      --force           do not ask for confirmation (mandatory with -)
  -q, --quiet           do not print the diff`;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** YAML 1.1 as PyYAML's safe_load reads it; a parse error is a CliError naming `what`. */
export function loadYaml(text: string, what: string): unknown {
  try {
    return parseYaml(text, { version: '1.1' }) as unknown;
  } catch (err) {
    throw new CliError(`cannot parse ${what} as YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/**
 * Set `path` (already split) to `value` in `config`, in place; null deletes; emptied objects on
 * the way are removed. Below postgresql.parameters the rest of the path is one GUC name, dots included.
 */
function setPath(config: Record<string, unknown>, path: string[], value: unknown, prefix: string[] = []): void {
  if (prefix.length === 2 && prefix[0] === 'postgresql' && prefix[1] === 'parameters') path = [path.join('.')];
  const key = path[0]!;
  if (path.length === 1) {
    if (value === null || value === undefined) delete config[key];
    else config[key] = value;
    return;
  }
  if (!isObject(config[key])) config[key] = {};
  const child = config[key] as Record<string, unknown>;
  setPath(child, path.slice(1), value, [...prefix, key]);
  if (Object.keys(child).length === 0) delete config[key];
}

/**
 * Apply `KEY=VAL` pairs (patronictl --set) to a copy of `data`. Keys are dotted paths; values are
 * YAML. A pair without `=` is an error.
 */
export function applyConfigChanges(data: Record<string, unknown>, pairs: string[]): Record<string, unknown> {
  const out = clone(data);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (!pair || eq < 0) throw new CliError(`Invalid parameter setting ${pair}`);
    const keyPath = pair.slice(0, eq).trim();
    if (keyPath === '') throw new CliError(`Invalid parameter setting ${pair}`);
    setPath(out, keyPath.split('.'), loadYaml(pair.slice(eq + 1), `the value of ${keyPath}`));
  }
  return out;
}

/** `-p NAME=VAL` as the equivalent `-s` pair. */
export function pgPair(pair: string): string {
  return `postgresql.parameters.${pair.replace(/^\s+/, '')}`;
}

/**
 * Patroni's patch_config, in place: null deletes, objects merge into objects, anything else
 * replaces when its string form differs. Returns whether something changed.
 */
export function patchConfig(config: Record<string, unknown>, data: Record<string, unknown>): boolean {
  let changed = false;
  for (const [name, value] of Object.entries(data)) {
    if (value === null || value === undefined) {
      if (name in config) {
        if (config[name] !== null && config[name] !== undefined) changed = true;
        delete config[name];
      }
    } else if (name in config) {
      const cur = config[name];
      if (isObject(value)) {
        if (isObject(cur)) {
          if (patchConfig(cur, value)) changed = true;
        } else {
          config[name] = value;
          changed = true;
        }
      } else if (pyStr(cur) !== pyStr(value)) {
        config[name] = value;
        changed = true;
      }
    } else {
      config[name] = value;
      changed = true;
    }
  }
  return changed;
}

/** Python's str() of a JSON-like scalar, enough to compare values as patch_config does. */
function pyStr(v: unknown): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Deep equality of JSON-like values, key order ignored (Python dict ==). */
export function sameConfig(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'boolean') return a === Number(b);
  if (typeof b === 'number' && typeof a === 'boolean') return b === Number(a);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameConfig(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameConfig(a[k], b[k]));
  }
  return false;
}

/** The YAML of an --apply/--replace source as an object ({} for an empty document). */
function asConfigObject(doc: unknown, what: string): Record<string, unknown> {
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw new CliError(`${what} must hold a YAML mapping`);
  return doc;
}

async function readSource(io: Io, file: string): Promise<string> {
  if (file === '-') {
    const lines: string[] = [];
    for (let l = await io.readLine(); l !== undefined; l = await io.readLine()) lines.push(l);
    return lines.join('\n');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(pathDelimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Edit `before` in $EDITOR (else editor, vi) in a temporary file; returns the edited text. */
async function invokeEditor(before: string, cluster: string): Promise<string> {
  const editor = process.env['EDITOR'] || which('editor') || which('vi');
  if (!editor) throw new CliError('EDITOR environment variable is not set. editor or vi are not available');
  const dir = await mkdtemp(join(tmpdir(), `${cluster.replace(/[^A-Za-z0-9_.-]/g, '_')}-config-`));
  const file = join(dir, 'config.yaml');
  try {
    await writeFile(file, before);
    const r = spawnSync(editor, [file], { stdio: 'inherit' });
    if (r.error) throw new CliError(`cannot run editor ${editor}: ${r.error.message}`);
    if (r.status !== 0) throw new CliError(`Editor exited with return code ${r.status ?? r.signal ?? 'unknown'}`);
    return await readFile(file, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function colourDiff(lines: string[]): string[] {
  return lines.map((l) =>
    l.startsWith('@@') ? `\x1b[36m${l}\x1b[0m` : l.startsWith('+') ? `\x1b[32m${l}\x1b[0m` : l.startsWith('-') ? `\x1b[31m${l}\x1b[0m` : l,
  );
}

export async function runShowConfig(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    SHOW_USAGE,
    {},
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`show-config takes at most one CLUSTER, got ${p.positionals.length}`);
      const ctx = await context();
      const name = ctx.clusterName(p.positionals[0]);
      const view = await ctx.readCluster(name);
      if (view.config !== undefined && nestedTooDeeply(view.config)) throw new CliError(`the configuration in the DCS is ${tooDeepMessage()}; replace it with edit-config --replace`);
      if (view.config !== undefined) ctx.io.out(`${formatConfig(view.config)}\n`);
      return 0;
    },
    io,
  );
}

export async function runEditConfig(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    EDIT_USAGE,
    {
      quiet: { type: 'boolean', short: 'q' },
      set: { type: 'string', short: 's', multiple: true },
      pg: { type: 'string', short: 'p', multiple: true },
      apply: { type: 'string' },
      replace: { type: 'string' },
      force: { type: 'boolean' },
    },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`edit-config takes at most one CLUSTER, got ${p.positionals.length}`);
      const quiet = optBool(p, 'quiet');
      const force = optBool(p, 'force');
      const pairs = [...optList(p, 'set'), ...optList(p, 'pg').map(pgPair)];
      const applyFile = optString(p, 'apply');
      const replaceFile = optString(p, 'replace');
      if (applyFile === '-' && replaceFile === '-') throw new UsageError('--apply and --replace cannot both read stdin');
      const ctx = await context();
      const name = ctx.clusterName(p.positionals[0]);
      const view = await ctx.readCluster(name);
      if (view.config === undefined) throw new CliError(`The config key does not exist in the cluster ${name}`);
      const original = view.config;
      const before = formatConfig(original);

      let changed: Record<string, unknown> = clone(original);
      let after: string | undefined;
      if (replaceFile !== undefined) {
        changed = asConfigObject(loadYaml(await readSource(ctx.io, replaceFile), replaceFile), replaceFile);
        after = formatConfig(changed);
      }
      if (applyFile !== undefined) {
        changed = clone(changed);
        patchConfig(changed, asConfigObject(loadYaml(await readSource(ctx.io, applyFile), applyFile), applyFile));
        after = formatConfig(changed);
      }
      if (pairs.length > 0) {
        changed = applyConfigChanges(changed, pairs);
        after = formatConfig(changed);
      }
      if (after === undefined) {
        after = await invokeEditor(before, name);
        changed = asConfigObject(loadYaml(after, 'the edited configuration'), 'the edited configuration');
      }

      if (sameConfig(original, changed)) {
        if (!quiet) ctx.io.out('Not changed\n');
        return 0;
      }
      // What PATCH /config refuses is refused here too (impossible values, keys Vigil does not
      // implement yet); problems already in /config (written by Patroni, say) do not block other edits.
      const problems = (raw: unknown) => [...dynamicConfigProblems(raw), ...unimplementedDynamicKeys(raw)];
      const already = new Set(problems(original).map((p) => `${p.path}\n${p.message}`));
      const refused = problems(changed).filter((p) => !already.has(`${p.path}\n${p.message}`));
      if (refused.length > 0) throw new CliError(refused.map((p) => `${p.path}: ${p.message}`).join('\n'));
      if (!quiet) {
        const lines = unifiedDiff(before, after);
        ctx.io.out(`${(process.stdout.isTTY === true ? colourDiff(lines) : lines).join('\n')}\n`);
      }
      if ((applyFile === '-' || replaceFile === '-') && !force) {
        ctx.io.out('Use --force option to apply changes\n');
        return 0;
      }
      if (!force && !(await confirm(ctx.io, 'Apply these changes?'))) return 0;
      let ok: boolean;
      try {
        ok = await ctx.dcs(name).writeConfig(changed, view.configVersion);
      } catch (err) {
        throw ctx.dcsError(`cannot write the configuration of '${name}'`, err);
      }
      if (!ok) throw new CliError('Config modification aborted due to concurrent changes');
      ctx.io.out('Configuration changed\n');
      return 0;
    },
    io,
  );
}
