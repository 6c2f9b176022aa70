// The ZooKeeper backend's watch-kept view of the cluster (src/dcs/zookeeper-cache.ts), against a
// real ZooKeeper 3.8: after any sequence of acknowledged writes by another client, a read from
// the cache equals a read of every znode by a fresh client; the same after the connection was cut
// while others wrote; an idle read is one request; the leader watch is woken by the cache's own
// watches.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/zookeeper-cache.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';

import { startCutProxy, startZookeeper, type ZookeeperServer } from '../support/zookeeper.ts';
import { zookeeperCountingProxy } from '../../bench/lib/dcs-load.ts';
import { ZookeeperBackend } from '../../src/dcs/zookeeper.ts';
import type { RawKv } from '../../src/dcs/backend.ts';

const T = { timeout: 120_000 };
const op = (): { signal: undefined; deadline: number; budgetMs: number } => ({ signal: undefined, deadline: Date.now() + 5000, budgetMs: 5000 });
const sorted = (kvs: RawKv[]): RawKv[] => [...kvs].sort((a, b) => a.key.localeCompare(b.key));

/** One write by the other client. */
type Step =
  | { kind: 'put'; rel: string; value: string }
  | { kind: 'delete'; rel: string }
  | { kind: 'ephemeral'; rel: string; value: string }
  | { kind: 'wipe' };

const RELS = ['leader', 'config', 'failover', 'sync', 'status', 'history', 'initialize', 'members/a', 'members/b', 'members/c', 'optime/leader', 'group/leader', 'group'];
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), rel: fc.constantFrom(...RELS), value: fc.constantFrom('', 'x', '{}', '{"a":1}', 'v2') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), rel: fc.constantFrom(...RELS) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ephemeral' as const), rel: fc.constantFrom('leader', 'members/a', 'members/b'), value: fc.constantFrom('a', 'b') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'wipe' as const }) },
);

