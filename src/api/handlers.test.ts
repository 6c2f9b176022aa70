import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clusterView as emptyView } from '../core/model.ts';
import type { ClusterView, DynamicConfig, Member } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import { formatLsn } from './cluster.ts';
import { handle } from './handlers.ts';
import { parseSize } from './health.ts';
import { epochOfPgTimestamp, versionNumber } from './metrics.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { statusJson } from './status.ts';
import { snapshot } from './testing.ts';
import { PATRONI_COMPAT_VERSION, VIGIL_VERSION } from './version.ts';

const NOW = 1_700_000_000_000;

function member(name: string, data: Member['data']): Member {
  return { name, data, version: '1', session: '' };
}

function clusterView(extra: Partial<ClusterView> = {}): ClusterView {
  return emptyView({
    initialize: '7268616322854375442',
    config: { ttl: 30 },
    configVersion: '5',
    leader: { name: 'pg1', version: '9', session: 'abc' },
    members: [
      member('pg2', {
        conn_url: 'postgres://10.0.0.2:5433/postgres',
        api_url: 'http://10.0.0.2:8008/patroni',
        state: 'running',
        role: 'replica',
        replication_state: 'streaming',
        xlog_location: 900,
        replay_lsn: 900,
        receive_lsn: 950,
        timeline: 1,
      }),
      member('pg1', {
        conn_url: 'postgres://10.0.0.1:5432/postgres',
        api_url: 'http://10.0.0.1:8008/patroni',
        state: 'running',
        role: 'primary',
        xlog_location: 1000,
        timeline: 1,
        tags: { clonefrom: true },
      }),
    ],
    history: [],
    status: { optime: 1000 },
    revision: '42',
    ...extra,
  });
}

function primary(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return snapshot({
    postmasterStartTime: '2024-08-28 19:39:26.352526+00:00',
    serverVersion: 150004,
    xlog: { location: 1000 },
    timeline: 1,
    leaderValidUntil: NOW + 30_000,
    cluster: clusterView(),
    clusterReadAt: NOW - 1000,
    dcsLastSeen: 1_699_999_999,
    sysid: '7268616322854375442',
    lastReason: 'no action. I am (pg1), the leader with the lock',
    takenAt: NOW - 1000,
    ...extra,
  });
}

function replica(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return primary({
    patroni: { version: PATRONI_COMPAT_VERSION, scope: 'demo', name: 'pg2' },
    role: 'replica',
    xlog: { received_location: 950, replayed_location: 900, replayed_timestamp: '2024-08-28 19:40:00.5+00', paused: false },
    replicationState: 'streaming',
    isLeader: false,
    leaderValidUntil: undefined,
    lastReason: 'no action. I am (pg2), a secondary, and following a leader (pg1)',
    ...extra,
  });
}

function req(method: string, target: string, headers: Record<string, string> = {}): ApiRequest {
  const q = target.indexOf('?');
  return {
    method,
    path: q < 0 ? target : target.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
    headers,
  };
}

function get(snap: NodeSnapshot, target: string, opts?: HandlerOptions): ApiResponse {
  return handle(req('GET', target), snap, NOW, opts);
}

function code(snap: NodeSnapshot, target: string): number {
  return get(snap, target).status;
}

function bodyOf(r: ApiResponse): Record<string, unknown> {
  assert.equal(r.contentType, 'application/json');
  return JSON.parse(r.body ?? '') as Record<string, unknown>;
}

// ---- Dispatch table (2.3) -----------------------------------------------------------------------

