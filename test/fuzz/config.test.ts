// Fuzzing of the local configuration loader (src/config/load.ts and its section readers) and of the
// dynamic configuration (src/config/dynamic.ts), in process, thousands of cases (see fuzz.ts for
// VIGIL_FUZZ_RUNS / VIGIL_FUZZ_SEED). Properties:
// - loadConfig never throws, whatever the text or the values in known keys; config is defined
//   exactly when no issue is an error;
// - a secret planted under a password-like key (any shape: string, list, mapping, nested), in the
//   file or in PATRONI_*_PASSWORD variables, never appears in an issue's path or message;
// - effectiveDynamicConfig never throws, its timings stay within Vigil's bounds, and a secret
//   planted under a secret key never appears in its warnings and errors; validateDynamicConfig
//   never throws and never shows the secret either.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import fc from 'fast-check';
import { parse, stringify } from 'yaml';

import { DYNAMIC_MAXIMUMS, effectiveDynamicConfig, validateDynamicConfig, VIGIL_MINIMUMS } from '../../src/config/dynamic.ts';
import { loadConfig } from '../../src/config/load.ts';
import { MINIMAL_CONFIG, PATRONI_EXAMPLE } from '../../src/config/testing.ts';
import type { ConfigIssue } from '../../src/config/types.ts';
import { anyValue, fuzz, oddString, SECRET, withSecret } from './fuzz.ts';

type Obj = Record<string, unknown>;

/** Keys Patroni's configuration knows, as paths (values set there at random). */
const KNOWN_PATHS: string[][] = [
  ['scope'], ['name'], ['namespace'], ['log', 'level'], ['tags'], ['tags', 'nofailover'], ['tags', 'failover_priority'], ['tags', 'clonefrom'],
  ['restapi'], ['restapi', 'listen'], ['restapi', 'connect_address'], ['restapi', 'authentication'], ['restapi', 'allowlist'],
  ['restapi', 'verify_client'], ['restapi', 'http_extra_headers'], ['restapi', 'certfile'],
  ['etcd3'], ['etcd3', 'host'], ['etcd3', 'hosts'], ['etcd3', 'protocol'], ['etcd3', 'username'], ['etcd', 'host'], ['consul', 'host'], ['zookeeper', 'hosts'],
  ['bootstrap'], ['bootstrap', 'dcs'], ['bootstrap', 'dcs', 'ttl'], ['bootstrap', 'dcs', 'loop_wait'], ['bootstrap', 'dcs', 'retry_timeout'],
  ['bootstrap', 'dcs', 'synchronous_mode'], ['bootstrap', 'dcs', 'postgresql', 'parameters'], ['bootstrap', 'dcs', 'postgresql', 'parameters', 'max_connections'],
  ['bootstrap', 'initdb'], ['bootstrap', 'pg_hba'], ['bootstrap', 'users'], ['bootstrap', 'users', 'admin'], ['bootstrap', 'users', 'admin', 'options'],
  ['postgresql'], ['postgresql', 'listen'], ['postgresql', 'data_dir'], ['postgresql', 'bin_dir'], ['postgresql', 'parameters'],
  ['postgresql', 'authentication'], ['postgresql', 'authentication', 'superuser'], ['postgresql', 'authentication', 'replication'],
  ['postgresql', 'authentication', 'superuser', 'username'], ['postgresql', 'pg_hba'], ['postgresql', 'callbacks'], ['postgresql', 'basebackup'],
  ['postgresql', 'pg_ctl_timeout'], ['postgresql', 'use_pg_rewind'], ['watchdog'], ['watchdog', 'mode'],
];

/** Where passwords and other secrets live. */
const SECRET_PATHS: string[][] = [
  ['postgresql', 'authentication', 'superuser', 'password'], ['postgresql', 'authentication', 'replication', 'password'],
  ['postgresql', 'authentication', 'rewind', 'password'], ['postgresql', 'authentication', 'superuser', 'sslpassword'],
  ['restapi', 'authentication', 'password'], ['restapi', 'keyfile_password'], ['etcd3', 'password'], ['etcd3', 'key_password'],
  ['bootstrap', 'users', 'admin', 'password'], ['ctl', 'authentication', 'password'], ['consul', 'token'], ['zookeeper', 'auth_data'],
];

const SECRET_ENV = ['PATRONI_SUPERUSER_PASSWORD', 'PATRONI_REPLICATION_PASSWORD', 'PATRONI_REWIND_PASSWORD', 'PATRONI_RESTAPI_PASSWORD', 'PATRONI_ETCD3_PASSWORD', 'PATRONI_admin_PASSWORD'];

function setPath(root: Obj, path: string[], value: unknown): void {
  let o = root;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k] as Obj;
  }
  o[path[path.length - 1]!] = value;
}

function leaked(issues: ConfigIssue[]): ConfigIssue | undefined {
  return issues.find((i) => i.path.includes(SECRET) || i.message.includes(SECRET));
}

function checkLoad(text: string, env: NodeJS.ProcessEnv = {}): ConfigIssue[] {
  const { config, issues } = loadConfig(text, env);
  assert.equal(config === undefined, issues.some((i) => i.severity === 'error'), 'config is undefined exactly when an issue is an error');
  const bad = leaked(issues);
  assert.equal(bad, undefined, `a secret in a message: ${JSON.stringify(bad)}`);
  return issues;
}

