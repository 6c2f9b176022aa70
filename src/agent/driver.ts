// The node driver: one tick = observe -> decide -> execute the actions -> update the fencer ->
// publish (member key, REST snapshot). It owns what the shell remembers between ticks (the core's
// memory, the last views, the running background task, the last failures, the fencer's state) and
// reaches the world only through its ports (./ports.ts). It has no timers: whoever drives it (the
// agent's loop, or the simulator's clock) calls tick() and sleeps as the result says; it asks for an
// early tick through `wake`.
//
// Nothing in here decides who is primary: that is src/core. If an `if` below is about that, it is a
// bug.

import { decide } from '../core/decide.ts';
import type {
  ActionFailure,
  ClusterView,
  Decision,
  DynamicConfig,
  Memory,
  Observation,
  PgState,
  Role,
  TaskKind,
  TaskSpec,
} from '../core/model.ts';
import { taskPgState } from '../core/tasks.ts';
import { hotStandbyFeedbackFor } from '../core/logical-failover.ts';
import { sendersChanged, watchedSenders, type WatchedSenders } from '../core/sync-watch.ts';
import { stallThresholdMs } from '../core/sync-stall.ts';
import type { Config } from '../config/types.ts';
import { effectiveDynamicConfig, withLocalOverrides } from '../config/dynamic.ts';
import type { FailsafeSender, ScheduledRestart } from '../api/port.ts';
import type { NodeSnapshot } from '../api/snapshot.ts';
import { isTransientError } from '../postgres/errors.ts';
import { describeAction, execute } from './executor.ts';
import { fenceTimeoutFor, fenceWant } from './fencing.ts';
import { fireCallback, newHookState, roleFromPg, type HookState } from './hooks.ts';
import { publishMember } from './publish.ts';
import { observe } from './observe.ts';
import type { Logger, PgObservation, PgProbe, Ports } from './ports.ts';
import { applyLocalConfig, runDueRestart } from './restarts.ts';
import { buildSnapshot } from './snapshot.ts';
import { runTask } from './tasks.ts';
import { fencedAsLeader, memberRecovery, remoteTarget } from './standby.ts';
import type { Upstream } from '../postgres/conf.ts';
import { dynamicRoleOverrides, type RoleOverridesByRole } from '../postgres/roles.ts';

export interface RunningTask {
  kind: TaskKind;
  spec: TaskSpec;
  startedAt: number;
  state: 'running' | 'ok' | 'failed';
  error?: string;
  /** The failure was about reaching another server (classified when it failed). */
  transient?: boolean;
  from?: string;
  abort: AbortController;
  done: Promise<void>;
}

/** Lets a test harness (the simulator) watch each tick and cut a plan short. */
export interface DriverHooks {
  /** Called with each decision before its actions run; return k to run only the first k of them. */
  decided?(obs: Observation, decision: Decision): number | undefined;
  /** Called after the actions ran (shown: each action, with '!outcome' when it failed). */
  acted?(obs: Observation, decision: Decision, shown: string[], failures: ActionFailure[]): void;
  /** Called when a background task ends. */
  taskEnded?(kind: TaskKind, state: 'ok' | 'failed', error: string | undefined): void;
}

export interface DriverOptions {
  config: Config;
  ports: Ports;
  logger: Logger;
  /** Ask the driver's owner to tick soon (task end, promotion, postmaster exit, fence, operations). */
  wake: () => void;
  hooks?: DriverHooks;
}

export interface TickResult {
  wakeAfterMs: number;
  /** Watch the leader key from this revision until the next tick (we do not hold the lock). */
  watchRevision?: string;
  /** decide() asked the agent to exit (foreign data, ...). */
  exit?: string;
  /** The plan was cut short by hooks.decided (simulator). */
  cut?: boolean;
}

