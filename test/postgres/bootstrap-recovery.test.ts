// bootstrap.<method>.recovery_conf against real PostgreSQL 15: after a custom bootstrap script
// (here pg_basebackup from another server), the recovery settings are written into postgresql.conf
// with recovery.signal and hot_standby off (recovery_target_action promote), the server recovers to
// the target and promotes itself; the primary's configuration afterwards needs a restart (hot_standby,
// recovery targets), as the agent's bootstrap task does it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PostgresController } from '../../src/postgres/controller.ts';
import { parseConf } from '../../src/postgres/conf.ts';
import { ownForPg } from '../../src/postgres/exec.ts';
import { eventually, PG_BIN_DIR, pgSettings, pgTestFiles, sql, testBootstrap } from '../support/pg.ts';

const files = pgTestFiles();

test('a custom bootstrap with recovery_conf recovers to its target, promotes, then gets a primary\'s configuration', { timeout: 180_000 }, async () => {
  const sa = await pgSettings({ baseDir: files.base, name: 'src', passwords: false });
  const sb = await pgSettings({ baseDir: files.base, name: 'restored', passwords: false });
  const a = new PostgresController({ settings: sa, name: 'src', scope: 'test' });
  const b = new PostgresController({ settings: sb, name: 'restored', scope: 'test' });
  files.nodes.push(a, b);
  await a.initdb(testBootstrap());
  await a.start();
  await a.postBootstrap();
  await sql(sa, 'CREATE TABLE restored_rows (x int)');
  await sql(sa, 'INSERT INTO restored_rows VALUES (1), (2)');

  // The "restore tool": a base backup of a into b's data directory.
  const script = join(files.base, 'restore.sh');
  await writeFile(script, `#!/bin/sh\nexec ${PG_BIN_DIR}/pg_basebackup -D ${sb.dataDir} -X stream -d "host=127.0.0.1 port=${sa.listen.split(':')[1]} user=replicator dbname=postgres"\n`);
  await chmod(script, 0o755);
  await ownForPg(script);
  const recoveryConf = { restore_command: '/bin/false %f %p', recovery_target: 'immediate', recovery_target_action: 'promote' };
  await b.customBootstrap({ name: 'restore', command: [script], noParams: true, keepExistingRecoveryConf: false, recoveryConf });

  // Written after the script: the recovery settings, recovery.signal, hot_standby off.
  await b.writeConfig({ role: 'primary', upstream: null, parameters: {}, bootstrapRecovery: { recoveryConf, keepExisting: false } });
  const during = parseConf(await readFile(join(sb.dataDir, 'postgresql.conf'), 'utf8')).params;
  assert.equal(during.recovery_target, 'immediate');
  assert.equal(during.recovery_target_action, 'promote');
  assert.equal(during.restore_command, '/bin/false %f %p');
  assert.equal(during.hot_standby, 'off');
  assert.equal(during.port, sb.listen.split(':')[1]);
  assert.ok(existsSync(join(sb.dataDir, 'recovery.signal')));
  assert.ok(!existsSync(join(sb.dataDir, 'standby.signal')));

  await b.start({ timeoutMs: 60_000 });
  await eventually('the restored server promoted itself', async () => (await b.probe()).inRecovery === false, 60_000);
  assert.ok(!existsSync(join(sb.dataDir, 'recovery.signal')), 'PostgreSQL removes recovery.signal when it promotes');
  assert.deepEqual((await sql<{ x: number }>(sb, 'SELECT x FROM restored_rows ORDER BY x')).map((r) => r.x), [1, 2]);
  const [hs] = await sql<{ v: string }>(sb, "SELECT current_setting('hot_standby') AS v");
  assert.equal(hs!.v, 'off');

  // Then a primary's configuration: the recovery targets go, hot_standby comes back with a restart.
  const res = await b.writeConfig({ role: 'primary', upstream: null, parameters: {} });
  assert.equal(res.needsRestart, true);
  assert.ok(res.restartReasons.includes('hot_standby') && res.restartReasons.includes('recovery_target_action'), res.restartReasons.join(', '));
  const after = parseConf(await readFile(join(sb.dataDir, 'postgresql.conf'), 'utf8')).params;
  assert.equal(after.recovery_target, '');
  assert.equal(after.restore_command, undefined);
  await b.stop('fast');
  await b.start();
  const [hs2] = await sql<{ v: string }>(sb, "SELECT current_setting('hot_standby') AS v");
  assert.equal(hs2!.v, 'on');
  assert.equal((await b.probe()).inRecovery, false);
});

test('keep_existing_recovery_conf without recovery_conf: the signal file the script left is kept, hot_standby off', { timeout: 120_000 }, async () => {
  const sa = await pgSettings({ baseDir: files.base, name: 'src2', passwords: false });
  const sc = await pgSettings({ baseDir: files.base, name: 'kept', passwords: false });
  const a = new PostgresController({ settings: sa, name: 'src2', scope: 'test' });
  const c = new PostgresController({ settings: sc, name: 'kept', scope: 'test' });
  files.nodes.push(a, c);
  await a.initdb(testBootstrap());
  await a.start();
  await a.postBootstrap();
  // pg_basebackup -R leaves standby.signal (and primary_conninfo in postgresql.auto.conf).
  const script = join(files.base, 'restore-kept.sh');
  await writeFile(script, `#!/bin/sh\nexec ${PG_BIN_DIR}/pg_basebackup -R -D ${sc.dataDir} -X stream -d "host=127.0.0.1 port=${sa.listen.split(':')[1]} user=replicator dbname=postgres"\n`);
  await chmod(script, 0o755);
  await ownForPg(script);
  await c.customBootstrap({ name: 'restore', command: [script], noParams: true, keepExistingRecoveryConf: true });
  assert.ok(existsSync(join(sc.dataDir, 'standby.signal')));
  await c.writeConfig({ role: 'primary', upstream: null, parameters: {}, bootstrapRecovery: { keepExisting: true } });
  assert.ok(existsSync(join(sc.dataDir, 'standby.signal')), 'kept');
  assert.ok(!existsSync(join(sc.dataDir, 'recovery.signal')));
  const conf = parseConf(await readFile(join(sc.dataDir, 'postgresql.conf'), 'utf8')).params;
  assert.equal(conf.hot_standby, 'off');
  assert.equal(conf.recovery_target, '');
  // Without keep_existing_recovery_conf the written configuration of a primary removes it.
  await c.writeConfig({ role: 'primary', upstream: null, parameters: {} });
  assert.ok(!existsSync(join(sc.dataDir, 'standby.signal')));
});
