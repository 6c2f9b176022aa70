// Standby clusters on real PostgreSQL 15 and etcd: cluster A (scope alpha, 2 nodes) is a primary
// cluster; cluster B (scope beta, 2 nodes, same etcd) is created with standby_cluster pointing at
// A's primary. B's first member clones A (no initdb) and becomes the standby leader; writes on A
// reach both B members, which stay read-only; a failover and a switchover inside B keep B read-only
// (`vigil list` shows the Standby Leader); B re-pointed
// at an HAProxy in front of A follows A's new primary after a failover in A, and is rewound onto
// A's new history after a failover in A that lost WAL B had replayed; removing
// standby_cluster from B's /config promotes B on a new timeline; adding it back demotes B's
// primary (demote-cluster) through pg_rewind, without a new clone. The commit-to-visibility delay
// from A to B's standby leader is printed, not asserted.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { LocalCluster } from '../../src/local/cluster.ts';
import { healthy, inRecovery, startCluster, stopCluster, agentLog } from '../support/cluster.ts';
import { backendsOf, Haproxy, haproxyUnavailableReason, LOW_LATENCY_CHECKS } from '../support/haproxy.ts';
import { query, sleep, waitFor } from '../support/wait.ts';
import { run, VIGIL } from '../support/cli.ts';
import { requestSwitchover } from '../../bench/lib/cluster-ops.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const skip = haproxyUnavailableReason() ?? false;

