// Runs `bin/vigil validate-config` as a child process, the way an operator does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIssues } from '../../src/cli/validate-config.ts';
import { MINIMAL_CONFIG } from '../../src/config/testing.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const vigil = join(root, 'bin/vigil');

/** The environment without PATRONI_* variables, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PATRONI_')) env[k] = v;
  return { ...env, ...extra };
}

function run(args: string[], env = cleanEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(vigil, ['validate-config', ...args], { cwd: root, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

const BROKEN = `
name: node1
restapi:
  listen: 8008x
etcd3:
  hosts: 127.0.0.1:2379,127.0.0.1:70000
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 30
  initdb:
  - encoding: UTF8
  - pgdata: /elsewhere
postgresql:
  listen: 127.0.0.1:5432
  authentication:
    superuser:
      username: postgres
tags:
  nofailover: perhaps
colour: blue
`;

test('the example configurations are valid', async () => {
  for (const n of [0, 1, 2]) {
    const file = `examples/vigil${n}.yml`;
    const r = await run([file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    if (existsSync('/usr/lib/postgresql/15/bin/pg_ctl')) assert.equal(r.stdout, `${file}: configuration is valid (0 warnings)\n`);
    else assert.match(r.stdout, /: configuration is valid \(\d+ warnings?\)\n$/);
    assert.equal(r.stderr, '');
  }
});

test('a broken file: every error is reported, warnings marked, exit 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-validate-'));
  try {
    const file = join(dir, 'broken.yml');
    await writeFile(file, BROKEN);
    const r = await run([file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const expectedErrors = [
      `${file}: scope: required`,
      `${file}: restapi.listen: expected host:port, got "8008x"`,
      `${file}: etcd3.hosts: port must be 1-65535, got 70000 in "127.0.0.1:70000"`,
      `${file}: bootstrap.initdb[1]: option "pgdata" is not allowed for initdb: Vigil passes the data directory (postgresql.data_dir)`,
      `${file}: postgresql.data_dir: required`,
      `${file}: postgresql.authentication.replication.username: required`,
      `${file}: tags.nofailover: expected a boolean, got "perhaps"`,
    ];
    for (const e of expectedErrors) assert.ok(lines.includes(e), `missing line ${JSON.stringify(e)} in\n${r.stdout}`);
    assert.ok(lines.includes(`${file}: warning: colour: unknown key`), r.stdout);
    assert.ok(lines.some((l) => l.startsWith(`${file}: warning: bootstrap.dcs.loop_wait: loop_wait + 2*retry_timeout must not exceed ttl`)), r.stdout);
    const errorLines = lines.filter((l) => !l.includes(': warning: ')).slice(0, -1);
    assert.equal(errorLines.length, expectedErrors.length, r.stdout);
    const warningCount = lines.filter((l) => l.includes(': warning: ')).length;
    assert.equal(lines.at(-1), `${file}: configuration is invalid: ${expectedErrors.length} errors, ${warningCount} warning${warningCount === 1 ? '' : 's'}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('environment overrides are applied and named in messages', async () => {
  const r = await run(['examples/vigil0.yml'], cleanEnv({ PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:0', PATRONI_SCOPE: 'other' }));
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^examples\/vigil0\.yml: PATRONI_POSTGRESQL_LISTEN: port must be 1-65535, got 0 in "127\.0\.0\.1:0"$/m);
});

test('nofailover: false with failover_priority: 0 is valid but warned about: the member may be promoted (Patroni 4.1)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-validate-'));
  try {
    const file = join(dir, 'pair.yml');
    await writeFile(file, `${MINIMAL_CONFIG}tags:\n  nofailover: false\n  failover_priority: 0\n`);
    const r = await run([file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    const prefix = `${file}: warning: tags: both nofailover and failover_priority are set and contradict each other: nofailover: false wins, so the member MAY be promoted`;
    assert.ok(lines.some((l) => l.startsWith(prefix)), r.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2 with a clear message', async () => {
  const none = await run([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /missing FILE/);
  assert.match(none.stderr, /usage: vigil validate-config/);

  const two = await run(['a.yml', 'b.yml']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /expected exactly one FILE/);

  const missing = await run(['/nonexistent/vigil.yml']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read configuration \/nonexistent\/vigil\.yml: ENOENT: no such file or directory/);
  assert.equal(missing.stdout, '');

  const badOption = await run(['--frobnicate', 'x.yml']);
  assert.equal(badOption.code, 2);
  assert.match(badOption.stderr, /frobnicate/);

  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: vigil validate-config/);
});

test('formatIssues', () => {
  assert.equal(formatIssues('f.yml', []), '');
  assert.equal(
    formatIssues('f.yml', [
      { path: 'scope', message: 'required', severity: 'error' },
      { path: 'colour', message: 'unknown key', severity: 'warning' },
      { path: '', message: 'the configuration is empty', severity: 'error' },
    ]),
    'f.yml: scope: required\nf.yml: warning: colour: unknown key\nf.yml: the configuration is empty',
  );
});
