// `vigil list` end to end: Patroni-shaped keys written straight into a real etcd, bin/vigil run as a
// child process. When patronictl (Patroni 3.0.2) is installed, its table for the same keys is
// compared cell by cell with ours.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEtcd, type EtcdServer } from '../support/etcd.ts';
import { run, VIGIL, type RunResult } from '../support/cli.ts';
import { etcd3FromRaw } from '../../src/cli/args.ts';

const PATRONICTL = '/usr/bin/patronictl';

let etcd: EtcdServer;
let dir: string;

const runCmd = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> => run(cmd, args, { env, timeoutMs: 60_000 });

async function put(key: string, value: string): Promise<void> {
  const res = await fetch(`http://${etcd.endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }),
  });
  const body = await res.text();
  assert.equal(res.status, 200, `put ${key}: ${body}`);
}

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const OPTIME = 0x40004e8; // 0/40004E8
const MB = 1024 * 1024;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-list-'));
  etcd = await startEtcd();
  const p = '/service/batman/';
  await put(`${p}initialize`, '7277694203142172922');
  await put(`${p}leader`, 'postgresql0');
  await put(`${p}config`, JSON.stringify({ ttl: 30, loop_wait: 10, retry_timeout: 10, synchronous_mode: true }));
  await put(`${p}sync`, JSON.stringify({ leader: 'postgresql0', quorum: 0, sync_standby: 'postgresql1' }));
  await put(`${p}status`, JSON.stringify({ optime: OPTIME }));
  await put(`${p}history`, '[]');
  await put(
    `${p}members/postgresql0`,
    JSON.stringify({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'primary', version: '4.1.4', xlog_location: OPTIME, timeline: 5 }),
  );
  await put(
    `${p}members/postgresql1`,
    JSON.stringify({ conn_url: 'postgres://127.0.0.1:5433/postgres', api_url: 'http://127.0.0.1:8009/patroni', state: 'running', role: 'replica', version: '4.1.4', xlog_location: OPTIME, receive_lsn: OPTIME, replay_lsn: OPTIME, replication_state: 'streaming', timeline: 5 }),
  );
  // 3 MB behind on receive, 4 MB on replay; not streaming (state shown as is).
  await put(
    `${p}members/postgresql2`,
    JSON.stringify({ conn_url: 'postgres://127.0.0.1:5434/postgres', api_url: 'http://127.0.0.1:8010/patroni', state: 'running', role: 'replica', version: '4.1.4', xlog_location: OPTIME - 3 * MB, receive_lsn: OPTIME - 3 * MB, replay_lsn: OPTIME - 4 * MB, timeline: 5 }),
  );
  // A second cluster in another namespace with a non-5432-free host rule and maintenance mode.
  const q = '/other/robin/';
  await put(`${q}initialize`, '');
  await put(`${q}config`, JSON.stringify({ pause: true }));
  await put(`${q}members/a`, JSON.stringify({ conn_url: 'postgres://10.0.0.1:5432/postgres', state: 'stopped', role: 'uninitialized' }));
  await put(`${q}members/b`, JSON.stringify({ conn_url: 'postgres://10.0.0.2/postgres', state: 'creating replica', role: 'uninitialized' }));
  await put(`${q}members/c`, 'not json at all');
});

after(async () => {
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const BATMAN_TABLE = [
  '+ Cluster: batman (7277694203142172922) ------+-----------+----+-------------+-----+------------+-----+',
  '| Member      | Host           | Role         | State     | TL | Receive LSN | Lag | Replay LSN | Lag |',
  '+-------------+----------------+--------------+-----------+----+-------------+-----+------------+-----+',
  '| postgresql0 | 127.0.0.1:5432 | Leader       | running   |  5 |             |     |            |     |',
  '| postgresql1 | 127.0.0.1:5433 | Sync Standby | streaming |  5 |   0/40004E8 |   0 |  0/40004E8 |   0 |',
  '| postgresql2 | 127.0.0.1:5434 | Replica      | running   |  5 |   0/3D004E8 |   3 |  0/3C004E8 |   4 |',
  '+-------------+----------------+--------------+-----------+----+-------------+-----+------------+-----+',
  '',
].join('\n');

test('vigil list -c prints the cluster table read from etcd', async () => {
  const cfg = await writeConfig('batman.yml', `scope: batman\netcd3:\n  hosts: ${etcd.endpoint}\n`);
  const r = await runCmd(VIGIL, ['list', '-c', cfg]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, BATMAN_TABLE);
});

test('PATRONICTL_CONFIG_FILE, -f json, -f tsv', async () => {
  const cfg = await writeConfig('batman2.yml', `scope: batman\netcd3:\n  hosts:\n  - ${etcd.endpoint}\n`);
  const r = await runCmd(VIGIL, ['list', '-f', 'json'], { PATRONICTL_CONFIG_FILE: cfg });
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(rows, [
    { Cluster: 'batman', Member: 'postgresql0', Host: '127.0.0.1:5432', Role: 'Leader', State: 'running', TL: 5 },
    { Cluster: 'batman', Member: 'postgresql1', Host: '127.0.0.1:5433', Role: 'Sync Standby', State: 'streaming', TL: 5, 'Receive LSN': '0/40004E8', 'Receive Lag': 0, 'Replay LSN': '0/40004E8', 'Replay Lag': 0 },
    { Cluster: 'batman', Member: 'postgresql2', Host: '127.0.0.1:5434', Role: 'Replica', State: 'running', TL: 5, 'Receive LSN': '0/3D004E8', 'Receive Lag': 3, 'Replay LSN': '0/3C004E8', 'Replay Lag': 4 },
  ]);
  const tsv = await runCmd(VIGIL, ['list', '--format', 'tsv', '-c', cfg]);
  assert.equal(tsv.code, 0, tsv.stderr);
  assert.equal(tsv.stdout.split('\n')[3], 'batman\tpostgresql2\t127.0.0.1:5434\tReplica\trunning\t5\t0/3D004E8\t3\t0/3C004E8\t4');
});

test('--dcs-url with a namespace, several clusters, -t, odd member values', async () => {
  const r = await runCmd(VIGIL, ['list', '-t', '--dcs-url', `etcd3://${etcd.endpoint}/other`, 'robin', 'nosuch']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  assert.equal(
    lines.slice(1).join('\n'),
    [
      '+ Cluster: robin (initializing) -----------------+----+-------------+-----+------------+-----+',
      '| Member | Host     | Role    | State            | TL | Receive LSN | Lag | Replay LSN | Lag |',
      '+--------+----------+---------+------------------+----+-------------+-----+------------+-----+',
      '| a      | 10.0.0.1 | Replica | stopped          |    |     unknown |     |    unknown |     |',
      '| b      | 10.0.0.2 | Replica | creating replica |    |     unknown |     |    unknown |     |',
      '| c      |          | Replica |                  |    |     unknown |     |    unknown |     |',
      '+--------+----------+---------+------------------+----+-------------+-----+------------+-----+',
      ' Maintenance mode: on',
      '+ Cluster: nosuch (uninitialized) --+-------------+-----+------------+-----+',
      '| Member | Host | Role | State | TL | Receive LSN | Lag | Replay LSN | Lag |',
      '+--------+------+------+-------+----+-------------+-----+------------+-----+',
      '+--------+------+------+-------+----+-------------+-----+------------+-----+',
      '',
    ].join('\n'),
  );
});

