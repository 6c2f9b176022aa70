// The Kubernetes DCS beyond the contract, against the FAKE API server (test/support/k8s-fake.ts):
// the pod role labels make the Services of examples/kubernetes select the primary; Patroni's
// annotations on the leader object and the reader-clock expiry of a record written by Patroni;
// Endpoints mode; credentials and errors; the factory.
// Run: node --import tsx --test test/dcs/kubernetes.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

import { DcsError } from '../../src/dcs/dcs.ts';
import { createDcs, DcsConfigError } from '../../src/dcs/factory.ts';
import { KubernetesDcs, type KubernetesDcsOptions } from '../../src/dcs/kubernetes.ts';
import { K8sApi, apiPath } from '../../src/dcs/kubernetes-api.ts';
import { parseKubernetesSettings } from '../../src/dcs/kubernetes-settings.ts';
import { clientOptions, seedPod, startFakeK8s, TOKEN, type FakeK8s } from '../support/k8s.ts';

const T = { timeout: 30_000 };
const LABELS = { application: 'vigil', 'cluster-name': 'batman' };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/;

let k8s: FakeK8s;
let seq = 0;
const dcsList: KubernetesDcs[] = [];

before(async () => {
  k8s = await startFakeK8s();
});
after(async () => {
  for (const d of dcsList) await d.close({ keepLease: true });
  await k8s.stop();
});

function setup(names: string[], over: Partial<KubernetesDcsOptions> = {}): { ns: string; clients: KubernetesDcs[]; clock: { offset: number } } {
  const ns = `k8s-${++seq}`;
  const clock = { offset: 0 };
  const clients = names.map((name, i) => {
    seedPod(k8s.fake, ns, name, LABELS, `10.0.0.${i + 1}`);
    const d = new KubernetesDcs({ ...clientOptions(k8s, ns, 'batman', name), now: () => Date.now() + clock.offset, ...over });
    dcsList.push(d);
    return d;
  });
  return { ns, clients, clock };
}

function api(token = TOKEN): K8sApi {
  return new K8sApi({ host: '127.0.0.1', port: k8s.fake.port, ca: k8s.ca, token });
}
const op = (): { signal: undefined; deadline: number; budgetMs: number } => ({ signal: undefined, deadline: Date.now() + 3000, budgetMs: 3000 });

/** Pod names the API server returns for a label selector (server-side selection, as a Service's). */
async function selected(ns: string, selector: Record<string, string>): Promise<string[]> {
  const a = api();
  const labelSelector = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const r = await a.request('GET', apiPath(ns, 'pods', undefined, { labelSelector }), op());
  a.close();
  return (r.body.items as { metadata: { name: string } }[]).map((p) => p.metadata.name).sort();
}

