// Synchronous replication on a real three-node cluster (PostgreSQL 15, etcd, `vigil agent`
// processes): priority mode (synchronous_mode: on) and quorum mode (synchronous_mode: quorum).
//
// Asserted: the /sync key, the primary's synchronous_standby_names and pg_stat_replication agree;
// the REST role checks (/sync, /quorum) and `vigil list` show the standby roles; a host crash of
// the primary (kill -9 of agent and PostgreSQL while a writer commits) promotes a synchronous
// standby and loses no acknowledged commit; a sync standby stopped with SIGTERM leaves /sync while
// its PostgreSQL still runs, and commits keep working afterwards (non-strict mode).
//
// "Acknowledged" means COMMIT returned success WITHOUT PostgreSQL's warning "canceling wait for
// synchronous replication" (such a commit is local only; docs/guarantees.md section 3).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';

import { FAST_TIMING, type LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import type { ConnParams } from '../support/wait.ts';
import { agentLog, ctlDcs, healthy, onePrimary, processRuns, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, sleep, waitFor } from '../support/wait.ts';

const VIGIL = resolve(import.meta.dirname, '..', '..', 'bin', 'vigil');
const SYNC_CANCEL = /canceling wait for synchronous replication/i;

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: 60_000, env: { ...process.env, LANG: 'C.UTF-8' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, stdout, stderr });
    });
  });
}

/** Split a /sync sync_standby value into sorted names. */
function standbysOf(v: unknown): string[] {
  return typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '').sort() : [];
}

/**
 * One statement on a fresh connection; resolves true only when it succeeded without the
 * "canceling wait for synchronous replication" warning (a commit that is only local).
 */
