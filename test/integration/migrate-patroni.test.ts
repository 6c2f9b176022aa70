// The procedure of docs/migrate-from-patroni.md, end to end: a three-node Patroni 3.0.2 cluster
// (/usr/bin/patroni, etcd v3, PostgreSQL 15) is converted node by node to Vigil under a write load.
// Each replica in turn: stop Patroni (it stops its PostgreSQL), start Vigil on the same YAML file
// and data directory, wait until it streams again. Then a switchover from the Patroni leader to a
// Vigil node, and the last node is converted the same way.
// Asserted: every acknowledged INSERT is on the final primary, and the cluster ends healthy with
// all three nodes run by Vigil and the switchover's candidate leading. Printed, not asserted (a
// time measurement): the unavailability of each step, as the longest gap between two acknowledged
// writes.
// Skipped when Patroni 3.0.2 or PostgreSQL is not installed (bench/lib/patroni.ts).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { PatroniCluster, patroniUnavailableReason } from '../../bench/lib/patroni.ts';
import { requestSwitchover, waitHealthy } from '../../bench/lib/cluster-ops.ts';
import { LocalCluster, SUPERUSER, type Timing } from '../../src/local/cluster.ts';
import { ensureTable, FaultWriter, readIds, type Credentials, type Endpoint } from '../fault/lib/writer.ts';

const TIMING: Timing = { ttl: 20, loop_wait: 2, retry_timeout: 5 };
const HEALTHY_MS = 180_000;

/** A Patroni cluster whose nodes can be handed over to Vigil one at a time. */
class MigratingCluster extends PatroniCluster {
  readonly vigil = new Set<string>();
  override startAgent(name: string): void {
    if (this.vigil.has(name)) LocalCluster.prototype.startAgent.call(this, name);
    else super.startAgent(name);
  }
}

const skip = patroniUnavailableReason();
let base: string | undefined;
let cluster: MigratingCluster | undefined;

after(async () => {
  await cluster?.stop();
  if (base !== undefined && process.env['VIGIL_KEEP'] === undefined) await rm(base, { recursive: true, force: true });
});

const log = (msg: string): void => {
  process.stderr.write(`[migrate-patroni ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

/** Who leads according to the REST APIs (exactly one /primary), or undefined. */
async function leader(c: LocalCluster): Promise<string | undefined> {
  const p = await c.primaries();
  return p.length === 1 ? p[0] : undefined;
}

test('a Patroni 3.0.2 cluster converted node by node to Vigil under a write load loses no acknowledged write', { skip, timeout: 900_000 }, async () => {
  base = await mkdtemp(join(tmpdir(), 'vigil-migrate-'));
  cluster = new MigratingCluster({ baseDir: base, scope: 'migrate', nodes: 3, timing: TIMING });
  const c = cluster;
  await c.prepare(); // (PatroniCluster hands the configuration files to the postgres user)
  await c.startAll();
  const first = await waitHealthy(c, HEALTHY_MS);
  log(`Patroni cluster healthy, leader ${first}`);

  const endpoints: Endpoint[] = c.nodes.map((n) => ({ name: n.name, host: n.host, port: n.pgPort }));
  const cred: Credentials = { user: SUPERUSER.username, password: SUPERUSER.password, database: 'postgres' };
  await ensureTable(endpoints, cred);
  const writer = new FaultWriter('w', endpoints, cred, { firstId: 1, pauseMs: 10 });
  writer.start();

  /** Steps with their start/end on the writer's clock (performance.now()). */
  const steps: Array<{ what: string; from: number; to: number }> = [];
  const step = async (what: string, fn: () => Promise<void>): Promise<void> => {
    const from = performance.now();
    log(`${what}...`);
    await fn();
    steps.push({ what, from, to: performance.now() });
  };

  const toVigil = async (name: string): Promise<void> => {
    c.killAgent(name, 'SIGTERM');
    const code = await c.waitAgentExit(name, 60_000);
    assert.equal(code, 0, `Patroni on ${name} exited with ${code}`);
    // Patroni stopped its PostgreSQL on the way out (a clean shutdown removes postmaster.pid).
    assert.equal(c.postmasterPid(name), undefined, `${name}: PostgreSQL still runs after Patroni exited`);
    c.vigil.add(name);
    c.startAgent(name);
    await waitHealthy(c, HEALTHY_MS);
  };

  try {
    await step('let the writer run on the Patroni cluster', () => new Promise((r) => setTimeout(r, 3000)));
    const replicas = c.nodes.map((n) => n.name).filter((n) => n !== first);
    for (const r of replicas) await step(`replica ${r}: Patroni -> Vigil`, () => toVigil(r));

    const candidate = replicas[0]!;
    await step(`switchover ${first} (Patroni) -> ${candidate} (Vigil)`, async () => {
      const reply = await requestSwitchover(c, first, candidate);
      assert.equal(reply.status, 200, `switchover answered ${reply.status}: ${reply.text}`);
      await waitHealthy(c, HEALTHY_MS);
      assert.equal(await leader(c), candidate);
    });
    await step(`former leader ${first}: Patroni -> Vigil`, () => toVigil(first));
    await step('let the writer run on the Vigil cluster', () => new Promise((r) => setTimeout(r, 3000)));
  } finally {
    await writer.stop();
  }

  // Every node is now a Vigil agent, and the cluster is healthy under it.
  for (const n of c.nodes) {
    assert.ok(c.vigil.has(n.name));
    assert.ok(n.process?.spawnargs.includes('agent'), `${n.name} is not run by vigil: ${n.process?.spawnargs.join(' ')}`);
  }
  const final = await waitHealthy(c, HEALTHY_MS);
  assert.equal(final, c.nodes.map((n) => n.name).find((n) => n !== first));

  // No acknowledged write lost.
  const acked = writer.acks.filter((a) => a.syncCancelled !== true).map((a) => a.id);
  assert.ok(acked.length > 100, `only ${acked.length} writes were acknowledged`);
  const present = await readIds(endpoints.find((e) => e.name === final)!, cred);
  const lost = acked.filter((id) => !present.has(id));
  assert.deepEqual(lost, [], `acknowledged writes missing on the final primary ${final}`);

  // The unavailability, per step: the longest gap between two acknowledged writes that ends in it.
  const at = writer.acks.map((a) => a.at);
  const lines = steps.map((s) => {
    let gap = 0;
    for (let i = 1; i < at.length; i++) if (at[i]! > s.from && at[i]! <= s.to) gap = Math.max(gap, at[i]! - at[i - 1]!);
    const writes = at.filter((t) => t > s.from && t <= s.to).length;
    return `  ${s.what.padEnd(48)} ${((s.to - s.from) / 1000).toFixed(1).padStart(6)} s  ${String(writes).padStart(6)} writes  longest gap ${gap.toFixed(0).padStart(6)} ms`;
  });
  process.stdout.write(
    `\nmigration of a 3-node Patroni 3.0.2 cluster to Vigil (ttl ${TIMING.ttl}, loop_wait ${TIMING.loop_wait}, retry_timeout ${TIMING.retry_timeout}):\n${lines.join('\n')}\n` +
      `  acknowledged ${acked.length}, failed or uncertain ${writer.uncertain.length}, lost 0\n`,
  );
});