export class NodeDriver {
  // Shell state, read and written by the modules of src/agent (observe, executor, tasks, restarts,
  // shutdown). Owners other than src/agent read it only through getSnapshot().
  config: Config;
  readonly ports: Ports;
  readonly log: Logger;
  readonly wake: () => void;
  readonly hooks: DriverHooks;

  memory: Memory = {};
  dynamic: DynamicConfig;
  lastGoodConfig: Record<string, unknown> | undefined;
  cluster: ClusterView | undefined;
  clusterReadAt: number | undefined;
  lastHealthy: ClusterView | undefined;
  failures: ActionFailure[] = [];
  task: RunningTask | undefined;
  /** Start of the last successful lock acquire/refresh or failsafe confirmation (clock.now()). */
  lockRefreshedAt: number | undefined;
  pgState: PgState = 'stopped';
  role: Role = 'uninitialized';
  lastPg: PgObservation | undefined;
  lastReason = 'starting';
  divergenceCache: { key: string; value: 'need' | 'not_needed' } | undefined;
  tickCount = 0;
  /** A primary in synchronous mode: the streaming WAL senders its last tick saw (else undefined). */
  syncSenders: WatchedSenders | undefined;
  /** A synchronous standby on its way out advertises nosync. */
  leavingSync = false;
  /** Failsafe mode: the last /failsafe value read, and the last primary that confirmed itself to us. */
  failsafeTopology: Record<string, string> | undefined;
  failsafeSender: { name: string; connUrl: string; apiUrl: string; at: number } | undefined;
  /** What the fencer was last armed with ('disarmed' after an acknowledged disarm). */
  fenceKey = '';
  /** When the armed fencer kills PostgreSQL (clock.now()); undefined while disarmed. */
  fenceDeadline: number | undefined;
  /** watchdog.mode required and the device cannot be used: this node must not lead. */
  watchdogFailed = false;
  scheduledRestart: ScheduledRestart | undefined;
  pendingRestart: Record<string, { old_value: string; new_value: string }> | undefined;
  /** The postgresql.conf parameters last rendered (reload re-renders when they change). */
  appliedParams = '';
  /** The user's scripts: the callbacks' role, whether one happened yet, the pre_promote backoff (./hooks.ts). */
  hookState: HookState = newHookState();
  /** Issue 13: the fast take-over's reason, for the /history line of the promotion it leads to; the keep-alive period (member key marker). */
  takeOverReason: string | undefined;
  leaseKeepAliveMs = 0;
  private snapshot: NodeSnapshot;

  constructor(opts: DriverOptions) {
    this.config = opts.config;
    this.ports = opts.ports;
    this.log = opts.logger;
    this.wake = opts.wake;
    this.hooks = opts.hooks ?? {};
    this.dynamic = withLocalOverrides(effectiveDynamicConfig(opts.config.bootstrap?.dcs).config, opts.config.postgresql);
    this.snapshot = this.buildSnapshot();
  }

  /** The latest snapshot for the REST API (never blocks). */
  getSnapshot(): NodeSnapshot {
    return this.snapshot;
  }

  /** Rebuild the REST snapshot from the current state. */
  publish(): void {
    this.snapshot = this.buildSnapshot();
  }

  private buildSnapshot(): NodeSnapshot {
    return buildSnapshot({ ...this, failsafeActive: this.memory.failsafeActive === true }, this.ports.clock.now(), this.ports.clock.wallNow());
  }

  /** The postmaster exited on its own (not while we stop or demote it). */
  postmasterExited(info: { code: number | null; signal: string | null }): void {
    if (this.task?.state === 'running' && (this.task.kind === 'stop' || this.task.kind === 'demote')) return;
    this.log.warn({ ...info }, 'postmaster exited');
    this.pgState = this.dynamic.pause === true ? 'stopped' : 'crashed';
    this.wake();
  }

  /** The fencer killed PostgreSQL. */
  fenced(): void {
    this.pgState = 'crashed';
    this.wake();
  }

