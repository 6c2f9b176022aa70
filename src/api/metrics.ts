// GET /metrics (patroni-interfaces.md 2.11): Prometheus text with Patroni's metric names.

import type { NodeSnapshot, XlogPrimary, XlogReplica } from './snapshot.ts';
import { failoverPriority } from '../core/election.ts';
import { isTrue } from '../core/values.ts';
import { freshCluster, isXlogPrimary, isXlogReplica, statusJson } from './status.ts';

export const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const PG_STATE_NUMBERS: Record<string, number> = {
  'initializing new cluster': 0,
  'initdb failed': 1,
  'running custom bootstrap script': 2,
  'custom bootstrap failed': 3,
  'creating replica': 4,
  running: 5,
  starting: 6,
  'starting after custom bootstrap': 7,
  'start failed': 8,
  restarting: 9,
  'restart failed': 10,
  stopping: 11,
  stopped: 12,
  'stop failed': 13,
  crashed: 14,
};

/** Prometheus text exposition with Patroni's metric names, in Patroni's order. */
export function metricsText(snap: NodeSnapshot, nowMs: number): string {
  const status = statusJson(snap, nowMs, { vigilField: false });
  const cluster = freshCluster(snap, nowMs);
  const labels = `{scope=${promLabel(snap.patroni.scope)},name=${promLabel(snap.patroni.name)}}`;
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number | string, extra?: string): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    if (extra !== undefined) lines.push(extra);
    lines.push(`${name}${labels} ${value}`);
  };
  const xlog = status['xlog'] as XlogPrimary | XlogReplica | undefined;
  const role = status.role;
  const flag = (b: boolean): number => (b ? 1 : 0);
  const serverVersion = typeof status['server_version'] === 'number' ? status['server_version'] : 0;
  const replState = status['replication_state'];
  const tags = snap.tags;
  const priority = failoverPriority(tags);

  metric('patroni_version', 'gauge', 'Patroni semver without periods.', versionNumber(snap.patroni.version));
  metric('patroni_postgres_running', 'gauge', 'Value is 1 if Postgres is running, 0 otherwise.', flag(status.state === 'running'));
  metric('patroni_postmaster_start_time', 'gauge', 'Epoch seconds since Postgres started.',
    epochOfPgTimestamp(status['postmaster_start_time']) ?? 0);
  metric('patroni_primary', 'gauge', 'Value is 1 if this node is the leader, 0 otherwise.', flag(role === 'primary'));
  metric('patroni_xlog_location', 'counter', 'Current location of the Postgres transaction log, 0 if this node is not the leader.',
    isXlogPrimary(xlog) ? xlog.location : 0);
  metric('patroni_standby_leader', 'gauge', 'Value is 1 if standby leader, 0 otherwise.', flag(role === 'standby_leader'));
  metric('patroni_replica', 'gauge', 'Value is 1 if this node is a replica, 0 otherwise.', flag(role === 'replica'));
  metric('patroni_sync_standby', 'gauge', 'Value is 1 if this node is a sync standby, 0 otherwise.', flag(status['sync_standby'] === true));
  metric('patroni_quorum_standby', 'gauge', 'Value is 1 if this node is a quorum standby, 0 otherwise.', flag(status['quorum_standby'] === true));
  metric('patroni_xlog_received_location', 'counter', 'Current location of the received Postgres transaction log, 0 if this node is not a replica.',
    isXlogReplica(xlog) ? xlog.received_location : 0);
  metric('patroni_xlog_replayed_location', 'counter', 'Current location of the replayed Postgres transaction log, 0 if this node is not a replica.',
    isXlogReplica(xlog) ? xlog.replayed_location : 0);
  metric('patroni_xlog_replayed_timestamp', 'gauge', 'Current timestamp of the replayed Postgres transaction log, 0 if null.',
    isXlogReplica(xlog) ? (epochOfPgTimestamp(xlog.replayed_timestamp) ?? 0) : 0);
  metric('patroni_xlog_paused', 'gauge', 'Value is 1 if the Postgres xlog is paused, 0 otherwise.', flag(isXlogReplica(xlog) && xlog.paused));
  if (serverVersion >= 90600) {
    metric('patroni_postgres_streaming', 'gauge', 'Value is 1 if Postgres is streaming, 0 otherwise.', flag(replState === 'streaming'));
    metric('patroni_postgres_in_archive_recovery', 'gauge', 'Value is 1 if Postgres is replicating from archive, 0 otherwise.',
      flag(replState === 'in archive recovery'));
  }
  metric('patroni_postgres_server_version', 'gauge', 'Version of Postgres (if running), 0 otherwise.', serverVersion);
  metric('patroni_cluster_unlocked', 'gauge', 'Value is 1 if the cluster is unlocked, 0 if locked.', flag(status['cluster_unlocked'] === true));
  metric('patroni_failsafe_mode_is_active', 'gauge', 'Value is 1 if failsafe mode is active, 0 if inactive.',
    flag(status['failsafe_mode_is_active'] === true));
  metric('patroni_failsafe_mode_enabled', 'gauge', 'Value is 1 if failsafe mode is enabled, 0 otherwise.', flag(isTrue(snap.config.failsafe_mode)));
  metric('patroni_failsafe_member', 'gauge', 'Value is 1 if this node is a failsafe member, 0 otherwise.',
    flag(cluster?.failsafe !== undefined && Object.prototype.hasOwnProperty.call(cluster.failsafe, snap.patroni.name)));
  metric('patroni_postgres_timeline', 'gauge', 'Postgres timeline of this node (if running), 0 otherwise.',
    typeof status['timeline'] === 'number' ? status['timeline'] : 0);
  metric('patroni_dcs_last_seen', 'gauge', 'Epoch timestamp when DCS was last contacted successfully.', snap.dcsLastSeen ?? 0);
  metric('patroni_pending_restart', 'gauge', 'Value is 1 if the node needs a restart, 0 otherwise.', flag(status['pending_restart'] === true));
  metric('patroni_is_paused', 'gauge', 'Value is 1 if auto failover is disabled, 0 otherwise.', flag(status['pause'] === true));
  metric('patroni_postgres_state', 'gauge', 'Numeric representation of Postgres state.', PG_STATE_NUMBERS[status.state] ?? -1,
    '# Values: 0=initdb, 1=initdb_failed, 2=custom_bootstrap, 3=custom_bootstrap_failed, 4=creating_replica, 5=running, ' +
      '6=starting, 7=bootstrap_starting, 8=start_failed, 9=restarting, 10=restart_failed, 11=stopping, 12=stopped, ' +
      '13=stop_failed, 14=crashed');
  metric('patroni_failover_priority', 'gauge', 'Value is 0 if nofailover is set, else the failover_priority tag.', priority);
  return lines.join('\n') + '\n';
}

function promLabel(v: string): string {
  return '"' + v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') + '"';
}

/** "4.1.4" -> "040104" (each component zero-padded to two digits). */
export function versionNumber(version: string): string {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10));
  if (parts.length === 0 || parts.some((n) => !Number.isFinite(n) || n < 0)) return '0';
  return parts.map((n) => String(n).padStart(2, '0')).join('');
}

/** Epoch seconds (with fractions) of a PostgreSQL timestamptz text, e.g. "2024-08-28 19:39:26.352526+00". */
export function epochOfPgTimestamp(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)?$/.exec(text.trim());
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  let epoch = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  if (frac !== undefined) epoch += Number(`0${frac}`);
  if (tz !== undefined && tz !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    const digits = tz.slice(1).replace(/:/g, '');
    const offset = Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || '0') * 60 + Number(digits.slice(4, 6) || '0');
    epoch -= sign * offset;
  }
  return Number.isFinite(epoch) ? epoch : undefined;
}
