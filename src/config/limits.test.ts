// Issue 14: bounds of the dynamic configuration (and keeping the values in force when /config holds
// an unusable one), the cost of parsing a large YAML file, secrets kept out of messages, and
// absurd nesting refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig, show, validateDynamicConfig } from './dynamic.ts';
import { nestedTooDeeply } from './depth.ts';
import { Issues } from './fields.ts';
import { loadConfig } from './load.ts';
import { errors, MINIMAL_CONFIG, warnings } from './testing.ts';
import { MAX_CONFIG_BYTES, parseText } from './yaml.ts';
import { readJsonBody } from '../api/request.ts';

test('validation: timings above what the DCS accepts are refused', () => {
  assert.deepEqual(validateDynamicConfig({ ttl: 9000000001 }), ['ttl: must be between 1 and 86400, got 9000000001']);
  assert.deepEqual(validateDynamicConfig({ loop_wait: 86401, retry_timeout: '100000' }), [
    'loop_wait: must be between 1 and 86400, got 86401',
    'retry_timeout: must be between 1 and 86400, got 100000',
  ]);
  assert.deepEqual(validateDynamicConfig({ primary_start_timeout: 3e9 }), ['primary_start_timeout: must be between 0 and 86400, got 3000000000']);
  assert.deepEqual(validateDynamicConfig({ member_slots_ttl: '400d' }), ['member_slots_ttl: must be between 0 and 31536000 seconds, got 34560000']);
  assert.deepEqual(validateDynamicConfig({ ttl: 86400, loop_wait: 10, retry_timeout: 10 }), []);
});

test('applying: an unusable value keeps the value in force, as an error', () => {
  const inForce = effectiveDynamicConfig({ ttl: 10, loop_wait: 2, retry_timeout: 3 }).config;
  const r = effectiveDynamicConfig({ ttl: 9000000001, loop_wait: 2, retry_timeout: 'soon' }, inForce);
  assert.deepEqual([r.config.ttl, r.config.loop_wait, r.config.retry_timeout], [10, 2, 3]);
  assert.deepEqual(r.errors, [
    'ttl: 9000000001 is above the maximum 86400; using 10, the value in force',
    'retry_timeout: expected an integer, got "soon"; using 3, the value in force',
  ]);
  // Without a configuration in force (first read at start-up): the defaults.
  const first = effectiveDynamicConfig({ ttl: 9000000001 });
  assert.equal(first.config.ttl, 30);
  assert.match(first.errors[0] ?? '', /ttl: 9000000001 is above the maximum 86400; using the default 30/);
  // A whole document nested too deeply keeps the configuration in force entirely.
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  const d = effectiveDynamicConfig({ ttl: 50, x: deep }, inForce);
  assert.equal(d.config, inForce);
  assert.deepEqual(d.errors, ['nested too deeply (over 100 levels); keeping the configuration in force']);
  // A valid value is applied.
  assert.equal(effectiveDynamicConfig({ ttl: 86400 }, inForce).config.ttl, 86400);
});

test('YAML: 40,000 keys parse in linear time; duplicates still warn; the size is bounded', () => {
  const lines = ['scope: demo', 'bootstrap:', '  dcs:', '    postgresql:', '      parameters:'];
  for (let i = 0; i < 40_000; i++) lines.push(`        p_${i}: v${i}`);
  lines.push('        p_7: again');
  const text = lines.join('\n') + '\n';
  const issues = new Issues();
  const t0 = performance.now();
  const v = parseText(text, issues, '') as { bootstrap: { dcs: { postgresql: { parameters: Record<string, string> } } } };
  const ms = performance.now() - t0;
  console.log(`# parsed ${text.length} bytes, 40,000 keys, in ${ms.toFixed(0)} ms`);
  assert.equal(Object.keys(v.bootstrap.dcs.postgresql.parameters).length, 40_000);
  assert.equal(v.bootstrap.dcs.postgresql.parameters.p_7, 'again');
  assert.deepEqual(issues.list.map((i) => i.message), ['Map keys must be unique at line 40006, column 9; the last value wins']);

  const big = new Issues();
  assert.equal(parseText('a: "' + 'x'.repeat(MAX_CONFIG_BYTES) + '"\n', big, 'f.yml: '), undefined);
  assert.match(big.list[0]?.message ?? '', /^f\.yml: the configuration is \d+ bytes, over the limit of 1048576 bytes \(1 MiB\)$/);
});

