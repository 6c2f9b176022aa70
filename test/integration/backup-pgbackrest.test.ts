// postgresql.create_replica_methods with real pgBackRest (Debian's pgbackrest, a repository in a
// temporary directory): node0 bootstraps and archives its WAL through pgbackrest, a stanza and a
// full backup are taken from it, then node1 joins with create_replica_methods [pgbackrest,
// basebackup]: its data directory comes from `pgbackrest restore` (never pg_basebackup), and it
// streams from node0 afterwards, with a row written after the backup. node2's first method fails
// (exit 1), so it falls through to the next one listed, basebackup. Last, a new cluster is
// bootstrapped (bootstrap.method with a pgbackrest restore --type=time command) from the backup to
// a point in time between two writes: it has the first and not the second. And a lone member that
// may not bootstrap (nofailover) restores with a no_leader method while its cluster has no leader.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LocalCluster } from '../../src/local/cluster.ts';
import { agentLog, onePrimary, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';

const PGBACKREST = '/usr/bin/pgbackrest';
const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

/** Runs a command as the postgres OS user (pgBackRest refuses to back up as another user's files' owner otherwise). */
function asPostgres(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile('runuser', ['-u', 'postgres', '--', ...args], { timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, out: stdout + stderr });
    });
  });
}

describe('create_replica_methods with pgBackRest', { timeout: 600_000, skip: !existsSync(PGBACKREST) }, () => {
  let base: string;
  let cluster: LocalCluster;
  let conf: string;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'vigil-pgbackrest-'));
    const br = join(base, 'pgbackrest');
    await mkdir(br);
    await chmod(base, 0o755);
    await chmod(br, 0o777);
    conf = join(br, 'pgbackrest.conf');
    // node0's socket directory is its node directory (LocalCluster); the node list is known only
    // after prepare(), so the configuration file is written then.
    cluster = new LocalCluster({
      baseDir: base,
      nodes: 3,
      timing: TIMING,
      // pgBackRest connects over node0's Unix socket as postgres without a password.
      pgHba: ['local all postgres trust'],
      parameters: { archive_mode: 'on', archive_command: `${PGBACKREST} --config=${conf} --stanza=demo archive-push %p`, wal_level: 'replica' },
    });
    await cluster.prepare();
    const n0 = cluster.node('node0');
    const n1 = cluster.node('node1');
    await writeFile(conf, [
      '[global]',
      `repo1-path=${join(br, 'repo')}`,
      `log-path=${join(br, 'log')}`,
      `lock-path=${join(br, 'lock')}`,
      `spool-path=${join(br, 'spool')}`,
      'log-level-console=info',
      'log-level-file=off',
      'start-fast=y',
      '[demo]',
      `pg1-path=${n0.dataDir}`,
      `pg1-port=${n0.pgPort}`,
      `pg1-socket-path=${n0.dir}`,
      '',
    ].join('\n'));
    await chmod(conf, 0o644);
    const method = JSON.stringify({
      command: `${PGBACKREST} --config=${conf} --stanza=demo --pg1-path=${n1.dataDir} --type=standby restore`,
      no_params: true,
      no_leader: true,
    });
    const text = await readFile(n1.configFile, 'utf8');
    await writeFile(n1.configFile, text.replace('\npostgresql:\n', `\npostgresql:\n  create_replica_methods: [pgbackrest, basebackup]\n  pgbackrest: ${method}\n`));
    const n2 = cluster.node('node2');
    const text2 = await readFile(n2.configFile, 'utf8');
    await writeFile(n2.configFile, text2.replace('\npostgresql:\n', `\npostgresql:\n  create_replica_methods: [broken, basebackup]\n  broken: {command: /bin/false}\n`));
    cluster.startAgent('node0');
    await waitFor('node0 to bootstrap', () => onePrimary(cluster), 120_000);
  });

  after(async () => {
    await stopCluster(cluster, base);
  });

  test('a replica restored by pgbackrest from a backup of the primary streams from it', async () => {
    for (const args of [['stanza-create'], ['check'], ['--type=full', 'backup']]) {
      const r = await asPostgres([PGBACKREST, `--config=${conf}`, '--stanza=demo', ...args]);
      assert.equal(r.code, 0, `pgbackrest ${args.join(' ')}: ${r.out}`);
    }
    await query(cluster.connParams('node0'), 'CREATE TABLE after_backup AS SELECT 42 AS x');
    cluster.startAgent('node1');
    await waitFor('node1 streaming', async () => ((await streamingReplicas(cluster)).includes('node1') ? true : undefined), 180_000);
    const log = agentLog(cluster, 'node1', 400);
    assert.match(log, /replica created with method pgbackrest/, log);
    assert.doesNotMatch(log, /pg_basebackup from/, log);
    await waitFor('the row written after the backup on node1', async () => {
      const rows = await query<{ x: number }>(cluster.connParams('node1'), "SELECT x FROM after_backup").catch(() => []);
      return rows[0]?.x === 42 ? true : undefined;
    }, 60_000);
  });

  test('a failing method: the next one listed (basebackup) makes the replica', async () => {
    cluster.startAgent('node2');
    await waitFor('node2 streaming', async () => ((await streamingReplicas(cluster)).includes('node2') ? true : undefined), 180_000);
    const log = agentLog(cluster, 'node2', 400);
    assert.match(log, /replica method broken failed/, log);
    assert.match(log, /pg_basebackup from/, log);
  });

  test('custom bootstrap: a new cluster restored from the backup to a point in time', async () => {
    const c = cluster.connParams('node0');
    await query(c, 'CREATE TABLE pitr (x int)');
    await query(c, 'INSERT INTO pitr VALUES (1)');
    const t = (await query<{ t: string }>(c, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t"))[0]!.t;
    await query(c, 'SELECT pg_sleep(0.2)');
    await query(c, 'INSERT INTO pitr VALUES (2)');
    // check switches WAL and waits until the segment with both inserts is archived.
    const chk = await asPostgres([PGBACKREST, `--config=${conf}`, '--stanza=demo', 'check']);
    assert.equal(chk.code, 0, chk.out);
    const base2 = await mkdtemp(join(tmpdir(), 'vigil-pitr-'));
    await chmod(base2, 0o755);
    const restored = new LocalCluster({ baseDir: base2, nodes: 1, timing: TIMING, scope: 'restored', pgHba: ['local all postgres trust'] });
    try {
      await restored.prepare();
      const n = restored.node('node0');
      const cmd = `${PGBACKREST} --config=${conf} --stanza=demo --pg1-path=${n.dataDir} --type=time --target=${JSON.stringify(t)} --target-action=promote restore`;
      const text = await readFile(n.configFile, 'utf8');
      await writeFile(n.configFile, text.replace('\nbootstrap:\n', `\nbootstrap:\n  method: pitr\n  pitr: ${JSON.stringify({ command: cmd, keep_existing_recovery_conf: true, no_params: true })}\n`));
      restored.startAgent('node0');
      assert.equal(await waitFor('the restored cluster to bootstrap', () => onePrimary(restored), 180_000), 'node0');
      const rows = await query<{ x: number }>(restored.connParams('node0'), 'SELECT x FROM pitr ORDER BY x');
      assert.deepEqual(rows.map((r) => r.x), [1]);
      assert.match(agentLog(restored, 'node0', 400), /custom bootstrap script finished/);
    } finally {
      await stopCluster(restored, base2);
    }
  });

  test('no_leader: a member of a cluster without a leader, that may not bootstrap, restores from the backup', async () => {
    // Archive node0's latest WAL (the after_backup row) so that the restore can replay it.
    const chk = await asPostgres([PGBACKREST, `--config=${conf}`, '--stanza=demo', 'check']);
    assert.equal(chk.code, 0, chk.out);
    const base3 = await mkdtemp(join(tmpdir(), 'vigil-noleader-'));
    await chmod(base3, 0o755);
    // nofailover: the bootstrap race is not open to it (as in Patroni), nor the leader race.
    const lone = new LocalCluster({ baseDir: base3, nodes: 1, timing: TIMING, scope: 'noleader', pgHba: ['local all postgres trust'], tags: { node0: { nofailover: true } } });
    try {
      await lone.prepare();
      const n = lone.node('node0');
      const method = JSON.stringify({ command: `${PGBACKREST} --config=${conf} --stanza=demo --pg1-path=${n.dataDir} --type=standby restore`, no_params: true, no_leader: true });
      const text = await readFile(n.configFile, 'utf8');
      await writeFile(n.configFile, text.replace('\npostgresql:\n', `\npostgresql:\n  create_replica_methods: [pgbackrest, basebackup]\n  pgbackrest: ${method}\n`));
      lone.startAgent('node0');
      await waitFor('the restored replica to serve the row written after the backup', async () => {
        const rows = await query<{ x: number }>(lone.connParams('node0'), 'SELECT x FROM after_backup').catch(() => []);
        return rows[0]?.x === 42 ? true : undefined;
      }, 180_000);
      const inRecovery = await query<{ r: boolean }>(lone.connParams('node0'), 'SELECT pg_is_in_recovery() AS r');
      assert.equal(inRecovery[0]?.r, true);
      const log = agentLog(lone, 'node0', 400);
      assert.match(log, /bootstrap \(without leader\)/, log);
      assert.match(log, /replica created with method pgbackrest/, log);
      assert.doesNotMatch(log, /pg_basebackup from/, log);
    } finally {
      await stopCluster(lone, base3);
    }
  });
});
