// A small deterministic world for testing the HA shell and the decision core (tests only).
//
// Simulated clock in 100 ms steps; a simulated etcd (./dcs.ts, one ./dcs-client.ts per agent); a
// simulated PostgreSQL per node (./pg.ts, ./wal.ts; what ports and faults do to it:
// ./pg-effects.ts); and per node production's node driver (src/agent/driver.ts) over simulated
// ports (./ports.ts): the observe, act, task, fencing and publishing code that runs here is the
// agent's own. The world keeps only what is not the agent:
// the clock and its timers, the faults (kill a host, kill the agent only, kill PostgreSQL only,
// partition a node from the DCS or from its peers, DCS down/up, graceful stop, restart), the
// fencer's deadline (a process of its own that outlives the agent), WAL and streaming, synchronous
// replication (./replication.ts), and the safety invariants. With synchronous_mode on or quorum
// the world checks that no acknowledged commit is ever missing from a promoted node or from the
// lock holder's history.
//
// Determinism: the driver is async, but every port call completes on the simulated clock (see
// ./ports.ts), and after each tick, timer or event the world drains the promise queue (one
// setImmediate turn: no real IO or timer is ever pending), so a run is a pure function of its
// seed and its script. One seeded PRNG decides the order in which nodes tick within a step and
// the start jitter. Safety invariants are checked after every step; violations are collected in
// `violations` (the tests assert it stays empty).

import type { FastMutations, TakeOverEvent } from '../agent/fast-failover.ts';
import { shutdown } from '../agent/shutdown.ts';
import { syncModeOf } from '../core/election.ts';
import { fastFailoverEnabled, type DetachPromise } from '../core/fast-failover.ts';
import type { Decision, DynamicConfig, Observation, Tags } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import { SimDcs } from './dcs.ts';
import { SimPg } from './pg.ts';
import { promotePg, startPg, stopPg } from './pg-effects.ts';
import type { Incarnation } from './ports.ts';
import { believers, convergence, Invariants, writablePrimaries } from './invariants.ts';
import { recordAcks } from './replication.ts';
import { physics } from './streaming.ts';
import { SimAgent } from './agent.ts';
import { Rng } from './rng.ts';
import type { Wal } from './wal.ts';

export { Rng } from './rng.ts';

export const STEP_MS = 100;

export interface NodeOptions {
  tags?: Tags;
  /** Bytes a replica stays behind a primary that clients write to (default 4000). */
  lagBytes?: number;
  /** Has a bootstrap section (default true). */
  canBootstrap?: boolean;
  /** wal_log_hints/checksums on (default true). */
  rewindable?: boolean;
}

export interface WorldOptions {
  seed: number;
  nodes: Record<string, NodeOptions>;
  config?: Partial<DynamicConfig>;
  /** Bytes per second clients write to a writable primary (default 20000). */
  writeRate?: number;
  /** Model the fencer (default true); without it a primary whose agent died keeps running. */
  fencing?: boolean;
  /** The agents' lease keep-alive period, ms (AgentOptions.leaseKeepAliveMs; default 0: off). */
  leaseKeepAliveMs?: number;
  /** The fast failover of synchronous modes (dynamic `vigil: {fast_failover}`); default: as the configuration says (on in sync modes). */
  fastFailover?: boolean;
  /** Test-only: skip one step of the fast failover (src/agent/fast-failover.ts FastMutations). */
  fastMutations?: FastMutations;
  /** Test-only: this node's agent is slow for `ms` between the detachment and the transaction. */
  fastTakeDelay?: { node: string; ms: number };
}

/** One line of what happened, for transcripts. */
export interface TraceLine {
  at: number;
  node: string;
  text: string;
}

/** Decides whether to cut a plan short: return k to run only the first k actions, then crash. */
export type Interceptor = (node: string, decision: Decision, obs: Observation) => { k: number; crash: 'host' | 'agent' } | undefined;

const BASE_WALL = Date.parse('2026-01-01T00:00:00Z');

export class SimNode {
  readonly pg = new SimPg();
  agent: SimAgent | undefined;
  hostUp = false;
  peersPartitioned = false;
  /** The postmaster exited on its own since it was last started (the controller's `crashed`). */
  crashed = false;
  /** Vigil's synchronous_standby_names override (kept in postgresql.conf: survives restarts); null: the user's value, empty. */
  ssn: string | null = null;
  /** LocalSync.ssnSetAtLsn: the primary's LSN when the running ssn was set or first seen. */
  ssnSetAt: number | undefined;
  ssnSeen: string | undefined;
  /** Pid of the WAL sender serving this node's replication connection (new on every reconnect). */
  senderPid = 0;
  /** The fast failover's detachment promise, as the agent's file keeps it (outlives the agent). */
  detachPromise: DetachPromise | undefined;
  /** The fencer's deadline (world ms); the fencer is a process of its own and outlives the agent. */
  fenceDeadline: number | undefined;
  constructor(
    readonly name: string,
    readonly opts: NodeOptions,
  ) {}
  get tags(): Tags {
    return this.opts.tags ?? {};
  }
}

