// A small deterministic world for testing the decision core (tests only).
//
// Simulated clock in 100 ms steps; a simulated etcd (./dcs.ts); a simulated PostgreSQL per node
// (./pg.ts, ./wal.ts); and per node an agent that does what src/agent/agent.ts does around
// decide(): observe (cluster view, local PostgreSQL, peers during a race, the divergence check),
// decide, act in order and stop at the first failure, run one background task at a time, publish
// the member key, and wake early on a leader-key change, a task end, a postmaster exit or a failed
// action. Faults: kill a host, kill the agent only, kill PostgreSQL only, partition a node from
// the DCS or from its peers, DCS down/up, graceful stop, restart.
//
// Also modelled: the fencer (a process of its own that outlives the agent: armed with
// lock refresh + fence timeout, as src/agent/agent.ts updateFence does, it kills PostgreSQL at the
// deadline), and synchronous replication as PostgreSQL does it: synchronous_standby_names on the
// primary (FIRST n / ANY n), WAL senders with their sync_state, and which commits are
// acknowledged (the n-th best flush position of the listed, streaming standbys). With
// synchronous_mode on or quorum the world checks that no acknowledged commit is ever missing from
// a promoted node or from the lock holder's history.
//
// One seeded PRNG decides the order in which nodes tick within a step and the start jitter, so a
// run is a pure function of its seed and its script. Safety invariants are checked after every
// step; violations are collected in `violations` (the tests assert it stays empty).

import { taskPgState } from '../core/tasks.ts';
import { decide, uncleanPrimaryShutdown } from '../core/decide.ts';
import { failoverPriority, isNoFailover, nameIn, syncModeOf } from '../core/election.ts';
import { parseSsn } from '../core/sync.ts';
import { defaultConfig } from '../core/testing.ts';
import { fenceTimeout } from '../fence/deadline.ts';
import type {
  Action,
  ActionFailure,
  ClusterView,
  Decision,
  DynamicConfig,
  LocalPg,
  LocalSync,
  MemberData,
  Memory,
  Observation,
  PeerStatus,
  PgState,
  Role,
  Tags,
  TaskKind,
  TaskSpec,
  WalSender,
} from '../core/model.ts';
import { SimDcs, SimDcsUnavailable } from './dcs.ts';
import { SimPg } from './pg.ts';
import { append, isPrefix, pgCanStream, promote, truncate, walEnd, walTimeline, type Wal } from './wal.ts';

export const STEP_MS = 100;

/** How long each background task takes (simulated ms). */
export const TASK_MS: Record<TaskKind, number> = {
  bootstrap: 3000,
  clone: 5000,
  start: 2000,
  promote: 1000,
  demote: 1500,
  rewind: 3000,
  reinitialize: 6000,
  restart: 3000,
  stop: 1500,
};

/** mulberry32: small, fast, good enough for interleavings. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
    }
    return xs;
  }
}

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
}

/** One line of what happened, for transcripts. */
export interface TraceLine {
  at: number;
  node: string;
  text: string;
}

interface RunningTask {
  spec: TaskSpec;
  startedAt: number;
  endsAt: number;
  state: 'running' | 'ok' | 'failed';
  error?: string;
  cluster: ClusterView | undefined;
}

/** Decides whether to cut a plan short: return k to run only the first k actions, then crash. */
export type Interceptor = (node: string, decision: Decision, obs: Observation) => { k: number; crash: 'host' | 'agent' } | undefined;

const BASE_WALL = Date.parse('2026-01-01T00:00:00Z');

function describeAction(a: Action): string {
  switch (a.type) {
    case 'followUpstream':
      return `followUpstream(${a.upstream ?? 'none'})`;
    case 'startTask': {
      const t = a.task;
      switch (t.kind) {
        case 'clone':
        case 'rewind':
        case 'reinitialize':
          return `startTask:${t.kind}(${t.from})`;
        case 'start':
          return `startTask:start(${t.asPrimary ? 'primary' : `replica of ${t.upstream ?? 'none'}`})`;
        case 'demote':
          return `startTask:demote(${t.mode})`;
        case 'stop':
          return `startTask:stop(${t.mode}${t.releaseLeader ? ', release' : ''})`;
        default:
          return `startTask:${t.kind}`;
      }
    }
    default:
      return a.type;
  }
}


/** The agent of one node: what src/agent/agent.ts keeps between ticks. */
export class SimAgent {
  memory: Memory = {};
  cluster: ClusterView | undefined;
  lastHealthy: ClusterView | undefined;
  failures: ActionFailure[] = [];
  task: RunningTask | undefined;
  lockRefreshedAt: number | undefined;
  role: Role = 'uninitialized';
  isLeader = false;
  /** The postmaster exited on its own (agent's pgState "crashed"). */
  crashed = false;
  leaseId: number | undefined;
  lastKeepalive = -Infinity;
  nextTickAt: number;
  /** Leader-key revision being watched (undefined: not watching). */
  watchFrom: number | undefined;
  exited: string | undefined;
  lastLine = '';
  ticks = 0;
  constructor(at: number) {
    this.nextTickAt = at;
  }
}