test('YAML: nesting over 100 levels is refused, not a stack overflow', () => {
  const issues = new Issues();
  assert.equal(parseText('a: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n', issues, ''), undefined);
  assert.match(issues.list.map((i) => i.message).join('\n'), /nested too deeply \(over 100 levels\)/);
});

test('secrets: a password of the wrong type is described, never shown', () => {
  const cases: [string, RegExp][] = [
    ['[hunter2, s3cret]', /superuser\.password: expected a string, got a list \(value hidden\)$/],
    ['{x: hunter2}', /superuser\.password: expected a string, got a mapping \(value hidden\)$/],
    ['yes', /superuser\.password: expected a string, got a boolean \(value hidden; YAML 1\.1/],
  ];
  for (const [value, want] of cases) {
    const text = MINIMAL_CONFIG.replace('superuser: {username: postgres}', `superuser: {username: postgres, password: ${value}}`);
    const { issues } = loadConfig(text, {});
    const all = issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    assert.match(all, want);
    assert.doesNotMatch(all, /hunter2|s3cret/);
  }
  // A bootstrap user given as a bare string (the password, with the mapping forgotten).
  const users = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  users:\n    admin: hunter2\n', {});
  assert.ok(errors(users.issues).some((e) => e.includes('bootstrap.users.admin') && e.includes('a string (value hidden)')));
  assert.doesNotMatch(JSON.stringify(users.issues), /hunter2/);
  // Containers and URLs: values under secret keys and URL passwords are hidden.
  assert.equal(show([{ username: 'u', password: 'hunter2' }]), '[{"username":"u","password":"(hidden)"}]');
  assert.equal(show('http://root:hunter2@127.0.0.1:2379'), '"http://root:(hidden)@127.0.0.1:2379"');
  const list = loadConfig(MINIMAL_CONFIG.replace('postgresql:', 'restapi_x: [{token: hunter2}]\npostgresql:'), {});
  assert.doesNotMatch(JSON.stringify(list.issues), /hunter2/);
  void warnings;
});

test('nesting: depth is measured without recursion; REST bodies over 100 levels get 400', () => {
  assert.equal(nestedTooDeeply({ a: [{ b: 1 }] }), false);
  let v: unknown = 0;
  for (let i = 0; i < 100; i++) v = [v];
  assert.equal(nestedTooDeeply(v), false);
  assert.equal(nestedTooDeeply([v]), true);
  const body = `{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
  const r = readJsonBody({ method: 'PATCH', path: '/config', query: new URLSearchParams(), headers: { 'content-length': String(body.length) }, body }, false);
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.response.status, 400);
    assert.match(r.response.body ?? '', /nested too deeply \(over 100 levels\)/);
  }
});

test('loadConfigFile parses a large file in a worker thread: same result as loadConfig; the loop keeps running', async () => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadConfigFile } = await import('./load.ts');
  const dir = await mkdtemp(join(tmpdir(), 'vigil-bigcfg-'));
  try {
    const lines = [MINIMAL_CONFIG.trimEnd(), 'bootstrap:', '  dcs:', '    postgresql:', '      parameters:'];
    for (let i = 0; i < 40_000; i++) lines.push(`        p_${i}: v${i}`);
    lines.push('  users:', '    admin: hunter2');
    const text = lines.join('\n') + '\n';
    const file = join(dir, 'big.yml');
    await writeFile(file, text);
    let ticks = 0;
    let longest = 0;
    let last = performance.now();
    const iv = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = performance.now();
    const got = await loadConfigFile(file, {});
    const end = performance.now();
    clearInterval(iv);
    longest = Math.max(longest, end - last);
    // Printed, not asserted (no timed assertions): the longest time the loop was held.
    console.log(`# loadConfigFile: ${(end - t0).toFixed(0)} ms, ${ticks} timer ticks meanwhile, longest gap between ticks ${longest.toFixed(0)} ms`);
    assert.deepEqual(got.issues, loadConfig(text, {}).issues);
    assert.ok(errors(got.issues).some((e) => e.includes('bootstrap.users.admin')));
    assert.doesNotMatch(JSON.stringify(got.issues), /hunter2/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
