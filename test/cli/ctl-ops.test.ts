// The control commands that drive HA operations (reload, restart, flush, pause/resume,
// switchover, failover, reinit) end to end: bin/vigil against a real three-node LocalCluster
// whose agents serve the unsafe REST endpoints.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/local/cluster.ts';
import { run, VIGIL, type RunResult } from '../support/cli.ts';
import { startCluster, stopCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

let cluster: LocalCluster;
let dir: string;
let cfg: string;

const vigil = (args: string[], input = ''): Promise<RunResult> => run(VIGIL, args, { input, timeoutMs: 120_000 });

interface Row {
  Member: string;
  Role: string;
  State?: string;
  'Scheduled restart'?: string;
}

async function rows(): Promise<Row[]> {
  const r = await vigil(['list', '-c', cfg, '-f', 'json']);
  return JSON.parse(r.stdout) as Row[];
}

/** The leader's name once the cluster has one leader and two streaming replicas. */
async function healthy(): Promise<string> {
  return waitFor('a leader and two streaming replicas', async () => {
    const rs = await rows();
    const leader = rs.find((r) => r.Role === 'Leader' && r.State === 'running');
    return leader !== undefined && rs.filter((r) => r.State === 'streaming').length === 2 ? leader.Member : undefined;
  }, 120_000);
}

const replicas = async (): Promise<string[]> => (await rows()).filter((r) => r.Role !== 'Leader').map((r) => r.Member).sort();

before(async () => {
  ({ base: dir, cluster } = await startCluster('vigil-ctl-ops-', { nodes: 3 }));
  cfg = cluster.nodes[0]!.configFile;
  await healthy();
});

after(() => stopCluster(cluster, dir));

test('reload: every member acknowledges', async () => {
  const r = await vigil(['reload', '-c', cfg, 'demo', '--force']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  for (const n of cluster.nodes) {
    assert.match(r.stdout, new RegExp(`^(Reload request received for member ${n.name} and will be processed within 2 seconds|No changes to apply on member ${n.name})$`, 'm'));
  }
});

test('restart: a replica now; a scheduled restart shows in list and is flushed', async () => {
  const [rep] = await replicas();
  const r = await vigil(['restart', '-c', cfg, 'demo', rep!, '--force']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`^Success: restart on member ${rep}$`, 'm'));
  await healthy();

  const at = new Date(Date.now() + 3600_000).toISOString();
  const s = await vigil(['restart', '-c', cfg, 'demo', rep!, '--scheduled', at, '--force']);
  assert.equal(s.code, 0, s.stderr + s.stdout);
  assert.match(s.stdout, new RegExp(`^Success: restart scheduled on member ${rep}$`, 'm'));
  await waitFor('the scheduled restart in list', async () => ((await rows()).find((x) => x.Member === rep)?.['Scheduled restart'] ? true : undefined), 30_000);
  const f = await vigil(['flush', '-c', cfg, 'demo', rep!, 'restart', '--force']);
  assert.equal(f.code, 0, f.stderr + f.stdout);
  assert.match(f.stdout, new RegExp(`^Success: flush scheduled restart for member ${rep}$`, 'm'));
});

test('pause and resume with --wait', async () => {
  const p = await vigil(['pause', '-c', cfg, '--wait']);
  assert.equal(p.code, 0, p.stderr + p.stdout);
  assert.match(p.stdout, /^'pause' request sent, waiting until it is recognized by all nodes\nSuccess: cluster management is paused\n$/);
  assert.match((await vigil(['list', '-c', cfg])).stdout, /Maintenance mode: on/);
  const twice = await vigil(['pause', '-c', cfg]);
  assert.equal(twice.code, 1);
  assert.equal(twice.stderr, 'Error: Cluster is already paused\n');
  const r = await vigil(['resume', '-c', cfg, '--wait']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Success: cluster management is resumed\n$/);
});

test('switchover: scheduled then flushed; immediate to a candidate', async () => {
  const leader = await healthy();
  const [cand] = await replicas();
  const at = new Date(Date.now() + 3600_000).toISOString();
  const s = await vigil(['switchover', '-c', cfg, '--candidate', cand!, '--scheduled', at, '--force']);
  assert.equal(s.code, 0, s.stderr + s.stdout);
  assert.match(s.stdout, /^Current cluster topology\n/);
  assert.match(s.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} Switchover scheduled$/m);
  assert.match((await vigil(['list', '-c', cfg])).stdout, /Switchover scheduled at: /);
  const f = await vigil(['flush', '-c', cfg, 'demo', 'switchover', '--force']);
  assert.equal(f.code, 0, f.stderr + f.stdout);
  assert.equal(f.stdout, 'Success: scheduled switchover deleted\n');

  const now = await vigil(['switchover', '-c', cfg, '--leader', leader, '--candidate', cand!, '--force']);
  assert.equal(now.code, 0, now.stderr + now.stdout);
  assert.match(now.stdout, new RegExp(`Successfully switched over to "${cand}"`));
  assert.equal(await healthy(), cand);
});

test('switchover: prompts answered on stdin; a wrong leader is refused', async () => {
  const leader = await healthy();
  const wrong = await vigil(['switchover', '-c', cfg, '--leader', 'nosuch', '--force']);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stderr, `Error: Member nosuch is not the leader of cluster demo\n`);
  const [cand] = await replicas();
  const no = await vigil(['switchover', '-c', cfg], `\n${cand}\nnow\nn\n`);
  assert.equal(no.code, 1);
  assert.match(no.stdout, new RegExp(`Primary \\[${leader}\\]: `));
  assert.match(no.stdout, new RegExp(`Are you sure you want to switchover cluster demo, demoting current leader ${leader}\\? \\[y/N\\]: `));
  assert.equal(no.stderr, 'Error: Aborting switchover\n');
  assert.equal(await healthy(), leader);
});

test('failover to a named candidate', async () => {
  await healthy();
  const [cand] = await replicas();
  const r = await vigil(['failover', '-c', cfg, '--candidate', cand!, '--force']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`Successfully failed over to "${cand}"`));
  assert.equal(await healthy(), cand);
});

test('reinit a replica and wait for it', async () => {
  await healthy();
  const [rep] = await replicas();
  const r = await vigil(['reinit', '-c', cfg, 'demo', rep!, '--force', '--wait']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`^Success: reinitialize for member ${rep}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^Reinitialize is completed on: ${rep}$`, 'm'));
  await healthy();
  const leader = (await rows()).find((x) => x.Role === 'Leader')!.Member;
  const refused = await vigil(['reinit', '-c', cfg, 'demo', leader, '--force']);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, 'Error: No replica among provided members\n');
});

test('failover falls back to the DCS when the leader API does not answer', async () => {
  const leader = await healthy();
  const [cand] = await replicas();
  cluster.killAgent(leader, 'SIGKILL');
  const r = await vigil(['failover', '-c', cfg, '--candidate', cand!, '--force']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} Could not failover using Patroni api, falling back to DCS$/m);
  const newLeader = await waitFor('a new leader', async () => {
    const l = (await rows()).find((x) => x.Role === 'Leader' && x.Member !== leader && x.State === 'running');
    return l?.Member;
  }, 120_000);
  assert.equal(newLeader, cand);
  cluster.startAgent(leader);
  await healthy();
});
