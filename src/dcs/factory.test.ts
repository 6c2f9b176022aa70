// createDcs: the backend is chosen by the DCS section present; unknown ones are refused by name.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DcsError } from './dcs.ts';
import { Etcd3Dcs } from './etcd3.ts';
import { ZookeeperDcs } from './zookeeper.ts';
import { Etcd2Dcs } from './etcd2.ts';
import { DcsConfigError, createDcs, dcsSectionOf, notImplementedMessage } from './factory.ts';

const opts = { prefix: '/service/batman/', name: 'n1', ttl: 30, retryTimeout: 10 };
const etcd3 = { hosts: ['127.0.0.1:1'], protocol: 'http' as const };

test('an etcd3 section makes an etcd3 client (no connection is made by the constructor)', async () => {
  const d = createDcs({ etcd3 }, opts);
  assert.ok(d instanceof Etcd3Dcs);
  assert.equal(d.prefix, '/service/batman/');
  await d.close();
});

test("several sections: the first in Patroni's order (consul, etcd, etcd3, ...) is used", async () => {
  assert.equal(dcsSectionOf({ consul: { host: 'x' }, etcd3 }), 'consul');
  assert.equal(dcsSectionOf({ etcd3, zookeeper: { hosts: 'x' } }), 'etcd3');
  assert.equal(dcsSectionOf({ etcd: { hosts: ['x:1'], protocol: 'http' }, etcd3 }), 'etcd', 'Patroni 3.0.2 runs on the v2 API when both are present');
  const d = createDcs({ etcd3, zookeeper: { hosts: 'x' } }, opts);
  assert.ok(d instanceof Etcd3Dcs);
  await d.close();
});

test("Patroni's other DCS sections: an error naming the section, not implemented yet", () => {
  for (const section of ['raft', 'exhibitor'] as const) {
    assert.throws(
      () => createDcs({ [section]: { hosts: 'x' } }, opts),
      (err: unknown) => err instanceof DcsConfigError && err.section === section && err.message.startsWith(`${section}: `) && /not implemented yet/.test(err.message),
      section,
    );
  }
  assert.equal(notImplementedMessage('raft'), 'raft: the Raft DCS is not implemented yet in Vigil (supported: consul, etcd, etcd3, kubernetes, zookeeper)');
});

test('an etcd section makes an etcd v2 client', async () => {
  const d = createDcs({ etcd: { hosts: ['127.0.0.1:1'], protocol: 'http' } }, opts);
  assert.ok(d instanceof Etcd2Dcs);
  await d.close();
});

test('a zookeeper section makes a ZooKeeper client; a bad one is refused naming the key', async () => {
  const d = createDcs({ zookeeper: { hosts: '127.0.0.1:1' } }, opts);
  assert.ok(d instanceof ZookeeperDcs);
  await d.close();
  assert.equal(dcsSectionOf({ zookeeper: { hosts: 'x' }, etcd3 }), 'etcd3', "zookeeper is last in Patroni's order");
  assert.equal(dcsSectionOf({ zookeeper: { hosts: 'x' }, kubernetes: {} }), 'kubernetes');
  assert.equal(dcsSectionOf({ zookeeper: { hosts: 'x' }, raft: {} }), 'raft');
  assert.throws(() => createDcs({ zookeeper: { hosts: [] } }, opts), (err: unknown) => err instanceof DcsConfigError && err.section === 'zookeeper' && /zookeeper\.hosts/.test(err.message));
});

test('no DCS section (null counts as absent)', () => {
  assert.throws(() => createDcs({}, opts), (err: unknown) => err instanceof DcsConfigError && err.section === undefined && /no DCS section/.test(err.message));
  assert.throws(() => createDcs({ etcd3: undefined, consul: null }, opts), /no DCS section/);
});

test('ctl clients hold no session: session-bound writes are refused before any request', async () => {
  const d = createDcs({ etcd3 }, { ...opts, ctl: true });
  await assert.rejects(d.acquireLeader(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_PROTOCOL' && !err.retryable);
  await d.close();
});
