// docs/patroni-keys.md against the loader: every row marked implemented, refused or warned is
// checked with pure loader calls (no servers), so the table cannot drift silently from the code.
//
// Contract checked per row (the value set is "x" unless VALUES says otherwise):
// - local implemented: no issue at the key's path (or an ancestor's) says the key is unknown, refused or inapplicable.
// - local refused: an error at the key's path (or an ancestor: a refused section) says "not
//   implemented" / "not supported"; the configuration is not loaded.
// - local warned: a warning at the key's path and no error there.
// - dynamic: refused keys are refused by unimplementedDynamicKeys, validateDynamicConfig and in
//   bootstrap.dcs; implemented ones by none; warned ones warn in bootstrap.dcs.
// - env: implemented variables are consumed by applyEnvironment and not refused; refused ones give
//   an error named by the variable; warned ones a warning named by it; unknown ones are not read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unimplementedDynamicKeys, validateDynamicConfig } from './dynamic.ts';
import { applyEnvironment } from './env.ts';
import { Issues, type Obj } from './fields.ts';
import { loadConfig } from './load.ts';
import type { ConfigIssue } from './types.ts';

const DCS = ['consul', 'etcd', 'etcd3', 'exhibitor', 'kubernetes', 'raft', 'zookeeper'];

interface Row {
  key: string;
  scope: 'local' | 'dynamic' | 'env';
  status: 'implemented' | 'refused' | 'warned' | 'unknown';
}

function readRows(): Row[] {
  const text = readFileSync(new URL('../../docs/patroni-keys.md', import.meta.url), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| `([^`]+)` \| (local|dynamic|env) \| (implemented|refused|warned|unknown) \|( .*)? \|$/.exec(line);
    if (m) rows.push({ key: m[1] as string, scope: m[2] as Row['scope'], status: m[3] as Row['status'] });
    else if (/^\| `/.test(line)) throw new Error(`unreadable row in docs/patroni-keys.md: ${line}`);
  }
  return rows;
}

/** Values for keys where "x" would be read as something else than "set". */
const VALUES: Record<string, unknown> = {
  'kubernetes.bypass_api_service': true,
  'postgresql.use_slots': true,
  primary_race_backoff: 5,
  standby_cluster: { host: 'h' },
  PATRONI_KUBERNETES_BYPASS_API_SERVICE: 'true',
};

const REFUSAL = /not implemented|not supported/;
const NOT_KNOWN = /unknown (key|callback)|not implemented|not supported|does not apply|cannot be honoured/;

/** The minimal valid document, on the DCS section `dcs` (none when undefined). */
function base(dcs: string | undefined): Obj {
  const doc: Obj = {
    scope: 's',
    name: 'n1',
    restapi: { listen: '127.0.0.1:8008' },
    postgresql: {
      listen: '127.0.0.1:5432',
      data_dir: '/var/lib/vigil/n1',
      authentication: { superuser: { username: 'postgres' }, replication: { username: 'replicator' } },
    },
    bootstrap: {},
  };
  if (dcs === 'zookeeper') doc.zookeeper = { hosts: ['127.0.0.1:2181'] };
  else if (dcs === 'kubernetes') doc.kubernetes = { labels: { application: 'vigil' } };
  else if (dcs === 'etcd' || dcs === 'etcd3') doc[dcs] = { host: '127.0.0.1:2379' };
  else if (dcs !== undefined) doc[dcs] = {};
  return doc;
}

function setPath(doc: Obj, path: string[], value: unknown): void {
  let node = doc;
  for (const k of path.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Obj;
  }
  node[path[path.length - 1] as string] = value;
}

/** The document with the local key `key` set, and the key's concrete path. */
function localDoc(key: string): { doc: Obj; path: string } {
  const top = key.split('.')[0] as string;
  const doc = base(DCS.includes(top) ? top : 'etcd3');
  if (DCS.includes(top) && top !== 'etcd3') delete doc.etcd3;
  let path = key.replace('<custom>', 'mytag');
  if (key.startsWith('bootstrap.<method>')) {
    path = key.replace('<method>', 'mymethod');
    setPath(doc, ['bootstrap', 'method'], 'mymethod');
    setPath(doc, ['bootstrap', 'mymethod', 'command'], 'true');
  }
  if (key.startsWith('postgresql.<method>')) {
    path = key.replace('<method>', 'mymethod');
    setPath(doc, ['postgresql', 'create_replica_methods'], ['mymethod']);
    setPath(doc, ['postgresql', 'mymethod'], { command: 'true' });
    return { doc, path };
  }
  setPath(doc, path.split('.'), Object.hasOwn(VALUES, key) ? VALUES[key] : 'x');
  return { doc, path };
}

const at = (issues: ConfigIssue[], path: string, severity?: 'error' | 'warning'): ConfigIssue[] =>
  issues.filter((i) => i.path === path && (severity === undefined || i.severity === severity));
const show = (issues: ConfigIssue[]): string => issues.map((i) => `${i.severity} ${i.path}: ${i.message}`).join('\n');

