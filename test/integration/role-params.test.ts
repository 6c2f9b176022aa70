// parameters_<role> and pg_hba_<role> on a real two-node cluster: the dynamic configuration
// (bootstrap.dcs) gives the primary and the replicas different work_mem, the primary a
// postmaster-context max_files_per_process, and the replicas a pg_hba that rejects one user; the
// local section adds a replica parameter (merged key by key). After a switchover the values swap:
// checked with SHOW, pg_hba_file_rules, a login, and pending_restart on the new primary.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../../src/local/cluster.ts';
import { healthy, stopCluster } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const REJECT = ['host all mallory 127.0.0.1/32 reject', 'host all mallory ::1/128 reject'];

describe('role parameters and pg_hba on a two-node cluster', { timeout: 600_000 }, () => {
  let base: string;
  let cluster: LocalCluster;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'vigil-roles-'));
    cluster = new LocalCluster({
      baseDir: base,
      nodes: 2,
      timing: TIMING,
      dcs: {
        postgresql: {
          parameters_primary: { work_mem: '32MB', max_files_per_process: 900 },
          parameters_replica: { work_mem: '2MB' },
          pg_hba_replica: REJECT,
        },
      },
    });
    await cluster.prepare();
    // A local parameters_replica, merged with the dynamic one key by key.
    for (const n of cluster.nodes) {
      const text = await readFile(n.configFile, 'utf8');
      await writeFile(n.configFile, text.replace('\npostgresql:\n', "\npostgresql:\n  parameters_replica: {log_min_duration_statement: '7s'}\n"));
    }
    await cluster.startAll();
    await waitFor('healthy cluster', () => healthy(cluster), 120_000);
  });

  after(async () => {
    await stopCluster(cluster, base);
  });

  const show = async (name: string, guc: string): Promise<string> =>
    (await query<{ v: string }>(cluster.connParams(name), `SELECT current_setting('${guc}') AS v`))[0]!.v;
  /** 'ok' or the server's error for a TCP login of mallory on `name`. */
  const login = (name: string): Promise<string> =>
    query({ ...cluster.connParams(name), user: 'mallory', password: 'pw' }, 'SELECT 1').then(() => 'ok', (e: unknown) => (e as Error).message);
  const rejectsMallory = async (name: string): Promise<boolean> =>
    (await query<{ n: number }>(cluster.connParams(name), "SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE 'mallory' = ANY(user_name) AND auth_method = 'reject'"))[0]!.n === 2;
  const pendingRestart = async (name: string): Promise<boolean> => (await cluster.api(name, '/patroni'))?.body?.pending_restart === true;

  /** Waits until `primary` runs the primary's values and `replica` the replicas'. */
  async function expectRoles(primary: string, replica: string): Promise<void> {
    await waitFor(`${primary} runs parameters_primary`, async () => (await show(primary, 'work_mem')) === '32MB', 60_000);
    await waitFor(`${replica} runs parameters_replica`, async () => (await show(replica, 'work_mem')) === '2MB', 60_000);
    assert.equal(await show(replica, 'log_min_duration_statement'), '7s');
    assert.equal(await show(primary, 'log_min_duration_statement'), '-1');
    await waitFor(`${replica}'s pg_hba rejects mallory`, () => rejectsMallory(replica), 60_000);
    assert.equal(await rejectsMallory(primary), false);
    assert.match(await login(replica), /pg_hba\.conf rejects connection/);
    assert.equal(await login(primary), 'ok');
  }

  test('each role runs its own parameters and pg_hba; a switchover swaps them', async () => {
    const leader = (await waitFor('healthy cluster', () => healthy(cluster), 60_000))!;
    const other = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    await query(cluster.connParams(leader), "CREATE ROLE mallory LOGIN PASSWORD 'pw'");
    await expectRoles(leader, other);

    const res = await fetch(`http://127.0.0.1:${cluster.node(leader).apiPort}/switchover`, {
      method: 'POST',
      body: JSON.stringify({ leader, candidate: other }),
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(res.status, 200, await res.text());
    await waitFor(`${other} primary with ${leader} streaming`, async () => (await healthy(cluster)) === other, 120_000);
    await expectRoles(other, leader);
    // max_files_per_process (postmaster context) came with the promotion: a restart is pending on
    // the new primary only (the old one started as a replica with its own values).
    await waitFor(`pending_restart on ${other}`, () => pendingRestart(other), 60_000);
    assert.equal(await show(other, 'max_files_per_process'), '1000');
    assert.equal(await pendingRestart(leader), false);
    assert.equal(await show(leader, 'max_files_per_process'), '1000');
  });
});
