// The production hooks port with real scripts: a newer callback kills the one still running (and
// what it started), on_reload has its own slot, pre_promote-like runs report exit codes and are
// killed at their deadline or on cancel, arguments arrive intact and output is logged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { realHooksPort } from './real-ports.ts';
import type { Logger } from './ports.ts';
import { readFileSync } from 'node:fs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it answers (not undefined/false); the bound only turns a hang into a failure. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** /proc says the process exists and is not a zombie. */
function processRuns(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function scriptDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-hooks-'));
  // As root the scripts run as the PostgreSQL OS user: it must read them and write here.
  await chmod(dir, 0o777);
  return dir;
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (_o: object, msg?: string): void => void lines.push(msg ?? '');
  return { lines, debug: add, info: add, warn: add, error: add };
}

const readPid = async (file: string): Promise<number | undefined> => {
  const n = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return n > 0 ? n : undefined;
};

test('a newer callback kills the one still running, with what it started; on_reload has a slot of its own', async () => {
  const dir = await scriptDir();
  // Callbacks never keep the process alive (they are unref'd so an agent can exit while one
  // runs): this timer keeps the test's event loop up while it waits for their ends.
  const alive = setInterval(() => undefined, 1000);
  try {
    // Starts a grandchild, records both pids, waits for ever.
    const slow = await script(dir, 'slow.sh', `sleep 300 &\necho $! > "$1.child"\necho $$ > "$1.pid"\nwait`);
    const log = recordingLog();
    const port = realHooksPort(log);
    const first = port.spawn('callback', [slow, join(dir, 'first'), 'on_start', 'replica', 'demo'], 'on_start');
    const child = await waitFor('the first callback to start its child', () => readPid(join(dir, 'first.child')), 10_000);
    const reloadEnd = port.spawn('reload', [slow, join(dir, 'reload'), 'on_reload', 'replica', 'demo'], 'on_reload');
    await waitFor('the reload callback to run', () => readPid(join(dir, 'reload.pid')), 10_000);
    assert.ok(processRuns(await readPid(join(dir, 'first.pid'))), 'on_reload did not kill the callback of the other slot');

    const second = port.spawn('callback', ['/bin/sh', '-c', 'echo "args: $*"', 'sh', 'on_role_change', 'primary', 'demo'], 'on_role_change');
    assert.deepEqual(await first, { code: null, why: 'killed by SIGKILL' });
    assert.deepEqual(await second, { code: 0 });
    await waitFor('the first callback\'s child to be gone', () => !processRuns(child), 10_000);
    // Its output may be read after its exit is seen.
    await waitFor('the callback\'s arguments in the log', () => log.lines.includes('args: on_role_change primary demo'), 10_000);

    const reloadChild = await readPid(join(dir, 'reload.child'));
    const reload2 = port.spawn('reload', ['/bin/true'], 'on_reload');
    assert.deepEqual(await reloadEnd, { code: null, why: 'killed by SIGKILL' });
    assert.deepEqual(await reload2, { code: 0 });
    await waitFor('the reload callback\'s child to be gone', () => !processRuns(reloadChild), 10_000);
  } finally {
    clearInterval(alive);
    await rm(dir, { recursive: true, force: true });
  }
});

test('a script run to its end reports its exit code; the deadline and a cancel kill it; a missing program is reported', async () => {
  const dir = await scriptDir();
  try {
    const port = realHooksPort(recordingLog());
    const exit3 = await script(dir, 'exit3.sh', 'echo "fencing $*" >&2\nexit 3');
    assert.deepEqual(await port.run([exit3, 'a b'], 'pre_promote', { timeoutMs: 30_000 }), { code: 3 });
    const hang = await script(dir, 'hang.sh', `echo $$ > "${join(dir, 'hang.pid')}"\nsleep 300`);
    assert.deepEqual(await port.run([hang], 'before_stop', { timeoutMs: 300 }), { code: null, why: 'killed after 300 ms' });
    const abort = new AbortController();
    const cancelled = port.run([hang], 'pre_promote', { timeoutMs: 60_000, signal: abort.signal });
    await waitFor('the script to run', () => readPid(join(dir, 'hang.pid')), 10_000);
    abort.abort();
    assert.deepEqual(await cancelled, { code: null, why: 'cancelled' });
    const missing = await port.run([join(dir, 'nope')], 'pre_promote', { timeoutMs: 10_000 });
    assert.equal(missing.code, null);
    assert.match(missing.why ?? '', /could not start .*nope: .*ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
