// The Dcs contract (contract.ts) against a real etcd 3.4 on loopback, through the factory.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/contract-etcd3.test.ts

import { setTimeout as sleep } from 'node:timers/promises';

import { startEtcd, type EtcdServer } from '../support/etcd.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { KvDcs } from '../../src/dcs/kv-dcs.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

/** etcd's smallest lease TTL is 2 s with the default election timeout; 3 s keeps a margin. */
const TTL = 3;
const RETRY_TIMEOUT = 3;

let etcd: EtcdServer;
let seq = 0;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A plain gateway call, independent of the client under test. */
async function gateway<T>(path: string, body: object): Promise<T> {
  const res = await fetch(`http://${etcd.endpoint}/v3${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  return (await res.json()) as T;
}

function sessionOf(client: Dcs): string | undefined {
  if (!(client instanceof KvDcs)) throw new Error('not a KvDcs');
  return client.session;
}

function cluster(): DcsTestCluster {
  seq += 1;
  const prefix = `/vigil-contract/c${seq}-${process.pid}/`;
  const clients: Dcs[] = [];
  return {
    ttl: TTL,
    client(name) {
      const d = createDcs({ etcd3: { hosts: [etcd.endpoint], protocol: 'http' } }, { prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT });
      clients.push(d);
      return d;
    },
    session: sessionOf,
    async expireSession(client) {
      const id = sessionOf(client);
      if (id === undefined) throw new Error('the client holds no session');
      // Wait for etcd's own expiry (no revoke): the lease is gone once timetolive reports -1.
      for (let i = 0; i < 300; i++) {
        const r = await gateway<{ TTL?: string }>('/lease/timetolive', { ID: id });
        if (r.TTL === '-1') return;
        await sleep(100);
      }
      throw new Error(`lease ${id} did not expire within 30 s`);
    },
    async elapse(ms) {
      await sleep(ms);
    },
    async unreachable(client, fn) {
      client.setRetryTimeout(1);
      await etcd.pause();
      try {
        return await fn();
      } finally {
        etcd.resume();
        client.setRetryTimeout(RETRY_TIMEOUT);
      }
    },
    async raw(rel) {
      const r = await gateway<{ kvs?: { value?: string; lease?: string }[] }>('/kv/range', { key: b64(prefix + rel) });
      const kv = r.kvs?.[0];
      if (kv === undefined) return undefined;
      return { value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'), session: kv.lease ?? '0' };
    },
    async writeRaw(rel, value) {
      await gateway('/kv/put', { key: b64(prefix + rel), value: b64(value) });
    },
    async close() {
      await Promise.all(clients.map((d) => d.close()));
    },
  };
}

dcsContract('etcd3 (real etcd)', {
  async setup() {
    etcd = await startEtcd();
  },
  async teardown() {
    await etcd?.stop();
  },
  cluster,
});
