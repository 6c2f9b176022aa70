// The Dcs contract (contract.ts) through the Consul backend (factory -> ConsulDcs) against the FAKE
// Consul agent of test/support/consul-fake.ts: no real Consul server can be installed here, so this
// checks the backend against Consul's documented HTTP semantics as the fake reproduces them (see
// that file's header and docs/dcs-consul.md), not against Consul itself.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/contract-consul.test.ts

import { setTimeout as sleep } from 'node:timers/promises';

import { ConsulFake } from '../support/consul-fake.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { KvDcs } from '../../src/dcs/kv-dcs.ts';
import { parseConsulSettings } from '../../src/dcs/consul-settings.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

/** Patroni's ttl: sessions get TTL ttl/2 = 1 s, invalidated by the agent 2 s after the last renewal. */
const TTL = 2;
const RETRY_TIMEOUT = 3;
const TOKEN = 'contract-token';

let consul: ConsulFake;
let seq = 0;

function sessionOf(client: Dcs): string | undefined {
  if (!(client instanceof KvDcs)) throw new Error('not a KvDcs');
  return client.session;
}

/** A plain call to the fake, independent of the client under test. */
async function agent(path: string): Promise<Response> {
  return fetch(`http://${consul.address}${path}`, { headers: { 'x-consul-token': TOKEN }, signal: AbortSignal.timeout(5000) });
}

function cluster(): DcsTestCluster {
  seq += 1;
  const scope = `c${seq}-${process.pid}`;
  const prefix = `/vigil-contract/${scope}/`;
  const clients: Dcs[] = [];
  const { settings } = parseConsulSettings({ host: consul.address, token: TOKEN });
  if (settings === undefined) throw new Error('bad test settings');
  return {
    ttl: TTL,
    client(name) {
      const d = createDcs({ consul: settings }, { prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT });
      clients.push(d);
      return d;
    },
    session: sessionOf,
    async expireSession(client) {
      const id = sessionOf(client);
      if (id === undefined) throw new Error('the client holds no session');
      // The agent's own TTL expiry (no destroy): gone once session/info answers [].
      for (let i = 0; i < 300; i++) {
        const list = (await (await agent(`/v1/session/info/${id}`)).json()) as unknown[];
        if (list.length === 0) return;
        await sleep(100);
      }
      throw new Error(`session ${id} did not expire within 30 s`);
    },
    async elapse(ms) {
      await sleep(ms);
    },
    async unreachable(client, fn) {
      client.setRetryTimeout(1);
      consul.pause();
      try {
        return await fn();
      } finally {
        consul.resume();
        client.setRetryTimeout(RETRY_TIMEOUT);
      }
    },
    async raw(rel) {
      const res = await agent(`/v1/kv/${prefix.slice(1)}${rel}`);
      if (res.status === 404) return undefined;
      const [kv] = (await res.json()) as { Value: string | null; Session?: string }[];
      if (kv === undefined) return undefined;
      return { value: kv.Value === null ? '' : Buffer.from(kv.Value, 'base64').toString('utf8'), session: kv.Session ?? '' };
    },
    async close() {
      await Promise.all(clients.map((d) => d.close()));
    },
  };
}

dcsContract('consul (FAKE Consul agent, test/support/consul-fake.ts)', {
  async setup() {
    consul = await ConsulFake.start({ token: TOKEN, sessionTtlMinMs: 1000 });
  },
  async teardown() {
    await consul?.stop();
  },
  cluster,
});
