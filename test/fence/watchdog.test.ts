// planWatchdog with a regular file as the device and a temp directory as the sysfs root.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planWatchdog, readWatchdogTimeout, sysfsWatchdogName } from '../../src/fence/watchdog.ts';
import type { WatchdogSettings } from '../../src/config/types.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function fixture(timeout: string | undefined): Promise<{ device: string; sysfs: string }> {
  const base = await mkdtemp(join(tmpdir(), 'vigil-wd-'));
  dirs.push(base);
  const device = join(base, 'watchdog');
  await writeFile(device, '');
  const sysfs = join(base, 'sys');
  await mkdir(join(sysfs, 'class/watchdog/watchdog0'), { recursive: true });
  if (timeout !== undefined) await writeFile(join(sysfs, 'class/watchdog/watchdog0/timeout'), timeout);
  return { device, sysfs };
}

const timings = { ttl: 30, loopWait: 10 };
const settings = (mode: WatchdogSettings['mode'], device: string, safetyMargin = 5): WatchdogSettings => ({ mode, device, safetyMargin });

test('device names and timeouts from sysfs', async () => {
  const { device, sysfs } = await fixture('25\n');
  assert.equal(await sysfsWatchdogName(device, sysfs), 'watchdog0');
  assert.equal(await sysfsWatchdogName('/dev/watchdog3', sysfs), 'watchdog3');
  assert.equal(await sysfsWatchdogName('/dev/something', sysfs), undefined);
  assert.deepEqual(await readWatchdogTimeout(device, sysfs), { timeout: 25 });
  const bad = await fixture('soon');
  assert.match(String((await readWatchdogTimeout(bad.device, bad.sysfs) as { error: string }).error), /not a timeout/);
});

test('required: a matching or shorter device timeout is used; a longer one is refused', async () => {
  for (const [t, use] of [['25', true], ['15', true], ['26', false], ['9', false]] as const) {
    const { device, sysfs } = await fixture(t);
    const plan = await planWatchdog(settings('required', device), timings, { sysfsRoot: sysfs });
    assert.equal(plan.use, use, `device timeout ${t}`);
    assert.equal(plan.healthy, use, `device timeout ${t}`);
    assert.equal(plan.deviceTimeout, Number(t));
    if (!use) assert.ok(plan.messages.some((m) => m.level === 'error' && m.message.includes(device)), JSON.stringify(plan.messages));
  }
});

test('required fails when the device is missing, its timeout unreadable, or the slack negative', async () => {
  const { device, sysfs } = await fixture(undefined);
  const unreadable = await planWatchdog(settings('required', device), timings, { sysfsRoot: sysfs });
  assert.equal(unreadable.healthy, false);
  assert.match(unreadable.messages[0]!.message, /timeout is unknown/);
  const missing = await planWatchdog(settings('required', join(device, 'nope')), timings, { sysfsRoot: sysfs });
  assert.equal(missing.healthy, false);
  assert.match(missing.messages[0]!.message, /cannot be opened for writing \(ENOTDIR|ENOENT/);
  const ok = await fixture('25');
  const noSlack = await planWatchdog(settings('required', ok.device, 25), timings, { sysfsRoot: ok.sysfs });
  assert.equal(noSlack.healthy, false);
  assert.equal(noSlack.timeouts.supported, false);
});

test('automatic warns and runs without (or with) the device; off does nothing', async () => {
  const long = await fixture('60');
  const a = await planWatchdog(settings('automatic', long.device), timings, { sysfsRoot: long.sysfs });
  assert.equal(a.use, true);
  assert.equal(a.healthy, true);
  assert.equal(a.messages[0]!.level, 'warn');
  const unknown = await fixture(undefined);
  const u = await planWatchdog(settings('automatic', unknown.device), timings, { sysfsRoot: unknown.sysfs });
  assert.deepEqual([u.use, u.healthy, u.messages[0]!.level], [true, true, 'warn']);
  const m = await planWatchdog(settings('automatic', '/nonexistent/watchdog'), timings, { sysfsRoot: unknown.sysfs });
  assert.deepEqual([m.use, m.healthy], [false, true]);
  assert.match(m.messages[0]!.message, /running without it/);
  const off = await planWatchdog(settings('off', '/nonexistent/watchdog'), timings);
  assert.deepEqual([off.use, off.healthy, off.messages], [false, true, []]);
});
