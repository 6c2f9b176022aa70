// `vigil list` (and one runCommand verb) through every --dcs-url form against real servers: one
// etcd serving both the v3 and the v2 API (--enable-v2; the two keyspaces are separate, so each
// holds a different member for the same cluster) and a ZooKeeper 3.8. Cluster keys are written
// Patroni-shaped straight into the servers. Global options are given before the verb, as
// patronictl's scripts do. When patronictl (Patroni 3.0.2, with python3-etcd and python3-kazoo)
// is installed, it reads the same URLs and must see the same members (3.0.2 has no etcd3:// and
// ignores the path; those forms are checked on vigil only). kubernetes://, Vigil's own form, is
// checked against the fake API server of the Kubernetes backend's tests (test/support/k8s-fake.ts:
// no real one can run here).
// Run: node --import tsx --test --test-concurrency=1 test/cli/dcs-url.test.ts

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster.ts';
import { startZookeeper, type ZookeeperServer } from '../support/zookeeper.ts';
import { run, VIGIL, type RunResult } from '../support/cli.ts';
import { ZookeeperBackend } from '../../src/dcs/zookeeper.ts';
import { KubernetesDcs } from '../../src/dcs/kubernetes.ts';
import { clientOptions, seedPod, startFakeK8s, TOKEN } from '../support/k8s.ts';

const PATRONICTL = '/usr/bin/patronictl';
const HAS_PATRONICTL = existsSync(PATRONICTL) && existsSync('/usr/lib/python3/dist-packages/etcd') && existsSync('/usr/lib/python3/dist-packages/kazoo');

let etcd: EtcdCluster;
let zk: ZookeeperServer;
let dir: string;

const cmd = (bin: string, args: string[]): Promise<RunResult> => run(bin, args, { env: { LANG: 'C.UTF-8' }, timeoutMs: 60_000 });

/** The keys of a one-member cluster whose member (and leader) is `member`. */
function clusterKeys(member: string, port: number): Array<[string, string]> {
  const data = { conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 1000}/patroni`, state: 'running', role: 'primary', version: '3.0.2', timeline: 3 };
  return [
    ['initialize', '7277694203142172922'],
    ['config', JSON.stringify({ ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { parameters: { max_connections: 77 } } })],
    ['leader', member],
    [`members/${member}`, JSON.stringify(data)],
  ];
}

async function etcd3Put(prefix: string, keys: Array<[string, string]>): Promise<void> {
  for (const [k, v] of keys) {
    const res = await fetch(`http://${etcd.endpoints[0]}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from(prefix + k).toString('base64'), value: Buffer.from(v).toString('base64') }),
    });
    assert.equal(res.status, 200, await res.text());
  }
}

async function etcd2Put(prefix: string, keys: Array<[string, string]>): Promise<void> {
  for (const [k, v] of keys) {
    const res = await fetch(`http://${etcd.endpoints[0]}/v2/keys${prefix}${k}`, { method: 'PUT', body: new URLSearchParams({ value: v }) });
    assert.ok(res.status === 200 || res.status === 201, await res.text());
  }
}

async function zkPut(prefix: string, keys: Array<[string, string]>): Promise<void> {
  const zkc = new ZookeeperBackend({ hosts: [zk.endpoint], prefix, name: 'writer', ttl: 10, retryTimeout: 10 });
  try {
    for (const [k, v] of keys) {
      const op = { signal: undefined, deadline: Date.now() + 10_000, budgetMs: 10_000 };
      assert.ok(await zkc.create(k, v, undefined, op), `create ${prefix}${k}`);
    }
  } finally {
    await zkc.close(undefined);
  }
}

/** [Member, Role, TL] of each row of a `list -f json`. */
async function listed(bin: string, args: string[]): Promise<unknown[]> {
  const r = await cmd(bin, args);
  assert.equal(r.code, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as Array<Record<string, unknown>>).map((row) => [row['Member'], row['Role'], row['TL']]);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-dcs-url-'));
  [etcd, zk] = await Promise.all([startEtcdCluster({ enableV2: true }), startZookeeper()]);
  await etcd3Put('/service/demo/', clusterKeys('on-etcd3', 5432));
  await etcd3Put('/ns1/demo/', clusterKeys('on-etcd3-ns1', 5433));
  await etcd2Put('/service/demo/', clusterKeys('on-etcd2', 5434));
  await zkPut('/service/demo/', clusterKeys('on-zookeeper', 5435));
  await zkPut('/ns1/demo/', clusterKeys('on-zookeeper-ns1', 5436));
});

