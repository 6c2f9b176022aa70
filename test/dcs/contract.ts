// The Dcs contract, one suite for every backend (real etcd v3, the simulated etcd, and each backend
// added later: one test/dcs/contract-<backend>.test.ts that calls dcsContract with its harness).
//
// It checks what the agent and the CLI rely on (src/dcs/dcs.ts): the bootstrap race; the leader
// lock acquired, refreshed and released only by its owner; leader and member keys bound to the
// client's session, vanishing when it expires or is revoked by close(); a lost compare-and-set
// (false) told apart from an unreachable store (DcsError DCS_UNAVAILABLE, retryable); CAS by
// version on config, failover and sync; watchLeader waking on a change and on its timeout;
// readCluster decoding; Patroni's compact JSON as stored.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DcsError, type Dcs } from '../../src/dcs/dcs.ts';

/** A fresh, empty keyspace of one cluster on the store under test. */
export interface DcsTestCluster {
  /** Session TTL (seconds) of the clients made by client(). */
  readonly ttl: number;
  /**
   * false: member keys are not bound to the session (Kubernetes: a member is its Pod's annotation
   * and lives as long as the Pod); the member-session checks are skipped. Default true.
   */
  readonly memberSessions?: boolean;
  /** A client for member `name` (closed by close()). */
  client(name: string): Dcs;
  /** The session (lease) the client holds now. */
  session(client: Dcs): string | undefined;
  /** Return once the client's session has expired in the store (no keepalive meanwhile). */
  expireSession(client: Dcs): Promise<void>;
  /** Let `ms` of the store's time pass (a real sleep, or the simulated clock). */
  elapse(ms: number): Promise<void>;
  /** Run `fn` while `client` cannot reach the store; it is reachable again afterwards. */
  unreachable<T>(client: Dcs, fn: () => Promise<T>): Promise<T>;
  /** The stored text of a key relative to the prefix and its session ('0' or '': none). */
  raw(rel: string): Promise<{ value: string; session: string } | undefined>;
  /**
   * Store `value` as the text of key `rel` (written by another tool, not through Dcs; on
   * Kubernetes the annotation Patroni keeps that key in), unbound to any session.
   */
  writeRaw(rel: 'config', value: string): Promise<void>;
  close(): Promise<void>;
}

export interface DcsHarness {
  /**
   * 'lease' (default): one session per client binds its leader and member keys, and is refreshed
   * without rewriting them. 'ttl' (etcd v2): no sessions; those keys carry a TTL that the verbs
   * refresh by rewriting them (new version each time), and a key's "session" is its TTL. With
   * 'ttl', session identities are only checked to be set, and keys are expected to be rewritten.
   */
  sessions?: 'lease' | 'ttl';
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  cluster(): DcsTestCluster;
}

/** Bounds a test that would otherwise hang (a watch that never wakes is a failure, not a wait). */
const T = { timeout: 60_000 };

