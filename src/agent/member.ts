// Building what this node publishes: its members/<name> value. Pure.

import type { MemberData, PgState, Role, Tags } from '../core/model.ts';
import type { Config } from '../config/types.ts';
import { PATRONI_COMPAT_VERSION } from '../api/version.ts';

/** Host part of a "host:port" or "[v6]:port" address, with IPv6 bracketed for URLs. */
export function hostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr.trim());
  if (m === null) return { host: addr, port: 5432 };
  let host = m[1] ?? '';
  // postgresql.listen may list several hosts: the first one is advertised.
  host = host.split(',')[0]?.trim() ?? '';
  if (host === '' || host === '*' || host === '0.0.0.0') host = '127.0.0.1';
  return { host, port: Number(m[2]) };
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function connUrl(config: Config): string {
  const { host, port } = hostPort(config.postgresql.connectAddress);
  return `postgres://${urlHost(host)}:${port}/${config.postgresql.database}`;
}

/** postgres://<proxy_address>/<database>, when postgresql.proxy_address is set. */
export function proxyUrl(config: Config): string | undefined {
  const addr = config.postgresql.proxyAddress;
  if (addr === undefined) return undefined;
  const { host, port } = hostPort(addr);
  return `postgres://${urlHost(host)}:${port}/${config.postgresql.database}`;
}

export function apiUrl(config: Config): string {
  const scheme = config.restapi.certfile ? 'https' : 'http';
  const { host, port } = hostPort(config.restapi.connectAddress);
  return `${scheme}://${urlHost(host)}:${port}/patroni`;
}

/** Effective tags: custom tags verbatim, predefined booleans only when true (Patroni's rule). */
export function effectiveTags(tags: Tags): Tags {
  const out: Tags = {};
  for (const [k, v] of Object.entries(tags)) {
    if (['nofailover', 'noloadbalance', 'clonefrom', 'nosync', 'nostream'].includes(k)) {
      if (v === true) out[k] = true;
      else if ((k === 'nofailover' && tags.failover_priority !== undefined) || (k === 'nosync' && tags.sync_priority !== undefined)) out[k] = v === true;
    } else if (v !== undefined && v !== null) out[k] = v;
  }
  return out;
}

export interface MemberFacts {
  state: PgState;
  role: Role;
  walLsn?: number;
  receiveLsn?: number;
  replayLsn?: number;
  timeline?: number;
  streaming?: boolean;
  inRecovery?: boolean;
  pause?: boolean;
}

export function buildMemberData(config: Config, f: MemberFacts): MemberData {
  const data: MemberData = {
    conn_url: connUrl(config),
    api_url: apiUrl(config),
    state: f.state,
    role: f.role === 'promoted' ? 'primary' : f.role,
    version: PATRONI_COMPAT_VERSION,
  };
  const proxy = proxyUrl(config);
  if (proxy !== undefined) data.proxy_url = proxy;
  const tags = effectiveTags(config.tags);
  if (Object.keys(tags).length > 0) data.tags = tags;
  if (f.state === 'running' || f.state === 'starting') {
    if (f.walLsn !== undefined) data.xlog_location = f.walLsn;
    if (f.inRecovery === true) {
      if (f.replayLsn !== undefined) data.replay_lsn = f.replayLsn;
      if (f.receiveLsn !== undefined) data.receive_lsn = f.receiveLsn;
      if (f.streaming === true) data.replication_state = 'streaming';
    }
    if (f.timeline !== undefined) data.timeline = f.timeline;
  }
  if (f.pause === true) data.pause = true;
  return data;
}
