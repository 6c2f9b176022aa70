// postgresql.custom_conf against real PostgreSQL 15: the generated postgresql.conf includes the
// custom file in place of postgresql.base.conf; Vigil's own settings still come after it.

import { test } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { pgSettings, pgTestFiles, sql, testBootstrap } from '../support/pg.ts';

const files = pgTestFiles();

test('custom_conf is included instead of postgresql.base.conf', { timeout: 120_000 }, async () => {
  const custom = join(files.base, "my custom's.conf");
  await writeFile(custom, "work_mem = '7MB'\nport = 1\n");
  const s: PostgresqlSettings = { ...(await pgSettings({ baseDir: files.base, name: 'cc' })), customConf: custom };
  const pg = new PostgresController({ settings: s, name: 'cc', scope: 'test' });
  files.nodes.push(pg);
  await pg.initdb(testBootstrap());
  const conf = await readFile(join(s.dataDir, 'postgresql.conf'), 'utf8');
  assert.doesNotMatch(conf, /postgresql\.base\.conf/);
  await pg.start();
  await pg.postBootstrap();
  const [row] = await sql<{ work_mem: string; port: string }>(s, "SELECT current_setting('work_mem') AS work_mem, current_setting('port') AS port");
  assert.deepEqual(row, { work_mem: '7MB', port: s.listen.split(':')[1] });
});
