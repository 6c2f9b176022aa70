// The local PostgreSQL node as the controller's parts share it: settings, paths, logger,
// connection parameters, owned-file helpers and the lock that serialises writes of
// postgresql.conf. Holds no PostgreSQL state of its own beyond that lock.

import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Credentials, PostgresqlSettings } from '../config/types.ts';
import { localSocketDir, parseConnUrl, parseListen, renderPgpass, type PgpassEntry } from './conninfo.ts';
import { parseControlData } from './controldata.ts';
import { ownForPg, run } from './exec.ts';
import type { ConnParams } from './probe.ts';

export interface PgLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const silentLogger: PgLogger = { debug() {}, info() {}, warn() {}, error() {} };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class PgNode {
  readonly settings: PostgresqlSettings;
  /** Member name: application_name in primary_conninfo, our slot name, the log file name. */
  readonly name: string;
  /** Cluster scope, written as cluster_name when given. */
  readonly scope: string | undefined;
  readonly dataDir: string;
  /** <dirname(data_dir)>/<name>.postgres.log: outside the data directory, so never copied. */
  readonly logFile: string;
  readonly log: PgLogger;
  /** tags.nostream: a replica gets no primary_conninfo (WAL from restore_command and pg_wal only). */
  nostream = false;
  /** Serialises writes of postgresql.conf (writeConfig, setSyncStandbyNames). */
  private confLock: Promise<unknown> = Promise.resolve();

  constructor(opts: { settings: PostgresqlSettings; name: string; scope?: string; logger?: PgLogger }) {
    this.settings = opts.settings;
    this.name = opts.name;
    this.scope = opts.scope;
    this.log = opts.logger ?? silentLogger;
    this.dataDir = resolve(opts.settings.dataDir);
    this.logFile = join(dirname(this.dataDir), `${opts.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.postgres.log`);
  }

  /** Path of a PostgreSQL binary (bin_dir, else PATH), under its bin_name when one is set. */
  bin(name: string): string {
    const file = this.settings.binName?.[name] ?? name;
    if (isAbsolute(file)) return file;
    return this.settings.binDir ? join(this.settings.binDir, file) : file;
  }

  get defaultTimeoutMs(): number {
    return Math.max(1, this.settings.pgCtlTimeout) * 1000;
  }

  /** postgresql.config_dir (absolute), else the data directory: where the configuration files are. */
  get confDir(): string {
    return this.settings.configDir !== undefined && this.settings.configDir !== '' ? resolve(this.settings.configDir) : this.dataDir;
  }

  /** postgresql.config_base_name, default postgresql. */
  get confBaseName(): string {
    return this.settings.configBaseName ?? 'postgresql';
  }

  /** The generated configuration file, passed to the postmaster as config_file. */
  get confPath(): string {
    return join(this.confDir, `${this.confBaseName}.conf`);
  }

  get signalPath(): string {
    return join(this.dataDir, 'standby.signal');
  }

  /**
   * The local server, as `creds` (default: the superuser), with their libpq settings. Over the Unix
   * socket (the first absolute directory of the local unix_socket_directories) with
   * use_unix_socket, else over TCP to the listen address.
   */
  localConn(creds: Credentials = this.settings.authentication.superuser, database = this.settings.database, viaSocket = this.settings.useUnixSocket === true): ConnParams {
    const l = parseListen(this.settings.listen);
    const socket = viaSocket ? localSocketDir(this.settings.parameters.unix_socket_directories) : undefined;
    return {
      host: socket ?? l.localHost,
      port: l.port,
      user: creds.username,
      ...(creds.password !== undefined ? { password: creds.password } : {}),
      database,
      ...(creds.libpq !== undefined ? { libpq: creds.libpq } : {}),
    };
  }

  /** The local server as the replication user (a walsender connection), over the socket with use_unix_socket_repl. */
  localReplicationConn(): ConnParams {
    const repl = this.settings.authentication.replication;
    return { ...this.localConn(repl, this.settings.database, this.settings.useUnixSocketRepl === true), replication: true };
  }

  /** Another member's server from its conn_url, as `creds`, with their libpq settings. */
  remoteConn(connUrl: string, creds: Credentials, database: string): ConnParams {
    const t = parseConnUrl(connUrl);
    return {
      host: t.host,
      port: t.port,
      user: creds.username,
      ...(creds.password !== undefined ? { password: creds.password } : {}),
      database,
      ...(creds.libpq !== undefined ? { libpq: creds.libpq } : {}),
    };
  }

  /** pg_rewind's user: the rewind user, else the superuser. */
  rewindCreds(): Credentials {
    return this.settings.authentication.rewind ?? this.settings.authentication.superuser;
  }

  /** Writes a file atomically (temp file + rename), owned by PostgreSQL's OS user, with `mode`. */
  async writeOwned(path: string, content: string, mode: number): Promise<void> {
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, content, { mode });
    await ownForPg(tmp, mode);
    await rename(tmp, path);
  }

  /**
   * Creates the data directory (mode 0700, owned by the PostgreSQL user) and its parent. Parent
   * directories we create are owned by the PostgreSQL user too (PostgreSQL writes its log file
   * there); existing ones are left alone and must be traversable by it.
   */
  async ensureDataDir(): Promise<void> {
    await mkdirOwned(dirname(this.dataDir));
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    await ownForPg(this.dataDir, 0o700);
  }

  /** A temporary pgpass file next to settings.pgpass (owned by PostgreSQL's user, 0600). */
  async tempPgpass(tag: string, entries: PgpassEntry[]): Promise<string> {
    const path = `${this.settings.pgpass}.${tag}-${randomBytes(4).toString('hex')}`;
    await mkdirOwned(dirname(path));
    await this.writeOwned(path, renderPgpass(entries), 0o600);
    return path;
  }

  /** No PG_VERSION in the data directory. */
  async dataDirEmpty(): Promise<boolean> {
    return !existsSync(join(this.dataDir, 'PG_VERSION'));
  }

  /** pg_controldata as a key/value map. Rejects when the data directory is not initialised. */
  async controlData(): Promise<Record<string, string>> {
    const r = await run(this.bin('pg_controldata'), ['-D', this.dataDir], { timeoutMs: 10_000 });
    return parseControlData(r.stdout);
  }

  /** Runs `fn` after every write of postgresql.conf queued before it has finished. */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.confLock.then(fn, fn);
    this.confLock = next.catch(() => undefined);
    return next;
  }
}

/** mkdir -p; every directory it creates is chowned to the PostgreSQL user (mode 0755). */
export async function mkdirOwned(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  let p = dir;
  const created: string[] = [];
  while (p.length >= first.length) {
    created.push(p);
    if (p === first) break;
    p = dirname(p);
  }
  for (const d of created.reverse()) await ownForPg(d);
}
