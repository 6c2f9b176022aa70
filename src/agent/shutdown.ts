// The graceful stop of a node (SIGTERM), once no tick runs any more: cancel the background task,
// leave the synchronous standby set, stop PostgreSQL (fast), and release the lock only once
// PostgreSQL is down, so a replica can take over at once without any chance of two writers.

import { syncModeOf } from '../core/election.ts';
import type { SyncState } from '../core/model.ts';
import { buildMemberData } from './member.ts';
import type { NodeDriver } from './driver.ts';
import { primaryStopTimeoutMs, stopPostgres } from './hooks.ts';
import { publishShutdownOptime } from './tasks.ts';

/** Stop PostgreSQL and hand over; the fencer stays armed if PostgreSQL would not stop. */
export async function shutdown(d: NodeDriver): Promise<void> {
  const { pg, dcs, fence } = d.ports;
  const interrupted = d.task;
  await d.cancelTask();
  if (interrupted?.kind === 'bootstrap' && interrupted.state !== 'ok') {
    // A half-done bootstrap must not leave /initialize = "" behind: nobody could bootstrap again.
    await stopPostgres(d, 'immediate', undefined, false).catch(() => undefined);
    await dcs.deleteInitialize().catch(() => undefined);
    await pg.removeDataDir().catch(() => undefined);
  }
  const paused = d.dynamic.pause === true;
  let stopped = true;
  if (!paused) {
    await leaveSyncSet(d);
    try {
      d.pgState = 'stopping';
      await stopPostgres(d, 'fast', { timeoutMs: primaryStopTimeoutMs(d.dynamic) ?? d.config.postgresql.pgCtlTimeout * 1000 }, true);
      d.pgState = 'stopped';
    } catch (err) {
      stopped = false;
      d.log.error({}, `PostgreSQL did not stop: ${err instanceof Error ? err.message : String(err)}; keeping the leader lock`);
    }
  }
  if (stopped && d.cluster?.leader?.name === d.config.name && !paused) {
    try {
      await publishShutdownOptime(d);
      await dcs.releaseLeader();
      d.log.info({}, 'released the leader lock after stopping PostgreSQL');
    } catch (err) {
      d.log.warn({}, `could not release the leader lock: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (stopped) await dcs.deleteMember().catch(() => undefined);
  await dcs.close({ keepLease: !stopped });
  // PostgreSQL is down (or paused and the operator's business): stand the fencer down. If
  // PostgreSQL would not stop, the fencer stays armed and kills it at the deadline.
  if (stopped) {
    await fence.disarm();
    d.fenceKey = 'disarmed';
    d.fenceDeadline = undefined;
  }
}

/**
 * A synchronous standby that stops (shutdown, restart) first asks to be replaced: it publishes
 * nosync and waits, up to 2 x loop_wait, until the leader has removed it from /sync. Otherwise a
 * cluster with as many sync standbys as synchronous_node_count would stall commits until the
 * leader's next cycle. A DCS error or a failed member write skips the wait.
 */
async function leaveSyncSet(d: NodeDriver): Promise<void> {
  const me = d.config.name;
  if (syncModeOf(d.dynamic) === 'off' || d.config.tags.nosync === true) return;
  const { dcs, clock } = d.ports;
  // The last cycle's view may predate the leader adding us to /sync (it does so within about a
  // second of our streaming, between our cycles): decide on a fresh read, the cached view only
  // when the DCS cannot be read.
  const cluster = await dcs.readCluster().catch(() => d.cluster);
  const leader = cluster?.leader?.name;
  if (leader === undefined || leader === me) return;
  if (!inSyncSet(cluster?.sync, me)) return;
  d.leavingSync = true;
  try {
    await dcs.touchMember(buildMemberData({ ...d.config, tags: { ...d.config.tags, nosync: true, sync_priority: 0 } }, { state: d.pgState, role: d.role }));
    const deadline = clock.now() + 2 * d.dynamic.loop_wait * 1000;
    d.log.info({}, 'leaving the synchronous standby set before stopping');
    while (clock.now() < deadline) {
      await clock.sleep(Math.min(2000, d.dynamic.loop_wait * 1000));
      const view = await dcs.readCluster();
      if (view.leader === undefined || !inSyncSet(view.sync, me) || view.sync?.leader !== view.leader.name) return;
    }
    d.log.warn({}, 'still listed in /sync after 2 x loop_wait; stopping anyway');
  } catch (err) {
    d.log.warn({}, `could not leave the synchronous standby set first: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** name is listed in /sync's sync_standby (case-insensitive, as Patroni reads it). */
export function inSyncSet(sync: SyncState | undefined, name: string): boolean {
  if (typeof sync?.sync_standby !== 'string') return false;
  const want = name.toLowerCase();
  return sync.sync_standby.split(',').some((n) => n.trim().toLowerCase() === want);
}
