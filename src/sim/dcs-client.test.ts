// SimDcsClient: the Dcs contract over the simulated etcd, on a simulated clock (no real time).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DcsError } from '../dcs/dcs.ts';
import { SimDcs } from './dcs.ts';
import { SimDcsClient } from './dcs-client.ts';

function setup(ttl = 30): { dcs: SimDcs; client: (name: string) => SimDcsClient; advance: (ms: number) => void } {
  let now = 0;
  const dcs = new SimDcs(() => now);
  return {
    dcs,
    client: (name) => new SimDcsClient(dcs, name, { ttl }),
    advance: (ms) => {
      now += ms;
      dcs.tick();
    },
  };
}

/** Settled yet? (lets pending microtasks and I/O callbacks run first; no timer involved). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

async function rejectsUnavailable(p: Promise<unknown>, retryable = true): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof DcsError && err.code === 'DCS_UNAVAILABLE' && err.retryable === retryable);
}

test('bootstrap race: one attemptInitialize wins', async () => {
  const { client } = setup();
  const a = client('a');
  const b = client('b');
  assert.equal(await a.attemptInitialize(), true);
  assert.equal(await b.attemptInitialize(), false);
  await a.writeInitialize('7001');
  assert.equal((await b.readCluster()).initialize, '7001');
  await a.deleteInitialize();
  assert.equal((await b.readCluster()).initialize, undefined);
  assert.equal(await b.attemptInitialize(), true);
});

test('leader lock: acquire, refresh and release only by its owner', async () => {
  const { client } = setup();
  const a = client('a');
  const b = client('b');
  assert.equal(await a.acquireLeader(), true);
  assert.equal(await b.acquireLeader(), false);
  assert.equal(await b.refreshLeader(), false);
  assert.equal(await b.releaseLeader(), false);
  const view = await b.readCluster();
  assert.equal(view.leader?.name, 'a');
  assert.equal(view.leader?.session, String(a.leaseId));
  assert.equal(await a.refreshLeader(), true);
  assert.equal((await b.readCluster()).leader?.version, view.leader?.version, 'a refresh on the same lease does not rewrite the key');
  assert.equal(await a.releaseLeader(), true);
  assert.equal((await b.readCluster()).leader, undefined);
  assert.equal(await b.acquireLeader(), true);
});

test('the lease: expiry removes leader and member keys; the next call grants a new lease', async () => {
  const { client, advance } = setup(10);
  const a = client('a');
  const b = client('b');
  await a.touchMember({ conn_url: 'postgres://a/postgres', api_url: 'http://a/patroni' });
  assert.equal(await a.acquireLeader(), true);
  await b.touchMember({ api_url: 'http://b/patroni' });
  const first = a.leaseId;
  advance(9_900);
  assert.equal(await a.refreshLeader(), true, 'refresh keeps the lease alive');
  assert.equal(a.leaseId, first);
  advance(9_900);
  let view = await b.readCluster();
  assert.equal(view.leader?.name, 'a');
  assert.deepEqual(view.members.map((m) => m.name), ['a'], "b's lease expired (touchMember only keeps alive, it was not called)");
  advance(10_000);
  view = await b.readCluster();
  assert.equal(view.leader, undefined);
  assert.deepEqual(view.members, []);
  assert.equal(await a.refreshLeader(), true, 'the key is re-created on a new lease when absent');
  assert.notEqual(a.leaseId, first);
  assert.equal((await b.readCluster()).leader?.session, String(a.leaseId));
});

test('touchMember skips an unchanged value; keeps the lease alive when the last keepalive is a quarter of the TTL old', async () => {
  const { dcs, client, advance } = setup(10);
  const a = client('a');
  await a.touchMember({ api_url: 'http://a/patroni', state: 'running' });
  const rev = dcs.revision;
  await a.touchMember({ api_url: 'http://a/patroni', state: 'running' });
  assert.equal(dcs.revision, rev, 'no write');
  const lease = dcs.leaseOf(a.leaseId ?? -1);
  const expires = lease?.expiresAt;
  advance(2_000);
  await a.touchMember({ api_url: 'http://a/patroni', state: 'running' });
  assert.equal(dcs.leaseOf(a.leaseId ?? -1)?.expiresAt, expires, 'no keepalive within ttl/4 (2.5 s)');
  advance(1_000);
  await a.touchMember({ api_url: 'http://a/patroni', state: 'running' });
  assert.equal(dcs.leaseOf(a.leaseId ?? -1)?.expiresAt, 13_000);
  await a.touchMember({ api_url: 'http://a/patroni', state: 'stopped' });
  assert.equal((await a.readCluster()).members[0]?.data.state, 'stopped');
});

test('setTtl takes effect on the next grant; the leader key moves to the new lease', async () => {
  const { dcs, client } = setup(30);
  const a = client('a');
  assert.equal(await a.acquireLeader(), true);
  const first = a.leaseId;
  a.setTtl(5);
  assert.equal(dcs.leaseOf(first ?? -1)?.ttlMs, 30_000);
  assert.equal(await a.refreshLeader(), true);
  assert.notEqual(a.leaseId, first);
  assert.equal(dcs.leaseOf(a.leaseId ?? -1)?.ttlMs, 5_000);
  assert.equal((await a.readCluster()).leader?.session, String(a.leaseId));
});

test('a lease revoked behind our back is re-granted, not reported', async () => {
  const { dcs, client } = setup();
  const a = client('a');
  await a.touchMember({ api_url: 'http://a/patroni' });
  dcs.revoke(a.leaseId ?? -1);
  assert.equal(await a.acquireLeader(), true);
  await a.touchMember({ api_url: 'http://a/patroni' });
  const view = await a.readCluster();
  assert.equal(view.leader?.session, String(a.leaseId));
  assert.equal(view.members[0]?.session, String(a.leaseId));
});

test('unreachable (down or partitioned) is DcsError DCS_UNAVAILABLE, retryable; a failed CAS is false', async () => {
  const { dcs, client } = setup();
  const a = client('a');
  const b = client('b');
  assert.equal(await a.acquireLeader(), true);
  dcs.partitioned.add('b');
  await rejectsUnavailable(b.readCluster());
  await rejectsUnavailable(b.acquireLeader());
  assert.equal(await a.refreshLeader(), true);
  dcs.partitioned.delete('b');
  assert.equal(await b.acquireLeader(), false);
  dcs.setUp(false);
  await rejectsUnavailable(a.refreshLeader());
  await rejectsUnavailable(a.writeConfig({ ttl: 30 }));
  await rejectsUnavailable(a.touchMember({ api_url: 'x' }));
  dcs.setUp(true);
  assert.equal(await a.refreshLeader(), true);
});

test('config, failover and sync: compare-and-set by version', async () => {
  const { client } = setup();
  const a = client('a');
  assert.equal(await a.writeConfig({ ttl: 30 }), true);
  const v1 = (await a.readCluster()).configVersion;
  assert.equal(await a.writeConfig({ ttl: 20 }, v1), true);
  assert.equal(await a.writeConfig({ ttl: 10 }, v1), false, 'stale version');
  assert.deepEqual((await a.readCluster()).config, { ttl: 20 });

  assert.equal(await a.writeFailover({ leader: 'a', member: 'b' }), true);
  const fo = (await a.readCluster()).failover;
  assert.equal(fo?.member, 'b');
  assert.equal(await a.writeFailover({}, '1'), false);
  assert.equal(await a.writeFailover({}, fo?.version), true);

  assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: 'b' }), true);
  const sync = (await a.readCluster()).sync;
  assert.equal(sync?.sync_standby, 'b');
  assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: null }, '1'), false);
  assert.equal(await a.deleteSync('1'), false);
  assert.equal(await a.deleteSync(sync?.version), true);
  assert.equal((await a.readCluster()).sync, undefined);
});

test('history, status, failsafe are read back; deleteCluster removes every key', async () => {
  const { client } = setup();
  const a = client('a');
  await a.writeHistory([[1, 100, 'no recovery target specified']]);
  await a.writeStatus({ optime: 200 });
  await a.writeFailsafe({ a: 'http://a/patroni' });
  await a.touchMember({ api_url: 'http://a/patroni' });
  assert.equal(await a.acquireLeader(), true);
  let view = await a.readCluster();
  assert.deepEqual(view.history, [[1, 100, 'no recovery target specified']]);
  assert.deepEqual(view.status, { optime: 200 });
  assert.deepEqual(view.failsafe, { a: 'http://a/patroni' });
  await a.deleteCluster();
  view = await a.readCluster();
  assert.equal(view.leader, undefined);
  assert.deepEqual(view.members, []);
  assert.equal(view.history, undefined);
  assert.equal(view.failsafe, undefined);
  // The cached member value is forgotten: the next touch writes again.
  await a.touchMember({ api_url: 'http://a/patroni' });
  assert.equal((await a.readCluster()).members.length, 1);
});

test('watchLeader wakes on a leader change and on the simulated timeout, not before', async () => {
  const { dcs, client, advance } = setup();
  const a = client('a');
  const b = client('b');
  const rev = (await b.readCluster()).revision;
  const w1 = b.watchLeader(rev, 10_000);
  assert.equal(await settled(w1), false);
  await a.touchMember({ api_url: 'x' });
  assert.equal(await settled(w1), false, 'other keys do not wake it');
  assert.equal(await a.acquireLeader(), true);
  assert.equal(await settled(w1), true);

  // A change that already happened after the revision we read wakes at once.
  assert.equal(await a.releaseLeader(), true);
  assert.equal(await settled(b.watchLeader(rev, 10_000)), true);

  const rev2 = (await b.readCluster()).revision;
  const w2 = b.watchLeader(rev2, 5_000);
  advance(4_900);
  assert.equal(await settled(w2), false);
  advance(100);
  assert.equal(await settled(w2), true);

  // Partitioned: the change is not seen; the watch ends at its timeout.
  const w3 = b.watchLeader((await b.readCluster()).revision, 5_000);
  dcs.partitioned.add('b');
  assert.equal(await a.acquireLeader(), true);
  assert.equal(await settled(w3), false);
  advance(5_000);
  assert.equal(await settled(w3), true);
  assert.equal(dcs.pendingWatches, 0);
});

test('watchLeader ends on abort and on close', async () => {
  const { dcs, client } = setup();
  const b = client('b');
  const ctrl = new AbortController();
  const w1 = b.watchLeader('1', 10_000, { signal: ctrl.signal });
  const w2 = b.watchLeader('1', 10_000);
  ctrl.abort();
  assert.equal(await settled(w1), true);
  assert.equal(await settled(w2), false);
  await b.close();
  assert.equal(await settled(w2), true);
  assert.equal(dcs.pendingWatches, 0);
});

test('close revokes the lease (keys vanish at once) unless keepLease; a closed client rejects', async () => {
  const { client, advance } = setup(10);
  const a = client('a');
  const b = client('b');
  const c = client('c');
  assert.equal(await a.acquireLeader(), true);
  await a.touchMember({ api_url: 'a' });
  await b.touchMember({ api_url: 'b' });
  await a.close();
  await a.close();
  let view = await c.readCluster();
  assert.equal(view.leader, undefined);
  assert.deepEqual(view.members.map((m) => m.name), ['b']);
  await b.close({ keepLease: true });
  assert.deepEqual((await c.readCluster()).members.map((m) => m.name), ['b']);
  advance(10_000);
  view = await c.readCluster();
  assert.deepEqual(view.members, []);
  await rejectsUnavailable(a.readCluster(), false);
  const ctrl = new AbortController();
  ctrl.abort();
  await rejectsUnavailable(c.readCluster({ signal: ctrl.signal }), false);
});

test("the client's prefix: its own when given, else the store's", async () => {
  let now = 0;
  const dcs = new SimDcs(() => now, '/service/store/');
  const a = new SimDcsClient(dcs, 'a', { prefix: '/service/batman/' });
  const b = new SimDcsClient(dcs, 'b');
  assert.equal(a.prefix, '/service/batman/');
  assert.equal(b.prefix, '/service/store/');
  assert.equal(await a.acquireLeader(), true);
  now += 1;
  assert.equal((await a.readCluster()).leader?.name, 'a');
  assert.equal((await b.readCluster()).leader?.name, 'a');
});

test('keepLeader: extends the lease and confirms the key without writing; never takes or re-creates it', async () => {
  const { dcs, client, advance } = setup(10);
  const a = client('a');
  const b = client('b');
  assert.equal(await a.keepLeader(), false, 'no leader key: not ours, and nothing created');
  assert.equal(dcs.raw('leader'), undefined);
  assert.equal(await a.acquireLeader(), true);
  const rev = dcs.leaderRevision;
  advance(9_000);
  assert.equal(await a.keepLeader(), true);
  assert.equal(dcs.leaderRevision, rev, 'the key was not rewritten');
  advance(9_000); // 18 s after the grant, 9 s after the keep-alive: the lease (ttl 10) lives on
  assert.equal(dcs.raw('leader')?.value, 'a');
  assert.equal(await b.keepLeader(), false);
  assert.equal(await a.releaseLeader(), true);
  assert.equal(await a.keepLeader(), false);
  assert.equal(dcs.raw('leader'), undefined, 'a released key stays released');
});

test('take-over transaction: /leader and /sync at once, only if neither changed (simulated etcd Txn)', async () => {
  const { dcs, client } = setup(10);
  const a = client('a');
  const b = client('b');
  assert.equal(b.offersTakeOver(), true);
  assert.equal(await a.acquireLeader(), true);
  assert.equal(await a.writeSync({ leader: 'a', sync_standby: 'b', quorum: 0 }), true);
  const v = await b.readCluster();
  const expect = { leaderVersion: v.leader?.version ?? '', leaderSession: v.leader?.session ?? '', syncVersion: v.sync?.version ?? '' };
  assert.deepEqual(await b.leaseTimeToLive(expect.leaderSession), { remaining: 10, granted: 10 });
  assert.equal(await b.takeOverLeader({ ...expect, syncVersion: '1' }, { leader: 'b', sync_standby: null, quorum: 0 }), false);
  assert.equal(dcs.raw('leader')?.value, 'a');
  assert.equal(await b.takeOverLeader(expect, { leader: 'b', sync_standby: null, quorum: 0 }), true);
  const after = await a.readCluster();
  assert.equal(after.leader?.name, 'b');
  assert.equal(after.sync?.leader, 'b');
  assert.equal(after.leader?.version, after.sync?.version, 'one revision');
  assert.equal(await a.keepLeader(), false);
  assert.equal(await a.refreshLeader(), false);
});
