// The local data directory's life cycle: initdb (+ the roles of a new cluster), pg_basebackup,
// pg_rewind, removal, and the system identifier. Everything here needs PostgreSQL stopped, except
// postBootstrap (which runs on the freshly started primary).

import { readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BootstrapSettings } from '../config/types.ts';
import { resolveReplicaMethods } from '../config/replica-methods.ts';
import { libpqPairs, parseConnUrl, quoteIdent, quoteLiteral, renderConninfo, renderPgHba } from './conninfo.ts';
import type { ConfigFiles } from './configfiles.ts';
import { controlSysid } from './controldata.ts';
import { isTransientError, libpqToolFailure, PgControlError } from './errors.ts';
import { krbEnv, lastLines, ownForPg, run } from './exec.ts';
import { sleep, type PgNode } from './node.ts';
import { basebackupExtraArgs, checkRenderedOptions } from './options.ts';
import type { Postmaster } from './postmaster.ts';
import { withClient, type ConnParams } from './probe.ts';
import { runCustomBootstrap, runReplicaMethod } from './replica-methods.ts';
import { dynamicRoleOverrides } from './roles.ts';
import type { SyncStandby } from './sync.ts';

export interface BasebackupOptions {
  attempts?: number;
  retryDelayMs?: number;
  /** Deadline of one pg_basebackup run; default none (a multi-terabyte clone takes what it takes). */
  timeoutMs?: number;
  /** Cancels the running pg_basebackup (its process group is killed). */
  signal?: AbortSignal;
  /**
   * createReplica only: the method names to try instead of postgresql.create_replica_methods (a
   * standby cluster's standby_cluster.create_replica_methods, [] when it has none), resolved as
   * Patroni does (resolveReplicaMethods): [] is basebackup; another name is a command configured
   * by its section postgresql.<name>, listed in postgresql.create_replica_methods or not, or the
   * command of that name without one (a method whose section is unusable is skipped with a warning).
   */
  methods?: string[];
}

export class DataDir {
  /** The system identifier read from this data directory (cleared when it is wiped/removed). */
  private sysidCache: string | undefined;

  constructor(
    private readonly node: PgNode,
    private readonly postmaster: Postmaster,
    private readonly files: ConfigFiles,
    private readonly sync: SyncStandby,
  ) {}

  /**
   * Remembers (a string) or forgets (undefined) the system identifier observed for this data
   * directory; knownSysid returns it.
   */
  rememberSysid(sysid: string | undefined): void {
    this.sysidCache = sysid;
  }

  knownSysid(): string | undefined {
    return this.sysidCache;
  }

  /** The system identifier from pg_controldata (read once; undefined when the data directory is empty). */
  async sysid(): Promise<string | undefined> {
    if (await this.node.dataDirEmpty()) return undefined;
    if (this.sysidCache === undefined) this.sysidCache = controlSysid(await this.node.controlData());
    return this.sysidCache;
  }

  /**
   * initdb, then pg_hba.conf (bootstrap.pg_hba) and postgresql.conf (as a primary). Fails if the data directory is not
   * empty; a refused bootstrap.initdb option rejects with PgOptionError before anything is touched.
   */
  async initdb(bootstrap: BootstrapSettings): Promise<void> {
    const options = checkRenderedOptions('initdb', bootstrap.initdb);
    if (!(await this.node.dataDirEmpty())) throw new PgControlError('PG_DATA_DIR', `data directory ${this.node.dataDir} is already initialised`);
    await this.node.ensureDataDir();
    if ((await readdir(this.node.dataDir)).length > 0) {
      throw new PgControlError('PG_DATA_DIR', `data directory ${this.node.dataDir} is not empty`);
    }
    const su = this.node.settings.authentication.superuser;
    const args = ['-D', this.node.dataDir, `--username=${su.username}`, ...options];
    let pwfile: string | undefined;
    try {
      if (su.password !== undefined && su.password !== '') {
        pwfile = join(dirname(this.node.dataDir), `.vigil-pwfile-${randomBytes(6).toString('hex')}`);
        await this.node.writeOwned(pwfile, su.password + '\n', 0o600);
        args.push(`--pwfile=${pwfile}`);
      }
      this.node.log.info(`running initdb in ${this.node.dataDir}`);
      await run(this.node.bin('initdb'), args, { timeoutMs: Math.max(300_000, this.node.defaultTimeoutMs) });
    } finally {
      if (pwfile !== undefined) await rm(pwfile, { force: true });
    }
    const auth = this.node.settings.authentication;
    await this.node.writeOwned(
      join(this.node.dataDir, 'pg_hba.conf'),
      renderPgHba({
        lines: bootstrap.pgHba,
        superuser: auth.superuser,
        replication: auth.replication,
        ...(auth.rewind !== undefined ? { rewind: auth.rewind } : {}),
      }),
      0o600,
    );
    // The pg_hba / pg_ident of the local or the dynamic configuration, when set, replace
    // bootstrap.pg_hba here (Patroni's precedence).
    const dcsPg = (bootstrap.dcs.postgresql !== null && typeof bootstrap.dcs.postgresql === 'object' ? bootstrap.dcs.postgresql : {}) as Record<string, unknown>;
    const dynamic = dcsPg.parameters;
    const lines = (v: unknown): string[] | null => (Array.isArray(v) && v.every((l) => typeof l === 'string') ? (v as string[]) : null);
    await this.files.write({
      role: 'primary',
      upstream: null,
      parameters: dynamic !== null && typeof dynamic === 'object' ? (dynamic as Record<string, unknown>) : {},
      pgHba: lines(dcsPg.pg_hba),
      pgIdent: lines(dcsPg.pg_ident),
      roleOverrides: dynamicRoleOverrides(dcsPg),
    });
  }

