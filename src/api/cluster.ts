// GET /cluster, /history, /config and /failsafe (patroni-interfaces.md 2.7 - 2.10): the DCS view
// as this node last read it, never a DCS read from a request.

import type { ClusterView, Member, SyncState } from '../core/model.ts';
import { nestedTooDeeply, tooDeepMessage } from '../config/depth.ts';
import { isStandbyClusterConfig, syncModeOf } from '../core/election.ts';
import type { ApiResponse } from './request.ts';
import { errorPage, json, text } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { freshCluster, isPaused, syncListed } from './status.ts';

export function getCluster(snap: NodeSnapshot, nowMs: number): ApiResponse {
  const cluster = freshCluster(snap, nowMs);
  if (cluster === undefined) return text(503, 'DCS view is not available');
  return json(200, clusterJson(cluster, snap));
}

/** The /cluster object: members sorted by name with roles, states and lags. */
export function clusterJson(view: ClusterView, snap: NodeSnapshot): Record<string, unknown> {
  const config = snap.config;
  const leaderName = view.leader?.name;
  const mode = syncModeOf(config);
  const standby = isStandbyClusterConfig(config);
  const optime = typeof view.status?.optime === 'number' ? view.status.optime : 0;
  const members = [...view.members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: Record<string, unknown> = {
    members: members.map((m) => memberJson(m, leaderName, standby, mode, view.sync, optime)),
    scope: snap.patroni.scope,
  };
  if (isPaused(snap)) out['pause'] = true;
  const f = view.failover;
  if (f !== undefined && typeof f.scheduled_at === 'string' && f.scheduled_at !== '') {
    const s: Record<string, unknown> = { at: f.scheduled_at };
    if (f.leader) s['from'] = f.leader;
    if (f.member) s['to'] = f.member;
    out['scheduled_switchover'] = s;
  }
  return out;
}

function memberJson(
  m: Member,
  leaderName: string | undefined,
  standby: boolean,
  mode: 'off' | 'on' | 'quorum',
  sync: SyncState | undefined,
  optime: number,
): Record<string, unknown> {
  const d = m.data;
  let role: string;
  if (m.name === leaderName) role = standby ? 'standby_leader' : 'leader';
  else if (mode !== 'off' && syncListed(sync, m.name)) role = mode === 'quorum' ? 'quorum_standby' : 'sync_standby';
  else role = 'replica';
  const memberState = typeof d.state === 'string' && d.state !== '' ? d.state : 'unknown';
  const replState = role !== 'leader' && typeof d.replication_state === 'string' ? d.replication_state : '';
  const out: Record<string, unknown> = {
    name: m.name,
    role,
    state: replState || memberState,
    api_url: typeof d.api_url === 'string' ? d.api_url : null,
  };
  const hp = hostPort(d);
  if (hp !== undefined) {
    out['host'] = hp.host;
    if (hp.port !== undefined) out['port'] = hp.port;
  }
  for (const k of ['timeline', 'pending_restart', 'pending_restart_reason', 'scheduled_restart', 'tags']) {
    if (d[k] !== undefined) out[k] = d[k];
  }
  if (m.name !== leaderName) {
    const lsns: [string, string, unknown][] = [
      ['receive_lsn', 'receive_lag', d.receive_lsn],
      ['replay_lsn', 'replay_lag', d.replay_lsn],
      ['lsn', 'lag', d.xlog_location],
    ];
    for (const [lsnKey, lagKey, value] of lsns) {
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
        out[lagKey] = Math.max(0, optime - value);
        out[lsnKey] = formatLsn(value);
      } else {
        out[lagKey] = 'unknown';
        out[lsnKey] = 'unknown';
      }
    }
  }
  return out;
}

/** host and port of a member's PostgreSQL from conn_url (port default 5432) or conn_kwargs. */
function hostPort(d: Member['data']): { host: string; port: number | undefined } | undefined {
  if (typeof d.conn_url === 'string' && d.conn_url !== '') {
    try {
      const u = new URL(d.conn_url);
      const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
      if (host === '') return undefined;
      return { host: decodeURIComponent(host), port: u.port === '' ? 5432 : Number(u.port) };
    } catch {
      return undefined;
    }
  }
  const kw = d['conn_kwargs'];
  if (kw !== null && typeof kw === 'object') {
    const k = kw as Record<string, unknown>;
    if (typeof k['host'] === 'string' && k['host'] !== '') {
      const port = Number(k['port'] ?? 5432);
      return { host: k['host'], port: Number.isInteger(port) ? port : undefined };
    }
  }
  return undefined;
}

/** LSN as PostgreSQL text, e.g. 67108960 -> "0/4000060". */
export function formatLsn(lsn: number): string {
  const hi = Math.floor(lsn / 2 ** 32);
  const lo = lsn - hi * 2 ** 32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/**
 * /history, /config and /failsafe serve the last good DCS read whatever its age: Patroni would read
 * the DCS afresh, which we never do from a request.
 */
export function getHistory(snap: NodeSnapshot): ApiResponse {
  if (snap.cluster === undefined) return text(503, 'DCS view is not available');
  return json(200, snap.cluster.history ?? []);
}

export function getConfig(snap: NodeSnapshot): ApiResponse {
  const config = snap.cluster?.config;
  if (config === undefined || config === null || typeof config !== 'object') return errorPage(502);
  // Rendering recurses per level: refuse a /config nested absurdly deep (written into the DCS directly).
  if (nestedTooDeeply(config)) return errorPage(502, `the configuration in the DCS is ${tooDeepMessage()}`);
  return json(200, config);
}

export function getFailsafe(snap: NodeSnapshot): ApiResponse {
  const failsafe = snap.cluster?.failsafe;
  if (failsafe === undefined || failsafe === null || typeof failsafe !== 'object') return errorPage(502);
  return json(200, failsafe);
}
