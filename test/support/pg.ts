// Helpers to build PostgreSQL nodes for tests against the real PostgreSQL 15 binaries:
// temp directories PostgreSQL's OS user can use, free loopback ports, PostgresqlSettings and
// BootstrapSettings with test-friendly defaults.

import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { after, before } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BootstrapSettings, PostgresqlSettings } from '../../src/config/types.ts';
import type { PostgresController } from '../../src/postgres/controller.ts';
import { ownForPg } from '../../src/postgres/exec.ts';
import { freePort } from '../../src/local/etcd.ts';
import { withClient, type ConnParams } from '../../src/postgres/probe.ts';

/** A free TCP port on 127.0.0.1. */
export { freePort };

export const PG_BIN_DIR = process.env.VIGIL_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';

/** A temp directory that the PostgreSQL OS user owns (when root). Remove it with removeTempBase. */
export async function makeTempBase(prefix = 'vigil-pg-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  await ownForPg(dir);
  return dir;
}

export async function removeTempBase(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Credentials used by test nodes; the passwords contain characters that need quoting. */
export const TEST_AUTH = {
  superuser: { username: 'postgres', password: "su'pa:ss\\word" },
  replication: { username: 'replicator', password: 'rep pass:1\\' },
  rewind: { username: 'rewind_user', password: "rw'pw" },
};

export interface PgNodeOptions {
  /** Directory from makeTempBase. The node lives in <baseDir>/<name>/. */
  baseDir: string;
  name: string;
  port?: number;
  /** false: no passwords anywhere (trust authentication). Default true. */
  passwords?: boolean;
  /** Overrides applied last. */
  overrides?: Partial<PostgresqlSettings>;
}

/**
 * PostgresqlSettings for a node on 127.0.0.1:<free port> with data in <baseDir>/<name>/data,
 * pgpass <baseDir>/<name>/pgpass, its unix socket in <baseDir>/<name>, small shared_buffers and
 * fsync off (tests only).
 */
export async function pgSettings(opts: PgNodeOptions): Promise<PostgresqlSettings> {
  const port = opts.port ?? (await freePort());
  const nodeDir = join(opts.baseDir, opts.name);
  const withPw = opts.passwords !== false;
  const strip = (c: { username: string; password: string }): { username: string; password?: string } =>
    withPw ? { ...c } : { username: c.username };
  return {
    listen: `127.0.0.1:${port}`,
    connectAddress: `127.0.0.1:${port}`,
    dataDir: join(nodeDir, 'data'),
    binDir: PG_BIN_DIR,
    pgpass: join(nodeDir, 'pgpass'),
    database: 'postgres',
    authentication: {
      superuser: strip(TEST_AUTH.superuser),
      replication: strip(TEST_AUTH.replication),
      rewind: strip(TEST_AUTH.rewind),
    },
    parameters: {
      unix_socket_directories: nodeDir,
      shared_buffers: '16MB',
      fsync: 'off',
      max_wal_size: '64MB',
      log_min_messages: 'info',
    },
    pgHba: [],
    usePgRewind: true,
    useSlots: true,
    removeDataDirectoryOnRewindFailure: false,
    removeDataDirectoryOnDivergedTimelines: false,
    pgCtlTimeout: 30,
    basebackup: [],
    ...opts.overrides,
  };
}

/** A bootstrap section: initdb with data checksums (so pg_rewind works) and UTF8. */
export function testBootstrap(extra: Partial<BootstrapSettings> = {}): BootstrapSettings {
  return {
    dcs: { postgresql: { parameters: {} } },
    initdb: ['--encoding=UTF8', '--data-checksums', '--locale=C'],
    pgHba: [],
    users: {},
    ...extra,
  };
}

/** The member conn_url other nodes use to reach this node. */
export function connUrlOf(settings: PostgresqlSettings): string {
  return `postgres://${settings.connectAddress}/${settings.database}`;
}

/** Polls `fn` every 100 ms until it returns a truthy value (bounded; throws with `what` on expiry). */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Superuser connection parameters of a test node. */
export function su(s: PostgresqlSettings): ConnParams {
  const port = Number(s.listen.split(':')[1]);
  return { host: '127.0.0.1', port, user: s.authentication.superuser.username, password: s.authentication.superuser.password!, database: 'postgres' };
}

/** One query as the superuser. */
export async function sql<T = Record<string, unknown>>(s: PostgresqlSettings, text: string): Promise<T[]> {
  return withClient(su(s), 10_000, async (c) => (await c.query(text)).rows as T[]);
}

/**
 * For a test file of PostgresControllers: registers a temporary base directory made before the
 * file's tests and, after them, every controller pushed to `nodes` stopped (immediate) and the
 * directory removed.
 */
export function pgTestFiles(): { base: string; nodes: PostgresController[] } {
  const files = { base: '', nodes: [] as PostgresController[] };
  before(async () => {
    files.base = await makeTempBase();
  });
  after(async () => {
    for (const c of files.nodes) await c.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    if (files.base) await removeTempBase(files.base);
  });
  return files;
}
