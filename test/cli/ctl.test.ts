// The control commands that need no new HA behaviour, against a real three-node LocalCluster:
// show-config, edit-config, history, dsn, query, version, topology, remove, and error cases.
// Commands run as child processes of bin/vigil, reading node0's configuration file.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SUPERUSER, type LocalCluster } from '../../src/local/cluster.ts';
import { run, ROOT, VIGIL, type RunResult } from '../support/cli.ts';
import { freePort } from '../support/etcd.ts';
import { startCluster, stopCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

let cluster: LocalCluster;
let dir: string;
let cfg: string;

/** Commands here run with EDITOR=/bin/false (edit-config must never open an editor) and a 60 s limit. */
const ctlRun = (cmd: string, args: string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
  run(cmd, args, { input, env: { EDITOR: '/bin/false', ...env }, timeoutMs: 60_000 });

const vigil = (args: string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<RunResult> => ctlRun(VIGIL, args, input, env);

/** `vigil version` goes straight to the module: main.ts answers `version` itself. */
const vigilVersion = (args: string[]): Promise<RunResult> =>
  ctlRun(process.execPath, [
    '--import',
    TSX,
    '--input-type=module',
    '-e',
    `const m = await import(${JSON.stringify(join(ROOT, 'src/cli/ctl/info.ts'))}); process.exitCode = await m.runVersion(process.argv.slice(1));`,
    '--',
    ...args,
  ]);

async function etcdPut(key: string, value: string): Promise<void> {
  const res = await fetch(`http://${cluster.etcdEndpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }),
  });
  assert.equal(res.status, 200);
}

async function etcdCount(prefix: string): Promise<number> {
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  const res = await fetch(`http://${cluster.etcdEndpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(prefix).toString('base64'), range_end: end.toString('base64'), count_only: true }),
  });
  const body = (await res.json()) as { count?: string };
  return Number(body.count ?? 0);
}

let leader: string;

before(async () => {
  ({ base: dir, cluster } = await startCluster('vigil-ctl-', { nodes: 3 }));
  cfg = cluster.nodes[0]!.configFile;
  leader = await waitFor('a primary', async () => (await cluster.primaries())[0], 120_000);
  await waitFor('two streaming replicas', async () => {
    const r = await vigil(['list', '-c', cfg, '-f', 'json']);
    const rows = JSON.parse(r.stdout) as Array<{ State?: string }>;
    return rows.filter((x) => x.State === 'streaming').length === 2 ? true : undefined;
  }, 120_000);
});

after(() => stopCluster(cluster, dir));

test('show-config prints /config as YAML', async () => {
  const r = await vigil(['show-config', '-c', cfg]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^loop_wait: 2$/m);
  assert.match(r.stdout, /^postgresql:\n {2}use_pg_rewind: true\n {2}use_slots: true$/m);
});

test('edit-config --set/--pg --force changes /config with a diff; same values: Not changed', async () => {
  const r = await vigil(['edit-config', '-c', cfg, '-s', 'maximum_lag_on_failover=2097152', '-p', 'work_mem=8MB', '-p', 'auto_explain.log_min_duration=-1', '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^--- \n\+\+\+ \n@@ /);
  assert.match(r.stdout, /^-maximum_lag_on_failover: 1048576$/m);
  assert.match(r.stdout, /^\+maximum_lag_on_failover: 2097152$/m);
  assert.match(r.stdout, /^\+ {4}work_mem: 8MB$/m);
  assert.match(r.stdout, /Configuration changed\n$/);
  const show = await vigil(['show-config', '-c', cfg]);
  assert.match(show.stdout, /^maximum_lag_on_failover: 2097152$/m);
  assert.match(show.stdout, /^ {4}auto_explain.log_min_duration: -1$/m);

  const again = await vigil(['edit-config', '-c', cfg, '-s', 'maximum_lag_on_failover=2097152', '--force']);
  assert.equal(again.code, 0);
  assert.equal(again.stdout, 'Not changed\n');

  // Delete with null; answer the confirmation on stdin.
  const no = await vigil(['edit-config', '-c', cfg, '-p', 'work_mem=null'], 'n\n');
  assert.equal(no.code, 0, no.stderr);
  assert.match(no.stdout, /^- {4}work_mem: 8MB$/m);
  assert.match(no.stdout, /Apply these changes\? \[y\/N\]: /);
  assert.doesNotMatch(no.stdout, /Configuration changed/);
  const yes = await vigil(['edit-config', '-c', cfg, '-p', 'work_mem=null', '-p', 'auto_explain.log_min_duration=null'], 'y\n');
  assert.equal(yes.code, 0, yes.stderr);
  assert.match(yes.stdout, /Configuration changed\n$/);
  assert.doesNotMatch((await vigil(['show-config', '-c', cfg])).stdout, /work_mem|auto_explain/);

  // Nothing on stdin and no --force: abort, naming --force.
  const eof = await vigil(['edit-config', '-c', cfg, '-s', 'maximum_lag_on_failover=1048576']);
  assert.equal(eof.code, 1);
  assert.match(eof.stderr, /^Error: Aborted: no answer to 'Apply these changes\?' on stdin; pass --force/);
  assert.match((await vigil(['show-config', '-c', cfg])).stdout, /^maximum_lag_on_failover: 2097152$/m);
});

test('edit-config refuses keys Vigil does not implement yet (a dynamic postgresql.pg_ctl_timeout), as PATCH /config does', async () => {
  const r = await vigil(['edit-config', '-c', cfg, '-s', 'postgresql.pg_ctl_timeout=120', '-s', 'ignore_slots=[{name: barman}]', '--force', '-q']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /postgresql\.pg_ctl_timeout: pg_ctl_timeout in the dynamic configuration is not implemented by Vigil yet/);
  assert.doesNotMatch(r.stderr, /ignore_slots/); // implemented: only pg_ctl_timeout refuses the edit
  assert.doesNotMatch((await vigil(['show-config', '-c', cfg])).stdout, /pg_ctl_timeout|ignore_slots/);
});

test('edit-config refuses impossible values as PATCH /config does, naming the key', async () => {
  const r = await vigil(['edit-config', '-c', cfg, '-s', 'loop_wait=soon', '-s', 'maximum_lag_on_failover=4096', '--force', '-q']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: loop_wait: /);
  assert.doesNotMatch(r.stderr, /maximum_lag_on_failover/);
  const shown = (await vigil(['show-config', '-c', cfg])).stdout;
  assert.doesNotMatch(shown, /soon|maximum_lag_on_failover: 4096/, 'nothing written');
});

test('edit-config --apply - needs --force; --replace from a file', async () => {
  const r = await vigil(['edit-config', '-c', cfg, '--apply', '-'], 'retry_timeout: 4\n');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\+retry_timeout: 4$/m);
  assert.match(r.stdout, /Use --force option to apply changes\n$/);
  assert.match((await vigil(['show-config', '-c', cfg])).stdout, /^retry_timeout: 3$/m);
  const f = await vigil(['edit-config', '-c', cfg, '--apply', '-', '--force', '-q'], 'retry_timeout: 4\n');
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, 'Configuration changed\n');
  assert.match((await vigil(['show-config', '-c', cfg])).stdout, /^retry_timeout: 4$/m);
  await vigil(['edit-config', '-c', cfg, '-s', 'retry_timeout=3', '--force', '-q']);
});

test('edit-config on an unknown cluster and with bad pairs', async () => {
  const r = await vigil(['edit-config', '-c', cfg, '-s', 'ttl=5', '--force', 'nosuch']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error: The config key does not exist in the cluster nosuch\n');
  const bad = await vigil(['edit-config', '-c', cfg, '-s', 'ttl', '--force']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'Error: Invalid parameter setting ttl\n');
});

test('history prints the table header (tsv) and JSON', async () => {
  const r = await vigil(['history', '-c', cfg, '-f', 'tsv']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n')[0], 'TL\tLSN\tReason\tTimestamp\tNew Leader');
  const j = await vigil(['history', '-c', cfg, '-f', 'json']);
  assert.equal(j.code, 0, j.stderr);
  assert.ok(Array.isArray(JSON.parse(j.stdout)));
});

test('dsn: leader by default, a member, a role; unknown member and cluster fail', async () => {
  const r = await vigil(['dsn', '-c', cfg]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `host=127.0.0.1 port=${cluster.node(leader).pgPort}\n`);
  const other = cluster.nodes.find((n) => n.name !== leader)!;
  assert.equal((await vigil(['dsn', '-c', cfg, '-m', other.name])).stdout, `host=127.0.0.1 port=${other.pgPort}\n`);
  const rep = await vigil(['dsn', '-c', cfg, '-r', 'replica']);
  assert.notEqual(rep.stdout, r.stdout);
  const unknown = await vigil(['dsn', '-c', cfg, '-m', 'nosuch']);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, 'Error: Can not find a suitable member\n');
  const noCluster = await vigil(['dsn', '-c', cfg, 'nosuchcluster']);
  assert.equal(noCluster.code, 1);
  assert.equal(noCluster.stderr, 'Error: Can not find a suitable member\n');
  const both = await vigil(['dsn', '-c', cfg, '-m', 'x', '-r', 'leader']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^Error: --role and --member are mutually exclusive options\n/);
});

test('query: leader, -c before the verb, replica by role, SQL errors, missing member', async () => {
  const env = { PGPASSWORD: SUPERUSER.password };
  const r = await vigil(['query', '--config-file', cfg, '-U', SUPERUSER.username, '-d', 'postgres', '-c', 'SELECT 1 AS one, pg_is_in_recovery() AS rec, NULL AS n'], '', env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'one\trec\tn\n1\tFalse\tNone\n');
  const rep = await vigil(['query', '--config-file', cfg, '-U', SUPERUSER.username, '-r', 'replica', '-c', 'SELECT pg_is_in_recovery()', '--format', 'json'], '', env);
  assert.equal(rep.code, 0, rep.stderr);
  assert.equal(rep.stdout, '[{"pg_is_in_recovery": "True"}]\n');
  // patronictl's spelling: -c before the verb is the configuration file, after it the SQL.
  const before = await vigil(['-c', cfg, 'query', '-U', SUPERUSER.username, '-d', 'postgres', '-c', 'SELECT 2 AS two'], '', env);
  assert.equal(before.code, 0, before.stderr);
  assert.equal(before.stdout, 'two\n2\n');
  const app = await vigil(['query', '--config-file', cfg, '-U', SUPERUSER.username, '-c', 'SHOW application_name', '--delimiter', ';'], '', env);
  assert.equal(app.stdout, 'application_name\nPatroni ctl\n');
  const err = await vigil(['query', '--config-file', cfg, '-U', SUPERUSER.username, '-c', 'SELECT * FROM nosuchtable'], '', env);
  assert.equal(err.code, 1);
  assert.match(err.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\tERROR, SQLSTATE: 42P01\n$/);
  const none = await vigil(['query', '--config-file', cfg, '-m', 'nosuch', '-c', 'SELECT 1'], '', env);
  assert.equal(none.code, 1);
  assert.match(none.stdout, /\tNo connection to member nosuch is available\n$/);
  const noSql = await vigil(['query', '--config-file', cfg]);
  assert.equal(noSql.code, 2);
  assert.match(noSql.stderr, /^Error: You need to specify either --command or --file\n/);
});

test('version: ours, then each member (unknown member names fail)', async () => {
  const r = await vigilVersion(['-c', cfg, 'demo']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^vigil version \d+\.\d+\.\d+$/);
  assert.equal(lines[1], '');
  for (const n of cluster.nodes) assert.match(r.stdout, new RegExp(`^${n.name}: Patroni 4\\.1\\.4 PostgreSQL 15\\.\\d+$`, 'm'));
  const one = await vigilVersion(['-c', cfg, 'demo', 'node1']);
  assert.equal(one.stdout.trim().split('\n').length, 3);
  const bad = await vigilVersion(['-c', cfg, 'demo', 'nosuch']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'Error: nosuch is not a member of cluster demo\n');
});

test('topology: the leader, then replicas as "+ name"', async () => {
  const r = await vigil(['topology', '-c', cfg]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\+ Cluster: demo \(\d+\) /);
  const memberCells = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| Member'))
    .map((l) => l.split('|')[1]!.trim());
  assert.equal(memberCells[0], leader);
  assert.deepEqual(memberCells.slice(1).sort(), cluster.nodes.filter((n) => n.name !== leader).map((n) => `+ ${n.name}`).sort());
});

test('remove: three confirmations from stdin; wrong answers abort', async () => {
  const p = '/service/victim/';
  await etcdPut(`${p}initialize`, '123');
  await etcdPut(`${p}leader`, 'm1');
  await etcdPut(`${p}config`, '{"ttl":30}');
  await etcdPut(`${p}members/m1`, JSON.stringify({ conn_url: 'postgres://127.0.0.1:1/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'primary' }));

  const wrongName = await vigil(['remove', '-c', cfg, 'victim'], 'victin\n');
  assert.equal(wrongName.code, 1);
  assert.match(wrongName.stdout, /Cluster: victim \(123\)/);
  assert.match(wrongName.stdout, /Please confirm the cluster name to remove: /);
  assert.equal(wrongName.stderr, 'Error: Cluster names specified do not match\n');
  const notAware = await vigil(['remove', '-c', cfg, 'victim'], 'victim\nyes\n');
  assert.equal(notAware.stderr, 'Error: You did not exactly type "Yes I am aware"\n');
  const wrongLeader = await vigil(['remove', '-c', cfg, 'victim'], 'victim\nYes I am aware\nm2\n');
  assert.equal(wrongLeader.stderr, 'Error: You did not specify the current leader of the cluster\n');
  const eof = await vigil(['remove', '-c', cfg, 'victim'], 'victim\n');
  assert.equal(eof.code, 1);
  assert.match(eof.stderr, /^Error: Aborted: no answer to/);
  assert.equal(await etcdCount(p), 4);

  const ok = await vigil(['remove', '-c', cfg, 'victim'], 'victim\nYes I am aware\nm1\n');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /This cluster currently is healthy\. Please specify the leader name to continue: /);
  assert.equal(await etcdCount(p), 0);
  assert.ok((await etcdCount('/service/demo/')) > 0, 'the other cluster is untouched');

  const gone = await vigil(['remove', '-c', cfg, 'victim'], '');
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^Error: Cluster victim has no keys in the DCS/);
});

test('error cases: bad flags, unknown role, missing config file, unreachable etcd', async () => {
  const bad = await vigil(['show-config', '-c', cfg, '--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^Error: Unknown option '--bogus'/);
  assert.match(bad.stderr, /usage: vigil show-config/);
  const role = await vigil(['reload', '-c', cfg, '-r', 'boss', 'demo']);
  assert.equal(role.code, 2);
  assert.match(role.stderr, /'boss' is not one of 'leader'/);
  const flush = await vigil(['flush', '-c', cfg, 'demo', 'everything']);
  assert.equal(flush.code, 2);
  const missing = await vigil(['history', '-c', join(dir, 'nope.yml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Provided config file .*nope\.yml not existing/);
  const port = await freePort();
  const down = await vigil(['show-config', '--dcs-url', `etcd3://127.0.0.1:${port}`, 'demo']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, new RegExp(`^Error: cannot read cluster 'demo' \\(/service/demo/\\) from etcd at http://127\\.0\\.0\\.1:${port}`));
  const unknownMember = await vigil(['reload', '-c', cfg, 'demo', 'nosuch', '--force']);
  assert.equal(unknownMember.code, 1);
  assert.equal(unknownMember.stderr, 'Error: nosuch is not a member of cluster\n');
});