const dispatch: [string, () => NodeSnapshot, string, number][] = [
  // primary holding the lock
  ['primary /', primary, '/', 200],
  ['primary /primary', primary, '/primary', 200],
  ['primary /master', primary, '/master', 200],
  ['primary /read-write', primary, '/read-write', 200],
  ['primary /leader', primary, '/leader', 200],
  ['primary /standby-leader', primary, '/standby-leader', 503],
  ['primary /replica', primary, '/replica', 503],
  ['primary /read-only', primary, '/read-only', 200],
  ['primary /health', primary, '/health', 200],
  ['primary /sync', primary, '/sync', 503],
  ['primary /async', primary, '/async', 503],
  ['primary /read-only-sync', primary, '/read-only-sync', 200],
  ['primary /read-only-quorum', primary, '/read-only-quorum', 200],
  ['primary unknown path', primary, '/nonsense', 503],
  ['primary substring rule', primary, '/foo/primary/bar', 200],
  ['primary tag filters ignored on /primary', primary, '/primary?tag_dc=west', 200],
  // lock expired although the agent still says leader (agent hung)
  ['stale lock /primary', () => primary({ leaderValidUntil: NOW - 1 }), '/primary', 503],
  ['stale lock /leader', () => primary({ leaderValidUntil: NOW - 1 }), '/leader', 503],
  // replica
  ['replica /', replica, '/', 503],
  ['replica /primary', replica, '/primary', 503],
  ['replica /leader', replica, '/leader', 503],
  ['replica /replica', replica, '/replica', 200],
  ['replica /read-only', replica, '/read-only', 200],
  ['replica /health', replica, '/health', 200],
  ['replica /async', replica, '/async', 200],
  ['replica /asynchronous', replica, '/asynchronous', 200],
  ['replica /sync', replica, '/sync', 503],
  ['replica /read-only-sync', replica, '/read-only-sync', 503],
  ['replica /standby_leader', replica, '/standby_leader', 503],
  ['replica /async without DCS view', () => replica({ clusterReadAt: NOW - 31_000 }), '/async', 503],
  ['replica /replica without DCS view', () => replica({ cluster: undefined }), '/replica', 200],
  // lag: optime 1000, replayed 900
  ['lag 50 -> lagging', replica, '/replica?lag=50', 503],
  ['lag 100 -> ok', replica, '/replica?lag=100', 200],
  ['lag 1kB -> ok', replica, '/replica?lag=1kB', 200],
  ['lag 99B -> lagging', replica, '/replica?lag=99B', 503],
  ['lag invalid -> unlimited', replica, '/replica?lag=1kb', 200],
  ['lag applies to /read-only', replica, '/read-only?lag=10', 503],
  ['lag applies to /async', replica, '/async?lag=10', 503],
  ['lag uses receiver latest_end_lsn', () => replica({ receiverLatestEndLsn: 2000 }), '/replica?lag=500', 503],
  ['lag ignored on /health', replica, '/health?lag=10', 200],
  // replication_state
  ['replication_state match', replica, '/replica?replication_state=streaming', 200],
  ['replication_state mismatch', replica, '/replica?replication_state=in%20archive%20recovery', 503],
  ['replication_state empty ignored', replica, '/replica?replication_state=', 200],
  // tags
  ['tag match', () => replica({ tags: { dc: 'east' } }), '/replica?tag_dc=east', 200],
  ['tag mismatch', () => replica({ tags: { dc: 'east' } }), '/replica?tag_dc=west', 503],
  ['tag absent', () => replica({ tags: {} }), '/replica?tag_dc=east', 503],
  ['tag boolean lower-cased', () => replica({ tags: { clonefrom: true } }), '/replica?tag_clonefrom=true', 200],
  ['tag number as text', () => replica({ tags: { weight: 1.5 } }), '/replica?tag_weight=1.5', 200],
  ['tags on /health', () => replica({ tags: { dc: 'east' } }), '/health?tag_dc=west', 503],
  ['tags on /read-only primary', () => primary({ tags: { dc: 'east' } }), '/read-only?tag_dc=west', 503],
  ['tags need all to match', () => replica({ tags: { dc: 'east', rack: 'a' } }), '/replica?tag_dc=east&tag_rack=b', 503],
  // noloadbalance
  ['noloadbalance /replica', () => replica({ tags: { noloadbalance: true } }), '/replica', 503],
  ['noloadbalance /read-only', () => replica({ tags: { noloadbalance: true } }), '/read-only', 503],
  ['noloadbalance /health', () => replica({ tags: { noloadbalance: true } }), '/health', 200],
  ['noloadbalance primary /read-only', () => primary({ tags: { noloadbalance: true } }), '/read-only', 200],
  // health
  ['stopped /health', () => replica({ state: 'stopped', xlog: undefined }), '/health', 503],
  ['probe failed /health', () => replica({ xlog: undefined }), '/health', 503],
  ['probe failed /replica', () => replica({ xlog: undefined }), '/replica', 503],
  ['starting /replica', () => replica({ state: 'starting' }), '/replica', 503],
];

