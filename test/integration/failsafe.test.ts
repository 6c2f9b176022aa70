// Failsafe mode on a real three-node cluster (PostgreSQL 15, etcd, `vigil agent` processes),
// failsafe_mode: true in bootstrap.dcs.
//
// Asserted: the leader publishes /failsafe with every member's api_url; with etcd killed the
// primary stays a writable primary for longer than ttl (every other member confirms it through
// POST /failsafe), /patroni shows failsafe_mode_is_active, and no replica promotes; once one
// replica's agent (and so its REST API) is killed too, the primary can no longer be confirmed by
// everyone and demotes; etcd back: exactly one primary again and the cluster heals.
// (Without failsafe_mode the primary demotes as soon as etcd stops: test/integration/cluster.test.ts.)
//
// Fencing and failsafe share one clock: a failsafe confirmation only moves the fence deadline if it
// comes before it. While etcd refuses connections the agent's cluster read takes retry_timeout to
// fail, so the first confirmation comes up to loop_wait + retry_timeout + the POST round after the
// last refresh started. In failsafe mode the fence timeout leaves room for that (src/fence/
// deadline.ts; with FAST timing and the default safety_margin 5 it becomes ttl - 1 = 9 s): this
// file runs with the defaults, which is how this was found (the fencer used to fire first).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { FAST_TIMING, type LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { agentLog, ctlDcs, healthy, inRecovery, onePrimary, startCluster, stopCluster } from '../support/cluster.ts';
import { query, sleep, waitFor } from '../support/wait.ts';

