// `vigil demote-cluster` / `vigil promote-cluster` against a real etcd holding Patroni-shaped keys
// written by the test (no agents): what is written to /config, the refusals and their exit codes,
// the confirmation, a concurrent change of /config (compare-and-set), the wait for the leader's new
// role (the test plays the agent by rewriting the leader's member key), and how `vigil list` and
// `vigil topology` show a standby cluster, compared with patronictl 3.0.2 where it is installed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, type EtcdServer } from '../support/etcd.ts';
import { run, VIGIL, type RunResult } from '../support/cli.ts';
import { waitFor } from '../support/wait.ts';
import type { Io } from '../../src/cli/ctl/io.ts';
import { runDemoteCluster, runPromoteCluster, standbySectionProblems } from '../../src/cli/ctl/cluster-role.ts';

const PATRONICTL = '/usr/bin/patronictl';

let etcd: EtcdServer;
let dir: string;
let dcsUrl: string;

const vigil = (args: string[], input = ''): Promise<RunResult> => run(VIGIL, args, { input, timeoutMs: 60_000 });

async function put(key: string, value: string): Promise<void> {
  const res = await fetch(`http://${etcd.endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function get(key: string): Promise<string | undefined> {
  const res = await fetch(`http://${etcd.endpoint}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) });
  const body = (await res.json()) as { kvs?: Array<{ value: string }> };
  const v = body.kvs?.[0]?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

const configOf = async (scope: string): Promise<Record<string, unknown>> => JSON.parse((await get(`/service/${scope}/config`)) ?? 'null') as Record<string, unknown>;

const BASE_CONFIG = { ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { use_pg_rewind: true } };
const OPTIME = 0x40004e8;

function member(port: number, role: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 3000}/patroni`, state: 'running', role, version: '4.1.4', timeline: 3, xlog_location: OPTIME, ...extra };
}

/**
 * A fresh two-member cluster `scope`: n1 leads with `leaderRole`, n2 streams from it; /config is
 * BASE_CONFIG plus `extra`.
 */
async function fabricate(scope: string, leaderRole: string, extra: Record<string, unknown> = {}, leader = true): Promise<void> {
  const p = `/service/${scope}/`;
  await put(`${p}initialize`, '7277694203142172922');
  if (leader) await put(`${p}leader`, 'n1');
  await put(`${p}config`, JSON.stringify({ ...BASE_CONFIG, ...extra }));
  await put(`${p}status`, JSON.stringify({ optime: OPTIME }));
  await put(`${p}members/n1`, JSON.stringify(member(5432, leaderRole)));
  await put(`${p}members/n2`, JSON.stringify(member(5433, 'replica', { replication_state: 'streaming', receive_lsn: OPTIME, replay_lsn: OPTIME })));
}

/** Play the agent: the leader n1 publishes `role`. */
const publishRole = (scope: string, role: string): Promise<void> => put(`/service/${scope}/members/n1`, JSON.stringify(member(5432, role)));

/** An Io that records output; `answer` gives each line read (undefined: end of input). */
function memIo(answer: () => Promise<string | undefined> = () => Promise.resolve(undefined)): Io & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    interactive: false,
    out: (t: string) => void (io.stdout += t),
    err: (t: string) => void (io.stderr += t),
    readLine: answer,
    close: () => undefined,
  };
  return io;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-cluster-role-'));
  etcd = await startEtcd();
  dcsUrl = `etcd3://${etcd.endpoint}`;
});

