// PostgresController against real PostgreSQL 15: bootstrap, replica via pg_basebackup, crash
// detection, promotion, divergence + pg_rewind, stop modes, probe of a frozen postmaster.
// The steps share two nodes and run in order.

import { after, before, describe, test } from 'node:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController, type PostmasterExitInfo } from '../../src/postgres/controller.ts';
import { slotName } from '../../src/postgres/conf.ts';
import { isTransientError, PgOptionError, PgServerError, PgTimeoutError, PgUnavailableError } from '../../src/postgres/errors.ts';
import { withClient } from '../../src/postgres/probe.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { connUrlOf, eventually, freePort, makeTempBase, pgSettings, removeTempBase, sql, TEST_AUTH, testBootstrap } from '../support/pg.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


describe('PostgresController with PostgreSQL 15', { timeout: 120_000 }, () => {
  let base: string;
  let sa: PostgresqlSettings;
  let sb: PostgresqlSettings;
  let a: PostgresController;
  let b: PostgresController;
  const exits: Array<{ node: string; info: PostmasterExitInfo }> = [];
  let exitWaiter: (() => void) | undefined;

  before(async () => {
    base = await makeTempBase();
    sa = await pgSettings({ baseDir: base, name: 'pg-a' });
    sb = await pgSettings({ baseDir: base, name: 'pg-b' });
    const onExit = (node: string) => (info: PostmasterExitInfo) => {
      exits.push({ node, info });
      exitWaiter?.();
    };
    a = new PostgresController({ settings: sa, name: 'pg-a', scope: 'test', onPostmasterExit: onExit('pg-a') });
    b = new PostgresController({ settings: sb, name: 'pg-b', scope: 'test', onPostmasterExit: onExit('pg-b') });
  });

  after(async () => {
    for (const c of [a, b]) {
      await c?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    }
    if (base) await removeTempBase(base);
  });

  test('initdb, start and probe a primary', async () => {
    assert.equal(await a.dataDirEmpty(), true);
    assert.equal(await a.sysid(), undefined);
    await a.initdb(testBootstrap());
    assert.equal(await a.dataDirEmpty(), false);
    const sysid = await a.sysid();
    assert.match(sysid ?? '', /^\d+$/);
    await a.start();
    await a.postBootstrap();
    const p = await a.probe();
    assert.equal(p.inRecovery, false);
    assert.equal(p.timeline, 1);
    assert.equal(p.sysid, sysid);
    assert.ok(p.flushLsn !== undefined && p.flushLsn > 0);
    assert.ok(p.serverVersionNum >= 150000);
    const roles = await sql<{ rolname: string; rolreplication: boolean }>(sa, "SELECT rolname, rolreplication FROM pg_roles WHERE rolname IN ('replicator', 'rewind_user') ORDER BY 1");
    assert.deepEqual(roles, [
      { rolname: 'replicator', rolreplication: true },
      { rolname: 'rewind_user', rolreplication: false },
    ]);
    const obs = await a.observe();
    assert.equal(obs.running, true);
    assert.equal(obs.ready, true);
    assert.equal(obs.inRecovery, false);
    assert.equal(obs.rewindable, true);
    assert.equal(obs.controlState, 'in production');
    assert.equal(obs.upstream, null);
    // Controlled GUCs come from our config (and the command line).
    const [row] = await sql<{ wal_level: string; cluster_name: string }>(sa, "SELECT current_setting('wal_level') AS wal_level, current_setting('cluster_name') AS cluster_name");
    assert.deepEqual(row, { wal_level: 'replica', cluster_name: 'test' });
  });

  test('statement errors of the real server are typed: statement_timeout is transient, a syntax error is not', async () => {
    const conn = { host: '127.0.0.1', port: Number(sa.listen.split(':')[1]), user: TEST_AUTH.superuser.username, password: TEST_AUTH.superuser.password, database: 'postgres' };
    const timedOut = await withClient(conn, 10_000, async (c) => {
      await c.query('SET statement_timeout = 50');
      return c.query('SELECT pg_sleep(5)');
    }).catch((e: unknown) => e);
    assert.ok(timedOut instanceof PgTimeoutError, String(timedOut));
    assert.equal((timedOut.cause as { code?: string }).code, '57014');
    assert.equal(isTransientError(timedOut), true);
    const syntax = await withClient(conn, 10_000, (c) => c.query('SELEC 1')).catch((e: unknown) => e);
    assert.ok(syntax instanceof PgServerError, String(syntax));
    assert.equal(syntax.sqlstate, '42601');
    assert.equal(isTransientError(syntax), false);
  });

  test('a replica made by pg_basebackup streams from the primary', async () => {
    await a.ensureSlots([slotName('pg-b')]);
    await b.basebackup({ connUrl: connUrlOf(sa) }, { retryDelayMs: 200 });
    const w = await b.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sa), name: 'pg-a' } });
    assert.equal(w.changed, true);
    const again = await b.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sa), name: 'pg-a' } });
    assert.deepEqual([again.changed, again.needsRestart], [false, false]);
    await b.start();
    const streaming = await eventually('pg-b streaming', async () => {
      const p = await b.probe();
      return p.walReceiver?.status === 'streaming' ? p : undefined;
    });
    assert.equal(streaming.inRecovery, true);
    assert.equal(streaming.walReceiver?.slotName, 'pg_b');
    assert.equal(streaming.sysid, await a.sysid());

    await sql(sa, 'CREATE TABLE t (v text); INSERT INTO t VALUES (\'one\')');
    const target = (await a.probe()).flushLsn!;
    await eventually('pg-b replays the write', async () => {
      const p = await b.probe();
      return p.replayLsn !== undefined && p.replayLsn >= target;
    });
    assert.deepEqual(await sql(sb, 'SELECT v FROM t'), [{ v: 'one' }]);

    const rep = (await a.probe()).replication;
    assert.equal(rep.length, 1);
    assert.equal(rep[0]?.application_name, 'pg-b');
    assert.equal(rep[0]?.usename, 'replicator');
    assert.equal(rep[0]?.state, 'streaming');
    const obs = await b.observe();
    assert.equal(obs.streaming, true);
    assert.equal(obs.upstream, 'pg-a');
    assert.equal(obs.inRecovery, true);
    assert.ok(obs.walLsn !== undefined && obs.walLsn >= target);

    // Slots: an unknown inactive slot is kept with dropUnknown false (pause, declared slots),
    // dropped otherwise; the active one is kept.
    await sql(sa, "SELECT pg_create_physical_replication_slot('stale')");
    await a.ensureSlots(['pg_b'], { dropUnknown: false });
    const kept = await sql<{ slot_name: string }>(sa, 'SELECT slot_name FROM pg_replication_slots ORDER BY 1');
    assert.deepEqual(kept, [{ slot_name: 'pg_b' }, { slot_name: 'stale' }]);
    await a.ensureSlots(['pg_b']);
    const slots = await sql<{ slot_name: string }>(sa, 'SELECT slot_name FROM pg_replication_slots ORDER BY 1');
    assert.deepEqual(slots, [{ slot_name: 'pg_b' }]);
  });

  test('kill -9 of the postmaster fires onPostmasterExit, restart recovers', async () => {
    const { pid } = await a.isRunning();
    assert.ok(pid !== undefined);
    // A second controller that did not start this postmaster watches it by polling its pid.
    let polledExit: PostmasterExitInfo | undefined;
    let polledDone: () => void = () => undefined;
    const polled = new Promise<void>((r) => (polledDone = r));
    const observer = new PostgresController({ settings: sa, name: 'pg-a', onPostmasterExit: (info) => ((polledExit = info), polledDone()) });
    assert.deepEqual(await observer.isRunning(), { running: true, pid });
    const fired = new Promise<void>((r) => (exitWaiter = r));
    process.kill(pid, 'SIGKILL');
    await Promise.race([Promise.all([fired, polled]), sleep(15_000)]);
    exitWaiter = undefined;
    assert.deepEqual(polledExit, { code: null, signal: null });
    assert.equal(exits.length, 1);
    assert.equal(exits[0]?.node, 'pg-a');
    assert.equal(exits[0]?.info.signal, 'SIGKILL');
    assert.equal(a.crashed, true);
    await eventually('old backends gone', async () => !(await a.isRunning()).running);
    await a.start();
    assert.equal(a.crashed, false);
    assert.deepEqual(await sql(sa, 'SELECT v FROM t'), [{ v: 'one' }]);
  });

  test('promote the replica; the diverged old primary needs and gets pg_rewind', async () => {
    await b.promote();
    const pb = await b.probe();
    assert.equal(pb.inRecovery, false);
    assert.equal(pb.timeline, 2);
    assert.equal(existsSignal(sb), false);

    // The old primary keeps writing on timeline 1 (split brain), then stops.
    await sql(sa, "INSERT INTO t VALUES ('a-only')");
    await a.stop('fast');
    assert.equal((await a.observe()).controlState, 'shut down');
    await sql(sb, "INSERT INTO t VALUES ('b-two')");

    assert.equal(await a.checkDivergence({ connUrl: connUrlOf(sb) }), 'need');
    // An unreachable source is a transient failure, not a failed rewind.
    await assert.rejects(a.rewind({ connUrl: `postgres://127.0.0.1:${await freePort()}/postgres` }), (e: unknown) => e instanceof PgUnavailableError && isTransientError(e));
    await a.rewind({ connUrl: connUrlOf(sb) });
    const w = await a.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sb), name: 'pg-b' } });
    assert.equal(w.needsRestart, true);
    await b.ensureSlots([slotName('pg-a')]);
    await a.start();
    await eventually('pg-a streams from pg-b', async () => (await a.probe()).walReceiver?.status === 'streaming');
    await sql(sb, "INSERT INTO t VALUES ('b-three')");
    const target = (await b.probe()).flushLsn!;
    await eventually('pg-a replays', async () => ((await a.probe()).replayLsn ?? 0) >= target);
    assert.deepEqual(await sql(sa, 'SELECT v FROM t ORDER BY v'), [{ v: 'b-three' }, { v: 'b-two' }, { v: 'one' }]);
    assert.equal((await a.probe()).timeline, 2);
    assert.equal(await a.checkDivergence({ connUrl: connUrlOf(sb) }), 'not_needed');
    // The promoted node's pg_hba was kept by rewind: pg-a's own settings still apply.
    assert.equal((await a.observe()).upstream, 'pg-b');
  });

  test('stop modes are idempotent and are not reported as crashes', async () => {
    const before = exits.length;
    await a.stop('smart', { timeoutMs: 20_000 });
    assert.equal((await a.isRunning()).running, false);
    await a.stop('smart'); // not running: no-op
    assert.equal((await a.observe()).controlState, 'shut down in recovery');

    await b.stop('immediate');
    assert.equal((await b.isRunning()).running, false);
    assert.equal((await b.observe()).controlState, 'in production'); // immediate: no shutdown checkpoint
    await b.start();
    await b.stop('fast');
    assert.equal((await b.observe()).controlState, 'shut down');
    await sleep(300); // let any exit watcher run
    assert.equal(exits.length, before);
  });

  test('probe of a SIGSTOPped postmaster rejects instead of hanging; stop escalates to SIGKILL', { timeout: 30_000 }, async () => {
    await b.start();
    const { pid } = await b.isRunning();
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGSTOP');
    try {
      await assert.rejects(b.probe({ timeoutMs: 1000 }));
      const obs = await b.observe({ probeTimeoutMs: 1000 });
      assert.equal(obs.running, true);
      assert.equal(obs.ready, false);
      await b.stop('fast', { timeoutMs: 1000, checkpoint: false });
      assert.equal((await b.isRunning()).running, false);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    // It comes back after crash recovery.
    await b.start();
    assert.equal((await b.probe()).inRecovery, false);
  });
});

