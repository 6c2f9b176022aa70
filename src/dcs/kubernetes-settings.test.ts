// parseKubernetesSettings: Patroni's defaults, every key implemented or refused by name, the
// PATRONI_KUBERNETES_* environment (winning over the file), the in-cluster API server address.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseKubernetesSettings, SERVICE_ACCOUNT_DIR } from './kubernetes-settings.ts';

const POD = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
const errors = (r: ReturnType<typeof parseKubernetesSettings>): string[] => r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);

test("Patroni's defaults; the API server and credentials of the pod", () => {
  const r = parseKubernetesSettings({ labels: { application: 'vigil' } }, POD);
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.settings, {
    namespace: 'default',
    labels: { application: 'vigil' },
    scopeLabel: 'cluster-name',
    roleLabel: 'role',
    leaderLabelValue: 'primary',
    followerLabelValue: 'replica',
    standbyLeaderLabelValue: 'primary',
    tmpRoleLabel: undefined,
    useEndpoints: false,
    podIp: undefined,
    ports: [{ port: 5432 }],
    cacert: `${SERVICE_ACCOUNT_DIR}/ca.crt`,
    token: undefined,
    tokenFile: `${SERVICE_ACCOUNT_DIR}/token`,
    retriableHttpCodes: [],
    bootstrapLabels: undefined,
    apiHost: '10.96.0.1',
    apiPort: 443,
  });
});

test('every key of the section is read', () => {
  const r = parseKubernetesSettings({
    namespace: 'db', labels: { application: 'vigil', tier: 'db' }, scope_label: 'cluster', role_label: 'pg-role', leader_label_value: 'master',
    follower_label_value: 'standby', standby_leader_label_value: 'standby-leader', tmp_role_label: 'tmp-role', use_endpoints: true, pod_ip: '10.1.2.3',
    ports: [{ name: 'postgresql', port: 5433, protocol: 'TCP' }], cacert: '/etc/ca.pem', token: 'abc', retriable_http_codes: [401, 429],
    bootstrap_labels: { bootstrapping: 'yes' }, bypass_api_service: false, ttl: 30, loop_wait: 10, retry_timeout: 10,
  }, POD);
  assert.deepEqual(r.issues, []);
  const s = r.settings;
  assert.ok(s);
  assert.equal(s.namespace, 'db');
  assert.equal(s.scopeLabel, 'cluster');
  assert.equal(s.roleLabel, 'pg-role');
  assert.equal(s.leaderLabelValue, 'master');
  assert.equal(s.followerLabelValue, 'standby');
  assert.equal(s.standbyLeaderLabelValue, 'standby-leader');
  assert.equal(s.tmpRoleLabel, 'tmp-role');
  assert.equal(s.useEndpoints, true);
  assert.equal(s.podIp, '10.1.2.3');
  assert.deepEqual(s.ports, [{ name: 'postgresql', port: 5433, protocol: 'TCP' }]);
  assert.equal(s.cacert, '/etc/ca.pem');
  assert.equal(s.token, 'abc');
  assert.deepEqual(s.retriableHttpCodes, [401, 429]);
  assert.deepEqual(s.bootstrapLabels, { bootstrapping: 'yes' });
});

test('refused by name: context (kubeconfig), bypass_api_service; labels required; pod_ip required with use_endpoints', () => {
  const r = parseKubernetesSettings({ context: 'kind-kind', bypass_api_service: true, use_endpoints: true }, POD);
  assert.equal(r.settings, undefined);
  const e = errors(r);
  assert.ok(e.some((m) => m.startsWith('kubernetes.context: is not supported')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('kubernetes.bypass_api_service: is not implemented')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('kubernetes.labels: is required')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('kubernetes.pod_ip: is required with use_endpoints')), e.join('\n'));
});

test('bad values are errors naming the key; unknown keys are warnings', () => {
  const r = parseKubernetesSettings({ labels: ['x'], use_endpoints: 'maybe', ports: [{ port: 0 }], retriable_http_codes: 'abc', bogus: 1 }, POD);
  const e = errors(r);
  assert.ok(e.some((m) => m.startsWith('kubernetes.labels: must be a map')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('kubernetes.use_endpoints: must be true or false')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('kubernetes.ports[0]: must be')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('kubernetes.retriable_http_codes: must be')), e.join('\n'));
  assert.deepEqual(r.issues.filter((i) => i.severity === 'warning').map((i) => i.path), ['kubernetes.bogus']);
});

test('outside a pod (no KUBERNETES_SERVICE_HOST): an error saying so', () => {
  const r = parseKubernetesSettings({ labels: { a: 'b' } }, {});
  assert.deepEqual(errors(r), ['KUBERNETES_SERVICE_HOST: is not set: the kubernetes DCS works from inside a pod, where Kubernetes sets KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT']);
});

test('PATRONI_KUBERNETES_* variables, converted as Patroni does, win over the file; errors name the variable', () => {
  const r = parseKubernetesSettings({ labels: { application: 'file' }, namespace: 'file' }, {
    ...POD,
    PATRONI_KUBERNETES_NAMESPACE: 'env',
    PATRONI_KUBERNETES_LABELS: 'application: vigil, tier: db',
    PATRONI_KUBERNETES_USE_ENDPOINTS: 'true',
    PATRONI_KUBERNETES_POD_IP: '10.0.0.7',
    PATRONI_KUBERNETES_PORTS: '{name: postgresql, port: 5432}',
    PATRONI_KUBERNETES_RETRIABLE_HTTP_CODES: '401,429',
    PATRONI_KUBERNETES_BOOTSTRAP_LABELS: '{boot: "1"}',
    PATRONI_KUBERNETES_TMP_ROLE_LABEL: 'tmp',
  });
  assert.deepEqual(r.issues, []);
  assert.equal(r.settings?.namespace, 'env');
  assert.deepEqual(r.settings?.labels, { application: 'vigil', tier: 'db' });
  assert.equal(r.settings?.useEndpoints, true);
  assert.equal(r.settings?.podIp, '10.0.0.7');
  assert.deepEqual(r.settings?.ports, [{ name: 'postgresql', port: 5432 }]);
  assert.deepEqual(r.settings?.retriableHttpCodes, [401, 429]);
  assert.deepEqual(r.settings?.bootstrapLabels, { boot: '1' });
  assert.equal(r.settings?.tmpRoleLabel, 'tmp');

  const bad = parseKubernetesSettings({ labels: { a: 'b' } }, { ...POD, PATRONI_KUBERNETES_CONTEXT: 'kind-kind' });
  assert.ok(errors(bad).some((m) => m.startsWith('PATRONI_KUBERNETES_CONTEXT: is not supported')));
});