const bases = [parse(MINIMAL_CONFIG) as Obj, parse(PATRONI_EXAMPLE) as Obj];

test('random text: loadConfig never throws', async () => {
  await fuzz('config: random text', 2000, [fc.oneof(oddString(), fc.string({ maxLength: 400 }), fc.jsonValue().map((v) => stringify(v)))], (text) => {
    checkLoad(text);
  });
});

test('random values in known keys, a secret under password keys: never throws, never shows the secret', async () => {
  const edits = fc.array(fc.tuple(fc.constantFrom(...KNOWN_PATHS), anyValue()), { maxLength: 6 });
  const secrets = fc.array(fc.tuple(fc.constantFrom(...SECRET_PATHS), withSecret()), { minLength: 1, maxLength: 3 });
  const env = fc.dictionary(fc.constantFrom(...SECRET_ENV), fc.constant(SECRET), { maxKeys: 2 });
  await fuzz('config: known keys with random values', 1500, [fc.nat(1), edits, secrets, env, fc.boolean()], (which, e, s, vars, flow) => {
    const root = structuredClone(bases[which]!);
    for (const [p, v] of e) setPath(root, p, v);
    for (const [p, v] of s) setPath(root, p, v);
    checkLoad(stringify(root, flow ? { collectionStyle: 'flow' } : {}), vars);
  });
});

test('one slip in the text of a valid file (indentation, a lost or doubled line, a stray character): never shows the password', async () => {
  const text = PATRONI_EXAMPLE.replace('zalando', SECRET).replace('rep-pass', SECRET).replace('admin%', SECRET);
  const lines = text.split('\n');
  const slip = fc.record({
    line: fc.nat(lines.length - 1),
    kind: fc.constantFrom('indent', 'dedent', 'drop', 'double', 'insert', 'dash'),
    ch: fc.constantFrom(':', '-', '[', '{', '"', "'", '#', '&', '*', '!', '|', '>', '%', '@', '`', '\t', ' '),
    col: fc.nat(40),
  });
  await fuzz('config: slips in a valid file', 1000, [fc.array(slip, { minLength: 1, maxLength: 3 })], (slips) => {
    const ls = [...lines];
    for (const s of slips) {
      const l = ls[s.line] ?? '';
      if (s.kind === 'indent') ls[s.line] = '  ' + l;
      else if (s.kind === 'dedent') ls[s.line] = l.replace(/^ {1,2}/, '');
      else if (s.kind === 'drop') ls.splice(s.line, 1);
      else if (s.kind === 'double') ls.splice(s.line, 0, l);
      else if (s.kind === 'dash') ls[s.line] = l.replace(/^(\s*)/, '$1- ');
      else ls[s.line] = l.slice(0, s.col) + s.ch + l.slice(s.col);
    }
    checkLoad(ls.join('\n'));
  });
});

const DYN_KEYS = [
  'ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'primary_start_timeout', 'primary_stop_timeout', 'master_start_timeout',
  'synchronous_mode', 'synchronous_mode_strict', 'synchronous_node_count', 'failsafe_mode', 'check_timeline', 'pause', 'member_slots_ttl',
  'postgresql', 'slots', 'ignore_slots', 'standby_cluster', 'primary_race_backoff', 'max_timelines_history',
];
const DYN_PG = ['use_pg_rewind', 'use_slots', 'parameters', 'pg_hba', 'recovery_conf', 'authentication'];

test('dynamic configuration: random values in known keys never throw, bounds hold, secrets stay hidden', async () => {
  const dyn = fc.dictionary(fc.oneof(fc.constantFrom(...DYN_KEYS), fc.string({ maxLength: 8 })), anyValue(), { maxKeys: 8 });
  const pg = fc.dictionary(fc.constantFrom(...DYN_PG), anyValue(), { maxKeys: 4 });
  const params = fc.dictionary(fc.constantFrom('max_connections', 'wal_level', 'max_wal_senders', 'hot_standby', 'password_encryption', 'x'), anyValue(), { maxKeys: 4 });
  const secretKey = fc.constantFrom('password', 'superuser_password', 'token', 'auth_data', 'PASS', 'secret');
  await fuzz('dynamic config', 2000, [dyn, pg, params, secretKey, withSecret(), fc.boolean()], (raw, pgRaw, parameters, sk, secret, nestSecret) => {
    const doc: Obj = { ...raw };
    if (nestSecret) doc['postgresql'] = { ...pgRaw, parameters, authentication: { superuser: { [sk]: secret } } };
    else doc[sk] = secret;
    const problems = validateDynamicConfig(doc);
    assert.ok(!problems.some((p) => p.includes(SECRET)), `validateDynamicConfig shows the secret: ${JSON.stringify(problems)}`);
    const { config, warnings, errors } = effectiveDynamicConfig(doc);
    assert.ok(![...warnings, ...errors].some((p) => p.includes(SECRET)), `effectiveDynamicConfig shows the secret: ${JSON.stringify([...warnings, ...errors])}`);
    for (const k of ['ttl', 'loop_wait', 'retry_timeout'] as const) {
      const v = config[k];
      assert.ok(Number.isInteger(v) && v >= VIGIL_MINIMUMS[k] && v <= DYNAMIC_MAXIMUMS[k]!, `${k} ${v} out of bounds for ${JSON.stringify(doc)}`);
    }
    assert.ok(config.loop_wait + 2 * config.retry_timeout <= config.ttl, 'the ttl rule holds');
  });
});
