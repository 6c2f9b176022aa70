// Issue 13's etcd v3 primitives against a real etcd (/usr/bin/etcd) on loopback: the leader's
// keep-alive (keepLeader), LeaseTimeToLive, and the take-over transaction of /leader and /sync.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/etcd3-takeover.test.ts

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdServer } from '../support/etcd.ts';
import { Etcd3Dcs } from '../../src/dcs/etcd3.ts';

let etcd: EtcdServer;
const open: Etcd3Dcs[] = [];

before(async () => {
  etcd = await startEtcd();
});

after(async () => {
  await Promise.all(open.map((d) => d.close()));
  await etcd?.stop();
});

function adapter(prefix: string, name: string): Etcd3Dcs {
  const d = new Etcd3Dcs({ hosts: [etcd.endpoint], protocol: 'http', prefix, name, ttl: 10, retryTimeout: 3 });
  open.push(d);
  return d;
}

test('keepLeader confirms the key without rewriting it; LeaseTimeToLive reports the lease', async () => {
  const prefix = `/vigil-test/keep-${process.pid}/`;
  const a = adapter(prefix, 'a');
  const b = adapter(prefix, 'b');
  assert.equal(await a.keepLeader(), false);
  assert.equal(await a.acquireLeader(), true);
  const before = (await b.readCluster()).leader;
  assert.equal(await a.keepLeader(), true);
  assert.equal(await b.keepLeader(), false);
  const view = await b.readCluster();
  assert.equal(view.leader?.version, before?.version, 'the keep-alive wrote nothing');
  const ttl = await b.leaseTimeToLive(view.leader?.session ?? '');
  assert.ok(ttl !== undefined && ttl.granted === 10 && ttl.remaining >= 8 && ttl.remaining <= 10, JSON.stringify(ttl));
  assert.equal(await b.leaseTimeToLive('123456789'), undefined, 'an unknown lease');
  assert.equal(a.offersTakeOver(), true);
});

test('the take-over transaction writes /leader and /sync at once, only if neither changed', async () => {
  const prefix = `/vigil-test/take-${process.pid}/`;
  const a = adapter(prefix, 'a');
  const b = adapter(prefix, 'b');
  const c = adapter(prefix, 'c');
  assert.equal(await a.acquireLeader(), true);
  assert.equal(await a.writeSync({ leader: 'a', sync_standby: 'b,c', quorum: 0 }), true);
  const v = await b.readCluster();
  const expect = { leaderVersion: v.leader?.version ?? '', leaderSession: v.leader?.session ?? '', syncVersion: v.sync?.version ?? '' };
  // A stale /sync version, or another lease: nothing is written.
  assert.equal(await b.takeOverLeader({ ...expect, syncVersion: '1' }, { leader: 'b', sync_standby: 'c', quorum: 0 }), false);
  assert.equal(await b.takeOverLeader({ ...expect, leaderSession: '1' }, { leader: 'b', sync_standby: 'c', quorum: 0 }), false);
  assert.equal((await c.readCluster()).leader?.name, 'a');
  assert.equal(await b.takeOverLeader(expect, { leader: 'b', sync_standby: 'c', quorum: 0 }), true);
  const after = await c.readCluster();
  assert.equal(after.leader?.name, 'b');
  assert.equal(after.leader?.version, after.sync?.version, 'one revision');
  assert.equal(after.sync?.leader, 'b');
  // The old leader's keep-alive and refresh find the key gone; the competing take-over loses.
  assert.equal(await a.keepLeader(), false);
  assert.equal(await a.refreshLeader(), false);
  assert.equal(await c.takeOverLeader(expect, { leader: 'c', sync_standby: 'b', quorum: 0 }), false);
  assert.equal((await a.readCluster()).leader?.name, 'b');
});
