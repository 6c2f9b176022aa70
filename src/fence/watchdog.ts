// Linux watchdog device support, as Patroni has it (patroni-behavior.md 12.1), minus setting the
// timeout: Node has no ioctl, so the device's timeout is read from sysfs
// (<sysfsRoot>/class/watchdog/<name>/timeout) and must already be configured (e.g. a softdog
// soft_margin module parameter, or the driver's default).
//
// Who pets the device: the fencer process (fencer.mjs), not the agent. The fencer opens the device
// at its first arm (right after a lock acquire/refresh), writes one byte on every arm, and writes
// 'V' before closing (magic close: the device stops) on disarm, on SIGTERM, and after a fence that
// left nothing alive. Why the fencer: it outlives a killed or frozen agent and is the process that
// knows whether PostgreSQL is verifiably dead. A fence that failed to kill everything leaves the
// device open without keepalives, so the host is reset; a fence that succeeded disables it, so a
// host whose PostgreSQL is already dead is not rebooted for nothing. The keepalives still follow the
// agent's lock refreshes (one per arm), so a stalled agent lets the device expire exactly as
// Patroni's would.
//
// This module decides, without opening the device (opening starts it), whether and how to use it.

import { constants } from 'node:fs';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { WatchdogSettings } from '../config/types.ts';
import { watchdogTimeouts, type LockTimings, type WatchdogTimeouts } from './deadline.ts';

export interface WatchdogMessage {
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface WatchdogPlan {
  /** Pass `device` to the fencer (Fence option watchdogDevice). */
  use: boolean;
  device: string;
  /** false only in required mode when the watchdog cannot work: the node must not lead and
   *  advertises watchdog_failed: true. */
  healthy: boolean;
  timeouts: WatchdogTimeouts;
  /** Seconds, from sysfs; undefined when unreadable. */
  deviceTimeout?: number;
  /** What to log. In required mode, problems are errors; in automatic mode, warnings. */
  messages: WatchdogMessage[];
}

/** Linux dev_t encoding (glibc gnu_dev_major/minor). */
function majorMinor(rdev: number): string {
  const r = BigInt(rdev);
  const major = ((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn);
  const minor = (r & 0xffn) | ((r >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * The sysfs name (watchdogN) of a device: by matching its device number against
 * <sysfsRoot>/class/watchdog/<name>/dev, else by its file name (/dev/watchdog is the legacy node of
 * watchdog0; /dev/watchdogN is watchdogN). undefined when neither works.
 */
export async function sysfsWatchdogName(device: string, sysfsRoot = '/sys'): Promise<string | undefined> {
  const classDir = join(sysfsRoot, 'class', 'watchdog');
  try {
    const st = await stat(device);
    if (st.isCharacterDevice()) {
      const want = majorMinor(st.rdev);
      for (const name of await readdir(classDir)) {
        const dev = await readFile(join(classDir, name, 'dev'), 'utf8').catch(() => '');
        if (dev.trim() === want) return name;
      }
    }
  } catch {
    // Fall back to the name.
  }
  const m = /^watchdog(\d*)$/.exec(basename(device));
  if (m === null) return undefined;
  return `watchdog${m[1] === '' ? '0' : m[1]}`;
}

/** The device timeout in seconds from sysfs, or a reason why it cannot be known. */
export async function readWatchdogTimeout(device: string, sysfsRoot = '/sys'): Promise<{ timeout: number } | { error: string }> {
  const name = await sysfsWatchdogName(device, sysfsRoot);
  if (name === undefined) return { error: `cannot tell which ${join(sysfsRoot, 'class/watchdog')} entry is ${device}` };
  const file = join(sysfsRoot, 'class', 'watchdog', name, 'timeout');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { error: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const timeout = Number(text.trim());
  if (!Number.isInteger(timeout) || timeout <= 0) return { error: `${file} holds ${JSON.stringify(text.trim())}, not a timeout in seconds` };
  return { timeout };
}

/**
 * Whether and how to use the watchdog for the given settings and lock timings (Patroni's rules):
 * - off: not used;
 * - slack (desired timeout - loop_wait) < 0: not used;
 * - device missing or not writable, timeout unknown, or shorter than loop_wait (it would fire
 *   between two keepalives), or longer than desired (it would fire after the lock can be taken):
 *   required -> unhealthy; automatic -> a warning, and the device is used only when it is safe to
 *   (present, writable and not shorter than loop_wait).
 * Never throws.
 */
export async function planWatchdog(settings: WatchdogSettings, timings: Omit<LockTimings, 'safetyMargin'>, opts: { sysfsRoot?: string } = {}): Promise<WatchdogPlan> {
  const timeouts = watchdogTimeouts({ ...timings, safetyMargin: settings.safetyMargin });
  const plan: WatchdogPlan = { use: false, device: settings.device, healthy: true, timeouts, messages: [] };
  if (settings.mode === 'off') return plan;
  const required = settings.mode === 'required';
  const problem = (message: string): WatchdogPlan => {
    plan.messages.push({ level: required ? 'error' : 'warn', message: `watchdog ${settings.device}: ${message}${required ? '' : '; running without it'}` });
    if (required) plan.healthy = false;
    plan.use = false;
    return plan;
  };
  if (!timeouts.supported) {
    return problem(`desired timeout ${timeouts.timeout} s (ttl ${timings.ttl} - safety_margin ${settings.safetyMargin}) is shorter than loop_wait ${timings.loopWait} s`);
  }
  try {
    await access(settings.device, constants.W_OK);
  } catch (err) {
    return problem(`cannot be opened for writing (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const t = await readWatchdogTimeout(settings.device, opts.sysfsRoot);
  if ('error' in t) {
    if (required) return problem(`its timeout is unknown (${t.error}); Vigil cannot set or query it by ioctl`);
    plan.messages.push({ level: 'warn', message: `watchdog ${settings.device}: its timeout is unknown (${t.error}); using it anyway, it should be at most ${timeouts.timeout} s` });
    plan.use = true;
    return plan;
  }
  plan.deviceTimeout = t.timeout;
  if (t.timeout < timings.loopWait) return problem(`timeout ${t.timeout} s is shorter than loop_wait ${timings.loopWait} s: it would reset the host between two lock refreshes`);
  if (t.timeout > timeouts.timeout) {
    if (required) return problem(`timeout ${t.timeout} s exceeds the desired ${timeouts.timeout} s (ttl - safety_margin): set the driver's timeout (e.g. softdog soft_margin=${timeouts.timeout})`);
    plan.messages.push({ level: 'warn', message: `watchdog ${settings.device}: timeout ${t.timeout} s exceeds the desired ${timeouts.timeout} s: it may reset the host only after the lock expired` });
  } else {
    plan.messages.push({ level: 'info', message: `watchdog ${settings.device}: timeout ${t.timeout} s (desired ${timeouts.timeout} s, slack ${t.timeout - timings.loopWait} s)` });
  }
  plan.use = true;
  return plan;
}
