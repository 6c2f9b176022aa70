// The task scripts: the long PostgreSQL work of one background task (bootstrap, clone, start,
// promote, demote, restart, stop, rewind, reinitialize) as port calls in order. A script rejects at
// the first failed step; the driver records the failure (and whether it was transient) for the
// next decide(). A script checks its abort signal after the steps that may take long.

import type { ClusterView, HistoryLine, TaskSpec } from '../core/model.ts';
import { lsnToNumber } from '../postgres/lsn.ts';
import { parseTimelineHistory, type HistoryEntry } from '../postgres/divergence.ts';
import { fireCallback, primaryStopTimeoutMs, runPrePromote, started, stopPostgres } from './hooks.ts';
import { applyLocalConfig, reloadForRole } from './restarts.ts';
import type { NodeDriver } from './driver.ts';
import { followRole } from './standby.ts';
import { remoteFromName, standbyCluster } from '../core/standby.ts';

export async function runTask(d: NodeDriver, spec: TaskSpec, cluster: ClusterView | undefined, signal: AbortSignal): Promise<void> {
  const { pg, dcs } = d.ports;
  const startTimeout = { timeoutMs: d.config.postgresql.pgCtlTimeout * 1000 };
  const checkAbort = (): void => {
    if (signal.aborted) throw new Error(`${spec.kind} cancelled`);
  };
  switch (spec.kind) {
    case 'bootstrap': {
      if (spec.remote !== undefined) {
        await bootstrapStandbyLeader(d, spec.remote, signal);
        return;
      }
      const b = d.config.bootstrap;
      if (b === undefined) throw new Error('no bootstrap section in the configuration');
      if (b.custom !== undefined) {
        if (pg.customBootstrap === undefined) throw new Error('custom bootstrap is not available here');
        d.pgState = 'running custom bootstrap script';
        await pg.customBootstrap(b.custom, { signal });
        checkAbort();
        d.pgState = 'starting after custom bootstrap';
      } else {
        await pg.initdb(b);
      }
      // A custom bootstrap's recovery_conf / keep_existing_recovery_conf: the recovery settings of
      // the restore (recovery targets, hot_standby off) until it has promoted itself.
      const c = b.custom;
      const recovery = c !== undefined && (c.recoveryConf !== undefined || c.keepExistingRecoveryConf)
        ? { keepExisting: c.keepExistingRecoveryConf, ...(c.recoveryConf !== undefined ? { recoveryConf: c.recoveryConf } : {}) }
        : undefined;
      await pg.writeConfig({ role: 'primary', upstream: null, ...d.pgInputs(), ...(recovery !== undefined ? { bootstrapRecovery: recovery } : {}) });
      await pg.start(startTimeout);
      // A restored backup may recover to a target first: wait until it has promoted itself (or
      // PostgreSQL gave up: then the bootstrap fails).
      while (b.custom !== undefined && (await pg.probe().catch(() => undefined))?.inRecovery !== false) {
        checkAbort();
        if (!(await pg.isRunning()).running) throw new Error('PostgreSQL stopped during the recovery after the custom bootstrap');
        await d.ports.clock.sleep(1000);
      }
      if (recovery !== undefined) {
        // Recovered and promoted: a primary's configuration (no recovery targets, hot_standby on),
        // with a restart when a postmaster-context setting changed, as Patroni restarts then.
        const res = await pg.writeConfig({ role: 'primary', upstream: null, ...d.pgInputs() });
        if (res.needsRestart) {
          d.log.info({ restart: res.restartReasons }, 'restarting PostgreSQL after the custom bootstrap\'s recovery');
          await pg.stop('fast');
          await pg.start(startTimeout);
        } else if (res.changed) await pg.reload();
      }
      d.pgState = 'running';
      try {
        await pg.postBootstrap(b, { signal });
      } catch (err) {
        // As Patroni: a failed post_bootstrap (script or roles) aborts the bootstrap. PostgreSQL
        // is stopped so that the failed task's handling can remove the data directory and
        // /initialize for a new race.
        await pg.stop('immediate').catch((e: unknown) => d.log.warn({}, `could not stop PostgreSQL after a failed bootstrap: ${String(e)}`));
        d.pgState = 'stopped';
        throw err;
      }
      started(d, 'primary');
      return;
    }
    case 'clone': {
      const src = copySource(d, spec.from, cluster);
      await pg.basebackup(src.from, { signal, ...src.opts });
      checkAbort();
      await startAsReplica(d, spec.from, cluster);
      return;
    }
    case 'start':
      if (spec.asPrimary) await pg.writeConfig({ role: 'primary', upstream: null, ...d.pgInputs() });
      else await pg.writeConfig({ role: 'replica', upstream: d.upstreamTarget(spec.upstream, cluster), ...d.pgInputs() });
      d.pgState = 'starting';
      // The fencer guards the data directory before a primary can come up.
      if (spec.asPrimary) await d.armFence(true);
      try {
        await pg.start(startTimeout);
      } catch (err) {
        // A primary that would not start is one no more (Patroni's post_recover).
        if (spec.asPrimary && d.hookState.role === 'primary') fireCallback(d, 'on_role_change', 'demoted');
        throw err;
      }
      d.pgState = 'running';
      started(d, spec.asPrimary ? 'primary' : followRole(d, spec.upstream));
      return;
    case 'promote': {
      const refusal = await runPrePromote(d, signal);
      checkAbort();
      if (refusal !== undefined) {
        // Patroni releases the lock on its next cycle; giving it up here is the same, sooner. The
        // driver keeps this node out of races for ttl (./hooks.ts prePromoteBackoff).
        d.hookState.prePromoteFailedAt = d.ports.clock.now();
        d.lockRefreshedAt = undefined;
        d.role = 'replica';
        d.publish();
        await dcs.releaseLeader().catch((err: unknown) => d.log.warn({}, `could not release the leader lock: ${String(err)}`));
        throw new Error(`promotion cancelled: ${refusal}; released the leader lock`);
      }
      await pg.promote({ timeoutMs: d.dynamic.loop_wait * 1000 + 10_000 });
      fireCallback(d, 'on_role_change', 'primary');
      d.role = 'primary';
      if (d.lastPg !== undefined) d.lastPg = { ...d.lastPg, inRecovery: false };
      d.publish();
      d.wake();
      await reloadForRole(d, await pg.writeConfig({ role: 'primary', upstream: null, ...d.pgInputs() }));
      await publishHistory(d);
      // A checkpoint on the new timeline lets former primaries run pg_rewind against us at once.
      await pg.checkpoint().catch((err: unknown) => d.log.warn({}, `checkpoint after promote failed: ${String(err)}`));
      return;
    }
    case 'demote': {
      if (spec.mode === 'graceful') {
        // A checkpoint first makes the shutdown checkpoint short: clients are cut off only
        // for the stop itself, not for flushing a large amount of dirty data.
        await pg.checkpoint({ timeoutMs: 30_000 }).catch((err: unknown) => d.log.warn({}, `checkpoint before switchover failed: ${String(err)}`));
      }
      const stopTimeoutMs = primaryStopTimeoutMs(d.dynamic);
      await stopPostgres(
        d,
        spec.mode === 'graceful' || spec.mode === 'offline' || spec.mode === 'demote-cluster' ? 'fast' : 'immediate',
        { ...(spec.mode === 'graceful' ? { checkpoint: false } : {}), ...(stopTimeoutMs !== undefined ? { timeoutMs: stopTimeoutMs } : {}) },
        true,
      );
      d.hookState.role = 'demoted';
      d.pgState = 'stopped';
      if (spec.mode === 'graceful') {
        // PostgreSQL is down (its WAL senders sent everything up to the shutdown checkpoint):
        // publish where it ended and hand the lock over.
        d.lockRefreshedAt = undefined;
        await publishShutdownOptime(d);
        await dcs.releaseLeader();
        d.log.info({ candidate: spec.upstream }, 'released the leader lock for a switchover');
      }
      if (spec.mode === 'offline') {
        // The DCS cannot be read: restart read-only following nobody.
        await pg.writeConfig({ role: 'replica', upstream: null, ...d.pgInputs() });
        await pg.start(startTimeout);
        d.pgState = 'running';
        started(d, 'replica');
      }
      return;
    }
    case 'restart': {
      d.pgState = 'restarting';
      await stopPostgres(d, 'fast', undefined, false);
      await applyLocalConfig(d, cluster, false);
      if (d.lastPg?.inRecovery === false) await d.armFence(true);
      await pg.start({ timeoutMs: spec.timeoutMs ?? startTimeout.timeoutMs });
      d.pgState = 'running';
      d.pendingRestart = undefined;
      started(d, d.lastPg?.inRecovery === false ? 'primary' : 'replica', true);
      return;
    }
    case 'stop':
      await stopPostgres(d, spec.mode, undefined, true);
      d.pgState = 'stopped';
      if (spec.releaseLeader) {
        d.lockRefreshedAt = undefined;
        await dcs.releaseLeader();
      }
      return;
    case 'rewind': {
      const from = d.upstreamTarget(spec.from, cluster) as { connUrl: string };
      await pg.rewind({ connUrl: from.connUrl }, { signal });
      checkAbort();
      d.divergenceCache = undefined;
      await startAsReplica(d, spec.from, cluster);
      return;
    }
    case 'reinitialize': {
      const src = copySource(d, spec.from, cluster);
      await stopPostgres(d, 'immediate', undefined, true);
      await pg.removeDataDir();
      d.hookState.role = 'uninitialized';
      d.pgState = 'creating replica';
      await pg.basebackup(src.from, { signal, ...src.opts });
      checkAbort();
      d.divergenceCache = undefined;
      await startAsReplica(d, spec.from, cluster);
      return;
    }
  }
}

