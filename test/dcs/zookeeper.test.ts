// The ZooKeeper backend beyond the shared contract, against a real ZooKeeper 3.8: Patroni's znode
// layout (ephemeral leader and member znodes owned by the session, persistent others); a session
// that expires while the client is partitioned is known lost by the client's own timer, before it
// hears from the server again; set_acls and auth_data.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/zookeeper.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { run } from '../support/cli.ts';

import { freePort } from '../support/etcd.ts';
import { startCutProxy, startZookeeper, type ZookeeperServer } from '../support/zookeeper.ts';
import { DcsError } from '../../src/dcs/dcs.ts';
import { KvDcs } from '../../src/dcs/kv-dcs.ts';
import { ZookeeperBackend, ZookeeperDcs } from '../../src/dcs/zookeeper.ts';
import { Err, OPEN_ACL, Op as Code, Perms, Writer } from '../../src/dcs/zookeeper-jute.ts';
import { ZkClient } from '../../src/dcs/zookeeper-client.ts';
import { ZkError } from '../../src/dcs/zookeeper-errors.ts';

const TTL = 3;
const PATRONICTL = '/usr/bin/patronictl';
/** patronictl speaks ZooKeeper through kazoo (Debian: python3-kazoo). */
const HAS_PATRONICTL_ZK = existsSync(PATRONICTL) && existsSync('/usr/lib/python3/dist-packages/kazoo');
const T = { timeout: 60_000 };
const op = (): { signal: undefined; deadline: number; budgetMs: number } => ({ signal: undefined, deadline: Date.now() + 5000, budgetMs: 5000 });