interface Timer {
  at: number;
  seq: number;
  owner: Incarnation;
  resolve: () => void;
}

export class World {
  now = 0;
  readonly rng: Rng;
  readonly config: DynamicConfig;
  readonly dcs: SimDcs;
  readonly nodes = new Map<string, SimNode>();
  readonly trace: TraceLine[] = [];
  readonly violations: string[] = [];
  /** Decisions of every tick, for tests that look for a particular plan. */
  readonly decisions: Array<{ at: number; node: string; decision: Decision }> = [];
  writing = true;
  writeRate: number;
  initdbs = 0;
  intercept: Interceptor | undefined;
  /** When true, a decision with `exit` is not a violation. */
  allowExit = false;
  readonly fencing: boolean;
  /** The agents' lease keep-alive period, ms (0: off). */
  readonly leaseKeepAliveMs: number;
  /** synchronous_mode of the (fixed) dynamic configuration. */
  readonly syncMode: 'off' | 'on' | 'quorum';
  /** The longest acknowledged histories (none is a prefix of another); sync modes only. */
  readonly ackHeads: Wal[] = [];
  /** How often the fencer killed PostgreSQL. */
  fencings = 0;
  /** How often a lease keep-alive between ticks confirmed the lock (leaseKeepAliveMs). */
  keepAlives = 0;
  readonly fastMutations: FastMutations | undefined;
  readonly fastTakeDelay: { node: string; ms: number } | undefined;
  /** The fast failover is on: two writable primaries are a violation only when both can acknowledge. */
  readonly fastFailover: boolean;
  /** The fast failover's take-overs, in order. */
  readonly takeOvers: Array<TakeOverEvent & { node: string }> = [];
  /** Pairs of hosts that cannot reach each other ("a|b", sorted). */
  readonly cuts = new Set<string>();
  private nextBranch = 1;
  private nextSenderPid = 1000;
  private sysidCounter = 0;
  private readonly invariants = new Invariants(this);
  private scheduled: Array<{ at: number; seq: number; label: string; fn: () => void }> = [];
  private seq = 0;
  private timers: Timer[] = [];
  /** Something may have settled a promise since the last drain. */
  private dirty = false;