test('quorum mode: members in /sync print as Quorum Standby (patronictl 4.x wording), others Replica', async () => {
  // patronictl 3.0.2 predates quorum mode, so this one is checked against the expected wording only.
  const p = '/q/gotham/';
  await put(`${p}initialize`, '7277694203142172999');
  await put(`${p}leader`, 'n1');
  await put(`${p}config`, JSON.stringify({ ttl: 30, synchronous_mode: 'quorum', synchronous_node_count: 2 }));
  await put(`${p}sync`, JSON.stringify({ leader: 'n1', quorum: 1, sync_standby: 'n2,N3' }));
  await put(`${p}status`, JSON.stringify({ optime: OPTIME }));
  const m = (port: number, role: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 3000}/patroni`, state: 'running', role, timeline: 2, ...extra });
  const streaming = { replication_state: 'streaming', receive_lsn: OPTIME, replay_lsn: OPTIME, xlog_location: OPTIME };
  await put(`${p}members/n1`, m(5432, 'primary', { xlog_location: OPTIME }));
  await put(`${p}members/n2`, m(5433, 'replica', streaming));
  await put(`${p}members/n3`, m(5434, 'replica', streaming));
  await put(`${p}members/n4`, m(5435, 'replica', streaming));
  const r = await runCmd(VIGIL, ['list', '--dcs-url', `etcd3://${etcd.endpoint}/q`, 'gotham', '-f', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(rows.map((row) => [row['Member'], row['Role'], row['State']]), [
    ['n1', 'Leader', 'running'],
    ['n2', 'Quorum Standby', 'streaming'],
    ['n3', 'Quorum Standby', 'streaming'],
    ['n4', 'Replica', 'streaming'],
  ]);
  const pretty = await runCmd(VIGIL, ['list', '--dcs-url', `etcd3://${etcd.endpoint}/q`, 'gotham']);
  assert.equal(pretty.code, 0, pretty.stderr);
  assert.match(pretty.stdout, /\| n2 +\| 127\.0\.0\.1:5433 \| Quorum Standby \| streaming \|/);
  // The same keys with synchronous_mode on: Sync Standby.
  await put(`${p}config`, JSON.stringify({ ttl: 30, synchronous_mode: true }));
  const on = await runCmd(VIGIL, ['list', '--dcs-url', `etcd3://${etcd.endpoint}/q`, 'gotham', '-f', 'tsv']);
  assert.equal(on.code, 0, on.stderr);
  assert.deepEqual(on.stdout.trim().split('\n').slice(1).map((l) => l.split('\t')[3]), ['Leader', 'Sync Standby', 'Sync Standby', 'Replica']);
});