async function rejectsWith(p: Promise<unknown>, code: DcsError['code'], retryable?: boolean): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DcsError, `expected DcsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (retryable !== undefined) assert.equal(err.retryable, retryable, err.message);
    return true;
  });
}

const noSession = (s: string | undefined): boolean => s === undefined || s === '' || s === '0';

export function dcsContract(name: string, harness: DcsHarness): void {
  const ttlKeys = harness.sessions === 'ttl';
  /** The key is bound to that client's session (with 'ttl': both carry a session at all). */
  const sameSession = (actual: string | undefined, expected: string | undefined, message?: string): void => {
    if (ttlKeys) assert.ok(!noSession(actual) && !noSession(expected), `${message ?? 'bound'}: ${actual} / ${expected}`);
    else assert.equal(actual, expected, message);
  };
  describe(`Dcs contract: ${name}`, () => {
    const clusters: DcsTestCluster[] = [];
    before(async () => {
      await harness.setup?.();
    });
    after(async () => {
      for (const c of clusters) await c.close();
      await harness.teardown?.();
    });
    const fresh = (): DcsTestCluster => {
      const c = harness.cluster();
      clusters.push(c);
      return c;
    };

    it('bootstrap race: exactly one attemptInitialize wins; initialize can be written and deleted', T, async () => {
      const k = fresh();
      const [a, b, c] = ['a', 'b', 'c'].map((n) => k.client(n)) as [Dcs, Dcs, Dcs];
      const wins = await Promise.all([a, b, c].map((d) => d.attemptInitialize()));
      assert.equal(wins.filter(Boolean).length, 1, JSON.stringify(wins));
      assert.equal((await a.readCluster()).initialize, '');
      await b.writeInitialize('7268616322854375442');
      assert.equal((await c.readCluster()).initialize, '7268616322854375442');
      assert.equal(await a.attemptInitialize(), false);
      await c.deleteInitialize();
      assert.equal((await a.readCluster()).initialize, undefined);
      assert.equal(await b.attemptInitialize(), true);
    });

    it('leader lock: one acquire wins; only the owner refreshes and releases', T, async () => {
      const k = fresh();
      const clients = ['a', 'b', 'c'].map((n) => k.client(n));
      const wins = await Promise.all(clients.map((d) => d.acquireLeader()));
      assert.equal(wins.filter(Boolean).length, 1, JSON.stringify(wins));
      const owner = clients[wins.indexOf(true)] as Dcs;
      const loser = clients[wins.indexOf(false)] as Dcs;
      const view = await loser.readCluster();
      assert.ok(view.leader !== undefined && ['a', 'b', 'c'][wins.indexOf(true)] === view.leader.name);
      sameSession(view.leader.session, k.session(owner));
      assert.equal(await loser.refreshLeader(), false);
      assert.equal(await loser.releaseLeader(), false);
      assert.equal(await loser.acquireLeader(), false);
      assert.equal(await owner.refreshLeader(), true);
      const again = await loser.readCluster();
      assert.equal(again.leader?.name, view.leader.name, 'the losers changed nothing');
      if (!ttlKeys) assert.equal(again.leader?.version, view.leader.version, "the owner's refresh does not rewrite the key (watchers are not woken)");
      assert.equal(await owner.releaseLeader(), true);
      assert.equal((await loser.readCluster()).leader, undefined);
      assert.equal(await owner.releaseLeader(), false, 'nothing left to release');
      assert.equal(await loser.acquireLeader(), true);
    });

    it('takeLeader overwrites unconditionally; the former owner then loses its refresh', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const b = k.client('b');
      assert.equal(await a.acquireLeader(), true);
      await b.takeLeader();
      const view = await a.readCluster();
      assert.equal(view.leader?.name, 'b');
      sameSession(view.leader?.session, k.session(b));
      assert.equal(await a.refreshLeader(), false);
      assert.equal(await b.refreshLeader(), true);
    });

    it('leader and member keys are bound to the session: they vanish when it expires, other keys stay', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const b = k.client('b');
      await a.touchMember({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'primary' });
      assert.equal(await a.acquireLeader(), true);
      assert.equal(await a.writeConfig({ ttl: k.ttl }), true);
      const before = await b.readCluster();
      const first = k.session(a);
      assert.ok(!noSession(first));
      sameSession(before.leader?.session, first);
      const sessions = k.memberSessions !== false;
      if (sessions) sameSession(before.members.find((m) => m.name === 'a')?.session, first);
      sameSession((await k.raw('leader'))?.session, first);

      await k.expireSession(a);
      const view = await b.readCluster();
      assert.equal(view.leader, undefined, 'the leader key expired with the session');
      if (sessions) assert.equal(view.members.find((m) => m.name === 'a'), undefined, 'the member key expired with the session');
      assert.deepEqual(view.config, { ttl: k.ttl }, 'keys without a session stay');

      // The client notices on its next call, starts a new session and re-creates its keys.
      assert.equal(await a.refreshLeader(), true);
      const second = k.session(a);
      assert.ok(!noSession(second) && (ttlKeys || second !== first), `a new session (${first} -> ${second})`);
      await a.touchMember({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'primary' });
      const after = await b.readCluster();
      sameSession(after.leader?.session, second);
      if (sessions) sameSession(after.members.find((m) => m.name === 'a')?.session, second, 'the unchanged member value is re-put on the new session');
    });

    it('close() ends the session at once (keys vanish); close({keepLease}) leaves them to expire', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const b = k.client('b');
      const c = k.client('c');
      assert.equal(await a.acquireLeader(), true);
      await a.touchMember({ api_url: 'http://a/patroni' });
      await b.touchMember({ api_url: 'http://b/patroni' });
      await a.close();
      await a.close();
      let view = await c.readCluster();
      assert.equal(view.leader, undefined);
      assert.deepEqual(view.members.map((m) => m.name), ['b']);
      await b.close({ keepLease: true });
      view = await c.readCluster();
      assert.deepEqual(view.members.map((m) => m.name), ['b'], 'keepLease: the key outlives the client');
      await rejectsWith(a.readCluster(), 'DCS_UNAVAILABLE', false);
      await rejectsWith(a.acquireLeader(), 'DCS_UNAVAILABLE', false);
    });

    it('touchMember skips an unchanged value and writes a changed one', T, async () => {
      const k = fresh();
      const a = k.client('a');
      await a.touchMember({ api_url: 'http://a/patroni', state: 'running', xlog_location: 100 });
      const v1 = (await a.readCluster()).members[0]?.version;
      await a.touchMember({ api_url: 'http://a/patroni', state: 'running', xlog_location: 100 });
      // With 'ttl' the rewrite is the refresh of the key's TTL.
      if (ttlKeys) assert.notEqual((await a.readCluster()).members[0]?.version, v1);
      else assert.equal((await a.readCluster()).members[0]?.version, v1);
      await a.touchMember({ api_url: 'http://a/patroni', state: 'running', xlog_location: 200 });
      const m = (await a.readCluster()).members[0];
      assert.notEqual(m?.version, v1);
      assert.equal(m?.data.xlog_location, 200);
      await a.deleteMember();
      assert.deepEqual((await a.readCluster()).members, []);
      await a.touchMember({ api_url: 'http://a/patroni', state: 'running', xlog_location: 200 });
      assert.equal((await a.readCluster()).members.length, 1, 'after deleteMember the same value is written again');
    });

    it('a lost compare-and-set is false; an unreachable store is DcsError DCS_UNAVAILABLE, retryable', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const b = k.client('b');
      assert.equal(await a.writeConfig({ ttl: 30 }), true);
      const stale = (await a.readCluster()).configVersion;
      assert.equal(await b.writeConfig({ ttl: 20 }, stale), true);
      assert.equal(await a.writeConfig({ ttl: 10 }, stale), false);
      assert.equal(await a.acquireLeader(), true);
      assert.equal(await b.acquireLeader(), false);
      const rev = (await a.readCluster()).revision;
      // The calls run at once so that the cut stays well inside the session's TTL: a cut longer
      // than that may legitimately end the session (ZooKeeper expires it on the server) and with
      // it the lock, and the refresh below would then rightly be false.
      await k.unreachable(a, async () => {
        const watch = a.watchLeader(rev, 300); // never rejects
        await Promise.all([
          rejectsWith(a.readCluster(), 'DCS_UNAVAILABLE', true),
          rejectsWith(a.writeConfig({ ttl: 10 }, stale), 'DCS_UNAVAILABLE', true),
          rejectsWith(a.refreshLeader(), 'DCS_UNAVAILABLE', true),
          k.elapse(400),
        ]);
        await watch;
      });
      assert.equal(await a.refreshLeader(), true, 'works again once the store answers');
      assert.equal((await a.readCluster()).leader?.name, 'a');
    });

    it('an unparsable /config (another tool, truncated): read as no config; no compare-and-set replaces it, an unconditional write does', T, async () => {
      const k = fresh();
      const a = k.client('a');
      assert.equal(await a.writeConfig({ ttl: 30 }), true);
      const valid = (await a.readCluster()).configVersion;
      await k.writeRaw('config', '{"ttl": 30, "loop_wa');
      const view = await a.readCluster();
      assert.equal(view.config, undefined, 'an unparsable config reads as none');
      assert.ok(view.configVersion !== undefined, 'the key exists: configVersion is set');
      assert.equal(await a.writeConfig({ ttl: 20 }, view.configVersion), false, 'a compare-and-set with the version read loses');
      assert.equal(await a.writeConfig({ ttl: 20 }, valid), false, 'so does one with the version of the config before it');
      assert.equal((await k.raw('config'))?.value, '{"ttl": 30, "loop_wa', 'the unparsable text is still there');
      assert.equal(await a.writeConfig({ ttl: 20 }), true, 'an unconditional write (PUT /config) replaces it');
      const fixed = await a.readCluster();
      assert.deepEqual(fixed.config, { ttl: 20 });
      assert.equal(await a.writeConfig({ ttl: 10 }, fixed.configVersion), true, 'and compare-and-set works again on the valid config');
    });

    it('config, failover and sync: compare-and-set by version; a malformed version is DCS_PROTOCOL', T, async () => {
      const k = fresh();
      const a = k.client('a');
      assert.equal(await a.writeConfig({ ttl: 30, postgresql: { parameters: null } }), true);
      const v1 = (await a.readCluster()).configVersion;
      assert.ok(v1 !== undefined);
      assert.equal(await a.writeConfig({ ttl: 20 }, v1), true);
      assert.equal(await a.writeConfig({ ttl: 10 }, v1), false);
      assert.deepEqual((await a.readCluster()).config, { ttl: 20 });

      assert.equal(await a.writeFailover({ leader: 'a', member: 'b' }), true);
      const fo = (await a.readCluster()).failover;
      assert.equal(fo?.leader, 'a');
      assert.equal(fo?.member, 'b');
      assert.equal(await a.writeFailover({ member: 'c' }, v1), false);
      assert.equal(await a.writeFailover({}, fo?.version), true);
      const cleared = (await a.readCluster()).failover;
      assert.equal(cleared?.leader, undefined);
      assert.equal(cleared?.member, undefined);
      assert.equal((await k.raw('failover'))?.value, '{}', 'cleared by writing {}, not deleted');

      assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: 'b' }), true);
      const sync = (await a.readCluster()).sync;
      assert.deepEqual({ ...sync, version: undefined }, { version: undefined, leader: 'a', quorum: 0, sync_standby: 'b' });
      assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: null }, v1), false);
      assert.equal(await a.deleteSync(v1), false);
      assert.equal(await a.writeSync({ leader: 'a', quorum: 1, sync_standby: 'b,c' }, sync?.version), true);
      const sync2 = (await a.readCluster()).sync;
      assert.equal(sync2?.quorum, 1);
      assert.equal(await a.deleteSync(sync2?.version), true);
      assert.equal((await a.readCluster()).sync, undefined);
      assert.equal(await a.deleteSync(), true, 'without a version: deleting nothing is fine');

      await rejectsWith(a.writeConfig({ ttl: 5 }, 'not-a-version'), 'DCS_PROTOCOL');
    });

    it('watchLeader wakes on a leader change (also one before the call), on its timeout and on abort', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const b = k.client('b');
      const rev = (await b.readCluster()).revision;
      const woken = b.watchLeader(rev, 600_000);
      await k.elapse(50);
      assert.equal(await a.acquireLeader(), true);
      await woken; // a watch that misses the change hangs here until the test's timeout

      // The change happened after `rev` but before the call: the watch returns at once.
      await b.watchLeader(rev, 600_000);

      const rev2 = (await b.readCluster()).revision;
      const timed = b.watchLeader(rev2, 300);
      await k.elapse(400);
      await timed;

      const ctrl = new AbortController();
      const aborted = b.watchLeader(rev2, 600_000, { signal: ctrl.signal });
      ctrl.abort();
      await aborted;

      // Release wakes it too.
      const released = b.watchLeader(rev2, 600_000);
      assert.equal(await a.releaseLeader(), true);
      await released;
    });

    it('readCluster decodes every key written', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const b = k.client('b');
      assert.equal(await a.attemptInitialize(), true);
      await a.writeInitialize('7268616322854375442');
      assert.equal(await a.writeConfig({ ttl: 30, loop_wait: 10 }), true);
      assert.equal(await a.acquireLeader(), true);
      await a.touchMember({ conn_url: 'postgres://10.0.0.1:5432/postgres', api_url: 'http://10.0.0.1:8008/patroni', state: 'running', role: 'primary', timeline: 2, tags: { nofailover: false } });
      await b.touchMember({ conn_url: 'postgres://10.0.0.2:5432/postgres', api_url: 'http://10.0.0.2:8008/patroni', state: 'streaming', role: 'replica', xlog_location: 67395656 });
      assert.equal(await a.writeFailover({ leader: 'a', member: 'b', scheduled_at: '2023-09-13T18:00:00-03:00' }), true);
      assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: 'b' }), true);
      await a.writeHistory([[1, 67395656, 'no recovery target specified', '2024-01-01T00:00:00+00:00', 'a']]);
      await a.writeStatus({ optime: 67395656, slots: { b: 67395656 }, retain_slots: ['a', 'b'] });
      await a.writeFailsafe({ a: 'http://10.0.0.1:8008/patroni', b: 'http://10.0.0.2:8008/patroni' });

      const v = await b.readCluster();
      assert.equal(v.initialize, '7268616322854375442');
      assert.deepEqual(v.config, { ttl: 30, loop_wait: 10 });
      assert.equal(v.leader?.name, 'a');
      assert.deepEqual(v.members.map((m) => m.name).sort(), ['a', 'b']);
      assert.deepEqual(v.members.find((m) => m.name === 'a')?.data.tags, { nofailover: false });
      assert.equal(v.members.find((m) => m.name === 'b')?.data.xlog_location, 67395656);
      assert.equal(v.failover?.scheduled_at, '2023-09-13T18:00:00-03:00');
      assert.equal(v.sync?.sync_standby, 'b');
      assert.deepEqual(v.history, [[1, 67395656, 'no recovery target specified', '2024-01-01T00:00:00+00:00', 'a']]);
      assert.deepEqual(v.status, { optime: 67395656, slots: { b: 67395656 }, retain_slots: ['a', 'b'] });
      assert.deepEqual(v.failsafe, { a: 'http://10.0.0.1:8008/patroni', b: 'http://10.0.0.2:8008/patroni' });
      assert.match(v.revision, /^\d+$/);

      await b.deleteCluster();
      const empty = await a.readCluster();
      assert.deepEqual({ ...empty, revision: '' }, {
        initialize: undefined, config: undefined, configVersion: undefined, leader: undefined, members: [], failover: undefined,
        sync: undefined, history: undefined, status: undefined, failsafe: undefined, revision: '',
      });
    });

    it("values are stored as Patroni's compact JSON (no spaces, non-ASCII escaped)", T, async () => {
      const k = fresh();
      const a = k.client('a');
      await a.touchMember({ conn_url: 'postgres://10.0.0.2:5432/postgres', api_url: 'http://10.0.0.2:8008/patroni', state: 'running', role: 'replica', tags: { clonefrom: true }, xlog_location: 67395656, timeline: 1 });
      assert.equal(await a.acquireLeader(), true);
      assert.equal(await a.writeConfig({ ttl: 30, postgresql: { use_pg_rewind: true, parameters: null }, comment: 'café' }), true);
      assert.equal(await a.writeFailover({ member: 'pg2', leader: 'pg0' }), true);
      assert.equal(await a.writeSync({ leader: 'node0', quorum: 0, sync_standby: null }), true);
      await a.writeHistory([[1, 67395656, 'no recovery target specified']]);
      await a.writeStatus({ optime: 67395656, slots: { postgresql1: 67395656 }, retain_slots: ['postgresql0'] });
      await a.writeFailsafe({ a: 'http://a:8008/patroni' });
      await a.writeInitialize('7268616322854375442');
      const raw = async (rel: string): Promise<string | undefined> => (await k.raw(rel))?.value;
      assert.equal(await raw('members/a'), '{"conn_url":"postgres://10.0.0.2:5432/postgres","api_url":"http://10.0.0.2:8008/patroni","state":"running","role":"replica","tags":{"clonefrom":true},"xlog_location":67395656,"timeline":1}');
      assert.equal(await raw('leader'), 'a');
      assert.equal(await raw('config'), '{"ttl":30,"postgresql":{"use_pg_rewind":true,"parameters":null},"comment":"caf\\u00e9"}');
      assert.equal(await raw('failover'), '{"leader":"pg0","member":"pg2"}');
      assert.equal(await raw('sync'), '{"leader":"node0","quorum":0,"sync_standby":null}');
      assert.equal(await raw('history'), '[[1,67395656,"no recovery target specified"]]');
      assert.equal(await raw('status'), '{"optime":67395656,"slots":{"postgresql1":67395656},"retain_slots":["postgresql0"]}');
      assert.equal(await raw('failsafe'), '{"a":"http://a:8008/patroni"}');
      assert.equal(await raw('initialize'), '7268616322854375442');
      assert.ok(noSession((await k.raw('config'))?.session), 'config is not bound to a session');
      if (k.memberSessions !== false) sameSession((await k.raw('members/a'))?.session, k.session(a));
    });

    it('setTtl takes effect with the next session; the leader key moves to it', T, async () => {
      const k = fresh();
      const a = k.client('a');
      assert.equal(await a.acquireLeader(), true);
      const first = k.session(a);
      a.setTtl(k.ttl + 1);
      assert.equal(await a.refreshLeader(), true);
      const second = k.session(a);
      assert.ok(!noSession(second) && second !== first);
      sameSession((await k.raw('leader'))?.session, second);
    });

    it('a caller abort rejects with a non-retryable DcsError', T, async () => {
      const k = fresh();
      const a = k.client('a');
      const ctrl = new AbortController();
      ctrl.abort();
      await rejectsWith(a.readCluster({ signal: ctrl.signal }), 'DCS_UNAVAILABLE', false);
      await rejectsWith(a.acquireLeader({ signal: ctrl.signal }), 'DCS_UNAVAILABLE', false);
    });
  });
}
