// A synchronous standby that stops answering without closing its connection, on a real two-node
// cluster (PostgreSQL 15, etcd, `vigil agent` processes), synchronous_mode on, not strict, Patroni's
// default timings (ttl 30, loop_wait 10) and PostgreSQL's default wal_sender_timeout (60 s, pinned).
//
// The standby's WAL receiver is frozen with SIGSTOP: its TCP connection stays open and nothing
// answers, as after a host crash or a partition that drops packets. PostgreSQL keeps the WAL sender
// (and waits for it) until wal_sender_timeout. Asserted, as states: a commit started after the
// freeze completes (acknowledged, without the sync-cancel warning) while the primary's WAL sender
// for the frozen standby is still the same process (so the primary did not wait for
// wal_sender_timeout), and /sync and synchronous_standby_names no longer name the standby then;
// after SIGCONT the standby becomes synchronous again and commits wait for it again. The stall is
// printed, not asserted. A standby whose connection closes instead is replaced too (states
// asserted; whether that happened between loops or at the next loop shows only in the printed
// stall). In strict mode (a second cluster) the same freeze changes neither /sync
// nor synchronous_standby_names once the primary has seen the standby silent (its log says so), the
// commit keeps waiting, and it completes after SIGCONT.
//
// Checked to fail without the change (src of the commit before this test, the same test file): the
// commit completed only after wal_sender_timeout had ended the WAL sender (about 60 s plus up to a
// loop), so the "still the same WAL sender" assertion failed.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { commit } from '../support/commit.ts';
import { agentLog, ctlDcs, healthy, startCluster, stopCluster } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';

/** One cluster per describe block; its frozen WAL receiver is thawed by tearDown if a failed test left it stopped. */
function harness(strict: boolean) {
  const h = {
    base: '',
    cluster: undefined as unknown as LocalCluster,
    dcs: undefined as unknown as Dcs,
    frozen: undefined as number | undefined,
    async setUp(): Promise<void> {
      ({ base: h.base, cluster: h.cluster } = await startCluster('vigil-it-syncstall-', {
        nodes: 2,
        timing: { ttl: 30, loop_wait: 10, retry_timeout: 10 },
        logLevel: 'debug',
        dcs: { synchronous_mode: true, synchronous_mode_strict: strict },
        parameters: { wal_sender_timeout: '60s' },
      }));
      h.dcs = ctlDcs(h.cluster);
    },
    async tearDown(): Promise<void> {
      if (h.frozen !== undefined) process.kill(h.frozen, 'SIGCONT');
      await h.dcs?.close();
      await stopCluster(h.cluster, h.base);
    },
    /** The primary and the replica once the replica is synchronous (/sync, and sync in pg_stat_replication), with a table t. */
    async ready(): Promise<{ primary: string; replica: string }> {
      const c = h.cluster;
      const primary = await waitFor('one primary and a streaming replica', () => healthy(c), 180_000);
      const replica = c.nodes.map((n) => n.name).find((n) => n !== primary) as string;
      await waitFor(`${replica} synchronous (/sync, and sync in pg_stat_replication)`, async () => (await h.syncNames()) === replica && (await h.sender(primary, replica))?.sync_state === 'sync', 180_000);
      await query(c.connParams(primary), 'CREATE TABLE t (id int PRIMARY KEY)');
      const first = await commit(c.connParams(primary), 'INSERT INTO t VALUES (0)');
      assert.equal(first.ok, true, first.notices.join('; '));
      return { primary, replica };
    },
    async syncNames(): Promise<string | null | undefined> {
      return (await h.dcs.readCluster()).sync?.sync_standby;
    },
    async ssn(primary: string): Promise<string> {
      return (await query<{ s: string }>(h.cluster.connParams(primary), "SELECT current_setting('synchronous_standby_names') AS s"))[0]?.s ?? '';
    },
    /** The primary's WAL sender for `replica`. */
    async sender(primary: string, replica: string): Promise<{ pid: number; sync_state: string } | undefined> {
      return (await query<{ pid: number; sync_state: string }>(h.cluster.connParams(primary), 'SELECT pid, sync_state FROM pg_stat_replication WHERE application_name = $1', [replica]))[0];
    },
    /** SIGSTOP the standby's WAL receiver; returns its pid. */
    async freeze(replica: string): Promise<number> {
      const receiver = (await query<{ pid: number }>(h.cluster.connParams(replica), 'SELECT pid FROM pg_stat_wal_receiver'))[0]?.pid;
      assert.ok(receiver !== undefined && receiver > 0, 'the standby has a WAL receiver');
      process.kill(receiver, 'SIGSTOP');
      h.frozen = receiver;
      return receiver;
    },
    thaw(): void {
      if (h.frozen !== undefined) process.kill(h.frozen, 'SIGCONT');
      h.frozen = undefined;
    },
  };
  return h;
}

