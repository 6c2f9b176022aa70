// pg_hba from the dynamic configuration on a real two-node cluster: PATCH /config with
// postgresql.pg_hba is written on every member and applied by a reload, replication keeps working.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/local/cluster.ts';
import { healthy, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

describe('dynamic pg_hba on a two-node cluster', { timeout: 600_000 }, () => {
  let base: string;
  let cluster: LocalCluster;

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-hba-', { nodes: 2, timing: TIMING }));
    await waitFor('healthy cluster', () => healthy(cluster), 120_000);
  });

  after(async () => {
    await stopCluster(cluster, base);
  });

  /** 'ok' or the server's error for a TCP login of mallory on `name`. */
  const login = (name: string): Promise<string> =>
    query({ ...cluster.connParams(name), user: 'mallory', password: 'pw' }, 'SELECT 1').then(() => 'ok', (e: unknown) => (e as Error).message);

  test('PATCH /config postgresql.pg_hba: every member rejects what it rejects, replicas still stream', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    await query(cluster.connParams(leader), "CREATE ROLE mallory LOGIN PASSWORD 'pw'");
    for (const n of cluster.nodes) await waitFor(`mallory can log in on ${n.name}`, async () => (await login(n.name)) === 'ok', 60_000);
    const res = await fetch(`http://127.0.0.1:${cluster.node(leader).apiPort}/config`, {
      method: 'PATCH',
      body: JSON.stringify({ postgresql: { pg_hba: ['host all mallory 127.0.0.1/32 reject', 'host all mallory ::1/128 reject'] } }),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 200, await res.text());
    for (const n of cluster.nodes) {
      await waitFor(`pg_hba rejects mallory on ${n.name}`, async () => /pg_hba\.conf rejects connection/.test(await login(n.name)), 60_000);
    }
    const replica = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    await waitFor(`${replica} streaming`, async () => (await streamingReplicas(cluster)).includes(replica), 60_000);
  });
});