  /** One observe-decide-act-publish cycle. */
  async tick(): Promise<TickResult> {
    this.tickCount++;
    const obs = await observe(this);
    this.hookState.role ??= roleFromPg(obs.pg);
    const decision = decide(obs);
    this.memory = decision.memory;
    this.role = decision.role;
    this.syncSenders = watchedSenders(obs, decision.isLeader);
    // The core says we are not (or no longer) the leader: stop answering as one at once.
    if (!decision.isLeader) this.lockRefreshedAt = undefined;
    const planned = decision.actions.map(describeAction);
    for (const l of decision.logs ?? []) this.log[l.level]({}, l.msg);
    if (decision.reason !== this.lastReason) this.log.info({ actions: planned }, decision.reason);
    else this.log.debug({ actions: planned }, decision.reason);
    this.lastReason = decision.reason;

    const k = this.hooks.decided?.(obs, decision);
    if (decision.exit !== undefined) {
      this.log.error({}, decision.exit);
      return { wakeAfterMs: 0, exit: decision.exit };
    }

    // A finished task is reported to decide() once, then forgotten. Only a task that this
    // observation reported as finished is forgotten: one that finished after observe() read its
    // state (observe awaits the DCS, PostgreSQL and peers after that) must still be reported, or
    // its outcome is lost (a finished bootstrap then left memory.bootstrapping set for good).
    const seen = obs.task;
    if (this.task !== undefined && seen !== undefined && seen.state !== 'running' && this.task.startedAt === seen.startedAt && this.task.kind === seen.kind) {
      this.task = undefined;
    }

    const actions = k === undefined ? decision.actions : decision.actions.slice(0, k);
    const { failures, attempted } = await execute(this, actions, obs);
    this.failures = failures;
    for (const f of failures) this.log.warn({ action: f.action, outcome: f.outcome }, `action failed: ${f.message}`);
    await this.updateFence(fencedAsLeader(decision, obs));
    if (this.hooks.acted !== undefined) {
      const shown = actions.slice(0, attempted).map(describeAction);
      const failed = failures[0];
      if (failed !== undefined) shown[attempted - 1] = `${shown[attempted - 1] ?? ''}!${failed.outcome}`;
      this.hooks.acted(obs, decision, shown, failures);
    }
    if (k !== undefined) return { wakeAfterMs: 0, cut: true };

    // The first tick that finds PostgreSQL up and idle without a start of ours (the agent joined a
    // running PostgreSQL): on_start, as Patroni's first cycle does.
    if (!this.hookState.called && obs.cluster !== undefined && this.task?.state !== 'running' && obs.pg.running && obs.pg.ready) {
      fireCallback(this, 'on_start', obs.pg.inRecovery ? 'replica' : 'primary');
    }
    if (this.failures.length === 0 && this.task === undefined && obs.pg.running && obs.pg.ready) {
      await applyLocalConfig(this, obs.cluster, true).catch((err: unknown) => this.log.warn({}, `could not apply the configuration: ${err instanceof Error ? err.message : String(err)}`));
      runDueRestart(this, obs);
    }
    if (obs.cluster !== undefined) await this.touchMember(obs.config);
    this.publish();

    const holdLock = obs.cluster?.leader?.name === this.config.name;
    const watchRevision =
      obs.cluster !== undefined && obs.cluster.leader !== undefined && !holdLock && this.task?.state !== 'running' ? obs.cluster.revision : undefined;
    return { wakeAfterMs: decision.wakeAfterMs, ...(watchRevision !== undefined ? { watchRevision } : {}) };
  }

  /** Between ticks: re-probe a running, idle PostgreSQL so the snapshot's WAL positions stay fresh. */
  async refreshProbe(timeoutMs: number, stale: () => boolean): Promise<void> {
    const pg = this.lastPg;
    if (pg === undefined || !pg.running || this.task?.state === 'running') return;
    try {
      const probe = await this.ports.pg.probe({ timeoutMs });
      if (stale() || this.lastPg !== pg) return;
      this.checkSenders(probe);
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
      this.publish();
    } catch {
      // PostgreSQL did not answer in time: the next tick notices and decides.
    }
  }

