// The member key as this node publishes it each cycle: its state, role, WAL positions, tags (a
// synchronous standby on its way out advertises nosync), pending and scheduled restarts.

import { keepAlivePeriodMs } from '../core/fast-failover.ts';
import type { DynamicConfig } from '../core/model.ts';
import type { NodeDriver } from './driver.ts';
import { fenceBudget } from './executor.ts';
import { buildMemberData } from './member.ts';

export async function publishMember(d: NodeDriver, dynamic: Pick<DynamicConfig, 'pause'>): Promise<void> {
  const pg = d.lastPg;
  // A synchronous standby on its way out advertises nosync so the leader replaces it first.
  const config = d.leavingSync ? { ...d.config, tags: { ...d.config.tags, nosync: true, sync_priority: 0 } } : d.config;
  const data = buildMemberData(config, {
    state: d.pgState,
    role: d.role,
    ...(pg?.walLsn !== undefined ? { walLsn: pg.walLsn } : {}),
    ...(pg?.receiveLsn !== undefined ? { receiveLsn: pg.receiveLsn } : {}),
    ...(pg?.replayLsn !== undefined ? { replayLsn: pg.replayLsn } : {}),
    ...(pg?.timeline !== undefined ? { timeline: pg.timeline } : {}),
    streaming: pg?.streaming ?? false,
    inRecovery: pg?.inRecovery ?? false,
    pause: dynamic.pause === true,
  });
  // Issue 13: the lock holder says it renews its lease every keepalive_ms (the fast failover of
  // synchronous modes trusts a silent lease only from such a leader). Patroni ignores the field.
  const keepAlive = keepAlivePeriodMs(d.dynamic, d.leaseKeepAliveMs);
  if (keepAlive > 0 && d.ports.dcs.keepLeader !== undefined) data['vigil'] = { keepalive_ms: keepAlive };
  if (d.pendingRestart !== undefined) {
    data.pending_restart = true;
    data.pending_restart_reason = d.pendingRestart;
  }
  if (d.scheduledRestart !== undefined) {
    const sr: Record<string, unknown> = { ...d.scheduledRestart };
    const start = pg?.probe?.postmasterStartTime;
    if (start !== undefined) sr['postmaster_start_time'] = start;
    data.scheduled_restart = sr;
  }
  try {
    await d.ports.dcs.touchMember(data, fenceBudget(d));
  } catch (err) {
    d.log.warn({}, `could not update the member key: ${err instanceof Error ? err.message : String(err)}`);
  }
}