describe('ZooKeeper backend: the watch-kept cluster view (real ZooKeeper 3.8)', () => {
  let zk: ZookeeperServer;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    zk = await startZookeeper();
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
    await zk?.stop();
  });
  const backend = (prefix: string, hosts = [zk.endpoint]): ZookeeperBackend => {
    const b = new ZookeeperBackend({ hosts, prefix, name: 'x', ttl: 10, retryTimeout: 3 });
    closers.push(() => b.close(undefined));
    return b;
  };
  /** Every znode read by a client that has never read before (no cache). */
  const fresh = async (prefix: string): Promise<RawKv[]> => {
    const b = new ZookeeperBackend({ hosts: [zk.endpoint], prefix, name: 'y', ttl: 10, retryTimeout: 3 });
    try {
      return sorted((await b.readTree(op())).kvs);
    } finally {
      await b.close(undefined);
    }
  };
  const apply = async (w: ZookeeperBackend, s: Step): Promise<void> => {
    if (s.kind === 'put') await w.put(s.rel, s.value, {}, op());
    else if (s.kind === 'delete') {
      // A znode with children cannot be deleted: delete them first (group/leader under group).
      if (s.rel === 'group') await w.delete('group/leader', undefined, op());
      await w.delete(s.rel, undefined, op());
    } else if (s.kind === 'ephemeral') await w.put(s.rel, s.value, { session: await w.grantSession(10, op()) }, op());
    else await w.deleteTree(op());
  };

  it('after any sequence of writes by another client, a read from the cache equals a fresh read of every znode', T, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(step, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 }), async (rounds) => {
        const prefix = `/service/cache${n++}/`;
        const w = backend(prefix);
        const r = backend(prefix);
        await w.put('members/seed', 'm', {}, op()); // a cluster and members znode: the cache is kept
        await r.readTree(op());
        for (const round of rounds) {
          for (const s of round) await apply(w, s);
          assert.deepEqual(sorted((await r.readTree(op())).kvs), await fresh(prefix), JSON.stringify(round));
        }
      }),
      {
        numRuns: 12,
        // A znode with empty data is a key only while it has no children, which no watch of it reports.
        examples: [
          [[[{ kind: 'put', rel: 'group/leader', value: 'x' }], [{ kind: 'delete', rel: 'group/leader' }]]],
          [[[{ kind: 'put', rel: 'group', value: '' }], [{ kind: 'put', rel: 'group/leader', value: 'x' }]]],
        ],
      },
    );
  });

  it('an idle read is one request; a change is read again alone', T, async () => {
    const prefix = '/service/cachecount/';
    const proxy = await zookeeperCountingProxy(zk.endpoint);
    closers.push(() => proxy.close());
    const w = backend(prefix);
    for (const rel of ['config', 'status', 'history', 'members/a', 'members/b', 'members/c']) await w.put(rel, 'v', {}, op());
    const r = backend(prefix, [proxy.endpoint]);
    const full = (await r.readTree(op())).kvs;
    assert.equal(full.length, 6);
    const requests = async (f: () => Promise<unknown>): Promise<Record<string, number>> => {
      const before = (await proxy.byKind?.()) ?? {};
      await f();
      const after = (await proxy.byKind?.()) ?? {};
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(after)) if (k !== 'ping' && v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
      return out;
    };
    assert.deepEqual(await requests(() => r.readTree(op())), { exists: 1 }, 'nothing changed: the check only');
    await w.put('status', 'v2', {}, op());
    let kvs: RawKv[] = [];
    assert.deepEqual(await requests(async () => (kvs = (await r.readTree(op())).kvs)), { exists: 1, getData: 1 }, 'one key changed: the check and that key');
    assert.equal(kvs.find((kv) => kv.key === `${prefix}status`)?.value, 'v2');
    await w.delete('members/c', undefined, op());
    assert.deepEqual(await requests(async () => (kvs = (await r.readTree(op())).kvs)), { exists: 1, getChildren: 1 }, 'a member gone: the check and the members list');
    assert.equal(kvs.length, 5);
  });

  it('writes made while the connection was cut are read after it is back', T, async () => {
    const prefix = '/service/cachecut/';
    const proxy = await startCutProxy(zk.endpoint);
    closers.push(() => proxy.close());
    const w = backend(prefix);
    await w.put('members/a', '1', {}, op());
    await w.put('config', '1', {}, op());
    const r = backend(prefix, [proxy.endpoint]);
    await r.readTree(op());
    proxy.cut();
    await w.put('config', '2', {}, op());
    await w.put('members/b', '1', {}, op());
    await w.delete('members/a', undefined, op());
    // The reader drops the silent connection and tries again (held back by the cut).
    while (proxy.connections < 2) await sleep(100);
    proxy.heal();
    assert.deepEqual(sorted((await r.readTree(op())).kvs), await fresh(prefix));
  });

  it("the leader watch wakes on another client's change of the leader key, from the cache's own watches", T, async () => {
    const prefix = '/service/cachewatch/';
    const w = backend(prefix);
    const r = backend(prefix);
    await w.put('members/a', '1', {}, op());
    const session = await w.grantSession(10, op());
    assert.equal(await w.create('leader', 'a', session, op()), true);
    const { revision } = await r.readTree(op());
    // Far longer than the test's timeout: only the change can end these waits.
    const deleted = r.watch('leader', revision, 600_000, undefined);
    await w.delete('leader', undefined, op());
    await deleted;
    const { revision: rev2, kvs } = await r.readTree(op());
    assert.equal(kvs.find((kv) => kv.key === `${prefix}leader`), undefined);
    const created = r.watch('leader', rev2, 600_000, undefined);
    assert.equal(await w.create('leader', 'b', session, op()), true);
    await created;
    assert.equal((await r.readTree(op())).kvs.find((kv) => kv.key === `${prefix}leader`)?.value, 'b');
    // A change already read by a later read than the revision: the watch returns at once.
    await w.put('leader', 'c', { session }, op());
    await r.readTree(op());
    await r.watch('leader', rev2, 600_000, undefined);
  });
});