async function startAsReplica(d: NodeDriver, upstream: string | null, cluster: ClusterView | undefined): Promise<void> {
  await d.ports.pg.writeConfig({ role: 'replica', upstream: d.upstreamTarget(upstream, cluster), ...d.pgInputs() });
  d.pgState = 'starting';
  await d.ports.pg.start({ timeoutMs: d.config.postgresql.pgCtlTimeout * 1000 });
  d.pgState = 'running';
  started(d, followRole(d, upstream));
}

/**
 * Where and how a copy of `name` is made (clone, reinitialize, a standby cluster's bootstrap):
 * - the remote member of a standby cluster (its reserved name): with standby_cluster.
 *   create_replica_methods ([] when the section has none: basebackup), as Patroni copies a remote
 *   member, from its host:port, or without a connection (only the no_leader methods run) when the
 *   section has neither (fed from the archive only);
 * - a member of a standby cluster (the standby leader, a clonefrom member): from its conn_url, with
 *   the same standby_cluster.create_replica_methods, since Patroni copies every source of a standby
 *   cluster as a remote member (that member's address, the replication credentials);
 * - a member of a primary cluster: from its conn_url, with this member's own
 *   postgresql.create_replica_methods;
 * - null (no leader, not a standby cluster): without a connection, own no_leader methods only.
 */
