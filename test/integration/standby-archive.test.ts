// An archive-only standby cluster on real PostgreSQL 15 and etcd: cluster A (scope alpha, 1 node)
// archives its WAL into a directory (archive_mode on, archive_command cp); cluster B (scope beta,
// same etcd) has standby_cluster with restore_command only (no host, no port), so nothing in B
// connects to A. B's first member copies a pg_basebackup of A taken beforehand, through a
// replica method with no_leader named in standby_cluster.create_replica_methods (there is no
// remote to stream a copy from: the method gets an empty --connstring), and becomes the standby
// leader; rows written on A reach it after pg_switch_wal() through restore_command; it stays
// read-only (pg_is_in_recovery, role standby_leader in its member key, GET /standby-leader 200, no
// /primary in B). B's second member, started afterwards, clones the standby leader as Patroni does
// in a standby cluster: with the same standby_cluster.create_replica_methods, given the standby
// leader's address in --connstring (the method ignores it and copies the same backup), and then
// streams from it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { clusterPrefix } from '../../src/dcs/codec.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import { LocalCluster, REPLICATION } from '../../src/local/cluster.ts';
import { agentLog, healthy, inRecovery, startCluster, stopCluster } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';
import { PG_BIN_DIR } from '../support/pg.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const PG_BIN = PG_BIN_DIR;
const exec = promisify(execFile);

