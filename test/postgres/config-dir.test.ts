// postgresql.config_dir / config_base_name against real PostgreSQL 15: the configuration files
// live outside the data directory and the postmaster reads them from there.

import { test } from 'node:test';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { loadConfig } from '../../src/config/load.ts';
import { errors, MINIMAL_CONFIG } from '../../src/config/testing.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { pgSettings, pgTestFiles, sql, testBootstrap } from '../support/pg.ts';

const files = pgTestFiles();

test('config_dir and config_base_name parsed; a base name with a directory refused', () => {
  const ok = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  config_dir: /etc/postgresql/15/main\n  config_base_name: vigil\n'), {});
  assert.deepEqual(errors(ok.issues), []);
  assert.equal(ok.config?.postgresql.configDir, '/etc/postgresql/15/main');
  assert.equal(ok.config?.postgresql.configBaseName, 'vigil');
  const bad = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  config_base_name: a/b\n'), {});
  assert.match(errors(bad.issues).join('\n'), /^postgresql\.config_base_name: expected a file name/m);
});

async function show(s: PostgresqlSettings, name: string): Promise<string> {
  const [row] = await sql<{ v: string }>(s, `SELECT current_setting('${name}') AS v`);
  return row!.v;
}

test('a new cluster: initdb files move to config_dir, PostgreSQL reads them there', { timeout: 120_000 }, async () => {
  const confDir = join(files.base, 'etc-a');
  const s: PostgresqlSettings = { ...(await pgSettings({ baseDir: files.base, name: 'cd-a' })), configDir: confDir, configBaseName: 'vigil', pgHba: ['host all all 127.0.0.1/32 md5'] };
  const pg = new PostgresController({ settings: s, name: 'cd-a', scope: 'test' });
  files.nodes.push(pg);
  await pg.initdb(testBootstrap());
  await pg.start();
  await pg.postBootstrap();
  assert.equal(await show(s, 'config_file'), join(confDir, 'vigil.conf'));
  assert.equal(await show(s, 'hba_file'), join(confDir, 'pg_hba.conf'));
  assert.equal(await show(s, 'ident_file'), join(confDir, 'pg_ident.conf'));
  assert.equal(await show(s, 'data_directory'), s.dataDir);
  assert.ok(existsSync(join(confDir, 'vigil.base.conf')), 'initdb postgresql.conf kept as the base file');
  assert.match(await readFile(join(confDir, 'vigil.conf'), 'utf8'), /^include 'vigil.base.conf'$/m);
  assert.match(await readFile(join(confDir, 'pg_hba.conf'), 'utf8'), /^host all all 127\.0\.0\.1\/32 md5$/m);
  assert.equal(existsSync(join(s.dataDir, 'vigil.conf')), false);
  // The file rules the server: a line only in config_dir's pg_hba.conf is the one in force.
  const [rule] = await sql<{ n: string }>(s, "SELECT count(*)::text AS n FROM pg_hba_file_rules WHERE address = '127.0.0.1' AND auth_method = 'md5' AND 'all' = ANY(database)");
  assert.notEqual(rule?.n, '0');
});

test('a Debian-style config_dir keeps its own postgresql.conf as the base', { timeout: 120_000 }, async () => {
  const confDir = join(files.base, 'etc-b');
  await mkdir(confDir);
  await writeFile(join(confDir, 'postgresql.conf'), "application_name = 'from-etc'\nwork_mem = '7MB'\n");
  const s: PostgresqlSettings = { ...(await pgSettings({ baseDir: files.base, name: 'cd-b' })), configDir: confDir };
  const pg = new PostgresController({ settings: s, name: 'cd-b', scope: 'test' });
  files.nodes.push(pg);
  await pg.initdb(testBootstrap());
  await pg.start();
  await pg.postBootstrap();
  assert.equal(await show(s, 'config_file'), join(confDir, 'postgresql.conf'));
  assert.equal(await show(s, 'work_mem'), '7MB');
  assert.match(await readFile(join(confDir, 'postgresql.base.conf'), 'utf8'), /from-etc/);
  assert.equal(await show(s, 'hba_file'), join(confDir, 'pg_hba.conf'));
});

test('config_base_name alone: vigil.conf in the data directory includes initdb\'s file as vigil.base.conf', { timeout: 120_000 }, async () => {
  const s: PostgresqlSettings = { ...(await pgSettings({ baseDir: files.base, name: 'cd-c' })), configBaseName: 'vigil' };
  const pg = new PostgresController({ settings: s, name: 'cd-c', scope: 'test' });
  files.nodes.push(pg);
  await pg.initdb(testBootstrap());
  await pg.start();
  await pg.postBootstrap();
  assert.equal(await show(s, 'config_file'), join(s.dataDir, 'vigil.conf'));
  assert.equal(await show(s, 'hba_file'), join(s.dataDir, 'pg_hba.conf'));
  assert.match(await readFile(join(s.dataDir, 'vigil.base.conf'), 'utf8'), /PostgreSQL configuration file/);
  assert.match(await readFile(join(s.dataDir, 'vigil.conf'), 'utf8'), /^include 'vigil.base.conf'$/m);
});
