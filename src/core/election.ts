// Who may take the leader lock, and is there anyone to hand it to. Pure functions of an
// Observation (see ../shared/spec/patroni-behavior.md sections 5.2 to 5.4).

import type { ClusterView, Member, Observation, PeerStatus, Tags } from './model.ts';

/** The cluster timeline: last /history line's timeline + 1; [] -> 1; absent -> undefined. */
export function clusterTimeline(view: ClusterView | undefined): number | undefined {
  const history = view?.history;
  if (history === undefined) return undefined;
  const last = history[history.length - 1];
  return last === undefined ? 1 : last[0] + 1;
}

/** failover_priority, with nofailover winning when both are set; <= 0 means never a candidate. */
export function failoverPriority(tags: Tags | undefined): number {
  if (tags === undefined) return 1;
  if (tags.nofailover === true) return 0;
  const p = tags.failover_priority;
  return typeof p === 'number' && Number.isFinite(p) ? p : 1;
}

export function isNoFailover(tags: Tags | undefined): boolean {
  return failoverPriority(tags) <= 0;
}

/** The WAL position a member last published (replica: max(receive, replay); primary: xlog_location). */
export function memberLsn(m: Member): number {
  const d = m.data;
  const nums = [d.xlog_location, d.receive_lsn, d.replay_lsn].filter((x): x is number => typeof x === 'number');
  return nums.length === 0 ? 0 : Math.max(...nums);
}

export interface Verdict {
  ok: boolean;
  reason: string;
}

/**
 * May this node try to take the lock of an unlocked cluster? PostgreSQL is running.
 * Several nodes may all answer yes; the atomic create of /leader picks one.
 */
export function isHealthiest(obs: Observation): Verdict {
  const { self, config, pg } = obs;
  const cluster = obs.cluster;
  if (isNoFailover(self.tags)) return { ok: false, reason: 'nofailover is set' };

  const ctl = clusterTimeline(cluster);
  if (!pg.inRecovery) {
    // A primary whose lock expired (overloaded, or DCS hiccup). It is the best candidate unless
    // another node has already been promoted on a newer timeline.
    if (ctl !== undefined && pg.timeline !== undefined && pg.timeline < ctl) {
      return { ok: false, reason: `my timeline ${pg.timeline} is behind the cluster timeline ${ctl}` };
    }
    return { ok: true, reason: 'running primary' };
  }

  const myLsn = pg.walLsn ?? 0;
  const optime = cluster?.status?.optime;
  if (optime !== undefined && optime - myLsn > config.maximum_lag_on_failover) {
    return { ok: false, reason: `lag ${optime - myLsn} exceeds maximum_lag_on_failover ${config.maximum_lag_on_failover}` };
  }
  // A replica that never saw the latest promotion must not be promoted: it would start a second
  // branch with the same timeline number, which PostgreSQL cannot tell apart from the real one.
  // Patroni checks this only with check_timeline; we always do (check_timeline additionally
  // refuses an unknown timeline).
  if (ctl !== undefined && pg.timeline !== undefined && pg.timeline < ctl) {
    return { ok: false, reason: `my timeline ${pg.timeline} is behind the cluster timeline ${ctl}` };
  }
  if (config.check_timeline && pg.timeline === undefined) {
    return { ok: false, reason: 'my timeline is unknown and check_timeline is on' };
  }

  const myPriority = failoverPriority(self.tags);
  const formerLeader = obs.lastHealthyCluster?.leader?.name;
  for (const peer of obs.peers ?? []) {
    if (peer.name === self.name || !eligiblePeer(peer)) continue;
    if (!peer.inRecovery) return { ok: false, reason: `${peer.name} is still running as a primary` };
    if (peer.walPosition > myLsn) return { ok: false, reason: `${peer.name} is ahead (${peer.walPosition} > ${myLsn})` };
    if (peer.walPosition === myLsn && myLsn > 0 && peer.name !== formerLeader && myPriority < peer.failoverPriority) {
      return { ok: false, reason: `${peer.name} has the same position and a higher failover_priority` };
    }
  }
  return { ok: true, reason: 'healthiest' };
}

function eligiblePeer(p: PeerStatus): boolean {
  return p.reachable && !p.nofailover && !p.watchdogFailed;
}

/**
 * Is there a member other than us that could take over, judged from what members published in
 * the DCS (no REST calls)? Used before giving up the lock voluntarily.
 */
export function isFailoverPossible(obs: Observation): boolean {
  const cluster = obs.cluster;
  if (cluster === undefined) return false;
  const optime = cluster.status?.optime;
  return cluster.members.some((m) => {
    if (m.name === obs.self.name || isNoFailover(m.data.tags) || m.data.api_url === undefined) return false;
    if (m.data.state !== 'running') return false;
    if (optime !== undefined && optime - memberLsn(m) > obs.config.maximum_lag_on_failover) return false;
    return true;
  });
}
