// Who may take the leader lock, and is there anyone to hand it to. Pure functions of an
// Observation (see ../shared/spec/patroni-behavior.md sections 5.2 to 5.4).

import type { ClusterView, Member, Observation, PeerStatus, SyncState } from './model.ts';
import { parseBool } from './values.ts';

/** The cluster timeline: last /history line's timeline + 1; [] -> 1; absent -> undefined. */
export function clusterTimeline(view: ClusterView | undefined): number | undefined {
  const history = view?.history;
  if (history === undefined) return undefined;
  const last = history[history.length - 1];
  return last === undefined ? 1 : last[0] + 1;
}

/** Tags as a member published them: Vigil's typed Tags, or the raw JSON of a REST response. */
export type TagValues = { readonly [key: string]: unknown } | undefined;

/**
 * The nofailover tag when it is present (not absent, not null), read by parseBool; a value that is
 * not a boolean spelling counts as set, so an unreadable tag never makes a member promotable.
 * (Patroni tests the tag's Python truth: there every non-empty string, even "false", counts as set;
 * its configuration validator only lets booleans through, so the readings differ only for strings
 * that Patroni itself never writes.)
 */
function nofailoverTag(tags: TagValues): boolean | undefined {
  const v = tags?.['nofailover'];
  if (v === undefined || v === null) return undefined;
  return parseBool(v) ?? true;
}

