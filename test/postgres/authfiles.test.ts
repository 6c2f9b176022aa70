// pg_hba.conf and pg_ident.conf against real PostgreSQL 15: the dynamic configuration's lines
// replace bootstrap.pg_hba at initdb, a changed list is rewritten by writeConfig and takes effect
// after a reload; an unchanged one is not rewritten.

import { after, before, describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { withClient } from '../../src/postgres/probe.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { eventually, makeTempBase, pgSettings, removeTempBase, sql, su, testBootstrap } from '../support/pg.ts';

const reject = (user: string): string[] => [`host all ${user} 127.0.0.1/32 reject`, `host all ${user} ::1/128 reject`];

describe('pg_hba / pg_ident from the configuration, PostgreSQL 15', { timeout: 120_000 }, () => {
  let base: string;
  let s: PostgresqlSettings;
  let pg: PostgresController;

  /** 'ok' when `user` can log in over TCP, else the server's error message. */
  const login = (user: string): Promise<string> =>
    withClient({ ...su(s), user, password: 'pw' }, 10_000, async (c) => {
      await c.query('SELECT 1');
      return 'ok';
    }).catch((e: unknown) => (e as Error).message);

  before(async () => {
    base = await makeTempBase();
    s = await pgSettings({ baseDir: base, name: 'hba' });
    pg = new PostgresController({ settings: s, name: 'hba', scope: 'test' });
  });

  after(async () => {
    await pg?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    if (base) await removeTempBase(base);
  });

  test('dynamic pg_hba replaces bootstrap.pg_hba at initdb', async () => {
    await pg.initdb(testBootstrap({
      dcs: { postgresql: { parameters: {}, pg_hba: reject('alice') } },
      pgHba: reject('bob'),
    }));
    const hba = await readFile(join(s.dataDir, 'pg_hba.conf'), 'utf8');
    assert.match(hba, /host all alice 127\.0\.0\.1\/32 reject/);
    assert.doesNotMatch(hba, /bob/);
    await pg.start();
    await pg.postBootstrap();
    await sql(s, "CREATE ROLE alice LOGIN PASSWORD 'pw'; CREATE ROLE bob LOGIN PASSWORD 'pw'");
    assert.match(await login('alice'), /pg_hba\.conf rejects connection/);
    assert.equal(await login('bob'), 'ok');
  });

  test('a changed dynamic pg_hba is rewritten and applies after a reload; unchanged is no change', async () => {
    const res = await pg.writeConfig({ role: 'primary', upstream: null, parameters: {}, pgHba: reject('bob') });
    assert.equal(res.changed, true);
    assert.equal(res.needsRestart, false);
    await pg.reload();
    await eventually('bob rejected after the reload', async () => /rejects connection/.test(await login('bob')));
    assert.equal(await login('alice'), 'ok');
    const again = await pg.writeConfig({ role: 'primary', upstream: null, parameters: {}, pgHba: reject('bob') });
    assert.equal(again.changed, false);
  });

  test('pg_ident lines are written to pg_ident.conf, which the server parses', async () => {
    const res = await pg.writeConfig({ role: 'primary', upstream: null, parameters: {}, pgHba: reject('bob'), pgIdent: ['vmap osuser alice'] });
    assert.equal(res.changed, true);
    await pg.reload();
    const rows = await eventually('the ident map loaded', async () => {
      const r = await sql<{ map_name: string; sys_name: string; pg_username: string }>(s, 'SELECT map_name, sys_name, pg_username FROM pg_ident_file_mappings');
      return r.length > 0 ? r : undefined;
    });
    assert.deepEqual(rows, [{ map_name: 'vmap', sys_name: 'osuser', pg_username: 'alice' }]);
  });

  test('no pg_hba anywhere: the file is left as it is', async () => {
    const before = await readFile(join(s.dataDir, 'pg_hba.conf'), 'utf8');
    const res = await pg.writeConfig({ role: 'primary', upstream: null, parameters: {}, pgHba: null, pgIdent: ['vmap osuser alice'] });
    assert.equal(res.changed, false);
    assert.equal(await readFile(join(s.dataDir, 'pg_hba.conf'), 'utf8'), before);
  });
});
