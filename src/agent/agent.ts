// The agent process around the node driver (./driver.ts): it plugs in the real ports, and owns the
// timers (the HA loop, the DCS watch, the snapshot refresher), the REST API's operations port,
// configuration reloads and the lifecycle (start, graceful stop, abort).
//
// One tick at a time. Long PostgreSQL work runs as the driver's single background task so that the
// loop keeps refreshing the leader lock meanwhile. The loop wakes early when the leader key changes
// (DCS watch), when the postmaster exits, when a task finishes, or when an action failed (so its
// failure is decided on at once).

import { resolve } from 'node:path';

import type { Config } from '../config/types.ts';
import { loadConfigFile } from '../config/load.ts';
import type { OperationsPort } from '../api/port.ts';
import { fetchPeerStatus, peerTls } from '../api/peers.ts';
import type { NodeSnapshot } from '../api/snapshot.ts';
import type { Dcs } from '../dcs/dcs.ts';
import type { PostgresController } from '../postgres/controller.ts';
import { Fence } from '../fence/fence.ts';
import { planWatchdog } from '../fence/watchdog.ts';
import { keepAlivePeriodMs } from '../core/fast-failover.ts';
import { NodeDriver } from './driver.ts';
import { FastFailover } from './fast-failover.ts';
import { realFastPeers } from './fast-peers.ts';
import type { Logger } from './ports.ts';
import { filePromiseStore, realClock, realHooksPort, realPeersPort, realPgPort, sleep } from './real-ports.ts';
import { reinitializeNow, restartNow } from './restarts.ts';
import { shutdown } from './shutdown.ts';

