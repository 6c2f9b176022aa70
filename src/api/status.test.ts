// The status JSON (2.4), /cluster, /history, /config, /failsafe (2.7 - 2.10), /metrics (2.11) and
// their helpers, through handle() (handlers.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { ClusterView } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import { formatLsn } from './cluster.ts';
import { bodyOf, clusterView, get, member, NOW, primary, replica } from './handler-fixtures.ts';
import { parseSize } from './health.ts';
import { epochOfPgTimestamp, versionNumber } from './metrics.ts';
import { statusJson } from './status.ts';
import { VIGIL_VERSION } from './version.ts';

// ---- Status JSON (2.4) --------------------------------------------------------------------------

test('status JSON of a primary: fields and order', () => {
  const r = get(primary({ tags: { clonefrom: true } }), '/patroni');
  assert.equal(r.status, 200);
  const body = bodyOf(r);
  assert.deepEqual(Object.keys(body), [
    'state', 'postmaster_start_time', 'role', 'server_version', 'xlog', 'timeline', 'dcs_last_seen', 'tags',
    'database_system_identifier', 'patroni', 'vigil',
  ]);
  assert.deepEqual(body, {
    state: 'running',
    postmaster_start_time: '2024-08-28 19:39:26.352526+00:00',
    role: 'primary',
    server_version: 150004,
    xlog: { location: 1000 },
    timeline: 1,
    dcs_last_seen: 1_699_999_999,
    tags: { clonefrom: true },
    database_system_identifier: '7268616322854375442',
    patroni: { version: '4.1.4', scope: 'demo', name: 'pg1' },
    vigil: { version: VIGIL_VERSION, last_reason: 'no action. I am (pg1), the leader with the lock' },
  });
});

test('status JSON of a replica with every optional field', () => {
  const snap = replica({
    replication: [{ usename: 'replicator', application_name: 'pg3', client_addr: '10.0.0.3', state: 'streaming', sync_state: 'async', sync_priority: 0 }],
    pause: true,
    failsafeActive: true,
    pendingRestart: true,
    pendingRestartReason: { max_connections: { old_value: '100', new_value: '200' } },
    scheduledRestart: { schedule: '2030-01-01T00:00:00+00:00' },
    watchdogFailed: true,
    cluster: clusterView({ leader: undefined }),
  });
  const body = statusJson(snap, NOW, { vigilField: false });
  assert.deepEqual(body, {
    state: 'running',
    postmaster_start_time: '2024-08-28 19:39:26.352526+00:00',
    role: 'replica',
    server_version: 150004,
    xlog: { received_location: 950, replayed_location: 900, replayed_timestamp: '2024-08-28 19:40:00.5+00', paused: false },
    timeline: 1,
    replication_state: 'streaming',
    replication: [{ usename: 'replicator', application_name: 'pg3', client_addr: '10.0.0.3', state: 'streaming', sync_state: 'async', sync_priority: 0 }],
    pause: true,
    cluster_unlocked: true,
    failsafe_mode_is_active: true,
    dcs_last_seen: 1_699_999_999,
    database_system_identifier: '7268616322854375442',
    pending_restart: true,
    pending_restart_reason: { max_connections: { old_value: '100', new_value: '200' } },
    patroni: { version: '4.1.4', scope: 'demo', name: 'pg2' },
    scheduled_restart: { schedule: '2030-01-01T00:00:00+00:00' },
    watchdog_failed: true,
  });
});

test('status JSON when PostgreSQL does not answer: state and internal role only', () => {
  assert.deepEqual(statusJson(replica({ state: 'stopped', xlog: undefined, sysid: undefined, dcsLastSeen: undefined }), NOW, { vigilField: false }), {
    state: 'stopped',
    role: 'replica',
    dcs_last_seen: 0,
    patroni: { version: '4.1.4', scope: 'demo', name: 'pg2' },
  });
  // Running but the probe failed: "unknown".
  const unknown = statusJson(primary({ xlog: undefined }), NOW);
  assert.equal(unknown.state, 'unknown');
  assert.equal(unknown['xlog'], undefined);
  assert.equal(unknown['server_version'], undefined);
  // Stale DCS view -> cluster_unlocked.
  assert.equal(statusJson(primary({ clusterReadAt: NOW - 31_000 }), NOW)['cluster_unlocked'], true);
  assert.equal(statusJson(primary(), NOW)['cluster_unlocked'], undefined);
  assert.equal(statusJson(primary({ clusterReadAt: undefined }), NOW)['cluster_unlocked'], true);
});

// ---- /cluster, /history, /config, /failsafe ----------------------------------------------------

