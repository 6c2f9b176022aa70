// parseEtcdSettings: every key of Patroni's etcd/etcd3 sections taken or refused by name; the
// environment variables; the ways of naming the servers.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseEndpoint, parseEtcdSettings } from './etcd-settings.ts';

const errors = (r: ReturnType<typeof parseEtcdSettings>): string[] => r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);

test('endpoints: default port, schemes, IPv6, bad input', () => {
  assert.deepEqual(parseEndpoint('h1'), { hostPort: 'h1:2379' });
  assert.deepEqual(parseEndpoint('h1:1234'), { hostPort: 'h1:1234' });
  assert.deepEqual(parseEndpoint('https://h1:1234/'), { hostPort: 'h1:1234', scheme: 'https' });
  assert.deepEqual(parseEndpoint('[::1]:2380'), { hostPort: '[::1]:2380' });
  assert.deepEqual(parseEndpoint('[::1]'), { hostPort: '[::1]:2379' });
  assert.match(parseEndpoint('ftp://h') as string, /unsupported scheme/);
  assert.match(parseEndpoint('h:99999') as string, /out of range/);
  assert.match(parseEndpoint('h:x') as string, /expected host:port/);
});

test('hosts as a list or a comma string; host; url; protocol from the URLs', () => {
  assert.deepEqual(parseEtcdSettings({ hosts: ['a:1', 'b'] }).settings, { hosts: ['a:1', 'b:2379'], protocol: 'http' });
  assert.deepEqual(parseEtcdSettings({ hosts: 'a:1, b:2' }).settings?.hosts, ['a:1', 'b:2']);
  assert.deepEqual(parseEtcdSettings({ host: 'a' }).settings?.hosts, ['a:2379']);
  assert.deepEqual(parseEtcdSettings({ url: 'https://a:1,https://b:2' }).settings, { hosts: ['a:1', 'b:2'], protocol: 'https' });
  assert.deepEqual(errors(parseEtcdSettings({ url: 'http://a:1,https://b:2' })), ['etcd.hosts: the URLs mix http:// and https://']);
  assert.deepEqual(errors(parseEtcdSettings({})), ['etcd.host: required: one of host, hosts, url, proxy or srv']);
  assert.deepEqual(errors(parseEtcdSettings({ hosts: 5 })), ['etcd.hosts: expected a list or a comma-separated string of host:port, got 5']);
  assert.deepEqual(errors(parseEtcdSettings('x')), ['etcd: expected a map, got "x"']);
});

test('srv, srv_suffix, proxy, use_proxies', () => {
  assert.deepEqual(parseEtcdSettings({ srv: 'example.org', srv_suffix: 'c1' }).settings, { hosts: [], protocol: 'http', srv: 'example.org', srvSuffix: 'c1' });
  assert.deepEqual(parseEtcdSettings({ srv: 'example.org', hosts: 'a:1' }).settings?.hosts, ['a:1'], 'hosts: the fallback of srv');
  const p = parseEtcdSettings({ proxy: 'http://proxy:8080', hosts: 'a:1' });
  assert.deepEqual(p.settings, { hosts: ['proxy:8080'], protocol: 'http', useProxies: true });
  assert.deepEqual(p.issues.map((i) => `${i.severity} ${i.path}`), ['warning etcd.hosts']);
  assert.equal(parseEtcdSettings({ hosts: 'a', use_proxies: true }).settings?.useProxies, true);
  assert.deepEqual(errors(parseEtcdSettings({ hosts: 'a', use_proxies: 'maybe' })), ['etcd.use_proxies: expected true or false, got "maybe"']);
  assert.equal(parseEtcdSettings({ hosts: 'a', srv_suffix: 'x' }).issues[0]?.severity, 'warning');
});

test('credentials and TLS; unknown keys are errors naming the key', () => {
  const r = parseEtcdSettings({ hosts: 'a', protocol: 'https', username: 'u', password: 'p', cacert: '/ca', cert: '/c', key: '/k', key_password: 'kp' }, {}, 'etcd3');
  assert.deepEqual(r.settings, { hosts: ['a:2379'], protocol: 'https', username: 'u', password: 'p', cacert: '/ca', cert: '/c', key: '/k', keyPassword: 'kp' });
  assert.deepEqual(errors(parseEtcdSettings({ hosts: 'a', username: 'u' })), ['etcd.password: required when the other of username/password is set']);
  assert.deepEqual(errors(parseEtcdSettings({ hosts: 'a', key: '/k' })), ['etcd.key: set without cert']);
  assert.deepEqual(errors(parseEtcdSettings({ hosts: 'a', verify: true }, {}, 'etcd3')), ['etcd3.verify: unknown key (the etcd3 section takes: host, hosts, url, proxy, srv, srv_suffix, use_proxies, protocol, username, password, cacert, cert, key, key_password)']);
  assert.deepEqual(errors(parseEtcdSettings({ hosts: 'a', protocol: 'tcp' })), ['etcd.protocol: expected http or https, got "tcp"']);
  assert.equal(parseEtcdSettings({ hosts: 'a', cacert: '/ca' }).issues[0]?.severity, 'warning');
});

test('PATRONI_ETCD_* override the file; a server given in the environment replaces the file\'s', () => {
  const env = { PATRONI_ETCD_HOSTS: "['e1:1','e2:2']", PATRONI_ETCD_USE_PROXIES: 'true', PATRONI_ETCD_USERNAME: 'u', PATRONI_ETCD_PASSWORD: 'p', PATRONI_ETCD3_HOSTS: 'ignored:1' };
  assert.deepEqual(parseEtcdSettings({ srv: 'example.org', protocol: 'http' }, env).settings, { hosts: ['e1:1', 'e2:2'], protocol: 'http', useProxies: true, username: 'u', password: 'p' });
  assert.deepEqual(parseEtcdSettings({ hosts: 'a' }, { PATRONI_ETCD3_SRV: 'example.org', PATRONI_ETCD3_SRV_SUFFIX: 's' }, 'etcd3').settings, { hosts: [], protocol: 'http', srv: 'example.org', srvSuffix: 's' });
  assert.deepEqual(errors(parseEtcdSettings({}, { PATRONI_ETCD_HOST: 'h:x' })), ['PATRONI_ETCD_HOST: expected host:port, got "h:x"']);
});
