// The fencer against a real PostgreSQL 15: arm with the postmaster's pid, let the deadline pass,
// and check that every process of that server is gone and that clients cannot connect.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { PostgresController } from '../../src/postgres/controller.ts';
import { withClient } from '../../src/postgres/probe.ts';
import { Fence, type FencedEvent } from '../../src/fence/fence.ts';
import { makeTempBase, pgSettings, removeTempBase, testBootstrap } from '../support/pg.ts';
import { alive, childrenOf, memLogger, until } from './lib.ts';

let base: string | undefined;
let pg: PostgresController | undefined;
let fence: Fence | undefined;

after(async () => {
  await fence?.disarm();
  await fence?.close();
  await pg?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
  if (base) await removeTempBase(base);
});

test('a real PostgreSQL is fenced at the deadline: all its processes die, clients are refused', { timeout: 120_000 }, async () => {
  base = await makeTempBase('vigil-fence-pg-');
  const s = await pgSettings({ baseDir: base, name: 'pg', passwords: false });
  pg = new PostgresController({ settings: s, name: 'pg', scope: 'fence' });
  await pg.initdb(testBootstrap());
  await pg.start();
  const port = Number(s.listen.split(':')[1]);
  const conn = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
  // A client session holds a backend open, as a writing application would.
  await withClient(conn, 10_000, async (c) => c.query('CREATE TABLE t (x int)'));
  const pm = Number((await readFile(`${s.dataDir}/postmaster.pid`, 'utf8')).split('\n')[0]);
  const procs = [pm, ...childrenOf(pm)];
  assert.ok(procs.length >= 4, `expected the postmaster and its auxiliary processes, got ${procs.join(' ')}`);

  const fenced: FencedEvent[] = [];
  fence = new Fence({ dataDir: s.dataDir, logger: memLogger(), onFenced: (e) => fenced.push(e) });
  assert.equal(await fence.start(), true);
  const held = withClient(conn, 30_000, async (c) => {
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (1)');
    await until('the fence', () => fenced.length > 0, 30_000);
    await c.query('COMMIT');
  });
  const r = await fence.arm({ pid: pm, refreshStartMs: performance.now(), timeoutMs: 1000 });
  assert.equal(r.ok, true, r.error);
  await assert.rejects(held, 'a transaction open before the fence committed after it');
  await until('every PostgreSQL process to die', () => procs.every((p) => !alive(p)));
  assert.deepEqual(fenced[0]!.alive, []);
  assert.ok(fenced[0]!.lateMs >= 0);
  assert.ok(childrenOf(pm).every((p) => !alive(p)));
  await assert.rejects(withClient(conn, 5000, async (c) => c.query('SELECT 1')), /ECONNREFUSED|connect/);
  console.log(`# PostgreSQL: ${fenced[0]!.killed.length} processes killed ${fenced[0]!.lateMs.toFixed(2)} ms after the deadline`);
});
