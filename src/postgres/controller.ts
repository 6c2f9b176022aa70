// PostgresController: the only code that changes the local data directory or runs PostgreSQL.
// A facade over its parts, which share one PgNode (settings, paths, logger):
//   postmaster.ts   process control: start, stop, promote, reload, CHECKPOINT, the exit watch
//   datadir.ts      the data directory: initdb, pg_basebackup, pg_rewind, removal, sysid
//   configfiles.ts  postgresql.conf (recovery settings included), standby.signal, pgpass,
//                   command-line GUCs, pending restarts
//   sync.ts         the managed synchronous_standby_names and the sync facts
//   facts.ts        observation: probe, observe(), slots, divergence from the leader
// Failures are typed (errors.ts): callers tell transient ones apart with isTransientError.
//
// The postmaster's stdout/stderr go to <dirname(data_dir)>/<name>.postgres.log (appended),
// outside the data directory so that base backups and pg_rewind never copy it.

import type { BootstrapSettings, PostgresqlSettings } from '../config/types.ts';
import type { LocalPg, LocalSync } from '../core/model.ts';
import { ConfigFiles, type WriteConfigOptions, type WriteConfigResult } from './configfiles.ts';
import { DataDir, type BasebackupOptions } from './datadir.ts';
import { Facts } from './facts.ts';
import { applySlotOps, fetchLogicalSlots, readSlots, unreadyAtPromotion, writeLogicalSlots, type SlotState } from './slots.ts';
import type { SlotOp } from '../core/slots.ts';
import { PgNode, type PgLogger } from './node.ts';
import { Postmaster, type PostmasterExitInfo } from './postmaster.ts';
import type { ProbeResult } from './probe.ts';
import { SyncStandby } from './sync.ts';

export type { BasebackupOptions, PgLogger, PostmasterExitInfo, WriteConfigResult };

export interface PostgresControllerOptions {
  settings: PostgresqlSettings;
  /** Member name: application_name in primary_conninfo, our slot name, the log file name. */
  name: string;
  /** Cluster scope, written as cluster_name when given. */
  scope?: string;
  logger?: PgLogger;
  /** The postmaster exited without us stopping it (crash, kill -9, OOM...). */
  onPostmasterExit?: (info: PostmasterExitInfo) => void;
  /** tags.nostream: as a replica, no streaming connection and no slot (see PgNode.nostream). */
  nostream?: boolean;
}

export class PostgresController {
  readonly settings: PostgresqlSettings;
  readonly name: string;
  readonly dataDir: string;
  readonly logFile: string;

  private readonly node: PgNode;
  private readonly postmaster: Postmaster;
  private readonly sync: SyncStandby;
  private readonly files: ConfigFiles;
  private readonly dir: DataDir;
  private readonly facts: Facts;

  constructor(opts: PostgresControllerOptions) {
    this.node = new PgNode({ settings: opts.settings, name: opts.name, ...(opts.scope !== undefined ? { scope: opts.scope } : {}), ...(opts.logger !== undefined ? { logger: opts.logger } : {}) });
    this.node.nostream = opts.nostream === true;
    this.settings = this.node.settings;
    this.name = this.node.name;
    this.dataDir = this.node.dataDir;
    this.logFile = this.node.logFile;
    this.postmaster = new Postmaster(this.node, () => this.files.commandLine(), opts.onPostmasterExit);
    this.sync = new SyncStandby(this.node, this.postmaster);
    this.files = new ConfigFiles(this.node, this.sync);
    this.dir = new DataDir(this.node, this.postmaster, this.files, this.sync);
    this.facts = new Facts(this.node, this.postmaster, this.dir, this.files, this.sync);
  }

  // ---- data directory ---------------------------------------------------------------------

  /** No PG_VERSION in the data directory. */
  dataDirEmpty(): Promise<boolean> {
    return this.node.dataDirEmpty();
  }

  /** pg_controldata as a key/value map. Rejects when the data directory is not initialised. */
  controlData(): Promise<Record<string, string>> {
    return this.node.controlData();
  }

  /** The data directory's system identifier (undefined when empty). */
  sysid(): Promise<string | undefined> {
    return this.dir.sysid();
  }

  /**
   * initdb with bootstrap.initdb (a refused option rejects with PgOptionError before anything is
   * touched), then pg_hba.conf and postgresql.conf as a primary. Fails if the data dir is not empty.
   */
  initdb(bootstrap: BootstrapSettings): Promise<void> {
    return this.dir.initdb(bootstrap);
  }

  /** On the freshly bootstrapped, running primary: passwords, replication/rewind users, bootstrap.users. */
  postBootstrap(bootstrap?: BootstrapSettings, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.dir.postBootstrap(bootstrap, opts);
  }

  /**
   * Replaces the data directory with a base backup of `from` (see DataDir.basebackup). Rejects
   * with PgOptionError for a refused postgresql.basebackup option, PgUnavailableError when the
   * source could not be reached, PgControlError otherwise.
   */
  basebackup(from: { connUrl: string }, opts: BasebackupOptions = {}): Promise<void> {
    return this.dir.basebackup(from, opts);
  }

  /** A custom bootstrap instead of initdb (see DataDir.customBootstrap). */
  customBootstrap(custom: NonNullable<BootstrapSettings['custom']>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.dir.customBootstrap(custom, opts);
  }

  /** Creates the data directory with create_replica_methods (see DataDir.createReplica). */
  createReplica(from: { connUrl: string } | undefined, opts: BasebackupOptions = {}): Promise<void> {
    return this.dir.createReplica(from, opts);
  }

