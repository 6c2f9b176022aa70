// postgresql.rewind against real PostgreSQL 15: the configured pg_rewind options, and
// --restore-target-wal (with --config-file for a config_dir outside the data directory) when a
// restore_command is configured, reach pg_rewind. pg_rewind is reached
// through bin_name: a wrapper that records its arguments and execs the real one.

import { after, before, test } from 'node:test';
import { readdir, readFile, mkdir, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { PostgresController } from '../../src/postgres/controller.ts';
import { slotName } from '../../src/postgres/conf.ts';
import { PgOptionError } from '../../src/postgres/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { errors, MINIMAL_CONFIG } from '../../src/config/testing.ts';
import type { PostgresqlSettings } from '../../src/config/types.ts';
import { connUrlOf, makeTempBase, PG_BIN_DIR, pgSettings, removeTempBase, sql, testBootstrap } from '../support/pg.ts';

let base: string;
let a: PostgresController | undefined;
let b: PostgresController | undefined;

before(async () => {
  base = await makeTempBase();
});
after(async () => {
  for (const c of [a, b]) await c?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
  if (base) await removeTempBase(base);
});

test('postgresql.rewind: options rendered; refused ones named', () => {
  const ok = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  rewind: [no-sync, progress]\n'), {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(ok.config?.postgresql.rewind, ['--no-sync', '--progress']);
  for (const bad of ['[dry-run]', '[R]', '{restore-target-wal: null}', '[{config-file: /x}]', '[--source-server]']) {
    const r = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', `postgresql:\n  rewind: ${bad}\n`), {});
    assert.match(errors(r.issues).join('\n'), /^postgresql\.rewind.*is not allowed for pg_rewind/m, bad);
  }
});

test('postgresql.rewind and restore_command reach pg_rewind', { timeout: 180_000 }, async () => {
  const bin = join(base, 'bin');
  await mkdir(bin);
  for (const f of await readdir(PG_BIN_DIR)) await symlink(join(PG_BIN_DIR, f), join(bin, f));
  const argsFile = join(base, 'rewind-args');
  const wrapper = join(bin, 'recording-pg_rewind');
  await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\nexec '${join(PG_BIN_DIR, 'pg_rewind')}' "$@"\n`);
  await chmod(wrapper, 0o755);
  const extra = { binDir: bin, binName: { pg_rewind: 'recording-pg_rewind' }, rewind: ['--no-sync'] };
  // ra keeps its configuration outside the data directory: pg_rewind also gets --config-file.
  const sa: PostgresqlSettings = { ...(await pgSettings({ baseDir: base, name: 'ra' })), ...extra, configDir: join(base, 'ra-etc') };
  sa.parameters = { ...sa.parameters, restore_command: '/bin/false %f %p' };
  const sb: PostgresqlSettings = { ...(await pgSettings({ baseDir: base, name: 'rb' })), ...extra };
  a = new PostgresController({ settings: sa, name: 'ra', scope: 'test' });
  b = new PostgresController({ settings: sb, name: 'rb', scope: 'test' });
  await a.initdb(testBootstrap());
  await a.start();
  await a.postBootstrap();
  await a.ensureSlots([slotName('rb')]);
  await b.basebackup({ connUrl: connUrlOf(sa) }, { retryDelayMs: 200 });
  await b.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sa), name: 'ra' } });
  await b.start();
  await b.promote();
  await sql(sa, 'CREATE TABLE diverge (v int)');
  await a.stop('fast');
  assert.equal(await a.checkDivergence({ connUrl: connUrlOf(sb) }), 'need');

  // A refused option reaching the controller (not from the configuration) is rejected, not dropped.
  const refused = new PostgresController({ settings: { ...sa, rewind: ['--dry-run'] }, name: 'ra', scope: 'test' });
  await assert.rejects(refused.rewind({ connUrl: connUrlOf(sb) }), (e: unknown) => e instanceof PgOptionError);

  await a.rewind({ connUrl: connUrlOf(sb) });
  const argv = (await readFile(argsFile, 'utf8')).trim().split('\n');
  assert.deepEqual(argv.slice(0, 3), ['--no-sync', '--restore-target-wal', `--config-file=${join(base, 'ra-etc', 'postgresql.conf')}`]);
  assert.ok(argv.includes(`--target-pgdata=${sa.dataDir}`), argv.join(' '));
  assert.equal(await a.checkDivergence({ connUrl: connUrlOf(sb) }), 'not_needed');

  // Without a restore_command, no --restore-target-wal (b rewinds after a's promotion).
  await a.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sb), name: 'rb' } });
  await b.ensureSlots([slotName('ra')]);
  await a.start();
  await a.promote();
  await sql(sb, 'CREATE TABLE diverge2 (v int)');
  await b.stop('fast');
  assert.equal(await b.checkDivergence({ connUrl: connUrlOf(sa) }), 'need');
  await b.rewind({ connUrl: connUrlOf(sa) });
  const argv2 = (await readFile(argsFile, 'utf8')).trim().split('\n');
  assert.deepEqual(argv2.slice(0, 2), ['--no-sync', `--target-pgdata=${sb.dataDir}`]);
});
