// Issue 13, item 5, on a real two-node cluster (PostgreSQL 15, etcd, `vigil agent` processes) with
// loop_wait 30: the replica that starts streaming after the bootstrap is made synchronous by a loop
// the primary ran because its WAL sender appeared (the snapshot refresher's probe between loops),
// not by its next regular loop. Asserted from the primary's log, in order: the sender was noticed,
// then /sync named the replica. No timed assertion: the waits only bound how long the test may run.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { ctlDcs, onePrimary, startCluster, stopCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

let base = '';
let cluster: LocalCluster | undefined;
let dcs: Dcs | undefined;

before(async () => {
  ({ base, cluster } = await startCluster('vigil-it-syncfast-', { nodes: 2, timing: { ttl: 60, loop_wait: 30, retry_timeout: 10 }, logLevel: 'debug', dcs: { synchronous_mode: true } }));
  dcs = ctlDcs(cluster);
});

after(async () => {
  await dcs?.close();
  await stopCluster(cluster, base);
});

test('with loop_wait 30, a new standby enters /sync through the WAL-sender watch, not the next loop', { timeout: 600_000 }, async () => {
  const c = cluster as LocalCluster;
  const primary = await waitFor('one primary', () => onePrimary(c), 180_000);
  const replica = c.nodes.map((n) => n.name).find((n) => n !== primary) as string;
  await waitFor(`/sync to name ${replica}`, async () => {
    const s = (await (dcs as Dcs).readCluster()).sync;
    return s?.leader === primary && s.sync_standby === replica;
  }, 180_000);
  const log = readFileSync(c.node(primary).logFile, 'utf8');
  const noticed = log.indexOf('a new WAL sender streams');
  const synced = log.indexOf(`/sync standbys [${replica}]`);
  assert.ok(noticed >= 0, `the primary noticed the new WAL sender between loops:\n${log.slice(-4000)}`);
  assert.ok(synced > noticed, `and /sync named ${replica} after that:\n${log.slice(-4000)}`);
});
