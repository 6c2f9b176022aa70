// The Dcs contract (contract.ts) against the simulated etcd (src/sim/dcs.ts) on a simulated clock.
// Run: node --import tsx --test test/dcs/contract-sim.test.ts

import { SimDcs } from '../../src/sim/dcs.ts';
import { SimDcsClient } from '../../src/sim/dcs-client.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

const TTL = 30;
const STEP_MS = 100;

function sim(client: Dcs): SimDcsClient {
  if (!(client instanceof SimDcsClient)) throw new Error('not a SimDcsClient');
  return client;
}

function cluster(): DcsTestCluster {
  let now = 0;
  const dcs = new SimDcs(() => now, '/service/contract/');
  const clients: Dcs[] = [];
  /** The world's step: the clock moves in steps; each one expires leases and wakes due watches. */
  const elapse = (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= STEP_MS) {
      now += Math.min(STEP_MS, left);
      dcs.tick();
    }
    return Promise.resolve();
  };
  return {
    ttl: TTL,
    client(name) {
      const d = new SimDcsClient(dcs, name, { ttl: TTL });
      clients.push(d);
      return d;
    },
    session: (client) => sim(client).session,
    async expireSession(client) {
      const id = sim(client).leaseId;
      if (id === undefined) throw new Error('the client holds no session');
      const lease = dcs.leaseOf(id);
      if (lease !== undefined) await elapse(lease.expiresAt - now);
      if (dcs.leaseOf(id) !== undefined) throw new Error(`lease ${id} did not expire`);
    },
    elapse,
    async unreachable(client, fn) {
      const name = sim(client).name;
      dcs.partitioned.add(name);
      try {
        return await fn();
      } finally {
        dcs.partitioned.delete(name);
      }
    },
    raw(rel) {
      const kv = dcs.raw(rel);
      return Promise.resolve(kv === undefined ? undefined : { value: kv.value, session: String(kv.lease) });
    },
    writeRaw(rel, value) {
      dcs.putKey('another-tool', rel, value);
      return Promise.resolve();
    },
    async close() {
      await Promise.all(clients.map((d) => d.close()));
    },
  };
}

dcsContract('simulated etcd', { cluster });