for (const [name, make, target, expected] of dispatch) {
  test(`health check: ${name} -> ${expected}`, () => {
    assert.equal(code(make(), target), expected);
  });
}

test('standby cluster: standby leader answers /standby-leader and /leader, not /primary or /replica', () => {
  const snap = replica({
    patroni: { version: PATRONI_COMPAT_VERSION, scope: 'demo', name: 'pg1' },
    role: 'standby_leader',
    isLeader: true,
    leaderValidUntil: NOW + 10_000,
    config: defaultConfig({ standby_cluster: { host: '10.1.0.1', port: 5432 } }),
  });
  assert.equal(code(snap, '/standby-leader'), 200);
  assert.equal(code(snap, '/standby_leader'), 200);
  assert.equal(code(snap, '/leader'), 200);
  assert.equal(code(snap, '/primary'), 503);
  assert.equal(code(snap, '/replica'), 503);
  assert.equal(code(snap, '/read-only'), 200);
  assert.equal(bodyOf(get(snap, '/patroni'))['role'], 'standby_leader');
  // A replica of the standby cluster.
  const other = replica({ config: defaultConfig({ standby_cluster: { restore_command: 'cp x y' } }) });
  assert.equal(code(other, '/standby-leader'), 503);
  assert.equal(code(other, '/replica'), 200);
});

test('pause without a DCS view: the codes follow the PostgreSQL role', () => {
  const p = primary({ isLeader: false, cluster: undefined, pause: true });
  assert.equal(code(p, '/primary'), 200);
  assert.equal(code(p, '/leader'), 200);
  assert.equal(code(p, '/standby-leader'), 503);
  const r = replica({ cluster: undefined, pause: true });
  assert.equal(code(r, '/primary'), 503);
  assert.equal(code(r, '/replica'), 200);
  // Pause from the dynamic configuration when the agent leaves `pause` unset.
  const c = primary({ isLeader: false, cluster: undefined, config: defaultConfig({ pause: true }) });
  assert.equal(code(c, '/primary'), 200);
  // Not paused, no lock: nothing is primary.
  assert.equal(code(primary({ isLeader: false, cluster: undefined }), '/primary'), 503);
});

test('synchronous mode: /sync, /async, /read-only-sync from the sync key', () => {
  const cluster = clusterView({ sync: { leader: 'pg1', sync_standby: 'PG2,pg3', quorum: 0, version: '3' } });
  const snap = replica({ cluster, config: defaultConfig({ synchronous_mode: true }) });
  assert.equal(code(snap, '/sync'), 200);
  assert.equal(code(snap, '/synchronous'), 200);
  assert.equal(code(snap, '/async'), 503);
  assert.equal(code(snap, '/read-only-sync'), 200);
  assert.equal(code(snap, '/read-only-synchronous'), 200);
  assert.equal(code(snap, '/quorum'), 503);
  assert.equal(code(snap, '/sync?lag=10'), 503);
  assert.equal(bodyOf(get(snap, '/patroni'))['sync_standby'], true);
  // Listed but synchronous_mode off: not a sync standby.
  const off = replica({ cluster });
  assert.equal(code(off, '/sync'), 503);
  assert.equal(code(off, '/async'), 200);
  // Stale DCS view: the #7 rules answer 503.
  assert.equal(code(replica({ cluster, clusterReadAt: NOW - 60_000, config: defaultConfig({ synchronous_mode: true }) }), '/sync'), 503);
  // Quorum mode.
  const q = replica({ cluster, config: defaultConfig({ synchronous_mode: 'quorum' }) });
  assert.equal(code(q, '/quorum'), 200);
  assert.equal(code(q, '/read-only-quorum'), 200);
  assert.equal(code(q, '/sync'), 503);
  assert.equal(code(q, '/async'), 503);
  const qs = bodyOf(get(q, '/patroni'));
  assert.equal(qs['quorum_standby'], true);
  assert.equal(qs['sync_standby'], undefined);
});

