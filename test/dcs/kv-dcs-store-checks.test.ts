// KvDcs checks what the store holds against what the client believes (issue 14 items 4 and 5),
// on a real etcd: a member key deleted or overwritten behind the agent's back is written again by
// the next touchMember; a leader key bound to our lease that names someone else is deleted.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/kv-dcs-store-checks.test.ts

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startEtcd, type EtcdServer } from '../support/etcd.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import { KvDcs } from '../../src/dcs/kv-dcs.ts';

let etcd: EtcdServer;
const prefix = `/vigil-store-checks/${process.pid}/`;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function gateway<T>(path: string, body: object): Promise<T> {
  const res = await fetch(`http://${etcd.endpoint}/v3${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  return (await res.json()) as T;
}

async function raw(rel: string): Promise<{ value: string; lease: string } | undefined> {
  const r = await gateway<{ kvs?: { value?: string; lease?: string }[] }>('/kv/range', { key: b64(prefix + rel) });
  const kv = r.kvs?.[0];
  return kv === undefined ? undefined : { value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'), lease: kv.lease ?? '0' };
}

function client(name: string): KvDcs {
  const d = createDcs({ etcd3: { hosts: [etcd.endpoint], protocol: 'http', useProxies: true } }, { prefix, name, ttl: 30, retryTimeout: 3 });
  assert.ok(d instanceof KvDcs);
  return d;
}

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

test('a member key deleted or overwritten in the store is written again, bound to the session, at the next touchMember', async () => {
  const a = client('a');
  try {
    await a.touchMember({ state: 'running', role: 'replica' });
    const first = await raw('members/a');
    assert.ok(first !== undefined && first.lease !== '0');
    // Deleted behind our back: an unchanged touchMember used to skip the write (cached copy).
    await gateway('/kv/deleterange', { key: b64(`${prefix}members/a`) });
    await a.readCluster();
    await a.touchMember({ state: 'running', role: 'replica' });
    assert.deepEqual(await raw('members/a'), first);
    // Overwritten without a lease (it would never expire): rewritten with ours.
    await gateway('/kv/put', { key: b64(`${prefix}members/a`), value: b64('{"state":"bogus"}') });
    await a.readCluster();
    await a.touchMember({ state: 'running', role: 'replica' });
    assert.deepEqual(await raw('members/a'), first);
  } finally {
    await a.close();
  }
});

test("a leader key bound to our session that names someone else is deleted; the view shows no leader", async () => {
  const a = client('a');
  try {
    assert.equal(await a.acquireLeader(), true);
    const session = a.session;
    assert.ok(session !== undefined);
    // Someone rewrites /leader with our lease: the lock would stay "held" by a name nobody has for
    // as long as we live.
    await gateway('/kv/put', { key: b64(`${prefix}leader`), value: b64('garbage'), lease: session });
    const view = await a.readCluster();
    assert.equal(view.leader, undefined);
    assert.equal(await raw('leader'), undefined);
    // A leader key on another session naming someone else is left alone.
    const b = client('b');
    try {
      assert.equal(await b.acquireLeader(), true);
      assert.equal((await a.readCluster()).leader?.name, 'b');
      assert.equal((await raw('leader'))?.value, 'b');
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
});
