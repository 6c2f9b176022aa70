// postgresql.bin_name against real PostgreSQL 15: a bin_dir whose binaries carry other names
// (as in a custom distribution) works when bin_name maps the standard names to them.

import { test } from 'node:test';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { loadConfig } from '../../src/config/load.ts';
import { errors, MINIMAL_CONFIG } from '../../src/config/testing.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { PG_BIN_DIR, pgSettings, pgTestFiles, sql, testBootstrap } from '../support/pg.ts';

const files = pgTestFiles();

test('bin_name: Patroni keys parsed into the standard binary names', () => {
  const text = MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  bin_name: {postgres: my-postgres, initdb: my-initdb, pgcontroldata: my-cd, pgbasebackup: my-bb, rewind: my-rw, ctl: my-ctl}\n');
  const { config, issues } = loadConfig(text, {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(config?.postgresql.binName, {
    postgres: 'my-postgres', initdb: 'my-initdb', pg_controldata: 'my-cd', pg_basebackup: 'my-bb', pg_rewind: 'my-rw', pg_ctl: 'my-ctl',
  });
  const bad = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  bin_name: {psql: x}\n'), {});
  assert.ok(errors(bad.issues).some((e) => e.startsWith('postgresql.bin_name.psql')) || bad.issues.some((i) => i.path === 'postgresql.bin_name.psql'));
});

test('bin_name: initdb, start and pg_controldata run under the configured names', { timeout: 120_000 }, async () => {
  const bin = join(files.base, 'custom-bin');
  await mkdir(bin);
  // Only the renamed binaries exist in this bin_dir: the standard names would fail.
  const names: Record<string, string> = { postgres: 'pg15-postgres', initdb: 'pg15-initdb', pg_controldata: 'pg15-controldata' };
  for (const [std, alt] of Object.entries(names)) await symlink(join(PG_BIN_DIR, std), join(bin, alt));
  const s: PostgresqlSettings = { ...(await pgSettings({ baseDir: files.base, name: 'bn' })), binDir: bin, binName: names };
  const pg = new PostgresController({ settings: s, name: 'bn', scope: 'test' });
  files.nodes.push(pg);
  await pg.initdb(testBootstrap());
  await pg.start();
  await pg.postBootstrap();
  assert.match((await pg.sysid()) ?? '', /^\d+$/);
  const [row] = await sql<{ v: string }>(s, "SELECT current_setting('server_version_num') AS v");
  assert.ok(Number(row?.v) >= 150000);
});