test('sync roles across modes: read-only-sync/-quorum, async, HEAD, tag filters, metrics', () => {
  const cluster = clusterView({ sync: { leader: 'pg1', sync_standby: 'pg2', quorum: 1, version: '3' } });
  const sync = replica({ cluster, config: defaultConfig({ synchronous_mode: 'on' }) });
  const quorum = replica({ cluster, config: defaultConfig({ synchronous_mode: 'quorum' }) });
  // A replica not listed in /sync.
  const async = replica({ cluster: clusterView({ sync: { leader: 'pg1', sync_standby: 'pg3', quorum: 1, version: '3' } }), config: defaultConfig({ synchronous_mode: 'on' }) });
  const table: [string, NodeSnapshot, string, number][] = [
    ['sync', sync, '/read-only-quorum', 503],
    ['sync', sync, '/asynchronous', 503],
    ['quorum', quorum, '/read-only-sync', 503],
    ['quorum', quorum, '/read-only-synchronous', 503],
    ['quorum', quorum, '/synchronous', 503],
    ['quorum', quorum, '/asynchronous', 503],
    ['async', async, '/sync', 503],
    ['async', async, '/quorum', 503],
    ['async', async, '/read-only-sync', 503],
    ['async', async, '/read-only-quorum', 503],
    ['async', async, '/async', 200],
    ['async', async, '/read-only', 200],
  ];
  for (const [label, snap, path, want] of table) {
    assert.equal(code(snap, path), want, `${label} ${path}`);
    assert.equal(handle(req('HEAD', path), snap, NOW).status, want, `HEAD ${label} ${path}`);
    assert.equal(handle(req('OPTIONS', path), snap, NOW).status, want, `OPTIONS ${label} ${path}`);
  }
  assert.equal(handle(req('HEAD', '/sync'), sync, NOW).statusLineOnly, true);
  assert.equal(handle(req('HEAD', '/quorum'), quorum, NOW).status, 200);
  // Tag filters apply to the sync rules: the tag must exist and match.
  const tagged = { ...sync, tags: { dc: 'east' } };
  assert.equal(code(tagged, '/sync?tag_dc=east'), 200);
  assert.equal(code(tagged, '/sync?tag_dc=west'), 503);
  assert.equal(code(sync, '/read-only-sync?tag_dc=east'), 503);
  // The primary: 200 on the read-only-* variants with a fresh view, 503 on /sync, /quorum, /async.
  const prim = primary({ cluster, config: defaultConfig({ synchronous_mode: 'quorum' }) });
  for (const [path, want] of [['/read-only-sync', 200], ['/read-only-quorum', 200], ['/sync', 503], ['/quorum', 503], ['/async', 503]] as const) {
    assert.equal(code(prim, path), want, `primary ${path}`);
  }
  // Without a fresh DCS view every #7 path is 503, even on the primary.
  assert.equal(code(primary({ cluster, clusterReadAt: NOW - 60_000 }), '/read-only-sync'), 503);
  // The primary is never flagged as a standby, even when /sync lists its name.
  const listedPrimary = primary({ cluster: clusterView({ sync: { leader: 'pg1', sync_standby: 'pg1,pg2', quorum: 0, version: '1' } }), config: defaultConfig({ synchronous_mode: true }) });
  assert.equal(bodyOf(get(listedPrimary, '/patroni'))['sync_standby'], undefined);
  // Metrics follow the status JSON.
  const metric = (snap: NodeSnapshot, name: string): string | undefined =>
    get(snap, '/metrics').body?.split('\n').find((l) => l.startsWith(`${name}{`))?.split(' ').at(-1);
  assert.equal(metric(sync, 'patroni_sync_standby'), '1');
  assert.equal(metric(sync, 'patroni_quorum_standby'), '0');
  assert.equal(metric(quorum, 'patroni_sync_standby'), '0');
  assert.equal(metric(quorum, 'patroni_quorum_standby'), '1');
  assert.equal(metric(async, 'patroni_sync_standby'), '0');
  // A standby cluster has no synchronous replication: listed members are plain replicas.
  const standby = replica({ cluster, config: defaultConfig({ synchronous_mode: 'on', standby_cluster: { host: 'h' } }) });
  assert.equal(code(standby, '/sync'), 503);
  assert.equal(bodyOf(get(standby, '/patroni'))['sync_standby'], undefined);
});

