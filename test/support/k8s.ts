// Starting the FAKE Kubernetes API server (k8s-fake.ts) for tests, with a throwaway PKI (HTTPS with
// a private CA, as in a cluster) and a bearer token; and the options of a KubernetesDcs client of it.

import { readFile } from 'node:fs/promises';

import { makePki, type Pki } from './pki.ts';
import { K8sFake } from './k8s-fake.ts';
import type { KubernetesDcsOptions } from '../../src/dcs/kubernetes.ts';

export const TOKEN = 'fake-service-account-token';

export interface FakeK8s {
  fake: K8sFake;
  pki: Pki;
  ca: string;
  stop(): Promise<void>;
}

export async function startFakeK8s(): Promise<FakeK8s> {
  const pki = await makePki();
  const fake = new K8sFake({ cert: await readFile(pki.serverCert, 'utf8'), key: await readFile(pki.serverKey, 'utf8'), token: TOKEN });
  await fake.start();
  const ca = await readFile(pki.ca, 'utf8');
  return {
    fake,
    pki,
    ca,
    async stop() {
      await fake.stop();
      await pki.remove();
    },
  };
}

/** Seed a Pod as a StatefulSet would: the scope label and `labels`, a pod IP. */
export function seedPod(fake: K8sFake, namespace: string, name: string, labels: Record<string, string>, ip = '10.0.0.1'): void {
  fake.put(namespace, 'pods', { metadata: { name, labels }, spec: { containers: [{ name: 'vigil', image: 'vigil' }] }, status: { phase: 'Running', podIP: ip } });
}

/** Options of a client of the fake for member `name` of `scope` in `namespace` (Patroni's defaults). */
export function clientOptions(k: FakeK8s, namespace: string, scope: string, name: string, over: Partial<KubernetesDcsOptions> = {}): KubernetesDcsOptions {
  return {
    prefix: `/service/${scope}/`,
    scope,
    name,
    ttl: 30,
    retryTimeout: 3,
    namespace,
    labels: { application: 'vigil' },
    scopeLabel: 'cluster-name',
    roleLabel: 'role',
    leaderLabelValue: 'primary',
    followerLabelValue: 'replica',
    standbyLeaderLabelValue: 'primary',
    useEndpoints: false,
    ports: [{ port: 5432 }],
    api: { host: '127.0.0.1', port: k.fake.port, ca: k.ca, token: TOKEN },
    ...over,
  };
}
