// The FAKE Consul agent (consul-fake.ts) against the documented Consul HTTP semantics it claims to
// reproduce (KV store, sessions, lock-delay, blocking queries, ACL token, agent services). The
// clock of TTLs and lock-delays is driven by hand, so no assertion depends on timing.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { ConsulFake, parseGoDuration } from './consul-fake.ts';

let clock = 1_000_000;
let fake: ConsulFake;
const TOKEN = 'tok';

interface Answer { status: number; index: string | null; text: string; json(): unknown }

async function call(method: string, path: string, body?: string | object, token: string | null = TOKEN): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== null) headers['x-consul-token'] = token;
  const res = await fetch(`http://${fake.address}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, index: res.headers.get('x-consul-index'), text, json: () => JSON.parse(text) as unknown };
}

interface Kv { Key: string; Value: string | null; Flags: number; CreateIndex: number; ModifyIndex: number; LockIndex: number; Session?: string }
const kv = async (key: string): Promise<Kv | undefined> => {
  const r = await call('GET', `/v1/kv/${key}`);
  return r.status === 404 ? undefined : (r.json() as Kv[])[0];
};
const session = async (body: object): Promise<string> => {
  const r = await call('PUT', '/v1/session/create', body);
  assert.equal(r.status, 200, r.text);
  return (r.json() as { ID: string }).ID;
};

describe('fake Consul agent (test support, not Consul)', () => {
  before(async () => {
    fake = await ConsulFake.start({ token: TOKEN, now: () => clock });
  });
  after(async () => {
    await fake.stop();
  });

  it('parses Go durations as Consul does', () => {
    assert.equal(parseGoDuration('15.0s'), 15_000);
    assert.equal(parseGoDuration('0.001s'), 1);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('15'), undefined);
    assert.equal(parseGoDuration('s'), undefined);
  });

  it('KV entries: base64 Value (null when empty), Flags, CreateIndex/ModifyIndex, X-Consul-Index, 404 when absent', async () => {
    assert.equal((await call('PUT', '/v1/kv/t1/a?flags=42', 'hello')).text, 'true');
    const a = await kv('t1/a');
    assert.ok(a);
    assert.equal(a.Key, 't1/a');
    assert.equal(Buffer.from(a.Value ?? '', 'base64').toString(), 'hello');
    assert.equal(a.Flags, 42);
    assert.equal(a.LockIndex, 0);
    assert.equal(a.Session, undefined);
    assert.equal(a.CreateIndex, a.ModifyIndex);
    const got = await call('GET', '/v1/kv/t1/a');
    assert.equal(got.index, String(a.ModifyIndex), 'a single key answers its ModifyIndex');
    await call('PUT', '/v1/kv/t1/a', '');
    const b = await kv('t1/a');
    assert.equal(b?.Value, null, 'an empty value is null');
    assert.equal(b?.CreateIndex, a.CreateIndex);
    assert.ok((b?.ModifyIndex ?? 0) > a.ModifyIndex);
    const missing = await call('GET', '/v1/kv/t1/nope');
    assert.equal(missing.status, 404);
    assert.match(missing.index ?? '', /^\d+$/);
    assert.equal((await call('GET', '/v1/kv/t1/a?raw')).text, '');
  });

  it('recurse: sorted entries under the prefix, index = highest ModifyIndex or deletion under it; 404 when empty', async () => {
    await call('PUT', '/v1/kv/t2/b', 'b');
    await call('PUT', '/v1/kv/t2/a', 'a');
    await call('PUT', '/v1/kv/t2x', 'sibling');
    const r = await call('GET', '/v1/kv/t2/?recurse');
    const list = r.json() as Kv[];
    assert.deepEqual(list.map((e) => e.Key), ['t2/a', 't2/b']);
    assert.equal(r.index, String(Math.max(...list.map((e) => e.ModifyIndex))), 'the sibling write outside the prefix does not count');
    await call('DELETE', '/v1/kv/t2/b');
    const afterDelete = await call('GET', '/v1/kv/t2/?recurse');
    assert.ok(Number(afterDelete.index) > Number(r.index), 'a deletion under the prefix raises its index');
    assert.equal((await call('DELETE', '/v1/kv/t2/?recurse')).text, 'true');
    assert.equal((await call('GET', '/v1/kv/t2/?recurse')).status, 404);
    assert.ok(await kv('t2x'), 'recurse delete kept the key outside the prefix');
  });

  it('cas: 0 creates only if absent; N writes/deletes only at ModifyIndex N; DELETE ?cas=0 does nothing', async () => {
    assert.equal((await call('PUT', '/v1/kv/t3/k?cas=0', 'v1')).text, 'true');
    assert.equal((await call('PUT', '/v1/kv/t3/k?cas=0', 'v2')).text, 'false');
    const m = (await kv('t3/k'))?.ModifyIndex ?? 0;
    assert.equal((await call('PUT', `/v1/kv/t3/k?cas=${m + 100}`, 'v3')).text, 'false');
    assert.equal((await call('PUT', `/v1/kv/t3/k?cas=${m}`, 'v3')).text, 'true');
    assert.equal((await call('PUT', `/v1/kv/t3/k?cas=${m}`, 'v4')).text, 'false', 'the index moved');
    const m2 = (await kv('t3/k'))?.ModifyIndex ?? 0;
    assert.equal((await call('DELETE', '/v1/kv/t3/k?cas=0')).text, 'false');
    assert.equal((await call('DELETE', `/v1/kv/t3/k?cas=${m}`)).text, 'false');
    assert.equal((await call('DELETE', `/v1/kv/t3/k?cas=${m2}`)).text, 'true');
    assert.equal(await kv('t3/k'), undefined);
    assert.equal((await call('PUT', '/v1/kv/t3/big', 'x'.repeat(512 * 1024 + 1))).status, 413);
  });

  it('sessions: TTL within [session_ttl_min, 24h], defaults (release, lock-delay 15s), renew 404 when unknown, destroy', async () => {
    const low = await call('PUT', '/v1/session/create', { TTL: '5s' });
    assert.equal(low.status, 500);
    assert.match(low.text, /^Invalid Session TTL '5000000000', must be between \[10s=24h0m0s\]/);
    const id = await session({ Name: 'n', TTL: '10s' });
    const [info] = (await call('GET', `/v1/session/info/${id}`)).json() as { Behavior: string; LockDelay: number; TTL: string; Name: string }[];
    assert.deepEqual({ ...info, ID: undefined, CreateIndex: undefined, ModifyIndex: undefined }, {
      ...info, ID: undefined, CreateIndex: undefined, ModifyIndex: undefined, Behavior: 'release', LockDelay: 15e9, TTL: '10s', Name: 'n',
    });
    assert.equal((await call('PUT', `/v1/session/renew/${id}`)).status, 200);
    assert.equal((await call('PUT', '/v1/session/destroy/' + id)).text, 'true');
    assert.deepEqual((await call('GET', `/v1/session/info/${id}`)).json(), []);
    const renew = await call('PUT', `/v1/session/renew/${id}`);
    assert.equal(renew.status, 404);
    assert.match(renew.text, /not found/);
    const self = (await call('GET', '/v1/agent/self')).json() as { Config: { SessionTTLMin: number } };
    assert.equal(self.Config.SessionTTLMin, 10e9);
  });

  it('acquire/release: one holder; LockIndex counts new holders; the holder may rewrite; plain PUT keeps the lock', async () => {
    const bad = await call('PUT', '/v1/kv/t4/lock?acquire=00000000-0000-0000-0000-000000000000', 'x');
    assert.equal(bad.status, 500);
    assert.match(bad.text, /^invalid session/);
    const s1 = await session({ LockDelay: '0.001s' });
    const s2 = await session({ LockDelay: '0.001s' });
    assert.equal((await call('PUT', `/v1/kv/t4/lock?acquire=${s1}`, 'one')).text, 'true');
    let e = await kv('t4/lock');
    assert.equal(e?.Session, s1);
    assert.equal(e?.LockIndex, 1);
    assert.equal((await call('PUT', `/v1/kv/t4/lock?acquire=${s2}`, 'two')).text, 'false');
    assert.equal((await call('PUT', `/v1/kv/t4/lock?acquire=${s1}`, 'one again')).text, 'true');
    e = await kv('t4/lock');
    assert.equal(e?.LockIndex, 1, 'no new holder');
    await call('PUT', '/v1/kv/t4/lock', 'plain');
    assert.equal((await kv('t4/lock'))?.Session, s1, 'a plain PUT keeps the holder');
    assert.equal((await call('PUT', `/v1/kv/t4/lock?release=${s2}`, 'x')).text, 'false');
    assert.equal((await call('PUT', `/v1/kv/t4/lock?release=${s1}`, 'released')).text, 'true');
    e = await kv('t4/lock');
    assert.equal(e?.Session, undefined);
    assert.equal((await call('PUT', `/v1/kv/t4/lock?acquire=${s2}`, 'two')).text, 'true', 'an explicit release starts no lock-delay');
    assert.equal((await kv('t4/lock'))?.LockIndex, 2);
  });

  it('TTL: invalidated 2 x TTL after the last renewal (not before); behavior delete deletes, release unlocks', async () => {
    const del = await session({ TTL: '10s', Behavior: 'delete', LockDelay: '0.001s' });
    const rel = await session({ TTL: '10s', Behavior: 'release', LockDelay: '0.001s' });
    await call('PUT', `/v1/kv/t5/del?acquire=${del}`, 'd');
    await call('PUT', `/v1/kv/t5/rel?acquire=${rel}`, 'r');
    const relIndex = (await kv('t5/rel'))?.ModifyIndex ?? 0;
    clock += 15_000;
    assert.equal((await call('PUT', `/v1/session/renew/${rel}`)).status, 200, 'past TTL but within 2 x TTL: still valid');
    clock += 4_999;
    fake.reap();
    assert.ok(await kv('t5/del'), '2 x TTL not reached yet');
    clock += 1;
    fake.reap();
    assert.equal(await kv('t5/del'), undefined, 'behavior delete: the key went with the session');
    assert.ok(await kv('t5/rel'), 'renewed 5 s ago');
    clock += 20_000;
    fake.reap();
    const e = await kv('t5/rel');
    assert.equal(e?.Session, undefined, 'behavior release: the key stays, unlocked');
    assert.ok((e?.ModifyIndex ?? 0) > relIndex);
    assert.equal((await call('PUT', `/v1/session/renew/${rel}`)).status, 404);
  });

  it('lock-delay: after invalidation the keys cannot be acquired until it passes; plain writes are not blocked', async () => {
    const s1 = await session({ Behavior: 'release' }); // default lock-delay 15 s
    const s2 = await session({});
    await call('PUT', `/v1/kv/t6/lock?acquire=${s1}`, 'one');
    await call('PUT', `/v1/session/destroy/${s1}`);
    assert.equal((await call('PUT', `/v1/kv/t6/lock?acquire=${s2}`, 'two')).text, 'false');
    assert.equal((await call('PUT', '/v1/kv/t6/lock', 'plain')).text, 'true');
    clock += 14_999;
    assert.equal((await call('PUT', `/v1/kv/t6/lock?acquire=${s2}`, 'two')).text, 'false');
    clock += 1;
    assert.equal((await call('PUT', `/v1/kv/t6/lock?acquire=${s2}`, 'two')).text, 'true');
  });

  it('blocking queries: held until the result index passes ?index, or ?wait ends with the same index', async () => {
    await call('PUT', '/v1/kv/t7/leader', 'a');
    const m = (await kv('t7/leader'))?.ModifyIndex ?? 0;
    const held = call('GET', `/v1/kv/t7/leader?index=${m}&wait=60s`);
    await call('PUT', '/v1/kv/t7/other', 'x'); // another key: does not end the query
    await call('PUT', '/v1/kv/t7/leader', 'b');
    const r = await held;
    const now = (await kv('t7/leader'))?.ModifyIndex ?? 0;
    assert.equal(r.index, String(now));
    assert.equal(Buffer.from((r.json() as Kv[])[0]?.Value ?? '', 'base64').toString(), 'b');

    const timedOut = await call('GET', `/v1/kv/t7/leader?index=${now}&wait=50ms`);
    assert.equal(timedOut.index, String(now), 'the wait ended: same index');

    const rec = await call('GET', '/v1/kv/t7/?recurse');
    const heldTree = call('GET', `/v1/kv/t7/?recurse&index=${rec.index}&wait=60s`);
    await call('PUT', '/v1/kv/t7-sibling', 'outside the prefix');
    await call('DELETE', '/v1/kv/t7/other');
    const tree = await heldTree;
    assert.deepEqual((tree.json() as Kv[]).map((e) => e.Key), ['t7/leader'], 'woken by the deletion under the prefix');

    const heldDelete = call('GET', `/v1/kv/t7/leader?index=${now}&wait=60s`);
    await call('DELETE', '/v1/kv/t7/leader');
    assert.equal((await heldDelete).status, 404);
  });

  it('ACL: a missing or wrong token is 403', async () => {
    assert.equal((await call('GET', '/v1/kv/t8?recurse', undefined, null)).status, 403);
    assert.equal((await call('PUT', '/v1/kv/t8', 'x', 'wrong')).status, 403);
    assert.equal((await call('GET', '/v1/kv/t8?recurse&token=' + TOKEN, undefined, null)).status, 404);
  });

  it('datacenters: only dc1', async () => {
    assert.equal((await call('GET', '/v1/kv/t9?dc=dc1')).status, 404);
    const other = await call('GET', '/v1/kv/t9?dc=elsewhere');
    assert.equal(other.status, 500);
    assert.match(other.text, /No path to datacenter/);
  });

  it('agent services: register (with its HTTP check), list, checks, deregister by ID', async () => {
    const reg = await call('PUT', '/v1/agent/service/register', {
      Name: 'batman', ID: 'batman/pg0', Address: '10.0.0.1', Port: 5432, Tags: ['primary', 'master'], EnableTagOverride: true,
      Check: { HTTP: 'http://10.0.0.1:8008/primary', Interval: '5s', DeregisterCriticalServiceAfter: '150.0s' },
    });
    assert.equal(reg.status, 200, reg.text);
    const services = (await call('GET', '/v1/agent/services')).json() as Record<string, { Service: string; Tags: string[]; Port: number }>;
    assert.equal(services['batman/pg0']?.Service, 'batman');
    assert.deepEqual(services['batman/pg0']?.Tags, ['primary', 'master']);
    const checks = (await call('GET', '/v1/agent/checks')).json() as Record<string, { HTTP: string; Status: string }>;
    assert.equal(checks['service:batman/pg0']?.HTTP, 'http://10.0.0.1:8008/primary');
    assert.equal(checks['service:batman/pg0']?.Status, 'critical', 'checks are recorded, never run');
    assert.equal((await call('PUT', '/v1/agent/service/deregister/batman/pg0')).status, 200);
    assert.deepEqual((await call('GET', '/v1/agent/services')).json(), {});
    assert.equal((await call('PUT', '/v1/agent/service/deregister/batman/pg0')).status, 404);
  });
});