  /** pg_rewind the stopped data directory to `from` (see DataDir.rewind). */
  rewind(from: { connUrl: string }, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    return this.dir.rewind(from, opts);
  }

  /** Deletes the data directory. Refuses while PostgreSQL runs. */
  removeDataDir(): Promise<void> {
    return this.dir.remove();
  }

  // ---- configuration ----------------------------------------------------------------------

  /**
   * Renders postgresql.conf, standby.signal and the pgpass file for the given role; returns what
   * changed and whether a running PostgreSQL must restart (see ConfigFiles.write).
   */
  writeConfig(opts: WriteConfigOptions): Promise<WriteConfigResult> {
    return this.files.write(opts);
  }

  /** The member we are configured to follow (from the generated postgresql.conf), null if none. */
  configuredUpstream(): Promise<string | null> {
    return this.files.upstream();
  }

  /** Parameters pending a restart, with the running and the configured value. */
  pendingRestart(opts: { timeoutMs?: number } = {}): Promise<Record<string, { old_value: string; new_value: string }>> {
    return this.files.pendingRestart(opts);
  }

  /** The managed synchronous_standby_names in force for the files we render (null: none). */
  syncStandbyNamesOverride(): Promise<string | null> {
    return this.sync.override();
  }

  /** Sets (value) or removes (null) the managed synchronous_standby_names (see SyncStandby.set). */
  setSyncStandbyNames(value: string | null, opts: { timeoutMs?: number; reloadWaitMs?: number } = {}): Promise<void> {
    return this.sync.set(value, opts);
  }

  /** Synchronous replication facts from a probe of this node (see SyncStandby.facts). */
  syncFacts(probe: ProbeResult): LocalSync | undefined {
    return this.sync.facts(probe);
  }

  // ---- process control --------------------------------------------------------------------

  /** From postmaster.pid (+ kill(pid, 0), zombie check, cwd check on Linux), or our own child. */
  isRunning(): Promise<{ running: boolean; pid?: number }> {
    return this.postmaster.isRunning();
  }

  /** The postmaster exited on its own since we last started it. */
  get crashed(): boolean {
    return this.postmaster.crashed;
  }

  /** Starts PostgreSQL and waits until it accepts connections (see Postmaster.start). */
  start(opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.postmaster.start(opts);
  }

  /** Stops the postmaster, escalating to SIGKILL (see Postmaster.stop). Idempotent. */
  stop(mode: 'smart' | 'fast' | 'immediate', opts: { timeoutMs?: number; checkpoint?: boolean } = {}): Promise<void> {
    // Our own probe connection must not hold up a smart shutdown (it waits for every client).
    this.facts.closeSession();
    return this.postmaster.stop(mode, opts);
  }

  /** Promotes a standby and resolves once it is out of recovery. No-op on a primary. */
  promote(opts: { timeoutMs?: number } = {}): Promise<void> {
    unreadyAtPromotion(this.node); // logs the logical slot copies not ready yet
    return this.postmaster.promote(opts);
  }

  /** SIGHUP the postmaster (reload configuration). No-op when not running. */
  reload(): Promise<void> {
    return this.postmaster.reload();
  }

  /** CHECKPOINT on the local PostgreSQL. */
  checkpoint(opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.postmaster.checkpoint(opts);
  }

  // ---- facts ------------------------------------------------------------------------------

  /** One probe query, bounded by timeoutMs (default 2 s). Rejects when PostgreSQL does not answer. */
  probe(opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
    return this.facts.probe(opts);
  }

  /** Ends the connection the probes keep open (the agent's exit); the next probe opens a new one. */
  close(): void {
    this.facts.closeSession();
  }

  /** Everything the agent needs about local PostgreSQL for one tick; never rejects for PostgreSQL being down. */
  async observe(opts: { probeTimeoutMs?: number } = {}): Promise<LocalPg & { probe?: ProbeResult }> {
    const o = await this.facts.observe(opts);
    // The replication slots, for core/slots.ts (left undefined when the read fails).
    if (o.ready) {
      const slots = await readSlots(this.node, opts.probeTimeoutMs ?? 2000).catch(() => undefined);
      if (slots !== undefined) o.slots = slots;
    }
    return o;
  }

  /** Executes planned slot changes (see src/postgres/slots.ts). */
  applySlotOps(ops: readonly SlotOp[]): Promise<void> {
    return applySlotOps(this.node, ops);
  }

  /** The state files of logical slots on the primary at connUrl. */
  fetchLogicalSlots(connUrl: string, names: readonly string[]): Promise<SlotState[]> {
    return fetchLogicalSlots(this.node, connUrl, names);
  }

  /** Writes copied logical slot states into the stopped data directory. */
  writeLogicalSlots(states: readonly SlotState[]): Promise<void> {
    return writeLogicalSlots(this.node, states);
  }

  /** On a primary: creates missing physical slots, drops inactive ones not in `names`. */
  ensureSlots(names: string[], opts: { timeoutMs?: number; dropUnknown?: boolean } = {}): Promise<void> {
    return this.facts.ensureSlots(names, opts);
  }

  /** The running server's current timeline (a standby: the one it replays on), via IDENTIFY_SYSTEM. */
  replayTimeline(opts: { timeoutMs?: number } = {}): Promise<number | undefined> {
    return this.facts.replayTimeline(opts);
  }

  /** Whether the local data diverged from the leader's timeline (spec 10.3). */
  checkDivergence(leader: { connUrl: string }, opts: { timeoutMs?: number } = {}): Promise<'need' | 'not_needed'> {
    return this.facts.checkDivergence(leader, opts);
  }
}
