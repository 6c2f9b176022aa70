// The writer against a real PostgreSQL 15: a commit whose wait for synchronous replication is
// cancelled (pg_cancel_backend) reports success with a warning; the writer must flag it
// (syncCancelled), never count it as acknowledged, and count ordinary commits as acknowledged.
// Runs as root (PostgreSQL itself runs as the postgres OS user); skipped otherwise.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, chmod, chown } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

import { FaultWriter, ensureTable, readIds, type Endpoint, type Credentials } from './lib/writer.ts';
import { freePort } from '../support/pg.ts';

const BIN = process.env['VIGIL_PG_BIN_DIR'] ?? '/usr/lib/postgresql/15/bin';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pgUser(): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  const uid = Number(r.stdout.trim());
  const gid = Number(g.stdout.trim());
  return r.status === 0 && g.status === 0 && Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

const user = process.getuid?.() === 0 ? pgUser() : undefined;
const skip = user === undefined ? `needs root and a postgres OS user (running as ${userInfo().username})` : false;

let base = '';
let ep: Endpoint;
const cred: Credentials = { user: 'postgres', password: 'unused-trust-auth', database: 'postgres' };

function asPostgres(cmd: string, args: string[]): void {
  const r = spawnSync(join(BIN, cmd), args, { uid: user!.uid, gid: user!.gid, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout || String(r.error)}`);
}

async function sql(q: string): Promise<void> {
  const c = new pg.Client({ host: ep.host, port: ep.port, ...cred });
  await c.connect();
  try {
    await c.query(q);
  } finally {
    await c.end();
  }
}

before(async () => {
  if (skip !== false) return;
  base = await mkdtemp(join(tmpdir(), 'vigil-writer-'));
  await chmod(base, 0o755);
  await chown(base, user!.uid, user!.gid);
  const port = await freePort();
  ep = { name: 'solo', host: '127.0.0.1', port };
  asPostgres('initdb', ['-D', join(base, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync']);
  asPostgres('pg_ctl', ['-D', join(base, 'data'), '-l', join(base, 'pg.log'), '-w', '-o', `-p ${port} -k ${base} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  await ensureTable([ep], cred, 30_000);
});

after(async () => {
  if (base === '') return;
  try {
    asPostgres('pg_ctl', ['-D', join(base, 'data'), '-m', 'immediate', 'stop']);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

/** Runs a writer for `ms`; with `cancel`, cancels every backend waiting for a standby meanwhile. */
async function write(firstId: number, ms: number, cancel = false): Promise<FaultWriter> {
  const w = new FaultWriter('w', [ep], cred, { firstId, statementTimeoutMs: 5000 });
  w.start();
  const c = new pg.Client({ host: ep.host, port: ep.port, ...cred });
  await c.connect();
  try {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (cancel) await c.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`);
      await sleep(100);
    }
  } finally {
    await c.end();
  }
  // A last INSERT may still wait for the standby: release it so stop() returns.
  const stopping = w.stop();
  if (cancel) {
    const c2 = new pg.Client({ host: ep.host, port: ep.port, ...cred });
    await c2.connect();
    for (let i = 0; i < 20; i++) {
      await c2.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`);
      await sleep(100);
    }
    await c2.end();
  }
  await stopping;
  return w;
}

test('a commit whose synchronous-replication wait was cancelled is flagged, not acknowledged', { skip, timeout: 60_000 }, async () => {
  // A standby that never connects: every commit waits until statement_timeout cancels the wait.
  await sql(`ALTER SYSTEM SET synchronous_standby_names = 'nobody'`);
  await sql('SELECT pg_reload_conf()');
  await sleep(300);
  const w = await write(1, 1500, true);
  assert.ok(w.syncCancelled.length > 0, `no cancelled sync wait seen (acks ${w.acks.length}, errors ${w.errors}: ${w.lastError ?? ""})`);
  assert.ok(w.acks.every((a) => a.syncCancelled === true), 'an INSERT committed without a standby counted as acknowledged');
  // The rows are there locally: exactly what "might not have been replicated" means.
  const present = await readIds(ep, cred);
  assert.ok(w.syncCancelled.every((id) => present.has(id)));
  assert.ok(w.syncCancelled.every((id) => w.uncertain.includes(id)));

  await sql('ALTER SYSTEM RESET synchronous_standby_names');
  await sql('SELECT pg_reload_conf()');
  await sleep(300);
  const w2 = await write(1_000_000, 500);
  assert.ok(w2.acks.length > 0, 'no INSERT acknowledged without synchronous replication');
  assert.deepEqual(w2.syncCancelled, []);
  assert.ok(w2.acks.every((a) => a.syncCancelled !== true));
});
