// A three-node Vigil cluster on real PostgreSQL 15 and a real etcd, driven through the same
// `vigil agent` processes a user runs. One cluster goes through the scenarios in order:
// bootstrap, postmaster crash recovered in place, host crash with failover and rejoin, SIGTERM
// handover, and etcd loss (the primary demotes) and return.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { ctlDcs, healthy, inRecovery, onePrimary, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, sleep, waitFor } from '../support/wait.ts';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const VIGIL = resolve(import.meta.dirname, '..', '..', 'bin', 'vigil');
const PATRONICTL = '/usr/bin/patronictl';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: 60_000, env: { ...process.env, LANG: 'C.UTF-8' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, stdout, stderr });
    });
  });
}

// ttl 10 s so that lease expiry is slow next to an explicit release (see the SIGTERM test).
const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

describe('three-node cluster on etcd', { timeout: 600_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let dcs: Dcs;

  const roleOf = async (name: string): Promise<string | undefined> => {
    const r = await cluster.api(name, '/patroni');
    return r?.body?.['role'] as string | undefined;
  };

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-it-', { nodes: 3, timing: TIMING, logLevel: 'debug' }));
    dcs = ctlDcs(cluster);
  });

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  test('bootstraps exactly once: one primary, two streaming replicas, Patroni keys in etcd', async () => {
    const primary = await waitFor('one primary and two streaming replicas', () => healthy(cluster), 120_000);
    const view = await dcs.readCluster();
    assert.equal(view.leader?.name, primary);
    assert.match(view.initialize ?? '', /^\d{10,}$/, '/initialize holds the system identifier');
    assert.equal(view.config?.['ttl'], TIMING.ttl, '/config written from bootstrap.dcs');
    assert.equal(view.members.length, 3);
    for (const m of view.members) {
      assert.match(m.data.conn_url ?? '', /^postgres:\/\/127\.0\.0\.1:\d+\/postgres$/);
      assert.match(m.data.api_url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/patroni$/);
      assert.equal(m.data.role, m.name === primary ? 'primary' : 'replica');
    }
    // Every node has the same system identifier: replicas were cloned, not initdb'd.
    const sysids = await Promise.all(cluster.nodes.map(async (n) => (await query<{ s: string }>(cluster.connParams(n.name), 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]?.s));
    assert.deepEqual(new Set(sysids), new Set([view.initialize]));
    // A write on the primary reaches both replicas.
    await query(cluster.connParams(primary), 'CREATE TABLE t (id int PRIMARY KEY, note text)');
    await query(cluster.connParams(primary), "INSERT INTO t VALUES (1, 'bootstrap')");
    for (const n of cluster.nodes.filter((x) => x.name !== primary)) {
      await waitFor(`row replicated to ${n.name}`, async () => (await query(cluster.connParams(n.name), 'SELECT 1 FROM t WHERE id = 1')).length === 1, 30_000);
    }
  });

  test('vigil list and Patroni 3.0.2 patronictl list read the cluster alike', async () => {
    const primary = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const cfg = cluster.nodes[0]!.configFile;
    // Member keys are republished every loop_wait: wait until they show the streaming replicas.
    const expected = cluster.nodes.map((n) => [n.name, n.name === primary ? 'Leader' : 'Replica', n.name === primary ? 'running' : 'streaming']);
    let rows: Array<Record<string, unknown>> = [];
    await waitFor('vigil list to show one leader and two streaming replicas', async () => {
      const ours = await run(VIGIL, ['list', '-c', cfg, '-f', 'json']);
      assert.equal(ours.code, 0, ours.stderr);
      rows = JSON.parse(ours.stdout) as Array<Record<string, unknown>>;
      return JSON.stringify(rows.map((r) => [r['Member'], r['Role'], r['State']])) === JSON.stringify(expected);
    }, 30_000);
    const pretty = await run(VIGIL, ['list', '-c', cfg]);
    assert.match(pretty.stdout, /\+ Cluster: demo \(\d{10,}\) /);

    if (!existsSync(PATRONICTL)) return;
    const theirs = await run(PATRONICTL, ['-c', cfg, 'list', '-f', 'json']);
    assert.equal(theirs.code, 0, theirs.stderr);
    const prow = JSON.parse(theirs.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      prow.map((r) => [r['Member'], r['Role'], r['TL']]),
      rows.map((r) => [r['Member'], r['Role'], r['TL']]),
      'patronictl sees the same members, roles and timelines',
    );
    for (const r of prow) assert.equal(r['State'], 'running', 'patronictl 3.0.2 shows running for every member');
  });

  test('kill -9 of PostgreSQL alone on the primary: restarted in place, same primary, same timeline', async () => {
    const primary = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const tlBefore = (await cluster.api(primary))?.body?.['timeline'];
    const pidBefore = cluster.postmasterPid(primary);
    cluster.killPostgres(primary, 'SIGKILL');
    await waitFor('postgres restarted on the same node', async () => {
      const pid = cluster.postmasterPid(primary);
      if (pid === undefined || pid === pidBefore || (await onePrimary(cluster)) !== primary) return false;
      const body = (await cluster.api(primary))?.body;
      return body?.['state'] === 'running' && body['timeline'] !== undefined;
    }, 60_000);
    await query(cluster.connParams(primary), "INSERT INTO t VALUES (2, 'after postmaster crash')");
    assert.equal((await cluster.api(primary))?.body?.['timeline'], tlBefore, 'no failover happened');
    assert.equal(await inRecovery(cluster, primary), false);
  });

  test('host crash (kill -9 of agent and PostgreSQL): a replica takes over, the old primary rejoins after pg_rewind', async () => {
    const old = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    // Make sure the replicas have everything before the crash, so no acknowledged write can be lost.
    await query(cluster.connParams(old), "INSERT INTO t VALUES (3, 'before host crash')");
    for (const n of cluster.nodes.filter((x) => x.name !== old)) {
      await waitFor(`row 3 on ${n.name}`, async () => (await query(cluster.connParams(n.name), 'SELECT 1 FROM t WHERE id = 3')).length === 1, 30_000);
    }
    cluster.killAgent(old, 'SIGKILL', { withPostgres: true });
    const fresh = await waitFor('a new primary', () => onePrimary(cluster, old), 90_000);
    assert.notEqual(fresh, old);
    await query(cluster.connParams(fresh), "INSERT INTO t VALUES (4, 'after failover')");
    const rows = await query<{ id: number }>(cluster.connParams(fresh), 'SELECT id FROM t ORDER BY id');
    assert.deepEqual(rows.map((r) => r.id), [1, 2, 3, 4]);
    assert.equal((await dcs.readCluster()).leader?.name, fresh);
    const history = await waitFor('/history to record the promotion', async () => {
      const h = (await dcs.readCluster()).history ?? [];
      return h.length >= 1 ? h : undefined;
    }, 30_000);
    assert.equal(history.at(-1)?.[4], fresh, 'the new leader is named in /history');

    // The crashed node comes back: it must end up a streaming replica with the new timeline's data.
    cluster.startAgent(old);
    await waitFor(`${old} streaming again`, async () => (await streamingReplicas(cluster)).includes(old), 120_000);
    await waitFor(`row 4 on ${old}`, async () => (await query(cluster.connParams(old), 'SELECT 1 FROM t WHERE id = 4')).length === 1, 30_000);
    assert.equal(await inRecovery(cluster, old), true);
    assert.equal(await roleOf(old), 'replica');
  });

  test('SIGTERM of the primary agent: PostgreSQL stops, the lock is released at once, a replica takes over', async () => {
    const old = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
    cluster.killAgent(old, 'SIGTERM');
    const code = await cluster.waitAgentExit(old, 60_000);
    assert.equal(code, 0, 'clean exit');
    assert.equal(cluster.postmasterPid(old) !== undefined && (await cluster.api(old)) !== undefined, false);
    // Right after the agent exited its lease-bound leader key must be gone (released, not
    // expired: the ttl is 10 s) or already taken by another member.
    const leaderNow = (await dcs.readCluster()).leader?.name;
    assert.notEqual(leaderNow, old);
    const fresh = await waitFor('a new primary', () => onePrimary(cluster, old), 60_000);
    await query(cluster.connParams(fresh), "INSERT INTO t VALUES (5, 'after switchover by SIGTERM')");
    cluster.startAgent(old);
    await waitFor(`${old} streaming again`, async () => (await streamingReplicas(cluster)).includes(old), 120_000);
  });

  test('etcd stops: the primary demotes itself (no failsafe yet); etcd returns: one primary again', async () => {
    const old = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
    const etcd = cluster.etcd;
    assert.ok(etcd !== undefined);
    etcd.kill('SIGKILL');
    // Without the DCS nobody may be primary: the old primary restarts read-only.
    await waitFor('the old primary to demote', async () => await inRecovery(cluster, old), 60_000);
    assert.deepEqual(await cluster.primaries(), [], 'no node claims /primary while etcd is down');
    for (const n of cluster.nodes) assert.equal(await inRecovery(cluster, n.name), true, `${n.name} is read-only`);
    await sleep(1000);
    await etcd.restart();
    const fresh = await waitFor('one primary after etcd is back', () => onePrimary(cluster), 120_000);
    await query(cluster.connParams(fresh), "INSERT INTO t VALUES (6, 'after etcd outage')");
    await waitFor('cluster healthy again', () => healthy(cluster), 120_000);
    const rows = await query<{ id: number }>(cluster.connParams(fresh), 'SELECT id FROM t ORDER BY id');
    assert.deepEqual(rows.map((r) => r.id), [1, 2, 3, 4, 5, 6]);
  });
});
