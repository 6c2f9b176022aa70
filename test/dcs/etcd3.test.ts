// Contract tests of the etcd v3 adapter against a real etcd 3.4 (/usr/bin/etcd) on loopback.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/etcd3.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd, freePort, type EtcdServer } from '../support/etcd.ts';
import { Etcd3Dcs, type Etcd3Options } from '../../src/dcs/etcd3.ts';
import { DcsError, type Dcs } from '../../src/dcs/dcs.ts';
import type { ClusterView } from '../../src/core/model.ts';

let etcd: EtcdServer;
const open: Dcs[] = [];
let seq = 0;

before(async () => {
  etcd = await startEtcd();
});

after(async () => {
  await Promise.all(open.map((d) => d.close()));
  await etcd?.stop();
});

function freshPrefix(): string {
  seq += 1;
  return `/vigil-test/c${seq}-${process.pid}/`;
}

function adapter(prefix: string, name: string, extra: Partial<Etcd3Options> = {}): Etcd3Dcs {
  const d = new Etcd3Dcs({ hosts: [etcd.endpoint], protocol: 'http', prefix, name, ttl: 10, retryTimeout: 3, ...extra });
  open.push(d);
  return d;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Raw gateway call, independent of the adapter under test. */
async function gateway<T>(path: string, body: object, endpoint = etcd.endpoint): Promise<T> {
  const res = await fetch(`http://${endpoint}/v3${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return (await res.json()) as T;
}

async function rawGet(key: string): Promise<{ value: string; lease: string; mod_revision: string } | undefined> {
  const r = await gateway<{ kvs?: { value?: string; lease?: string; mod_revision: string }[] }>('/kv/range', { key: b64(key) });
  const kv = r.kvs?.[0];
  if (!kv) return undefined;
  return { value: Buffer.from(kv.value ?? '', 'base64').toString(), lease: kv.lease ?? '0', mod_revision: kv.mod_revision };
}

/** Poll until `check` holds or `ms` pass; returns whether it held. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(200);
  }
  return check();
}

async function rejectsWith(p: Promise<unknown>, code: DcsError['code']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DcsError, `expected DcsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('etcd3 adapter against a real etcd', () => {
  it('bootstrap race: exactly one attemptInitialize wins', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    const b = adapter(prefix, 'b');
    const results = await Promise.all([a.attemptInitialize(), b.attemptInitialize()]);
    assert.equal(results.filter(Boolean).length, 1, `results ${results}`);
    assert.equal((await a.readCluster()).initialize, '');
    assert.equal(await a.attemptInitialize(), false, 'a second attempt loses');
    await a.writeInitialize('7268616322854375442');
    assert.equal((await b.readCluster()).initialize, '7268616322854375442');
    await a.deleteInitialize();
    assert.equal((await b.readCluster()).initialize, undefined);
    assert.equal(await b.attemptInitialize(), true, 'after a failed bootstrap the race is open again');
  });

  it('acquire race: exactly one wins, the loser can neither refresh nor release', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    const b = adapter(prefix, 'b');
    const results = await Promise.all([a.acquireLeader(), b.acquireLeader()]);
    assert.equal(results.filter(Boolean).length, 1, `results ${results}`);
    const [winner, loser, winnerName] = results[0] ? [a, b, 'a'] : [b, a, 'b'];
    const view = await loser.readCluster();
    assert.equal(view.leader?.name, winnerName);
    assert.notEqual(view.leader?.session, '');
    assert.equal(await loser.acquireLeader(), false);
    assert.equal(await loser.refreshLeader(), false);
    assert.equal(await loser.releaseLeader(), false);
    assert.equal((await rawGet(prefix + 'leader'))?.value, winnerName, 'release by a non-owner leaves the key');
    assert.equal(await winner.refreshLeader(), true);
    assert.equal(await winner.releaseLeader(), true);
    assert.equal(await rawGet(prefix + 'leader'), undefined);
    assert.equal(await winner.releaseLeader(), false, 'releasing an absent key is not ours');
  });

  it('refresh keeps the key beyond ttl without rewriting it', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a', { ttl: 2 });
    assert.equal(await a.acquireLeader(), true);
    const first = await rawGet(prefix + 'leader');
    assert.ok(first);
    for (let i = 0; i < 6; i++) {
      await sleep(700);
      assert.equal(await a.refreshLeader(), true);
    }
    const later = await rawGet(prefix + 'leader');
    assert.equal(later?.value, 'a');
    assert.equal(later?.mod_revision, first.mod_revision, 'a refresh with an unchanged lease must not rewrite the key');
  });

  it('the leader key disappears about ttl after the holder stops refreshing', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a', { ttl: 2 });
    const b = adapter(prefix, 'b', { ttl: 2 });
    assert.equal(await a.acquireLeader(), true);
    assert.equal((await b.readCluster()).leader?.name, 'a');
    assert.ok(await eventually(async () => (await b.readCluster()).leader === undefined, 10_000), 'leader key should expire');
    assert.equal(await b.acquireLeader(), true, 'the lock is free again');
    assert.equal(await a.refreshLeader(), false, 'the old holder finds another leader');
  });

  it('takeLeader overwrites unconditionally with our lease', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    const b = adapter(prefix, 'b');
    assert.equal(await a.acquireLeader(), true);
    await b.takeLeader();
    const view = await a.readCluster();
    assert.equal(view.leader?.name, 'b');
    assert.equal(await a.refreshLeader(), false);
    assert.equal(await b.refreshLeader(), true);
  });

  it('CAS on config, failover and sync: a stale version loses', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    assert.equal(await a.writeConfig({ ttl: 30 }), true);
    const v1 = (await a.readCluster()).configVersion;
    assert.ok(v1);
    assert.equal(await a.writeConfig({ ttl: 40 }, v1), true);
    assert.equal(await a.writeConfig({ ttl: 50 }, v1), false, 'stale version');
    let view = await a.readCluster();
    assert.deepEqual(view.config, { ttl: 40 });
    assert.notEqual(view.configVersion, v1);

    assert.equal(await a.writeFailover({ leader: 'a', member: 'b' }), true);
    const f1 = (await a.readCluster()).failover;
    assert.deepEqual({ ...f1, version: undefined }, { version: undefined, leader: 'a', member: 'b' });
    assert.equal(await a.writeFailover({}, f1?.version), true);
    assert.equal(await a.writeFailover({ member: 'c' }, f1?.version), false, 'stale version');
    view = await a.readCluster();
    assert.equal(view.failover?.leader, undefined);
    assert.equal(view.failover?.member, undefined);
    assert.equal(await rawGet(prefix + 'failover').then((kv) => kv?.value), '{}');

    assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: 'b' }), true);
    const s1 = (await a.readCluster()).sync;
    assert.ok(s1);
    assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: null }, s1.version), true);
    assert.equal(await a.writeSync({ leader: 'a', quorum: 0, sync_standby: 'c' }, s1.version), false);
    assert.equal(await a.deleteSync(s1.version), false, 'stale delete');
    const s2 = (await a.readCluster()).sync;
    assert.deepEqual(s2 && { ...s2, version: '' }, { version: '', leader: 'a', quorum: 0, sync_standby: null });
    assert.equal(await a.deleteSync(s2?.version), true);
    assert.equal((await a.readCluster()).sync, undefined);

    assert.equal(await a.writeConfig({ ttl: 1 }, '0'), false, 'version 0 means absent; the key exists');
  });

  it('a malformed version is a protocol error, not a CAS loss', async () => {
    const a = adapter(freshPrefix(), 'a');
    await rejectsWith(a.writeConfig({ ttl: 1 }, 'not-a-number'), 'DCS_PROTOCOL');
  });

  it('member key: bound to the lease, skipped when unchanged, gone after close()', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a', { ttl: 2 });
    const reader = adapter(prefix, 'r');
    const data = { conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica', version: '4.1.4', xlog_location: 5 };
    await a.touchMember(data);
    const first = await rawGet(prefix + 'members/a');
    assert.ok(first);
    assert.notEqual(first.lease, '0');
    assert.equal(first.value, JSON.stringify(data));
    await a.touchMember({ ...data });
    assert.equal((await rawGet(prefix + 'members/a'))?.mod_revision, first.mod_revision, 'unchanged value is not rewritten');
    await a.touchMember({ ...data, xlog_location: 6 });
    assert.notEqual((await rawGet(prefix + 'members/a'))?.mod_revision, first.mod_revision);
    const view = await reader.readCluster();
    assert.equal(view.members.length, 1);
    assert.equal(view.members[0]?.session, first.lease);
    await a.close();
    await rejectsWith(a.readCluster(), 'DCS_UNAVAILABLE');
    assert.ok(await eventually(async () => (await reader.readCluster()).members.length === 0, 6000), 'member key should vanish');
  });

  it('member keys expire when the lease is no longer kept alive', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a', { ttl: 2 });
    await a.touchMember({ state: 'running' });
    assert.ok(await rawGet(prefix + 'members/a'));
    assert.ok(await eventually(async () => (await rawGet(prefix + 'members/a')) === undefined, 8000));
    await a.touchMember({ state: 'running' });
    assert.ok(await rawGet(prefix + 'members/a'), 'the next touch re-creates it with a new lease');
    await a.deleteMember();
    assert.equal(await rawGet(prefix + 'members/a'), undefined);
  });

  it('readCluster decodes everything written', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    assert.equal(await a.attemptInitialize(), true);
    await a.writeInitialize('7268616322854375442');
    await a.writeConfig({ ttl: 30, loop_wait: 10, postgresql: { use_pg_rewind: true, parameters: null } });
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ conn_url: 'postgres://h:5432/postgres', role: 'primary', state: 'running', tags: { nofailover: false, x: 'é' } });
    await a.writeFailover({ member: 'b', scheduled_at: '2019-09-24T12:00:00+00:00' });
    await a.writeSync({ leader: 'a', quorum: 1, sync_standby: 'b,c' });
    await a.writeHistory([[1, 25623960, 'no recovery target specified', '2019-09-23T16:57:57+02:00', 'a']]);
    await a.writeStatus({ optime: 67395656, slots: { b: 67395656 }, retain_slots: ['a', 'b'] });
    await a.writeFailsafe({ a: 'http://127.0.0.1:8008/patroni' });
    const v: ClusterView = await adapter(prefix, 'b', { ctlMode: true }).readCluster();
    assert.equal(v.initialize, '7268616322854375442');
    assert.deepEqual(v.config, { ttl: 30, loop_wait: 10, postgresql: { use_pg_rewind: true, parameters: null } });
    assert.match(v.configVersion ?? '', /^\d+$/);
    assert.equal(v.leader?.name, 'a');
    assert.match(v.leader?.session ?? '', /^\d+$/);
    assert.equal(v.members.length, 1);
    assert.deepEqual(v.members[0]?.data, { conn_url: 'postgres://h:5432/postgres', role: 'primary', state: 'running', tags: { nofailover: false, x: 'é' } });
    assert.equal(v.members[0]?.session, v.leader?.session, 'member and leader share the lease');
    assert.equal(v.failover?.member, 'b');
    assert.equal(v.failover?.scheduled_at, '2019-09-24T12:00:00+00:00');
    assert.deepEqual(v.sync && { ...v.sync, version: '' }, { version: '', leader: 'a', quorum: 1, sync_standby: 'b,c' });
    assert.deepEqual(v.history, [[1, 25623960, 'no recovery target specified', '2019-09-23T16:57:57+02:00', 'a']]);
    assert.deepEqual(v.status, { optime: 67395656, slots: { b: 67395656 }, retain_slots: ['a', 'b'] });
    assert.deepEqual(v.failsafe, { a: 'http://127.0.0.1:8008/patroni' });
    assert.ok(BigInt(v.revision) > 0n);
    // Patroni-compatible bytes on the wire.
    assert.equal((await rawGet(prefix + 'sync'))?.value, '{"leader":"a","quorum":1,"sync_standby":"b,c"}');
    assert.equal((await rawGet(prefix + 'members/a'))?.value,
      '{"conn_url":"postgres://h:5432/postgres","role":"primary","state":"running","tags":{"nofailover":false,"x":"\\u00e9"}}');
  });

  it('deleteCluster removes the prefix and nothing else', async () => {
    const prefix = freshPrefix();
    const sibling = prefix.slice(0, -1) + 'x/';
    const a = adapter(prefix, 'a');
    const s = adapter(sibling, 'a');
    await a.writeConfig({ ttl: 30 });
    await a.touchMember({ state: 'running' });
    await s.writeConfig({ ttl: 30 });
    await a.deleteCluster();
    const v = await a.readCluster();
    assert.equal(v.config, undefined);
    assert.deepEqual(v.members, []);
    assert.deepEqual((await s.readCluster()).config, { ttl: 30 });
  });

  it('watchLeader resolves on a leader change, on timeout and on abort; never rejects', async () => {
    const prefix = freshPrefix();
    // A long ttl: lease expiry must not be what wakes the watch.
    const a = adapter(prefix, 'a', { ttl: 120 });
    const b = adapter(prefix, 'b', { ttl: 120 });
    assert.equal(await a.acquireLeader(), true);
    const rev = (await b.readCluster()).revision;
    let fired = false;
    const watch = b.watchLeader(rev, 30_000).then(() => {
      fired = true;
    });
    await sleep(300);
    assert.equal(fired, false, 'no change yet');
    assert.equal(await a.releaseLeader(), true);
    const outcome = await Promise.race([watch.then(() => 'event'), sleep(15_000).then(() => 'stuck')]);
    assert.equal(outcome, 'event');

    // A change between the read and the watch is not missed (start_revision = revision + 1).
    const rev2 = (await b.readCluster()).revision;
    assert.equal(await a.acquireLeader(), true);
    const outcome2 = await Promise.race([b.watchLeader(rev2, 30_000).then(() => 'event'), sleep(15_000).then(() => 'stuck')]);
    assert.equal(outcome2, 'event');

    // Timeout and abort just resolve.
    await b.watchLeader((await b.readCluster()).revision, 300);
    const ac = new AbortController();
    const aborted = b.watchLeader((await b.readCluster()).revision, 30_000, { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    assert.equal(await Promise.race([aborted.then(() => 'done'), sleep(15_000).then(() => 'stuck')]), 'done');
  });

  it('watchLeader keeps one watch stream across waits and still wakes on a change after each revision', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a', { ttl: 120 });
    const b = adapter(prefix, 'b', { ttl: 120 });
    const watchCalls = async (): Promise<number> => {
      const text = await (await fetch(`http://${etcd.endpoint}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      const line = text.split('\n').find((l) => l.startsWith('grpc_server_started_total{') && l.includes('grpc_method="Watch"'));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    assert.equal(await a.acquireLeader(), true);
    const rev = (await b.readCluster()).revision;
    const before = await watchCalls();
    for (let i = 0; i < 3; i++) await b.watchLeader(rev, 200); // three loops with no change
    assert.equal(await watchCalls(), before + 1, 'one Watch call for the three waits');
    // A change after the revision, delivered to the kept stream between two waits: at once.
    assert.equal(await a.releaseLeader(), true);
    await b.watchLeader(rev, 600_000);
    // The next loop's revision covers that change: the kept stream waits for a newer one.
    const rev2 = (await b.readCluster()).revision;
    const woken = b.watchLeader(rev2, 600_000);
    assert.equal(await a.acquireLeader(), true);
    await woken; // a watch that misses the change hangs here until the test's timeout
    assert.equal(await watchCalls(), before + 1, 'still the same stream');
  });

  it('DCS_UNAVAILABLE when the only endpoint is dead; watchLeader still resolves', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const d = new Etcd3Dcs({ hosts: [dead], protocol: 'http', prefix: freshPrefix(), name: 'a', ttl: 10, retryTimeout: 1 });
    open.push(d);
    const t0 = Date.now();
    await rejectsWith(d.readCluster(), 'DCS_UNAVAILABLE');
    assert.ok(Date.now() - t0 < 10_000, 'gives up around retryTimeout');
    await rejectsWith(d.acquireLeader(), 'DCS_UNAVAILABLE');
    await d.watchLeader('5', 30_000); // resolves (broken watch), does not reject
  });

  it('fails over to the second endpoint when the first is dead', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const prefix = freshPrefix();
    const d = new Etcd3Dcs({ hosts: [dead, etcd.endpoint], protocol: 'http', prefix, name: 'a', ttl: 10, retryTimeout: 3 });
    open.push(d);
    assert.equal(await d.acquireLeader(), true);
    assert.equal((await d.readCluster()).leader?.name, 'a');
    assert.equal(await d.refreshLeader(), true);
  });

  it('grants a new lease and re-binds the leader key after the lease was revoked behind its back', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    await a.touchMember({ state: 'running' });
    assert.equal(await a.acquireLeader(), true);
    const oldLease = (await a.readCluster()).leader?.session;
    assert.ok(oldLease);
    await gateway('/lease/revoke', { ID: oldLease });
    assert.equal(await rawGet(prefix + 'leader'), undefined, 'revoking deletes the bound keys');
    await sleep(1100); // let the member-touch keepalive throttle pass
    assert.equal(await a.refreshLeader(), true);
    const leader = await rawGet(prefix + 'leader');
    assert.equal(leader?.value, 'a');
    assert.notEqual(leader?.lease, oldLease);
    await a.touchMember({ state: 'running' });
    const member = await rawGet(prefix + 'members/a');
    assert.equal(member?.lease, leader?.lease, 'the member key is re-put with the new lease');
  });

  it('re-binds the leader key to our lease when it holds our name without it', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    assert.equal(await a.acquireLeader(), true);
    const oldLease = (await rawGet(prefix + 'leader'))?.lease;
    // The key holds our name but no lease (e.g. rewritten by a tool): refresh must re-bind it.
    await gateway('/kv/put', { key: b64(prefix + 'leader'), value: b64('a') });
    assert.equal((await rawGet(prefix + 'leader'))?.lease, '0');
    assert.equal(await a.refreshLeader(), true);
    assert.equal((await rawGet(prefix + 'leader'))?.lease, oldLease);
  });

  it('setTtl takes effect with the next lease', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a', { ttl: 10 });
    assert.equal(await a.acquireLeader(), true);
    const l1 = (await rawGet(prefix + 'leader'))?.lease;
    a.setTtl(20);
    assert.equal(await a.refreshLeader(), true);
    const l2 = (await rawGet(prefix + 'leader'))?.lease;
    assert.ok(l2 && l2 !== l1, 'a new lease');
    const ttl = await gateway<{ grantedTTL?: string }>('/lease/timetolive', { ID: l2 });
    assert.equal(ttl.grantedTTL, '20');
  });

  it('ctlMode reads linearizably and refuses lease-bound writes', async () => {
    const prefix = freshPrefix();
    const ctl = adapter(prefix, 'ctl', { ctlMode: true });
    assert.deepEqual((await ctl.readCluster()).members, []);
    await rejectsWith(ctl.touchMember({ state: 'running' }), 'DCS_PROTOCOL');
    await rejectsWith(ctl.acquireLeader(), 'DCS_PROTOCOL');
    assert.equal(await ctl.writeFailover({ leader: 'a', member: 'b' }), true);
  });

  it('a caller abort rejects promptly with a non-retryable DcsError', async () => {
    const a = adapter(freshPrefix(), 'a');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(a.readCluster({ signal: ac.signal }), (err: unknown) => err instanceof DcsError && !err.retryable);
  });
});

describe('etcd3 adapter against a paused or restarted etcd', () => {
  let own: EtcdServer;
  before(async () => {
    own = await startEtcd();
  });
  after(async () => {
    await own?.stop();
  });

  it('a paused etcd (SIGSTOP) yields DCS_UNAVAILABLE rather than a hang', async () => {
    const prefix = freshPrefix();
    const d = new Etcd3Dcs({ hosts: [own.endpoint], protocol: 'http', prefix, name: 'a', ttl: 10, retryTimeout: 1.5 });
    open.push(d);
    assert.equal(await d.acquireLeader(), true);
    await own.pause();
    try {
      const read = d.readCluster().then(() => 'answered', (err: unknown) => err);
      const outcome = await Promise.race([read, sleep(20_000).then(() => 'hang')]);
      assert.ok(outcome instanceof DcsError, `expected DcsError, got ${String(outcome)}`);
      assert.equal(outcome.code, 'DCS_UNAVAILABLE');
      const refresh = await Promise.race([d.refreshLeader().then(() => 'answered', (err: unknown) => err), sleep(20_000).then(() => 'hang')]);
      assert.ok(refresh instanceof DcsError && refresh.code === 'DCS_UNAVAILABLE', String(refresh));
    } finally {
      own.resume();
    }
    assert.equal(await d.refreshLeader(), true, 'recovers once etcd answers again');
  });

  it('keeps working across an etcd restart', async () => {
    const prefix = freshPrefix();
    const d = new Etcd3Dcs({ hosts: [own.endpoint], protocol: 'http', prefix, name: 'a', ttl: 10, retryTimeout: 3 });
    open.push(d);
    assert.equal(await d.acquireLeader(), true);
    await own.restart();
    assert.equal(await d.refreshLeader(), true);
    assert.equal((await d.readCluster()).leader?.name, 'a');
  });
});

describe('etcd3 adapter with authentication', () => {
  let own: EtcdServer;
  const ctl = (...args: string[]): string => execFileSync('etcdctl', [`--endpoints=${own.endpoint}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  before(async () => {
    own = await startEtcd();
    ctl('user', 'add', 'root:rootpw');
    ctl('auth', 'enable');
  });
  after(async () => {
    await own?.stop();
  });

  it('authenticates, re-authenticates after the token is invalidated, and reports bad credentials', async () => {
    const prefix = freshPrefix();
    const d = new Etcd3Dcs({ hosts: [own.endpoint], protocol: 'http', prefix, name: 'a', ttl: 10, retryTimeout: 3, username: 'root', password: 'rootpw' });
    open.push(d);
    assert.equal(await d.acquireLeader(), true);
    ctl('--user=root:rootpw', 'auth', 'disable');
    ctl('auth', 'enable'); // invalidates every issued token
    assert.equal(await d.refreshLeader(), true);
    assert.equal((await d.readCluster()).leader?.name, 'a');

    const bad = new Etcd3Dcs({ hosts: [own.endpoint], protocol: 'http', prefix, name: 'b', ttl: 10, retryTimeout: 3, username: 'root', password: 'wrong' });
    open.push(bad);
    await rejectsWith(bad.readCluster(), 'DCS_AUTH');
    const anonymous = new Etcd3Dcs({ hosts: [own.endpoint], protocol: 'http', prefix, name: 'c', ttl: 10, retryTimeout: 3 });
    open.push(anonymous);
    await rejectsWith(anonymous.readCluster(), 'DCS_AUTH');
  });
});