test('GET /cluster: sorted members, roles, lags, host/port', () => {
  const cluster = clusterView({
    members: [
      ...clusterView().members,
      member('pg3', { conn_url: 'postgres://[fe80::1]/postgres', api_url: 'http://x/patroni', state: 'stopped', role: 'replica' }),
    ],
    failover: { leader: 'pg1', member: 'pg2', scheduled_at: '2030-01-01T10:00:00+02:00', version: '7' },
  });
  const r = get(primary({ cluster, pause: true }), '/cluster');
  assert.equal(r.status, 200);
  assert.deepEqual(bodyOf(r), {
    members: [
      { name: 'pg1', role: 'leader', state: 'running', api_url: 'http://10.0.0.1:8008/patroni', host: '10.0.0.1', port: 5432, timeline: 1, tags: { clonefrom: true } },
      {
        name: 'pg2', role: 'replica', state: 'streaming', api_url: 'http://10.0.0.2:8008/patroni', host: '10.0.0.2', port: 5433, timeline: 1,
        receive_lag: 50, receive_lsn: '0/3B6', replay_lag: 100, replay_lsn: '0/384', lag: 100, lsn: '0/384',
      },
      {
        name: 'pg3', role: 'replica', state: 'stopped', api_url: 'http://x/patroni', host: 'fe80::1', port: 5432,
        receive_lag: 'unknown', receive_lsn: 'unknown', replay_lag: 'unknown', replay_lsn: 'unknown', lag: 'unknown', lsn: 'unknown',
      },
    ],
    scope: 'demo',
    pause: true,
    scheduled_switchover: { at: '2030-01-01T10:00:00+02:00', from: 'pg1', to: 'pg2' },
  });
  // sync role and standby leader.
  const sync = clusterView({ sync: { leader: 'pg1', sync_standby: 'pg2', quorum: 0, version: '1' } });
  const members = bodyOf(get(primary({ cluster: sync, config: defaultConfig({ synchronous_mode: 'on' }) }), '/cluster'))['members'] as Record<string, unknown>[];
  assert.deepEqual(members.map((m) => m['role']), ['leader', 'sync_standby']);
  const standby = bodyOf(get(primary({ config: defaultConfig({ standby_cluster: { host: 'h' } }) }), '/cluster'))['members'] as Record<string, unknown>[];
  assert.equal(standby[0]?.['role'], 'standby_leader');
  // No fresh DCS view.
  assert.equal(get(primary({ clusterReadAt: NOW - 60_000 }), '/cluster').status, 503);
});

test('GET /history, /config and /failsafe', () => {
  const history: ClusterView['history'] = [[1, 25623960, 'no recovery target specified', '2019-09-23T16:57:57+02:00', 'pg1']];
  const snap = primary({ cluster: clusterView({ history, failsafe: { pg1: 'http://10.0.0.1:8008/patroni' } }) });
  assert.deepEqual(bodyOf(get(snap, '/history')), history);
  assert.deepEqual(bodyOf(get(primary({ cluster: clusterView({ history: undefined }) }), '/history')), []);
  assert.equal(get(primary({ cluster: undefined }), '/history').status, 503);
  assert.deepEqual(bodyOf(get(snap, '/config')), { ttl: 30 });
  const bad = get(primary({ cluster: clusterView({ config: undefined }) }), '/config');
  assert.equal(bad.status, 502);
  assert.match(bad.contentType ?? '', /text\/html/);
  assert.equal(get(primary({ cluster: undefined }), '/config').status, 502);
  assert.deepEqual(bodyOf(get(snap, '/failsafe')), { pg1: 'http://10.0.0.1:8008/patroni' });
  assert.equal(get(primary(), '/failsafe').status, 502);
});

// ---- /metrics (2.11) ----------------------------------------------------------------------------

