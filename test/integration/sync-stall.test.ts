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
// printed, not asserted.
//
// Checked to fail without the change (src of the commit before this test, the same test file): the
// commit completed only after wal_sender_timeout had ended the WAL sender (about 60 s plus up to a
// loop), so the "still the same WAL sender" assertion failed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { agentLog, ctlDcs, healthy, startCluster, stopCluster } from '../support/cluster.ts';
import { query, waitFor, type ConnParams } from '../support/wait.ts';

const SYNC_CANCEL = /canceling wait for synchronous replication/i;

let base = '';
let cluster: LocalCluster | undefined;
let dcs: Dcs | undefined;
/** The frozen WAL receiver, thawed by after() if a failed test left it stopped. */
let frozen: number | undefined;

before(async () => {
  ({ base, cluster } = await startCluster('vigil-it-syncstall-', {
    nodes: 2,
    timing: { ttl: 30, loop_wait: 10, retry_timeout: 10 },
    logLevel: 'debug',
    dcs: { synchronous_mode: true },
    parameters: { wal_sender_timeout: '60s' },
  }));
  dcs = ctlDcs(cluster);
});

after(async () => {
  if (frozen !== undefined) process.kill(frozen, 'SIGCONT');
  await dcs?.close();
  await stopCluster(cluster, base);
});

/** One statement on a fresh connection: whether it was acknowledged (no sync-cancel warning), and how long it took. */
async function commit(params: ConnParams, sql: string): Promise<{ ok: boolean; notices: string[]; ms: number }> {
  const notices: string[] = [];
  const c = new pg.Client({ ...params, connectionTimeoutMillis: 3000, query_timeout: 180_000, application_name: 'vigil-test' });
  c.on('error', () => undefined);
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  const start = Date.now();
  try {
    await c.query(sql);
    return { ok: !notices.some((m) => SYNC_CANCEL.test(m)), notices, ms: Date.now() - start };
  } finally {
    await c.end().catch(() => undefined);
  }
}

test('a frozen sync standby (connection open, no replies) is replaced before wal_sender_timeout, and synchronous again once it answers', { timeout: 600_000 }, async () => {
  const c = cluster as LocalCluster;
  const d = dcs as Dcs;
  const primary = await waitFor('one primary and a streaming replica', () => healthy(c), 180_000);
  const replica = c.nodes.map((n) => n.name).find((n) => n !== primary) as string;
  const pp = c.connParams(primary);
  const syncNames = async (): Promise<string | null | undefined> => (await d.readCluster()).sync?.sync_standby;
  const ssn = async (): Promise<string> => (await query<{ s: string }>(pp, "SELECT current_setting('synchronous_standby_names') AS s"))[0]?.s ?? '';
  const sender = async (): Promise<{ pid: number; sync_state: string } | undefined> =>
    (await query<{ pid: number; sync_state: string }>(pp, 'SELECT pid, sync_state FROM pg_stat_replication WHERE application_name = $1', [replica]))[0];

  await waitFor(`${replica} synchronous (/sync, and sync in pg_stat_replication)`, async () => (await syncNames()) === replica && (await sender())?.sync_state === 'sync', 180_000);
  await query(pp, 'CREATE TABLE t (id int PRIMARY KEY)');
  const first = await commit(pp, 'INSERT INTO t VALUES (0)');
  assert.equal(first.ok, true, first.notices.join('; '));
  const walsender = (await sender())?.pid as number;
  assert.ok(walsender > 0);

  // Freeze the standby's WAL receiver.
  const receiver = (await query<{ pid: number }>(c.connParams(replica), 'SELECT pid FROM pg_stat_wal_receiver'))[0]?.pid;
  assert.ok(receiver !== undefined && receiver > 0, 'the standby has a WAL receiver');
  process.kill(receiver, 'SIGSTOP');
  frozen = receiver;

  const stalled = await commit(pp, 'INSERT INTO t VALUES (1)');
  const senderAfter = await sender();
  const syncAfter = await syncNames();
  const ssnAfter = await ssn();
  console.log(`# commit stall with the sync standby frozen: ${(stalled.ms / 1000).toFixed(1)} s (wal_sender_timeout 60 s)`);
  assert.equal(stalled.ok, true, `the commit is acknowledged: ${stalled.notices.join('; ')}`);
  assert.equal(senderAfter?.pid, walsender, `the commit completed while the WAL sender of the frozen standby still exists (PostgreSQL still waited for it):\n${agentLog(c, primary)}`);
  assert.ok(syncAfter === null || syncAfter === undefined || !syncAfter.split(',').includes(replica), `/sync no longer names ${replica}: ${String(syncAfter)}`);
  assert.equal(ssnAfter, '', 'non-strict mode with no other standby: asynchronous commits');

  // Thaw it: it answers again and becomes synchronous again (ssn first, /sync once confirmed).
  process.kill(receiver, 'SIGCONT');
  frozen = undefined;
  await waitFor(`${replica} synchronous again`, async () => (await syncNames()) === replica && (await sender())?.sync_state === 'sync', 120_000);
  const again = await commit(pp, 'INSERT INTO t VALUES (2)');
  assert.equal(again.ok, true, again.notices.join('; '));
  const onStandby = await waitFor('row 2 on the standby', async () => {
    const r = await query<{ n: number }>(c.connParams(replica), 'SELECT count(*)::int AS n FROM t');
    return (r[0]?.n ?? 0) === 3 ? r[0]!.n : undefined;
  }, 30_000);
  assert.equal(onStandby, 3);
});