function existsSignal(s: PostgresqlSettings): boolean {
  return existsSync(join(s.dataDir, 'standby.signal'));
}

describe('PostgresController refusals and unreachable sources', () => {
  let base: string;
  before(async () => {
    base = await makeTempBase();
  });
  after(async () => {
    if (base) await removeTempBase(base);
  });

  test('a refused initdb option rejects with a PgOptionError before the data directory is touched', async () => {
    const s = await pgSettings({ baseDir: base, name: 'opt-initdb' });
    const c = new PostgresController({ settings: s, name: 'opt-initdb' });
    await assert.rejects(c.initdb(testBootstrap({ initdb: ['--encoding=UTF8', '--username=someone'] })), (e: unknown) => e instanceof PgOptionError && e.option === 'username');
    assert.equal(existsSync(s.dataDir), false);
  });

  test('a refused pg_basebackup option rejects with a PgOptionError before the data directory is touched', async () => {
    const s = await pgSettings({ baseDir: base, name: 'opt-bb', overrides: { basebackup: ['--compress=gzip'] } });
    const c = new PostgresController({ settings: s, name: 'opt-bb' });
    await assert.rejects(c.basebackup({ connUrl: 'postgres://127.0.0.1:1/postgres' }), (e: unknown) => e instanceof PgOptionError && e.option === 'compress');
    assert.equal(existsSync(s.dataDir), false);
  });

  test('pg_basebackup from an unreachable source fails with a transient PgUnavailableError', async () => {
    const s = await pgSettings({ baseDir: base, name: 'bb-unreachable' });
    const c = new PostgresController({ settings: s, name: 'bb-unreachable' });
    const port = await freePort();
    await assert.rejects(c.basebackup({ connUrl: `postgres://127.0.0.1:${port}/postgres` }, { attempts: 1 }), (e: unknown) => e instanceof PgUnavailableError && isTransientError(e));
    assert.equal(await c.dataDirEmpty(), true);
  });
});