describe('archive-only standby cluster', { timeout: 600_000 }, () => {
  let baseA = '';
  let baseB = '';
  let shared = '';
  let a: LocalCluster;
  let b: LocalCluster | undefined;
  let primaryA = '';
  let nextId = 1;
  /** The runs of the replica method archcopy: [data directory, --connstring] in order. */
  const copies = async (): Promise<Array<[string, string]>> =>
    (await readFile(join(shared, 'calls', 'archcopy'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '').map((l) => {
      const at = l.indexOf('|');
      return [l.slice(0, at), l.slice(at + 1)];
    });

  const archive = (): string => join(shared, 'archive');
  const insert = async (): Promise<number> => {
    const id = nextId++;
    await query(a.connParams(primaryA), 'INSERT INTO dr (id) VALUES ($1)', [id]);
    return id;
  };
  /** A row written on A, then its WAL segment closed so that it is archived. */
  const insertAndSwitch = async (): Promise<number> => {
    const id = await insert();
    await query(a.connParams(primaryA), 'SELECT pg_switch_wal()');
    return id;
  };
  const hasRow = async (c: LocalCluster, n: string, id: number): Promise<boolean> =>
    (await query<{ c: number }>(c.connParams(n), 'SELECT count(*)::int AS c FROM dr WHERE id = $1', [id]))[0]?.c === 1;
  const sysid = async (c: LocalCluster, n: string): Promise<string> =>
    String((await query<{ s: string }>(c.connParams(n), 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]?.s);
  const withLog = (c: LocalCluster, n: string) => (err: unknown): never => {
    throw new Error(`${String(err)}\n${agentLog(c, n, 60)}`);
  };

  before(async () => {
    shared = await mkdtemp(join(tmpdir(), 'vigil-sarch-'));
    await chmod(shared, 0o755);
    await mkdir(archive());
    // PostgreSQL runs as another OS user when the tests run as root: it writes and reads here.
    await chmod(archive(), 0o777);
    ({ base: baseA, cluster: a } = await startCluster('vigil-sarch-a-', {
      scope: 'alpha',
      nodes: 1,
      timing: TIMING,
      parameters: { archive_mode: 'on', archive_command: `test ! -f ${archive()}/%f && cp %p ${archive()}/%f` },
    }));
    primaryA = await waitFor('cluster A healthy', () => healthy(a), 180_000);
    await query(a.connParams(primaryA), 'CREATE TABLE dr (id int PRIMARY KEY)');
    // The copy B starts from: a base backup of A, taken while nothing of B exists.
    const backup = join(shared, 'backup');
    await exec(`${PG_BIN}/pg_basebackup`, ['-D', backup, '-X', 'stream', '-c', 'fast', '-h', '127.0.0.1', '-p', String(a.node(primaryA).pgPort), '-U', REPLICATION.username], {
      env: { ...process.env, PGPASSWORD: REPLICATION.password },
      timeout: 120_000,
    });
    // The replica method runs as PostgreSQL's OS user: it must be able to read the copy.
    await exec('chmod', ['-R', 'a+rX', backup]);

    baseB = await mkdtemp(join(tmpdir(), 'vigil-sarch-b-'));
    b = new LocalCluster({
      baseDir: baseB,
      scope: 'beta',
      nodes: 2,
      timing: TIMING,
      etcdEndpoint: a.etcdEndpoint,
      dcs: { standby_cluster: { restore_command: `cp ${archive()}/%f %p`, create_replica_methods: ['archcopy'] } },
    });
    await b.prepare();
    // The method archcopy, with Patroni's arguments: records its --datadir and --connstring, then
    // copies the backup into --datadir. Every member of B defines it by the section
    // postgresql.archcopy alone, not listed in its own create_replica_methods (enough, as in
    // Patroni). node0 starts alone, so that it is the member that copies the remote; node1 joins
    // in the last test.
    await mkdir(join(shared, 'calls'));
    await chmod(join(shared, 'calls'), 0o777);
    const script = join(shared, 'archcopy');
    await writeFile(script, [
      '#!/bin/sh',
      'for arg in "$@"; do',
      '  case "$arg" in',
      '    --datadir=*) datadir="${arg#--datadir=}" ;;',
      '    --connstring=*) connstring="${arg#--connstring=}" ;;',
      '  esac',
      'done',
      `printf '%s|%s\\n' "$datadir" "$connstring" >> '${join(shared, 'calls', 'archcopy')}' || exit 1`,
      `exec cp -a '${backup}/.' "$datadir"`,
      '',
    ].join('\n'));
    await chmod(script, 0o755);
    const method = JSON.stringify({ command: script, no_leader: true });
    for (const n of ['node0', 'node1']) {
      const file = b.node(n).configFile;
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('\npostgresql:\n', `\npostgresql:\n  archcopy: ${method}\n`));
    }
    b.startAgent('node0');
  });

  after(async () => {
    await stopCluster(b, baseB);
    await stopCluster(a, baseA);
    await stopCluster(undefined, shared);
  });

  test('B\'s first member copies A without a connection and becomes a read-only standby leader', async () => {
    const c = b as LocalCluster;
    await waitFor('node0 answers /standby-leader', async () => (await c.api('node0', '/standby-leader'))?.status === 200, 120_000, 500).catch(withLog(c, 'node0'));
    assert.equal(await sysid(c, 'node0'), await sysid(a, primaryA), 'B is a copy of A, not a new initdb');
    assert.equal(await inRecovery(c, 'node0'), true);
    assert.deepEqual(await c.primaries(), [], 'no member of B answers /primary');
    const conninfo = await query<{ v: string }>(c.connParams('node0'), "SELECT current_setting('primary_conninfo') AS v");
    assert.equal(conninfo[0]?.v, '', 'no primary_conninfo: WAL comes from the archive only');
    assert.deepEqual(await copies(), [[c.node('node0').dataDir, '']], 'node0 ran archcopy once, without a connection');
    const dcs = createDcs({ etcd3: { hosts: [c.etcdEndpoint], protocol: 'http' } }, { prefix: clusterPrefix('/service/', 'beta'), name: 'test', ttl: 30, retryTimeout: 3, ctl: true });
    try {
      const view = await dcs.readCluster();
      assert.equal(view.leader?.name, 'node0', 'node0 holds B\'s leader lock');
      assert.equal(view.members.find((m) => m.name === 'node0')?.data.role, 'standby_leader');
    } finally {
      await dcs.close();
    }
  });

  test('rows written on A reach B\'s standby leader through the archive; it refuses writes', async () => {
    const c = b as LocalCluster;
    for (let i = 0; i < 2; i++) {
      const id = await insertAndSwitch();
      await waitFor(`row ${id} on B's standby leader`, () => hasRow(c, 'node0', id), 120_000, 500).catch(withLog(c, 'node0'));
    }
    const streaming = await query<{ c: number }>(c.connParams('node0'), 'SELECT count(*)::int AS c FROM pg_stat_wal_receiver');
    assert.equal(streaming[0]?.c, 0, 'no WAL receiver: nothing streams from A');
    await assert.rejects(query(c.connParams('node0'), 'INSERT INTO dr (id) VALUES (-1)'), /read-only transaction/);
    assert.equal((await c.api('node0', '/patroni'))?.body?.['role'], 'standby_leader');
  });

  test('B\'s second member clones the standby leader with standby_cluster.create_replica_methods and follows it', async () => {
    const c = b as LocalCluster;
    c.startAgent('node1');
    await waitFor('node1 streams from the standby leader', async () => (await c.api('node1', '/replica?replication_state=streaming'))?.status === 200, 180_000, 500).catch(withLog(c, 'node1'));
    const runs = await copies();
    assert.equal(runs.length, 2, `archcopy ran once more, for node1: ${JSON.stringify(runs)}`);
    const [dir, connstring] = runs[1] as [string, string];
    assert.equal(dir, c.node('node1').dataDir);
    assert.match(connstring, new RegExp(`(^| )port=${c.node('node0').pgPort}( |$)`), 'given the standby leader\'s address');
    assert.match(connstring, new RegExp(`(^| )user=${REPLICATION.username}( |$)`), 'with the replication user');
    const id = await insertAndSwitch();
    for (const n of ['node0', 'node1']) {
      await waitFor(`row ${id} on ${n}`, () => hasRow(c, n, id), 120_000, 500).catch(withLog(c, n));
      assert.equal(await inRecovery(c, n), true, `${n} is read-only`);
    }
    assert.deepEqual(await c.primaries(), []);
    const members = JSON.parse(JSON.stringify((await c.api('node0', '/cluster'))?.body?.['members'] ?? [])) as Array<{ name: string; role: string }>;
    assert.deepEqual(members.map((m) => `${m.name}:${m.role}`).sort(), ['node0:standby_leader', 'node1:replica']);
  });
});
