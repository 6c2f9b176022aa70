// The ports of the node driver (src/agent/driver.ts): everything the shell does to the outside
// world goes through one of these. The agent (src/agent/agent.ts) plugs in the real ones
// (PostgresController, an etcd adapter, HTTP to the peers, the fencer process, the monotonic
// clock); the simulator (src/sim/ports.ts) plugs in simulated ones on its simulated clock, so
// the randomized proofs run this same shell.
//
// Contract shared by every port: a method either resolves or rejects with an error that says
// what failed (DcsError for the DCS; the PostgreSQL controller's errors for PostgreSQL); no
// method hangs forever (each has its own deadline or takes one).

import type { Dcs } from '../dcs/dcs.ts';
import type { ArmResult } from '../fence/fence.ts';
import type { LocalPg, PeerStatus } from '../core/model.ts';
import type { BootstrapSettings } from '../config/types.ts';
import type { FailsafeBody } from '../api/failsafe.ts';
import type { WriteConfigResult } from '../postgres/controller.ts';
import type { Upstream } from '../postgres/conf.ts';
import type { WriteConfigOptions } from '../postgres/configfiles.ts';
import type { ProbeResult } from '../postgres/probe.ts';
import type { SlotState } from '../postgres/slots.ts';
import type { SlotOp } from '../core/slots.ts';

/** The DCS port is the DCS interface itself. */
export type DcsPort = Dcs;

/** What a probe of PostgreSQL returns (the real controller's ProbeResult; a simulator fills the fields it models). */
export type PgProbe = ProbeResult;

/** The local PostgreSQL facts of one observation, with the probe they came from when it answered. */
export type PgObservation = LocalPg & { probe?: PgProbe };

/** PostgreSQL: the subset of PostgresController the shell uses, plus reading a timeline history file. */
export interface PgPort {
  observe(): Promise<PgObservation>;
  probe(opts?: { timeoutMs?: number }): Promise<PgProbe>;
  /** Whether a postmaster runs for the data directory, with its pid. */
  isRunning(): Promise<{ running: boolean; pid?: number }>;
  initdb(bootstrap: BootstrapSettings): Promise<void>;
  /** The new cluster's roles and bootstrap.post_bootstrap (no deadline: `signal` cancels it). */
  postBootstrap(bootstrap?: BootstrapSettings, opts?: { signal?: AbortSignal }): Promise<void>;
  /** bootstrap.method's script instead of initdb (absent: no custom bootstrap, e.g. the simulation). */
  customBootstrap?(custom: NonNullable<BootstrapSettings['custom']>, opts?: { signal?: AbortSignal }): Promise<void>;
  writeConfig(
    opts: { role: 'primary' | 'replica'; upstream: Upstream | null; parameters: Record<string, unknown> | null } & Omit<WriteConfigOptions, 'role' | 'upstream' | 'parameters'>,
  ): Promise<WriteConfigResult>;
  reload(): Promise<void>;
  start(opts?: { timeoutMs?: number }): Promise<void>;
  stop(mode: 'smart' | 'fast' | 'immediate', opts?: { timeoutMs?: number; checkpoint?: boolean }): Promise<void>;
  promote(opts?: { timeoutMs?: number }): Promise<void>;
  pendingRestart(): Promise<Record<string, { old_value: string; new_value: string }>>;
  checkpoint(opts?: { timeoutMs?: number }): Promise<void>;
  removeDataDir(): Promise<void>;
  /**
   * Clone: `methods` when given (a standby cluster's standby_cluster.create_replica_methods, [] for
   * pg_basebackup), else postgresql.create_replica_methods, in order (default pg_basebackup). No
   * deadline: `signal` cancels it. `from` undefined: no leader; only the methods marked no_leader run.
   */
  basebackup(from: { connUrl: string } | undefined, opts?: { signal?: AbortSignal; methods?: string[] }): Promise<void>;
  /** No deadline: `signal` cancels it (kills pg_rewind). */
  rewind(from: { connUrl: string }, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Create the members' slots; dropUnknown: also drop other physical slots. */
  ensureSlots(names: string[], opts?: { dropUnknown?: boolean }): Promise<void>;
  /** Execute planned slot changes (core/slots.ts), except copyLogical; never rejects for one op. */
  applySlotOps(ops: readonly SlotOp[]): Promise<void>;
  /** The state files of the logical slots `names` on the primary at connUrl. */
  fetchLogicalSlots(connUrl: string, names: readonly string[]): Promise<SlotState[]>;
  /** Write copied logical slot states into the stopped data directory. */
  writeLogicalSlots(states: readonly SlotState[]): Promise<void>;
  checkDivergence(leader: { connUrl: string }, opts?: { timeoutMs?: number }): Promise<'need' | 'not_needed'>;
  setSyncStandbyNames(value: string | null): Promise<void>;
  controlData(): Promise<Record<string, string>>;
  /** The content of pg_wal/<timeline>.history. */
  timelineHistory(timeline: number): Promise<string>;
}

/** The other members' REST APIs. Neither method rejects: an unreachable peer is an answer. */
export interface PeersPort {
  /** GET each member's status, in parallel; results in the members' order. */
  fetchStatuses(members: { name: string; apiUrl: string }[]): Promise<PeerStatus[]>;
  /** POST /failsafe to every other member of `topology` (Patroni's check_failsafe_topology). */
  checkFailsafe(me: string, topology: Record<string, string> | undefined, body: FailsafeBody): Promise<{ ok: boolean; reason: string }>;
}

/** The fencer: a process of its own that kills PostgreSQL at the armed deadline. Never rejects. */
export interface FencePort {
  /** Arm for `pid` (0: whatever postmaster runs in the data directory) with deadline refreshStartMs + timeoutMs (Clock.now's clock). */
  arm(req: { pid: number; refreshStartMs: number; timeoutMs: number }): Promise<ArmResult>;
  /** Stand down. false: the fencer did not acknowledge (try again next tick). */
  disarm(): Promise<boolean>;
}

/** How a user's script ended: its exit code, or null with why (a signal, the deadline, a spawn error). */
export interface ScriptExit {
  code: number | null;
  /** Set when code is null. */
  why?: string;
}

/**
 * The user's scripts (postgresql.callbacks, pre_promote, before_stop; ./hooks.ts decides what runs
 * when). Neither method throws or rejects; a script's output goes to the log.
 */
export interface HooksPort {
  /**
   * Start `argv` in the background in `slot` and return at once; whatever still runs in that slot
   * (the script and everything it started) is killed first. Resolves when the script ends.
   */
  spawn(slot: 'callback' | 'reload', argv: readonly string[], label: string): Promise<ScriptExit>;
  /** Run `argv` to its end; it is killed (with everything it started) when `signal` aborts or after `timeoutMs`. */
  run(argv: readonly string[], label: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ScriptExit>;
}

/** Time. The driver never reads a clock or sets a timer of its own. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds since the epoch (timestamps, schedules). */
  wallNow(): number;
  /** Resolve after `ms` (on this clock). */
  sleep(ms: number): Promise<void>;
  /** A signal that aborts after `ms` (on this clock). */
  timeout(ms: number): AbortSignal;
}

export interface Ports {
  pg: PgPort;
  dcs: DcsPort;
  peers: PeersPort;
  fence: FencePort;
  clock: Clock;
  hooks: HooksPort;
}

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
