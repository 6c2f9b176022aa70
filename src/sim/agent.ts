// The agent process of one simulated node (tests only): production's node driver
// (src/agent/driver.ts) over the simulated ports (./ports.ts), and the loop around it that
// src/agent/agent.ts runs with real timers: tick, then wait for the wake-up time, a leader-key
// change (DCS watch), or an early wake (task end, postmaster exit, fence). Ticks and waits run on
// the world's simulated clock; the world decides when a due agent ticks (./world.ts step()).

import { NodeDriver, type TickResult } from '../agent/driver.ts';
import { FastFailover } from '../agent/fast-failover.ts';
import { keepAlivePeriodMs } from '../core/fast-failover.ts';
import type { Config } from '../config/types.ts';
import type { Decision, Observation } from '../core/model.ts';
import { SimDcsClient } from './dcs-client.ts';
import { simFastPeers } from './fast-peers.ts';
import { simClock, simFencePort, simHooksPort, simPeersPort, simPgPort, type Incarnation } from './ports.ts';
import { STEP_MS, type SimNode, type World } from './world.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

export class SimAgent implements Incarnation {
  alive = true;
  readonly driver: NodeDriver;
  readonly dcs: SimDcsClient;
  nextTickAt: number;
  /** A tick is in progress (it may wait on the simulated clock). */
  ticking = false;
  /** Woken while ticking: tick again at the next step. */
  private wokenWhileTicking = false;
  /** A graceful stop is in progress. */
  stopping = false;
  watch: AbortController | undefined;
  /** decide() said the agent must exit. */
  exited: string | undefined;
  lastLine = '';
  ticks = 0;
  /** When the snapshot refresher's stand-in next probes (src/agent/agent.ts refreshLoop: each second). */
  nextWatchAt = 0;
  /** When the lease keep-alive next runs (World leaseKeepAliveMs; src/agent/agent.ts keepAliveLoop). */
  nextKeepAliveAt = 0;
  isLeader = false;
  /** The agent process is stopped (SIGSTOP): no tick, no timer of its own fires, its REST API does not answer. */
  frozen = false;
  /** The fast failover's shell (src/agent/fast-failover.ts) and its step in flight (a tick waits for it). */
  readonly fast: FastFailover;
  private fastRun: Promise<void> | undefined;
  private nextFastAt = 0;
  /** Set by the world's interceptor for the running tick. */
  private crash: 'host' | 'agent' | undefined;

  constructor(
    private readonly w: World,
    private readonly n: SimNode,
    at: number,
  ) {
    this.nextTickAt = at;
    this.dcs = new SimDcsClient(w.dcs, n.name, { ttl: w.config.ttl, retryTimeout: w.config.retry_timeout });
    this.fast = new FastFailover(() => this.driver, simFastPeers(w, n, this), {
      mutations: w.fastMutations,
      // The promise outlives the agent process (the production file next to the data directory).
      store: { load: () => n.detachPromise, save: (p) => (n.detachPromise = p) },
      beforeTake: async () => {
        const slow = w.fastTakeDelay;
        if (slow !== undefined && slow.node === n.name) await w.timer(w.now + slow.ms, this);
      },
      onTakeOver: (ev) => {
        w.takeOvers.push({ node: n.name, ...ev });
        w.log(n.name, `TAKE-OVER ${ev.reason} (old lease ${ev.leaseRemaining ?? '?'} s left)`);
      },
    });
    this.driver = new NodeDriver({
      config: nodeConfig(w, n),
      ports: { pg: this.fast.guard(simPgPort(w, n, this)), dcs: this.dcs, peers: simPeersPort(w, n), fence: simFencePort(w, n), clock: simClock(w, this), hooks: simHooksPort() },
      logger: silent,
      wake: () => this.wake(),
      hooks: {
        decided: (obs, decision) => this.decided(obs, decision),
        acted: (_obs, decision, shown, failures) => this.acted(decision, shown, failures.length > 0),
        taskEnded: (kind, state, error) => {
          if (this.alive) w.log(n.name, `task ${kind} ${state}${error !== undefined ? `: ${error}` : ''}`);
        },
      },
    });
  }

  get task() {
    return this.driver.task;
  }
  get lockRefreshedAt(): number | undefined {
    return this.driver.lockRefreshedAt;
  }
  get role() {
    return this.driver.role;
  }

  /** The driver asks for an early tick. */
  private wake(): void {
    if (!this.alive) return;
    if (this.ticking) this.wokenWhileTicking = true;
    this.nextTickAt = Math.min(this.nextTickAt, this.w.now);
  }

  private decided(obs: Observation, decision: Decision): number | undefined {
    this.w.decisions.push({ at: this.w.now, node: this.n.name, decision });
    this.isLeader = decision.isLeader;
    const cut = this.w.intercept?.(this.n.name, decision, obs);
    this.crash = cut?.crash;
    return cut?.k;
  }

  /** The transcript line of a tick: its actions (failed ones marked `!outcome`) and the reason. */
  private acted(decision: Decision, shown: string[], failed: boolean): void {
    const acts = shown.join(' ') || '-';
    if (this.crash !== undefined) {
      this.w.log(this.n.name, `${acts}  # (plan cut after ${shown.length} of ${decision.actions.length}) ${decision.reason}`);
      return;
    }
    const line = `${acts}  # ${decision.reason}`;
    if (line !== this.lastLine || failed) this.w.log(this.n.name, line);
    this.lastLine = line;
  }