  constructor(opts: WorldOptions) {
    this.rng = new Rng(opts.seed);
    this.config = defaultConfig(opts.fastFailover === undefined ? opts.config : { ...opts.config, vigil: { fast_failover: opts.fastFailover } });
    this.fastMutations = opts.fastMutations;
    this.fastTakeDelay = opts.fastTakeDelay;
    this.fastFailover = fastFailoverEnabled(this.config);
    this.writeRate = opts.writeRate ?? 20000;
    this.fencing = opts.fencing ?? true;
    this.leaseKeepAliveMs = opts.leaseKeepAliveMs ?? 0;
    this.syncMode = syncModeOf(this.config);
    this.dcs = new SimDcs(() => this.now);
    for (const [name, o] of Object.entries(opts.nodes)) this.nodes.set(name, new SimNode(name, o));
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  log(node: string, text: string): void {
    this.trace.push({ at: this.now, node, text });
  }

  violation(text: string): void {
    const line = `t=${(this.now / 1000).toFixed(1)} ${text}`;
    if (!this.violations.includes(line)) this.violations.push(line);
    this.log('!', `VIOLATION ${text}`);
  }

  /** Run `fn` at simulated time `at` (ms), before the nodes tick in that step. */
  at(at: number, label: string, fn: () => void): void {
    this.scheduled.push({ at, seq: this.seq++, label, fn });
    this.scheduled.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  wallNow(): number {
    return BASE_WALL + this.now;
  }

  // ---- the clock's timers and the promise queue ---------------------------------------------------

  /** A promise that resolves at simulated time `at`, unless `owner` died first (then never). */
  timer(at: number, owner: Incarnation): Promise<void> {
    return new Promise((resolve) => {
      this.timers.push({ at, seq: this.seq++, owner, resolve });
    });
  }

  /** Let every promise chain that does not wait on a timer run to its end. */
  private async drain(): Promise<void> {
    this.dirty = false;
    await new Promise<void>((r) => setImmediate(r));
  }

  /** Fire the due timers, in node order, each followed by a drain. */
  private async fireTimers(): Promise<void> {
    const order = [...this.nodes.values()].map((n) => n.agent);
    for (;;) {
      this.timers = this.timers.filter((t) => t.owner.alive);
      const due = this.timers.filter((t) => t.at <= this.now && (t.owner as { frozen?: boolean }).frozen !== true);
      if (due.length === 0) return;
      const rank = (t: Timer): number => {
        const i = order.indexOf(t.owner as SimAgent);
        return i < 0 ? order.length : i;
      };
      due.sort((a, b) => rank(a) - rank(b) || a.at - b.at || a.seq - b.seq);
      const t = due[0] as Timer;
      this.timers.splice(this.timers.indexOf(t), 1);
      t.resolve();
      await this.drain();
    }
  }

  // ---- faults and lifecycle --------------------------------------------------------------------

  /** Start the agent (and the host) of a node; PostgreSQL is left as it is. */
  start(name: string): void {
    const n = this.node(name);
    if (n.agent !== undefined) return;
    n.hostUp = true;
    const a = new SimAgent(this, n, this.now + this.rng.int(10) * STEP_MS);
    n.agent = a;
  }

  /** The agent process ends (its pending work and timers die with it). */
  endAgent(n: SimNode): SimAgent | undefined {
    const a = n.agent;
    if (a === undefined) return undefined;
    a.alive = false;
    a.watch?.abort();
    n.agent = undefined;
    return a;
  }

  /** The host dies: agent and PostgreSQL gone at once (unclean), lease left to expire. */
  kill(name: string): void {
    const n = this.node(name);
    this.endAgent(n);
    n.hostUp = false;
    n.fenceDeadline = undefined;
    n.pg.stop('immediate');
  }

  /**
   * The agent process dies; PostgreSQL keeps running. A background task's PostgreSQL part may
   * or may not have been issued already (pg_ctl promote/start/stop sent just before): the PRNG
   * decides, at the moment of the kill.
   */
  killAgent(name: string): void {
    const n = this.node(name);
    const t = this.endAgent(n)?.task;
    if (t?.state === 'running' && this.rng.next() < 0.5) {
      const d = n.pg.data;
      const spec = t.spec;
      if (spec.kind === 'promote' && n.pg.running && d?.standby === true) promotePg(this, n);
      else if (spec.kind === 'start' && d !== undefined && !n.pg.running) {
        d.standby = !spec.asPrimary;
        d.upstream = spec.asPrimary ? null : spec.upstream;
        startPg(n);
      } else if ((spec.kind === 'stop' || spec.kind === 'demote') && n.pg.running) {
        stopPg(this, n, spec.kind === 'stop' ? spec.mode : spec.mode === 'graceful' || spec.mode === 'offline' ? 'fast' : 'immediate');
      }
      this.log(name, `(the ${spec.kind} already reached PostgreSQL)`);
    }
  }

  /** The postmaster dies; the agent notices (postmaster exit wakes it). */
  killPg(name: string): void {
    const n = this.node(name);
    if (!n.pg.running) return;
    n.pg.stop('immediate');
    const t = n.agent?.task;
    if (!(t?.state === 'running' && (t.kind === 'stop' || t.kind === 'demote'))) n.crashed = true;
    n.agent?.driver.postmasterExited({ code: null, signal: 'SIGKILL' });
  }

  /** Graceful stop (SIGTERM): the agent's shutdown (src/agent/shutdown.ts) on the simulated clock. */
  stop(name: string): void {
    const n = this.node(name);
    const a = n.agent;
    if (a === undefined || a.stopping) return;
    a.stopping = true;
    a.watch?.abort();
    const driver = a.driver;
    const stopped = async (): Promise<void> => {
      while (a.ticking) await this.timer(this.now + STEP_MS, a);
      await shutdown(driver);
      if (n.agent === a) this.endAgent(n);
    };
    void stopped();
    this.dirty = true;
  }

  partitionDcs(name: string, on: boolean): void {
    if (on) this.dcs.partitioned.add(name);
    else this.dcs.partitioned.delete(name);
  }

  partitionPeers(name: string, on: boolean): void {
    this.node(name).peersPartitioned = on;
  }

  dcsUp(up: boolean): void {
    this.dcs.setUp(up);
  }

  /** Undo every partition and outage; restart every dead host or agent. */
  healAll(): void {
    this.dcs.setUp(true);
    this.dcs.partitioned.clear();
    this.cuts.clear();
    for (const n of this.nodes.values()) {
      n.peersPartitioned = false;
      if (n.agent !== undefined) n.agent.frozen = false;
      if (n.agent === undefined) this.start(n.name);
    }
  }

  // ---- the network -------------------------------------------------------------------------------

  /** Can `a` reach `b` (REST, replication)? */
  reachable(a: SimNode, b: SimNode): boolean {
    return a.hostUp && b.hostUp && !a.peersPartitioned && !b.peersPartitioned && !this.cuts.has([a.name, b.name].sort().join('|'));
  }

  /** Cut (or restore) the network between two hosts only. */
  cut(a: string, b: string, on: boolean): void {
    const key = [a, b].sort().join('|');
    if (on) this.cuts.add(key);
    else this.cuts.delete(key);
  }

  /** Stop (SIGSTOP) or continue the agent process of a node; PostgreSQL and the fencer keep running. */
  freezeAgent(name: string, on: boolean): void {
    const a = this.node(name).agent;
    if (a !== undefined) a.frozen = on;
    this.dirty = true;
  }

  // ---- the clock -------------------------------------------------------------------------------

  /** Advance one step: scheduled events, fencer, leases, tasks, WAL and streaming, ticks, invariants. */
  async step(): Promise<void> {
    this.now += STEP_MS;
    while (this.scheduled[0] !== undefined && this.scheduled[0].at <= this.now) {
      const ev = this.scheduled.shift() as (typeof this.scheduled)[number];
      this.log('*', ev.label);
      ev.fn();
      await this.drain();
    }
    this.fence();
    const watches = this.dcs.pendingWatches;
    this.dcs.tick();
    if (this.dcs.pendingWatches !== watches || this.dirty) await this.drain();
    await this.fireTimers();
    physics(this, STEP_MS);
    recordAcks(this);
    const due = this.rng.shuffle([...this.nodes.values()].filter((n) => n.agent !== undefined && !n.agent.ticking && !n.agent.stopping && !n.agent.frozen && n.agent.nextTickAt <= this.now));
    for (const n of due) {
      const a = n.agent;
      if (a === undefined || a.ticking || a.stopping || a.nextTickAt > this.now) continue;
      void a.tick();
      await this.drain();
    }
    for (const n of this.nodes.values()) {
      if (n.agent === undefined || n.agent.ticking) continue;
      void n.agent.betweenTicks();
      await this.drain();
    }
    this.invariants.check();
  }

  async run(untilMs: number): Promise<void> {
    while (this.now < untilMs) await this.step();
  }

  /** Step until converged (returns the time) or until `limitMs` (returns undefined). */
  async runUntilConverged(limitMs: number): Promise<number | undefined> {
    while (this.now < limitMs) {
      await this.step();
      if (this.convergence() === undefined) return this.now;
    }
    return undefined;
  }

  /** The fencer fires: PostgreSQL is killed at the deadline whatever the agent does. */
  private fence(): void {
    for (const n of this.nodes.values()) {
      if (n.fenceDeadline === undefined || n.fenceDeadline > this.now) continue;
      n.fenceDeadline = undefined;
      if (!n.pg.running) continue;
      this.fencings++;
      this.log(n.name, 'FENCED: the fencer killed PostgreSQL (the lock was not confirmed in time)');
      n.pg.stop('immediate');
      n.crashed = true;
      n.agent?.driver.fenced();
      this.dirty = true;
    }
  }

  /** A new WAL sender's pid (each replication connection gets one). */
  newSenderPid(): number {
    return this.nextSenderPid++;
  }

  /** A new WAL branch (a promotion or an initdb starts one; ./wal.ts). */
  newBranch(): number {
    return this.nextBranch++;
  }

  /** A new system identifier (initdb). */
  newSysid(): string {
    this.sysidCounter++;
    return String(7_300_000_000_000_000_000n + BigInt(this.sysidCounter));
  }

  // ---- invariants (./invariants.ts) ----------------------------------------------------------------

  /** Writable primaries right now. */
  writablePrimaries(): string[] {
    return writablePrimaries(this);
  }

  /** Nodes whose agent believes it holds the lock (as the REST API would answer GET /primary). */
  believers(): string[] {
    return believers(this);
  }

  /** undefined when the cluster has one primary holding the lock and every other node streams from it; else why not. */
  convergence(): string | undefined {
    return convergence(this);
  }

  /** One line per node: role as PostgreSQL shows it, for transcripts. */
  summary(): string[] {
    const leader = this.dcs.leader?.value;
    const lines = [`leader: ${leader ?? 'none'}`];
    for (const n of this.nodes.values()) lines.push(`${n.name}: ${n.agent === undefined ? 'agent down, ' : ''}${n.pg.describe()}`);
    return lines;
  }
}
