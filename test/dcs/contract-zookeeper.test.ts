// The Dcs contract (contract.ts) against a real ZooKeeper 3.8 on loopback, through the factory.
// Each client reaches ZooKeeper through its own cuttable proxy (test/support/zookeeper.ts), so
// "unreachable" and "expire the session" are network partitions of that one client: its session
// then ends by ZooKeeper's own timeout, and the client must notice by its own timer.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/contract-zookeeper.test.ts

import { setTimeout as sleep } from 'node:timers/promises';

import { startCutProxy, startZookeeper, type CutProxy, type ZookeeperServer } from '../support/zookeeper.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { KvDcs } from '../../src/dcs/kv-dcs.ts';
import { ZookeeperBackend } from '../../src/dcs/zookeeper.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

/** Session timeout (s); the server's tickTime of 500 ms accepts 1 s to 10 s. */
const TTL = 3;
const RETRY_TIMEOUT = 3;

let zk: ZookeeperServer;
let seq = 0;

function sessionOf(client: Dcs): string | undefined {
  if (!(client instanceof KvDcs)) throw new Error('not a KvDcs');
  return client.session;
}

const op = (): { signal: undefined; deadline: number; budgetMs: number } => ({ signal: undefined, deadline: Date.now() + 5000, budgetMs: 5000 });

function cluster(): DcsTestCluster {
  seq += 1;
  const prefix = `/vigil-contract/c${seq}-${process.pid}/`;
  const clients: { dcs: Dcs; proxy: CutProxy }[] = [];
  // An independent reader, straight to the server (no proxy).
  const inspector = new ZookeeperBackend({ hosts: [zk.endpoint], prefix, name: 'inspector', ttl: 10, retryTimeout: 5 });
  const proxyOf = (client: Dcs): CutProxy => {
    const p = clients.find((c) => c.dcs === client)?.proxy;
    if (!p) throw new Error('unknown client');
    return p;
  };
  const pending: Promise<CutProxy>[] = [];
  return {
    ttl: TTL,
    client(name) {
      // The proxy starts asynchronously; the client's first connection waits for nothing else,
      // so its endpoint must be known now: take a proxy made in advance.
      const proxy = spareProxies.shift();
      if (!proxy) throw new Error('no spare proxy');
      pending.push(startCutProxy(zk.endpoint).then((p) => (spareProxies.push(p), p)));
      const dcs = createDcs({ zookeeper: { hosts: [proxy.endpoint] } }, { prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT });
      clients.push({ dcs, proxy });
      return dcs;
    },
    session: sessionOf,
    async expireSession(client) {
      const id = sessionOf(client);
      if (id === undefined) throw new Error('the client holds no session');
      const proxy = proxyOf(client);
      proxy.cut();
      try {
        // ZooKeeper's own expiry: none of the session's ephemeral znodes is left.
        for (let i = 0; i < 300; i++) {
          const { kvs } = await inspector.readTree(op());
          if (!kvs.some((kv) => kv.lease === id)) break;
          await sleep(100);
        }
        // And the client's own timer has run out too (its session timeout since it was cut off).
        await sleep(TTL * 1000);
      } finally {
        proxy.heal();
      }
    },
    async elapse(ms) {
      await sleep(ms);
    },
    async unreachable(client, fn) {
      client.setRetryTimeout(1);
      const proxy = proxyOf(client);
      proxy.cut();
      try {
        return await fn();
      } finally {
        proxy.heal();
        client.setRetryTimeout(RETRY_TIMEOUT);
      }
    },
    async raw(rel) {
      const kv = await inspector.get(rel, op());
      return kv === undefined ? undefined : { value: kv.value, session: kv.lease };
    },
    async writeRaw(rel, value) {
      await inspector.put(rel, value, {}, op());
    },
    async close() {
      await Promise.all(clients.map((c) => c.dcs.close()));
      await Promise.all(clients.map((c) => c.proxy.close()));
      await Promise.all(pending);
      await inspector.close(undefined);
    },
  };
}

const spareProxies: CutProxy[] = [];

dcsContract('ZooKeeper (real ZooKeeper 3.8)', {
  async setup() {
    zk = await startZookeeper();
    for (let i = 0; i < 4; i++) spareProxies.push(await startCutProxy(zk.endpoint));
  },
  async teardown() {
    await Promise.all(spareProxies.map((p) => p.close()));
    await zk?.stop();
  },
  cluster,
});