  /**
   * Between ticks, while we hold the lock (the lease keep-alive of issue 13, when the agent runs
   * it): extend the lease and check that the leader key is still ours, writing nothing; then move
   * the fencing deadline as after a lock refresh (same argument: etcd renews the lease after this
   * call started, so it cannot expire before start + ttl). A key that is not ours any more wakes
   * the loop; no answer changes nothing (the tick's own refresh decides). The caller runs it only
   * while no tick runs; a lock state changed meanwhile by a task discards the result.
   */
  async keepAliveLock(budgetMs: number): Promise<void> {
    const before = this.lockRefreshedAt;
    const keep = this.ports.dcs.keepLeader?.bind(this.ports.dcs);
    if (before === undefined || keep === undefined || this.dynamic.pause === true) return;
    const start = this.ports.clock.now();
    let ours: boolean;
    try {
      ours = await keep({ signal: this.ports.clock.timeout(budgetMs) });
    } catch {
      return;
    }
    if (this.lockRefreshedAt !== before) return;
    if (!ours) {
      this.log.warn({}, 'lease keep-alive: the leader key is not ours any more');
      this.wake();
      return;
    }
    this.lockRefreshedAt = start;
    await this.updateFence(true);
    this.publish();
  }

  /**
   * Between ticks, on a primary in synchronous mode only: probe PostgreSQL and tick at once when a
   * new WAL sender streams, or a watched one stops streaming or stops answering (the simulator's
   * stand-in for the snapshot refresher, which does the same through refreshProbe).
   */
  async watchSenders(timeoutMs: number): Promise<void> {
    if (this.syncSenders === undefined || this.task?.state === 'running') return;
    try {
      this.checkSenders(await this.ports.pg.probe({ timeoutMs }));
    } catch {
      // PostgreSQL did not answer in time: the next tick notices and decides.
    }
  }

  /** The WAL senders changed since the last tick (core/sync-watch.ts sendersChanged): make the sync step look at them now. */
  private checkSenders(probe: PgProbe): void {
    const known = this.syncSenders;
    if (known === undefined || probe.inRecovery || !Array.isArray(probe.replication)) return;
    const change = sendersChanged(known, probe, stallThresholdMs(this.dynamic));
    if (change === undefined) return;
    this.syncSenders = undefined;
    const what = change === 'new' ? 'a new WAL sender streams' : 'a WAL sender stopped streaming or stopped answering';
    this.log.info({}, `${what}: running the synchronous replication step now`);
    this.wake();
  }

  /** The dynamic configuration from /config (else bootstrap.dcs); new lock timings go to the DCS client. */
  applyDynamicConfig(raw: Record<string, unknown> | undefined): void {
    // An unusable value keeps the one in force (issue 14): errors are logged once per change.
    const { config, warnings, errors } = effectiveDynamicConfig(raw, this.dynamic);
    const prev = this.dynamic;
    this.dynamic = withLocalOverrides(config, this.config.postgresql);
    if (prev.ttl !== config.ttl || prev.retry_timeout !== config.retry_timeout || this.tickCount === 1) {
      this.ports.dcs.setTtl(config.ttl);
      this.ports.dcs.setRetryTimeout(config.retry_timeout);
      for (const w of warnings) this.log.warn({}, `dynamic configuration: ${w}`);
    }
    const errorText = errors.join('; ');
    if (errorText !== this.dynamicErrors && errorText !== '') this.log.error({}, `dynamic configuration in the DCS is unusable, kept the values in force: ${errorText}`);
    else if (errorText === '' && this.dynamicErrors !== '') this.log.info({}, 'dynamic configuration in the DCS is usable again');
    this.dynamicErrors = errorText;
  }
  private dynamicErrors = '';