test('GET /metrics: Patroni names, order, labels and values', () => {
  const r = get(replica({ tags: { failover_priority: 3 } }), '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.contentType ?? '', /^text\/plain/);
  const samples = new Map<string, string>();
  const order: string[] = [];
  for (const line of (r.body ?? '').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\{scope="demo",name="pg2"\} (\S+)$/.exec(line);
    assert.ok(m, `bad sample line ${line}`);
    samples.set(m[1] as string, m[2] as string);
    order.push(m[1] as string);
  }
  assert.deepEqual(order, [
    'patroni_version', 'patroni_postgres_running', 'patroni_postmaster_start_time', 'patroni_primary', 'patroni_xlog_location',
    'patroni_standby_leader', 'patroni_replica', 'patroni_sync_standby', 'patroni_quorum_standby', 'patroni_xlog_received_location',
    'patroni_xlog_replayed_location', 'patroni_xlog_replayed_timestamp', 'patroni_xlog_paused', 'patroni_postgres_streaming',
    'patroni_postgres_in_archive_recovery', 'patroni_postgres_server_version', 'patroni_cluster_unlocked',
    'patroni_failsafe_mode_is_active', 'patroni_failsafe_mode_enabled', 'patroni_failsafe_member', 'patroni_postgres_timeline',
    'patroni_dcs_last_seen', 'patroni_pending_restart', 'patroni_is_paused', 'patroni_postgres_state', 'patroni_failover_priority',
  ]);
  assert.equal(samples.get('patroni_version'), '040104');
  assert.equal(samples.get('patroni_postgres_running'), '1');
  assert.equal(samples.get('patroni_postmaster_start_time'), String(Date.UTC(2024, 7, 28, 19, 39, 26) / 1000 + 0.352526));
  assert.equal(samples.get('patroni_primary'), '0');
  assert.equal(samples.get('patroni_replica'), '1');
  assert.equal(samples.get('patroni_xlog_location'), '0');
  assert.equal(samples.get('patroni_xlog_received_location'), '950');
  assert.equal(samples.get('patroni_xlog_replayed_location'), '900');
  assert.equal(samples.get('patroni_xlog_replayed_timestamp'), String(Date.UTC(2024, 7, 28, 19, 40, 0) / 1000 + 0.5));
  assert.equal(samples.get('patroni_postgres_streaming'), '1');
  assert.equal(samples.get('patroni_postgres_server_version'), '150004');
  assert.equal(samples.get('patroni_cluster_unlocked'), '0');
  assert.equal(samples.get('patroni_postgres_timeline'), '1');
  assert.equal(samples.get('patroni_dcs_last_seen'), '1699999999');
  assert.equal(samples.get('patroni_postgres_state'), '5');
  assert.equal(samples.get('patroni_failover_priority'), '3');
  assert.match(r.body ?? '', /# TYPE patroni_xlog_location counter\n/);
  assert.match(r.body ?? '', /# Values: 0=initdb, .*14=crashed\npatroni_postgres_state/);

  const p = get(primary({ state: 'stopped', xlog: undefined, tags: { nofailover: true } }), '/metrics').body ?? '';
  assert.match(p, /patroni_postgres_state\{scope="demo",name="pg1"\} 12\n/);
  assert.match(p, /patroni_postgres_running\{scope="demo",name="pg1"\} 0\n/);
  assert.match(p, /patroni_failover_priority\{scope="demo",name="pg1"\} 0\n/);
  assert.match(p, /patroni_postgres_server_version\{scope="demo",name="pg1"\} 0\n/);
  assert.doesNotMatch(p, /patroni_postgres_streaming/);
});

// ---- Helpers ------------------------------------------------------------------------------------

test('parseSize', () => {
  assert.equal(parseSize('1048576'), 1048576);
  assert.equal(parseSize('1024kB'), 1048576);
  assert.equal(parseSize('10MB'), 10 * 1024 * 1024);
  assert.equal(parseSize('1GB'), 1024 ** 3);
  assert.equal(parseSize('16B'), 16);
  assert.equal(parseSize('10mb'), undefined);
  assert.equal(parseSize('abc'), undefined);
  assert.equal(parseSize(undefined), undefined);
});

test('formatLsn, versionNumber, epochOfPgTimestamp', () => {
  assert.equal(formatLsn(67108960), '0/4000060');
  assert.equal(formatLsn(2 ** 32 + 0xab), '1/AB');
  assert.equal(versionNumber('4.1.4'), '040104');
  assert.equal(versionNumber('10.0.12'), '100012');
  assert.equal(epochOfPgTimestamp('1970-01-01 01:00:00+01'), 0);
  assert.equal(epochOfPgTimestamp('1970-01-01 00:00:01.25-00:30'), 1801.25);
  assert.equal(epochOfPgTimestamp('not a time'), undefined);
  assert.equal(epochOfPgTimestamp(null), undefined);
});

test('odd snapshots never throw', () => {
  const odd = primary({
    cluster: clusterView({
      members: [member('x', { conn_url: '::::', tags: 'no' as unknown as undefined, xlog_location: -5 })],
      sync: { leader: 'pg1', sync_standby: null, quorum: null, version: '1' },
      status: undefined,
    }),
    config: { ...defaultConfig(), ttl: Number.NaN, synchronous_mode: 'quorum', standby_cluster: 'yes' },
  });
  for (const target of ['/', '/sync', '/cluster', '/metrics', '/patroni', '/liveness', '/readiness?lag=x', '/config', '/history']) {
    const r = get(odd, target);
    assert.ok(r.status >= 200 && r.status < 600, target);
  }
});