after(async () => {
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('--help of both verbs; vigil --help lists them', async () => {
  const d = await vigil(['demote-cluster', '--help']);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^usage: vigil demote-cluster \[-c CONFIG\] \[-d DCS_URL\] \[--host HOST\] \[--port PORT\] \[--restore-command CMD\] \[--primary-slot-name NAME\] \[--timeout SEC\] \[--force\] \[CLUSTER\]\n/);
  for (const opt of ['--host HOST', '--port PORT', '--restore-command CMD', '--primary-slot-name NAME', '--timeout SEC', '--force', 'Exit status:', 'Global options']) assert.ok(d.stdout.includes(opt), opt);
  const p = await vigil(['promote-cluster', '-h']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^usage: vigil promote-cluster \[-c CONFIG\] \[-d DCS_URL\] \[--timeout SEC\] \[--force\] \[CLUSTER\]\n/);
  assert.ok(p.stdout.includes('Exit status:'));
  const all = await vigil(['--help']);
  assert.match(all.stdout, /^ {2}demote-cluster +make the cluster a standby cluster of another/m);
  assert.match(all.stdout, /^ {2}promote-cluster +make a standby cluster stand alone/m);
});

test('bad command lines: exit 2 (bad --port, --timeout, two clusters) or 1 (no WAL source); nothing written', async () => {
  await fabricate('bad', 'primary');
  const before = await get('/service/bad/config');
  for (const port of ['abc', '0', '70000', '54.3']) {
    const r = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'h', '--port', port, '--force', 'bad']);
    assert.equal(r.code, 2, `${port}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`Error: Invalid value for '--port': '${port}' is not a port number (1-65535)\n\nusage: vigil demote-cluster`), r.stderr);
  }
  for (const timeout of ['-1', 'soon']) {
    const t = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'h', `--timeout=${timeout}`, '--force', 'bad']);
    assert.equal(t.code, 2);
    assert.ok(t.stderr.startsWith(`Error: Invalid value for '--timeout': '${timeout}' is not a number of seconds (0 or more)\n`), t.stderr);
  }
  const two = await vigil(['promote-cluster', '-d', dcsUrl, '--force', 'bad', 'other']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /^Error: promote-cluster takes at most one CLUSTER, got 2\n/);
  const none = await vigil(['demote-cluster', '-d', dcsUrl, '--primary-slot-name', 's', '--force', 'bad']);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, 'Error: demote-cluster needs --host, --port or --restore-command: where the standby leader is to get its WAL from\n');
  assert.equal(none.stdout, '');
  assert.equal(await get('/service/bad/config'), before);
});

test('already in the required state: demote of a standby cluster, promote of a primary cluster', async () => {
  await fabricate('stb', 'standby_leader', { standby_cluster: { host: '10.0.0.9', port: 5432 } });
  const d = await vigil(['demote-cluster', '-d', dcsUrl, '--host', '10.0.0.8', '--force', 'stb']);
  assert.equal(d.code, 1);
  assert.equal(d.stderr, 'Error: Cluster is already in the required state: stb is a standby cluster (standby_cluster in /config)\n');
  assert.deepEqual((await configOf('stb'))['standby_cluster'], { host: '10.0.0.9', port: 5432 });

  // A section without host, port or restore_command does not make a standby cluster.
  await fabricate('prim', 'primary', { standby_cluster: { primary_slot_name: 'dr' } });
  const p = await vigil(['promote-cluster', '-d', dcsUrl, '--force', 'prim']);
  assert.equal(p.code, 1);
  assert.match(p.stderr, /^Error: Cluster is already in the required state: prim is not a standby cluster /);
  const missing = await vigil(['promote-cluster', '-d', dcsUrl, '--force', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'Error: The config key does not exist in the cluster nosuch\n');
});

test('the standby_cluster checks of the dynamic configuration apply to the section', () => {
  assert.deepEqual(standbySectionProblems({ ttl: 'x', standby_cluster: { host: 'h', port: 0 } }).filter((l) => !/not implemented/.test(l)), ['standby_cluster.port: expected a port 1-65535, got 0']);
  assert.deepEqual(standbySectionProblems({ standby_cluster: 'nonsense' }).filter((l) => !/not implemented/.test(l)), ['standby_cluster: expected a mapping, got "nonsense"']);
});

test('demote-cluster writes exactly the section of the options given, merged into a leftover one', async () => {
  await fabricate('alpha', 'primary');
  const r = await vigil(['demote-cluster', '-d', dcsUrl, '--host', '10.1.0.5', '--port', '5433', '--restore-command', 'pgbackrest --stanza=a archive-get %f "%p"', '--primary-slot-name', 'dr_site', '--timeout', '0', '--force', 'alpha']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Current cluster topology\n\+ Cluster: alpha /);
  assert.match(r.stdout, /standby_cluster \(host=10\.1\.0\.5 port=5433 restore_command=pgbackrest --stanza=a archive-get %f "%p" primary_slot_name=dr_site\) written to \/config; not waiting for the leader \(--timeout 0\)\n$/);
  assert.deepEqual(await configOf('alpha'), {
    ...BASE_CONFIG,
    standby_cluster: { host: '10.1.0.5', port: 5433, restore_command: 'pgbackrest --stanza=a archive-get %f "%p"', primary_slot_name: 'dr_site' },
  });

  // A section left without a WAL source keeps its other keys; only the given options are added.
  await fabricate('leftover', 'primary', { standby_cluster: { create_replica_methods: ['basebackup'], primary_slot_name: 'old' } });
  const l = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'a.example', '--timeout', '0', '--force', 'leftover']);
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual((await configOf('leftover'))['standby_cluster'], { create_replica_methods: ['basebackup'], primary_slot_name: 'old', host: 'a.example' });
});

test('demote-cluster asks; no, or no answer, writes nothing', async () => {
  await fabricate('ask', 'primary');
  const before = await get('/service/ask/config');
  const no = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'h', 'ask'], 'n\n');
  assert.equal(no.code, 1);
  assert.match(no.stdout, /Are you sure you want to demote cluster ask to a standby cluster \(host=h\)\? \[y\/N\]: \n$/);
  assert.equal(no.stderr, 'Error: Aborted cluster demotion\n');
  const eof = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'h', 'ask']);
  assert.equal(eof.code, 1);
  assert.match(eof.stderr, /^Error: Aborted: no answer to .* on stdin; pass --force/);
  assert.equal(await get('/service/ask/config'), before);
});

test('a concurrent change of /config between the read and the write aborts the demotion', async () => {
  await fabricate('cas', 'primary');
  const theirs = JSON.stringify({ ...BASE_CONFIG, loop_wait: 5 });
  // The answer to the confirmation comes only after someone else rewrote /config.
  const io = memIo(async () => {
    await put('/service/cas/config', theirs);
    return 'y';
  });
  const code = await runDemoteCluster(['-d', dcsUrl, '--host', 'h', 'cas'], io);
  assert.equal(code, 1, io.stderr);
  assert.equal(io.stderr, 'Error: /config of cluster cas changed while this command ran (a concurrent change): nothing was written; run the command again\n');
  assert.equal(await get('/service/cas/config'), theirs);
});

test('promote-cluster: a concurrent change of /config aborts it too', async () => {
  await fabricate('cas2', 'standby_leader', { standby_cluster: { host: 'h' } });
  const theirs = JSON.stringify({ ...BASE_CONFIG, standby_cluster: { host: 'other' } });
  const io = memIo(async () => {
    await put('/service/cas2/config', theirs);
    return 'yes';
  });
  assert.equal(await runPromoteCluster(['-d', dcsUrl, 'cas2'], io), 1);
  assert.match(io.stderr, /^Error: \/config of cluster cas2 changed while this command ran \(a concurrent change\)/);
  assert.equal(await get('/service/cas2/config'), theirs);
});

test('demote-cluster waits for the leader to run as standby leader; vigil list then shows Standby Leader', async () => {
  await fabricate('beta', 'primary');
  const io = memIo();
  const running = runDemoteCluster(['-d', dcsUrl, '--host', '10.1.0.5', '--force', '--timeout', '300', 'beta'], io);
  await waitFor('standby_cluster in /config', async () => ((await configOf('beta'))['standby_cluster'] !== undefined ? true : undefined));
  await publishRole('beta', 'standby_leader');
  assert.equal(await running, 0, io.stderr);
  assert.match(io.stdout, /written to \/config; waiting up to 300 s for the leader to run as standby leader\n/);
  assert.match(io.stdout, /Cluster beta successfully demoted: leader n1 runs as standby leader\n\+ Cluster: beta /);

  const list = await vigil(['list', '-d', dcsUrl, 'beta', '-f', 'tsv']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(list.stdout.trim().split('\n').slice(1).map((l) => l.split('\t').slice(1, 5)), [
    ['n1', '127.0.0.1:5432', 'Standby Leader', 'running'],
    ['n2', '127.0.0.1:5433', 'Replica', 'streaming'],
  ]);
});

test('the wait ends after --timeout with the change written and exit code 1', async () => {
  await fabricate('slow', 'primary');
  const r = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'h', '--timeout', '1', '--force', 'slow']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error: /config is changed, but the cluster did not reach role standby_leader within 1 s: leader n1 reports role primary, state running. The agents apply it on their next cycles; watch with vigil list slow\n');
  assert.deepEqual((await configOf('slow'))['standby_cluster'], { host: 'h' });
});

test('a DCS that goes away during the wait does not end it early; exit 1 naming the failed read', async () => {
  const own = await startEtcd();
  try {
    const p = '/service/gone/';
    const putOwn = async (key: string, value: unknown): Promise<void> => {
      const res = await fetch(`http://${own.endpoint}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(JSON.stringify(value)).toString('base64') }) });
      assert.equal(res.status, 200);
    };
    await putOwn(`${p}leader`, 'n1');
    await putOwn(`${p}config`, BASE_CONFIG);
    await putOwn(`${p}members/n1`, member(5432, 'primary'));
    const io = memIo();
    const running = runDemoteCluster(['-d', `etcd3://${own.endpoint}`, '--host', 'h', '--force', '--timeout', '2', 'gone'], io);
    await waitFor('the waiting line', async () => (io.stdout.includes('waiting up to 2 s') ? true : undefined));
    await own.stop();
    assert.equal(await running, 1);
    assert.match(io.stderr, /^Error: \/config is changed, but the cluster did not reach role standby_leader within 2 s: the last read of the DCS failed: /);
  } finally {
    await own.stop();
  }
});