export class SimNode {
  readonly pg = new SimPg();
  agent: SimAgent | undefined;
  hostUp = false;
  peersPartitioned = false;
  /** Vigil's synchronous_standby_names override (kept in postgresql.conf: survives restarts); null: the user's value, empty. */
  ssn: string | null = null;
  /** LocalSync.ssnSetAtLsn: the primary's LSN when the running ssn was set or first seen. */
  ssnSetAt: number | undefined;
  ssnSeen: string | undefined;
  /** Pid of the WAL sender serving this node's replication connection (new on every reconnect). */
  senderPid = 0;
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
  readonly fenceTimeoutMs: number;
  /** synchronous_mode of the (fixed) dynamic configuration. */
  readonly syncMode: 'off' | 'on' | 'quorum';
  /** The longest acknowledged histories (none is a prefix of another); sync modes only. */
  readonly ackHeads: Wal[] = [];
  /** How often the fencer killed PostgreSQL. */
  fencings = 0;
  private nextBranch = 1;
  private nextSenderPid = 1000;
  private sysidCounter = 0;
  private overlapSince: number | undefined;
  private overlapReported = false;
  private scheduled: Array<{ at: number; seq: number; label: string; fn: () => void }> = [];
  private seq = 0;

  constructor(opts: WorldOptions) {
    this.rng = new Rng(opts.seed);
    this.config = defaultConfig(opts.config);
    this.writeRate = opts.writeRate ?? 20000;
    this.fencing = opts.fencing ?? true;
    this.fenceTimeoutMs = fenceTimeout({ ttl: this.config.ttl, loopWait: this.config.loop_wait, safetyMargin: 5 }).timeoutMs;
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

  // ---- faults and lifecycle --------------------------------------------------------------------

  /** Start the agent (and the host) of a node; PostgreSQL is left as it is. */
  start(name: string): void {
    const n = this.node(name);
    if (n.agent !== undefined) return;
    n.hostUp = true;
    n.agent = new SimAgent(this.now + this.rng.int(10) * STEP_MS);
  }

  /** The host dies: agent and PostgreSQL gone at once (unclean), lease left to expire. */
  kill(name: string): void {
    const n = this.node(name);
    n.agent = undefined;
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
    const t = n.agent?.task;
    n.agent = undefined;
    if (t?.state === 'running' && this.rng.next() < 0.5) {
      const d = n.pg.data;
      if (t.spec.kind === 'promote' && n.pg.running && d?.standby === true) this.promotePg(n);
      else if (t.spec.kind === 'start' && d !== undefined && !n.pg.running) {
        d.standby = !t.spec.asPrimary;
        d.upstream = t.spec.asPrimary ? null : t.spec.upstream;
        n.pg.start();
      } else if ((t.spec.kind === 'stop' || t.spec.kind === 'demote') && n.pg.running) {
        this.stopPg(n, t.spec.kind === 'stop' ? t.spec.mode : t.spec.mode === 'graceful' || t.spec.mode === 'offline' ? 'fast' : 'immediate');
      }
      this.log(name, `(the ${t.spec.kind} already reached PostgreSQL)`);
    }
  }

  /** The postmaster dies; the agent notices (postmaster exit wakes it). */
  killPg(name: string): void {
    const n = this.node(name);
    if (!n.pg.running) return;
    n.pg.stop('immediate');
    const a = n.agent;
    if (a !== undefined && !(a.task?.state === 'running' && (a.task.spec.kind === 'stop' || a.task.spec.kind === 'demote'))) {
      a.crashed = true;
      a.nextTickAt = Math.min(a.nextTickAt, this.now);
    }
  }

  /** Graceful stop (SIGTERM), as Agent.stop(): cancel the task, stop PostgreSQL, then release. */
  stop(name: string): void {
    const n = this.node(name);
    const a = n.agent;
    if (a === undefined) return;
    const t = a.task;
    a.task = undefined;
    const tryDcs = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof SimDcsUnavailable)) throw err;
      }
    };
    if (t?.spec.kind === 'bootstrap' && t.state === 'running') {
      n.pg.stop('immediate');
      tryDcs(() => this.dcs.deleteInitialize(name));
      n.pg.data = undefined;
    }
    this.stopPg(n, 'fast');
    n.fenceDeadline = undefined;
    if (a.cluster?.leader?.name === name) tryDcs(() => this.dcs.releaseLeader(name));
    tryDcs(() => this.dcs.deleteMember(name));
    if (a.leaseId !== undefined) tryDcs(() => this.dcs.revokeAs(name, a.leaseId as number));
    n.agent = undefined;
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
    for (const n of this.nodes.values()) {
      n.peersPartitioned = false;
      if (n.agent === undefined) this.start(n.name);
    }
  }

  // ---- the network -------------------------------------------------------------------------------

  /** Can `a` reach `b` (REST, replication)? */
  reachable(a: SimNode, b: SimNode): boolean {
    return a.hostUp && b.hostUp && !a.peersPartitioned && !b.peersPartitioned;
  }

  // ---- PostgreSQL side effects shared by tasks and faults --------------------------------------

  /** Stop PostgreSQL; a clean stop lets streaming replicas receive everything first. */
  stopPg(n: SimNode, mode: 'fast' | 'immediate'): void {
    const d = n.pg.data;
    if (mode === 'fast' && n.pg.running && d !== undefined) {
      for (const r of this.nodes.values()) {
        const rd = r.pg.data;
        if (r === n || rd === undefined || !r.pg.running || !rd.standby || rd.upstream !== n.name || !this.reachable(r, n)) continue;
        if (pgCanStream(rd.wal, d.wal) && isPrefix(rd.wal, d.wal)) rd.wal = truncate(d.wal, walEnd(d.wal));
      }
    }
    n.pg.stop(mode);
  }

  promotePg(n: SimNode): void {
    const d = n.pg.data;
    if (d === undefined) return;
    if (this.syncMode !== 'off') {
      for (const h of this.ackHeads) {
        if (!isPrefix(h, d.wal)) this.violation(`acknowledged commits lost: ${n.name} promoted at tl${walTimeline(d.wal)}@${walEnd(d.wal)} without the acknowledged history up to tl${walTimeline(h)}@${walEnd(h)}`);
      }
    }
    d.wal = promote(d.wal, this.nextBranch++);
    d.standby = false;
    d.upstream = null;
    d.controlState = 'in production';
  }

  newSysid(): string {
    this.sysidCounter++;
    return String(7_300_000_000_000_000_000n + BigInt(this.sysidCounter));
  }

  // ---- observe -----------------------------------------------------------------------------------

  localPg(n: SimNode, a: SimAgent): LocalPg {
    const pg = n.pg;
    const d = pg.data;
    const lsn = pg.running ? pg.lsn : undefined;
    return {
      dataDirEmpty: d === undefined,
      sysid: d?.sysid,
      running: pg.running,
      ready: pg.running,
      inRecovery: d?.standby ?? false,
      walLsn: lsn,
      receiveLsn: d?.standby === true ? lsn : undefined,
      replayLsn: d?.standby === true ? lsn : undefined,
      timeline: pg.timeline,
      streaming: pg.running && pg.streaming,
      upstream: d?.upstream ?? null,
      controlState: d?.controlState,
      rewindable: n.opts.rewindable ?? true,
      crashed: a.crashed,
    };
  }

  // ---- synchronous replication, as PostgreSQL does it ------------------------------------------

  /** The running synchronous_standby_names of a node ('' unless Vigil set one). */
  runningSsn(n: SimNode): string {
    return n.ssn ?? '';
  }

  /** Standbys streaming straight from `p`, with pg_stat_replication's sync_state. */
  senders(p: SimNode): WalSender[] {
    const ssn = parseSsn(this.runningSsn(p));
    const streaming = [...this.nodes.values()].filter((r) => r !== p && r.pg.running && r.pg.streaming && r.pg.data?.standby === true && r.pg.data.upstream === p.name);
    const listed = ssn.names.flatMap((name) => streaming.filter((r) => nameIn([name], r.name)));
    const syncNow = ssn.kind === 'priority' ? listed.slice(0, ssn.num) : [];
    return streaming.map((r) => {
      const lsn = walEnd((r.pg.data as NonNullable<SimPg['data']>).wal);
      let syncState = 'async';
      if (ssn.kind === 'quorum' && listed.includes(r)) syncState = 'quorum';
      else if (ssn.kind === 'priority' && syncNow.includes(r)) syncState = 'sync';
      else if (ssn.kind === 'priority' && listed.includes(r)) syncState = 'potential';
      return { pid: r.senderPid, name: r.name, state: 'streaming', syncState, writeLsn: lsn, flushLsn: lsn, replayLsn: lsn };
    });
  }

  /** What the agent's probe reports on a running primary (PostgresController.syncFacts). */
  private localSync(n: SimNode): LocalSync {
    const ssn = this.runningSsn(n);
    if (ssn !== n.ssnSeen) {
      n.ssnSeen = ssn;
      n.ssnSetAt = n.pg.lsn;
    }
    return { ssn, managed: n.ssn !== null, synchronousCommit: 'on', senders: this.senders(n), ssnSetAtLsn: n.ssnSetAt };
  }

  /**
   * The LSN up to which commits on primary `p` are acknowledged to clients right now: its own end
   * with an empty ssn; else the position PostgreSQL waits for (FIRST n: the lowest of the n
   * highest-priority streaming standbys; ANY n: the n-th highest of the listed ones); undefined
   * while fewer than n of them stream (commits wait).
   */
  ackLsn(p: SimNode): number | undefined {
    const ssn = parseSsn(this.runningSsn(p));
    if (ssn.kind === 'empty') return p.pg.lsn;
    if (ssn.kind === 'invalid') {
      this.violation(`${p.name} runs an invalid synchronous_standby_names: ${ssn.error}`);
      return undefined;
    }
    const senders = this.senders(p);
    const wanted = ssn.kind === 'priority' ? senders.filter((x) => x.syncState === 'sync') : senders.filter((x) => x.syncState === 'quorum');
    if (wanted.length < ssn.num) return undefined;
    const lsns = wanted.map((x) => x.flushLsn ?? 0).sort((x, y) => y - x);
    return ssn.kind === 'priority' ? Math.min(...lsns) : lsns[ssn.num - 1];
  }

  /** Record what writable primaries acknowledged in this step (sync modes). */
  private recordAcks(): void {
    if (this.syncMode === 'off') return;
    for (const p of this.nodes.values()) {
      const d = p.pg.data;
      if (!p.pg.writable || d === undefined) continue;
      const lsn = this.ackLsn(p);
      if (lsn === undefined) continue;
      const head = truncate(d.wal, lsn);
      if (this.ackHeads.some((h) => isPrefix(head, h))) continue;
      for (let i = this.ackHeads.length - 1; i >= 0; i--) if (isPrefix(this.ackHeads[i] as Wal, head)) this.ackHeads.splice(i, 1);
      this.ackHeads.push(head);
    }
  }

  // ---- the fencer ------------------------------------------------------------------------------

  /** Agent.updateFence after a tick: arm on a confirmed lock, disarm once PostgreSQL is down or read-only. */
  private updateFence(n: SimNode, a: SimAgent, obs: Observation, decision: Decision): void {
    if (!this.fencing) return;
    const running = a.task?.state === 'running' ? a.task.spec.kind : undefined;
    const starting = (running === 'start' || running === 'restart') && decision.isLeader && a.lockRefreshedAt !== undefined;
    const paused = this.config.pause === true;
    if (paused) n.fenceDeadline = undefined;
    else if (decision.isLeader && a.lockRefreshedAt !== undefined && (obs.pg.running || starting)) n.fenceDeadline = a.lockRefreshedAt + this.fenceTimeoutMs;
    else if (!obs.pg.running) n.fenceDeadline = undefined;
    else if (obs.pg.inRecovery && running !== 'promote') n.fenceDeadline = undefined;
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
      const a = n.agent;
      if (a !== undefined) {
        a.crashed = true;
        a.nextTickAt = Math.min(a.nextTickAt, this.now);
      }
    }
  }

  /** GET /patroni on `to`, as seen from `from` (what api/peers.ts would parse). */
  peerStatus(from: SimNode, to: SimNode): PeerStatus {
    const unreachable: PeerStatus = { name: to.name, reachable: false, inRecovery: true, walPosition: 0, timeline: undefined, nofailover: false, failoverPriority: 1, watchdogFailed: false };
    const a = to.agent;
    if (a === undefined || a.exited !== undefined || !this.reachable(from, to)) return unreachable;
    const isPrimary = a.role === 'primary' || to.pg.writable;
    if (!isPrimary && !to.pg.running) return unreachable; // no xlog in the answer: Patroni ignores it
    const nofailover = isNoFailover(to.tags);
    return {
      name: to.name,
      reachable: true,
      inRecovery: !isPrimary,
      walPosition: isPrimary ? 0 : (to.pg.lsn ?? 0),
      timeline: to.pg.timeline,
      nofailover,
      failoverPriority: nofailover ? 0 : failoverPriority(to.tags),
      watchdogFailed: false,
    };
  }

  /** Agent.observeDivergence, with an idealised pg_rewind check (true WAL comparison). */
  private divergence(n: SimNode, cluster: ClusterView, pg: LocalPg): void {
    const leader = cluster.leader?.name;
    const lm = cluster.members.find((m) => m.name === leader);
    if (leader === undefined || leader === n.name || lm?.data.conn_url === undefined || lm.data.role !== 'primary' || pg.dataDirEmpty) return;
    const leaderTl = typeof lm.data.timeline === 'number' ? lm.data.timeline : undefined;
    const stoppedWithData = !pg.running;
    const stuckReplica = pg.running && pg.ready && pg.inRecovery && !pg.streaming && leaderTl !== undefined && pg.timeline !== undefined && leaderTl > pg.timeline;
    if (!stoppedWithData && !stuckReplica) return;
    if (stoppedWithData && uncleanPrimaryShutdown(pg)) return;
    const ln = this.nodes.get(leader);
    const ld = ln?.pg.data;
    const mine = n.pg.data;
    if (ln === undefined || ld === undefined || mine === undefined || !ln.pg.running || !this.reachable(n, ln)) return; // could not ask
    pg.divergence = isPrefix(mine.wal, ld.wal) ? 'not_needed' : 'need';
  }

  private memberData(n: SimNode, a: SimAgent): MemberData {
    const t = a.task;
    const state: PgState = (t?.state === 'running' ? taskPgState(t.spec.kind) : undefined) ?? (n.pg.running ? 'running' : a.crashed ? 'crashed' : 'stopped');
    const data: MemberData = {
      conn_url: `postgres://${n.name}:5432/postgres`,
      api_url: `http://${n.name}:8008/patroni`,
      state,
      role: a.role === 'promoted' ? 'primary' : a.role,
      version: '4.1.4',
    };
    if (Object.keys(n.tags).length > 0) data.tags = { ...n.tags };
    if ((state === 'running' || state === 'starting') && n.pg.running) {
      const lsn = n.pg.lsn;
      if (lsn !== undefined) data.xlog_location = lsn;
      if (n.pg.data?.standby === true) {
        data.replay_lsn = lsn;
        data.receive_lsn = lsn;
        if (n.pg.streaming) data.replication_state = 'streaming';
      }
      const tl = n.pg.timeline;
      if (tl !== undefined) data.timeline = tl;
    }
    return data;
  }

  private observe(n: SimNode, a: SimAgent): Observation {
    let cluster: ClusterView | undefined;
    let dcsError: string | undefined;
    try {
      cluster = this.dcs.readCluster(n.name);
      a.cluster = cluster;
      if (cluster.leader !== undefined) a.lastHealthy = cluster;
    } catch (err) {
      if (!(err instanceof SimDcsUnavailable)) throw err;
      dcsError = err.message;
    }
    if (n.pg.running) a.crashed = false;
    const pg = this.localPg(n, a);
    if (pg.running && !pg.inRecovery) pg.sync = this.localSync(n);
    else {
      n.ssnSeen = undefined;
      n.ssnSetAt = undefined;
    }
    const obs: Observation = {
      now: this.now,
      wallClock: new Date(BASE_WALL + this.now).toISOString(),
      self: {
        name: n.name,
        tags: n.tags,
        canBootstrap: n.opts.canBootstrap ?? true,
        bootstrapDcs: { ttl: this.config.ttl, loop_wait: this.config.loop_wait, retry_timeout: this.config.retry_timeout },
        remove_data_directory_on_rewind_failure: false,
        remove_data_directory_on_diverged_timelines: false,
      },
      config: this.config,
      cluster,
      pg,
      task: a.task === undefined ? undefined : { kind: a.task.spec.kind, startedAt: a.task.startedAt, state: a.task.state, ...(a.task.error !== undefined ? { error: a.task.error } : {}), ...('from' in a.task.spec ? { from: a.task.spec.from } : {}), ...(a.task.state === 'failed' && /could not connect/.test(a.task.error ?? '') ? { transient: true } : {}) },
      failures: a.failures,
      memory: a.memory,
    };
    if (dcsError !== undefined) obs.dcsError = dcsError;
    if (a.lastHealthy !== undefined) obs.lastHealthyCluster = a.lastHealthy;
    if (a.lockRefreshedAt !== undefined) obs.lockRefreshedAt = a.lockRefreshedAt;
    if (cluster !== undefined) {
      const raceMatters = cluster.leader === undefined && pg.running && pg.inRecovery && a.task?.state !== 'running';
      if (raceMatters) {
        const names = new Set<string>();
        for (const view of [a.lastHealthy, cluster]) for (const m of view?.members ?? []) if (m.name !== n.name && m.data.api_url !== undefined) names.add(m.name);
        obs.peers = [...names].sort().map((name) => {
          const to = this.nodes.get(name);
          return to === undefined ? { name, reachable: false, inRecovery: true, walPosition: 0, timeline: undefined, nofailover: false, failoverPriority: 1, watchdogFailed: false } : this.peerStatus(n, to);
        });
      }
      this.divergence(n, cluster, pg);
    }
    return obs;
  }

  // ---- act -------------------------------------------------------------------------------------

  private lease(n: SimNode, a: SimAgent, force: boolean): number {
    const ttlMs = this.config.ttl * 1000;
    if (a.leaseId === undefined) {
      a.leaseId = this.dcs.grant(n.name, ttlMs);
      a.lastKeepalive = this.now;
    } else if (force || this.now - a.lastKeepalive >= 1000) {
      if (!this.dcs.keepalive(n.name, a.leaseId)) a.leaseId = this.dcs.grant(n.name, ttlMs);
      a.lastKeepalive = this.now;
    }
    return a.leaseId;
  }

  private upstreamKnown(cluster: ClusterView | undefined, name: string | null): void {
    if (name === null) return;
    if (cluster?.members.find((m) => m.name === name)?.data.conn_url === undefined) throw new Error(`member ${name} has no conn_url in the DCS`);
  }

  /** One action; false: a compare-and-set failed. */
  private runAction(n: SimNode, a: SimAgent, action: Action, obs: Observation): boolean | void {
    const me = n.name;
    switch (action.type) {
      case 'createInitialize':
        return this.dcs.createInitialize(me);
      case 'writeInitialize':
        return this.dcs.writeInitialize(me, action.sysid);
      case 'deleteInitialize':
        return this.dcs.deleteInitialize(me);
      case 'writeConfig':
        return this.dcs.writeConfig(me, action.config);
      case 'acquireLeader': {
        const ok = this.dcs.acquireLeader(me, this.lease(n, a, true));
        if (ok) a.lockRefreshedAt = this.now;
        return ok;
      }
      case 'takeLeader':
        this.dcs.takeLeader(me, this.lease(n, a, true));
        a.lockRefreshedAt = this.now;
        return;
      case 'refreshLeader': {
        const ok = this.dcs.refreshLeader(me, this.lease(n, a, true));
        a.lockRefreshedAt = ok ? this.now : undefined;
        return ok;
      }
      case 'releaseLeader':
        a.lockRefreshedAt = undefined;
        if (action.optime !== undefined) this.dcs.writeStatus(me, { optime: action.optime });
        this.dcs.releaseLeader(me);
        return;
      case 'writeStatus':
        return this.dcs.writeStatus(me, action.status);
      case 'writeHistory':
        return this.dcs.writeHistory(me, action.history);
      case 'clearFailover':
        return this.dcs.writeFailover(me, {});
      case 'writeSync':
        return this.dcs.writeSync(me, { leader: action.leader, quorum: action.quorum, sync_standby: action.syncStandby.length > 0 ? [...action.syncStandby].sort().join(',') : null }, action.version);
      case 'deleteSync':
        return this.dcs.deleteSync(me, action.version);
      case 'setSyncStandbyNames':
        // PostgresController.setSyncStandbyNames: kept in postgresql.conf; on a running primary it
        // is reloaded and its LSN recorded (the dummy transaction is not modelled).
        n.ssn = action.value;
        if (n.pg.writable) {
          n.ssnSeen = this.runningSsn(n);
          n.ssnSetAt = n.pg.lsn;
        }
        return;
      case 'writeFailsafe':
        return; // failsafe mode is not modelled
      case 'followUpstream': {
        this.upstreamKnown(obs.cluster ?? a.cluster, action.upstream);
        const d = n.pg.data;
        if (d === undefined) throw new Error('no data directory');
        d.upstream = action.upstream;
        d.standby = true;
        return;
      }
      case 'ensureSlots':
        return;
      case 'removeDataDir':
        n.pg.stop('immediate');
        n.pg.data = undefined;
        return;
      case 'cancelTask':
        if (a.task?.state === 'running') a.task = undefined;
        return;
      case 'startTask':
        return this.startTask(n, a, action.task, obs.cluster);
    }
  }

  private startTask(n: SimNode, a: SimAgent, spec: TaskSpec, cluster: ClusterView | undefined): void {
    if (a.task?.state === 'running') throw new Error(`${a.task.spec.kind} already in progress`);
    a.task = { spec, startedAt: this.now, endsAt: this.now + TASK_MS[spec.kind], state: 'running', cluster };
    if (spec.kind === 'bootstrap') {
      // initdb writes the data directory (and its system identifier) at once; the start follows.
      this.initdbs++;
      n.pg.data = { sysid: this.newSysid(), wal: [{ branch: this.nextBranch++, tl: 1, start: 0, end: 1000 }], standby: false, upstream: null, controlState: 'shut down' };
    }
  }

  /** The end of a background task: its effect on PostgreSQL (and the DCS for some). */
  private finishTask(n: SimNode, a: SimAgent): void {
    const t = a.task as RunningTask;
    const spec = t.spec;
    const me = n.name;
    const source = (from: string): SimNode => {
      this.upstreamKnown(t.cluster, from);
      const s = this.nodes.get(from);
      if (s === undefined || s.pg.data === undefined || !s.pg.running || !this.reachable(n, s)) throw new Error(`could not connect to ${from}`);
      return s;
    };
    const copyFrom = (s: SimNode): void => {
      const sd = s.pg.data as NonNullable<SimPg['data']>;
      n.pg.stop('immediate');
      n.pg.data = { sysid: sd.sysid, wal: truncate(sd.wal, walEnd(sd.wal)), standby: true, upstream: s.name, controlState: 'shut down in recovery' };
      n.pg.start();
    };
    try {
      switch (spec.kind) {
        case 'bootstrap':
          n.pg.start();
          break;
        case 'clone':
        case 'reinitialize':
          copyFrom(source(spec.from));
          break;
        case 'rewind': {
          const s = source(spec.from);
          const d = n.pg.data;
          if (d === undefined || s.pg.data?.sysid !== d.sysid) throw new Error('pg_rewind: source and target clusters are from different systems');
          copyFrom(s);
          break;
        }
        case 'start': {
          const d = n.pg.data;
          if (d === undefined) throw new Error('data directory is empty');
          if (!spec.asPrimary) this.upstreamKnown(t.cluster, spec.upstream);
          d.standby = !spec.asPrimary;
          d.upstream = spec.asPrimary ? null : spec.upstream;
          n.pg.start();
          break;
        }
        case 'restart':
          this.stopPg(n, 'fast');
          n.pg.start();
          break;
        case 'promote': {
          if (!n.pg.running) throw new Error('postgres is not running');
          if (n.pg.data?.standby === true) this.promotePg(n);
          const wal = n.pg.data?.wal ?? [];
          try {
            this.dcs.writeHistory(me, wal.slice(0, -1).map((s): [number, number, string] => [s.tl, s.end, 'no recovery target specified']));
          } catch (err) {
            if (!(err instanceof SimDcsUnavailable)) throw err;
          }
          break;
        }
        case 'demote': {
          const graceful = spec.mode === 'graceful';
          this.stopPg(n, graceful || spec.mode === 'offline' ? 'fast' : 'immediate');
          if (graceful) {
            a.lockRefreshedAt = undefined;
            const lsn = n.pg.lsn;
            try {
              if (lsn !== undefined) this.dcs.writeStatus(me, { optime: lsn });
            } catch {
              // as the agent: ignored
            }
            this.dcs.releaseLeader(me);
          }
          if (spec.mode === 'offline') {
            const d = n.pg.data;
            if (d !== undefined) {
              d.standby = true;
              d.upstream = null;
              n.pg.start();
            }
          }
          break;
        }
        case 'stop':
          this.stopPg(n, spec.mode);
          if (spec.releaseLeader) {
            a.lockRefreshedAt = undefined;
            this.dcs.releaseLeader(me);
          }
          break;
      }
      t.state = 'ok';
    } catch (err) {
      t.state = 'failed';
      t.error = err instanceof Error ? err.message : String(err);
    }
    if (n.pg.running) a.crashed = false;
    this.log(me, `task ${spec.kind} ${t.state}${t.error !== undefined ? `: ${t.error}` : ''}`);
    a.nextTickAt = Math.min(a.nextTickAt, this.now);
  }

  // ---- one tick of one agent ------------------------------------------------------------------

  private tick(n: SimNode, a: SimAgent): void {
    a.ticks++;
    const obs = this.observe(n, a);
    let decision: Decision;
    try {
      decision = decide(obs);
    } catch (err) {
      this.violation(`decide() threw on ${n.name}: ${err instanceof Error ? err.message : String(err)}`);
      a.nextTickAt = this.now + 1000;
      return;
    }
    this.decisions.push({ at: this.now, node: n.name, decision });
    a.memory = decision.memory;
    a.role = decision.role;
    a.isLeader = decision.isLeader;
    if (!decision.isLeader) a.lockRefreshedAt = undefined;

    if (decision.exit !== undefined) {
      a.exited = decision.exit;
      this.log(n.name, `exit: ${decision.exit}`);
      if (!this.allowExit) this.violation(`${n.name} exited: ${decision.exit}`);
      n.agent = undefined;
      return;
    }
    if (a.task !== undefined && a.task.state !== 'running') a.task = undefined;

    const cut = this.intercept?.(n.name, decision, obs);
    const actions = cut === undefined ? decision.actions : decision.actions.slice(0, cut.k);
    const failures: ActionFailure[] = [];
    const shown: string[] = [];
    for (const action of actions) {
      let outcome: ActionFailure['outcome'] | undefined;
      let message = '';
      try {
        if (this.runAction(n, a, action, obs) === false) {
          outcome = 'lost';
          message = `${action.type}: precondition no longer holds`;
        }
      } catch (err) {
        message = err instanceof Error ? err.message : String(err);
        outcome = err instanceof SimDcsUnavailable ? 'unreachable' : 'error';
        if (action.type === 'refreshLeader' || action.type === 'acquireLeader' || action.type === 'takeLeader') a.lockRefreshedAt = undefined;
      }
      shown.push(describeAction(action) + (outcome !== undefined ? `!${outcome}` : ''));
      if (outcome !== undefined) {
        failures.push({ action: action.type, outcome, message });
        break;
      }
    }
    a.failures = failures;
    this.updateFence(n, a, obs, decision);
    const line = `${shown.join(' ') || '-'}  # ${decision.reason}`;
    if (cut !== undefined) {
      this.log(n.name, `${shown.join(' ') || '-'}  # (plan cut after ${cut.k} of ${decision.actions.length}) ${decision.reason}`);
      this.log(n.name, `CRASH (${cut.crash})`);
      if (cut.crash === 'host') this.kill(n.name);
      else this.killAgent(n.name);
      return;
    }
    if (line !== a.lastLine || failures.length > 0) this.log(n.name, line);
    a.lastLine = line;

    if (obs.cluster !== undefined) {
      try {
        this.dcs.touchMember(n.name, this.lease(n, a, false), this.memberData(n, a));
      } catch (err) {
        if (!(err instanceof SimDcsUnavailable)) throw err;
      }
    }
    let wake = Math.max(decision.wakeAfterMs, STEP_MS);
    if (failures.length > 0) wake = Math.min(wake, STEP_MS);
    a.nextTickAt = this.now + Math.ceil(wake / STEP_MS) * STEP_MS;
    const holdLock = obs.cluster?.leader?.name === n.name;
    a.watchFrom = obs.cluster?.leader !== undefined && !holdLock && a.task?.state !== 'running' ? this.dcs.leaderRevision : undefined;
  }

  // ---- the clock -------------------------------------------------------------------------------

  /** Advance one step: scheduled events, leases, tasks, WAL and streaming, ticks, invariants. */
  step(): void {
    this.now += STEP_MS;
    while (this.scheduled[0] !== undefined && this.scheduled[0].at <= this.now) {
      const ev = this.scheduled.shift() as (typeof this.scheduled)[number];
      this.log('*', ev.label);
      ev.fn();
    }
    this.fence();
    this.dcs.expire();
    for (const n of this.nodes.values()) {
      const a = n.agent;
      if (a?.task?.state === 'running' && a.task.endsAt <= this.now) this.finishTask(n, a);
    }
    this.physics(STEP_MS);
    this.recordAcks();
    // Watches: a node that watches the leader key wakes when it changes (if it can see the DCS).
    for (const n of this.nodes.values()) {
      const a = n.agent;
      if (a?.watchFrom !== undefined && this.dcs.up && !this.dcs.partitioned.has(n.name) && this.dcs.leaderRevision > a.watchFrom) {
        a.watchFrom = undefined;
        a.nextTickAt = Math.min(a.nextTickAt, this.now);
      }
    }
    const due = this.rng.shuffle([...this.nodes.values()].filter((n) => n.agent !== undefined && (n.agent as SimAgent).nextTickAt <= this.now));
    for (const n of due) {
      const a = n.agent;
      if (a !== undefined && a.nextTickAt <= this.now) this.tick(n, a);
    }
    this.checkInvariants();
  }

  run(untilMs: number): void {
    while (this.now < untilMs) this.step();
  }

  /** Step until converged (returns the time) or until `limitMs` (returns undefined). */
  runUntilConverged(limitMs: number): number | undefined {
    while (this.now < limitMs) {
      this.step();
      if (this.convergence() === undefined) return this.now;
    }
    return undefined;
  }

  private physics(dtMs: number): void {
    for (const n of this.nodes.values()) {
      const d = n.pg.data;
      if (this.writing && n.pg.writable && d !== undefined) d.wal = append(d.wal, Math.round((this.writeRate * dtMs) / 1000));
    }
    for (const n of [...this.nodes.values()].sort((x, y) => x.name.localeCompare(y.name))) {
      const d = n.pg.data;
      if (!n.pg.running || d === undefined || !d.standby || d.upstream === null) {
        n.pg.streaming = false;
        continue;
      }
      const u = this.nodes.get(d.upstream);
      const ud = u?.pg.data;
      if (u === undefined || ud === undefined || !u.pg.running || ud.sysid !== d.sysid || !this.reachable(n, u) || !pgCanStream(d.wal, ud.wal)) {
        n.pg.streaming = false;
        continue;
      }
      if (!isPrefix(d.wal, ud.wal)) this.violation(`${n.name} streams from ${u.name} over a diverged history (tl${walTimeline(d.wal)}@${walEnd(d.wal)} vs tl${walTimeline(ud.wal)})`);
      if (!n.pg.streaming) n.senderPid = this.nextSenderPid++;
      n.pg.streaming = true;
      const lag = u.pg.writable && this.writing ? (n.opts.lagBytes ?? 4000) : 0;
      const target = Math.max(walEnd(d.wal), walEnd(ud.wal) - lag);
      if (target > walEnd(d.wal) || walTimeline(d.wal) !== walTimeline(truncate(ud.wal, target))) d.wal = truncate(ud.wal, target);
    }
  }

  // ---- invariants --------------------------------------------------------------------------------

  /** Writable primaries right now. */
  writablePrimaries(): string[] {
    return [...this.nodes.values()].filter((n) => n.pg.writable).map((n) => n.name);
  }

  /** Nodes whose agent believes it holds the lock (as the REST API would answer GET /primary). */
  believers(): string[] {
    const ttlMs = this.config.ttl * 1000;
    return [...this.nodes.values()]
      .filter((n) => n.agent !== undefined && n.agent.isLeader && n.agent.lockRefreshedAt !== undefined && this.now - n.agent.lockRefreshedAt < ttlMs)
      .map((n) => n.name);
  }

  fenceMs(): number {
    return (this.config.loop_wait + 2 * this.config.retry_timeout) * 1000;
  }

  private checkInvariants(): void {
    const writable = this.writablePrimaries();
    const believing = writable.filter((w) => this.believers().includes(w));
    if (believing.length >= 2) this.violation(`split brain: ${believing.join(' and ')} are writable primaries that both believe they hold the lock`);
    // With the fencer a primary is dead before its lock can expire, so a second one never overlaps.
    if (this.fencing && writable.length >= 2) this.violation(`${writable.join(' and ')} are writable primaries at once (fencing is on)`);
    if (this.syncMode !== 'off') {
      const holder = this.dcs.leader === undefined ? undefined : this.nodes.get(this.dcs.leader.value);
      const hd = holder?.pg.data;
      if (holder !== undefined && hd !== undefined && holder.pg.writable) {
        for (const h of this.ackHeads) {
          if (!isPrefix(h, hd.wal)) this.violation(`acknowledged commits lost: the lock holder ${holder.name} (tl${walTimeline(hd.wal)}@${walEnd(hd.wal)}) lacks the acknowledged history up to tl${walTimeline(h)}@${walEnd(h)}`);
        }
      }
    }
    if (writable.length >= 2) {
      this.overlapSince ??= this.now;
      if (!this.overlapReported && this.now - this.overlapSince > this.fenceMs()) {
        this.overlapReported = true;
        this.violation(`${writable.join(' and ')} have been writable primaries at once for more than loop_wait + 2*retry_timeout`);
      }
    } else {
      this.overlapSince = undefined;
      this.overlapReported = false;
    }
    const sysids = new Set<string>();
    for (const n of this.nodes.values()) if (n.pg.data !== undefined) sysids.add(n.pg.data.sysid);
    const init = this.dcs.initialize?.value;
    if (init !== undefined && init !== '') sysids.add(init);
    if (sysids.size > 1) this.violation(`more than one system identifier: ${[...sysids].join(', ')}`);
    if (this.initdbs > 1) this.violation(`initdb ran ${this.initdbs} times`);
  }

  /** undefined when the cluster has one primary holding the lock and every other node streams from it; else why not. */
  convergence(): string | undefined {
    const leader = this.dcs.leader?.value;
    if (!this.dcs.up) return 'the DCS is down';
    if (leader === undefined) return 'no leader key';
    const ln = this.nodes.get(leader);
    if (ln === undefined || !ln.pg.writable || ln.agent === undefined) return `leader ${leader} is not a running primary`;
    const writable = this.writablePrimaries();
    if (writable.length !== 1) return `writable primaries: ${writable.join(', ')}`;
    for (const n of this.nodes.values()) {
      if (n === ln) continue;
      const a = n.agent;
      if (a === undefined) return `${n.name} has no agent`;
      if (a.task?.state === 'running') return `${n.name} runs ${a.task.spec.kind}`;
      const d = n.pg.data;
      if (!n.pg.running || d === undefined || !d.standby) return `${n.name} is not a running replica (${n.pg.describe()})`;
      const rf = n.tags.replicatefrom;
      const expected = typeof rf === 'string' && this.nodes.has(rf) && rf !== n.name ? rf : leader;
      if (d.upstream !== expected) return `${n.name} follows ${d.upstream ?? 'nobody'}, not ${expected}`;
      if (!n.pg.streaming) return `${n.name} does not stream from ${expected}`;
    }
    return undefined;
  }

  /** One line per node: role as PostgreSQL shows it, for transcripts. */
  summary(): string[] {
    const leader = this.dcs.leader?.value;
    const lines = [`leader: ${leader ?? 'none'}`];
    for (const n of this.nodes.values()) lines.push(`${n.name}: ${n.agent === undefined ? 'agent down, ' : ''}${n.pg.describe()}`);
    return lines;
  }
}
