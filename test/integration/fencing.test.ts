// Fencing on a real three-node cluster (PostgreSQL 15, etcd, `vigil agent` processes): kill -9 of
// the primary's AGENT only, PostgreSQL left running with a client writing to it. The agent's fencer
// (a detached process, src/fence/fencer.mjs) must kill that PostgreSQL at lastRefreshStart +
// fence timeout (ttl - safety_margin = 5 s here), i.e. before the leader key (a 10 s lease) can
// expire and another member can be promoted.
//
// Observed from this process, each event bracketed by two polls (never by a single timestamp):
// - the old postmaster: /proc/<pid> polled every 50 ms (alive -> dead);
// - the /leader key: read straight from etcd every 50 ms (old owner -> gone or another member);
// - the promotion: pg_is_in_recovery() on the other nodes (all true -> one false);
// - the writer: the time each INSERT's acknowledgement arrived, on a connection opened before
//   the kill.
// Asserted orderings (upper bound of the earlier event < lower bound of the later one):
//   postmaster dead < leader key lost, and last acknowledged insert < promotion.
// Then the old node's agent is restarted and must rejoin as a streaming replica.
// A second test freezes the primary's agent and kills etcd: the fencer must act alone, and the
// agent, resumed without a DCS, must bring PostgreSQL back read-only (never as a primary).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';

import { FAST_TIMING, type LocalCluster } from '../../src/local/cluster.ts';
import { agentLog, healthy, inRecovery, onePrimary, processRuns, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, sleep, waitFor } from '../support/wait.ts';

const LEADER_KEY = '/service/demo/leader';