function load(doc: Obj, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfig> {
  return loadConfig(JSON.stringify(doc), env);
}

/** Collects a failure instead of stopping at the first one, so every drifted row is reported. */
function expect(failures: string[], ok: boolean, message: string): void {
  if (!ok) failures.push(message);
}
function expectNone(failures: string[], found: unknown[], message: string): void {
  if (found.length > 0) failures.push(message);
}

const rows = readRows();

test('docs/patroni-keys.md has rows for every scope and no duplicates', () => {
  for (const scope of ['local', 'dynamic', 'env']) assert.ok(rows.some((r) => r.scope === scope), scope);
  const seen = new Set<string>();
  for (const r of rows) {
    const id = `${r.scope} ${r.key}`;
    assert.ok(!seen.has(id), `duplicate row ${id}`);
    seen.add(id);
  }
});

test('local keys: the loader does what the table says', () => {
  const failures: string[] = [];
  for (const row of rows.filter((r) => r.scope === 'local')) {
    const { doc, path } = localDoc(row.key);
    const { config, issues } = load(doc);
    const parts = path.split('.');
    const ancestors = parts.map((_, n) => parts.slice(0, n + 1).join('.'));
    if (row.status === 'implemented') {
      const here = issues.filter((i) => ancestors.includes(i.path));
      expectNone(failures, here.filter((i) => NOT_KNOWN.test(i.message)), `${row.key} is marked implemented:\n${show(here)}`);
    } else if (row.status === 'refused') {
      const refusals = issues.filter((i) => i.severity === 'error' && ancestors.includes(i.path) && REFUSAL.test(i.message));
      expect(failures, refusals.length > 0, `${row.key} is marked refused:\n${show(issues)}`);
      expect(failures, config === undefined, row.key);
    } else if (row.status === 'warned') {
      expect(failures, at(issues, path, 'warning').length > 0, `${row.key} is marked warned:\n${show(issues)}`);
      expectNone(failures, at(issues, path, 'error'), row.key);
    }
  }
  assert.deepEqual(failures, []);
});

test('dynamic keys: refused wherever a dynamic configuration enters, as the table says', () => {
  const failures: string[] = [];
  for (const row of rows.filter((r) => r.scope === 'dynamic')) {
    const dyn: Obj = {};
    setPath(dyn, row.key.split('.'), Object.hasOwn(VALUES, row.key) ? VALUES[row.key] : 'x');
    const refusedHere = unimplementedDynamicKeys(dyn).filter((n) => n.path === row.key);
    const doc = base('etcd3');
    setPath(doc, ['bootstrap', 'dcs'], dyn);
    const { issues } = load(doc);
    const path = `bootstrap.dcs.${row.key}`;
    if (row.status === 'implemented') {
      expectNone(failures, refusedHere, `${row.key} is marked implemented`);
      expectNone(failures, at(issues, path).filter((i) => /not allowed|not implemented/.test(i.message)), `${row.key} is marked implemented:\n${show(issues)}`);
    } else if (row.status === 'refused') {
      expect(failures, refusedHere.length === 1, `${row.key} is marked refused`);
      expect(failures, validateDynamicConfig(dyn).some((e) => e.startsWith(`${row.key}: `)), row.key);
      expect(failures, at(issues, path, 'error').some((i) => REFUSAL.test(i.message)), `${row.key} in bootstrap.dcs:\n${show(issues)}`);
    } else if (row.status === 'warned') {
      expect(failures, at(issues, path, 'warning').length > 0, `${row.key} is marked warned:\n${show(issues)}`);
      expectNone(failures, at(issues, path, 'error'), row.key);
    }
  }
  assert.deepEqual(failures, []);
});

test('environment variables: read, refused or warned as the table says', () => {
  const failures: string[] = [];
  for (const row of rows.filter((r) => r.scope === 'env')) {
    const name = row.key;
    const section = /^PATRONI_([A-Z0-9]+)_/.exec(name)?.[1]?.toLowerCase();
    const dcs = section !== undefined && DCS.includes(section) ? section : undefined;
    const doc = base(dcs ?? 'etcd3');
    if (dcs !== undefined) delete doc[dcs];
    const env: NodeJS.ProcessEnv = { [name]: String(Object.hasOwn(VALUES, name) ? VALUES[name] : 'x') };
    if (name === 'PATRONI_ADMIN_OPTIONS') env.PATRONI_ADMIN_PASSWORD = 'x';
    const consumed = new Issues();
    applyEnvironment(structuredClone(doc), env, consumed);
    const read = [...consumed.origins.values()].includes(name);
    const { config, issues } = load(doc, env);
    const here = at(issues, name);
    if (row.status === 'implemented') {
      expect(failures, read, `${name} is marked implemented but not read`);
      expectNone(failures, here.filter((i) => NOT_KNOWN.test(i.message)), `${name} is marked implemented:\n${show(here)}`);
    } else if (row.status === 'refused') {
      expect(failures, at(issues, name, 'error').some((i) => REFUSAL.test(i.message)), `${name} is marked refused:\n${show(issues)}`);
      expect(failures, config === undefined, name);
    } else if (row.status === 'warned') {
      expect(failures, read, `${name} is marked warned but not read`);
      expect(failures, at(issues, name, 'warning').length > 0, `${name} is marked warned:\n${show(issues)}`);
      expectNone(failures, at(issues, name, 'error'), name);
    } else {
      expect(failures, !read, `${name} is marked unknown but is read`);
    }
  }
  assert.deepEqual(failures, []);
});