test('/cluster member roles: quorum_standby and sync_standby from /sync (case-insensitive), replica otherwise', () => {
  const members = [
    ...clusterView().members,
    member('pg3', { conn_url: 'postgres://10.0.0.3:5432/postgres', api_url: 'http://10.0.0.3:8008/patroni', state: 'running', role: 'replica' }),
  ];
  const cluster = clusterView({ members, sync: { leader: 'pg1', sync_standby: 'PG2', quorum: 1, version: '3' } });
  const roles = (mode: DynamicConfig['synchronous_mode'], extra: Partial<DynamicConfig> = {}): unknown[] =>
    (bodyOf(get(primary({ cluster, config: defaultConfig({ synchronous_mode: mode, ...extra }) }), '/cluster'))['members'] as Record<string, unknown>[]).map(
      (m) => m['role'],
    );
  assert.deepEqual(roles('quorum'), ['leader', 'quorum_standby', 'replica']);
  assert.deepEqual(roles('on'), ['leader', 'sync_standby', 'replica']);
  assert.deepEqual(roles(true), ['leader', 'sync_standby', 'replica']);
  assert.deepEqual(roles(false), ['leader', 'replica', 'replica']);
  assert.deepEqual(roles('quorum', { standby_cluster: { host: 'h' } }), ['standby_leader', 'replica', 'replica']);
  // A sync key with a non-string sync_standby is ignored, not fatal.
  const odd = clusterView({ sync: { leader: 'pg1', sync_standby: 42 as unknown as string, quorum: 0, version: '1' } });
  const r = get(primary({ cluster: odd, config: defaultConfig({ synchronous_mode: 'on' }) }), '/cluster');
  assert.equal(r.status, 200);
  assert.deepEqual((bodyOf(r)['members'] as Record<string, unknown>[]).map((m) => m['role']), ['leader', 'replica']);
});

test('HEAD and OPTIONS answer the status line only, through the health check', () => {
  for (const method of ['HEAD', 'OPTIONS']) {
    assert.deepEqual(handle(req(method, '/'), primary(), NOW), { status: 200, statusLineOnly: true });
    assert.deepEqual(handle(req(method, '/'), replica(), NOW), { status: 503, statusLineOnly: true });
    assert.deepEqual(handle(req(method, '/replica'), replica(), NOW), { status: 200, statusLineOnly: true });
    // No specific handler for HEAD: /patroni and /liveness go to the generic check.
    assert.deepEqual(handle(req(method, '/patroni'), primary(), NOW), { status: 503, statusLineOnly: true });
    assert.deepEqual(handle(req(method, '/liveness'), primary(), NOW), { status: 503, statusLineOnly: true });
  }
});

test('GET health checks return the status JSON for 200 and 503 alike', () => {
  const ok = get(replica(), '/replica');
  const ko = get(replica(), '/primary');
  assert.equal(ok.status, 200);
  assert.equal(ko.status, 503);
  assert.deepEqual(bodyOf(ok), bodyOf(ko));
});

test('GET /patroni is 200 whatever the role; first path segment routes', () => {
  assert.equal(code(replica({ state: 'stopped', xlog: undefined }), '/patroni'), 200);
  assert.equal(code(replica(), '/patroni/anything'), 200);
  assert.equal(bodyOf(get(replica(), '/patroni?x=1'))['role'], 'replica');
});