  /** We hold the lock since `t`: the cached view says so too until the next read. */
  tookLock(t: number): void {
    this.lockRefreshedAt = t;
    if (this.cluster !== undefined) this.cluster = { ...this.cluster, leader: { name: this.config.name, version: '', session: '' } };
    this.publish();
  }

  upstreamTarget(name: string | null, cluster: ClusterView | undefined): Upstream | null {
    if (name === null) return null;
    const remote = remoteTarget(name);
    if (remote !== undefined) return remote;
    const m = (cluster ?? this.cluster)?.members.find((x) => x.name === name);
    if (m?.data.conn_url === undefined) throw new Error(`member ${name} has no conn_url in the DCS`);
    return { connUrl: m.data.conn_url, name, ...memberRecovery(this.dynamic) };
  }

  pgParameters(): Record<string, unknown> | null {
    return (this.dynamic.postgresql.parameters as Record<string, unknown> | null | undefined) ?? null;
  }

  /**
   * What postgresql.conf, pg_hba.conf and pg_ident.conf take from the dynamic configuration, and
   * whether this node leads a standby cluster (its standby_leader role overrides then apply).
   */
  pgInputs(): {
    parameters: Record<string, unknown> | null; pgHba: string[] | null; pgIdent: string[] | null; useSlots: boolean;
    recoveryConf: Record<string, unknown> | null; hotStandbyFeedback: boolean; roleOverrides: RoleOverridesByRole; standbyLeader: boolean;
  } {
    const pg = this.dynamic.postgresql;
    const lines = (v: unknown): string[] | null => (Array.isArray(v) && v.every((l) => typeof l === 'string') ? (v as string[]) : null);
    const rc = pg.recovery_conf;
    const recoveryConf = rc !== null && typeof rc === 'object' && !Array.isArray(rc) ? (rc as Record<string, unknown>) : null;
    // hot_standby_feedback is forced on where logical slot copies need it (core/slots.ts).
    const hotStandbyFeedback = hotStandbyFeedbackFor(this.config.name, this.config.tags, this.dynamic as unknown as Record<string, unknown>, this.cluster);
    const roles = { roleOverrides: dynamicRoleOverrides(pg), standbyLeader: this.role === 'standby_leader' };
    return { parameters: this.pgParameters(), pgHba: lines(pg.pg_hba), pgIdent: lines(pg.pg_ident), useSlots: pg.use_slots !== false, recoveryConf, hotStandbyFeedback, ...roles };
  }

  // ---- the background task -------------------------------------------------------------------

  async cancelTask(): Promise<void> {
    const t = this.task;
    if (t === undefined || t.state !== 'running') return;
    t.abort.abort();
    await Promise.race([t.done, this.ports.clock.sleep(15_000)]);
  }

  startTask(spec: TaskSpec, obs: Pick<Observation, 'cluster'>): void {
    if (this.task?.state === 'running') throw new Error(`${this.task.kind} already in progress`);
    const abort = new AbortController();
    const task: RunningTask = { kind: spec.kind, spec, startedAt: this.ports.clock.now(), state: 'running', abort, done: Promise.resolve(), ...('from' in spec && spec.from !== null ? { from: spec.from } : {}) };
    this.pgState = taskPgState(spec.kind) ?? this.pgState;
    this.task = task;
    task.done = runTask(this, spec, obs.cluster, abort.signal)
      .then(
        () => {
          task.state = 'ok';
          this.log.info({ task: spec.kind }, `${spec.kind} finished`);
        },
        (err: unknown) => {
          task.state = 'failed';
          task.error = err instanceof Error ? err.message : String(err);
          // Classified now, from the error's class and code (src/postgres/errors.ts, DcsError).
          if (isTransientError(err)) task.transient = true;
          this.log.error({ task: spec.kind }, `${spec.kind} failed: ${task.error}`);
          if (spec.kind === 'start' || spec.kind === 'bootstrap') this.pgState = spec.kind === 'start' ? 'start failed' : 'initdb failed';
        },
      )
      .finally(() => {
        this.hooks.taskEnded?.(spec.kind, task.state === 'ok' ? 'ok' : 'failed', task.error);
        this.wake();
      });
    this.publish();
  }

