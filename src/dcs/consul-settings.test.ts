// The consul section parser: every key of Patroni's consul section, defaults, the environment.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseConsulSettings } from './consul-settings.ts';

const errors = (r: ReturnType<typeof parseConsulSettings>): string[] => r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
const warnings = (r: ReturnType<typeof parseConsulSettings>): string[] => r.issues.filter((i) => i.severity === 'warning').map((i) => `${i.path}: ${i.message}`);

test("defaults: Patroni's (127.0.0.1:8500, http, verify, default consistency, no checks, no service)", () => {
  for (const raw of [{}, null, undefined]) {
    const r = parseConsulSettings(raw);
    assert.deepEqual(r.issues, []);
    assert.deepEqual(r.settings, {
      host: '127.0.0.1:8500', scheme: 'http', verify: true, consistency: 'default', checks: [],
      registerService: false, serviceTags: [], serviceCheckInterval: '5s',
    });
  }
});

test('every key of the section', () => {
  const r = parseConsulSettings({
    host: 'consul.local:8501', scheme: 'https', token: 't0k', verify: false, cacert: '/tls/ca.crt', cert: '/tls/c.crt', key: '/tls/c.key',
    dc: 'dc2', consistency: 'consistent', checks: ['serfHealth'], register_service: true, service_tags: ['pg', 'ha'],
    service_check_interval: '10s', service_check_tls_server_name: 'pg.local',
  });
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.settings, {
    host: 'consul.local:8501', scheme: 'https', token: 't0k', verify: false, cacert: '/tls/ca.crt', cert: '/tls/c.crt', key: '/tls/c.key',
    dc: 'dc2', consistency: 'consistent', checks: ['serfHealth'], registerService: true, serviceTags: ['pg', 'ha'],
    serviceCheckInterval: '10s', serviceCheckTlsServerName: 'pg.local',
  });
});

test('host, port and url: url wins (its scheme too); an explicit port wins over the one in host', () => {
  assert.equal(parseConsulSettings({ host: '10.0.0.5' }).settings?.host, '10.0.0.5:8500');
  assert.equal(parseConsulSettings({ host: '10.0.0.5:1234', port: 8600 }).settings?.host, '10.0.0.5:8600');
  assert.equal(parseConsulSettings({ host: '[::1]:8500' }).settings?.host, '[::1]:8500');
  const url = parseConsulSettings({ url: 'https://consul.local:8501', host: 'ignored:1' });
  assert.equal(url.settings?.host, 'consul.local:8501');
  assert.equal(url.settings?.scheme, 'https');
  assert.deepEqual(warnings(url), ['consul.host: ignored: url is set']);
  assert.equal(parseConsulSettings({ url: 'http://c' }).settings?.host, 'c:8500');
});

test('bad values are errors naming the key; unknown keys warn', () => {
  const r = parseConsulSettings({
    host: 'a:b:c', scheme: 'gopher', consistency: 'eventual', verify: 'maybe', checks: { a: 1 }, service_check_interval: 'soon', key: '/k', weird: 1,
  });
  assert.equal(r.settings, undefined);
  assert.deepEqual(errors(r).sort(), [
    'consul.checks: expected a list of strings, got {"a":1}',
    'consul.consistency: expected default, consistent or stale, got "eventual"',
    'consul.host: expected host or host:port, got "a:b:c"',
    'consul.key: set without cert',
    'consul.scheme: expected http or https, got "gopher"',
    'consul.service_check_interval: expected a duration such as 5s, got "soon"',
    'consul.verify: expected a boolean, got "maybe"',
  ]);
  assert.ok(warnings(r).includes("consul.weird: unknown key, ignored (not a key of Patroni's consul section)"));
  assert.deepEqual(errors(parseConsulSettings({ url: 'consul:8500' })), ['consul.url: expected http://host:port or https://host:port, got "consul:8500"']);
  assert.deepEqual(errors(parseConsulSettings({ port: 70000 })), ['consul.port: expected a port 1-65535, got 70000']);
  assert.deepEqual(errors(parseConsulSettings([])), ['consul: expected a mapping']);
  assert.equal(parseConsulSettings('x').issues[0]?.message, 'expected a mapping');
});

test('TLS files with http are warned about', () => {
  const r = parseConsulSettings({ cacert: '/ca', cert: '/c' });
  assert.ok(r.settings);
  assert.deepEqual(warnings(r), ['consul: cacert, cert ignored: the scheme is http (set scheme: https, or url: https://host:port)']);
});

test('PATRONI_CONSUL_* win over the file; lists and booleans converted; SCHEME is not read (as Patroni)', () => {
  const r = parseConsulSettings({ url: 'http://file:1', token: 'file' }, {
    PATRONI_CONSUL_HOST: 'env-host:8502',
    PATRONI_CONSUL_TOKEN: 'env',
    PATRONI_CONSUL_VERIFY: 'false',
    PATRONI_CONSUL_REGISTER_SERVICE: 'true',
    PATRONI_CONSUL_CHECKS: 'serfHealth,other',
    PATRONI_CONSUL_SERVICE_TAGS: '[a, b]',
    PATRONI_CONSUL_DC: 'dc3',
    PATRONI_CONSUL_CONSISTENCY: 'stale',
    PATRONI_CONSUL_SERVICE_CHECK_INTERVAL: '15s',
    PATRONI_CONSUL_SERVICE_CHECK_TLS_SERVER_NAME: 'n',
    PATRONI_CONSUL_SCHEME: 'https',
    PATRONI_CONSUL_CACERT: '',
  });
  assert.deepEqual(errors(r), []);
  assert.deepEqual(r.settings, {
    host: 'env-host:8502', scheme: 'http', token: 'env', verify: false, dc: 'dc3', consistency: 'stale', checks: ['serfHealth', 'other'],
    registerService: true, serviceTags: ['a', 'b'], serviceCheckInterval: '15s', serviceCheckTlsServerName: 'n',
  });
  assert.deepEqual(errors(parseConsulSettings({}, { PATRONI_CONSUL_PORT: 'x' })), ['consul.port: expected a port 1-65535, got "x" (from PATRONI_CONSUL_PORT)']);
});
