// The three-node story of issue 9 on a DCS other than etcd (test/integration/dcs-*.test.ts): real
// PostgreSQL 15 and real `vigil agent` processes on a fake DCS (dcs-stores.ts). One cluster goes
// through, in order: bootstrap (one initdb), `vigil list`, switchover by `vigil switchover
// --force`, host crash of the primary with failover and rejoin, pause/resume, and loss of the DCS
// (the primary demotes) and its return. Each backend's file adds its own checks of what it wrote
// where Patroni writes it (the `checks` hooks).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { healthy, inRecovery, onePrimary, startCluster, stopCluster, streamingReplicas } from './cluster.ts';
import { ctlDcsFromConfig, startStore, type RunningStore, type StoreKind } from './dcs-stores.ts';
import { run, VIGIL, type RunResult } from './cli.ts';
import { query, sleep, waitFor } from './wait.ts';

export const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const SCOPE = 'demo';
const NAMES = ['node0', 'node1', 'node2'];

export interface StoryContext {
  cluster: LocalCluster;
  store: RunningStore;
  dcs: Dcs;
  /** `vigil <args> -c <node0's file>` with the DCS environment. */
  vigil(args: string[]): Promise<RunResult>;
}

export interface StoryChecks {
  /** After bootstrap: what the backend wrote for this primary. */
  afterBootstrap?(ctx: StoryContext, primary: string): Promise<void>;
  /** After `vigil list` showed the healthy cluster (rows of `vigil list -f json`). */
  afterList?(ctx: StoryContext, rows: Array<Record<string, unknown>>): Promise<void>;
  /**
   * DCS lost, the old primary read-only, the DCS still unreachable: `log` is what the old
   * primary's agent logged since the DCS became unreachable.
   */
  afterDcsLoss?(ctx: StoryContext, oldPrimary: string, log: string): Promise<void>;
}