test('without a leader the section is written and not waited for', async () => {
  await fabricate('down', 'replica', {}, false);
  const r = await vigil(['demote-cluster', '-d', dcsUrl, '--host', 'h', '--force', 'down']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /standby_cluster \(host=h\) written to \/config; cluster down has no leader: the member that takes the leader lock starts as standby leader\n$/);
});

test('promote-cluster removes the section, keeps the rest, and waits for a primary', async () => {
  await fabricate('gamma', 'standby_leader', { standby_cluster: { host: '10.1.0.5', port: 5433, create_replica_methods: ['basebackup'] }, maximum_lag_on_failover: 1 });
  const no = await vigil(['promote-cluster', '-d', dcsUrl, 'gamma'], 'n\n');
  assert.equal(no.code, 1);
  assert.match(no.stdout, /Are you sure you want to promote standby cluster gamma to a read-write primary cluster\? \[y\/N\]: \n$/);
  assert.equal(no.stderr, 'Error: Aborted cluster promotion\n');
  assert.ok((await configOf('gamma'))['standby_cluster'] !== undefined);

  const io = memIo();
  const running = runPromoteCluster(['-d', dcsUrl, '--force', '--timeout', '300', 'gamma'], io);
  await waitFor('standby_cluster gone from /config', async () => ((await configOf('gamma'))['standby_cluster'] === undefined ? true : undefined));
  await publishRole('gamma', 'primary');
  assert.equal(await running, 0, io.stderr);
  assert.match(io.stdout, /standby_cluster removed from \/config; waiting up to 300 s for the leader to run as primary\n/);
  assert.match(io.stdout, /Cluster gamma successfully promoted: leader n1 runs as primary\n/);
  assert.deepEqual(await configOf('gamma'), { ...BASE_CONFIG, maximum_lag_on_failover: 1 });
  const again = await vigil(['promote-cluster', '-d', dcsUrl, '--force', 'gamma']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^Error: Cluster is already in the required state/);
});