test('a configuration that fails daemon validation still lists (PATRONI_SCOPE applies)', async () => {
  const cfg = await writeConfig('odd.yml', `scope: wrong\nrestapi: 12\npostgresql: nonsense\netcd3:\n  host: ${etcd.endpoint}\n`);
  const r = await runCmd(VIGIL, ['list', '-c', cfg, '-f', 'tsv'], { PATRONI_SCOPE: 'batman' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').length, 5);
  assert.match(r.stdout, /^batman\tpostgresql0\t/m);
});

test('errors: missing file, unreachable etcd, usage', async () => {
  const missing = await runCmd(VIGIL, ['list', '-c', join(dir, 'nope.yml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error: .*nope\.yml/);
  assert.equal(missing.stdout, '');

  const port = await freePort();
  const cfg = await writeConfig('dead.yml', `scope: batman\netcd3:\n  hosts: 127.0.0.1:${port}\n`);
  const dead = await runCmd(VIGIL, ['list', '-c', cfg]);
  assert.equal(dead.code, 1);
  assert.match(dead.stderr, /^Error: /);
  assert.ok(dead.stderr.includes(`127.0.0.1:${port}`), dead.stderr);
  assert.equal(dead.stdout, '');

  const bad = await runCmd(VIGIL, ['list', '-f', 'xml', '--dcs-url', etcd.endpoint, 'batman']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^Error: .*xml/);
  const unknown = await runCmd(VIGIL, ['list', '--bogus']);
  assert.equal(unknown.code, 2);
  const noScope = await runCmd(VIGIL, ['list', '--dcs-url', etcd.endpoint]);
  assert.equal(noScope.code, 2);
  assert.match(noScope.stderr, /^Error: /);
});

/** Cells of a prettytable by column title (first occurrence) for each data row. */
function parsePretty(out: string): Array<Record<string, string>> {
  const lines = out.split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string): string[] => l.slice(1, -1).split('|').map((c) => c.trim());
  const [head, ...rows] = lines;
  assert.ok(head !== undefined, `no table in:\n${out}`);
  const titles = cells(head);
  return rows.map((r) => {
    const o: Record<string, string> = {};
    cells(r).forEach((c, i) => {
      const t = titles[i]!;
      if (!(t in o)) o[t] = c;
    });
    return o;
  });
}

test('member rows agree with patronictl 3.0.2 on the same keys', { skip: !existsSync(PATRONICTL) && 'patronictl not installed' }, async () => {
  const configs = [
    await writeConfig('ctl.yml', `scope: batman\netcd3:\n  hosts: ${etcd.endpoint}\n`),
    await writeConfig('ctl-robin.yml', `scope: robin\nnamespace: /other/\netcd3:\n  hosts: ${etcd.endpoint}\n`),
  ];
  for (const cfg of configs) {
    const theirs = await runCmd(PATRONICTL, ['-c', cfg, 'list']);
    assert.equal(theirs.code, 0, theirs.stderr);
    const ours = await runCmd(VIGIL, ['list', '-c', cfg]);
    assert.equal(ours.code, 0, ours.stderr);
    const t = parsePretty(theirs.stdout);
    const o = parsePretty(ours.stdout);
    assert.ok(t.length >= 3, theirs.stdout);
    assert.deepEqual(o.map((r) => r['Member']), t.map((r) => r['Member']));
    for (let i = 0; i < t.length; i++) {
      const a = t[i]!;
      const b = o[i]!;
      for (const col of ['Member', 'Host', 'Role', 'TL']) assert.equal(b[col], a[col], `${a['Member']} ${col}`);
      // 3.0.2 shows the member state; 4.1 (and vigil) show replication_state for replicas that report one.
      if (a['Member'] !== 'postgresql1') assert.equal(b['State'], a['State'], `${a['Member']} State`);
      // 3.0.2 has one "Lag in MB" column from xlog_location = max(receive, replay): our receive Lag
      // here. 3.0.2 prints `unknown` where 4.x leaves the lag blank (and puts `unknown` in the LSN).
      const theirLag = a['Lag in MB'] === 'unknown' ? '' : a['Lag in MB'];
      assert.equal(b['Lag'], theirLag, `${a['Member']} Lag`);
    }
    // json: the same cells
    const tj = JSON.parse((await runCmd(PATRONICTL, ['-c', cfg, 'list', '-f', 'json'])).stdout) as Array<Record<string, unknown>>;
    const oj = JSON.parse((await runCmd(VIGIL, ['list', '-c', cfg, '-f', 'json'])).stdout) as Array<Record<string, unknown>>;
    const pick = (rows: Array<Record<string, unknown>>): unknown[] => rows.map((r) => [r['Cluster'], r['Member'], r['Host'], r['Role'], r['TL']]);
    assert.deepEqual(pick(oj), pick(tj));
    assert.deepEqual(oj.map((r) => r['Receive Lag']), tj.map((r) => (r['Lag in MB'] === 'unknown' ? undefined : r['Lag in MB'])));
  }
});

test('the lenient etcd3 section reader', () => {
  assert.deepEqual(etcd3FromRaw({ hosts: 'a:1, b', protocol: 'https' }, {}), { hosts: ['a:1', 'b:2379'], protocol: 'https' });
  assert.deepEqual(etcd3FromRaw({ url: 'https://c:3' }, {}), { hosts: ['c:3'], protocol: 'https' });
  assert.deepEqual(etcd3FromRaw({ host: 'd:4', username: 'u', password: 'p' }, { PATRONI_ETCD3_HOSTS: 'e:5,f:6' }), {
    hosts: ['e:5', 'f:6', 'd:4'],
    protocol: 'http',
    username: 'u',
    password: 'p',
  });
  assert.equal(etcd3FromRaw(undefined, {}), undefined);
  assert.equal(etcd3FromRaw({ hosts: [] }, {}), undefined);
  // TLS files travel with the target (file first, PATRONI_ETCD3_* over it)
  assert.deepEqual(etcd3FromRaw({ host: 'g:7', protocol: 'https', cacert: '/ca.pem', cert: '/c.pem', key: '/k.pem' }, { PATRONI_ETCD3_KEY_PASSWORD: 'pw', PATRONI_ETCD3_CACERT: '/env-ca.pem' }), {
    hosts: ['g:7'],
    protocol: 'https',
    tls: { cacert: '/env-ca.pem', cert: '/c.pem', key: '/k.pem', keyPassword: 'pw' },
  });
});
