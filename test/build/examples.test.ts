// The shipped examples stay in step with the code: the bash completion offers exactly the verbs of
// `vigil --help` and completes them in bash; the systemd unit runs the built entry point with the
// settings the fencer's contract needs (src/fence/fence.ts: KillMode must not kill the fencer).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function helpVerbs(): Promise<string[]> {
  const { stdout } = await run(join(ROOT, 'bin/vigil'), ['--help']);
  return stdout.split('\n').filter((l) => /^ {2}[a-z]/.test(l)).map((l) => l.trim().split(/\s+/)[0]!);
}

test('bash completion: the verbs of vigil --help, completed by bash', async () => {
  const verbs = await helpVerbs();
  assert.ok(verbs.includes('switchover') && verbs.includes('agent'));
  const file = join(ROOT, 'examples/vigil.bash-completion');
  const listed = /local verbs="([^"]*)"/.exec(readFileSync(file, 'utf8'))?.[1]?.trim().split(/\s+/);
  assert.deepEqual(listed, verbs);
  const { stdout } = await run('bash', ['-c', `source ${file}; COMP_WORDS=(vigil sw); COMP_CWORD=1; _vigil; echo "\${COMPREPLY[@]}"`]);
  assert.equal(stdout.trim(), 'switchover');
});

test('systemd unit: the built entry point as postgres, KillMode=process, Restart, LimitNOFILE', () => {
  const unit = readFileSync(join(ROOT, 'examples/vigil.service'), 'utf8');
  const key = (k: string): string | undefined => new RegExp(`^${k}=(.*)$`, 'm').exec(unit)?.[1];
  assert.match(key('ExecStart') ?? '', /\/dist\/cli\/main\.js agent /);
  assert.equal(key('User'), 'postgres');
  assert.equal(key('KillMode'), 'process');
  assert.match(key('Restart') ?? '', /^(on-failure|always)$/);
  assert.ok(Number(key('LimitNOFILE')) >= 4096);
});