after(async () => {
  await Promise.all([etcd?.stop(), zk?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('vigil list through etcd3://, etcd:// (v2), a bare host:port and zookeeper://, options before the verb', async () => {
  const ep = etcd.endpoints[0]!;
  assert.deepEqual(await listed(VIGIL, ['--dcs-url', `etcd3://${ep}`, 'list', 'demo', '-f', 'json']), [['on-etcd3', 'Leader', 3]]);
  assert.deepEqual(await listed(VIGIL, ['-d', `etcd3://${ep}/ns1`, 'list', 'demo', '-f', 'json']), [['on-etcd3-ns1', 'Leader', 3]]);
  assert.deepEqual(await listed(VIGIL, ['--dcs', `etcd://${ep}`, 'list', 'demo', '-f', 'json']), [['on-etcd2', 'Leader', 3]]);
  // No scheme: etcd's v2 API, as patronictl reads it.
  assert.deepEqual(await listed(VIGIL, ['list', '-d', ep, 'demo', '-f', 'json']), [['on-etcd2', 'Leader', 3]]);
  assert.deepEqual(await listed(VIGIL, ['-k', `--dcs-url=zookeeper://${zk.endpoint}`, 'list', 'demo', '-f', 'json']), [['on-zookeeper', 'Leader', 3]]);
  assert.deepEqual(await listed(VIGIL, ['list', '-d', `zookeeper://${zk.endpoint}/ns1/`, '-f', 'json', 'demo']), [['on-zookeeper-ns1', 'Leader', 3]]);

  // -c FILE before the verb; the URL (before or after the verb) replaces the file's DCS section.
  const cfg = join(dir, 'ctl.yml');
  await writeFile(cfg, `scope: demo\nzookeeper:\n  hosts: ['${zk.endpoint}']\n`);
  assert.deepEqual(await listed(VIGIL, ['-c', cfg, 'list', '-f', 'json']), [['on-zookeeper', 'Leader', 3]]);
  assert.deepEqual(await listed(VIGIL, ['-c', cfg, '-d', `etcd3://${ep}`, 'list', '-f', 'json']), [['on-etcd3', 'Leader', 3]]);
  assert.deepEqual(await listed(VIGIL, ['-d', `etcd3://${ep}`, 'list', '-d', `etcd://${ep}`, '-c', cfg, '-f', 'json']), [['on-etcd2', 'Leader', 3]], 'after the verb wins');

  // A runCommand verb with the options before it.
  const show = await cmd(VIGIL, ['--dcs', `zookeeper://${zk.endpoint}`, 'show-config', 'demo']);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /max_connections: 77/);

  const bad = await cmd(VIGIL, ['-d', `zookeeper://${zk.endpoint}:2181`, 'list', 'demo']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^Error: Invalid --dcs-url .*IPv6 address must be written in brackets/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('patronictl 3.0.2 reads the same URLs and sees the same members', { skip: HAS_PATRONICTL ? false : 'patronictl with python3-etcd and python3-kazoo not installed' }, async () => {
  const ep = etcd.endpoints[0]!;
  for (const [url, member] of [[`etcd://${ep}`, 'on-etcd2'], [ep, 'on-etcd2'], [`zookeeper://${zk.endpoint}`, 'on-zookeeper']] as const) {
    const theirs = await listed(PATRONICTL, ['-d', url, 'list', 'demo', '-f', 'json']);
    assert.deepEqual(theirs, [[member, 'Leader', 3]], `patronictl -d ${url}`);
    assert.deepEqual(await listed(VIGIL, ['-d', url, 'list', 'demo', '-f', 'json']), theirs, `vigil -d ${url}`);
  }
});

test('kubernetes://API_HOST:PORT/K8S_NAMESPACE with the labels and credentials from the file', async () => {
  const k8s = await startFakeK8s();
  const member = new KubernetesDcs(clientOptions(k8s, 'prod', 'demo', 'k8s-node'));
  try {
    seedPod(k8s.fake, 'prod', 'k8s-node', { application: 'vigil', 'cluster-name': 'demo' });
    assert.equal(await member.acquireLeader(), true);
    await member.touchMember({ conn_url: 'postgres://10.0.0.1:5432/postgres', state: 'running', role: 'primary', timeline: 3 });
    const cfg = join(dir, 'k8s.yml');
    await writeFile(cfg, `scope: demo\nkubernetes:\n  labels: {application: vigil}\n  namespace: elsewhere\n  cacert: ${k8s.pki.ca}\n  token: ${TOKEN}\n`);
    const url = `kubernetes://127.0.0.1:${k8s.fake.port}/prod`;
    assert.deepEqual(await listed(VIGIL, ['-c', cfg, '-d', url, 'list', '-f', 'json']), [['k8s-node', 'Leader', 3]]);
    // Without the path, the file's Kubernetes namespace: nobody there.
    assert.deepEqual(await listed(VIGIL, ['-c', cfg, '-d', `kubernetes://127.0.0.1:${k8s.fake.port}`, 'list', '-f', 'json']), []);
    const noLabels = await cmd(VIGIL, ['-d', url, 'list', 'demo']);
    assert.equal(noLabels.code, 1);
    assert.match(noLabels.stderr, /^Error: --dcs-url kubernetes:.*kubernetes\.labels: is required/);
  } finally {
    await member.close({ keepLease: true });
    await k8s.stop();
  }
});