const annotations = (ns: string, resource: string, name: string): Record<string, string> =>
  ((k8s.fake.object(ns, resource, name)?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {});
const labels = (ns: string, name: string): Record<string, string> => ((k8s.fake.object(ns, 'pods', name)?.metadata as { labels?: Record<string, string> }).labels ?? {});

describe('Kubernetes DCS (fake API server)', () => {
  it('the role labels make the example Services select the primary, and follow a switchover', T, async () => {
    const docs = parseAllDocuments(readFileSync(new URL('../../examples/kubernetes/services.yaml', import.meta.url), 'utf8')).map((d) => d.toJS() as { metadata: { name: string }; spec: { selector: Record<string, string> } });
    const selector = (name: string): Record<string, string> => {
      const s = docs.find((d) => d.metadata.name === name)?.spec.selector;
      assert.ok(s, `service ${name} in examples/kubernetes/services.yaml`);
      return s;
    };
    const { ns, clients } = setup(['batman-0', 'batman-1', 'batman-2']);
    const [a, b, c] = clients as [KubernetesDcs, KubernetesDcs, KubernetesDcs];
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ state: 'running', role: 'primary' });
    await b.touchMember({ state: 'running', role: 'replica' });
    await c.touchMember({ state: 'running', role: 'replica' });
    assert.deepEqual(await selected(ns, selector('batman-primary')), ['batman-0']);
    assert.deepEqual(await selected(ns, selector('batman-replica')), ['batman-1', 'batman-2']);

    // Switchover to batman-1; batman-2 stops (not running: no role label, in neither Service).
    assert.equal(await a.releaseLeader(), true);
    assert.equal(await b.acquireLeader(), true);
    await b.touchMember({ state: 'running', role: 'primary' });
    await a.touchMember({ state: 'running', role: 'replica' });
    await c.touchMember({ state: 'stopped', role: 'replica' });
    assert.deepEqual(await selected(ns, selector('batman-primary')), ['batman-1']);
    assert.deepEqual(await selected(ns, selector('batman-replica')), ['batman-0']);
    assert.equal(labels(ns, 'batman-2').role, undefined);
  });

  it('standby leader, tmp_role_label and bootstrap_labels', T, async () => {
    const { ns, clients } = setup(['n0', 'n1'], { tmpRoleLabel: 'tmp-role', bootstrapLabels: { bootstrapping: 'true' }, standbyLeaderLabelValue: 'standby-leader' });
    const [a, b] = clients as [KubernetesDcs, KubernetesDcs];
    await b.touchMember({ state: 'creating replica', role: 'uninitialized' });
    assert.deepEqual(labels(ns, 'n1'), { ...LABELS, bootstrapping: 'true' });
    await b.touchMember({ state: 'running', role: 'replica' });
    assert.deepEqual(labels(ns, 'n1'), { ...LABELS, role: 'replica', 'tmp-role': 'replica' });
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ state: 'running', role: 'standby_leader' });
    assert.deepEqual(labels(ns, 'n0'), { ...LABELS, role: 'standby-leader', 'tmp-role': 'primary' });
    await a.deleteMember();
    assert.deepEqual(labels(ns, 'n0'), LABELS);
    assert.equal(annotations(ns, 'pods', 'n0').status, undefined);
  });

  it("the leader object carries Patroni's annotations; a refresh rewrites renewTime only; a takeover counts a transition", T, async () => {
    const { ns, clients, clock } = setup(['a', 'b']);
    const [a, b] = clients as [KubernetesDcs, KubernetesDcs];
    assert.equal(await a.acquireLeader(), true);
    const first = annotations(ns, 'configmaps', 'batman-leader');
    assert.equal(first.leader, 'a');
    assert.equal(first.ttl, '30');
    assert.equal(first.transitions, '0');
    assert.match(first.acquireTime ?? '', ISO);
    assert.equal(first.renewTime, first.acquireTime);
    assert.deepEqual((k8s.fake.object(ns, 'configmaps', 'batman-leader')?.metadata as { labels: unknown }).labels, LABELS);
    assert.equal(await a.refreshLeader(), true);
    const renewed = annotations(ns, 'configmaps', 'batman-leader');
    assert.equal(renewed.acquireTime, first.acquireTime);
    assert.notEqual(renewed.renewTime, first.renewTime);
    assert.match(renewed.renewTime ?? '', ISO);

    await b.readCluster(); // b observes the record now; it expires ttl later on b's clock
    assert.equal(await b.acquireLeader(), false);
    clock.offset += 31_000;
    assert.equal((await b.readCluster()).leader, undefined, 'not renewed for ttl: gone for b');
    assert.equal(await b.acquireLeader(), true);
    const taken = annotations(ns, 'configmaps', 'batman-leader');
    assert.equal(taken.leader, 'b');
    assert.equal(taken.transitions, '1');
    assert.equal(await a.refreshLeader(), false);
  });

  it("a record written by Patroni: valid for ttl from when the reader saw it change, whatever its timestamps say", T, async () => {
    const { ns, clients, clock } = setup(['a']);
    const [a] = clients as [KubernetesDcs];
    const record = { leader: 'pg0', acquireTime: '2020-01-01T00:00:00.000000+00:00', renewTime: '2020-01-01T00:00:00.000000+00:00', ttl: '20', transitions: '3', optime: '67395656', slots: '{"pg1":67395656}' };
    k8s.fake.put(ns, 'configmaps', { metadata: { name: 'batman-leader', labels: LABELS, annotations: record } });
    k8s.fake.put(ns, 'configmaps', { metadata: { name: 'batman-config', labels: LABELS, annotations: { config: '{"ttl":20}', initialize: '7268616322854375442', history: '[[1,67395656,"no recovery target specified"]]' } } });
    k8s.fake.put(ns, 'configmaps', { metadata: { name: 'batman-sync', labels: LABELS, annotations: { leader: 'pg0', sync_standby: 'pg1', quorum: '0' } } });
    k8s.fake.put(ns, 'configmaps', { metadata: { name: 'batman-failover', labels: LABELS, annotations: { member: 'pg1' } } });
    seedPod(k8s.fake, ns, 'pg0', LABELS);
    k8s.fake.put(ns, 'pods', { metadata: { name: 'pg0', labels: LABELS, annotations: { status: '{"conn_url":"postgres://10.0.0.9:5432/postgres","api_url":"http://10.0.0.9:8008/patroni","state":"running","role":"primary"}' } } });
    k8s.fake.put(ns, 'pods', { metadata: { name: 'stranger', labels: { application: 'other' }, annotations: { status: '{}' } } });

    const v = await a.readCluster();
    assert.equal(v.leader?.name, 'pg0');
    assert.deepEqual(v.status, { optime: 67395656, slots: { pg1: 67395656 } });
    assert.deepEqual(v.config, { ttl: 20 });
    assert.equal(v.initialize, '7268616322854375442');
    assert.deepEqual(v.history, [[1, 67395656, 'no recovery target specified']]);
    assert.deepEqual({ ...v.sync, version: '' }, { version: '', leader: 'pg0', sync_standby: 'pg1', quorum: 0 });
    assert.equal(v.failover?.member, 'pg1');
    assert.deepEqual(v.members.map((m) => [m.name, m.data.role]), [['pg0', 'primary']], 'pods outside the selector are not members');

    clock.offset += 15_000;
    assert.equal((await a.readCluster()).leader?.name, 'pg0', 'within the ttl annotation (20 s)');
    k8s.fake.put(ns, 'configmaps', { metadata: { name: 'batman-leader', labels: LABELS, annotations: { ...record, renewTime: '2020-01-01T00:00:10.000000+00:00' } } });
    assert.equal((await a.readCluster()).leader?.name, 'pg0'); // the renewal, seen now
    clock.offset += 15_000;
    assert.equal((await a.readCluster()).leader?.name, 'pg0', 'the renewal restarted the ttl on our clock');
    clock.offset += 6_000;
    assert.equal((await a.readCluster()).leader, undefined, '21 s since we saw it change: expired');
    assert.equal(await a.acquireLeader(), true);
    assert.equal(annotations(ns, 'configmaps', 'batman-leader').transitions, '4');
  });

  it("watchLeader sleeps through the holder's renewals and status writes, and wakes when the holder changes", T, async () => {
    const { clients } = setup(['a', 'b']);
    const [a, b] = clients as [KubernetesDcs, KubernetesDcs];
    assert.equal(await a.acquireLeader(), true);
    const rev = (await b.readCluster()).revision;
    const started = Date.now();
    const sleeping = b.watchLeader(rev, 1500);
    assert.equal(await a.refreshLeader(), true);
    await a.writeStatus({ optime: 100 });
    assert.equal(await a.refreshLeader(), true);
    await sleeping;
    assert.ok(Date.now() - started >= 1500, 'resolved by its timeout, not by a renewal');
    const woken = b.watchLeader(rev, 600_000);
    assert.equal(await a.releaseLeader(), true);
    await woken;
  });

  it('Endpoints mode: the leader Endpoints points at the primary pod; release empties it; the config Service exists', T, async () => {
    const { ns, clients } = setup(['a'], { useEndpoints: true, podIp: '10.0.0.1', ports: [{ name: 'postgresql', port: 5432 }] });
    const [a] = clients as [KubernetesDcs];
    assert.equal(await a.attemptInitialize(), true);
    assert.equal(await a.acquireLeader(), true);
    const ep = k8s.fake.object(ns, 'endpoints', 'batman') as { subsets: unknown; metadata: { annotations: Record<string, string> } };
    assert.equal(ep.metadata.annotations.leader, 'a');
    assert.deepEqual(ep.subsets, [{ addresses: [{ ip: '10.0.0.1', targetRef: { kind: 'Pod', namespace: ns, name: 'a' } }], ports: [{ name: 'postgresql', port: 5432 }] }]);
    assert.ok(k8s.fake.object(ns, 'endpoints', 'batman-config'));
    assert.equal((k8s.fake.object(ns, 'services', 'batman-config') as { spec: { clusterIP: string } }).spec.clusterIP, 'None');
    assert.equal(k8s.fake.object(ns, 'configmaps', 'batman-leader'), undefined);
    assert.equal(await a.releaseLeader(), true);
    assert.deepEqual((k8s.fake.object(ns, 'endpoints', 'batman') as { subsets: unknown }).subsets, []);
  });

  it('a wrong token is DCS_AUTH; a member without its pod is DCS_PROTOCOL naming the pod', T, async () => {
    const { ns } = setup([]);
    const bad = new KubernetesDcs({ ...clientOptions(k8s, ns, 'batman', 'x'), api: { host: '127.0.0.1', port: k8s.fake.port, ca: k8s.ca, token: 'wrong' } });
    await assert.rejects(bad.readCluster(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_AUTH' && !err.retryable);
    await bad.close();
    const nopod = new KubernetesDcs(clientOptions(k8s, ns, 'batman', 'ghost'));
    await assert.rejects(nopod.touchMember({ state: 'running' }), (err: unknown) => err instanceof DcsError && err.code === 'DCS_PROTOCOL' && /pod ghost not found/.test(err.message));
    await nopod.close();
  });

  it('500, 503, 504 and retriable_http_codes are retried within retry_timeout; other statuses are not', T, async () => {
    const { clients } = setup(['r0'], { api: { host: '127.0.0.1', port: k8s.fake.port, ca: k8s.ca, token: TOKEN, retriableHttpCodes: [429] } });
    const [a] = clients as [KubernetesDcs];
    k8s.fake.failNext(2, 503);
    assert.equal(await a.acquireLeader(), true);
    k8s.fake.failNext(2, 429);
    assert.equal(await a.refreshLeader(), true);
    k8s.fake.failNext(1, 502);
    await assert.rejects(a.readCluster(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_PROTOCOL' && /502/.test(err.message));
    k8s.fake.failNext(1_000_000, 503);
    a.setRetryTimeout(1);
    await assert.rejects(a.readCluster(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_UNAVAILABLE' && err.retryable && /503/.test(err.message));
    k8s.fake.failNext(0, 0);
    a.setRetryTimeout(3);
    assert.equal((await a.readCluster()).leader?.name, 'r0');
  });

  it('the token file is read (the service-account way); the factory makes a client from the settings', T, async () => {
    const tokenFile = join(k8s.pki.dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    const a = new K8sApi({ host: '127.0.0.1', port: k8s.fake.port, ca: k8s.ca, tokenFile });
    assert.equal((await a.request('GET', apiPath('default', 'pods'), op())).status, 200);
    a.close();

    const { ns } = setup(['f0']);
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(k8s.fake.port) };
    const parsed = parseKubernetesSettings({ labels: { application: 'vigil' }, namespace: ns, cacert: k8s.pki.ca, token: TOKEN }, env);
    assert.ok(parsed.settings, JSON.stringify(parsed.issues));
    const d = createDcs({ kubernetes: parsed.settings }, { prefix: '/service/batman/', name: 'f0', ttl: 30, retryTimeout: 3 });
    assert.ok(d instanceof KubernetesDcs);
    assert.equal(await d.acquireLeader(), true);
    assert.equal(annotations(ns, 'configmaps', 'batman-leader').leader, 'f0');
    await d.close();
    assert.throws(() => createDcs({ kubernetes: { ...parsed.settings, cacert: '/nonexistent/ca.crt' } }, { prefix: '/service/batman/', name: 'f0', ttl: 30, retryTimeout: 3 }),
      (err: unknown) => err instanceof DcsConfigError && /kubernetes\.cacert/.test(err.message));
  });
});
