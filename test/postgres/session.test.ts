// PgSession (src/postgres/probe.ts), the connection the agent's probes keep open, against a real
// PostgreSQL 15: one backend serves many calls; a connection the server ended is replaced; a
// failed call closes it; the controller's probes and ensureSlots use it and its stop (a smart one included) is
// not held up by it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { isTransientError, PgTimeoutError } from '../../src/postgres/errors.ts';
import { PgSession } from '../../src/postgres/probe.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { eventually, makeTempBase, pgSettings, removeTempBase, sql, su, testBootstrap } from '../support/pg.ts';

const backendPid = async (s: PgSession, settings: PostgresqlSettings): Promise<number> =>
  s.run(su(settings), 2000, async (c) => Number((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid));

/** Backends of our probes (application_name vigil), other than the caller's own. */
const vigilBackends = async (settings: PostgresqlSettings): Promise<number> =>
  Number((await sql<{ n: string }>(settings, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'vigil' AND pid <> pg_backend_pid()"))[0]?.n);

/** Waits until exactly `n` such backends remain (a closed connection's backend exits shortly after). */
const settlesAt = (settings: PostgresqlSettings, n: number): Promise<true> =>
  eventually(`${n} probe backends`, async () => (await vigilBackends(settings)) === n, 10_000);

describe('PgSession with PostgreSQL 15', { timeout: 120_000 }, () => {
  let base: string;
  let settings: PostgresqlSettings;
  let pg: PostgresController;

  before(async () => {
    base = await makeTempBase();
    settings = await pgSettings({ baseDir: base, name: 'pg-s' });
    pg = new PostgresController({ settings, name: 'pg-s', scope: 'test' });
    await pg.initdb(testBootstrap());
    await pg.start();
    await pg.postBootstrap();
  });

  after(async () => {
    await pg?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    if (base) await removeTempBase(base);
  });

  test('calls share one backend until the server ends the connection; then the next calls reconnect', async () => {
    const s = new PgSession();
    try {
      const first = await backendPid(s, settings);
      assert.equal(await backendPid(s, settings), first);
      assert.equal(await backendPid(s, settings), first);
      await sql(settings, `SELECT pg_terminate_backend(${first})`);
      // The call right after the termination may still meet the dying connection: it then fails
      // as a transient error, and the one after it reconnects.
      const next = await backendPid(s, settings).catch((e: unknown) => {
        assert.ok(isTransientError(e), String(e));
        return undefined;
      });
      const again = await backendPid(s, settings);
      assert.notEqual(again, first);
      if (next !== undefined) assert.equal(again, next);
    } finally {
      s.close();
    }
  });

  test('a call that fails closes the connection; a call past its deadline rejects with PgTimeoutError', async () => {
    const s = new PgSession();
    try {
      const first = await backendPid(s, settings);
      await assert.rejects(s.run(su(settings), 2000, (c) => c.query('SELECT no_such_function()')));
      const second = await backendPid(s, settings);
      assert.notEqual(second, first);
      await assert.rejects(s.run(su(settings), 300, (c) => c.query('SELECT pg_sleep(5)')), PgTimeoutError);
      assert.notEqual(await backendPid(s, settings), second);
    } finally {
      s.close();
    }
    await settlesAt(settings, 0);
  });

  test("the controller's probes and ensureSlots keep one connection; a smart stop is not held up by it", async () => {
    await pg.probe();
    await pg.observe();
    await pg.ensureSlots(['session_test']);
    await pg.probe();
    await settlesAt(settings, 1);
    assert.equal((await sql(settings, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'session_test'")).length, 1);
    // A smart shutdown waits for every client: with our connection still open it would not finish
    // and the stop would escalate to an immediate one (no shutdown checkpoint).
    await pg.stop('smart', { timeoutMs: 10_000, checkpoint: false });
    assert.equal((await pg.controlData())['Database cluster state'], 'shut down');
    await pg.start();
    const p = await pg.probe();
    assert.equal(p.inRecovery, false);
    await settlesAt(settings, 1);
    pg.close();
  });
});
