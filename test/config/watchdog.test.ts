// The watchdog section of the local configuration.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { MINIMAL_CONFIG } from '../../src/config/testing.ts';

let base: string;
after(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

const errs = (r: ReturnType<typeof loadConfig>) => r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
const warns = (r: ReturnType<typeof loadConfig>) => r.issues.filter((i) => i.severity === 'warning').map((i) => `${i.path}: ${i.message}`);

test('defaults: automatic, /dev/watchdog, safety margin 5, silently', () => {
  const r = loadConfig(MINIMAL_CONFIG, {});
  assert.deepEqual(errs(r), []);
  assert.deepEqual(r.config?.watchdog, { mode: 'automatic', device: '/dev/watchdog', safetyMargin: 5 });
  assert.ok(!warns(r).some((w) => w.startsWith('watchdog')));
});

test('required is accepted when the device exists, an error naming the device when it does not', async () => {
  base = await mkdtemp(join(tmpdir(), 'vigil-wd-config-'));
  const device = join(base, 'watchdog');
  await writeFile(device, '');
  const ok = loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: require, device: ${device}, safety_margin: -1}\n`, {});
  assert.deepEqual(errs(ok), []);
  assert.deepEqual(ok.config?.watchdog, { mode: 'required', device, safetyMargin: -1 });
  const missing = loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: required, device: ${device}.missing}\n`, {});
  assert.equal(missing.config, undefined);
  assert.deepEqual(errs(missing), [`watchdog.mode: required is not supported on this host: device ${device}.missing does not exist`]);
});

test('automatic with a missing device warns; unknown modes switch it off with a warning; bad values are errors', () => {
  const auto = loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: auto, device: /nonexistent/wd}\n`, {});
  assert.deepEqual(errs(auto), []);
  assert.equal(auto.config?.watchdog.mode, 'automatic');
  assert.ok(warns(auto).includes('watchdog: device /nonexistent/wd does not exist: the node runs without a watchdog'), warns(auto).join('\n'));
  for (const off of ['off', 'false', 'disabled', 'no']) {
    const r = loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: ${off}}\n`, {});
    assert.deepEqual(r.issues, [], off);
    assert.equal(r.config?.watchdog.mode, 'off');
  }
  const odd = loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: sometimes}\n`, {});
  assert.equal(odd.config?.watchdog.mode, 'off');
  assert.match(warns(odd).join('\n'), /watchdog\.mode: expected off, automatic or required/);
  assert.match(errs(loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: off, safety_margin: -2}\n`, {})).join('\n'), /watchdog\.safety_margin: must be between -1/);
  assert.match(errs(loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: off, device: watchdog}\n`, {})).join('\n'), /watchdog\.device: expected an absolute path/);
  assert.match(errs(loadConfig(`${MINIMAL_CONFIG}watchdog: yes\n`, {})).join('\n'), /watchdog: expected a mapping/);
  assert.match(warns(loadConfig(`${MINIMAL_CONFIG}watchdog: {mode: off, colour: red}\n`, {})).join('\n'), /watchdog\.colour: unknown key/);
});