  // ---- the fencer -------------------------------------------------------------------------------

  /** After the actions: arm, disarm or keep the fencer (policy in ./fencing.ts). */
  async updateFence(isLeader: boolean): Promise<void> {
    const pg = this.lastPg;
    const w = fenceWant({
      isLeader,
      lockRefreshedAt: this.lockRefreshedAt,
      paused: this.dynamic.pause === true,
      pg: pg === undefined ? undefined : { running: pg.running, inRecovery: pg.inRecovery },
      runningTask: this.task?.state === 'running' ? this.task.kind : undefined,
    });
    if (w.want === 'keep') return;
    if (w.want === 'disarm') {
      if (this.fenceKey === 'disarmed') return;
      if (await this.ports.fence.disarm()) {
        this.fenceKey = 'disarmed';
        this.fenceDeadline = undefined;
      }
      return;
    }
    await this.armFence(w.byDataDir);
  }

  /**
   * Arm the fencer with the current lock timings: for the running postmaster, or, while PostgreSQL
   * is being (re)started by the lock holder (`byDataDir`), for whatever postmaster will run in the
   * data directory, so that it is never a primary without a fencer even if this agent dies before
   * its next tick.
   */
  async armFence(byDataDir: boolean): Promise<void> {
    const refreshed = this.lockRefreshedAt;
    if (refreshed === undefined || this.dynamic.pause === true) return;
    const running = (await this.ports.pg.isRunning()).pid;
    const pid = running ?? (byDataDir ? 0 : undefined);
    if (pid === undefined) return;
    const { timeoutMs, warning } = fenceTimeoutFor(this.dynamic, this.config.watchdog.safetyMargin);
    const key = `${pid}/${refreshed}/${timeoutMs}`;
    if (key === this.fenceKey) return;
    if (warning !== undefined && !this.fenceKey.startsWith(`${pid}/`)) this.log.warn({}, `fencing: ${warning}`);
    const res = await this.ports.fence.arm({ pid, refreshStartMs: refreshed, timeoutMs });
    if (res.ok) {
      this.fenceKey = key;
      this.fenceDeadline = refreshed + timeoutMs;
    } else this.log.error({ ...res }, 'could not arm the fencer');
  }

  // ---- publish ----------------------------------------------------------------------------------

  /** Writes our member key from the current state (./publish.ts). */
  async touchMember(dynamic: Pick<DynamicConfig, 'pause'>): Promise<void> {
    await publishMember(this, dynamic);
  }

  // ---- requests from the REST API ---------------------------------------------------------------

  /** POST /failsafe accepted: remember the sender; answer with our last receive/replay LSN. */
  failsafeReceived(sender: FailsafeSender): { lsn: number | undefined } {
    this.failsafeSender = { name: sender.name, connUrl: sender.connUrl, apiUrl: sender.apiUrl, at: this.ports.clock.now() };
    this.wake();
    const pg = this.lastPg;
    const lsn = pg === undefined ? undefined : Math.max(pg.receiveLsn ?? 0, pg.replayLsn ?? 0) || undefined;
    return { lsn };
  }

  scheduleRestart(sr: ScheduledRestart): boolean {
    if (this.scheduledRestart !== undefined) return false;
    this.scheduledRestart = sr;
    this.publish();
    return true;
  }

  cancelScheduledRestart(): boolean {
    if (this.scheduledRestart === undefined) return false;
    this.scheduledRestart = undefined;
    this.publish();
    return true;
  }

  /** A reloaded configuration file (scope, name and namespace stay). */
  setConfig(config: Config): void {
    this.config = { ...config, scope: this.config.scope, name: this.config.name, namespace: this.config.namespace };
    this.appliedParams = '';
  }
}
