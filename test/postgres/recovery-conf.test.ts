// postgresql.recovery_conf against real PostgreSQL 15: a replica's recovery settings are written
// into postgresql.conf and in force on the running replica; a primary does not get them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { slotName } from '../../src/postgres/conf.ts';
import { loadConfig } from '../../src/config/load.ts';
import { errors, MINIMAL_CONFIG } from '../../src/config/testing.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { connUrlOf, eventually, pgSettings, pgTestFiles, sql, testBootstrap } from '../support/pg.ts';

const files = pgTestFiles();

test('recovery_conf parsed; managed settings dropped with a warning', () => {
  const r = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', "postgresql:\n  recovery_conf: {restore_command: 'cp /a/%f %p', recovery_min_apply_delay: 5s, recovery_target_time: x, primary_conninfo: y}\n"), {});
  assert.deepEqual(errors(r.issues), []);
  assert.deepEqual(r.config?.postgresql.recoveryConf, { restore_command: 'cp /a/%f %p', recovery_min_apply_delay: '5s' });
  const warned = r.issues.filter((i) => i.severity === 'warning').map((i) => i.path);
  assert.ok(warned.includes('postgresql.recovery_conf.recovery_target_time') && warned.includes('postgresql.recovery_conf.primary_conninfo'), warned.join(', '));
});

async function show(s: PostgresqlSettings, name: string): Promise<string> {
  const [row] = await sql<{ v: string }>(s, `SELECT current_setting('${name}') AS v`);
  return row!.v;
}

test('a replica runs with recovery_conf (local on the primary, dynamic on the replica); the primary does not', { timeout: 120_000 }, async () => {
  const recoveryConf = { restore_command: '/bin/false %f %p', recovery_min_apply_delay: '2s' };
  const sa: PostgresqlSettings = { ...(await pgSettings({ baseDir: files.base, name: 'rc-a' })), recoveryConf };
  // b has no local recovery_conf: it takes the dynamic configuration's.
  const sb: PostgresqlSettings = await pgSettings({ baseDir: files.base, name: 'rc-b' });
  const a = new PostgresController({ settings: sa, name: 'rc-a', scope: 'test' });
  const b = new PostgresController({ settings: sb, name: 'rc-b', scope: 'test' });
  files.nodes.push(a, b);
  await a.initdb(testBootstrap());
  await a.start();
  await a.postBootstrap();
  assert.equal(await show(sa, 'restore_command'), '');
  assert.equal(await show(sa, 'recovery_min_apply_delay'), '0');
  await a.ensureSlots([slotName('rc-b')]);
  await b.basebackup({ connUrl: connUrlOf(sa) }, { retryDelayMs: 200 });
  await b.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sa), name: 'rc-a' }, recoveryConf });
  await b.start();
  await eventually('rc-b streams', async () => (await b.probe()).walReceiver?.status === 'streaming');
  assert.equal(await show(sb, 'restore_command'), '/bin/false %f %p');
  assert.equal(await show(sb, 'recovery_min_apply_delay'), '2s');
  // Promoted and rewritten as a primary, the settings go away.
  await b.promote();
  await b.writeConfig({ role: 'primary', recoveryConf });
  await b.reload();
  await eventually('rc-b reloaded', async () => (await show(sb, 'recovery_min_apply_delay')) === '0');
  assert.equal(await show(sb, 'restore_command'), '');
});