export function clusterStory(kind: StoreKind, checks: StoryChecks = {}): void {
  describe(`three-node cluster on ${kind}${kind === 'zookeeper' ? ' (real ZooKeeper)' : ' (fake)'}`, { timeout: 600_000 }, () => {
    let base: string;
    const ctx = {} as StoryContext;

    const rowIds = async (name: string): Promise<number[]> =>
      (await query<{ id: number }>(ctx.cluster.connParams(name), 'SELECT id FROM t ORDER BY id')).map((r) => r.id);
    const replicated = async (id: number, exclude?: string): Promise<void> => {
      for (const n of ctx.cluster.nodes.filter((x) => x.name !== exclude)) {
        await waitFor(`row ${id} on ${n.name}`, async () => (await query(ctx.cluster.connParams(n.name), 'SELECT 1 FROM t WHERE id = $1', [id])).length === 1, 30_000);
      }
    };

    before(async () => {
      ctx.store = await startStore(kind, SCOPE, NAMES);
      ({ base, cluster: ctx.cluster } = await startCluster(`vigil-it-${kind}-`, { nodes: NAMES.length, scope: SCOPE, timing: TIMING, logLevel: 'debug', store: ctx.store.store }));
      ctx.dcs = await ctlDcsFromConfig(ctx.cluster, ctx.store.env);
      const cfg = ctx.cluster.nodes[0]!.configFile;
      ctx.vigil = (args) => run(VIGIL, [...args, '-c', cfg], { env: { ...ctx.store.env, LANG: 'C.UTF-8' }, timeoutMs: 90_000 });
    });

    after(async () => {
      await ctx.dcs?.close();
      await stopCluster(ctx.cluster, base);
      await ctx.store?.stop();
    });

    test('bootstraps once: one primary, two streaming replicas cloned from it, the keys in the DCS', async () => {
      const { cluster, dcs } = ctx;
      const primary = await waitFor('one primary and two streaming replicas', () => healthy(cluster), 120_000);
      const view = await dcs.readCluster();
      assert.equal(view.leader?.name, primary);
      assert.match(view.initialize ?? '', /^\d{10,}$/, 'initialize holds the system identifier');
      assert.equal(view.config?.['ttl'], TIMING.ttl, 'config written from bootstrap.dcs');
      assert.deepEqual(view.members.map((m) => [m.name, m.data.role]).sort(), NAMES.map((n) => [n, n === primary ? 'primary' : 'replica']));
      const sysids = await Promise.all(NAMES.map(async (n) => (await query<{ s: string }>(cluster.connParams(n), 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]?.s));
      assert.deepEqual(new Set(sysids), new Set([view.initialize]), 'one initdb: every node has its system identifier');
      await query(cluster.connParams(primary), 'CREATE TABLE t (id int PRIMARY KEY, note text)');
      await query(cluster.connParams(primary), "INSERT INTO t VALUES (1, 'bootstrap')");
      await replicated(1);
      await checks.afterBootstrap?.(ctx, primary);
    });

    test('vigil list: one Leader and two streaming replicas', async () => {
      const primary = await waitFor('healthy cluster', () => healthy(ctx.cluster), 60_000);
      const expected = NAMES.map((n) => [n, n === primary ? 'Leader' : 'Replica', n === primary ? 'running' : 'streaming']);
      let rows: Array<Record<string, unknown>> = [];
      // Member data is republished every loop_wait: wait until it shows the streaming replicas.
      await waitFor('vigil list to show one leader and two streaming replicas', async () => {
        const r = await ctx.vigil(['list', '-f', 'json']);
        assert.equal(r.code, 0, r.stderr);
        rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
        return JSON.stringify(rows.map((x) => [x['Member'], x['Role'], x['State']])) === JSON.stringify(expected);
      }, 30_000);
      await checks.afterList?.(ctx, rows);
    });

    test('vigil switchover --force: the candidate becomes primary, no write lost, the old primary follows', async () => {
      const { cluster, dcs } = ctx;
      const old = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
      const cand = NAMES.find((n) => n !== old)!;
      await query(cluster.connParams(old), "INSERT INTO t VALUES (2, 'before switchover')");
      const r = await ctx.vigil(['switchover', '--force', '--leader', old, '--candidate', cand]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      await waitFor(`${cand} primary`, async () => (await onePrimary(cluster)) === cand, 60_000);
      assert.equal((await dcs.readCluster()).leader?.name, cand);
      await query(cluster.connParams(cand), "INSERT INTO t VALUES (3, 'after switchover')");
      assert.deepEqual(await rowIds(cand), [1, 2, 3]);
      await waitFor(`${old} streaming from ${cand}`, async () => (await streamingReplicas(cluster)).includes(old), 90_000);
      await replicated(3);
    });

    test('host crash of the primary (kill -9 of agent and PostgreSQL): failover, the old primary rejoins as a replica', async () => {
      const { cluster, dcs } = ctx;
      const old = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
      await query(cluster.connParams(old), "INSERT INTO t VALUES (4, 'before host crash')");
      await replicated(4);
      cluster.killAgent(old, 'SIGKILL', { withPostgres: true });
      const fresh = await waitFor('a new primary', () => onePrimary(cluster, old), 90_000);
      await query(cluster.connParams(fresh), "INSERT INTO t VALUES (5, 'after failover')");
      assert.deepEqual(await rowIds(fresh), [1, 2, 3, 4, 5]);
      assert.equal((await dcs.readCluster()).leader?.name, fresh);
      cluster.startAgent(old);
      await waitFor(`${old} streaming again`, async () => (await streamingReplicas(cluster)).includes(old), 120_000);
      await replicated(5);
      assert.equal(await inRecovery(cluster, old), true);
    });

    test('pause: a primary whose agent is gone is not replaced; its agent returns and keeps the lock; resume', async () => {
      const { cluster, dcs } = ctx;
      const primary = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
      const p = await ctx.vigil(['pause', '--wait']);
      assert.equal(p.code, 0, p.stderr + p.stdout);
      await waitFor('every member to report pause', async () => (await dcs.readCluster()).members.every((m) => m.data.pause === true), 30_000);
      // The agent dies, PostgreSQL keeps running: once its leader key has expired the replicas
      // would take over if not paused; in pause they must not.
      cluster.killAgent(primary, 'SIGKILL');
      await waitFor('the leader key to expire', async () => (await dcs.readCluster()).leader === undefined, 60_000);
      await sleep(3 * TIMING.loop_wait * 1000);
      for (const n of NAMES.filter((x) => x !== primary)) assert.equal(await inRecovery(cluster, n), true, `${n} was not promoted in pause`);
      assert.equal(await inRecovery(cluster, primary), false, 'the old primary still runs as primary');
      cluster.startAgent(primary);
      await waitFor(`${primary} to take its lock back`, async () => (await dcs.readCluster()).leader?.name === primary, 60_000);
      const r = await ctx.vigil(['resume', '--wait']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.notEqual((await dcs.readCluster()).config?.['pause'], true);
      assert.equal(await waitFor('healthy cluster after resume', () => healthy(cluster), 60_000), primary);
    });

    test('DCS lost: the primary demotes, nobody answers /primary; DCS back: one primary, writes accepted', async () => {
      const { cluster } = ctx;
      const old = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
      const logFile = cluster.node(old).logFile;
      const logFrom = statSync(logFile).size;
      ctx.store.pause();
      try {
        await waitFor('the old primary to demote', async () => await inRecovery(cluster, old), 60_000);
        assert.deepEqual(await cluster.primaries(), [], 'no node claims /primary while the DCS is unreachable');
        for (const n of NAMES) assert.equal(await inRecovery(cluster, n), true, `${n} is read-only`);
        await checks.afterDcsLoss?.(ctx, old, readFileSync(logFile).subarray(logFrom).toString('utf8'));
      } finally {
        ctx.store.resume();
      }
      const fresh = await waitFor('one primary after the DCS is back', () => onePrimary(cluster), 120_000);
      await query(cluster.connParams(fresh), "INSERT INTO t VALUES (6, 'after DCS outage')");
      await waitFor('cluster healthy again', () => healthy(cluster), 120_000);
      assert.deepEqual(await rowIds(fresh), [1, 2, 3, 4, 5, 6]);
    });
  });
}
