// The imperative shell around core/decide: observe, decide, act, publish, wait.
//
// One tick at a time. Long PostgreSQL work (initdb, base backup, start, promote, stop, pg_rewind)
// runs as the single background task so that the loop keeps refreshing the leader lock meanwhile.
// The loop wakes early when the leader key changes (DCS watch), when the postmaster exits, when a
// task finishes, or when an action failed (so its failure is decided on at once).
//
// Nothing in here decides who is primary: that is src/core. If an `if` below is about that, it is a
// bug.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { cloneSource, decide, uncleanPrimaryShutdown } from '../core/decide.ts';
import type {
  Action,
  ActionFailure,
  ClusterView,
  DynamicConfig,
  LocalPg,
  Memory,
  Observation,
  PgState,
  Role,
  SyncState,
  TaskKind,
  TaskSpec,
  TaskState,
} from '../core/model.ts';
import type { Config } from '../config/types.ts';
import { effectiveDynamicConfig, withLocalOverrides } from '../config/dynamic.ts';
import { loadConfigFile } from '../config/load.ts';
import { syncModeOf } from '../core/election.ts';
import { activeRequest } from '../core/switchover.ts';
import { taskPgState } from '../core/tasks.ts';
import { lsnToNumber } from '../postgres/lsn.ts';
import type { OperationsPort, RestartOutcome, RestartRequest, ScheduledRestart } from '../api/port.ts';
import { fetchPeerStatus } from '../api/peers.ts';
import { DcsError, type Dcs } from '../dcs/dcs.ts';
import type { PostgresController } from '../postgres/controller.ts';
import { slotName } from '../postgres/conf.ts';
import { parseTimelineHistory } from '../postgres/divergence.ts';
import { fetchPeers } from '../api/peers.ts';
import type { NodeSnapshot } from '../api/snapshot.ts';
import { PATRONI_COMPAT_VERSION } from '../api/version.ts';
import { apiUrl, buildMemberData, connUrl, effectiveTags } from './member.ts';
import { checkFailsafeTopology } from '../api/failsafe.ts';
import { Fence } from '../fence/fence.ts';
import { fenceTimeout, readBudgetMs } from '../fence/deadline.ts';
import { planWatchdog } from '../fence/watchdog.ts';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface AgentOptions {
  config: Config;
  dcs: Dcs;
  pg: PostgresController;
  logger: Logger;
  /** Monotonic milliseconds. */
  now?: () => number;
  /** Called when the core asks the agent to exit (foreign data, ...). */
  onFatal?: (message: string) => void;
  /** The configuration file, re-read on reload (POST /reload, SIGHUP). */
  configFile?: string;
  /**
   * Called with the new configuration after a reload read a valid file (e.g. to apply restapi to
   * the REST API server); reloadConfig waits for it. Failures are logged, not thrown.
   */
  onReload?: (config: Config) => void | Promise<void>;
}

interface RunningTask {
  kind: TaskKind;
  startedAt: number;
  state: 'running' | 'ok' | 'failed';
  error?: string;
  from?: string;
  abort: AbortController;
  done: Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Failures that are about reaching another server, not about the local work: worth a retry. */
const TRANSIENT = /could not connect|connection refused|ECONNREFUSED|ECONNRESET|timed? ?out|terminating connection|the database system is (starting up|shutting down|in recovery)|server closed the connection/i;

/** A wake-up signal the loop waits on. */
class Wakeup {
  private resolve: (() => void) | undefined;
  private pending = false;
  wait(ms: number, also?: Promise<void>): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((res) => {
      const done = (): void => {
        clearTimeout(timer);
        this.resolve = undefined;
        res();
      };
      const timer = setTimeout(done, ms);
      this.resolve = done;
      also?.then(done, done);
    });
  }
  fire(): void {
    if (this.resolve !== undefined) this.resolve();
    else this.pending = true;
  }
}

export class Agent {
  private config: Config;
  private readonly configFile: string | undefined;
  private scheduledRestart: ScheduledRestart | undefined;
  private pendingRestart: Record<string, { old_value: string; new_value: string }> | undefined;
  private appliedParams = '';
  private readonly dcs: Dcs;
  private readonly pg: PostgresController;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly onFatal: ((message: string) => void) | undefined;
  private readonly onReload: ((config: Config) => void | Promise<void>) | undefined;

  private memory: Memory = {};
  private dynamic: DynamicConfig;
  private lastGoodConfig: Record<string, unknown> | undefined;
  private cluster: ClusterView | undefined;
  private clusterReadAt: number | undefined;
  private lastHealthy: ClusterView | undefined;
  private failures: ActionFailure[] = [];
  private task: RunningTask | undefined;
  private lockRefreshedAt: number | undefined;
  private pgState: PgState = 'stopped';
  private role: Role = 'uninitialized';
  private lastPg: (LocalPg & { probe?: unknown }) | undefined;
  private lastReason = 'starting';
  private divergenceCache: { key: string; value: 'need' | 'not_needed' } | undefined;
  private readonly wakeup = new Wakeup();
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private snapshot: NodeSnapshot;
  private watchAbort: AbortController | undefined;
  private tickCount = 0;
  private ticking = false;
  private refresher: Promise<void> | undefined;
  private leavingSync = false;
  /** Failsafe mode: the last /failsafe value read, and the last primary that confirmed itself to us. */
  private failsafeTopology: Record<string, string> | undefined;
  private failsafeSender: { name: string; connUrl: string; apiUrl: string; at: number } | undefined;
  private readonly fence: Fence;
  private fenceKey = '';
  /** When the armed fencer kills PostgreSQL (this.now() clock); undefined while disarmed. */
  private fenceDeadline: number | undefined;
  /** watchdog.mode required and the device cannot be used: this node must not lead. */
  private watchdogFailed = false;

  constructor(opts: AgentOptions) {
    this.config = opts.config;
    this.dcs = opts.dcs;
    this.pg = opts.pg;
    this.log = opts.logger;
    this.now = opts.now ?? (() => performance.now());
    this.onFatal = opts.onFatal;
    this.configFile = opts.configFile;
    this.onReload = opts.onReload;
    this.dynamic = withLocalOverrides(effectiveDynamicConfig(opts.config.bootstrap?.dcs).config, opts.config.postgresql);
    this.snapshot = this.buildSnapshot();
    this.fence = new Fence({
      dataDir: this.pg.dataDir,
      logger: this.log,
      now: this.now,
      onFenced: (ev) => {
        this.log.error({ ...ev }, 'the fencer killed PostgreSQL: the leader lock could not be confirmed in time');
        this.pgState = 'crashed';
        this.wakeup.fire();
      },
    });
  }

  /** The latest snapshot for the REST API (never blocks). */
  getSnapshot(): NodeSnapshot {
    return this.snapshot;
  }