describe('failsafe_mode: true', { timeout: 900_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let dcs: Dcs;
  let primary: string;
  /** Ids 1..lastId were committed on the primary (while etcd worked and in failsafe). */
  let lastId = 1;

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-it-failsafe-', { nodes: 3, timing: FAST_TIMING, logLevel: 'debug', dcs: { failsafe_mode: true } }));
    dcs = ctlDcs(cluster);
  });

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  test('the leader publishes /failsafe with every member and its api_url', async () => {
    primary = await waitFor('one primary and two streaming replicas', () => healthy(cluster), 120_000);
    const want = Object.fromEntries(cluster.nodes.map((n) => [n.name, `http://${n.host}:${n.apiPort}/patroni`]));
    const got = await waitFor('/failsafe to list all three members', async () => {
      const f = (await dcs.readCluster()).failsafe;
      return f !== undefined && Object.keys(f).length === 3 ? f : undefined;
    }, 60_000);
    assert.deepEqual(got, want);
    const view = await dcs.readCluster();
    for (const m of view.members) assert.equal(got[m.name], m.data.api_url, `${m.name}'s api_url`);
    await query(cluster.connParams(primary), 'CREATE TABLE t (id int PRIMARY KEY)');
    await query(cluster.connParams(primary), 'INSERT INTO t VALUES (1)');
    assert.equal((await cluster.api(primary, '/patroni'))?.body?.['failsafe_mode_is_active'], undefined, 'not active while etcd works');
  });

  test('etcd killed: the primary stays writable for longer than ttl, failsafe is active, no replica promotes', async () => {
    primary = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    // Every agent, the leader included, must have READ /failsafe back (GET /failsafe serves the
    // agent's last read): the leader only knows the topology it wrote once it has read it back.
    // (Reported: etcd lost within one loop_wait of the first /failsafe write makes the leader
    // demote with "no /failsafe topology was read from the DCS".)
    for (const n of cluster.nodes) {
      await waitFor(`${n.name} to have read /failsafe`, async () => Object.keys((await cluster.api(n.name, '/failsafe'))?.body ?? {}).length === 3, 30_000);
    }
    const etcd = cluster.etcd;
    assert.ok(etcd !== undefined);
    const pmPid = cluster.postmasterPid(primary);
    etcd.kill('SIGKILL');
    const killedAt = Date.now();
    const replicas = cluster.nodes.map((n) => n.name).filter((n) => n !== primary);

    // Sample for ttl + 3 loop_waits: the primary must never go read-only, never restart, and the
    // replicas must stay replicas.
    const ttlMs = FAST_TIMING.ttl * 1000;
    let samples = 0;
    let i = 2;
    while (Date.now() - killedAt < ttlMs + 3 * FAST_TIMING.loop_wait * 1000) {
      assert.equal(await inRecovery(cluster, primary), false, `${primary} went read-only ${Date.now() - killedAt} ms after etcd died\n${agentLog(cluster, primary)}`);
      assert.equal(cluster.postmasterPid(primary), pmPid, 'PostgreSQL was not restarted');
      for (const r of replicas) assert.equal(await inRecovery(cluster, r), true, `${r} promoted without the lock`);
      await query(cluster.connParams(primary), 'INSERT INTO t VALUES ($1)', [i++]);
      samples++;
      await sleep(500);
    }
    assert.ok(samples > 5);
    assert.equal((await cluster.api(primary, '/primary'))?.status, 200, `GET /primary after more than ttl without etcd\n${agentLog(cluster, primary)}`);
    assert.equal((await cluster.api(primary, '/patroni'))?.body?.['failsafe_mode_is_active'], true, '/patroni shows failsafe_mode_is_active');
    for (const r of replicas) assert.notEqual((await cluster.api(r, '/primary'))?.status, 200, `${r} answers /primary`);
    await query(cluster.connParams(primary), 'INSERT INTO t VALUES ($1)', [i]);
    lastId = i;
    console.log(`# failsafe: primary ${primary} stayed writable ${Date.now() - killedAt} ms without etcd (ttl ${ttlMs} ms), ${i - 1} writes`);
  });

  test('a replica agent dies while etcd is down: the primary can no longer be confirmed by all and demotes', async () => {
    const replicas = cluster.nodes.map((n) => n.name).filter((n) => n !== primary);
    const victim = replicas[0]!;
    const pmVictim = cluster.postmasterPid(victim);
    cluster.killAgent(victim, 'SIGKILL'); // its REST API goes with it; its PostgreSQL keeps running
    await cluster.waitAgentExit(victim, 10_000);
    assert.equal(await cluster.api(victim, '/patroni'), undefined, 'the REST API is down');
    const t0 = Date.now();
    await waitFor(`${primary} to demote`, async () => await inRecovery(cluster, primary), 60_000);
    console.log(`# failsafe: ${primary} read-only ${Date.now() - t0} ms after ${victim}'s agent was killed`);
    await waitFor('GET /primary 503 on the old primary', async () => (await cluster.api(primary, '/primary'))?.status === 503, 30_000);
    assert.deepEqual(await cluster.primaries(), [], 'no node answers /primary while etcd is down');
    await assert.rejects(query(cluster.connParams(primary), 'INSERT INTO t VALUES (-1)'), /read-only/);
    for (const r of replicas) if (r !== victim) assert.equal(await inRecovery(cluster, r), true, `${r} stays a replica`);
    assert.equal(cluster.postmasterPid(victim), pmVictim, "the victim's PostgreSQL was left alone");
  });

  test('etcd back: exactly one primary, every node streaming, no write lost', async () => {
    const etcd = cluster.etcd;
    assert.ok(etcd !== undefined);
    await etcd.restart();
    for (const n of cluster.nodes) cluster.startAgent(n.name); // no-op for the running agents
    const fresh = await waitFor('one primary after etcd is back', () => onePrimary(cluster), 120_000);
    await waitFor('cluster healthy again', () => healthy(cluster), 180_000);
    assert.deepEqual(await cluster.primaries(), [fresh], 'exactly one primary');
    // The old primary stopped cleanly (demotion), so its streaming replicas have every commit.
    const ids = new Set((await query<{ id: number }>(cluster.connParams(fresh), 'SELECT id FROM t')).map((r) => r.id));
    const missing = Array.from({ length: lastId }, (_, k) => k + 1).filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `rows committed during failsafe missing on ${fresh}`);
    await query(cluster.connParams(fresh), 'INSERT INTO t VALUES (1000000)');
    console.log(`# failsafe: ${fresh} is primary after etcd returned (was ${primary}); ${lastId} rows kept`);
    const f = await waitFor('/failsafe republished', async () => (await dcs.readCluster()).failsafe, 30_000);
    assert.equal(Object.keys(f).length, 3);
  });
});