export type { Logger } from './ports.ts';

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
  /**
   * Lease keep-alive period, ms (issue 13; docs/guarantees.md section 7.2 step 1): while this node
   * holds the lock, extend the lease and confirm the leader key that often between ticks, moving
   * the fencing deadline each time. undefined or 0: off (the lock is refreshed once per loop).
   */
  leaseKeepAliveMs?: number;
}

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
  private readonly configFile: string | undefined;
  private readonly dcs: Dcs;
  private readonly log: Logger;
  private readonly onFatal: ((message: string) => void) | undefined;
  private readonly onReload: ((config: Config) => void | Promise<void>) | undefined;
  private readonly driver: NodeDriver;
  private readonly fence: Fence;
  private readonly wakeup = new Wakeup();
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private refresher: Promise<void> | undefined;
  private watchAbort: AbortController | undefined;
  private ticking = false;
  private readonly keepAliveMs: number;
  /** The keep-alive in flight; a tick starts only after it ended. */
  private keepAlive: Promise<void> | undefined;
  private keepAliveDone: Promise<void> | undefined;
  /** The fast failover of synchronous modes (issue 13): its step in flight (a tick waits for it). */
  private readonly fast: FastFailover;
  private fastStep: Promise<void> | undefined;
  private fastDone: Promise<void> | undefined;

  constructor(opts: AgentOptions) {
    this.dcs = opts.dcs;
    this.log = opts.logger;
    this.onFatal = opts.onFatal;
    this.configFile = opts.configFile;
    this.onReload = opts.onReload;
    this.keepAliveMs = opts.leaseKeepAliveMs ?? 0;
    const clock = realClock(opts.now);
    this.fence = new Fence({
      dataDir: opts.pg.dataDir,
      logger: this.log,
      now: clock.now,
      onFenced: (ev) => {
        this.log.error({ ...ev }, 'the fencer killed PostgreSQL: the leader lock could not be confirmed in time');
        this.driver.fenced();
      },
    });
    this.fast = new FastFailover(() => this.driver, realFastPeers(() => this.driver.config), { store: filePromiseStore(`${resolve(opts.pg.dataDir)}.vigil-detach.json`) });
    this.driver = new NodeDriver({
      config: opts.config,
      ports: { pg: this.fast.guard(realPgPort(opts.pg)), dcs: opts.dcs, peers: realPeersPort(() => this.driver.config), fence: this.fence, clock, hooks: realHooksPort(this.log) },
      logger: this.log,
      wake: () => this.wakeup.fire(),
    });
    this.driver.leaseKeepAliveMs = this.keepAliveMs;
  }

  /** The latest snapshot for the REST API (never blocks). */
  getSnapshot(): NodeSnapshot {
    return this.driver.getSnapshot();
  }

  /** Called by the PostgreSQL controller when the postmaster exits on its own. */
  postmasterExited(info: { code: number | null; signal: string | null }): void {
    this.driver.postmasterExited(info);
  }

  /** Start the loop (and the snapshot refresher). */
  start(): void {
    void this.fence.start();
    void this.planWatchdog();
    this.loopDone = this.loop();
    this.refresher = this.refreshLoop();
    this.keepAliveDone = this.keepAliveLoop();
    this.fastDone = this.fastLoop();
  }

  /**
   * The fast failover's detection on a /sync standby (issue 13, ./fast-failover.ts): about once a
   * second between ticks; a tick starts only after the step in flight ended. It does nothing unless
   * the dynamic configuration turns it on.
   */
  private async fastLoop(): Promise<void> {
    while (!this.stopping) {
      await sleep(1000);
      if (this.stopping || this.ticking) continue;
      this.fastStep = this.fast.step().catch((err: unknown) => this.log.error({ err: String(err) }, 'fast failover step failed'));
      await this.fastStep;
      this.fastStep = undefined;
    }
  }

  /**
   * The lease keep-alive: leaseKeepAliveMs, else every second while the fast failover is on (its
   * leader must renew that often); between ticks only, each bounded by one period.
   */
  private async keepAliveLoop(): Promise<void> {
    while (!this.stopping) {
      const period = keepAlivePeriodMs(this.driver.dynamic, this.keepAliveMs);
      await sleep(period > 0 ? period : 1000);
      if (period === 0) continue;
      if (this.stopping || this.ticking) continue;
      this.keepAlive = this.driver.keepAliveLock(period);
      await this.keepAlive;
      this.keepAlive = undefined;
    }
  }

  /** Linux watchdog (watchdog.mode): the fencer keeps the device alive while it is armed. */
  private async planWatchdog(): Promise<void> {
    try {
      const d = this.driver;
      const plan = await planWatchdog(d.config.watchdog, { ttl: d.dynamic.ttl, loopWait: d.dynamic.loop_wait });
      for (const m of plan.messages) this.log.warn({}, `watchdog: ${m.message}`);
      this.fence.setWatchdogDevice(plan.use ? plan.device : undefined);
      d.watchdogFailed = !plan.healthy;
    } catch (err) {
      this.log.error({}, `watchdog: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Between ticks, re-probe PostgreSQL about once a second so that the REST API (and the WAL
   * positions peers compare during a leader race) is at most about a second old, not a whole
   * loop_wait. The probe has its own deadline; a hung PostgreSQL only makes the snapshot stale.
   */
  private async refreshLoop(): Promise<void> {
    while (!this.stopping) {
      await sleep(Math.min(1000, this.driver.dynamic.loop_wait * 1000));
      if (this.stopping || this.ticking) continue;
      await this.driver.refreshProbe(1000, () => this.ticking);
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let wakeMs: number;
      let watchRevision: string | undefined;
      while (this.keepAlive !== undefined || this.fastStep !== undefined) await (this.keepAlive ?? this.fastStep);
      this.ticking = true;
      try {
        const res = await this.driver.tick();
        if (res.exit !== undefined) {
          this.stopping = true;
          this.onFatal?.(res.exit);
          break;
        }
        wakeMs = res.wakeAfterMs;
        watchRevision = res.watchRevision;
      } catch (err) {
        this.log.error({ err: String(err instanceof Error ? err.stack : err) }, 'unexpected error in the HA loop');
        wakeMs = 1000;
      } finally {
        this.ticking = false;
      }
      if (this.stopping) break;
      if (this.driver.failures.length > 0) wakeMs = Math.min(wakeMs, 100);
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

  /** Re-read the configuration file (SIGHUP / POST /reload) and apply what can change live. */
  async reloadConfig(): Promise<void> {
    if (this.configFile === undefined) return;
    let loaded;
    try {
      loaded = await loadConfigFile(this.configFile);
    } catch (err) {
      // Unreadable (removed, permissions): a SIGHUP must not end the agent.
      this.log.error({}, `reload: ${err instanceof Error ? err.message : String(err)}; keeping the running configuration`);
      return;
    }
    const { config, issues } = loaded;
    const errors = issues.filter((i) => i.severity === 'error');
    if (config === undefined || errors.length > 0) {
      this.log.error({ issues: errors.map((i) => `${i.path}: ${i.message}`) }, 'reload: the configuration file is invalid; keeping the running configuration');
      return;
    }
    const running = this.driver.config;
    for (const k of ['scope', 'name', 'namespace'] as const) {
      if (config[k] !== running[k]) this.log.warn({}, `reload: ${k} cannot change while running (restart the agent)`);
    }
    this.driver.setConfig(config);
    this.log.info({}, 'configuration file reloaded');
    this.wakeup.fire();
    if (this.onReload !== undefined) {
      try {
        await this.onReload(this.driver.config);
      } catch (err) {
        this.log.error({ err }, 'reload: applying the new configuration failed');
      }
    }
  }

  /** The OperationsPort the REST API uses for its unsafe endpoints. */
  operations(): OperationsPort {
    const d = this.driver;
    return {
      name: d.config.name,
      readCluster: () => this.dcs.readCluster(),
      writeFailover: (value, version) => this.dcs.writeFailover(value, version),
      writeConfig: (config, version) => this.dcs.writeConfig(config, version),
      fetchPeer: (name, apiUrl) => {
        // Read at call time: a reload may have changed restapi.authentication.
        const auth = d.config.restapi.authentication;
        return fetchPeerStatus(name, apiUrl, { timeoutMs: 2000, ...(auth !== undefined ? { auth } : {}), tls: peerTls(d.config.restapi) });
      },
      wakeup: () => this.wakeup.fire(),
      restart: (req) => restartNow(d, req),
      scheduleRestart: (sr) => d.scheduleRestart(sr),
      cancelScheduledRestart: () => d.cancelScheduledRestart(),
      reload: () => this.reloadConfig(),
      reinitialize: (opts) => reinitializeNow(d, opts),
      failsafeReceived: (sender) => d.failsafeReceived(sender),
      detachFrom: (req) => this.fast.detach(req),
    };
  }

  /**
   * Graceful stop (SIGTERM): finish the current tick, then stop PostgreSQL and hand over
   * (./shutdown.ts). Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopping && this.loopDone === undefined) return;
    await this.abort();
    await shutdown(this.driver);
    await this.fence.close();
  }

  /** Stop the loop now without touching PostgreSQL or the DCS keys (tests, fatal errors). */
  async abort(): Promise<void> {
    this.stopping = true;
    this.watchAbort?.abort();
    this.wakeup.fire();
    await this.loopDone;
    await this.refresher;
    await this.keepAliveDone;
    await this.fastDone;
    this.loopDone = undefined;
  }
}