  /** Called by the PostgreSQL controller when the postmaster exits on its own. */
  postmasterExited(info: { code: number | null; signal: string | null }): void {
    if (this.task?.state === 'running' && (this.task.kind === 'stop' || this.task.kind === 'demote')) return;
    this.log.warn({ ...info }, 'postmaster exited');
    this.pgState = 'crashed';
    this.wakeup.fire();
  }

  /** Start the loop (and the snapshot refresher). */
  start(): void {
    void this.fence.start();
    void this.planWatchdog();
    this.loopDone = this.loop();
    this.refresher = this.refreshLoop();
  }

  /**
   * Between ticks, re-probe PostgreSQL about once a second so that the REST API (and the WAL
   * positions peers compare during a leader race) is at most about a second old, not a whole
   * loop_wait. The probe has its own deadline; a hung PostgreSQL only makes the snapshot stale.
   */
  private async refreshLoop(): Promise<void> {
    while (!this.stopping) {
      await sleep(Math.min(1000, this.dynamic.loop_wait * 1000));
      const pg = this.lastPg;
      if (this.stopping || this.ticking || pg === undefined || !pg.running || this.task?.state === 'running') continue;
      try {
        const probe = await this.pg.probe({ timeoutMs: 1000 });
        if (this.ticking || this.lastPg !== pg) continue;
        const receive = probe.receiveLsn;
        const replay = probe.replayLsn;
        this.lastPg = {
          ...pg,
          probe,
          ready: true,
          inRecovery: probe.inRecovery,
          walLsn: probe.inRecovery ? Math.max(receive ?? 0, replay ?? 0) || undefined : probe.flushLsn,
          receiveLsn: receive,
          replayLsn: replay,
          // Without a WAL receiver the probe's timeline may be pg_control's (older); keep the
          // tick's better answer then.
          timeline: probe.inRecovery && probe.walReceiver?.status !== 'streaming' ? Math.max(probe.timeline ?? 0, pg.timeline ?? 0) || undefined : probe.timeline ?? pg.timeline,
          streaming: probe.walReceiver?.status === 'streaming',
        };
        this.snapshot = this.buildSnapshot();
      } catch {
        // PostgreSQL did not answer in time: the next tick notices and decides.
      }
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let wakeMs: number;
      let watchRevision: string | undefined;
      this.ticking = true;
      try {
        const res = await this.tick();
        wakeMs = res.wakeAfterMs;
        watchRevision = res.watchRevision;
      } catch (err) {
        this.log.error({ err: String(err instanceof Error ? err.stack : err) }, 'unexpected error in the HA loop');
        wakeMs = 1000;
      } finally {
        this.ticking = false;
      }
      if (this.stopping) break;
      if (this.failures.length > 0) wakeMs = Math.min(wakeMs, 100);
      let watch: Promise<void> | undefined;
      if (watchRevision !== undefined && wakeMs > 50) {
        this.watchAbort = new AbortController();
        const started = Date.now();
        // A watch that cannot be established resolves at once; do not spin on it.
        watch = this.dcs.watchLeader(watchRevision, wakeMs, { signal: this.watchAbort.signal }).then(async () => {
          if (Date.now() - started < 50 && !this.stopping) await sleep(200);
        });
      }
      await this.wakeup.wait(wakeMs, watch);
      this.watchAbort?.abort();
      this.watchAbort = undefined;
    }
  }

  /** One observe-decide-act cycle. */
  private async tick(): Promise<{ wakeAfterMs: number; watchRevision?: string }> {
    this.tickCount++;
    const obs = await this.observe();
    const decision = decide(obs);
    this.memory = decision.memory;
    this.role = decision.role;
    // The core says we are not (or no longer) the leader: stop answering as one at once.
    if (!decision.isLeader) this.lockRefreshedAt = undefined;
    if (decision.reason !== this.lastReason) this.log.info({ actions: decision.actions.map(describe) }, decision.reason);
    else this.log.debug({ actions: decision.actions.map(describe) }, decision.reason);
    this.lastReason = decision.reason;

    if (decision.exit !== undefined) {
      this.log.error({}, decision.exit);
      this.stopping = true;
      this.onFatal?.(decision.exit);
      return { wakeAfterMs: 0 };
    }

    // A finished task is reported to decide() once, then forgotten. Only a task that this
    // observation reported as finished is forgotten: one that finished after observe() read its
    // state (observe awaits the DCS, PostgreSQL and peers after that) must still be reported, or
    // its outcome is lost (a finished bootstrap then left memory.bootstrapping set for good).
    const seen = obs.task;
    if (this.task !== undefined && seen !== undefined && seen.state !== 'running' && this.task.startedAt === seen.startedAt && this.task.kind === seen.kind) {
      this.task = undefined;
    }

    this.failures = await this.act(decision.actions, obs);
    for (const f of this.failures) this.log.warn({ action: f.action, outcome: f.outcome }, `action failed: ${f.message}`);
    await this.updateFence(decision.isLeader);

    if (this.failures.length === 0 && this.task === undefined && obs.pg.running && obs.pg.ready) {
      await this.applyLocalConfig(obs.cluster, true).catch((err: unknown) => this.log.warn({}, `could not apply the configuration: ${err instanceof Error ? err.message : String(err)}`));
      this.runDueRestart(obs);
    }
    if (obs.cluster !== undefined) await this.touchMember(obs);
    this.snapshot = this.buildSnapshot();

    const holdLock = obs.cluster?.leader?.name === this.config.name;
    const watchRevision =
      obs.cluster !== undefined && obs.cluster.leader !== undefined && !holdLock && this.task?.state !== 'running' ? obs.cluster.revision : undefined;
    return { wakeAfterMs: decision.wakeAfterMs, ...(watchRevision !== undefined ? { watchRevision } : {}) };
  }

  /**
   * Fencing: while we hold the lock and PostgreSQL runs, the fencer process is armed with a
   * deadline of (start of the last successful lock refresh or failsafe confirmation) + the fence
   * timeout (ttl - safety_margin, see src/fence/deadline.ts). If no later refresh moves it, the
   * fencer kills PostgreSQL at the deadline, before the lock can expire, whether this agent is
   * alive, stuck, frozen or dead. A primary that lost the lock stays armed with its old deadline
   * until PostgreSQL is stopped or read-only; only then (and in pause) is the fencer disarmed.
   */
  private async updateFence(isLeader: boolean): Promise<void> {
    const pg = this.lastPg;
    const running = this.task?.state === 'running' ? this.task.kind : undefined;
    const promoting = running === 'promote';
    // The lock holder (re)starting PostgreSQL: it may come up as a primary before the next tick.
    const starting = (running === 'start' || running === 'restart') && isLeader && this.lockRefreshedAt !== undefined;
    const paused = this.dynamic.pause === true;
    let want: 'arm' | 'disarm' | 'keep' = 'keep';
    if (paused) want = 'disarm';
    else if (isLeader && this.lockRefreshedAt !== undefined && (pg?.running === true || starting)) want = 'arm';
    else if (pg === undefined || !pg.running) want = 'disarm';
    else if (pg.inRecovery && !promoting) want = 'disarm';
    if (want === 'keep') return;
    if (want === 'disarm') {
      if (this.fenceKey === 'disarmed') return;
      if (await this.fence.disarm()) {
        this.fenceKey = 'disarmed';
        this.fenceDeadline = undefined;
      }
      return;
    }
    await this.armFence(starting);
  }