  /**
   * A custom bootstrap (bootstrap.method with a command) instead of initdb: fails if the data
   * directory is not empty; see runCustomBootstrap. Rejects PgControlError PG_FAILED (not
   * transient) when the script fails.
   */
  async customBootstrap(custom: NonNullable<BootstrapSettings['custom']>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (!(await this.node.dataDirEmpty())) throw new PgControlError('PG_DATA_DIR', `data directory ${this.node.dataDir} is already initialised`);
    await this.node.ensureDataDir();
    this.sysidCache = undefined;
    try {
      await runCustomBootstrap(this.node, custom, opts.signal);
    } catch (e) {
      throw new PgControlError('PG_FAILED', `custom bootstrap ${custom.name} failed: ${(e as Error).message}`, { cause: e, retryable: false });
    }
  }

  /**
   * On the freshly bootstrapped, running primary: set the superuser's password, run
   * bootstrap.post_bootstrap (see runPostBootstrapScript; its failure rejects before any other
   * role is created), then create the replication user, the rewind user (when configured and
   * distinct from the superuser) and bootstrap.users. Statements run with
   * synchronous_commit=local and statement logging off.
   */
  async postBootstrap(bootstrap?: BootstrapSettings, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const auth = this.node.settings.authentication;
    const conn: ConnParams = {
      ...this.node.localConn(),
      options: '-c synchronous_commit=local -c log_statement=none -c log_min_duration_statement=-1 -c log_min_error_statement=panic',
    };
    const upsertRole = async (c: { query: (sql: string, values?: unknown[]) => Promise<{ rowCount: number | null }> }, name: string, attrs: string, password: string | undefined): Promise<void> => {
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount! > 0;
      const pw = password !== undefined && password !== '' ? ` PASSWORD ${quoteLiteral(password)}` : '';
      await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${quoteIdent(name)} WITH ${attrs}${pw}`);
    };
    if (auth.superuser.password !== undefined && auth.superuser.password !== '') {
      await withClient(conn, 30_000, (c) => upsertRole(c, auth.superuser.username, 'SUPERUSER LOGIN', auth.superuser.password));
    }
    if (bootstrap?.postBootstrap !== undefined) await this.runPostBootstrapScript(bootstrap.postBootstrap, opts.signal);
    await withClient(conn, 30_000, async (c) => {
      if (auth.replication.username !== auth.superuser.username) {
        await upsertRole(c, auth.replication.username, 'REPLICATION LOGIN', auth.replication.password);
      }
      const rw = auth.rewind;
      if (rw !== undefined && rw.username !== auth.superuser.username) {
        await upsertRole(c, rw.username, 'LOGIN', rw.password);
        const u = quoteIdent(rw.username);
        for (const fn of [
          'pg_catalog.pg_ls_dir(text, boolean, boolean)',
          'pg_catalog.pg_stat_file(text, boolean)',
          'pg_catalog.pg_read_binary_file(text)',
          'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
        ]) {
          await c.query(`GRANT EXECUTE ON FUNCTION ${fn} TO ${u}`);
        }
        const ver = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
        // PG 15+: lets pg_rewind's source get a checkpoint on its new timeline (see rewind()).
        if (ver >= 150000) await c.query(`GRANT pg_checkpoint TO ${u}`);
      }
      for (const [name, user] of Object.entries(bootstrap?.users ?? {})) {
        const opts = user.options.filter((o) => /^[A-Za-z_]+$/.test(o)).map((o) => o.toUpperCase());
        await upsertRole(c, name, ['LOGIN', ...opts].join(' '), user.password);
      }
    });
  }

  /**
   * Runs the post_bootstrap script (argv) to completion, with no deadline (`signal` kills it): its
   * last argument is the local superuser's connection string (dbname, user, host, port; the
   * password, if any, through a temporary PGPASSFILE), PGOPTIONS=-c synchronous_commit=local.
   * Rejects (PgControlError PG_FAILED, not transient) when it cannot start or exits non-zero.
   */
  private async runPostBootstrapScript(argv: string[], signal: AbortSignal | undefined): Promise<void> {
    const local = this.node.localConn();
    const su = this.node.settings.authentication.superuser;
    const dsn = renderConninfo([
      ['dbname', local.database],
      ['user', local.user],
      ['host', local.host],
      ['port', local.port],
    ]);
    const pgpass =
      su.password !== undefined && su.password !== ''
        ? await this.node.tempPgpass('post-bootstrap', [{ host: local.host, port: local.port, database: '*', user: su.username, password: su.password }])
        : undefined;
    try {
      this.node.log.info(`running post_bootstrap script ${argv.join(' ')}`);
      const r = await run(argv[0]!, [...argv.slice(1), dsn], {
        signal,
        env: { ...(pgpass !== undefined ? { PGPASSFILE: pgpass } : {}), ...krbEnv(this.node.settings.krbsrvname), PGOPTIONS: '-c synchronous_commit=local' },
      });
      const out = lastLines(r.stdout + r.stderr, 5);
      this.node.log.info(`post_bootstrap script finished${out !== '' ? `: ${out}` : ''}`);
    } catch (e) {
      throw new PgControlError('PG_FAILED', `post_bootstrap script ${argv[0]!} failed: ${(e as Error).message}`, { cause: e, retryable: false });
    } finally {
      if (pgpass !== undefined) await rm(pgpass, { force: true });
    }
  }

  /** Deletes the data directory. Refuses while PostgreSQL runs. */
  async remove(): Promise<void> {
    if ((await this.postmaster.isRunning()).running) throw new PgControlError('PG_RUNNING', 'cannot remove the data directory while PostgreSQL runs');
    await this.sync.load();
    this.sysidCache = undefined;
    await rm(this.node.dataDir, { recursive: true, force: true });
  }

  /**
   * Replaces the data directory with a base backup of `from` (pg_basebackup -X stream,
   * --checkpoint=fast unless configured otherwise), with the replication credentials via a
   * temporary pgpass. The data directory is wiped before each attempt and after the last failure.
   * Rejects with PgOptionError for a refused postgresql.basebackup option (before touching
   * anything), PgUnavailableError when the source could not be reached, else PgControlError.
   */
  async basebackup(from: { connUrl: string }, opts: BasebackupOptions = {}): Promise<void> {
    const extra = basebackupExtraArgs(this.node.settings.basebackup);
    const attempts = Math.max(1, opts.attempts ?? 2);
    const retryDelayMs = opts.retryDelayMs ?? 5000;
    if ((await this.postmaster.isRunning()).running) throw new PgControlError('PG_RUNNING', 'cannot take a base backup while PostgreSQL runs');
    await this.sync.load(); // before the source's postgresql.conf replaces ours
    const t = parseConnUrl(from.connUrl);
    const repl = this.node.settings.authentication.replication;
    const dsn = renderConninfo([
      ['host', t.host],
      ['port', t.port],
      ['user', repl.username],
      ['dbname', t.dbname ?? this.node.settings.database],
      ...libpqPairs(repl, {}, this.node.settings.krbsrvname),
    ]);
    const pgpass =
      repl.password !== undefined && repl.password !== ''
        ? await this.node.tempPgpass('basebackup', [{ host: t.host, port: t.port, database: '*', user: repl.username, password: repl.password }])
        : undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        await this.wipe();
        try {
          this.node.log.info(`pg_basebackup from ${t.host}:${t.port} (attempt ${attempt}/${attempts})`);
          await run(this.node.bin('pg_basebackup'), ['-D', this.node.dataDir, '-X', 'stream', `--dbname=${dsn}`, ...extra], {
            timeoutMs: opts.timeoutMs,
            signal: opts.signal,
            env: { ...(pgpass !== undefined ? { PGPASSFILE: pgpass } : {}), PGCONNECT_TIMEOUT: '10' },
          });
          await ownForPg(this.node.dataDir, 0o700);
          return;
        } catch (e) {
          this.node.log.warn(`pg_basebackup failed: ${(e as Error).message}`);
          if (attempt >= attempts || opts.signal?.aborted === true) {
            await this.wipe().catch(() => undefined);
            throw libpqToolFailure('pg_basebackup', e);
          }
          await sleep(retryDelayMs);
        }
      }
    } finally {
      if (pgpass !== undefined) await rm(pgpass, { force: true });
    }
  }

  /**
   * Makes this member's data directory a copy of the cluster with postgresql.create_replica_methods
   * tried in the configured order (only the listed ones, as Patroni; none configured: basebackup).
   * A user method runs after the data directory is emptied (unless keep_data); the first that
   * succeeds wins. Rejects with the last method's failure when all failed (the data directory is
   * then emptied again), or at once when `signal` aborts. `from` undefined (the cluster has no
   * leader): only the methods marked no_leader run, with an empty --connstring.
   */
  async createReplica(from: { connUrl: string } | undefined, opts: BasebackupOptions = {}): Promise<void> {
    let configured = this.node.settings.createReplicaMethods ?? [];
    if (opts.methods !== undefined) {
      const r = resolveReplicaMethods(opts.methods, this.node.settings.replicaMethodSections ?? {});
      for (const p of r.problems) this.node.log.warn(`replica method skipped: ${p}`);
      if (r.methods.length === 0) throw new PgControlError('PG_FAILED', `none of the replica methods ${opts.methods.join(', ')} is usable`, { retryable: false });
      configured = r.methods;
    }
    if (from !== undefined && configured.length === 0) return this.basebackup(from, opts);
    const methods = from === undefined ? configured.filter((m) => m.noLeader && m.command !== undefined) : configured;
    if (methods.length === 0) throw new PgControlError('PG_FAILED', 'no replica method works without a leader (no_leader)', { retryable: false });
    if ((await this.postmaster.isRunning()).running) throw new PgControlError('PG_RUNNING', 'cannot create a replica while PostgreSQL runs');
    let last: unknown;
    for (const m of methods) {
      if (opts.signal?.aborted === true) break;
      if (m.command === undefined) {
        if (from === undefined) continue;
        try {
          await this.basebackup(from, opts);
          return;
        } catch (e) {
          last = e;
          continue;
        }
      }
      await this.sync.load(); // before the method's files replace ours
      if (m.keepData) {
        this.sysidCache = undefined;
        await this.node.ensureDataDir();
        this.node.log.info('leaving the data directory as it is (keep_data)');
      } else {
        await this.wipe();
      }
      try {
        await runReplicaMethod(this.node, { ...m, command: m.command }, from, opts.signal);
        this.sysidCache = undefined;
        return;
      } catch (e) {
        this.node.log.warn(`replica method ${m.name} failed: ${(e as Error).message}`);
        last = new PgControlError('PG_FAILED', `replica method ${m.name} failed: ${(e as Error).message}`, { cause: e, retryable: false });
      }
    }
    await this.wipe().catch(() => undefined);
    throw last ?? new PgControlError('PG_FAILED', 'replica creation cancelled');
  }

  private async wipe(): Promise<void> {
    this.sysidCache = undefined;
    await rm(this.node.dataDir, { recursive: true, force: true });
    await this.node.ensureDataDir();
  }

  /**
   * The options put before pg_rewind's own: postgresql.rewind (checked: a refused option rejects
   * with PgOptionError), then --restore-target-wal when the local configuration has a non-empty
   * restore_command (PostgreSQL 13+; as in Patroni, PG 13/14 only when postgresql.conf is in the
   * data directory, since before 15 pg_rewind cannot be told where it is), so that pg_rewind
   * fetches WAL it misses from the archive.
   */
  private async rewindArgs(): Promise<string[]> {
    const out = checkRenderedOptions('pg_rewind', this.node.settings.rewind ?? []);
    const major = parseInt((await readFile(join(this.node.dataDir, 'PG_VERSION'), 'utf8').catch(() => '0')).trim(), 10);
    if (major < 13 || dirname(this.node.confPath) !== this.node.dataDir && major < 15) return out;
    let restore = '';
    try {
      const r = await run(this.node.bin('postgres'), ['-D', this.node.dataDir, `--config-file=${this.node.confPath}`, '-C', 'restore_command'], { timeoutMs: 30_000 });
      restore = r.stdout.trim();
    } catch (e) {
      this.node.log.warn(`pg_rewind: could not read restore_command (${(e as Error).message}); rewinding without --restore-target-wal`);
    }
    if (restore !== '') {
      out.push('--restore-target-wal');
      if (dirname(this.node.confPath) !== this.node.dataDir) out.push(`--config-file=${this.node.confPath}`);
    }
    return out;
  }

  /**
   * pg_rewind the stopped local data directory to `from` (the new primary), with the rewind user
   * (else the superuser) via a temporary pgpass. First makes sure the source has a checkpoint on
   * its current timeline (otherwise pg_rewind would wrongly find nothing to do). Configuration
   * files pg_rewind copies from the source (pg_hba.conf, pg_ident.conf, postgresql.base.conf,
   * postgresql.conf, and configfiles.ts's pg_hba.conf.vigil-base / pg_ident.conf.vigil-base) are put back afterwards; the caller then writes config as a replica.
   * Rejects with PgUnavailableError when the source could not be reached, PgControlError
   * PG_REWIND_NOT_READY while it is still in recovery (both transient), PgControlError PG_FAILED
   * when pg_rewind itself failed (e.g. histories it cannot reconcile: not transient), and
   * PgOptionError for a refused postgresql.rewind option (before anything is touched).
   */
  async rewind(from: { connUrl: string }, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    if ((await this.postmaster.isRunning()).running) throw new PgControlError('PG_RUNNING', 'pg_rewind needs PostgreSQL stopped');
    const extraArgs = await this.rewindArgs();
    await this.sync.load();
    const creds = this.node.rewindCreds();
    const conn = this.node.remoteConn(from.connUrl, creds, 'postgres');
    await withClient(
      conn,
      60_000,
      async (c) => {
        const r = await c.query<{ rec: boolean; walfile: string | null; ckpt: number }>(
          `SELECT pg_is_in_recovery() AS rec,
             CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
             (SELECT timeline_id FROM pg_control_checkpoint()) AS ckpt`,
        );
        const row = r.rows[0];
        if (row === undefined || row.rec) throw new PgControlError('PG_REWIND_NOT_READY', 'rewind source is in recovery');
        const tli = row.walfile !== null ? parseInt(row.walfile.slice(0, 8), 16) : undefined;
        if (tli !== undefined && row.ckpt !== tli) {
          try {
            await c.query('CHECKPOINT');
          } catch (e) {
            throw new PgControlError('PG_REWIND_NOT_READY', `rewind source has no checkpoint on timeline ${tli} yet and CHECKPOINT failed: ${(e as Error).message}`, {
              cause: e,
              retryable: isTransientError(e), // e.g. no pg_checkpoint privilege: not worth a retry
            });
          }
        }
      },
      'rewind source',
    );
    const keep = ['pg_hba.conf', 'pg_ident.conf', 'postgresql.base.conf', 'postgresql.conf', 'pg_hba.conf.vigil-base', 'pg_ident.conf.vigil-base'];
    const saved = new Map<string, string>();
    for (const f of keep) {
      try {
        saved.set(f, await readFile(join(this.node.dataDir, f), 'utf8'));
      } catch {
        // absent
      }
    }
    const t = parseConnUrl(from.connUrl);
    const pgpass =
      creds.password !== undefined && creds.password !== ''
        ? await this.node.tempPgpass('rewind', [{ host: t.host, port: t.port, database: '*', user: creds.username, password: creds.password }])
        : undefined;
    const dsn = renderConninfo([
      ['host', t.host],
      ['port', t.port],
      ['user', creds.username],
      ['dbname', 'postgres'],
      ...libpqPairs(creds, {}, this.node.settings.krbsrvname),
      ['target_session_attrs', 'read-write'],
    ]);
    try {
      this.node.log.info(`pg_rewind from ${t.host}:${t.port}`);
      const r = await run(this.node.bin('pg_rewind'), [...extraArgs, `--target-pgdata=${this.node.dataDir}`, `--source-server=${dsn}`], {
        timeoutMs: opts.timeoutMs, // default none, as for pg_basebackup
        signal: opts.signal,
        env: { ...(pgpass !== undefined ? { PGPASSFILE: pgpass } : {}), PGOPTIONS: '-c statement_timeout=0', PGCONNECT_TIMEOUT: '10' },
      });
      this.node.log.info(`pg_rewind: ${lastLines(r.stderr + r.stdout, 3)}`);
    } catch (e) {
      throw libpqToolFailure('pg_rewind', e);
    } finally {
      if (pgpass !== undefined) await rm(pgpass, { force: true });
      for (const [f, content] of saved) {
        await this.node.writeOwned(join(this.node.dataDir, f), content, 0o600).catch(() => undefined);
      }
    }
  }
}
