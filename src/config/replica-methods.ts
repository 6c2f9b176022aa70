// postgresql.create_replica_methods (or, when it is absent or empty, the legacy
// create_replica_method, as Patroni reads them): the ways a new replica's data directory is made,
// tried in order. `basebackup` is the built-in one (pg_basebackup with postgresql.basebackup's options);
// any other name is a user command configured in the section postgresql.<name>:
//   command   the command line (shlex rules); default: the method's name
//   keep_data do not empty the data directory before the command runs
//   no_params do not append Patroni's --scope, --role=replica, --datadir, --connstring arguments
//   no_leader (no_master) the method can work without a replication connection
//   every key but command (and, with no_params, the flags above): passed as --key=value
// A standby cluster's standby_cluster.create_replica_methods names methods the same way, their
// sections read from the local postgresql section whether or not it lists them (resolveReplicaMethods).

import { command } from './hooks.ts';
import { describe, isMap, Issues, sub, type Obj } from './fields.ts';

export interface ReplicaMethod {
  name: string;
  /** Absent for basebackup (the built-in method). */
  command?: string[];
  keepData: boolean;
  noParams: boolean;
  noLeader: boolean;
  /**
   * The method's section but `command`, in order, values as Python prints them; without
   * no_params the runner adds scope, role, datadir and connstring (replacing same-named keys in
   * place), and passes every pair as --key=value.
   */
  options: Array<[string, string]>;
}

const FLAGS = ['keep_data', 'no_params', 'no_leader', 'no_master'];

function flag(v: unknown): boolean {
  if (typeof v === 'string') return ['true', 'yes', 'on', '1'].includes(v.toLowerCase());
  return v === true || v === 1;
}

/** Python's str() of a scalar, as Patroni formats --key=value. */
function pyStr(v: unknown): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null) return 'None';
  return String(v);
}

/** The built-in method (pg_basebackup with postgresql.basebackup's options). */
function builtin(): ReplicaMethod {
  return { name: 'basebackup', keepData: false, noParams: false, noLeader: false, options: [] };
}

/**
 * Method `name` (not basebackup) from its section `secRaw` (undefined or null: none, as Patroni
 * allows: the command is then the name, with no options); problems are reported under `mp`
 * (undefined returned).
 */
function methodFromSection(issues: Issues, name: string, secRaw: unknown, mp: string): ReplicaMethod | undefined {
  let sec: Obj = {};
  if (secRaw !== undefined && secRaw !== null) {
    if (!isMap(secRaw)) {
      issues.error(mp, `expected the settings of replica method ${name} (a mapping), got ${describe(secRaw)}`);
      return undefined;
    }
    sec = secRaw;
  }
  const cmdText = sec.command ?? name;
  const argv = command(issues, cmdText, sub(mp, 'command'));
  if (argv === undefined) return undefined;
  const noParams = flag(sec.no_params);
  const noLeader = flag(sec.no_leader) || flag(sec.no_master);
  const options: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(sec)) {
    if (k === 'command') continue;
    if (noParams && FLAGS.includes(k)) continue;
    options.push([k, pyStr(v)]);
  }
  return { name, command: argv, keepData: flag(sec.keep_data), noParams, noLeader, options };
}

/**
 * The configured methods (undefined when create_replica_methods is absent, null or empty: plain
 * basebackup), and the postgresql keys their sections use (for the unknown-key check).
 */
export function parseReplicaMethods(issues: Issues, pg: Obj, path: string): { methods?: ReplicaMethod[]; sectionKeys: string[] } {
  // Patroni reads the legacy singular create_replica_method when create_replica_methods is absent or empty.
  const plural = pg.create_replica_methods;
  const key = (plural === undefined || plural === null || (Array.isArray(plural) && plural.length === 0)) && pg.create_replica_method !== undefined && pg.create_replica_method !== null
    ? 'create_replica_method'
    : 'create_replica_methods';
  const raw = pg[key];
  const p = sub(path, key);
  if (raw === undefined || raw === null) return { sectionKeys: [] };
  if (!Array.isArray(raw) || raw.some((m) => typeof m !== 'string' || m === '')) {
    issues.error(p, `expected a list of method names, got ${describe(raw)}`);
    return { sectionKeys: [] };
  }
  const names = raw as string[];
  if (names.length === 0) return { sectionKeys: [] };
  const methods: ReplicaMethod[] = [];
  const sectionKeys: string[] = [];
  for (const name of names) {
    if (name === 'basebackup') {
      methods.push(builtin());
      continue;
    }
    sectionKeys.push(name);
    const m = methodFromSection(issues, name, pg[name], sub(path, name));
    if (m !== undefined) methods.push(m);
  }
  return { methods, sectionKeys };
}

/**
 * Checks the sections postgresql.<name> of `names` that have one (basebackup excepted) as the
 * listed methods' are checked, problems as errors; returns those section keys (known keys for the
 * unknown-key check). For the methods bootstrap.dcs.standby_cluster.create_replica_methods names.
 */
export function checkMethodSections(issues: Issues, pg: Obj, path: string, names: readonly string[]): string[] {
  const keys = [...new Set(names)].filter((n) => n !== 'basebackup' && Object.hasOwn(pg, n));
  for (const name of keys) methodFromSection(issues, name, pg[name], sub(path, name));
  return keys;
}

/**
 * A standby cluster's standby_cluster.create_replica_methods resolved as Patroni resolves a remote
 * member's methods: an empty list means basebackup; `basebackup` is the built-in method; any other
 * name takes its settings from the local section postgresql.<name> (`sections`: the postgresql
 * keys that may be method sections, PostgresqlSettings.replicaMethodSections), whether or not
 * postgresql.create_replica_methods lists it, and a name without a section runs the command of
 * that name. A method whose section is unusable is left out and described in `problems`. Pure.
 */
export function resolveReplicaMethods(names: readonly string[], sections: Readonly<Obj>): { methods: ReplicaMethod[]; problems: string[] } {
  const issues = new Issues();
  const methods: ReplicaMethod[] = [];
  for (const name of names.length > 0 ? names : ['basebackup']) {
    if (name === 'basebackup') {
      methods.push(builtin());
      continue;
    }
    const m = methodFromSection(issues, name, Object.hasOwn(sections, name) ? sections[name] : undefined, sub('postgresql', name));
    if (m !== undefined) methods.push(m);
  }
  return { methods, problems: issues.list.map((i) => `${i.path}: ${i.message}`) };
}
