// test/support/cli.ts run(): stdin is written only when input is given, and a child that exits
// without reading it does not crash the test process (EPIPE).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './cli.ts';

test('a child that exits without reading a large input: its exit code, no EPIPE crash', async () => {
  // Far more than a pipe holds: the write cannot complete before the child is gone.
  const r = await run('sh', ['-c', 'exit 3'], { input: 'x'.repeat(8 << 20), timeoutMs: 60_000 });
  assert.equal(r.code, 3);
});

test('input reaches the child; without input its stdin is at end of file', async () => {
  assert.deepEqual(await run('cat', [], { input: 'hello\n', timeoutMs: 60_000 }), { code: 0, stdout: 'hello\n', stderr: '' });
  assert.deepEqual(await run('sh', ['-c', 'if read -r line; then echo "got $line"; else echo eof; fi'], { timeoutMs: 60_000 }), { code: 0, stdout: 'eof\n', stderr: '' });
});
