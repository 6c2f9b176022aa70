// Fuzzing of what the DCS hands the agent (src/dcs/codec.ts), in process: random bytes, random JSON
// and mistyped fields of the right shape as the values of member keys, /config, /sync, /status,
// /history, /failover, /failsafe, /optime/leader, /initialize and /leader. Properties:
// - decodeCluster never throws, and reports each key where the agent looks for it (a member key
//   as a member of that name, /config's version even when its content is unusable);
// - the read-only REST handlers (the status JSON, health checks, /cluster, /history, /config,
//   /failsafe, /metrics) answer every request from such a view without throwing or a 500;
// - garbage in the keys other than /leader and /initialize (those are a lock and an identity, see
//   the end-to-end suite) does not change the decision of the lock holder (stays primary, keeps the
//   lock) nor of a streaming replica (stays a replica, does not race or promote), unless it names a
//   real member in /failover (a valid manual failover, not garbage); and a member key without a
//   conn_url gets no replication slot on the leader.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { handle } from '../../src/api/handlers.ts';
import type { ApiRequest } from '../../src/api/request.ts';
import { snapshot } from '../../src/api/testing.ts';
import { effectiveDynamicConfigNotes } from '../../src/config/dynamic.ts';
import { decide } from '../../src/core/decide.ts';
import { clusterView } from '../../src/core/model.ts';
import type { ClusterView, DynamicConfig, LocalPg, Member, Observation } from '../../src/core/model.ts';
import { defaultConfig } from '../../src/core/testing.ts';
import { decodeCluster } from '../../src/dcs/codec.ts';
import type { RawKv } from '../../src/dcs/codec.ts';
import { anyValue, fuzz, oddString } from './fuzz.ts';

const PREFIX = '/service/demo/';
const SYSID = '7268616322854375442';
const REAL = ['n0', 'n1', 'n2'];

/** A value as bytes would come: random UTF-8, random JSON, an object of the key's fields with random values. */
function valueOf(fields: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).toString('utf8')),
    oddString(),
    anyValue().map((v) => JSON.stringify(v) ?? 'null'),
    fc.dictionary(fc.constantFrom(...fields), anyValue(), { maxKeys: fields.length }).map((o) => JSON.stringify(o)),
    fc.array(fc.array(anyValue(), { maxLength: 6 }), { maxLength: 4 }).map((a) => JSON.stringify(a)),
  );
}

const MEMBER_FIELDS = ['conn_url', 'api_url', 'state', 'role', 'version', 'tags', 'xlog_location', 'replay_lsn', 'receive_lsn', 'timeline', 'replication_state', 'pending_restart', 'scheduled_restart', 'pause', 'proxy_url'];
const garbageKeys: Record<string, fc.Arbitrary<string>> = {
  config: valueOf(['ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'postgresql', 'synchronous_mode', 'synchronous_node_count', 'check_timeline', 'slots', 'ignore_slots', 'member_slots_ttl']),
  sync: valueOf(['leader', 'sync_standby', 'quorum']),
  status: valueOf(['optime', 'slots', 'retain_slots', 'failsafe']),
  history: valueOf(['0']),
  failover: valueOf(['leader', 'member', 'scheduled_at']),
  failsafe: valueOf(['n0', 'n1', 'x']),
  'optime/leader': valueOf(['x']),
};

/** A random member key name that is not a real member (or a name with odd characters). */
const strangerName = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('n9', 'N0', 'n0 ', '..', '%2e', 'a/b', '')).filter((n) => !REAL.includes(n));

const kvs = fc.record({
  strangers: fc.array(fc.tuple(strangerName, valueOf(MEMBER_FIELDS), fc.constantFrom('', '0', '7')), { maxLength: 3 }),
  keys: fc.dictionary(fc.constantFrom(...Object.keys(garbageKeys)), fc.constant(''), { maxKeys: 7 }).chain((d) =>
    Object.keys(d).length === 0 ? fc.constant({}) : fc.record(Object.fromEntries(Object.keys(d).map((k) => [k, garbageKeys[k]!]))),
  ),
  initialize: fc.option(valueOf(['x']), { nil: undefined }),
  leader: fc.option(valueOf(['x']), { nil: undefined }),
});

function realMember(name: string, role: string): RawKv {
  const data = { conn_url: `postgres://127.0.0.1:5432/postgres`, api_url: `http://127.0.0.1:8008/patroni`, state: 'running', role, xlog_location: 1000, timeline: 1 };
  return { key: `${PREFIX}members/${name}`, value: JSON.stringify(data), modRevision: '3', createRevision: '3', lease: '11' };
}

interface Garbage {
  strangers: [string, string, string][];
  keys: Record<string, string>;
  initialize: string | undefined;
  leader: string | undefined;
}

/** The raw keys: a healthy cluster (n0 leads, n1 and n2 replicas) plus the garbage. */
function rawKeys(g: Garbage, withLockAndIdentity: boolean): RawKv[] {
  const kv = (key: string, value: string, lease = ''): RawKv => ({ key: PREFIX + key, value, modRevision: '9', createRevision: '9', lease });
  const out: RawKv[] = [realMember('n0', 'primary'), realMember('n1', 'replica'), realMember('n2', 'replica')];
  out.push(kv('initialize', withLockAndIdentity && g.initialize !== undefined ? g.initialize : SYSID));
  out.push(kv('leader', withLockAndIdentity && g.leader !== undefined ? g.leader : 'n0', '11'));
  for (const [name, value, lease] of g.strangers) out.push(kv(`members/${name}`, value, lease));
  for (const [k, v] of Object.entries(g.keys)) out.push(kv(k, v));
  return out;
}

const GETS = ['/', '/patroni', '/health', '/primary', '/leader', '/replica', '/replica?lag=1MB', '/read-only', '/standby-leader', '/sync', '/async',
  '/quorum', '/read-only-sync', '/cluster', '/history', '/config', '/failsafe', '/metrics', '/liveness', '/readiness'];

test('decodeCluster never throws; each key is reported where the agent looks for it; the REST handlers answer from the view', async () => {
  await fuzz('dcs: decode and serve', 1000, [kvs], (g) => {
    const view = decodeCluster(PREFIX, rawKeys(g, true), '42');
    for (const [name] of g.strangers) {
      if (name !== '' && !name.includes('/')) assert.ok(view.members.some((m) => m.name === name), `member ${name} is reported`);
    }
    if ('config' in g.keys) assert.equal(view.configVersion, '9', 'the version of /config is kept even when it is unusable');
    assert.equal(view.members.filter((m) => REAL.includes(m.name)).length, 3);
    // The agent's view of it, then every read-only endpoint.
    const { config } = effectiveDynamicConfigNotes(view.config, defaultConfig());
    for (const role of ['primary', 'replica'] as const) {
      const snap = snapshot({ role, isLeader: role === 'primary', cluster: view, clusterReadAt: 1000, config, dcsLastSeen: 1, takenAt: 1000, leaderValidUntil: role === 'primary' ? 60_000 : undefined });
      for (const path of GETS) {
        const [p, q] = path.split('?');
        const req: ApiRequest = { method: 'GET', path: p!, query: new URLSearchParams(q ?? ''), headers: {} };
        const res = handle(req, snap, 2000);
        assert.ok(res.status !== 500 && res.status >= 200 && res.status < 600, `GET ${path} answered ${res.status}`);
        if (res.body !== undefined && res.contentType === 'application/json') JSON.parse(res.body);
      }
    }
  });
});

function pg(over: Partial<LocalPg>): LocalPg {
  return {
    dataDirEmpty: false, sysid: SYSID, running: true, ready: true, inRecovery: true, walLsn: 1000, receiveLsn: 1000, replayLsn: 1000, timeline: 1,
    streaming: true, upstream: 'n0', controlState: 'in archive recovery', rewindable: true, crashed: false, ...over,
  };
}

function observation(name: string, view: ClusterView, config: DynamicConfig, local: LocalPg): Observation {
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name, tags: {}, canBootstrap: true, bootstrapDcs: { ttl: 30 }, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config,
    cluster: view,
    pg: local,
    task: undefined,
    failures: [],
    lockRefreshedAt: 99_000,
    memory: { started: true },
  };
}

