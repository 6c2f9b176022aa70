// The read-only handlers through handle() (handlers.ts): the health-check dispatch table (2.3),
// HEAD/OPTIONS, routing by first segment, unknown methods, the gate without a port, liveness and
// readiness (2.6). Status JSON, /cluster & co. and /metrics: status.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { DynamicConfig } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import { bodyOf, clusterView, code, get, member, NOW, primary, replica, req } from './handler-fixtures.ts';
import { handle } from './handlers.ts';
import type { ApiResponse } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { PATRONI_COMPAT_VERSION } from './version.ts';


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