describe('standby cluster', { skip, timeout: 900_000 }, () => {
  let baseA = '';
  let baseB = '';
  let a: LocalCluster;
  let b: LocalCluster | undefined;
  let haproxy: Haproxy | undefined;
  let primaryA = '';
  let nextId = 1;

  const sysid = async (c: LocalCluster, n: string): Promise<string> =>
    String((await query<{ s: string }>(c.connParams(n), 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]?.s);
  const role = async (c: LocalCluster, n: string): Promise<unknown> => (await c.api(n, '/patroni'))?.body?.['role'];
  /** The one B member answering 200 on /standby-leader. */
  const standbyLeader = async (): Promise<string | undefined> => {
    const c = b as LocalCluster;
    const hits: string[] = [];
    for (const n of c.nodes) if ((await c.api(n.name, '/standby-leader'))?.status === 200) hits.push(n.name);
    return hits.length === 1 ? hits[0] : undefined;
  };
  const insert = async (on: string): Promise<number> => {
    const id = nextId++;
    await query(a.connParams(on), 'INSERT INTO dr (id) VALUES ($1)', [id]);
    return id;
  };
  const hasRow = async (c: LocalCluster, n: string, id: number): Promise<boolean> =>
    (await query<{ c: number }>(c.connParams(n), 'SELECT count(*)::int AS c FROM dr WHERE id = $1', [id]))[0]?.c === 1;
  const patchConfig = async (c: LocalCluster, n: string, body: unknown): Promise<void> => {
    const node = c.node(n);
    const res = await fetch(`http://${node.host}:${node.apiPort}/config`, { method: 'PATCH', body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    assert.equal(res.status, 200, await res.text());
  };
  const timeline = async (c: LocalCluster, n: string): Promise<number> =>
    Number((await query<{ t: number }>(c.connParams(n), 'SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]?.t);

  before(async () => {
    ({ base: baseA, cluster: a } = await startCluster('vigil-standby-a-', { scope: 'alpha', nodes: 2, timing: TIMING }));
    primaryA = await waitFor('cluster A healthy', () => healthy(a), 180_000);
    await query(a.connParams(primaryA), 'CREATE TABLE dr (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const started = await startCluster('vigil-standby-b-', {
      scope: 'beta',
      nodes: 2,
      timing: TIMING,
      etcdEndpoint: a.etcdEndpoint,
      dcs: { standby_cluster: { host: '127.0.0.1', port: a.node(primaryA).pgPort } },
    });
    baseB = started.base;
    b = started.cluster;
  });

  after(async () => {
    await haproxy?.stop();
    await stopCluster(b, baseB);
    await stopCluster(a, baseA);
  });

  test('B clones A (no initdb): a standby leader and a replica, read-only, receiving A\'s writes', async () => {
    const c = b as LocalCluster;
    const leader = await waitFor('a standby leader in B', standbyLeader, 240_000, 500);
    const replica = c.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    assert.equal(await sysid(c, leader), await sysid(a, primaryA), 'B is a copy of A, not a new initdb');
    assert.equal(await role(c, leader), 'standby_leader');
    assert.deepEqual(await c.primaries(), [], 'no member of B answers /primary');
    await waitFor(`${replica} streams from the standby leader`, async () => (await c.api(replica, '/replica?replication_state=streaming'))?.status === 200, 120_000, 500);
    const id = await insert(primaryA);
    for (const n of [leader, replica]) {
      await waitFor(`row ${id} on ${n}`, () => hasRow(c, n, id), 60_000, 200);
      assert.equal(await inRecovery(c, n), true, `${n} is read-only`);
      await assert.rejects(query(c.connParams(n), 'INSERT INTO dr (id) VALUES (-1)'), /read-only transaction/);
    }
    const members = JSON.parse(JSON.stringify((await c.api(leader, '/cluster'))?.body?.['members'] ?? [])) as Array<{ name: string; role: string }>;
    assert.deepEqual(members.map((m) => `${m.name}:${m.role}`).sort(), [`${leader}:standby_leader`, `${replica}:replica`].sort());
  });

  test('delay from a commit on A to its visibility on B\'s standby leader (printed)', async () => {
    const c = b as LocalCluster;
    const leader = await waitFor('standby leader', standbyLeader, 60_000);
    const first = nextId;
    let stop = false;
    const writer = (async () => {
      const end = Date.now() + 20_000;
      while (Date.now() < end) {
        await insert(primaryA);
        await sleep(50);
      }
      stop = true;
    })();
    // Each row's delay: B's clock when the poll first saw it minus A's clock_timestamp() at the
    // insert (same machine, same clock). The 10 ms poll adds up to 10 ms.
    const delays = new Map<number, number>();
    let seen = first - 1;
    while (!stop || seen < nextId - 1) {
      const rows = await query<{ id: number; ms: number }>(
        c.connParams(leader),
        'SELECT id, extract(epoch FROM clock_timestamp() - at) * 1000 AS ms FROM dr WHERE id > $1 ORDER BY id',
        [seen],
      );
      for (const r of rows) delays.set(r.id, Number(r.ms));
      if (rows.length > 0) seen = rows[rows.length - 1]!.id;
      await sleep(10);
    }
    await writer;
    const sorted = [...delays.values()].sort((x, y) => x - y);
    const pct = (p: number): string => (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN).toFixed(1);
    console.log(`# standby cluster delay A commit -> B standby leader visible: ${sorted.length} rows over 20 s (one every 50 ms): median ${pct(50)} ms, p95 ${pct(95)} ms, max ${pct(100)} ms`);
    assert.equal(sorted.length, nextId - first, 'every row reached B');
  });

  test('a failover inside B keeps B read-only: the new standby leader follows A', async () => {
    const c = b as LocalCluster;
    const old = await waitFor('standby leader', standbyLeader, 60_000);
    const other = c.nodes.map((n) => n.name).find((n) => n !== old) as string;
    c.killAgent(old, 'SIGKILL', { withPostgres: true });
    const next = await waitFor(`${other} becomes the standby leader`, async () => ((await standbyLeader()) === other ? other : undefined), 120_000, 500);
    assert.equal(await inRecovery(c, next), true, `${next} was not promoted`);
    const id = await insert(primaryA);
    await waitFor(`row ${id} on the new standby leader`, () => hasRow(c, next, id), 60_000, 200);
    c.startAgent(old);
    await waitFor(`${old} back as a streaming replica of ${next}`, async () => (await c.api(old, '/replica?replication_state=streaming'))?.status === 200, 180_000, 500);
    assert.equal(await inRecovery(c, old), true);
    assert.deepEqual(await c.primaries(), []);

    // A switchover inside B: the candidate becomes the standby leader, nobody is promoted.
    const reply = await requestSwitchover(c, next, old, 90_000);
    assert.equal(reply.status, 200, `POST /switchover answered ${reply.status}: ${reply.text}`);
    await waitFor(`${old} becomes the standby leader`, async () => (await standbyLeader()) === old, 120_000, 500);
    assert.equal(await inRecovery(c, old), true, `${old} was not promoted`);
    await waitFor(`${next} streams from ${old}`, async () => (await c.api(next, '/replica?replication_state=streaming'))?.status === 200, 120_000, 500);
    const id2 = await insert(primaryA);
    for (const n of [old, next]) await waitFor(`row ${id2} on ${n}`, () => hasRow(c, n, id2), 60_000, 200);
    assert.deepEqual(await c.primaries(), []);

    // vigil list shows the standby leader as patronictl does.
    const listed = await run(VIGIL, ['--dcs-url', `etcd3://${c.etcdEndpoint}`, 'list', 'beta', '-f', 'json'], { timeoutMs: 30_000 });
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as Array<{ Member: string; Role: string }>;
    assert.deepEqual(rows.map((r) => `${r.Member}:${r.Role}`).sort(), [`${old}:Standby Leader`, `${next}:Replica`].sort());
  });

  test('B pointed at an HAProxy in front of A follows A\'s new primary after a failover in A', async () => {
    const c = b as LocalCluster;
    haproxy = await Haproxy.start({ dir: join(baseA, 'haproxy'), backends: backendsOf(a), checks: LOW_LATENCY_CHECKS });
    await waitFor('HAProxy routes to A\'s primary', async () => (await haproxy?.upServers('primary'))?.join() === primaryA, 30_000, 100);
    const leader = await waitFor('standby leader', standbyLeader, 60_000);
    await patchConfig(c, leader, { standby_cluster: { host: '127.0.0.1', port: haproxy.primaryPort } });
    await waitFor('the standby leader streams through HAProxy', async () => {
      const r = await query<{ p: number }>(c.connParams(leader), "SELECT sender_port AS p FROM pg_stat_wal_receiver WHERE status = 'streaming'");
      return r[0]?.p === haproxy?.primaryPort;
    }, 60_000, 500);
    const tlBefore = await timeline(a, primaryA);
    const old = primaryA;
    a.killAgent(old, 'SIGKILL', { withPostgres: true });
    primaryA = await waitFor('A\'s new primary', async () => (await a.primaries()).find((p) => p !== old), 120_000, 500);
    const id = await waitFor('a write on A\'s new primary', () => insert(primaryA).catch(() => undefined), 60_000, 500);
    const leaderNow = await waitFor('standby leader', standbyLeader, 60_000);
    await waitFor(`row ${id} on B's standby leader`, () => hasRow(c, leaderNow, id), 120_000, 500);
    const replica = c.nodes.map((n) => n.name).find((n) => n !== leaderNow) as string;
    await waitFor(`row ${id} on B's replica`, () => hasRow(c, replica, id).catch(() => false), 120_000, 500);
    assert.ok((await timeline(c, leaderNow).catch(() => 0)) >= tlBefore, 'B moved to A\'s new timeline');
    a.startAgent(old);
    await waitFor('A healthy again', () => healthy(a), 180_000, 500);
  });

  test('a failover in A that loses WAL B had replayed: B is rewound onto A\'s new history', async () => {
    const c = b as LocalCluster;
    const h = haproxy as Haproxy;
    await waitFor('A healthy', () => healthy(a), 120_000, 500);
    const leader = await waitFor('standby leader', standbyLeader, 60_000);
    const replicaA = a.nodes.map((n) => n.name).find((n) => n !== primaryA) as string;
    // A's replica's host dies; a row committed on A's primary reaches B only; then A's primary's
    // host dies and A's replica comes back and is promoted without that row.
    a.killAgent(replicaA, 'SIGKILL', { withPostgres: true });
    const lost = await insert(primaryA);
    for (const n of c.nodes) await waitFor(`row ${lost} on ${n.name}`, () => hasRow(c, n.name, lost), 60_000, 200);
    const old = primaryA;
    a.killAgent(old, 'SIGKILL', { withPostgres: true });
    a.startAgent(replicaA);
    primaryA = await waitFor(`${replicaA} promoted`, async () => ((await a.primaries()).includes(replicaA) ? replicaA : undefined), 180_000, 500);
    assert.equal(await hasRow(a, primaryA, lost), false, 'the row was lost with A\'s old primary');
    const id = await waitFor('a write on A\'s new primary', () => insert(primaryA).catch(() => undefined), 60_000, 500);
    for (const n of c.nodes) {
      await waitFor(`row ${id} on ${n.name}`, () => hasRow(c, n.name, id).catch(() => false), 180_000, 500).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${agentLog(c, n.name, 40)}`);
      });
      assert.equal(await hasRow(c, n.name, lost), false, `${n.name} follows A's new history`);
      assert.equal(await inRecovery(c, n.name), true);
    }
    assert.ok(c.nodes.some((n) => new RegExp(`running pg_rewind from 127\\.0\\.0\\.1:${h.primaryPort}`).test(readFileSync(n.logFile, 'utf8'))), 'rewound from the remote');
    assert.equal(await standbyLeader(), leader);
    a.startAgent(old);
    await waitFor('A healthy again', () => healthy(a), 180_000, 500);
  });

  test('removing standby_cluster promotes B on a new timeline; adding it back demotes it through pg_rewind', async () => {
    const c = b as LocalCluster;
    const leader = await waitFor('standby leader', standbyLeader, 60_000);
    const tlA = await timeline(a, primaryA);
    await patchConfig(c, leader, { standby_cluster: null });
    const primaryB = await waitFor('B promoted', async () => ((await c.primaries()).length === 1 ? (await c.primaries())[0] : undefined), 120_000, 500);
    assert.equal(primaryB, leader);
    await query(c.connParams(primaryB), 'INSERT INTO dr (id) VALUES (-100)');
    await query(c.connParams(primaryB), 'CHECKPOINT');
    const tlB = await timeline(c, primaryB);
    assert.ok(tlB > tlA, `B runs on a new timeline (${tlB} > ${tlA})`);
    const replica = c.nodes.map((n) => n.name).find((n) => n !== primaryB) as string;
    await waitFor(`${replica} follows B's new primary`, async () => (await c.api(replica, '/replica?replication_state=streaming'))?.status === 200, 120_000, 500);

    // demote-cluster: B's primary (diverged from A by the row -100) becomes a standby leader of A again.
    const h = haproxy as Haproxy;
    const dirBefore = await sysid(c, primaryB);
    await patchConfig(c, primaryB, { standby_cluster: { host: '127.0.0.1', port: h.primaryPort } });
    const back = await waitFor('B has a standby leader again', standbyLeader, 180_000, 500).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${agentLog(c, primaryB, 60)}`);
    });
    assert.deepEqual(await c.primaries(), []);
    const id = await insert(primaryA);
    await waitFor(`row ${id} on B's standby leader`, () => hasRow(c, back, id), 120_000, 500);
    assert.equal(await hasRow(c, back, -100), false, 'B\'s own write was rewound away');
    assert.equal(await sysid(c, back), dirBefore, 'same data directory lineage (no initdb)');
    const log = readFileSync(c.node(primaryB).logFile, 'utf8');
    assert.match(log, /running pg_rewind from 127\.0\.0\.1:/, 'the former primary was rewound');
    assert.doesNotMatch(log.slice(log.lastIndexOf('demote-cluster')), /reinitializ|pg_basebackup from/, 'no new clone after demote-cluster');
    await waitFor(`row ${id} on B's replica`, async () => {
      for (const n of c.nodes) if (!(await hasRow(c, n.name, id).catch(() => false))) return false;
      return true;
    }, 180_000, 500);
  });
});