test('unknown methods and unknown operation paths -> 501', () => {
  assert.equal(handle(req('TRACE', '/'), primary(), NOW).status, 501);
  assert.equal(handle(req('get', '/'), primary(), NOW).status, 501);
  assert.equal(handle(req('POST', '/nonsense'), primary(), NOW).status, 501);
  assert.equal(handle(req('DELETE', '/config'), primary(), NOW).status, 501);
});

test('operations: 503 not supported yet, behind basic auth when configured', () => {
  const auth = { username: 'admin', password: 's3cret' };
  const good = 'Basic ' + Buffer.from('admin:s3cret').toString('base64');
  const bad = 'Basic ' + Buffer.from('admin:wrong').toString('base64');
  const none = handle(req('POST', '/switchover'), primary(), NOW, { auth });
  assert.equal(none.status, 401);
  assert.equal(none.body, 'no auth header received');
  assert.equal(none.headers?.['WWW-Authenticate'], 'Basic realm="Patroni"');
  const wrong = handle(req('PATCH', '/config', { authorization: bad }), primary(), NOW, { auth });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body, 'not authenticated');
  const right = handle(req('POST', '/restart', { authorization: good }), primary(), NOW, { auth });
  assert.equal(right.status, 503);
  assert.match(right.body ?? '', /not supported yet/);
  // Header names are matched case-insensitively.
  assert.equal(handle(req('POST', '/reload', { Authorization: good }), primary(), NOW, { auth }).status, 503);
  // POST /mpp is not guarded; without configured auth nothing is.
  assert.equal(handle(req('POST', '/mpp'), primary(), NOW, { auth }).status, 503);
  assert.equal(handle(req('POST', '/switchover'), primary(), NOW).status, 503);
  // GETs are never authenticated.
  assert.equal(get(primary(), '/patroni', { auth }).status, 200);
});

// ---- Liveness and readiness (2.6) ---------------------------------------------------------------

test('liveness: loop due within ttl (primary) or 2 ttl (others); always 200 in pause', () => {
  const live = (s: NodeSnapshot): ApiResponse => get(s, '/liveness');
  assert.deepEqual(live(primary()), { status: 200, statusLineOnly: true });
  // takenAt + loop_wait(10 s) + ttl(30 s) must be ahead of now.
  assert.equal(live(primary({ takenAt: NOW - 39_000 })).status, 200);
  assert.equal(live(primary({ takenAt: NOW - 41_000 })).status, 503);
  assert.equal(live(replica({ takenAt: NOW - 41_000 })).status, 200);
  assert.equal(live(replica({ takenAt: NOW - 71_000 })).status, 503);
  assert.equal(live(replica({ takenAt: NOW - 71_000, nextRunAt: NOW })).status, 200);
  assert.equal(live(primary({ takenAt: NOW - 600_000, pause: true })).status, 200);
});

test('readiness', () => {
  const ready = (s: NodeSnapshot, q = ''): number => {
    const r = get(s, '/readiness' + q);
    assert.equal(r.statusLineOnly, true);
    return r.status;
  };
  assert.equal(ready(primary()), 200);
  assert.equal(ready(replica()), 200);
  // optime 1000, replayed 900, received 950.
  assert.equal(ready(replica(), '?lag=99'), 503);
  assert.equal(ready(replica(), '?lag=100'), 200);
  assert.equal(ready(replica(), '?lag=50&mode=write'), 200);
  assert.equal(ready(replica(), '?lag=49&mode=write'), 503);
  assert.equal(ready(replica({ config: defaultConfig({ maximum_lag_on_failover: 10 }) })), 503);
  assert.equal(ready(replica({ replicationState: 'in archive recovery' })), 503);
  assert.equal(ready(replica({ state: 'stopped', xlog: undefined })), 503);
  // No DCS view and no wal receiver position: only failsafe makes it ready.
  assert.equal(ready(replica({ cluster: undefined })), 503);
  assert.equal(ready(replica({ cluster: undefined, failsafeActive: true })), 200);
  assert.equal(ready(replica({ cluster: undefined, receiverLatestEndLsn: 900 })), 200);
});

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
