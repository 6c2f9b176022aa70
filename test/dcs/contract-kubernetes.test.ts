// The Dcs contract (contract.ts) through the Kubernetes DCS against the FAKE Kubernetes API server
// (test/support/k8s-fake.ts; no real API server can be installed here). The leader lease is judged
// by each reader's clock (Patroni's rule), so the clients share a clock that expireSession moves
// forward by ttl instead of sleeping. Members are Pod annotations without a session
// (memberSessions: false). Run: node --import tsx --test test/dcs/contract-kubernetes.test.ts

import { setTimeout as sleep } from 'node:timers/promises';

import type { Dcs } from '../../src/dcs/dcs.ts';
import { compactJson } from '../../src/dcs/codec.ts';
import { KubernetesDcs } from '../../src/dcs/kubernetes.ts';
import { clientOptions, seedPod, startFakeK8s, type FakeK8s } from '../support/k8s.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

const TTL = 30;
const RETRY_TIMEOUT = 3;

let k8s: FakeK8s;
let seq = 0;

function k8sOf(client: Dcs): KubernetesDcs {
  if (!(client instanceof KubernetesDcs)) throw new Error('not a KubernetesDcs');
  return client;
}

type Ann = Record<string, string | undefined>;

function cluster(): DcsTestCluster {
  seq += 1;
  const namespace = `contract-${seq}`;
  const scope = 'batman';
  const clients: Dcs[] = [];
  let offset = 0;
  const now = (): number => Date.now() + offset;
  const ann = (resource: string, name: string): Ann | undefined => {
    const o = k8s.fake.object(namespace, resource, name);
    return o === undefined ? undefined : (((o.metadata as Record<string, unknown>).annotations ?? {}) as Ann);
  };
  return {
    ttl: TTL,
    memberSessions: false,
    client(name) {
      seedPod(k8s.fake, namespace, name, { application: 'vigil', 'cluster-name': scope });
      const d = new KubernetesDcs({ ...clientOptions(k8s, namespace, scope, name), ttl: TTL, retryTimeout: RETRY_TIMEOUT, now });
      clients.push(d);
      return d;
    },
    session: (client) => k8sOf(client).session,
    expireSession(client) {
      if (k8sOf(client).session === undefined) throw new Error('the client holds no lease');
      offset += (TTL + 1) * 1000;
      return Promise.resolve();
    },
    async elapse(ms) {
      await sleep(ms);
    },
    async unreachable(client, fn) {
      client.setRetryTimeout(1);
      k8s.fake.pause();
      try {
        return await fn();
      } finally {
        k8s.fake.resume();
        client.setRetryTimeout(RETRY_TIMEOUT);
      }
    },
    raw(rel) {
      // The logical value, rebuilt from the annotations as Patroni stores them.
      const leader = ann('configmaps', `${scope}-leader`) ?? {};
      const config = ann('configmaps', `${scope}-config`) ?? {};
      let value: string | undefined;
      let session = '';
      if (rel === 'leader') {
        value = leader.leader;
        session = leader.acquireTime ?? '';
      } else if (rel === 'config' || rel === 'initialize' || rel === 'history') value = config[rel];
      else if (rel === 'failsafe') value = leader.failsafe;
      else if (rel === 'status' && leader.optime !== undefined) {
        value = compactJson({
          optime: Number(leader.optime),
          ...(leader.slots !== undefined ? { slots: JSON.parse(leader.slots) as unknown } : {}),
          ...(leader.retain_slots !== undefined ? { retain_slots: JSON.parse(leader.retain_slots) as unknown } : {}),
        });
      } else if (rel === 'failover') {
        const f = ann('configmaps', `${scope}-failover`);
        if (f !== undefined) value = compactJson({ leader: f.leader, member: f.member, scheduled_at: f.scheduled_at });
      } else if (rel === 'sync') {
        const s = ann('configmaps', `${scope}-sync`);
        if (s?.leader !== undefined) value = compactJson({ leader: s.leader, quorum: s.quorum === undefined ? null : Number(s.quorum), sync_standby: s.sync_standby ?? null });
      } else if (rel.startsWith('members/')) value = ann('pods', rel.slice('members/'.length))?.status;
      return Promise.resolve(value === undefined ? undefined : { value, session });
    },
    writeRaw(rel, value) {
      // The config annotation of <scope>-config, as Patroni keeps /config; labelled like every
      // object of the cluster so the clients' label selector finds it.
      const name = `${scope}-config`;
      const cur = k8s.fake.object(namespace, 'configmaps', name);
      const meta = (cur?.metadata ?? { name, labels: { application: 'vigil', 'cluster-name': scope } }) as Record<string, unknown>;
      k8s.fake.put(namespace, 'configmaps', { ...cur, metadata: { ...meta, annotations: { ...((meta.annotations ?? {}) as Ann), [rel]: value } } });
      return Promise.resolve();
    },
    async close() {
      await Promise.all(clients.map((d) => d.close()));
    },
  };
}

dcsContract('kubernetes (fake API server)', {
  async setup() {
    k8s = await startFakeK8s();
  },
  async teardown() {
    await k8s?.stop();
  },
  cluster,
});