/** Cells of a prettytable by column title (first occurrence) for each data row. */
function parsePretty(out: string): Array<Record<string, string>> {
  const lines = out.split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string): string[] => l.slice(1, -1).split('|').map((c) => c.trim());
  const [head, ...rows] = lines;
  assert.ok(head !== undefined, `no table in:\n${out}`);
  const titles = cells(head);
  return rows.map((r) => Object.fromEntries(cells(r).map((c, i) => [titles[i]!, c]).reverse()));
}

test('a standby cluster in list and topology, compared with patronictl 3.0.2', { skip: !existsSync(PATRONICTL) && 'patronictl not installed' }, async () => {
  await fabricate('delta', 'standby_leader', { standby_cluster: { host: '10.1.0.5', port: 5433 } });
  const cfg = join(dir, 'delta.yml');
  await writeFile(cfg, `scope: delta\netcd3:\n  hosts: ${etcd.endpoint}\n`);
  for (const verb of ['list', 'topology']) {
    const theirs = await run(PATRONICTL, ['-c', cfg, verb], { timeoutMs: 60_000 });
    assert.equal(theirs.code, 0, theirs.stderr);
    const ours = await vigil([verb, '-c', cfg]);
    assert.equal(ours.code, 0, ours.stderr);
    // The title line names the cluster the same way; 3.0.2 leaves the system identifier out of it
    // (4.x prints it, as vigil does). Neither prints a line about the standby cluster below the table.
    const scope = (out: string): string | undefined => /^\+ Cluster: (\S+) /m.exec(out)?.[1];
    assert.equal(scope(ours.stdout), 'delta');
    assert.equal(scope(theirs.stdout), 'delta');
    assert.match(ours.stdout, /^\+ Cluster: delta \(7277694203142172922\) -/m);
    const below = (out: string): string[] => out.split('\n').filter((l) => l.startsWith(' '));
    assert.deepEqual(below(ours.stdout), below(theirs.stdout));
    const t = parsePretty(theirs.stdout);
    const o = parsePretty(ours.stdout);
    assert.deepEqual(o.map((r) => [r['Member'], r['Host'], r['Role'], r['TL']]), t.map((r) => [r['Member'], r['Host'], r['Role'], r['TL']]), `${verb}:\n${theirs.stdout}\n${ours.stdout}`);
    assert.equal(o[0]!['Role'], 'Standby Leader');
  }
});
