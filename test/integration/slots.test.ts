// Replication slots on a three-node Vigil cluster (real PostgreSQL 15, real etcd): member slots on
// every node, permanent physical and logical slots, ignore_slots, unknown slots dropped, /status
// slots and retain_slots; hot_standby_feedback forced on and the replicas' logical copies becoming
// ready (the catalog_xmin check); then a logical consumer (pg_recvlogical with test_decoding)
// across five failovers (the primary's host crashes), each once the replicas' copies are ready,
// counting the changes it saw twice and the ones it missed; last, a permanent slot that PostgreSQL
// invalidates (wal_status lost, past max_slot_wal_keep_size) is dropped and created again.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { LocalCluster } from '../../src/local/cluster.ts';
import { SUPERUSER } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { ctlDcs, healthy, startCluster, stopCluster } from '../support/cluster.ts';
import { PG_BIN_DIR } from '../support/pg.ts';
import { query, sleep, waitFor } from '../support/wait.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const SLOTS = { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' }, barman: { type: 'physical' } };

interface SlotRow extends Record<string, unknown> {
  slot_name: string;
  slot_type: string;
}

describe('replication slots', { timeout: 1_200_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let dcs: Dcs;

  const slotsOn = async (name: string): Promise<string[]> =>
    (await query<SlotRow>(cluster.connParams(name), 'SELECT slot_name, slot_type FROM pg_replication_slots WHERE NOT temporary ORDER BY 1')).map((r) => r.slot_name);

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-slots-', {
      nodes: 3,
      timing: TIMING,
      logLevel: 'debug',
      // wal_level is read from the dynamic configuration only, as in Patroni. hot_standby_feedback
      // is set off: Vigil must turn it on by itself for the logical slot copies.
      dcs: { slots: SLOTS, ignore_slots: [{ name: 'keepme' }], postgresql: { parameters: { wal_level: 'logical', hot_standby_feedback: 'off' } } },
    }));
    dcs = ctlDcs(cluster);
  });

  const logSize = (name: string): number => {
    try {
      return statSync(cluster.node(name).logFile).size;
    } catch {
      return 0;
    }
  };
  /** The agent of `name` logged that its copy of cdc is ready, after byte `from` of its log. */
  const copyReady = (name: string, from: number): boolean =>
    readFileSync(cluster.node(name).logFile).subarray(from).toString('utf8').includes('logical replication slot cdc is ready');

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  test('every node keeps the members\' and the permanent slots; unknown slots go, ignored ones stay', async () => {
    const primary = await waitFor('one primary and two streaming replicas', () => healthy(cluster), 180_000);
    const names = cluster.nodes.map((n) => n.name);
    for (const n of names) {
      const want = [...names.filter((x) => x !== n), 'barman', 'cdc'].sort();
      await waitFor(`slots ${want.join(',')} on ${n}`, async () => JSON.stringify(await slotsOn(n)) === JSON.stringify(want), 90_000, 500);
    }
    const view = await dcs.readCluster();
    assert.deepEqual([...(view.status?.retain_slots ?? [])].sort(), [...names].sort());
    assert.ok(view.status?.slots?.['cdc'] !== undefined, '/status publishes the logical slot position');
    assert.ok(view.status?.slots?.[primary] !== undefined, '/status maps the leader\'s own slot to its LSN');

    await query(cluster.connParams(primary), "SELECT pg_create_physical_replication_slot('stray', true)");
    await query(cluster.connParams(primary), "SELECT pg_create_physical_replication_slot('keepme', true)");
    await waitFor('stray slot dropped', async () => !(await slotsOn(primary)).includes('stray'), 60_000, 500);
    assert.ok((await slotsOn(primary)).includes('keepme'), 'ignore_slots keeps keepme');
  });

  test('replicas run with hot_standby_feedback on, and their copies of cdc become ready', async () => {
    const primary = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
    for (const n of cluster.nodes.filter((x) => x.name !== primary)) {
      await waitFor(`hot_standby_feedback on on ${n.name}`, async () => (await query<{ v: string }>(cluster.connParams(n.name), 'SELECT current_setting(\'hot_standby_feedback\') AS v'))[0]?.v === 'on', 60_000, 500);
      // The primary keeps the catalog rows the copy needs: the replica's physical slot there
      // carries a catalog_xmin (its feedback), which the agent compares with the copy's.
      await waitFor(`${n.name}'s copy of cdc is ready`, async () => copyReady(n.name, 0), 120_000, 500);
      const [phys] = await query<{ x: string | null }>(cluster.connParams(primary), 'SELECT catalog_xmin::text AS x FROM pg_replication_slots WHERE slot_name = $1', [n.name]);
      assert.ok(phys?.x !== null && phys?.x !== undefined, `${n.name}'s slot on the primary holds a catalog_xmin`);
    }
  });

  test('a logical consumer across five failovers: nothing missed', async () => {
    let primary = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
    await query(cluster.connParams(primary), 'CREATE TABLE IF NOT EXISTS cdc_t (id int PRIMARY KEY)');
    // Writer: one row per statement; the ids whose INSERT was acknowledged.
    let stop = false;
    let nextId = 1;
    const writer = (async () => {
      while (!stop) {
        const p = primary;
        try {
          await query(cluster.connParams(p), 'INSERT INTO cdc_t VALUES ($1)', [nextId]);
          nextId++;
        } catch {
          await sleep(200);
        }
        await sleep(20);
      }
    })();

    // Consumer: pg_recvlogical on the current primary, one output file per session.
    const outputs: string[] = [];
    let recv: ChildProcess | undefined;
    const startConsumer = (on: string) => {
      const n = cluster.node(on);
      const file = join(base, `recv-${outputs.length}.out`);
      outputs.push(file);
      recv = spawn(join(PG_BIN_DIR, 'pg_recvlogical'), ['-h', '127.0.0.1', '-p', String(n.pgPort), '-U', SUPERUSER.username, '-d', 'postgres', '--slot', 'cdc', '--start', '--no-loop', '-s', '1', '-F', '1', '-f', file], {
        env: { ...process.env, PGPASSWORD: SUPERUSER.password },
        stdio: 'ignore',
      });
    };
    const seenIds = (): number[] => {
      const ids: number[] = [];
      for (const f of outputs) {
        if (!existsSync(f)) continue;
        for (const m of readFileSync(f, 'utf8').matchAll(/^table public\.cdc_t: INSERT: id\[integer\]:(\d+)$/gm)) ids.push(Number(m[1]));
      }
      return ids;
    };
    startConsumer(primary);

    const replicasHaveCopies = async () => {
      for (const n of cluster.nodes.filter((x) => x.name !== primary)) if (!(await slotsOn(n.name).catch((): string[] => [])).includes('cdc')) return false;
      return true;
    };

    // The node that rejoined in the last round, and where its agent log started then (the other
    // replica's copy was found ready in the test before, or is the one it had as a replica).
    let rejoined: { name: string; from: number } | undefined;
    for (let round = 1; round <= 5; round++) {
      // Let changes flow and the replicas' copies exist (docs/slots.md: a copy not yet made is lost).
      await waitFor(`round ${round}: consumer sees new changes`, async () => seenIds().some((id) => id >= nextId - 5) && nextId > round * 50, 120_000, 250);
      await waitFor(`round ${round}: the replicas have their copy of cdc`, replicasHaveCopies, 120_000, 500);
      if (rejoined !== undefined) {
        const { name, from } = rejoined;
        await waitFor(`round ${round}: ${name}'s new copy of cdc is ready`, async () => copyReady(name, from), 120_000, 500);
      }
      const old = primary;
      cluster.killAgent(old, 'SIGKILL', { withPostgres: true });
      recv?.kill('SIGTERM');
      primary = await waitFor(`round ${round}: a new primary`, async () => (await cluster.primaries()).find((p) => p !== old), 120_000, 500);
      await waitFor(`round ${round}: cdc on the new primary`, async () => (await slotsOn(primary)).includes('cdc'), 60_000, 500);
      startConsumer(primary);
      rejoined = { name: old, from: logSize(old) };
      cluster.startAgent(old);
      await waitFor(`round ${round}: ${old} back as a streaming replica`, () => healthy(cluster), 180_000, 500);
    }
    // A last change, then stop.
    stop = true;
    await writer;
    const last = nextId;
    await query(cluster.connParams(primary), 'INSERT INTO cdc_t VALUES ($1)', [last]);
    await waitFor('consumer sees the last change', async () => seenIds().includes(last), 60_000, 250);
    recv?.kill('SIGTERM');

    const committed = (await query<{ id: number }>(cluster.connParams(primary), 'SELECT id FROM cdc_t ORDER BY id')).map((r) => r.id);
    const seen = seenIds();
    const counts = new Map<number, number>();
    for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
    const missed = committed.filter((id) => !counts.has(id));
    const twice = [...counts.values()].filter((c) => c > 1).length;
    const lost = [...counts.keys()].filter((id) => !committed.includes(id)).length;
    console.log(`# logical slot across 5 failovers: ${committed.length} committed changes, ${missed.length} missed, ${twice} seen more than once, ${lost} seen but lost with a crashed primary`);
    assert.deepEqual(missed, [], 'no committed change is missed by the consumer');
  });

  test('a permanent slot with wal_status lost is dropped and created again', async () => {
    const primary = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
    interface Row extends Record<string, unknown> {
      lsn: string | null;
      wal_status: string | null;
    }
    const barman = async () => (await query<Row>(cluster.connParams(primary), "SELECT restart_lsn::text AS lsn, wal_status FROM pg_replication_slots WHERE slot_name = 'barman'"))[0];
    const before = await barman();
    assert.ok(before?.lsn !== null && before?.lsn !== undefined, 'barman reserves WAL on the primary');
    // Nothing consumes barman: past 16 MB of WAL (and wal_keep_size 16 MB) a checkpoint invalidates it.
    const res = await fetch(`http://127.0.0.1:${cluster.node(primary).apiPort}/config`, {
      method: 'PATCH',
      body: JSON.stringify({ postgresql: { parameters: { max_slot_wal_keep_size: '16MB', wal_keep_size: '16MB' } } }),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 200, await res.text());
    await waitFor('max_slot_wal_keep_size applied on the primary', async () => (await query<{ v: string }>(cluster.connParams(primary), "SELECT current_setting('max_slot_wal_keep_size') AS v"))[0]?.v === '16MB', 60_000, 500);
    const from = logSize(primary);
    await query(cluster.connParams(primary), 'CREATE TABLE IF NOT EXISTS lost_t (id int)');
    for (let i = 0; i < 5; i++) {
      await query(cluster.connParams(primary), 'INSERT INTO lost_t VALUES ($1)', [i]);
      await query(cluster.connParams(primary), 'SELECT pg_switch_wal()');
    }
    await query(cluster.connParams(primary), 'CHECKPOINT');
    const log = () => readFileSync(cluster.node(primary).logFile).subarray(from).toString('utf8');
    await waitFor('the agent drops barman because its wal_status is lost', async () => log().includes('dropping replication slot barman (wal_status lost)'), 60_000, 500);
    const after = await waitFor('barman created again, reserving WAL', async () => {
      const r = await barman();
      return r?.lsn !== null && r?.lsn !== undefined && r.wal_status !== 'lost' ? r : undefined;
    }, 60_000, 500);
    const lsnNum = (l: string) => {
      const [hi = '0', lo = '0'] = l.split('/');
      return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
    };
    assert.ok(lsnNum(after.lsn as string) > lsnNum(before.lsn as string), `barman restarts later than before (${before.lsn} -> ${after.lsn})`);
  });
});