  /**
   * Arm the fencer with the current lock timings: for the running postmaster, or, while PostgreSQL
   * is being (re)started by the lock holder (`byDataDir`), for whatever postmaster will run in the
   * data directory, so that it is never a primary without a fencer even if this agent dies before
   * its next tick.
   */
  private async armFence(byDataDir: boolean): Promise<void> {
    if (this.lockRefreshedAt === undefined || this.dynamic.pause === true) return;
    const running = (await this.pg.isRunning()).pid;
    const pid = running ?? (byDataDir ? 0 : undefined);
    if (pid === undefined) return;
    const { timeoutMs, warning } = fenceTimeout({
      ttl: this.dynamic.ttl,
      loopWait: this.dynamic.loop_wait,
      safetyMargin: this.config.watchdog.safetyMargin,
      ...(this.dynamic.failsafe_mode === true ? { failsafeRetryTimeout: this.dynamic.retry_timeout } : {}),
    });
    const key = `${pid}/${this.lockRefreshedAt}/${timeoutMs}`;
    if (key === this.fenceKey) return;
    if (warning !== undefined && !this.fenceKey.startsWith(`${pid}/`)) this.log.warn({}, `fencing: ${warning}`);
    const res = await this.fence.arm({ pid, refreshStartMs: this.lockRefreshedAt, timeoutMs });
    if (res.ok) {
      this.fenceKey = key;
      this.fenceDeadline = this.lockRefreshedAt + timeoutMs;
    } else this.log.error({ ...res }, 'could not arm the fencer');
  }

