// Cascading replication and nostream on a four-node Vigil cluster (real PostgreSQL 15, real etcd):
// node2 has `replicatefrom: node1` and streams through the slot node1 keeps for it; node3 has
// `nostream` and gets WAL only from the archive (restore_command), with no slot anywhere. Then node1
// is taken away (node2 falls back to the primary), and the primary's host crashes (a failover).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { LocalCluster } from '../../src/local/cluster.ts';
import { onePrimary, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';

const VIGIL = resolve(import.meta.dirname, '..', '..', 'bin', 'vigil');
const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

function vigil(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((res) => {
    execFile(VIGIL, args, { timeout: 60_000 }, (err, stdout) => res({ code: err === null ? 0 : 1, stdout }));
  });
}

describe('replicatefrom and nostream', { timeout: 900_000 }, () => {
  let base: string;
  let archive: string;
  let cluster: LocalCluster;

  const rows = async (name: string, sql: string): Promise<Record<string, unknown>[]> => query(cluster.connParams(name), sql);
  const senderPort = async (name: string): Promise<number | undefined> =>
    (await rows(name, "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'").catch(() => []))[0]?.['sender_port'] as number | undefined;
  const slotNames = async (name: string): Promise<string[]> => (await rows(name, 'SELECT slot_name FROM pg_replication_slots').catch(() => [])).map((r) => r['slot_name'] as string);
  const port = (name: string) => cluster.node(name).pgPort;
  /** A row written on the primary (and its WAL segment archived) reaches `name`. */
  const reaches = async (primary: string, name: string, id: number) => {
    await query(cluster.connParams(primary), 'INSERT INTO c VALUES ($1)', [id]);
    await query(cluster.connParams(primary), 'SELECT pg_switch_wal()');
    await waitFor(`row ${id} on ${name}`, async () => (await rows(name, `SELECT 1 FROM c WHERE id = ${id}`).catch(() => [])).length === 1, 120_000, 500);
  };

  before(async () => {
    archive = await mkdtemp(join(tmpdir(), 'vigil-archive-'));
    await chmod(archive, 0o777); // PostgreSQL may run as another OS user than the test
    ({ base, cluster } = await startCluster('vigil-cascade-', {
      nodes: 4,
      timing: TIMING,
      logLevel: 'debug',
      tags: { node2: { replicatefrom: 'node1' }, node3: { nostream: true } },
      dcs: {
        postgresql: {
          parameters: {
            archive_mode: 'on',
            archive_command: `test ! -f ${archive}/%f && cp %p ${archive}/%f`,
            restore_command: `cp ${archive}/%f %p`,
          },
        },
      },
    }));
  });

  after(async () => {
    await stopCluster(cluster, base);
    if (archive !== undefined) await rm(archive, { recursive: true, force: true });
  });

  test('node2 streams from node1 through node1\'s slot; node3 streams from nobody and has no slot anywhere', async () => {
    let primary = await waitFor('a primary', () => onePrimary(cluster), 180_000, 500);
    if (primary !== 'node0') {
      // Whoever bootstrapped: make node0 the primary, so that node1 is an intermediate replica.
      await waitFor('node0 streaming', async () => (await streamingReplicas(cluster)).includes('node0'), 180_000, 500);
      const n = cluster.node(primary);
      // The answer may be 503 when the switchover takes longer than the API waits; what counts is node0.
      await fetch(`http://${n.host}:${n.apiPort}/switchover`, { method: 'POST', body: JSON.stringify({ leader: primary, candidate: 'node0' }) }).then((r) => r.text());
      primary = await waitFor('node0 the primary', async () => ((await onePrimary(cluster)) === 'node0' ? 'node0' : undefined), 120_000, 500);
    }
    await query(cluster.connParams(primary), 'CREATE TABLE c (id int PRIMARY KEY)');
    await waitFor('node1 streams from the primary', async () => (await senderPort('node1')) === port(primary), 120_000, 500);
    await waitFor('node2 streams from node1', async () => (await senderPort('node2')) === port('node1'), 120_000, 500);
    await waitFor('node1 keeps an active slot for node2', async () => (await rows('node1', "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'node2' AND active").catch(() => [])).length === 1, 60_000, 500);
    await reaches(primary, 'node3', 1);
    assert.equal(await senderPort('node3'), undefined, 'node3 has no streaming connection');
    assert.equal((await rows('node3', 'SELECT 1 FROM pg_stat_wal_receiver')).length, 0);
    for (const n of cluster.nodes) assert.ok(!(await slotNames(n.name)).includes('node3'), `no slot for node3 on ${n.name}`);

    const topo = await vigil(['topology', '-c', cluster.nodes[0]!.configFile]);
    assert.equal(topo.code, 0);
    const line = (n: string) => topo.stdout.split('\n').find((l) => l.includes(` ${n} `)) ?? '';
    const indent = (n: string) => line(n).indexOf(`+ ${n} `);
    assert.ok(line('node2').includes('+ node2'), topo.stdout);
    assert.ok(indent('node2') > indent('node1'), `node2 is drawn under node1:\n${topo.stdout}`);
  });

  test('node1 gone: node2 falls back to the primary; then a failover; node3 still gets WAL from the archive', async () => {
    let primary = (await onePrimary(cluster)) as string;
    assert.equal(primary, 'node0');
    cluster.killAgent('node1', 'SIGKILL', { withPostgres: true });
    await waitFor('node2 streams from the primary once node1\'s key is gone', async () => (await senderPort('node2')) === port(primary), 180_000, 500);
    await reaches(primary, 'node2', 2);

    cluster.killAgent(primary, 'SIGKILL', { withPostgres: true });
    const old = primary;
    primary = await waitFor('a new primary', async () => {
      const p = await onePrimary(cluster, old);
      return p !== undefined && p !== old ? p : undefined;
    }, 180_000, 500);
    const other = primary === 'node2' ? 'node3' : 'node2';
    if (other === 'node2') await waitFor('node2 streams from the new primary', async () => (await senderPort('node2')) === port(primary), 180_000, 500);
    await reaches(primary, other, 3);
    assert.equal(await senderPort('node3').catch(() => undefined), undefined, 'node3 still has no streaming connection');
    for (const n of ['node2', 'node3']) assert.ok(!(await slotNames(n)).includes('node3'), `no slot for node3 on ${n}`);
  });
});
