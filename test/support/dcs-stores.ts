// The DCS a test cluster (cluster.ts) runs on, other than the etcd LocalCluster starts itself: the
// FAKE Consul agent (consul-fake.ts), the FAKE Kubernetes API server (k8s-fake.ts, through
// k8s.ts), run in the test process, a real ZooKeeper 3.8 (zookeeper.ts), or a real etcd serving its
// v2 API (etcd-cluster.ts, --enable-v2, written as Patroni's `etcd` section). Each gives the LocalCluster `store` (the section every node's
// file carries and the agents' environment), a way to make the DCS unreachable and back (requests
// held unanswered, as by a frozen or cut-off server), and a control client read from a node's own
// configuration file, as `vigil` commands build it.

import { ConsulFake } from './consul-fake.ts';
import { seedPod, startFakeK8s, TOKEN, type FakeK8s } from './k8s.ts';
import { startZookeeper, type ZookeeperServer } from './zookeeper.ts';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster.ts';
import { clusterPrefix } from '../../src/dcs/codec.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import type { DcsStore, LocalCluster } from '../../src/local/cluster.ts';

export type StoreKind = 'consul' | 'kubernetes' | 'zookeeper' | 'etcd2';

export interface RunningStore {
  kind: StoreKind;
  /** For LocalClusterOptions.store. */
  store: DcsStore;
  /** Environment for `vigil` commands run against the cluster (the agents get it through store.env). */
  env: Record<string, string>;
  /** Hold every request unanswered (the DCS is lost to everyone) / answer again. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  consul?: ConsulFake;
  k8s?: FakeK8s;
  zookeeper?: ZookeeperServer;
  etcd2?: EtcdCluster;
}

/** Labels of the pods in the tests' Kubernetes namespace (every object of the cluster carries them). */
export const K8S_LABELS = { application: 'vigil' };
export const K8S_NAMESPACE = 'default';

/**
 * Start the fake for a cluster `scope` of members `names` (Kubernetes: their Pods are created, as a
 * StatefulSet would, with the scope label Patroni selects on).
 */
export async function startStore(kind: StoreKind, scope: string, names: string[]): Promise<RunningStore> {
  if (kind === 'consul') {
    // Session TTL = ttl / 2 (Patroni); a real agent's session_ttl_min (default 10 s) is lowered so
    // that fast test timings (ttl 10) are taken as they are.
    const consul = await ConsulFake.start({ sessionTtlMinMs: 1000 });
    return {
      kind,
      store: { section: 'consul', settings: { host: consul.address, register_service: true } },
      env: {},
      pause: () => consul.pause(),
      resume: () => consul.resume(),
      stop: () => consul.stop(),
      consul,
    };
  }
  if (kind === 'zookeeper') {
    // A real ZooKeeper 3.8 (not a fake); pause = SIGSTOP, its sessions then time out.
    const zookeeper = await startZookeeper();
    return {
      kind,
      store: { section: 'zookeeper', settings: { hosts: [zookeeper.endpoint] } },
      env: {},
      pause: () => zookeeper.pause(),
      resume: () => zookeeper.resume(),
      stop: () => zookeeper.stop(),
      zookeeper,
    };
  }
  if (kind === 'etcd2') {
    // A real one-member etcd with --enable-v2; pause = SIGSTOP (its TTL keys keep their expiry
    // times and run out once it is thawed).
    const etcd2 = await startEtcdCluster({ members: 1, enableV2: true });
    const member = etcd2.members[0]!;
    return {
      kind,
      store: { section: 'etcd', settings: { hosts: etcd2.endpoints } },
      env: {},
      pause: () => void member.pause(),
      resume: () => member.resume(),
      stop: () => etcd2.stop(),
      etcd2,
    };
  }
  const k8s = await startFakeK8s();
  for (const name of names) seedPod(k8s.fake, K8S_NAMESPACE, name, { ...K8S_LABELS, 'cluster-name': scope }, '127.0.0.1');
  const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(k8s.fake.port) };
  return {
    kind,
    store: { section: 'kubernetes', settings: { namespace: K8S_NAMESPACE, labels: K8S_LABELS, cacert: k8s.pki.ca, token: TOKEN }, env },
    env,
    pause: () => k8s.fake.pause(),
    resume: () => k8s.fake.resume(),
    stop: () => k8s.stop(),
    k8s,
  };
}

/** A control-mode client of the cluster's DCS, from the first node's configuration file and `env`. */
export async function ctlDcsFromConfig(cluster: LocalCluster, env: Record<string, string>): Promise<Dcs> {
  const file = cluster.nodes[0]!.configFile;
  const { config, issues } = await loadConfigFile(file, { ...process.env, ...env });
  if (config === undefined) throw new Error(`${file}: ${JSON.stringify(issues)}`);
  return createDcs(config, { prefix: clusterPrefix(config.namespace, config.scope), name: 'test', ttl: 30, retryTimeout: 3, ctl: true });
}
