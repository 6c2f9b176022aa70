import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';

import { deepMerge, mergeIntoFile, parseExtra } from './node-config.ts';

test('deepMerge merges mappings recursively and replaces scalars and arrays', () => {
  const base = { a: 1, b: { c: 2, d: [1, 2] }, e: 'x' };
  const out = deepMerge(base, { b: { d: [3], f: true }, e: null, g: { h: 1 } });
  assert.deepEqual(out, { a: 1, b: { c: 2, d: [3], f: true }, e: null, g: { h: 1 } });
  assert.deepEqual(base, { a: 1, b: { c: 2, d: [1, 2] }, e: 'x' }, 'the base is not modified');
});

test('parseExtra accepts JSON and YAML mappings and refuses anything else', () => {
  assert.deepEqual(parseExtra('{"vigil":{"fast_failover":true}}'), { vigil: { fast_failover: true } });
  assert.deepEqual(parseExtra('bootstrap:\n  dcs: {ttl: 20}\n'), { bootstrap: { dcs: { ttl: 20 } } });
  assert.throws(() => parseExtra('[1, 2]'));
  assert.throws(() => parseExtra('true'));
});

test('mergeIntoFile rewrites a node file with every extra applied in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-node-config-'));
  try {
    const file = join(dir, 'vigil.yml');
    await writeFile(file, 'scope: s\nbootstrap:\n  dcs: {"ttl":30,"loop_wait":10}\n');
    await mergeIntoFile(file, [{ bootstrap: { dcs: { ttl: 20 } } }, { bootstrap: { dcs: { ttl: 25 } }, x: 1 }]);
    assert.deepEqual(parse(await readFile(file, 'utf8')), { scope: 's', bootstrap: { dcs: { ttl: 25, loop_wait: 10 } }, x: 1 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