describe('not strict', { timeout: 600_000 }, () => {
  const h = harness(false);
  before(() => h.setUp());
  after(() => h.tearDown());

  test('a frozen sync standby (connection open, no replies) is replaced before wal_sender_timeout, and synchronous again once it answers', async () => {
    const c = h.cluster;
    const { primary, replica } = await h.ready();
    const pp = c.connParams(primary);
    const walsender = (await h.sender(primary, replica))?.pid as number;
    assert.ok(walsender > 0);

    await h.freeze(replica);
    const stalled = await commit(pp, 'INSERT INTO t VALUES (1)');
    const senderAfter = await h.sender(primary, replica);
    const syncAfter = await h.syncNames();
    const ssnAfter = await h.ssn(primary);
    console.log(`# commit stall with the sync standby frozen: ${(stalled.ms / 1000).toFixed(1)} s (wal_sender_timeout 60 s)`);
    assert.equal(stalled.ok, true, `the commit is acknowledged: ${stalled.notices.join('; ')}`);
    assert.equal(senderAfter?.pid, walsender, `the commit completed while the WAL sender of the frozen standby still exists (PostgreSQL still waited for it):\n${agentLog(c, primary)}`);
    assert.ok(syncAfter === null || syncAfter === undefined || !syncAfter.split(',').includes(replica), `/sync no longer names ${replica}: ${String(syncAfter)}`);
    assert.equal(ssnAfter, '', 'non-strict mode with no other standby: asynchronous commits');

    // Thaw it: it answers again and becomes synchronous again (ssn first, /sync once confirmed).
    h.thaw();
    await waitFor(`${replica} synchronous again`, async () => (await h.syncNames()) === replica && (await h.sender(primary, replica))?.sync_state === 'sync', 120_000);
    const again = await commit(pp, 'INSERT INTO t VALUES (2)');
    assert.equal(again.ok, true, again.notices.join('; '));
    await waitFor('the three rows on the standby', async () => (await query<{ n: number }>(c.connParams(replica), 'SELECT count(*)::int AS n FROM t'))[0]?.n === 3, 30_000);
  });

  test('a sync standby whose connection closes (WAL receiver ended, not restarted) is replaced between loops', async () => {
    const c = h.cluster;
    const primary = await waitFor('one primary and a streaming replica', () => healthy(c), 180_000);
    const replica = c.nodes.map((n) => n.name).find((n) => n !== primary) as string;
    await waitFor(`${replica} synchronous`, async () => (await h.syncNames()) === replica && (await h.sender(primary, replica))?.sync_state === 'sync', 120_000);
    // Its startup process frozen, the standby starts no new WAL receiver; the one it has is ended
    // cleanly (SIGTERM), which closes the connection as a crashed standby PostgreSQL would.
    const rc = c.connParams(replica);
    const startup = (await query<{ pid: number }>(rc, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'"))[0]?.pid;
    const receiver = (await query<{ pid: number }>(rc, 'SELECT pid FROM pg_stat_wal_receiver'))[0]?.pid;
    assert.ok(startup !== undefined && receiver !== undefined);
    process.kill(startup, 'SIGSTOP');
    h.frozen = startup;
    process.kill(receiver, 'SIGTERM');
    const r = await commit(c.connParams(primary), 'INSERT INTO t VALUES (3)');
    const senderAfter = await h.sender(primary, replica);
    const syncAfter = await h.syncNames();
    console.log(`# commit stall after the sync standby's connection closed: ${(r.ms / 1000).toFixed(1)} s (loop_wait 10)`);
    assert.equal(r.ok, true, r.notices.join('; '));
    assert.equal(senderAfter, undefined, 'no WAL sender for the standby any more');
    assert.ok(syncAfter === null || syncAfter === undefined, `/sync names no standby: ${String(syncAfter)}`);
    h.thaw();
    await waitFor(`${replica} synchronous again`, async () => (await h.syncNames()) === replica && (await h.sender(primary, replica))?.sync_state === 'sync', 120_000);
  });
});

describe('strict', { timeout: 600_000 }, () => {
  const h = harness(true);
  before(() => h.setUp());
  after(() => h.tearDown());

  test('a frozen sync standby stays required: the commit waits, /sync and synchronous_standby_names keep naming it, it completes after SIGCONT', async () => {
    const c = h.cluster;
    const { primary, replica } = await h.ready();
    const pp = c.connParams(primary);
    const logSize = readFileSync(c.node(primary).logFile, 'utf8').length;

    await h.freeze(replica);
    let done = false;
    const pending = commit(pp, 'INSERT INTO t VALUES (1)').finally(() => {
      done = true;
    });
    // The primary saw the standby silent while the commit waits (the decision that would replace it in non-strict mode).
    await waitFor('the primary to find the standby silent', async () => readFileSync(c.node(primary).logFile, 'utf8').slice(logSize).includes(`[${replica}] silent for`), 120_000);
    assert.equal(done, false, 'the commit still waits');
    assert.equal(await h.syncNames(), replica, '/sync still names the standby');
    assert.equal((await h.ssn(primary)).replace(/"/g, ''), replica, 'synchronous_standby_names still requires it');

    h.thaw();
    const r = await pending;
    console.log(`# strict mode: the commit waited ${(r.ms / 1000).toFixed(1)} s, until the standby answered again`);
    assert.equal(r.ok, true, r.notices.join('; '));
    assert.equal(await h.syncNames(), replica);
  });
});