  /** Linux watchdog (watchdog.mode): the fencer keeps the device alive while it is armed. */
  private async planWatchdog(): Promise<void> {
    try {
      const plan = await planWatchdog(this.config.watchdog, { ttl: this.dynamic.ttl, loopWait: this.dynamic.loop_wait });
      for (const m of plan.messages) this.log.warn({}, `watchdog: ${m.message}`);
      this.fence.setWatchdogDevice(plan.use ? plan.device : undefined);
      this.watchdogFailed = !plan.healthy;
    } catch (err) {
      this.log.error({}, `watchdog: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // observe

  private async observe(): Promise<Observation> {
    let cluster: ClusterView | undefined;
    let dcsError: string | undefined;
    // A primary whose fencer is armed stops waiting for the DCS in time to demote cleanly (a fast
    // shutdown with its checkpoint) before the fencer would SIGKILL PostgreSQL: waiting the whole
    // retry_timeout would only let the fencer win the race.
    const budget = readBudgetMs(this.fenceDeadline, this.now(), this.dynamic.retry_timeout * 1000, this.dynamic.failsafe_mode === true);
    try {
      if (budget !== undefined && budget <= 0) throw new Error('no time left before the fence deadline to read the DCS');
      cluster = await this.dcs.readCluster(budget === undefined ? undefined : { signal: AbortSignal.timeout(budget) });
      this.cluster = cluster;
      this.clusterReadAt = this.now();
      if (cluster.leader !== undefined) this.lastHealthy = cluster;
      if (cluster.config !== undefined) this.lastGoodConfig = cluster.config;
      if (cluster.failsafe !== undefined) this.failsafeTopology = cluster.failsafe;
    } catch (err) {
      dcsError = err instanceof Error ? err.message : String(err);
      if (budget !== undefined) dcsError = `the DCS did not answer within ${budget} ms, the time left before the fence deadline: ${dcsError}`;
    }
    this.applyDynamicConfig(this.lastGoodConfig ?? this.config.bootstrap?.dcs);

    const pg = await this.pg.observe();
    if (pg.running) {
      if (this.task?.state === 'running' && this.task.kind === 'start') this.pgState = 'starting';
      else if (pg.ready) this.pgState = 'running';
    } else if (this.task?.state !== 'running') {
      this.pgState = this.pgState === 'crashed' || pg.crashed ? 'crashed' : 'stopped';
    }
    if (pg.dataDirEmpty && this.task === undefined) this.pgState = 'stopped';
    pg.crashed = this.pgState === 'crashed';

    const obs: Observation = {
      now: this.now(),
      wallClock: new Date().toISOString(),
      self: {
        name: this.config.name,
        // A node whose required watchdog cannot work never races (behavior 12.1).
        tags: this.watchdogFailed ? { ...this.config.tags, nofailover: true } : this.config.tags,
        canBootstrap: this.config.bootstrap !== undefined,
        bootstrapDcs: this.config.bootstrap?.dcs ?? {},
        remove_data_directory_on_rewind_failure: this.config.postgresql.removeDataDirectoryOnRewindFailure,
        remove_data_directory_on_diverged_timelines: this.config.postgresql.removeDataDirectoryOnDivergedTimelines,
      },
      config: this.dynamic,
      cluster,
      pg,
      task: this.taskState(),
      failures: this.failures,
      memory: this.memory,
    };
    if (dcsError !== undefined) obs.dcsError = dcsError;
    if (this.dynamic.failsafe_mode === true) obs.failsafe = await this.observeFailsafe(cluster, pg);
    if (this.lastHealthy !== undefined) obs.lastHealthyCluster = this.lastHealthy;
    if (this.lockRefreshedAt !== undefined) obs.lockRefreshedAt = this.lockRefreshedAt;

    if (cluster !== undefined) {
      const raceMatters = cluster.leader === undefined && pg.running && pg.inRecovery && this.task?.state !== 'running';
      const switchoverMatters = cluster.leader?.name === this.config.name && activeRequest(cluster) !== undefined && this.task?.state !== 'running';
      if (raceMatters || switchoverMatters) obs.peers = await this.fetchPeers(cluster);
      await this.observeDivergence(cluster, pg);
    }
    this.lastPg = pg;
    return obs;
  }

  /**
   * Failsafe facts. When the DCS cannot be read and we run as a primary (not paused), ask every
   * other member of the last /failsafe value to confirm us (POST /failsafe); all must accept. The
   * confirmation counts like a lock refresh that started when we began asking: each member that
   * accepted will not race for ttl seconds from its answer, which is later.
   */
  private async observeFailsafe(cluster: ClusterView | undefined, pg: LocalPg): Promise<NonNullable<Observation['failsafe']>> {
    const facts: NonNullable<Observation['failsafe']> = {};
    if (this.failsafeTopology !== undefined) facts.topology = this.failsafeTopology;
    const s = this.failsafeSender;
    if (s !== undefined) facts.leader = { name: s.name, connUrl: s.connUrl, apiUrl: s.apiUrl, at: s.at };
    if (cluster !== undefined || !pg.running || pg.inRecovery || this.dynamic.pause === true) return facts;
    const started = this.now();
    const auth = this.config.restapi.authentication;
    const res = await checkFailsafeTopology({
      me: this.config.name,
      topology: this.failsafeTopology,
      body: { name: this.config.name, conn_url: connUrl(this.config), api_url: apiUrl(this.config), slots: {} },
      auth,
      timeoutMs: 2000,
      retries: 1,
    });
    facts.check = { ok: res.ok, reason: res.reason };
    if (res.ok) this.lockRefreshedAt = started;
    return facts;
  }

  private applyDynamicConfig(raw: Record<string, unknown> | undefined): void {
    const { config, warnings } = effectiveDynamicConfig(raw);
    const prev = this.dynamic;
    this.dynamic = withLocalOverrides(config, this.config.postgresql);
    if (prev.ttl !== config.ttl || prev.retry_timeout !== config.retry_timeout || this.tickCount === 1) {
      this.dcs.setTtl(config.ttl);
      this.dcs.setRetryTimeout(config.retry_timeout);
      for (const w of warnings) this.log.warn({}, `dynamic configuration: ${w}`);
    }
  }

  private async fetchPeers(cluster: ClusterView) {
    const byName = new Map<string, string>();
    for (const view of [this.lastHealthy, cluster]) {
      for (const m of view?.members ?? []) {
        if (m.name !== this.config.name && typeof m.data.api_url === 'string') byName.set(m.name, m.data.api_url);
      }
    }
    // Failsafe mode: every member of /failsafe is asked too (a primary cut off from the DCS may
    // still be running and confirming itself to some of them).
    if (this.dynamic.failsafe_mode === true) {
      for (const [name, url] of Object.entries(this.failsafeTopology ?? {})) if (name !== this.config.name && !byName.has(name)) byName.set(name, url);
    }
    const auth = this.config.restapi.authentication;
    return fetchPeers(
      [...byName].map(([name, apiUrl]) => ({ name, apiUrl })),
      { timeoutMs: 2000, ...(auth !== undefined ? { auth } : {}) },
    );
  }

  /**
   * Ask the leader whether our history diverged from its (pg_rewind's question), only when the
   * answer matters: PostgreSQL is stopped with data while another member leads, or a running
   * replica is not streaming from a leader on a newer timeline.
   */
  private async observeDivergence(cluster: ClusterView, pg: LocalPg): Promise<void> {
    const leader = cluster.leader?.name;
    const lm = cluster.members.find((m) => m.name === leader);
    if (leader === undefined || leader === this.config.name || lm?.data.conn_url === undefined || lm.data.role !== 'primary' || pg.dataDirEmpty) {
      return;
    }
    const leaderTl = typeof lm.data.timeline === 'number' ? lm.data.timeline : undefined;
    const stoppedWithData = !pg.running;
    const stuckReplica = pg.running && pg.ready && pg.inRecovery && !pg.streaming && leaderTl !== undefined && pg.timeline !== undefined && leaderTl > pg.timeline;
    if (!stoppedWithData && !stuckReplica) {
      this.divergenceCache = undefined;
      return;
    }
    // The core sends an uncleanly stopped primary through pg_rewind anyway: no check needed.
    if (stoppedWithData && uncleanPrimaryShutdown(pg)) return;
    const key = `${leader}/${leaderTl}/${pg.controlState}/${pg.timeline}/${pg.walLsn}`;
    if (this.divergenceCache?.key === key) {
      pg.divergence = this.divergenceCache.value;
      return;
    }
    try {
      const value = await this.pg.checkDivergence({ connUrl: lm.data.conn_url }, { timeoutMs: 5000 });
      this.divergenceCache = { key, value };
      pg.divergence = value;
    } catch (err) {
      this.log.warn({ leader }, `could not compare timelines with the leader: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private taskState(): TaskState | undefined {
    const t = this.task;
    if (t === undefined) return undefined;
    const s: TaskState = { kind: t.kind, startedAt: t.startedAt, state: t.state };
    if (t.error !== undefined) s.error = t.error;
    if (t.from !== undefined) s.from = t.from;
    if (t.state === 'failed' && t.error !== undefined && TRANSIENT.test(t.error)) s.transient = true;
    return s;
  }

  // ------------------------------------------------------------------------------------------
  // act

  private async act(actions: Action[], obs: Observation): Promise<ActionFailure[]> {
    for (const action of actions) {
      try {
        const ok = await this.run(action, obs);
        if (ok === false) return [{ action: action.type, outcome: 'lost', message: `${action.type}: precondition no longer holds` }];
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (action.type === 'refreshLeader' || action.type === 'acquireLeader' || action.type === 'takeLeader') this.lockRefreshedAt = undefined;
        return [{ action: action.type, outcome: err instanceof DcsError && err.code === 'DCS_UNAVAILABLE' ? 'unreachable' : 'error', message }];
      }
    }
    return [];
  }

  /** Execute one action. false: a compare-and-set precondition failed. */
  private async run(action: Action, obs: Observation): Promise<boolean | void> {
    const cluster = obs.cluster;
    switch (action.type) {
      case 'createInitialize':
        return this.dcs.attemptInitialize();
      case 'writeInitialize':
        return this.dcs.writeInitialize(action.sysid);
      case 'deleteInitialize':
        return this.dcs.deleteInitialize();
      case 'writeConfig':
        return this.dcs.writeConfig(action.config);
      case 'acquireLeader': {
        const t = this.now();
        const ok = await this.dcs.acquireLeader();
        if (ok) this.tookLock(t);
        return ok;
      }
      case 'takeLeader': {
        const t = this.now();
        await this.dcs.takeLeader();
        this.tookLock(t);
        return;
      }
      case 'refreshLeader': {
        const t = this.now();
        const ok = await this.dcs.refreshLeader();
        this.lockRefreshedAt = ok ? t : undefined;
        return ok;
      }
      case 'releaseLeader': {
        this.lockRefreshedAt = undefined;
        if (action.optime !== undefined) await this.dcs.writeStatus({ optime: action.optime });
        await this.dcs.releaseLeader();
        return;
      }
      case 'writeStatus':
        return this.dcs.writeStatus(action.status);
      case 'writeHistory':
        return this.dcs.writeHistory(action.history);
      case 'clearFailover':
        return this.dcs.writeFailover({}, cluster?.failover?.version);
      case 'writeSync':
        return this.dcs.writeSync(
          { leader: action.leader, quorum: action.quorum, sync_standby: action.syncStandby.length > 0 ? [...action.syncStandby].sort().join(',') : null },
          action.version,
        );
      case 'deleteSync':
        return this.dcs.deleteSync(action.version);
      case 'writeFailsafe':
        await this.dcs.writeFailsafe(action.value);
        // What we wrote is what the members will be asked if etcd goes away before the next read.
        this.failsafeTopology = action.value;
        return;
      case 'setSyncStandbyNames':
        return this.pg.setSyncStandbyNames(action.value);
      case 'followUpstream': {
        const res = await this.pg.writeConfig({ role: 'replica', upstream: this.upstreamTarget(action.upstream, cluster), parameters: this.pgParameters() });
        if (res.needsRestart) {
          await this.pg.stop('fast');
          await this.pg.start();
        } else if (res.changed) await this.pg.reload();
        this.divergenceCache = undefined;
        return;
      }
      case 'ensureSlots':
        return this.pg.ensureSlots(action.members.map(slotName), { dropUnknown: action.dropUnknown });
      case 'removeDataDir':
        return this.pg.removeDataDir();
      case 'cancelTask':
        return this.cancelTask();
      case 'startTask':
        return this.startTask(action.task, obs);
    }
  }

  /** We hold the lock since `t`: the cached view says so too until the next read. */
  private tookLock(t: number): void {
    this.lockRefreshedAt = t;
    if (this.cluster !== undefined) this.cluster = { ...this.cluster, leader: { name: this.config.name, version: '', session: '' } };
    this.snapshot = this.buildSnapshot();
  }

  private upstreamTarget(name: string | null, cluster: ClusterView | undefined): { connUrl: string; name: string } | null {
    if (name === null) return null;
    const m = (cluster ?? this.cluster)?.members.find((x) => x.name === name);
    if (m?.data.conn_url === undefined) throw new Error(`member ${name} has no conn_url in the DCS`);
    return { connUrl: m.data.conn_url, name };
  }

  private pgParameters(): Record<string, unknown> | null {
    return (this.dynamic.postgresql.parameters as Record<string, unknown> | null | undefined) ?? null;
  }

  private async cancelTask(): Promise<void> {
    const t = this.task;
    if (t === undefined || t.state !== 'running') return;
    t.abort.abort();
    await Promise.race([t.done, sleep(15_000)]);
  }

  private startTask(spec: TaskSpec, obs: Pick<Observation, 'cluster'>): void {
    if (this.task?.state === 'running') throw new Error(`${this.task.kind} already in progress`);
    const abort = new AbortController();
    const task: RunningTask = { kind: spec.kind, startedAt: this.now(), state: 'running', abort, done: Promise.resolve(), ...('from' in spec ? { from: spec.from } : {}) };
    this.pgState = taskPgState(spec.kind) ?? this.pgState;
    task.done = this.runTask(spec, obs, abort.signal).then(
      () => {
        task.state = 'ok';
        this.log.info({ task: spec.kind }, `${spec.kind} finished`);
      },
      (err: unknown) => {
        task.state = 'failed';
        task.error = err instanceof Error ? err.message : String(err);
        this.log.error({ task: spec.kind }, `${spec.kind} failed: ${task.error}`);
        if (spec.kind === 'start' || spec.kind === 'bootstrap') this.pgState = spec.kind === 'start' ? 'start failed' : 'initdb failed';
      },
    ).finally(() => this.wakeup.fire());
    this.task = task;
    this.snapshot = this.buildSnapshot();
  }

  private async runTask(spec: TaskSpec, obs: Pick<Observation, 'cluster'>, signal: AbortSignal): Promise<void> {
    const pg = this.pg;
    const startTimeout = { timeoutMs: this.config.postgresql.pgCtlTimeout * 1000 };
    const checkAbort = (): void => {
      if (signal.aborted) throw new Error(`${spec.kind} cancelled`);
    };
    switch (spec.kind) {
      case 'bootstrap': {
        const b = this.config.bootstrap;
        if (b === undefined) throw new Error('no bootstrap section in the configuration');
        await pg.initdb(b);
        await pg.writeConfig({ role: 'primary', upstream: null, parameters: this.pgParameters() });
        await pg.start(startTimeout);
        this.pgState = 'running';
        await pg.postBootstrap(b);
        return;
      }
      case 'clone': {
        const from = this.upstreamTarget(spec.from, obs.cluster);
        await pg.basebackup({ connUrl: (from as { connUrl: string }).connUrl });
        checkAbort();
        await this.startAsReplica(spec.from, obs.cluster);
        return;
      }
      case 'start':
        if (spec.asPrimary) await pg.writeConfig({ role: 'primary', upstream: null, parameters: this.pgParameters() });
        else await pg.writeConfig({ role: 'replica', upstream: this.upstreamTarget(spec.upstream, obs.cluster), parameters: this.pgParameters() });
        this.pgState = 'starting';
        if (spec.asPrimary) await this.armFence(true);
        await pg.start(startTimeout);
        this.pgState = 'running';
        return;
      case 'promote': {
        await pg.promote({ timeoutMs: this.dynamic.loop_wait * 1000 + 10_000 });
        this.role = 'primary';
        if (this.lastPg !== undefined) this.lastPg = { ...this.lastPg, inRecovery: false };
        this.snapshot = this.buildSnapshot();
        this.wakeup.fire();
        await pg.writeConfig({ role: 'primary', upstream: null, parameters: this.pgParameters() });
        await this.publishHistory();
        // A checkpoint on the new timeline lets former primaries run pg_rewind against us at once.
        await pg.checkpoint().catch((err: unknown) => this.log.warn({}, `checkpoint after promote failed: ${String(err)}`));
        return;
      }
      case 'demote': {
        if (spec.mode === 'graceful') {
          // A checkpoint first makes the shutdown checkpoint short: clients are cut off only
          // for the stop itself, not for flushing a large amount of dirty data.
          await pg.checkpoint({ timeoutMs: 30_000 }).catch((err: unknown) => this.log.warn({}, `checkpoint before switchover failed: ${String(err)}`));
        }
        await pg.stop(spec.mode === 'graceful' || spec.mode === 'offline' ? 'fast' : 'immediate', spec.mode === 'graceful' ? { checkpoint: false } : {});
        this.pgState = 'stopped';
        if (spec.mode === 'graceful') {
          // PostgreSQL is down (its WAL senders sent everything up to the shutdown checkpoint):
          // publish where it ended and hand the lock over.
          this.lockRefreshedAt = undefined;
          await this.publishShutdownOptime();
          await this.dcs.releaseLeader();
          this.log.info({ candidate: spec.upstream }, 'released the leader lock for a switchover');
        }
        if (spec.mode === 'offline') {
          // The DCS cannot be read: restart read-only following nobody.
          await pg.writeConfig({ role: 'replica', upstream: null, parameters: this.pgParameters() });
          await pg.start(startTimeout);
          this.pgState = 'running';
        }
        return;
      }
      case 'restart': {
        this.pgState = 'restarting';
        await pg.stop('fast');
        await this.applyLocalConfig(obs.cluster, false);
        if (this.lastPg?.inRecovery === false) await this.armFence(true);
        await pg.start({ timeoutMs: spec.timeoutMs ?? startTimeout.timeoutMs });
        this.pgState = 'running';
        this.pendingRestart = undefined;
        return;
      }
      case 'stop':
        await pg.stop(spec.mode);
        this.pgState = 'stopped';
        if (spec.releaseLeader) {
          this.lockRefreshedAt = undefined;
          await this.dcs.releaseLeader();
        }
        return;
      case 'rewind': {
        const from = this.upstreamTarget(spec.from, obs.cluster) as { connUrl: string };
        await pg.rewind({ connUrl: from.connUrl });
        checkAbort();
        this.divergenceCache = undefined;
        await this.startAsReplica(spec.from, obs.cluster);
        return;
      }
      case 'reinitialize': {
        const from = this.upstreamTarget(spec.from, obs.cluster) as { connUrl: string };
        await pg.stop('immediate');
        await pg.removeDataDir();
        this.pgState = 'creating replica';
        await pg.basebackup({ connUrl: from.connUrl });
        checkAbort();
        this.divergenceCache = undefined;
        await this.startAsReplica(spec.from, obs.cluster);
        return;
      }
    }
  }

  /** After a clean stop of the primary: /status.optime = the shutdown checkpoint (best effort). */
  private async publishShutdownOptime(): Promise<void> {
    const cd = await this.pg.controlData().catch(() => undefined);
    const ckpt = cd?.['Latest checkpoint location'];
    if (ckpt === undefined) return;
    await this.dcs.writeStatus({ optime: lsnToNumber(ckpt) }).catch((err: unknown) => this.log.warn({}, `could not publish the last LSN: ${String(err)}`));
  }

  private async startAsReplica(upstream: string, cluster: ClusterView | undefined): Promise<void> {
    await this.pg.writeConfig({ role: 'replica', upstream: this.upstreamTarget(upstream, cluster), parameters: this.pgParameters() });
    this.pgState = 'starting';
    await this.pg.start({ timeoutMs: this.config.postgresql.pgCtlTimeout * 1000 });
    this.pgState = 'running';
  }

  /** After a promotion: /history from the new timeline's history file. */
  private async publishHistory(): Promise<void> {
    try {
      const probe = await this.pg.probe();
      const tl = probe.timeline;
      if (tl === undefined || tl <= 1) return;
      const file = join(this.pg.dataDir, 'pg_wal', `${tl.toString(16).toUpperCase().padStart(8, '0')}.history`);
      const entries = parseTimelineHistory(await readFile(file, 'utf8'));
      const old = this.cluster?.history ?? [];
      const known = new Map(old.map((l) => [l[0], l]));
      const lines = entries.map((e): [number, number, string, string?, string?] => {
        const k = known.get(e.parentTli);
        if (k !== undefined) return k;
        return [e.parentTli, e.switchLsn, 'no recovery target specified', localIso(new Date()), this.config.name];
      });
      await this.dcs.writeHistory(lines);
    } catch (err) {
      this.log.warn({}, `could not publish /history: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // publish

  private async touchMember(obs: Pick<Observation, 'config'>): Promise<void> {
    const pg = this.lastPg;
    // A synchronous standby on its way out advertises nosync so the leader replaces it first.
    const config = this.leavingSync ? { ...this.config, tags: { ...this.config.tags, nosync: true, sync_priority: 0 } } : this.config;
    const data = buildMemberData(config, {
      state: this.pgState,
      role: this.role,
      ...(pg?.walLsn !== undefined ? { walLsn: pg.walLsn } : {}),
      ...(pg?.receiveLsn !== undefined ? { receiveLsn: pg.receiveLsn } : {}),
      ...(pg?.replayLsn !== undefined ? { replayLsn: pg.replayLsn } : {}),
      ...(pg?.timeline !== undefined ? { timeline: pg.timeline } : {}),
      streaming: pg?.streaming ?? false,
      inRecovery: pg?.inRecovery ?? false,
      pause: obs.config.pause === true,
    });
    if (this.pendingRestart !== undefined) {
      data.pending_restart = true;
      data.pending_restart_reason = this.pendingRestart;
    }
    if (this.scheduledRestart !== undefined) {
      const sr: Record<string, unknown> = { ...this.scheduledRestart };
      const start = (pg?.probe as { postmasterStartTime?: string } | undefined)?.postmasterStartTime;
      if (start !== undefined) sr['postmaster_start_time'] = start;
      data.scheduled_restart = sr;
    }
    try {
      await this.dcs.touchMember(data);
    } catch (err) {
      this.log.warn({}, `could not update the member key: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private buildSnapshot(): NodeSnapshot {
    const now = this.now();
    const pg = this.lastPg;
    const probe = pg?.probe as
      | { postmasterStartTime: string; serverVersionNum: number; replayPaused: boolean; replication: NodeSnapshot['replication']; receiveLsn?: number; replayLsn?: number; flushLsn?: number; walReceiver?: { status: string } }
      | undefined;
    const holdLock = this.lockRefreshedAt !== undefined && now - this.lockRefreshedAt < this.dynamic.ttl * 1000;
    const snap: NodeSnapshot = {
      patroni: { version: PATRONI_COMPAT_VERSION, scope: this.config.scope, name: this.config.name },
      state: this.pgState === 'running' && pg?.ready !== true ? 'unknown' : this.pgState,
      role: this.role,
      // A graceful demotion keeps the lock until PostgreSQL is down but must not be routed to.
      // Not while a promotion has not made PostgreSQL writable yet: routers would send writes to
      // a read-only server.
      isLeader:
        holdLock &&
        this.cluster?.leader?.name === this.config.name &&
        !(this.task?.state === 'running' && (this.task.kind === 'demote' || (this.task.kind === 'promote' && pg?.inRecovery === true))),
      config: this.dynamic,
      tags: effectiveTags(this.config.tags),
      lastReason: this.lastReason,
      takenAt: now,
      nextRunAt: now + this.dynamic.loop_wait * 1000,
    };
    if (this.lockRefreshedAt !== undefined) snap.leaderValidUntil = this.lockRefreshedAt + this.dynamic.ttl * 1000;
    if (this.cluster !== undefined && this.clusterReadAt !== undefined) {
      snap.cluster = this.cluster;
      snap.clusterReadAt = this.clusterReadAt;
      snap.dcsLastSeen = Math.floor(Date.now() / 1000 - (now - this.clusterReadAt) / 1000);
    }
    if (pg?.sysid !== undefined) snap.sysid = pg.sysid;
    if (pg?.timeline !== undefined) snap.timeline = pg.timeline;
    if (probe !== undefined && pg?.ready) {
      snap.postmasterStartTime = probe.postmasterStartTime;
      snap.serverVersion = probe.serverVersionNum;
      if (probe.replication !== undefined && probe.replication.length > 0) {
        snap.replication = probe.replication.map((r) => ({
          usename: r.usename,
          application_name: r.application_name,
          client_addr: r.client_addr,
          state: r.state,
          sync_state: r.sync_state,
          sync_priority: r.sync_priority,
        }));
      }
      if (pg.inRecovery) {
        snap.xlog = {
          received_location: pg.receiveLsn ?? pg.replayLsn ?? 0,
          replayed_location: pg.replayLsn ?? 0,
          replayed_timestamp: null,
          paused: probe.replayPaused,
        };
        snap.replicationState = pg.streaming ? 'streaming' : 'in archive recovery';
      } else if (pg.walLsn !== undefined) snap.xlog = { location: pg.walLsn };
    }
    if (this.dynamic.pause === true) snap.pause = true;
    if (this.watchdogFailed) snap.watchdogFailed = true;
    if (this.memory.failsafeActive === true) snap.failsafeActive = true;
    if (this.pendingRestart !== undefined) {
      snap.pendingRestart = true;
      snap.pendingRestartReason = this.pendingRestart;
    }
    if (this.scheduledRestart !== undefined) snap.scheduledRestart = { ...this.scheduledRestart };
    return snap;
  }

  // ------------------------------------------------------------------------------------------
  // configuration, restarts and operations requested through the REST API

  /**
   * Render postgresql.conf for the current role from the local and dynamic configuration. When
   * it changed: reload (live) and record what still needs a restart as pending_restart.
   */
  private async applyLocalConfig(cluster: ClusterView | undefined, live: boolean): Promise<void> {
    const pg = this.lastPg;
    if (pg === undefined || pg.dataDirEmpty) return;
    const params = this.pgParameters();
    const key = JSON.stringify([params, this.config.postgresql.parameters]);
    if (live && key === this.appliedParams) return;
    let upstream: { connUrl: string; name: string } | null = null;
    if (pg.inRecovery && pg.upstream !== null) {
      const m = (cluster ?? this.cluster)?.members.find((x) => x.name === pg.upstream);
      if (m?.data.conn_url === undefined) return; // the upstream is unknown right now: try later
      upstream = { connUrl: m.data.conn_url, name: m.name };
    }
    const res = await this.pg.writeConfig({ role: pg.inRecovery ? 'replica' : 'primary', upstream, parameters: params });
    this.appliedParams = key;
    if (!live || !res.changed) return;
    await this.pg.reload();
    this.log.info({ restart: res.restartReasons, reload: res.reloadParams }, 'PostgreSQL configuration changed; reloaded');
    if (res.needsRestart) {
      await sleep(200);
      const pending = await this.pg.pendingRestart().catch(() => ({}));
      this.pendingRestart = Object.keys(pending).length > 0 ? pending : undefined;
    }
  }

  /** A scheduled restart whose time has come: run it (if its filters still match) or drop it. */
  private runDueRestart(obs: Observation): void {
    const sr = this.scheduledRestart;
    if (sr === undefined || Date.parse(sr.schedule) > Date.now()) return;
    this.scheduledRestart = undefined;
    const refusal = this.restartRefusal(sr, obs.pg.inRecovery);
    if (refusal !== undefined) {
      this.log.info({}, `scheduled restart skipped: ${refusal}`);
      return;
    }
    this.log.info({ schedule: sr.schedule }, 'running the scheduled restart');
    this.startTask({ kind: 'restart', ...(sr.timeout !== undefined ? { timeoutMs: sr.timeout * 1000 } : {}) }, obs);
  }

  private restartRefusal(req: RestartRequest, inRecovery: boolean): string | undefined {
    const role = inRecovery ? 'replica' : 'primary';
    if (req.role !== undefined && req.role !== role) return `role ${role} does not match ${req.role}`;
    if (req.restart_pending === true && this.pendingRestart === undefined) return 'no restart is pending';
    if (req.postgres_version !== undefined) {
      const running = (this.lastPg?.probe as { serverVersionNum?: number } | undefined)?.serverVersionNum;
      const [maj = 0, min = 0, patch = 0] = req.postgres_version.split('.').map(Number);
      const wanted = maj >= 10 ? maj * 10000 + min : maj * 10000 + min * 100 + patch;
      if (running === undefined || running >= wanted) return `running version is not lower than ${req.postgres_version}`;
    }
    return undefined;
  }

  /** Re-read the configuration file (SIGHUP / POST /reload) and apply what can change live. */
  async reloadConfig(): Promise<void> {
    if (this.configFile === undefined) return;
    const { config, issues } = await loadConfigFile(this.configFile);
    const errors = issues.filter((i) => i.severity === 'error');
    if (config === undefined || errors.length > 0) {
      this.log.error({ issues: errors.map((i) => `${i.path}: ${i.message}`) }, 'reload: the configuration file is invalid; keeping the running configuration');
      return;
    }
    for (const k of ['scope', 'name', 'namespace'] as const) {
      if (config[k] !== this.config[k]) this.log.warn({}, `reload: ${k} cannot change while running (restart the agent)`);
    }
    this.config = { ...config, scope: this.config.scope, name: this.config.name, namespace: this.config.namespace };
    this.appliedParams = '';
    this.log.info({}, 'configuration file reloaded');
    this.wakeup.fire();
    if (this.onReload !== undefined) {
      try {
        await this.onReload(this.config);
      } catch (err) {
        this.log.error({ err }, 'reload: applying the new configuration failed');
      }
    }
  }

  /** The OperationsPort the REST API uses for its unsafe endpoints. */
  operations(): OperationsPort {
    return {
      name: this.config.name,
      readCluster: () => this.dcs.readCluster(),
      writeFailover: (value, version) => this.dcs.writeFailover(value, version),
      writeConfig: (config, version) => this.dcs.writeConfig(config, version),
      fetchPeer: (name, apiUrl) => {
        // Read at call time: a reload may have changed restapi.authentication.
        const auth = this.config.restapi.authentication;
        return fetchPeerStatus(name, apiUrl, { timeoutMs: 2000, ...(auth !== undefined ? { auth } : {}) });
      },
      wakeup: () => this.wakeup.fire(),
      restart: (req) => this.restartNow(req),
      scheduleRestart: (sr) => {
        if (this.scheduledRestart !== undefined) return false;
        this.scheduledRestart = sr;
        this.snapshot = this.buildSnapshot();
        return true;
      },
      cancelScheduledRestart: () => {
        if (this.scheduledRestart === undefined) return false;
        this.scheduledRestart = undefined;
        this.snapshot = this.buildSnapshot();
        return true;
      },
      reload: () => this.reloadConfig(),
      reinitialize: (opts) => this.reinitializeNow(opts),
      failsafeReceived: (sender) => {
        this.failsafeSender = { name: sender.name, connUrl: sender.connUrl, apiUrl: sender.apiUrl, at: this.now() };
        this.wakeup.fire();
        const pg = this.lastPg;
        const lsn = pg === undefined ? undefined : Math.max(pg.receiveLsn ?? 0, pg.replayLsn ?? 0) || undefined;
        return { lsn };
      },
    };
  }

  private async restartNow(req: RestartRequest): Promise<RestartOutcome> {
    const pg = this.lastPg;
    if (this.task?.state === 'running') {
      return { ok: false, reason: this.task.kind === 'start' ? 'starting' : 'busy', message: this.task.kind === 'start' ? 'postgres is still starting' : `${this.task.kind} already in progress` };
    }
    const refusal = pg === undefined || pg.dataDirEmpty ? 'postgres has no data directory' : this.restartRefusal(req, pg.inRecovery);
    if (refusal !== undefined) return { ok: false, reason: 'conditions', message: 'restart conditions are not satisfied' };
    const obs = { cluster: this.cluster };
    this.startTask({ kind: 'restart', ...(req.timeout !== undefined ? { timeoutMs: req.timeout * 1000 } : {}) }, obs);
    const task = this.task as RunningTask | undefined;
    await task?.done;
    this.wakeup.fire();
    return task?.state === 'ok' ? { ok: true } : { ok: false, reason: 'failed', message: 'restart failed' };
  }

  private async reinitializeNow(opts: { force: boolean; fromLeader: boolean }): Promise<{ ok: true } | { ok: false; message: string }> {
    const cluster = await this.dcs.readCluster();
    const leader = cluster.leader?.name;
    if (leader === undefined) return { ok: false, message: 'Cluster has no leader, can not reinitialize' };
    if (leader === this.config.name) return { ok: false, message: 'I am the leader, can not reinitialize' };
    if (this.task?.state === 'running') {
      if (!opts.force) return { ok: false, message: `${this.task.kind} already in progress` };
      await this.cancelTask();
    }
    const from = opts.fromLeader ? leader : (cloneSource(cluster, this.config.name, leader) ?? leader);
    this.startTask({ kind: 'reinitialize', from }, { cluster });
    this.wakeup.fire();
    return { ok: true };
  }

  // ------------------------------------------------------------------------------------------
  // lifecycle

  /**
   * Graceful stop (SIGTERM): finish the current tick, cancel the background task, stop
   * PostgreSQL (fast), and release the lock only once PostgreSQL is down, so a replica can take
   * over at once without any chance of two writers. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopping && this.loopDone === undefined) return;
    this.stopping = true;
    this.watchAbort?.abort();
    this.wakeup.fire();
    await this.loopDone;
    await this.refresher;
    this.loopDone = undefined;
    const interrupted = this.task;
    await this.cancelTask();
    if (interrupted?.kind === 'bootstrap' && interrupted.state !== 'ok') {
      // A half-done bootstrap must not leave /initialize = "" behind: nobody could bootstrap again.
      await this.pg.stop('immediate').catch(() => undefined);
      await this.dcs.deleteInitialize().catch(() => undefined);
      await this.pg.removeDataDir().catch(() => undefined);
    }
    let stopped = true;
    if (this.dynamic.pause !== true) {
      await this.leaveSyncSet();
      try {
        this.pgState = 'stopping';
        await this.pg.stop('fast', { timeoutMs: this.config.postgresql.pgCtlTimeout * 1000 });
        this.pgState = 'stopped';
      } catch (err) {
        stopped = false;
        this.log.error({}, `PostgreSQL did not stop: ${err instanceof Error ? err.message : String(err)}; keeping the leader lock`);
      }
    }
    if (stopped && this.cluster?.leader?.name === this.config.name && this.dynamic.pause !== true) {
      try {
        await this.publishShutdownOptime();
        await this.dcs.releaseLeader();
        this.log.info({}, 'released the leader lock after stopping PostgreSQL');
      } catch (err) {
        this.log.warn({}, `could not release the leader lock: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (stopped) await this.dcs.deleteMember().catch(() => undefined);
    await this.dcs.close({ keepLease: !stopped });
    // PostgreSQL is down (or paused and the operator's business): stand the fencer down. If
    // PostgreSQL would not stop, the fencer stays armed and kills it at the deadline.
    if (stopped) await this.fence.disarm();
    await this.fence.close();
  }

  /**
   * A synchronous standby that stops (shutdown, restart) first asks to be replaced: it publishes
   * nosync and waits, up to 2 x loop_wait, until the leader has removed it from /sync. Otherwise a
   * cluster with as many sync standbys as synchronous_node_count would stall commits until the
   * leader's next cycle. A DCS error or a failed member write skips the wait.
   */
  private async leaveSyncSet(): Promise<void> {
    const me = this.config.name;
    const cluster = this.cluster;
    const leader = cluster?.leader?.name;
    if (syncModeOf(this.dynamic) === 'off' || this.config.tags.nosync === true || leader === undefined || leader === me) return;
    if (!inSyncSet(cluster?.sync, me)) return;
    this.leavingSync = true;
    try {
      await this.dcs.touchMember(buildMemberData({ ...this.config, tags: { ...this.config.tags, nosync: true, sync_priority: 0 } }, { state: this.pgState, role: this.role }));
      const deadline = this.now() + 2 * this.dynamic.loop_wait * 1000;
      this.log.info({}, 'leaving the synchronous standby set before stopping');
      while (this.now() < deadline) {
        await sleep(Math.min(2000, this.dynamic.loop_wait * 1000));
        const view = await this.dcs.readCluster();
        if (view.leader === undefined || !inSyncSet(view.sync, me) || view.sync?.leader !== view.leader.name) return;
      }
      this.log.warn({}, 'still listed in /sync after 2 x loop_wait; stopping anyway');
    } catch (err) {
      this.log.warn({}, `could not leave the synchronous standby set first: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Stop the loop now without touching PostgreSQL or the DCS keys (tests, fatal errors). */
  async abort(): Promise<void> {
    this.stopping = true;
    this.watchAbort?.abort();
    this.wakeup.fire();
    await this.loopDone;
    await this.refresher;
    this.loopDone = undefined;
  }
}

/** name is listed in /sync's sync_standby (case-insensitive, as Patroni reads it). */
function inSyncSet(sync: SyncState | undefined, name: string): boolean {
  if (typeof sync?.sync_standby !== 'string') return false;
  const want = name.toLowerCase();
  return sync.sync_standby.split(',').some((n) => n.trim().toLowerCase() === want);
}

function describe(a: Action): string {
  if (a.type === 'startTask') return `startTask:${a.task.kind}${'from' in a.task ? `(${a.task.from})` : ''}`;
  if (a.type === 'followUpstream') return `followUpstream(${a.upstream ?? 'none'})`;
  return a.type;
}

/** ISO-8601 with the local offset, as Patroni writes history timestamps. */
function localIso(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const pad = (n: number): string => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const local = new Date(d.getTime() + off * 60_000).toISOString().slice(0, 19);
  return `${local}${sign}${pad(off / 60)}:${pad(off % 60)}`;
}
