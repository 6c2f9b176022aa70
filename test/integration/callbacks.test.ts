// postgresql.callbacks and pre_promote on a real three-node cluster (PostgreSQL 15, etcd, `vigil
// agent` processes), with real scripts: an on_role_change/on_start script moves a "VIP" (a file
// naming the node that claimed it last) to the new primary on switchover and on a host crash
// failover; node2's pre_promote exits 1, so node2 never becomes primary, even when it is the
// switchover candidate and takes the leader lock.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { ctlDcs, healthy, onePrimary, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

const VIGIL = resolve(import.meta.dirname, '..', '..', 'bin', 'vigil');
const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const NO_PROMOTE = 'node2';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: 60_000, env: { ...process.env, LANG: 'C.UTF-8' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, stdout, stderr });
    });
  });
}

// vip.sh NAME DIR ACTION ROLE SCOPE: records every callback; any callback but on_stop with role
// primary claims the VIP (an atomic rename, as an address move would be one step).
const VIP_SCRIPT = `#!/bin/sh
name=$1 dir=$2 action=$3 role=$4 scope=$5
echo "$action $role $scope" >> "$dir/$name.events"
if [ "$action" != on_stop ] && [ "$role" = primary ]; then
  echo "$name" > "$dir/vip.$name" && mv "$dir/vip.$name" "$dir/vip"
fi
`;
// pre_promote.sh NAME DIR CODE: records the attempt, exits CODE.
const PRE_PROMOTE_SCRIPT = `#!/bin/sh
echo "$1" >> "$2/pre_promote.log"
exit "$3"
`;

describe('callbacks and pre_promote on a real cluster', { timeout: 300_000 }, () => {
  let base: string;
  let hooks: string;
  let cluster: LocalCluster;
  let dcs: Dcs;

  const read = (file: string): Promise<string> => readFile(join(hooks, file), 'utf8').catch(() => '');
  const vip = async (): Promise<string> => (await read('vip')).trim();
  const events = async (name: string): Promise<string[]> => (await read(`${name}.events`)).split('\n').filter((l) => l !== '');
  const historyNames = async (): Promise<unknown[]> => ((await dcs.readCluster()).history ?? []).map((h) => h[4]);

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'vigil-callbacks-'));
    cluster = new LocalCluster({ baseDir: base, nodes: 3, timing: TIMING });
    await cluster.prepare();
    hooks = join(base, 'hooks');
    await mkdir(hooks);
    // The agents run as root here, so the scripts run as the PostgreSQL OS user: it writes here.
    await chmod(hooks, 0o777);
    for (const [file, text] of [['vip.sh', VIP_SCRIPT], ['pre_promote.sh', PRE_PROMOTE_SCRIPT]]) {
      await writeFile(join(hooks, file as string), text as string);
      await chmod(join(hooks, file as string), 0o755);
    }
    for (const n of cluster.nodes) {
      const cb = JSON.stringify(`${join(hooks, 'vip.sh')} ${n.name} ${hooks}`);
      const lines = [
        `  callbacks: {on_start: ${cb}, on_stop: ${cb}, on_restart: ${cb}, on_reload: ${cb}, on_role_change: ${cb}}`,
        `  pre_promote: ${JSON.stringify(`${join(hooks, 'pre_promote.sh')} ${n.name} ${hooks} ${n.name === NO_PROMOTE ? 1 : 0}`)}`,
      ];
      const text = await readFile(n.configFile, 'utf8');
      await writeFile(n.configFile, text.replace('\npostgresql:\n', `\npostgresql:\n${lines.join('\n')}\n`));
    }
    // node0 bootstraps (a bootstrap runs no pre_promote); the others join it.
    cluster.startAgent('node0');
    await waitFor('node0 to bootstrap', () => onePrimary(cluster), 120_000);
    cluster.startAgent('node1');
    cluster.startAgent(NO_PROMOTE);
    dcs = ctlDcs(cluster);
  });

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  test('the bootstrapped primary claims the VIP with on_start primary; replicas report on_start replica', async () => {
    assert.equal(await waitFor('a healthy cluster', () => healthy(cluster), 120_000), 'node0');
    await waitFor('the VIP on node0', async () => (await vip()) === 'node0', 30_000);
    for (const n of ['node1', NO_PROMOTE]) {
      await waitFor(`on_start replica on ${n}`, async () => (await events(n)).includes('on_start replica demo'), 30_000);
    }
  });

  test('switchover: the VIP moves to the new primary (on_role_change primary after pre_promote); the old one reports on_role_change replica', async () => {
    const res = await run(VIGIL, ['switchover', '-c', cluster.node('node0').configFile, '--leader', 'node0', '--candidate', 'node1', '--force']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    await waitFor('node1 primary', async () => (await onePrimary(cluster)) === 'node1', 60_000);
    await waitFor('the VIP on node1', async () => (await vip()) === 'node1', 30_000);
    assert.ok((await events('node1')).includes('on_role_change primary demo'), (await events('node1')).join('\n'));
    assert.ok((await read('pre_promote.log')).split('\n').includes('node1'), 'pre_promote ran on node1 before it promoted');
    await waitFor('on_role_change replica on node0', async () => (await events('node0')).includes('on_role_change replica demo'), 60_000);
  });

  test('host crash of the primary: the VIP moves to the survivor that may promote, never to node2', async () => {
    await waitFor('a healthy cluster', () => healthy(cluster), 60_000);
    cluster.killAgent('node1', 'SIGKILL', { withPostgres: true });
    const fresh = await waitFor('a new primary', () => onePrimary(cluster, 'node1'), 90_000);
    assert.equal(fresh, 'node0');
    await waitFor('the VIP on node0', async () => (await vip()) === 'node0', 30_000);
    assert.ok(!(await historyNames()).includes(NO_PROMOTE), 'node2 never promoted');
    cluster.startAgent('node1');
    await waitFor('node1 streaming again', async () => (await streamingReplicas(cluster)).includes('node1'), 120_000);
  });

  test('a switchover to the member whose pre_promote exits 1: it runs the script, gives the lock up, and another member becomes primary with the VIP', async () => {
    await waitFor('a healthy cluster', () => healthy(cluster), 60_000);
    const before = (await read('pre_promote.log')).split('\n').filter((l) => l === NO_PROMOTE).length;
    // The switchover itself does not succeed: its answer is not what this test checks.
    await run(VIGIL, ['switchover', '-c', cluster.node('node0').configFile, '--leader', 'node0', '--candidate', NO_PROMOTE, '--force']);
    await waitFor('node2 to run pre_promote', async () => (await read('pre_promote.log')).split('\n').filter((l) => l === NO_PROMOTE).length > before, 60_000);
    const primary = await waitFor('a healthy cluster', () => healthy(cluster), 120_000);
    assert.notEqual(primary, NO_PROMOTE);
    await waitFor(`the VIP on ${primary}`, async () => (await vip()) === primary, 30_000);
    assert.ok(!(await historyNames()).includes(NO_PROMOTE), 'node2 never promoted');
    assert.ok(!(await events(NO_PROMOTE)).some((e) => e.includes(' primary ')), (await events(NO_PROMOTE)).join('\n'));
  });
});
