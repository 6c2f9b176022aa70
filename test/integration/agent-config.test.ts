// The agent refuses to start on an invalid configuration, with the same messages as
// `vigil validate-config`, and never touches PostgreSQL or the DCS.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const VIGIL = resolve(import.meta.dirname, '..', '..', 'bin', 'vigil');

/** The environment without PATRONI_* variables, plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PATRONI_'))), ...extra };
}

function vigil(args: string[], env: NodeJS.ProcessEnv = envWith()): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(VIGIL, args, { timeout: 30_000, env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, stdout, stderr });
    });
  });
}

test('vigil agent refuses an invalid file and names every problem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-badcfg-'));
  try {
    const file = join(dir, 'bad.yml');
    const dataDir = join(dir, 'data');
    await writeFile(
      file,
      [
        'scope: demo',
        'restapi:',
        '  listen: 127.0.0.1:80800',
        'etcd3:',
        '  hosts: 127.0.0.1:2379',
        'postgresql:',
        '  listen: 127.0.0.1:5432',
        `  data_dir: ${dataDir}`,
        '  authentication:',
        '    superuser: {username: postgres}',
        'surprise_key: 1',
      ].join('\n'),
    );
    const agent = await vigil(['agent', file]);
    assert.equal(agent.code, 1);
    assert.match(agent.stderr, /name/, 'missing name reported');
    assert.match(agent.stderr, /restapi\.listen/, 'bad port reported');
    assert.match(agent.stderr, /replication/, 'missing replication user reported');
    assert.match(agent.stderr, /warning: .*surprise_key/, 'unknown key is a warning');
    assert.match(agent.stderr, /agent does not start/);
    assert.equal(existsSync(dataDir), false, 'nothing was created');

    const check = await vigil(['validate-config', file]);
    assert.equal(check.code, 1);
    for (const line of check.stdout.split('\n').filter((l) => l.includes(': ') && !l.includes('warning'))) {
      if (/restapi\.listen|name|replication/.test(line)) assert.ok(agent.stderr.includes(line.trim()), `agent prints "${line.trim()}" too`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('vigil agent with a missing file or two arguments gives a clear error', async () => {
  const missing = await vigil(['agent', '/nonexistent/vigil.yml']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\/nonexistent\/vigil\.yml/);
  const two = await vigil(['agent', 'a.yml', 'b.yml']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /usage: vigil agent \[CONFIG\]/);
});

test('vigil agent without a file: PATRONI_CONFIGURATION, else the PATRONI_* variables, checked the same way', async () => {
  const none = await vigil(['agent']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /the environment: .*scope/);
  assert.match(none.stderr, /the environment is not a valid configuration; the agent does not start/);
  // The document is used as it is: PATRONI_NAME does not fill in the missing name.
  const doc = await vigil(['agent'], envWith({ PATRONI_CONFIGURATION: 'scope: demo\nrestapi: {listen: "127.0.0.1:8008"}\n', PATRONI_NAME: 'n1' }));
  assert.equal(doc.code, 1);
  assert.match(doc.stderr, /PATRONI_CONFIGURATION: .*name/);
  assert.match(doc.stderr, /PATRONI_CONFIGURATION is not a valid configuration/);
});
