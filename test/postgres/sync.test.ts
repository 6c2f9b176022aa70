// PostgresController's side of synchronous replication against real PostgreSQL 15: a primary
// ('p1') and one streaming replica whose application_name is its member name ('r1').
// setSyncStandbyNames, observe().sync, the override's life across writeConfig, PostgreSQL
// restarts and agent restarts, and the ssn grammar check against PostgreSQL's own.
// The steps share the two nodes and run in order.

import { after, before, describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { withClient } from '../../src/postgres/probe.ts';
import { parseConf } from '../../src/postgres/conf.ts';
import { checkSyncStandbyNames } from '../../src/postgres/ssn-grammar.ts';
import { quoteLiteral } from '../../src/postgres/conninfo.ts';
import { maybeLsn } from '../../src/postgres/lsn.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import type { LocalSync } from '../../src/core/model.ts';
import { connUrlOf, eventually, makeTempBase, pgSettings, removeTempBase, sql, su, testBootstrap } from '../support/pg.ts';



async function setting(s: PostgresqlSettings, name: string): Promise<string> {
  const rows = await sql<{ v: string }>(s, `SELECT current_setting(${quoteLiteral(name)}) AS v`);
  return rows[0]!.v;
}

async function replication(s: PostgresqlSettings): Promise<Array<{ pid: number; application_name: string; sync_state: string; flush_lsn: string | null }>> {
  return sql(s, 'SELECT pid, application_name, sync_state, flush_lsn::text AS flush_lsn FROM pg_stat_replication');
}

async function syncStateOf(s: PostgresqlSettings, name: string): Promise<string | undefined> {
  return (await replication(s)).find((r) => r.application_name === name)?.sync_state;
}

async function confText(s: PostgresqlSettings): Promise<string> {
  return readFile(join(s.dataDir, 'postgresql.conf'), 'utf8');
}

describe('synchronous replication with PostgreSQL 15', { timeout: 240_000 }, () => {
  let base: string;
  let sp: PostgresqlSettings;
  let sr: PostgresqlSettings;
  let p: PostgresController;
  let r: PostgresController;
  const extra: PostgresController[] = [];

  before(async () => {
    base = await makeTempBase('vigil-sync-');
    sp = await pgSettings({ baseDir: base, name: 'p1' });
    sr = await pgSettings({ baseDir: base, name: 'r1' });
    p = new PostgresController({ settings: sp, name: 'p1', scope: 'synctest' });
    r = new PostgresController({ settings: sr, name: 'r1', scope: 'synctest' });
  });

  after(async () => {
    for (const c of [r, p, ...extra]) await c?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    if (base) await removeTempBase(base);
  });

  test('a primary and a streaming replica named r1; no override: async, unmanaged', async () => {
    await p.initdb(testBootstrap());
    await p.start();
    await p.postBootstrap();
    await p.ensureSlots(['r1']);
    await r.basebackup({ connUrl: connUrlOf(sp) }, { retryDelayMs: 200 });
    await r.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sp), name: 'p1' } });
    await r.start();
    await eventually('r1 streams', async () => (await r.probe()).walReceiver?.status === 'streaming');
    await sql(sp, "CREATE TABLE t (v text); INSERT INTO t VALUES ('one')");

    const obs = await eventually('r1 listed on p1', async () => {
      const o = await p.observe();
      return o.sync?.senders.some((s) => s.name === 'r1' && s.state === 'streaming') ? o : undefined;
    });
    const sync = obs.sync!;
    assert.equal(sync.ssn, '');
    assert.equal(sync.managed, false);
    assert.equal(sync.synchronousCommit, 'on');
    assert.equal(typeof sync.ssnSetAtLsn, 'number'); // first seen: the flush LSN at that moment
    assert.ok(sync.ssnSetAtLsn! <= obs.walLsn!);
    const [row] = await replication(sp);
    const sender = sync.senders[0]!;
    assert.equal(sync.senders.length, 1);
    assert.equal(sender.pid, row!.pid);
    assert.equal(sender.syncState, 'async');
    assert.equal(typeof sender.flushLsn, 'number');
    // The same value seen again keeps its recorded LSN even though WAL moved on.
    await sql(sp, "INSERT INTO t VALUES ('two')");
    assert.equal((await p.observe()).sync?.ssnSetAtLsn, sync.ssnSetAtLsn);
    // A replica has no sync facts.
    assert.equal((await r.observe()).sync, undefined);
    assert.equal(parseConf(await confText(sp)).syncOverride, undefined);
  });

  test("setSyncStandbyNames('r1'): r1 becomes sync, observe reports it, a dummy transaction moves WAL", async () => {
    const before = (await p.observe()).sync!;
    const [x0] = await sql<{ x: string }>(sp, 'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x');
    await p.setSyncStandbyNames('r1');
    // Resolved only once the running server uses it.
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'r1');
    const [x1] = await sql<{ x: string }>(sp, 'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x');
    assert.ok(BigInt(x1!.x) > BigInt(x0!.x), 'the dummy transaction consumed a transaction id');
    assert.equal(await eventually('r1 sync', async () => (await syncStateOf(sp, 'r1')) === 'sync' && 'sync'), 'sync');

    const obs = (await p.observe()).sync!;
    assert.equal(obs.ssn, 'r1');
    assert.equal(obs.managed, true);
    assert.ok(obs.ssnSetAtLsn !== undefined && obs.ssnSetAtLsn >= before.ssnSetAtLsn!);
    const [cur] = await sql<{ l: string }>(sp, 'SELECT pg_current_wal_insert_lsn()::text AS l');
    assert.ok(maybeLsn(cur!.l)! > obs.ssnSetAtLsn, 'WAL moved past the recorded LSN');
    // The standby reports a position at or past the recorded LSN.
    const confirmed = await eventually('r1 flush >= ssnSetAtLsn', async () => {
      const s = (await p.observe()).sync!.senders.find((x) => x.name === 'r1');
      return s !== undefined && s.flushLsn !== undefined && s.flushLsn >= obs.ssnSetAtLsn! ? s : undefined;
    });
    assert.equal(confirmed.syncState, 'sync');
    assert.equal((await p.observe()).sync?.ssnSetAtLsn, obs.ssnSetAtLsn);

    // Same value again: nothing to do, the recorded LSN stays.
    await sql(sp, "INSERT INTO t VALUES ('three')");
    await p.setSyncStandbyNames('r1');
    assert.equal((await p.observe()).sync?.ssnSetAtLsn, obs.ssnSetAtLsn);
    const parsed = parseConf(await confText(sp));
    assert.equal(parsed.syncOverride, 'r1');
    assert.equal(parsed.params.synchronous_standby_names, 'r1');
  });

  test('with r1 stopped a commit on the primary waits for it (until cancelled)', async () => {
    await r.stop('fast');
    const notices: string[] = [];
    const insert = withClient(su(sp), 30_000, async (c) => {
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.query("SET application_name = 'sync-waiter'");
      await c.query("INSERT INTO t VALUES ('waits')");
    });
    insert.catch(() => undefined);
    try {
      // The committing backend waits for synchronous replication (statement_timeout does not
      // cover the commit wait, so cancel it from another session).
      const [waiter] = await eventually('a backend waiting on SyncRep', async () => {
        const rows = await sql<{ pid: number }>(sp, "SELECT pid FROM pg_stat_activity WHERE application_name = 'sync-waiter' AND wait_event = 'SyncRep'");
        return rows.length > 0 ? rows : undefined;
      });
      await sql(sp, `SELECT pg_cancel_backend(${waiter!.pid})`);
    } finally {
      await insert;
    }
    assert.ok(
      notices.some((m) => m.includes('canceling wait for synchronous replication')),
      `expected a cancelled sync wait, got notices ${JSON.stringify(notices)}`,
    );
    // The primary's own view: no sync standby connected.
    assert.deepEqual((await p.observe()).sync?.senders, []);
    await r.start();
    await eventually('r1 sync again', async () => (await syncStateOf(sp, 'r1')) === 'sync');
    // Now a commit goes through without being cancelled.
    notices.length = 0;
    await withClient(su(sp), 20_000, async (c) => {
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.query("SET statement_timeout = '10s'");
      await c.query("INSERT INTO t VALUES ('replicated')");
    });
    assert.deepEqual(notices, []);
    assert.deepEqual(await sql(sr, "SELECT v FROM t WHERE v = 'replicated'"), [{ v: 'replicated' }]);
  });

  test("setSyncStandbyNames('ANY 1 (r1)'): quorum; a later ssnSetAtLsn", async () => {
    const prev = (await p.observe()).sync!.ssnSetAtLsn!;
    await p.setSyncStandbyNames('ANY 1 (r1)');
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'ANY 1 (r1)');
    await eventually('r1 quorum', async () => (await syncStateOf(sp, 'r1')) === 'quorum');
    const s = (await p.observe()).sync!;
    assert.equal(s.ssn, 'ANY 1 (r1)');
    assert.equal(s.managed, true);
    assert.ok(s.ssnSetAtLsn! > prev);
    assert.equal(s.senders.find((x) => x.name === 'r1')?.syncState, 'quorum');
  });

  test('the override survives writeConfig with the dynamic parameters, a restart and an agent restart', async () => {
    const w = await p.writeConfig({ role: 'primary', upstream: null, parameters: { synchronous_standby_names: 'userval', work_mem: '8MB' } });
    assert.equal(w.changed, true);
    assert.deepEqual(w.reloadParams, ['work_mem']); // the effective ssn did not change
    const parsed = parseConf(await confText(sp));
    assert.equal(parsed.syncOverride, 'ANY 1 (r1)');
    assert.equal(parsed.params.synchronous_standby_names, 'ANY 1 (r1)');
    assert.match(await confText(sp), /^synchronous_standby_names = 'userval'$/m); // kept for null
    await p.reload();
    await eventually('work_mem reloaded', async () => (await setting(sp, 'work_mem')) === '8MB');
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'ANY 1 (r1)');

    await p.stop('fast');
    // A new controller on the same data directory (the agent restarted) reads the override back.
    const p2 = new PostgresController({ settings: sp, name: 'p1', scope: 'synctest' });
    extra.push(p2);
    assert.equal(await p2.syncStandbyNamesOverride(), 'ANY 1 (r1)');
    const w2 = await p2.writeConfig({ role: 'primary', upstream: null, parameters: { synchronous_standby_names: 'userval', work_mem: '8MB' } });
    assert.equal(w2.changed, false);
    await p2.start();
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'ANY 1 (r1)');
    await eventually('r1 quorum after restart', async () => (await syncStateOf(sp, 'r1')) === 'quorum');
    const s = (await p2.observe()).sync!;
    assert.equal(s.managed, true);
    assert.equal(s.ssn, 'ANY 1 (r1)');
    assert.equal(typeof s.ssnSetAtLsn, 'number');

    // PostgreSQL stopped: only the file changes; the next start uses it.
    await p2.stop('fast');
    await p2.setSyncStandbyNames('FIRST 1 (r1)');
    assert.equal(parseConf(await confText(sp)).syncOverride, 'FIRST 1 (r1)');
    await p2.start();
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'FIRST 1 (r1)');
    await eventually('r1 sync after start', async () => (await syncStateOf(sp, 'r1')) === 'sync');
    p = p2;
  });

  test('bad values are rejected before anything changes; an ALTER SYSTEM override is reported', async () => {
    const text = await confText(sp);
    await assert.rejects(p.setSyncStandbyNames('pg-b'), /invalid synchronous_standby_names "pg-b"/);
    await assert.rejects(p.setSyncStandbyNames('ANY 0 (r1)'), /greater than zero/);
    await assert.rejects(p.setSyncStandbyNames(42 as unknown as string), /string or null/);
    assert.equal(await confText(sp), text);
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'FIRST 1 (r1)');

    // postgresql.auto.conf wins over postgresql.conf: the reload cannot apply our value.
    await sql(sp, "ALTER SYSTEM SET synchronous_standby_names = 'r1'");
    try {
      await assert.rejects(p.setSyncStandbyNames('ANY 1 (r1)'), (e: Error) => /ALTER SYSTEM/.test(e.message) && /"r1"/.test(e.message));
    } finally {
      await sql(sp, 'ALTER SYSTEM RESET synchronous_standby_names');
      await sql(sp, 'SELECT pg_reload_conf()');
    }
    await eventually('auto.conf value gone', async () => (await setting(sp, 'synchronous_standby_names')) === 'ANY 1 (r1)');
    // A retry of the same value after the failure confirms it.
    await p.setSyncStandbyNames('ANY 1 (r1)');
    assert.equal((await p.observe()).sync?.ssn, 'ANY 1 (r1)');
  });

  test("the grammar check agrees with PostgreSQL's", async () => {
    const values = ['', 'r1', '*', 'a, b', '"pg-b"', '2 (a, b, c)', 'FIRST 1 (a,b)', 'any 2 (a, "b c", *)', '"any"', '"a""b"', '12', 'é',
      'pg-b', 'any', 'first', 'ANY 0 (a)', '0 (a)', 'ANY 1 ()', 'ANY 1 (a', 'ANY (a)', 'a,', ',a', '"a', '""', '1 (a) b', 'a b', '1abc', 'a;b', 'FIRST 1 (any)', '2'];
    for (const v of values) {
      let pgOk: boolean;
      try {
        await sql(sp, `ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(v)}`);
        pgOk = true;
      } catch {
        pgOk = false;
      } finally {
        await sql(sp, 'ALTER SYSTEM RESET synchronous_standby_names');
      }
      assert.equal(checkSyncStandbyNames(v) === undefined, pgOk, `value ${JSON.stringify(v)}: PostgreSQL ${pgOk ? 'accepts' : 'rejects'} it`);
    }
  });

  test('a standby can get its ssn before promotion (no LSN yet), then reports it as a primary', async () => {
    await r.setSyncStandbyNames('p1');
    assert.equal(await setting(sr, 'synchronous_standby_names'), 'p1');
    assert.equal((await r.observe()).sync, undefined);
    assert.equal(parseConf(await confText(sr)).syncOverride, 'p1');
    await r.setSyncStandbyNames(null);
    assert.equal(await setting(sr, 'synchronous_standby_names'), '');
  });

  test('null removes the override: the user parameter applies again', async () => {
    const s0 = (await p.observe()).sync!;
    await p.setSyncStandbyNames(null);
    assert.equal(await setting(sp, 'synchronous_standby_names'), 'userval');
    const parsed = parseConf(await confText(sp));
    assert.equal(parsed.syncOverride, undefined);
    assert.equal(parsed.params.synchronous_standby_names, 'userval');
    await eventually('r1 async', async () => (await syncStateOf(sp, 'r1')) === 'async');
    const s: LocalSync = (await p.observe()).sync!;
    assert.equal(s.managed, false);
    assert.equal(s.ssn, 'userval');
    assert.ok(s.ssnSetAtLsn! >= s0.ssnSetAtLsn!);
    // Later writeConfig calls no longer carry it; a new controller does not find one.
    await p.writeConfig({ role: 'primary', upstream: null, parameters: { synchronous_standby_names: 'userval', work_mem: '8MB' } });
    assert.equal(parseConf(await confText(sp)).syncOverride, undefined);
    const p3 = new PostgresController({ settings: sp, name: 'p1' });
    assert.equal(await p3.syncStandbyNamesOverride(), null);
  });
});