/** The failover_priority tag as an integer (a number, or a string of digits); undefined otherwise. */
function priorityTag(tags: TagValues): number | undefined {
  const v = tags?.['failover_priority'];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

/**
 * Must this member never be promoted? Patroni 4.1's rule (its Tags class; patroni-behavior.md
 * section 0.4, patroni-interfaces.md section 4.2.10): a present nofailover tag decides alone; without
 * it, failover_priority <= 0 means never. So {nofailover: false, failover_priority: 0} MAY be
 * promoted (its priority 0 only ranks it last among equally advanced candidates). One rule for the
 * core, the REST API, the CLI and the configuration warning.
 */
export function isNoFailover(tags: TagValues): boolean {
  const nf = nofailoverTag(tags);
  if (nf !== undefined) return nf;
  const p = priorityTag(tags);
  return p !== undefined && p <= 0;
}

/**
 * The rank among candidates at the same WAL position (higher wins; Patroni's failover_priority
 * property): 0 when nofailover is set, else failover_priority (default 1). Eligibility is
 * isNoFailover's question, not `failoverPriority(...) > 0`.
 */
export function failoverPriority(tags: TagValues): number {
  if (nofailoverTag(tags) === true) return 0;
  return priorityTag(tags) ?? 1;
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

  // A standby cluster's timelines are the remote cluster's, not its own /history's (spec 9.4: the
  // race skips the timeline check).
  const ctl = isStandbyClusterConfig(config) ? undefined : clusterTimeline(cluster);
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
  // Sync mode active (5.2 step 10): only /sync members are compared; in priority mode only they
  // may race at all; the /sync leader is the former leader and may be ahead (local-only commits).
  const sync = activeSync(obs);
  const mode = sync === undefined ? 'off' : syncModeOf(obs.config);
  const syncSet = sync === undefined ? [] : syncSetOf(sync);
  if (sync !== undefined && mode === 'on' && !nameIn(syncSet, self.name)) {
    return { ok: false, reason: 'I am not a synchronous standby (not in /sync)' };
  }
  const formerLeader = sync !== undefined ? sync.leader : obs.lastHealthyCluster?.leader?.name;
  const quorum = sync !== undefined && mode === 'quorum' ? (typeof sync.quorum === 'number' ? sync.quorum : 0) : undefined;
  let votes = quorum !== undefined && nameIn(syncSet, self.name) ? 0 : -1;
  let ahead = false;
  for (const peer of obs.peers ?? []) {
    if (peer.name === self.name || !eligiblePeer(peer)) continue;
    if (sync !== undefined && !nameIn(syncSet, peer.name)) continue;
    if (!peer.inRecovery) return { ok: false, reason: `${peer.name} is still running as a primary` };
    // A peer behind the cluster timeline can never be promoted (above), and what it holds past
    // the switch point is not in the cluster's history: its position does not count against us
    // (otherwise it and the only up-to-date node could wait for each other forever).
    const stale = ctl !== undefined && peer.timeline !== undefined && peer.timeline < ctl;
    if (peer.walPosition > myLsn && !stale) {
      if (sync !== undefined && peer.name === sync.leader) {
        ahead = true;
        continue;
      }
      return { ok: false, reason: `${peer.name} is ahead (${peer.walPosition} > ${myLsn})` };
    }
    if (peer.walPosition === myLsn && myLsn > 0 && peer.name !== formerLeader && myPriority < peer.failoverPriority && (quorum === undefined || nameIn(syncSet, peer.name))) {
      return { ok: false, reason: `${peer.name} has the same position and a higher failover_priority` };
    }
    if (quorum !== undefined && peer.walPosition > 0 && nameIn(syncSet, peer.name)) votes++;
  }
  if (quorum !== undefined && sync !== undefined) {
    if (votes >= quorum) return { ok: true, reason: `healthiest (${votes} of ${quorum} quorum votes)` };
    if (!ahead && sync.leader === self.name) return { ok: true, reason: 'healthiest: former /sync leader and nobody is ahead' };
    return { ok: false, reason: `not enough quorum votes (${Math.max(0, votes)} of ${quorum})` };
  }
  return { ok: true, reason: 'healthiest' };
}

/** /sync when synchronous mode (on or quorum) is active, i.e. /sync names a leader. */
export function activeSync(obs: Observation): SyncState | undefined {
  if (syncModeOf(obs.config) === 'off') return undefined;
  const sync = obs.cluster?.sync;
  return sync?.leader !== undefined ? sync : undefined;
}

/** synchronous_mode from the dynamic configuration (Patroni's parse_bool, or quorum); off in a standby cluster. One rule for the core, the REST API and `vigil list`. */
export function syncModeOf(config: Record<string, unknown> | undefined): 'off' | 'on' | 'quorum' {
  if (isStandbyClusterConfig(config)) return 'off';
  const v = config?.['synchronous_mode'];
  if (typeof v === 'string' && v.toLowerCase() === 'quorum') return 'quorum';
  return parseBool(v) === true ? 'on' : 'off';
}

/** A /config standby_cluster section that makes this a standby cluster (host, port or restore_command set). */
export function isStandbyClusterConfig(config: Record<string, unknown> | undefined): boolean {
  const sc = config?.['standby_cluster'];
  if (sc === null || typeof sc !== 'object' || Array.isArray(sc)) return false;
  const s = sc as Record<string, unknown>;
  return Boolean(s['host'] || s['port'] || s['restore_command']);
}

/** /sync standbys (sync_standby split on commas). */
export function syncStandbyNames(sync: SyncState | undefined): string[] {
  const s = sync?.sync_standby;
  return typeof s === 'string' ? s.split(',').map((x) => x.trim()).filter((x) => x !== '') : [];
}

function syncSetOf(sync: SyncState): string[] {
  return sync.leader !== undefined ? [sync.leader, ...syncStandbyNames(sync)] : syncStandbyNames(sync);
}

export function nameIn(list: readonly string[], name: string | undefined): boolean {
  return name !== undefined && list.some((x) => x.toLowerCase() === name.toLowerCase());
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
  // Sync mode active: only /sync standbys can take over without losing acknowledged commits,
  // except for a manual failover (no leader named: the operator's explicit choice).
  const sync = activeSync(obs);
  const fo = cluster.failover;
  const manualFailover = fo !== undefined && (fo.leader === undefined || fo.leader === '') && fo.member !== undefined && fo.member !== '';
  const restrict = sync !== undefined && !manualFailover;
  const standbys = syncStandbyNames(sync);
  const passing = cluster.members.filter((m) => {
    if (m.name === obs.self.name || isNoFailover(m.data.tags) || m.data.api_url === undefined) return false;
    if (restrict && !nameIn(standbys, m.name)) return false;
    if (m.data.state !== 'running') return false;
    if (optime !== undefined && optime - memberLsn(m) > obs.config.maximum_lag_on_failover) return false;
    return true;
  });
  // Quorum mode (5.4): as many candidates as /sync.quorum are needed.
  if (restrict && sync !== undefined && syncModeOf(obs.config) === 'quorum') return passing.length >= Math.max(1, sync.quorum ?? 0);
  return passing.length > 0;
}