  /**
   * Between ticks (the agent's timers besides its loop): once a second the sync step's watch for
   * new or lost WAL senders (driver.watchSenders); every World leaseKeepAliveMs the lease keep-alive.
   */
  async betweenTicks(): Promise<void> {
    if (this.ticking || this.stopping || !this.alive || this.frozen) return;
    const period = keepAlivePeriodMs(this.driver.dynamic, this.w.leaseKeepAliveMs);
    this.driver.leaseKeepAliveMs = this.w.leaseKeepAliveMs;
    if (period > 0 && this.w.now >= this.nextKeepAliveAt) {
      this.nextKeepAliveAt = this.w.now + period;
      const before = this.driver.lockRefreshedAt;
      await this.driver.keepAliveLock(period);
      if (before !== undefined && this.driver.lockRefreshedAt !== before) this.w.keepAlives++;
    }
    if (this.fastRun === undefined && this.w.now >= this.nextFastAt && !this.ticking && this.alive) {
      this.nextFastAt = this.w.now + 1000;
      const run = this.fast.step().catch((err: unknown) => this.w.violation(`the fast failover step threw on ${this.n.name}: ${err instanceof Error ? err.message : String(err)}`));
      this.fastRun = run;
      void run.finally(() => {
        if (this.fastRun === run) this.fastRun = undefined;
      });
    }
    if (this.w.now < this.nextWatchAt || this.ticking || !this.alive) return;
    this.nextWatchAt = this.w.now + 1000;
    await this.driver.watchSenders(1000);
  }

  /** One tick, then the wait until the next: the timer, or an early wake (watch, task end, ...). */
  async tick(): Promise<void> {
    const { w, n } = this;
    this.ticks++;
    this.ticking = true;
    this.wokenWhileTicking = false;
    this.watch?.abort();
    this.watch = undefined;
    // As the agent's loop: a tick starts after the fast failover step in flight.
    if (this.fastRun !== undefined) await this.fastRun;
    let res: TickResult;
    try {
      res = await this.driver.tick();
    } catch (err) {
      w.violation(`the driver's tick threw on ${n.name}: ${err instanceof Error ? err.message : String(err)}`);
      this.ticking = false;
      this.nextTickAt = w.now + 1000;
      return;
    }
    this.ticking = false;
    if (!this.alive) return;
    if (res.exit !== undefined) {
      this.exited = res.exit;
      w.log(n.name, `exit: ${res.exit}`);
      if (!w.allowExit) w.violation(`${n.name} exited: ${res.exit}`);
      w.endAgent(n);
      return;
    }
    if (res.cut === true) {
      const crash = this.crash as 'host' | 'agent';
      w.log(n.name, `CRASH (${crash})`);
      if (crash === 'host') w.kill(n.name);
      else w.killAgent(n.name);
      return;
    }
    let wake = Math.max(res.wakeAfterMs, STEP_MS);
    if (this.driver.failures.length > 0) wake = Math.min(wake, STEP_MS);
    this.nextTickAt = this.wokenWhileTicking ? w.now : w.now + Math.ceil(wake / STEP_MS) * STEP_MS;
    if (res.watchRevision !== undefined && !this.wokenWhileTicking) {
      const watch = new AbortController();
      this.watch = watch;
      void this.dcs.watchLeader(res.watchRevision, this.nextTickAt - w.now, { signal: watch.signal }).then(() => {
        if (this.watch !== watch || watch.signal.aborted || !this.alive) return;
        this.watch = undefined;
        this.nextTickAt = Math.min(this.nextTickAt, w.now);
      });
    }
  }
}

/** The local configuration of a node's agent: the world's dynamic configuration as bootstrap.dcs. */
function nodeConfig(w: World, n: SimNode): Config {
  return {
    scope: 'sim',
    namespace: '/service',
    name: n.name,
    restapi: { listen: `${n.name}:8008`, connectAddress: `${n.name}:8008` },
    etcd3: { hosts: ['etcd:2379'], protocol: 'http' },
    bootstrap: (n.opts.canBootstrap ?? true) ? { dcs: { ...w.config }, initdb: [], pgHba: [], users: {} } : undefined,
    postgresql: {
      listen: `${n.name}:5432`,
      connectAddress: `${n.name}:5432`,
      dataDir: `/sim/${n.name}`,
      binDir: '/sim/bin',
      pgpass: `/sim/${n.name}.pgpass`,
      database: 'postgres',
      authentication: { superuser: { username: 'postgres' }, replication: { username: 'replicator' } },
      parameters: {},
      pgHba: [],
      usePgRewind: true,
      useSlots: true,
      removeDataDirectoryOnRewindFailure: false,
      removeDataDirectoryOnDivergedTimelines: false,
      pgCtlTimeout: 60,
      basebackup: [],
    },
    tags: n.tags,
    logLevel: 'info',
    watchdog: { mode: 'off', device: '/dev/watchdog', safetyMargin: 5 },
  };
}