function copySource(d: NodeDriver, name: string | null, cluster: ClusterView | undefined): { from: { connUrl: string } | undefined; opts: { methods?: string[] } } {
  const target = d.upstreamTarget(name, cluster);
  const remote = remoteFromName(name);
  const from = target === null || (remote !== undefined && target.connUrl === '') ? undefined : { connUrl: target.connUrl };
  if (remote !== undefined) return { from, opts: { methods: remote.createReplicaMethods ?? [] } };
  const sc = name !== null ? standbyCluster(d.dynamic) : undefined;
  return { from, opts: sc !== undefined ? { methods: sc.create_replica_methods ?? [] } : {} };
}

/**
 * A standby cluster's first member (spec 9.4): a copy of the remote member made with
 * standby_cluster.create_replica_methods (default pg_basebackup from host:port), started following
 * it. decide() then takes the lock as the standby leader.
 */
async function bootstrapStandbyLeader(d: NodeDriver, remote: string, signal: AbortSignal): Promise<void> {
  const src = copySource(d, remote, undefined);
  d.pgState = 'creating replica';
  await d.ports.pg.basebackup(src.from, { signal, ...src.opts });
  if (signal.aborted) throw new Error('bootstrap cancelled');
  d.role = 'standby_leader';
  await startAsReplica(d, remote, undefined);
}

/** After a clean stop of the primary: /status.optime = the shutdown checkpoint (best effort). */
export async function publishShutdownOptime(d: NodeDriver): Promise<void> {
  const cd = await d.ports.pg.controlData().catch(() => undefined);
  const ckpt = cd?.['Latest checkpoint location'];
  if (ckpt === undefined) return;
  await d.ports.dcs.writeStatus({ optime: lsnToNumber(ckpt) }).catch((err: unknown) => d.log.warn({}, `could not publish the last LSN: ${String(err)}`));
}

/**
 * /history from a timeline history file's entries: lines already in /history are kept as they are
 * (timestamps, new leader names); new ones get `now` and this member's name. With `max` > 0 only
 * the newest `max` lines are kept (max_timelines_history). `reason` (a fast take-over's, issue 13)
 * replaces PostgreSQL's in the newest new line.
 */
export function historyToPublish(entries: HistoryEntry[], old: HistoryLine[], now: string, name: string, max: number, reason?: string): HistoryLine[] {
  const known = new Map(old.map((l) => [l[0], l]));
  const last = entries[entries.length - 1];
  const lines = entries.map((e): HistoryLine => known.get(e.parentTli) ?? [e.parentTli, e.switchLsn, reason !== undefined && e === last ? reason : 'no recovery target specified', now, name]);
  return max > 0 ? lines.slice(-max) : lines;
}

/** After a promotion: /history from the new timeline's history file (best effort). */
async function publishHistory(d: NodeDriver): Promise<void> {
  try {
    const probe = await d.ports.pg.probe();
    const tl = probe.timeline;
    if (tl === undefined || tl <= 1) return;
    const entries = parseTimelineHistory(await d.ports.pg.timelineHistory(tl));
    const now = localIso(new Date(d.ports.clock.wallNow()));
    const reason = d.takeOverReason;
    d.takeOverReason = undefined;
    await d.ports.dcs.writeHistory(historyToPublish(entries, d.cluster?.history ?? [], now, d.config.name, d.dynamic.max_timelines_history ?? 0, reason));
  } catch (err) {
    d.log.warn({}, `could not publish /history: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** ISO-8601 with the local offset, as Patroni writes history timestamps. */
export function localIso(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const pad = (n: number): string => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const local = new Date(d.getTime() + off * 60_000).toISOString().slice(0, 19);
  return `${local}${sign}${pad(off / 60)}:${pad(off % 60)}`;
}