/** The /leader key's value straight from etcd's v3 JSON gateway (null: no key). */
async function readLeader(endpoint: string): Promise<string | null> {
  const res = await fetch(`http://${endpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(LEADER_KEY).toString('base64') }),
    signal: AbortSignal.timeout(1000),
  });
  if (!res.ok) throw new Error(`etcd range: HTTP ${res.status}`);
  const body = (await res.json()) as { kvs?: Array<{ value?: string }> };
  const v = body.kvs?.[0]?.value;
  return v === undefined ? null : Buffer.from(v, 'base64').toString('utf8');
}

/** An interval [after, before] (ms, performance.now()) that an event happened in. */
interface Bracket {
  after: number | undefined;
  before: number | undefined;
}

describe('fencing: kill -9 of the primary agent with PostgreSQL left running', { timeout: 600_000 }, () => {
  let base: string;
  let cluster: LocalCluster;

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-it-fence-', { nodes: 3, timing: FAST_TIMING, logLevel: 'debug' }));
  });

  after(() => stopCluster(cluster, base));

  test('the old postmaster dies before the lock is lost; no acknowledged insert overlaps the promotion; the node rejoins', async () => {
    const old = await waitFor('one primary and two streaming replicas', () => healthy(cluster), 120_000);
    const others = cluster.nodes.map((n) => n.name).filter((n) => n !== old);
    await query(cluster.connParams(old), 'CREATE TABLE w (id int PRIMARY KEY)');
    assert.equal(await readLeader(cluster.etcdEndpoint), old);
    const pm = cluster.postmasterPid(old);
    assert.ok(pm !== undefined && processRuns(pm), 'the primary postmaster runs');
    const fencerPidFile = `${cluster.node(old).dataDir}.fencer.pid`;
    await waitFor('the fencer pid file', async () => existsSync(fencerPidFile), 30_000);
    const fencerPid = Number(readFileSync(fencerPidFile, 'utf8').trim());

    // The writer: one connection opened before the kill, one INSERT at a time until it fails.
    const acks: number[] = [];
    let writerError: string | undefined;
    const client = new pg.Client({ ...cluster.connParams(old), connectionTimeoutMillis: 3000, query_timeout: 30_000, application_name: 'vigil-test-writer' });
    client.on('error', () => undefined);
    await client.connect();
    let stopWriter = false;
    const writer = (async () => {
      try {
        for (let id = 1; !stopWriter; id++) {
          await client.query('INSERT INTO w (id) VALUES ($1)', [id]);
          acks.push(performance.now());
        }
      } catch (err) {
        writerError = err instanceof Error ? err.message : String(err);
      } finally {
        await client.end().catch(() => undefined);
      }
    })();
    await waitFor('the writer to get going', async () => acks.length >= 100, 30_000);

    // Watchers. Each keeps the last time the old state was seen (taken BEFORE the read) and the
    // first time the new state was seen (taken AFTER the read).
    const death: Bracket = { after: undefined, before: undefined };
    const lockLoss: Bracket = { after: undefined, before: undefined };
    const promotion: Bracket = { after: undefined, before: undefined };
    let newLeader: string | null | undefined;
    let newPrimary: string | undefined;
    let watching = true;
    const pmWatch = (async () => {
      while (watching && death.before === undefined) {
        const t = performance.now();
        if (processRuns(pm)) death.after = t;
        else death.before = performance.now();
        await sleep(50);
      }
    })();
    const lockWatch = (async () => {
      while (watching && lockLoss.before === undefined) {
        const t = performance.now();
        try {
          const v = await readLeader(cluster.etcdEndpoint);
          if (v === old) lockLoss.after = t;
          else {
            lockLoss.before = performance.now();
            newLeader = v;
          }
        } catch {
          // etcd busy: no information from this read
        }
        await sleep(50);
      }
    })();
    const promoWatch = (async () => {
      while (watching && promotion.before === undefined) {
        const t = performance.now();
        try {
          const rec = await Promise.all(others.map((n) => inRecovery(cluster, n)));
          if (rec.every((r) => r)) promotion.after = t;
          else {
            promotion.before = performance.now();
            newPrimary = others[rec.indexOf(false)];
          }
        } catch {
          // a node restarting: no information from this read
        }
        await sleep(100);
      }
    })();

    const killAt = performance.now();
    cluster.killAgent(old, 'SIGKILL'); // the agent only: PostgreSQL and the fencer keep running
    try {
      await waitFor('a new primary', async () => promotion.before !== undefined && lockLoss.before !== undefined && death.before !== undefined, 120_000, 100);
    } finally {
      watching = false;
      stopWriter = true;
      await Promise.all([pmWatch, lockWatch, promoWatch, writer]);
    }
    const rel = (t: number | undefined): string => (t === undefined ? '?' : `${Math.round(t - killAt)}`);
    const lastAck = acks.at(-1);
    console.log(
      `# fencing (ms after kill -9 of the agent, ttl ${FAST_TIMING.ttl} s): ` +
        `postmaster killed in [${rel(death.after)}, ${rel(death.before)}], ` +
        `leader key lost in [${rel(lockLoss.after)}, ${rel(lockLoss.before)}] (now ${JSON.stringify(newLeader)}), ` +
        `${newPrimary} promoted in [${rel(promotion.after)}, ${rel(promotion.before)}], ` +
        `last acknowledged insert at ${rel(lastAck)} (${acks.length} in all; writer ended with: ${writerError ?? 'no error'})`,
    );

    assert.ok(death.before !== undefined && lockLoss.after !== undefined && promotion.after !== undefined);
    assert.ok(death.before < lockLoss.after, `the old postmaster was still alive when the leader key was lost\n${agentLog(cluster, old)}`);
    assert.ok(writerError !== undefined, 'the writer lost its connection when PostgreSQL was killed');
    assert.ok(lastAck !== undefined && lastAck < promotion.after, 'every acknowledged insert on the old primary came before the promotion began');
    assert.ok(newPrimary !== undefined && others.includes(newPrimary));
    assert.notEqual(newLeader, old);
    assert.equal(processRuns(fencerPid), false, 'the fencer exited after fencing');

    const fresh = await waitFor('the new primary to answer /primary', () => onePrimary(cluster, old), 60_000);
    assert.equal(fresh, newPrimary);
    const have = new Set((await query<{ id: number }>(cluster.connParams(fresh), 'SELECT id FROM w')).map((r) => r.id));
    let missing = 0;
    for (let id = 1; id <= acks.length; id++) if (!have.has(id)) missing++;
    console.log(`# fencing: ${missing} of ${acks.length} acknowledged inserts missing on ${fresh} (asynchronous replication: allowed, only reported)`);
    await query(cluster.connParams(fresh), 'INSERT INTO w VALUES (-1)');

    // The old node's agent comes back: it must rejoin as a streaming replica (pg_rewind as needed).
    cluster.startAgent(old);
    await waitFor(`${old} streaming again`, async () => (await streamingReplicas(cluster)).includes(old), 180_000);
    await waitFor(`the new primary's row on ${old}`, async () => (await query(cluster.connParams(old), 'SELECT 1 FROM w WHERE id = -1')).length === 1, 30_000);
    assert.equal(await inRecovery(cluster, old), true);
    assert.equal((await cluster.api(old, '/patroni'))?.body?.['role'], 'replica');
    assert.deepEqual(await cluster.primaries(), [fresh]);
  });

  test('agent frozen and etcd gone: the fencer kills PostgreSQL; the resumed agent brings it back read-only; etcd back: one primary', async () => {
    const p = await waitFor('one primary and two streaming replicas', () => healthy(cluster), 180_000);
    await query(cluster.connParams(p), 'CREATE TABLE IF NOT EXISTS w (id int PRIMARY KEY)');
    const pm = cluster.postmasterPid(p);
    assert.ok(pm !== undefined && processRuns(pm));
    const etcd = cluster.etcd;
    assert.ok(etcd !== undefined);
    // Freeze the agent first so that it cannot demote cleanly when etcd goes: only the fencer acts.
    cluster.killAgent(p, 'SIGSTOP');
    try {
      etcd.kill('SIGKILL');
      await waitFor('the fencer to kill the frozen primary\'s postmaster', async () => !processRuns(pm), 30_000, 50);
    } finally {
      cluster.killAgent(p, 'SIGCONT');
    }
    // Without the DCS the agent starts it again, but only as a standby following nobody.
    try {
      await waitFor(`${p} read-only again`, async () => await inRecovery(cluster, p), 60_000);
    } catch (err) {
      // The agent's own account of why it did not start PostgreSQL is the useful part.
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- ${p}'s agent log ---\n${agentLog(cluster, p, 60)}`, { cause: err });
    }
    for (const n of cluster.nodes) assert.equal(await inRecovery(cluster, n.name), true, `${n.name} is read-only while etcd is down`);
    assert.deepEqual(await cluster.primaries(), []);
    assert.match(agentLog(cluster, p, 400), /starting postgres read-only, following nobody/);

    await etcd.restart();
    const fresh = await waitFor('one primary after etcd is back', () => onePrimary(cluster), 120_000);
    await query(cluster.connParams(fresh), 'INSERT INTO w VALUES (-2)');
    await waitFor('every node streaming again', async () => (await healthy(cluster)) === fresh, 180_000);
    for (const n of cluster.nodes) {
      await waitFor(`row -2 on ${n.name}`, async () => (await query(cluster.connParams(n.name), 'SELECT 1 FROM w WHERE id = -2')).length === 1, 30_000);
    }
  });
});
