// run(): the deadline is optional (long work such as a base backup has none) and an abort signal
// kills the whole process group. Real child processes; the clock is node:test's mock for timers.

import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { ExecError } from './errors.ts';
import { run } from './exec.ts';

/** A child that waits until `file` exists (created by the test), then prints "done". */
function waitForFile(file: string): [string, string[]] {
  return ['/bin/sh', ['-c', `while [ ! -e ${file} ]; do sleep 0.05; done; echo done`]];
}

test('no timeoutMs: ten hours of (mocked) timers pass without a kill; with one the group is killed', async (t) => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/vigil-exec-`);
  t.after(() => rm(dir, { recursive: true, force: true }));
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const [cmd, args] = waitForFile(`${dir}/go1`);
    const unbounded = run(cmd, args, { asPg: false });
    const [cmd2, args2] = waitForFile(`${dir}/never`);
    const bounded = run(cmd2, args2, { asPg: false, timeoutMs: 3_600_000 }).then(
      () => assert.fail('the bounded run finished'),
      (e: unknown) => e,
    );
    mock.timers.tick(10 * 3_600_000);
    const err = await bounded;
    assert.ok(err instanceof ExecError && err.failure === 'timeout', String(err));
    await writeFile(`${dir}/go1`, '');
    assert.equal((await unbounded).stdout.trim(), 'done');
  } finally {
    mock.timers.reset();
  }
});

test('an aborted signal kills the process group (the child and what it spawned)', async () => {
  const ac = new AbortController();
  // The grandchild holds stdout open for 30 s: 'close' comes at once only if it is killed too.
  const p = run('/bin/sh', ['-c', 'sleep 30 & echo started; wait'], { asPg: false, signal: ac.signal });
  ac.abort();
  const err = await p.then(
    () => assert.fail('the cancelled run finished'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ExecError, String(err));
  assert.match(err.message, /cancelled/);
});

test('an already aborted signal: the command is killed at once', async () => {
  const ac = new AbortController();
  ac.abort();
  const err = await run('/bin/sh', ['-c', 'sleep 30'], { asPg: false, signal: ac.signal }).then(
    () => assert.fail('ran'),
    (e: unknown) => e,
  );
  assert.match(String(err), /cancelled/);
});