async function committed(params: ConnParams, sql: string, values: unknown[] = [], timeoutMs = 20_000): Promise<{ ok: boolean; notices: string[] }> {
  const notices: string[] = [];
  const c = new pg.Client({ ...params, connectionTimeoutMillis: 3000, query_timeout: timeoutMs, application_name: 'vigil-test' });
  c.on('error', () => undefined);
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  try {
    await c.query(sql, values);
    return { ok: !notices.some((m) => SYNC_CANCEL.test(m)), notices };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * A client inserting ids 1, 2, 3... into `table` through one connection, one autocommit INSERT at a
 * time, until stop() or the first error. `acked` holds the ids whose COMMIT returned success without
 * the sync-cancel warning.
 */
function startWriter(params: ConnParams, table: string, firstId: number): { acked: number[]; stop: () => Promise<string | undefined>; ended: () => Promise<string | undefined> } {
  const acked: number[] = [];
  let stopping = false;
  let lastError: string | undefined;
  const done = (async () => {
    const c = new pg.Client({ ...params, connectionTimeoutMillis: 3000, query_timeout: 30_000, application_name: 'vigil-test-writer' });
    const notices: string[] = [];
    c.on('error', () => undefined);
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await c.connect();
      for (let id = firstId; !stopping; id++) {
        notices.length = 0;
        await c.query(`INSERT INTO ${table} (id) VALUES ($1)`, [id]);
        if (!notices.some((m) => SYNC_CANCEL.test(m))) acked.push(id);
      }
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  return {
    acked,
    stop: async () => {
      stopping = true;
      await done;
      return lastError;
    },
    /** The writer's error once it ends by itself (its server died), or undefined after 30 s (then stopped). */
    ended: async () => {
      const t = setTimeout(() => {
        stopping = true;
      }, 30_000);
      await done;
      clearTimeout(t);
      return lastError;
    },
  };
}

/** Shared scaffolding of one cluster per describe block. */
function harness(dcsExtra: Record<string, unknown>) {
  const h = {
    base: '',
    cluster: undefined as unknown as LocalCluster,
    dcs: undefined as unknown as Dcs,
    async setUp(): Promise<void> {
      ({ base: h.base, cluster: h.cluster } = await startCluster('vigil-it-sync-', { nodes: 3, timing: FAST_TIMING, logLevel: 'debug', dcs: dcsExtra }));
      h.dcs = ctlDcs(h.cluster);
    },
    async tearDown(): Promise<void> {
      await h.dcs?.close();
      await stopCluster(h.cluster, h.base);
    },
    async ssn(name: string): Promise<string> {
      return (await query<{ s: string }>(h.cluster.connParams(name), "SELECT current_setting('synchronous_standby_names') AS s"))[0]?.s ?? '';
    },
    async syncStates(name: string): Promise<Record<string, string>> {
      const rows = await query<{ n: string; s: string }>(h.cluster.connParams(name), 'SELECT application_name AS n, sync_state AS s FROM pg_stat_replication');
      return Object.fromEntries(rows.map((r) => [r.n, r.s]));
    },
    async ids(name: string, table: string): Promise<Set<number>> {
      return new Set((await query<{ id: number }>(h.cluster.connParams(name), `SELECT id FROM ${table}`)).map((r) => r.id));
    },
  };
  return h;
}

describe('synchronous_mode: on (priority)', { timeout: 900_000 }, () => {
  const h = harness({ synchronous_mode: true });
  before(() => h.setUp());
  after(() => h.tearDown());

  test('bootstrap: /sync names one replica, ssn and pg_stat_replication agree, REST and vigil list show it', async () => {
    const primary = await waitFor('one primary and two streaming replicas', () => healthy(h.cluster), 120_000);
    const replicas = h.cluster.nodes.map((n) => n.name).filter((n) => n !== primary);
    const sync = await waitFor('/sync to name one replica', async () => {
      const s = (await h.dcs.readCluster()).sync;
      return s?.leader === primary && standbysOf(s.sync_standby).length === 1 ? s : undefined;
    }, 60_000);
    assert.equal(sync.quorum ?? 0, 0, 'priority mode publishes quorum 0');
    const syncName = standbysOf(sync.sync_standby)[0]!;
    assert.ok(replicas.includes(syncName), `${syncName} is a replica`);
    const other = replicas.find((r) => r !== syncName)!;

    // The primary's running ssn names exactly that standby, and PostgreSQL reports it 'sync'.
    assert.equal((await h.ssn(primary)).replace(/"/g, ''), syncName);
    const states = await waitFor('pg_stat_replication to show both standbys', async () => {
      const s = await h.syncStates(primary);
      return Object.keys(s).length === 2 ? s : undefined;
    }, 30_000);
    assert.equal(states[syncName], 'sync', JSON.stringify(states));
    assert.equal(states[other], 'async', JSON.stringify(states));

    // Each agent answers from its last DCS read (every loop_wait): wait for the standby to see /sync.
    const restStatus = async (): Promise<string> =>
      JSON.stringify([
        (await h.cluster.api(syncName, '/sync'))?.status,
        (await h.cluster.api(other, '/sync'))?.status,
        (await h.cluster.api(primary, '/sync'))?.status,
        (await h.cluster.api(syncName, '/async'))?.status,
        (await h.cluster.api(other, '/async'))?.status,
        (await h.cluster.api(syncName, '/patroni'))?.body?.['sync_standby'],
      ]);
    const want = JSON.stringify([200, 503, 503, 503, 200, true]);
    let got = '';
    await waitFor('GET /sync 200 on the sync standby only, /async 200 on the other replica', async () => (got = await restStatus()) === want, 15_000).catch(() => {
      assert.equal(got, want, '[/sync on sync standby, /sync on other, /sync on primary, /async on sync standby, /async on other, sync_standby in /patroni]');
    });

    const cfg = h.cluster.nodes[0]!.configFile;
    await waitFor('vigil list to show the Sync Standby', async () => {
      const out = await run(VIGIL, ['list', '-c', cfg, '-f', 'json']);
      assert.equal(out.code, 0, out.stderr);
      const rows = JSON.parse(out.stdout) as Array<Record<string, unknown>>;
      const role = Object.fromEntries(rows.map((r) => [r['Member'], r['Role']]));
      return role[primary] === 'Leader' && role[syncName] === 'Sync Standby' && role[other] === 'Replica';
    }, 30_000);

    // A commit on the primary waits for the sync standby and so is there at once.
    await query(h.cluster.connParams(primary), 'CREATE TABLE t (id int PRIMARY KEY)');
    const r = await committed(h.cluster.connParams(primary), 'INSERT INTO t VALUES (0)');
    assert.equal(r.ok, true, r.notices.join('; '));
  });

  test('host crash of the primary: the /sync standby is promoted, no acknowledged commit is lost', async () => {
    const old = await waitFor('healthy cluster', () => healthy(h.cluster), 120_000);
    const syncName = await waitFor('/sync to name a standby', async () => {
      const s = (await h.dcs.readCluster()).sync;
      return s?.leader === old ? standbysOf(s.sync_standby)[0] : undefined;
    }, 60_000);
    await waitFor(`${syncName} reported sync`, async () => (await h.syncStates(old))[syncName] === 'sync', 30_000);

    const w = startWriter(h.cluster.connParams(old), 't', 1000);
    await waitFor('the writer to commit 200 rows', async () => w.acked.length >= 200, 60_000);
    h.cluster.killAgent(old, 'SIGKILL', { withPostgres: true });
    const err = await w.ended();
    assert.ok(err !== undefined, 'the writer saw its connection die');

    const fresh = await waitFor('a new primary', () => onePrimary(h.cluster, old), 120_000);
    assert.equal(fresh, syncName, `the new primary is the node that was in /sync (${syncName})\n${agentLog(h.cluster, fresh)}`);
    const have = await h.ids(fresh, 't');
    const lost = w.acked.filter((id) => !have.has(id));
    console.log(`# priority: ${w.acked.length} commits acknowledged before the host crash, ${lost.length} missing on ${fresh}`);
    assert.deepEqual(lost, [], 'every acknowledged commit is on the new primary');
    assert.ok(have.has(0));

    // The crashed node comes back as a replica (pg_rewind as needed).
    h.cluster.startAgent(old);
    await waitFor(`${old} streaming again`, async () => (await streamingReplicas(h.cluster)).includes(old), 180_000);
  });

  test('SIGTERM of the sync standby: it leaves /sync while its PostgreSQL still runs; commits keep working', async () => {
    const primary = await waitFor('healthy cluster', () => healthy(h.cluster), 180_000);
    const syncName = await waitFor('/sync to name a standby', async () => {
      const s = (await h.dcs.readCluster()).sync;
      const n = s?.leader === primary ? standbysOf(s.sync_standby)[0] : undefined;
      return n !== undefined && (await h.syncStates(primary))[n] === 'sync' ? n : undefined;
    }, 90_000);
    const pmPid = h.cluster.postmasterPid(syncName);
    assert.ok(pmPid !== undefined);
    const proc = h.cluster.node(syncName).process;
    assert.ok(proc !== undefined);

    // Poll /sync until the agent exits. When a read no longer names the standby, check at once
    // (after the read) whether its postmaster still runs: then /sync changed before it stopped.
    let exited = false;
    proc.once('exit', () => {
      exited = true;
    });
    let leftWhileRunning: boolean | undefined;
    const watcher = (async () => {
      while (!exited && leftWhileRunning === undefined) {
        try {
          const s = (await h.dcs.readCluster()).sync;
          if (!standbysOf(s?.sync_standby).includes(syncName)) leftWhileRunning = processRuns(pmPid);
        } catch {
          // etcd busy: try again
        }
        await sleep(50);
      }
    })();
    h.cluster.killAgent(syncName, 'SIGTERM');
    const code = await h.cluster.waitAgentExit(syncName, 60_000);
    await watcher;
    assert.equal(code, 0, 'clean exit');
    assert.equal(leftWhileRunning, true, `/sync still named ${syncName} when its PostgreSQL stopped\n${agentLog(h.cluster, syncName)}`);
    assert.equal(processRuns(pmPid), false, 'PostgreSQL stopped with the agent');

    // Non-strict mode: commits on the primary do not wait for the stopped standby.
    for (let i = 0; i < 3; i++) {
      const r = await committed(h.cluster.connParams(primary), 'INSERT INTO t VALUES ($1)', [100_000 + i], 30_000);
      assert.equal(r.ok, true, `commit ${i} after the sync standby stopped: ${r.notices.join('; ')}`);
    }
    const ssn = await h.ssn(primary);
    assert.ok(!ssn.includes(syncName), `ssn ${JSON.stringify(ssn)} no longer names ${syncName}`);

    h.cluster.startAgent(syncName);
    await waitFor(`${syncName} streaming again`, async () => (await streamingReplicas(h.cluster)).includes(syncName), 120_000);
  });
});

describe('synchronous_mode: quorum', { timeout: 900_000 }, () => {
  const h = harness({ synchronous_mode: 'quorum', synchronous_node_count: 1 });
  before(() => h.setUp());
  after(() => h.tearDown());

  test('bootstrap: /sync lists both replicas with quorum 1, ssn is ANY 1 (..), GET /quorum 200 on replicas', async () => {
    const primary = await waitFor('one primary and two streaming replicas', () => healthy(h.cluster), 120_000);
    const replicas = h.cluster.nodes.map((n) => n.name).filter((n) => n !== primary).sort();
    const sync = await waitFor('/sync to list both replicas', async () => {
      const s = (await h.dcs.readCluster()).sync;
      return s?.leader === primary && JSON.stringify(standbysOf(s.sync_standby)) === JSON.stringify(replicas) ? s : undefined;
    }, 90_000);
    assert.equal(sync.quorum, 1, 'two voters, one acknowledgement: quorum 1');
    assert.equal((await h.ssn(primary)).replace(/"/g, ''), `ANY 1 (${replicas.join(',')})`);
    const states = await waitFor('pg_stat_replication to show both standbys as quorum', async () => {
      const s = await h.syncStates(primary);
      return replicas.every((r) => s[r] === 'quorum') ? s : undefined;
    }, 30_000);
    assert.deepEqual(Object.keys(states).sort(), replicas);
    // Each agent answers from its last DCS read (every loop_wait): wait for the replicas to see /sync.
    const restStatus = async (): Promise<string> =>
      JSON.stringify([
        ...(await Promise.all(replicas.map(async (r) => (await h.cluster.api(r, '/quorum'))?.status))),
        ...(await Promise.all(replicas.map(async (r) => (await h.cluster.api(r, '/sync'))?.status))),
        (await h.cluster.api(primary, '/quorum'))?.status,
      ]);
    const want = JSON.stringify([200, 200, 503, 503, 503]);
    let got = '';
    await waitFor('GET /quorum 200 on both replicas', async () => (got = await restStatus()) === want, 15_000).catch(() => {
      assert.equal(got, want, '[/quorum on each replica, /sync on each replica, /quorum on the primary]');
    });
    const cfg = h.cluster.nodes[0]!.configFile;
    await waitFor('vigil list to show two Quorum Standbys', async () => {
      const out = await run(VIGIL, ['list', '-c', cfg, '-f', 'json']);
      const rows = JSON.parse(out.stdout) as Array<Record<string, unknown>>;
      return rows.filter((r) => r['Role'] === 'Quorum Standby').length === 2;
    }, 30_000);
    await query(h.cluster.connParams(primary), 'CREATE TABLE t (id int PRIMARY KEY)');
  });

  test('host crash of the primary: a replica is promoted and no acknowledged commit is lost', async () => {
    const old = await waitFor('healthy cluster', () => healthy(h.cluster), 120_000);
    await waitFor('/sync to list two voters', async () => {
      const s = (await h.dcs.readCluster()).sync;
      return s?.leader === old && standbysOf(s.sync_standby).length === 2;
    }, 60_000);
    const w = startWriter(h.cluster.connParams(old), 't', 1000);
    await waitFor('the writer to commit 200 rows', async () => w.acked.length >= 200, 60_000);
    h.cluster.killAgent(old, 'SIGKILL', { withPostgres: true });
    const err = await w.ended();
    assert.ok(err !== undefined, 'the writer saw its connection die');

    const fresh = await waitFor('a new primary', () => onePrimary(h.cluster, old), 120_000);
    const have = await h.ids(fresh, 't');
    const lost = w.acked.filter((id) => !have.has(id));
    console.log(`# quorum: ${w.acked.length} commits acknowledged before the host crash, ${lost.length} missing on ${fresh}`);
    assert.deepEqual(lost, [], 'every acknowledged commit is on the new primary');
    const s = await waitFor('/sync rewritten by the new leader', async () => {
      const v = (await h.dcs.readCluster()).sync;
      return v?.leader === fresh ? v : undefined;
    }, 60_000);
    assert.ok(!standbysOf(s.sync_standby).includes(fresh), 'the leader does not list itself as a voter');

    h.cluster.startAgent(old);
    await waitFor(`${old} streaming again`, async () => (await streamingReplicas(h.cluster)).includes(old), 180_000);
    const r = await committed(h.cluster.connParams(fresh), 'INSERT INTO t VALUES (1)');
    assert.equal(r.ok, true, r.notices.join('; '));
  });
});