/** /failover naming real members is an operation, not garbage. */
function namesRealMember(view: ClusterView): boolean {
  const f = view.failover;
  return f !== undefined && (REAL.includes(f.leader ?? '') || REAL.includes(f.member ?? ''));
}

test('garbage beside a healthy cluster changes no role: the lock holder keeps it, a replica does not race', async () => {
  const DEMOTING = new Set(['releaseLeader', 'acquireLeader', 'takeLeader']);
  await fuzz('dcs: decisions', 1500, [kvs], (g) => {
    const view = decodeCluster(PREFIX, rawKeys(g, false), '42');
    fc.pre(!namesRealMember(view));
    const { config } = effectiveDynamicConfigNotes(view.config, defaultConfig());
    fc.pre(config.standby_cluster === undefined);
    const leader = decide(observation('n0', view, config, pg({ inRecovery: false, upstream: null, controlState: 'in production' })));
    const what = (d: ReturnType<typeof decide>): string => `${d.role} ${d.reason} ${JSON.stringify(d.actions.map((a) => (a.type === 'startTask' ? a.task.kind : a.type)))}`;
    assert.equal(leader.exit, undefined, what(leader));
    assert.equal(leader.role, 'primary', what(leader));
    assert.equal(leader.isLeader, true, what(leader));
    assert.ok(!leader.actions.some((a) => a.type === 'releaseLeader' || (a.type === 'startTask' && a.task.kind === 'demote')), what(leader));
    // A member key that cannot stream (no conn_url) gets no replication slot (it would retain WAL forever).
    for (const a of leader.actions) {
      if (a.type !== 'ensureSlots') continue;
      for (const name of a.members) assert.equal(typeof view.members.find((m) => m.name === name)?.data.conn_url, 'string', `a slot for ${JSON.stringify(name)}`);
    }
    const replica = decide(observation('n1', view, config, pg({})));
    assert.equal(replica.exit, undefined, what(replica));
    assert.equal(replica.isLeader, false, what(replica));
    assert.ok(!replica.actions.some((a) => DEMOTING.has(a.type) || (a.type === 'startTask' && (a.task.kind === 'promote' || a.task.kind === 'demote'))), what(replica));
  });
});

// A smoke check that the properties above can fail: a leader key naming another member demotes.
test('the decision property sees a real change (a /leader naming n1 makes n0 step down)', () => {
  const view: ClusterView = clusterView({ ...decodeCluster(PREFIX, rawKeys({ strangers: [], keys: {}, initialize: undefined, leader: 'n1' }, true), '1') });
  const d = decide(observation('n0', view, defaultConfig(), pg({ inRecovery: false, upstream: null, controlState: 'in production' })));
  assert.notEqual(d.isLeader, true);
  const m: Member | undefined = view.members.find((x) => x.name === 'n1');
  assert.ok(m !== undefined);
});