describe('ZooKeeper backend (real ZooKeeper 3.8)', () => {
  let zk: ZookeeperServer;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    zk = await startZookeeper();
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
    await zk?.stop();
  });
  const backend = (prefix: string, extra: Partial<ConstructorParameters<typeof ZookeeperBackend>[0]> = {}): ZookeeperBackend => {
    const b = new ZookeeperBackend({ hosts: [zk.endpoint], prefix, name: 'x', ttl: TTL, retryTimeout: 3, ...extra });
    closers.push(() => b.close(undefined));
    return b;
  };
  const dcs = (prefix: string, name: string, extra: Partial<ConstructorParameters<typeof ZookeeperDcs>[0]> = {}): ZookeeperDcs => {
    const d = new ZookeeperDcs({ hosts: [zk.endpoint], prefix, name, ttl: TTL, retryTimeout: 3, ...extra });
    closers.push(() => d.close());
    return d;
  };

  it("Patroni's layout: one znode per key, leader and members/<name> ephemeral of the session", T, async () => {
    const prefix = '/service/layout/';
    const a = dcs(prefix, 'pg0');
    const inspect = backend(prefix);
    assert.equal(await a.attemptInitialize(), true);
    assert.equal(await a.writeConfig({ ttl: 30 }), true);
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'primary' });
    const { kvs } = await inspect.readTree(op());
    const byKey = new Map(kvs.map((kv) => [kv.key, kv]));
    assert.deepEqual([...byKey.keys()].sort(), ['/service/layout/config', '/service/layout/initialize', '/service/layout/leader', '/service/layout/members/pg0']);
    assert.equal(byKey.get('/service/layout/leader')?.value, 'pg0');
    assert.equal(byKey.get('/service/layout/leader')?.lease, a.session, 'ephemeralOwner is our session id');
    assert.equal(byKey.get('/service/layout/members/pg0')?.lease, a.session);
    assert.equal(byKey.get('/service/layout/config')?.lease, '0', 'persistent');
    assert.equal(byKey.get('/service/layout/initialize')?.lease, '0', 'persistent');
    assert.notEqual(byKey.get('/service/layout/config')?.modRevision, '0', 'a version (mzxid) is never 0: 0 would mean an invalid config');
    // The sync key is emptied, not deleted (Patroni on ZooKeeper), and then reads as no sync state.
    assert.equal(await a.deleteSync(), true, 'no sync key: nothing to empty, none created');
    assert.equal(await inspect.get('sync', op()), undefined);
    assert.equal(await a.writeSync({ leader: 'pg0', quorum: 0, sync_standby: null }), true);
    const sync = (await a.readCluster()).sync;
    assert.equal(await a.deleteSync(sync?.version), true);
    assert.equal((await inspect.get('sync', op()))?.value, '{}');
    assert.equal((await a.readCluster()).sync, undefined);
    // patronictl remove: the cluster znode and everything under it.
    await a.deleteCluster();
    assert.equal(await inspect.get('', op()), undefined);
  });

  it('znodes written by another tool that Vigil cannot parse do not break the cluster read', T, async () => {
    const prefix = '/service/garbage/';
    const raw = new ZkClient({ hosts: [zk.endpoint], sessionTimeoutMs: 10_000 });
    closers.push(() => raw.close(true));
    const create = async (path: string, data: Buffer): Promise<void> => {
      await raw.call(Code.create, new Writer().string(path).buffer(data).acls(OPEN_ACL).int(0), { deadline: Date.now() + 5000 });
    };
    for (const p of ['/service', '/service/garbage', '/service/garbage/members']) {
      await create(p, Buffer.alloc(0)).catch((err: unknown) => assert.ok(err instanceof ZkError && err.code === Err.nodeExists, String(err)));
    }
    await create('/service/garbage/config', Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
    await create('/service/garbage/members/x', Buffer.from('{"broken'));
    await create('/service/garbage/status', Buffer.from('garbage'));
    await create('/service/garbage/history', Buffer.from('[['));
    await create('/service/garbage/sync', Buffer.from('[]'));
    await create('/service/garbage/unknown', Buffer.from('whatever'));
    await create('/service/garbage/failover', Buffer.alloc(0));
    await create('/service/garbage/failover/child', Buffer.from('a znode under a key'));
    const a = dcs(prefix, 'a');
    const view = await a.readCluster();
    assert.equal(view.config, undefined);
    assert.deepEqual(view.members.map((m) => m.name), ['x']);
    assert.equal(view.history, undefined);
    // Vigil's own writes still work around them.
    assert.equal(await a.writeConfig({ ttl: 30 }, view.configVersion), false, 'no compare-and-set replaces a config nobody could read');
    assert.equal(await a.writeConfig({ ttl: 30 }), true, 'an unconditional write (PUT /config) replaces it');
    assert.deepEqual((await a.readCluster()).config, { ttl: 30 });
    await a.deleteCluster();
  });

  it('hosts are tried in turn: a server that does not answer and one that refuses are skipped', T, async () => {
    const silent = await startCutProxy(zk.endpoint);
    closers.push(() => silent.close());
    silent.cut();
    const refusing = `127.0.0.1:${await freePort()}`;
    const a = dcs('/service/hosts/', 'a', { hosts: [silent.endpoint, refusing, zk.endpoint] });
    assert.equal(await a.writeConfig({ ttl: 30 }), true);
    assert.deepEqual((await a.readCluster()).config, { ttl: 30 });
    await a.deleteCluster();
  });

  it('a short ZooKeeper restart: the client re-attaches to its session; lock and member key are kept', T, async () => {
    const prefix = '/service/restart/';
    const a = dcs(prefix, 'a', { ttl: 10 });
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ api_url: 'http://a/patroni', state: 'running' });
    const session = a.session;
    const before = await a.readCluster();
    await zk.restart();
    assert.equal(await a.refreshLeader(), true);
    assert.equal(a.session, session, 'the same session: ZooKeeper restores sessions from its data');
    const view = await a.readCluster();
    assert.equal(view.leader?.version, before.leader?.version, 'the leader znode was never re-created');
    assert.equal(view.members[0]?.session, session);
  });

  it('a ZooKeeper rebuilt from empty: once its session times out, the client starts a new one there', T, async () => {
    const prefix = '/service/rebuilt/';
    const a = dcs(prefix, 'a');
    assert.equal(await a.writeConfig({ ttl: 30 }), true);
    for (let i = 0; i < 20; i++) await a.writeConfig({ ttl: 30 + i }); // a zxid well past a fresh server's
    assert.equal(await a.acquireLeader(), true);
    const session = a.session;
    await zk.restart({ wipe: true });
    // The server refuses to resume the session (we have seen zxids it has not), so calls fail as
    // unreachable until our own timer ends the session; then a new one starts (with no zxid to
    // refuse) and the lock is re-created on it.
    while (!(await a.refreshLeader().catch(() => false))) await sleep(200);
    assert.notEqual(a.session, session);
    assert.deepEqual((await a.readCluster()).leader?.name, 'a');
  });

  it('a client that makes no request lets its session lapse, like an etcd lease without keepalives; its next call starts a new one', T, async () => {
    const prefix = '/service/idle/';
    const a = dcs(prefix, 'a');
    const b = dcs(prefix, 'b');
    assert.equal(await a.acquireLeader(), true);
    const session = a.session;
    // a's connection stays open, but a stops asking: the server ends the session, the lock goes.
    while ((await b.readCluster()).leader !== undefined) await sleep(100);
    assert.equal(await a.refreshLeader(), true, 'nobody took the lock meanwhile: re-created');
    assert.notEqual(a.session, session);
    assert.equal((await b.readCluster()).leader?.session, a.session);
  });

  it('a connection cut off for less than the session timeout: the client reconnects to the same session; the lock is kept', T, async () => {
    const prefix = '/service/reconnect/';
    const proxy = await startCutProxy(zk.endpoint);
    closers.push(() => proxy.close());
    // Session timeout 10 s; the client gives up on a silent connection after 3 s (retry_timeout).
    const a = dcs(prefix, 'a', { hosts: [proxy.endpoint], ttl: 10 });
    assert.equal(await a.acquireLeader(), true);
    const session = a.session;
    const version = (await a.readCluster()).leader?.version;
    proxy.cut();
    // The client drops the silent connection and tries again (held back by the cut).
    while (proxy.connections < 2) await sleep(100);
    proxy.heal();
    assert.equal(await a.refreshLeader(), true);
    assert.equal(a.session, session, 'the same session, re-attached');
    const view = await a.readCluster();
    assert.equal(view.leader?.version, version, 'the leader znode was never re-created');
    assert.equal(view.leader?.session, session);
  });

  it('a session that expires while partitioned is known lost by our own timer, before the server is heard again', T, async () => {
    const prefix = '/service/partition/';
    const proxy = await startCutProxy(zk.endpoint);
    closers.push(() => proxy.close());
    const be = new ZookeeperBackend({ hosts: [proxy.endpoint], prefix, name: 'a', ttl: TTL, retryTimeout: 3 });
    const a = new KvDcs(be, { name: 'a', ttl: TTL, retryTimeout: 3 });
    closers.push(() => a.close());
    const b = dcs(prefix, 'b');
    assert.equal(await a.acquireLeader(), true);
    const session = a.session as string;
    proxy.cut();
    // ZooKeeper expires the session on its own clock: the leader znode goes.
    while ((await b.readCluster()).leader !== undefined) await sleep(100);
    // Still cut off, the client already knows: false (lost), not "unreachable".
    assert.equal(await be.keepAlive(session, op()), false);
    await assert.rejects(a.refreshLeader({ signal: AbortSignal.timeout(1000) }), (err: unknown) => err instanceof DcsError);
    assert.equal(await b.acquireLeader(), true);
    proxy.heal();
    assert.equal(await a.refreshLeader(), false, 'b holds the lock now');
    assert.notEqual(a.session, session);
  });

  it("Patroni 3.0.2's patronictl (kazoo) lists a cluster Vigil wrote; Vigil reads its edit-config and its switchover request", { ...T, skip: !HAS_PATRONICTL_ZK && 'patronictl or python3-kazoo not installed' }, async () => {
    const prefix = '/service/ctl/';
    const a = dcs(prefix, 'pg0');
    const b = dcs(prefix, 'pg1');
    assert.equal(await a.attemptInitialize(), true);
    await a.writeInitialize('7268616322854375442');
    assert.equal(await a.writeConfig({ ttl: 30, loop_wait: 10 }), true);
    assert.equal(await a.acquireLeader(), true);
    // REST API addresses nobody listens on: patronictl's switchover then writes the failover key itself.
    await a.touchMember({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'primary', version: '3.0.2', xlog_location: 100, timeline: 1 });
    await b.touchMember({ conn_url: 'postgres://127.0.0.1:5433/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'replica', version: '3.0.2', xlog_location: 100, replay_lsn: 100, receive_lsn: 100, timeline: 1 });
    await a.writeStatus({ optime: 100 });
    const dir = await mkdtemp(join(tmpdir(), 'vigil-zk-ctl-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const cfg = join(dir, 'patronictl.yml');
    await writeFile(cfg, `scope: ctl\nzookeeper:\n  hosts: ['${zk.endpoint}']\n`);
    const ctl = (...args: string[]): ReturnType<typeof run> => run(PATRONICTL, ['-c', cfg, ...args], { timeoutMs: 30_000 });

    const list = await ctl('list', '-f', 'json');
    assert.equal(list.code, 0, list.stderr.slice(0, 2000));
    const rows = JSON.parse(list.stdout) as { Member: string; Role: string; State: string; TL: number }[];
    assert.deepEqual(rows.map((r) => [r.Member, r.Role, r.State, r.TL]), [['pg0', 'Leader', 'running', 1], ['pg1', 'Replica', 'running', 1]]);

    const before = (await b.readCluster()).configVersion;
    const edit = await ctl('edit-config', '--set', 'loop_wait=5', '--force');
    assert.equal(edit.code, 0, edit.stderr.slice(0, 2000));
    const view = await b.readCluster();
    assert.deepEqual(view.config, { ttl: 30, loop_wait: 5 });
    assert.equal(await b.writeConfig({ ttl: 30, loop_wait: 1 }, before), false, 'a version read before the edit no longer matches');

    const sw = await ctl('switchover', '--leader', 'pg0', '--candidate', 'pg1', '--force');
    assert.equal(sw.code, 0, sw.stderr.slice(0, 2000));
    const fo = (await b.readCluster()).failover;
    assert.deepEqual([fo?.leader, fo?.member], ['pg0', 'pg1']);
  });

  it('set_acls protects the znodes created; auth_data is sent on every connection', T, async () => {
    const prefix = '/service/acl/';
    const digest = createHash('sha1').update('vigil:secret').digest('base64');
    const acl = [{ scheme: 'digest', id: `vigil:${digest}`, perms: Perms.ALL }];
    const auth = [{ scheme: 'digest', credential: 'vigil:secret' }];
    const a = dcs(prefix, 'a', { acl, auth });
    assert.equal(await a.writeConfig({ ttl: 30 }), true);
    const stranger = dcs(prefix, 'b');
    await assert.rejects(stranger.readCluster(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_AUTH');
    await assert.rejects(stranger.writeConfig({ ttl: 1 }), (err: unknown) => err instanceof DcsError && err.code === 'DCS_AUTH');
    const friend = dcs(prefix, 'c', { acl, auth });
    assert.deepEqual((await friend.readCluster()).config, { ttl: 30 });
    await friend.deleteCluster();
    assert.deepEqual(OPEN_ACL, [{ perms: Perms.ALL, scheme: 'world', id: 'anyone' }]);
  });
});
