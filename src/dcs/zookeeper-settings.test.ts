// parseZookeeperSettings: every key of Patroni's zookeeper section, its environment variables,
// and the refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseZookeeperSettings } from './zookeeper-settings.ts';

const errors = (r: ReturnType<typeof parseZookeeperSettings>): string[] => r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);

test('hosts: a list or a comma string; port 2181 by default; IPv6 bracketed', () => {
  assert.deepEqual(parseZookeeperSettings({ hosts: ['zk1:2182', 'zk2'] }).settings?.hosts, ['zk1:2182', 'zk2:2181']);
  assert.deepEqual(parseZookeeperSettings({ hosts: 'zk1:2182, 10.0.0.2' }).settings?.hosts, ['zk1:2182', '10.0.0.2:2181']);
  assert.deepEqual(parseZookeeperSettings({ hosts: ['[::1]:2183', '::1'] }).settings?.hosts, ['[::1]:2183', '[::1]:2181']);
});

test('defaults: no TLS, verify on, open ACL, no auth', () => {
  const r = parseZookeeperSettings({ hosts: 'zk' });
  assert.deepEqual(r.settings, { hosts: ['zk:2181'], useSsl: false, verify: true, auth: [] });
  assert.deepEqual(r.issues, []);
});

test('hosts is required; bad hosts and chroot paths are refused by name', () => {
  assert.match(errors(parseZookeeperSettings({}))[0] ?? '', /^zookeeper\.hosts: required/);
  assert.match(errors(parseZookeeperSettings(undefined))[0] ?? '', /^zookeeper\.hosts: required/);
  assert.match(errors(parseZookeeperSettings({ hosts: ['zk:2181/app'] }))[0] ?? '', /chroot/);
  assert.match(errors(parseZookeeperSettings({ hosts: ['zk:99999'] }))[0] ?? '', /expected host or host:port/);
  assert.match(errors(parseZookeeperSettings('zk'))[0] ?? '', /must be a mapping/);
});

test('TLS keys, set_acls and auth_data', () => {
  const r = parseZookeeperSettings({
    hosts: ['zk:2281'],
    use_ssl: true,
    cacert: '/ca.pem',
    cert: '/c.pem',
    key: '/k.pem',
    key_password: 'pw',
    verify: false,
    set_acls: { 'CN=principal1': ['ALL'], 'digest:vigil:abc=': ['read', 'WRITE', 'CREATE'], 'world:anyone': 'READ' },
    auth_data: { digest: 'vigil:secret' },
  });
  assert.deepEqual(errors(r), []);
  assert.deepEqual(r.settings, {
    hosts: ['zk:2281'], useSsl: true, verify: false, cacert: '/ca.pem', cert: '/c.pem', key: '/k.pem', keyPassword: 'pw',
    acl: [{ scheme: 'x509', id: 'CN=principal1', perms: 31 }, { scheme: 'digest', id: 'vigil:abc=', perms: 7 }, { scheme: 'world', id: 'anyone', perms: 1 }],
    auth: [{ scheme: 'digest', credential: 'vigil:secret' }],
  });
});

test('bad values are refused naming the key; unknown and injected keys are warned about', () => {
  const r = parseZookeeperSettings({ hosts: 'zk', use_ssl: 'yes', set_acls: { 'CN=x': ['FLY'] }, auth_data: ['x'], key: '/k.pem', ttl: 30, zk_timeout: 3 });
  const e = errors(r);
  assert.ok(e.some((m) => m.startsWith('zookeeper.use_ssl: must be true or false')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('zookeeper.set_acls.CN=x: unknown permission "FLY"')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('zookeeper.auth_data: must be a mapping')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('zookeeper.key: key needs cert')), e.join('\n'));
  assert.equal(r.settings, undefined);
  const w = r.issues.filter((i) => i.severity === 'warning').map((i) => i.path);
  assert.deepEqual(w.sort(), ['zookeeper.key', 'zookeeper.ttl', 'zookeeper.zk_timeout']);
});

test('PATRONI_ZOOKEEPER_* override the file, typed as Patroni types them', () => {
  const r = parseZookeeperSettings({ hosts: 'file-zk' }, {
    PATRONI_ZOOKEEPER_HOSTS: "'zk1:2181','zk2:2181'",
    PATRONI_ZOOKEEPER_USE_SSL: 'true',
    PATRONI_ZOOKEEPER_VERIFY: 'off',
    PATRONI_ZOOKEEPER_CACERT: '/ca.pem',
    PATRONI_ZOOKEEPER_SET_ACLS: 'CN=p1: [ALL]',
    PATRONI_ZOOKEEPER_AUTH_DATA: 'digest: "u:p"',
  });
  assert.deepEqual(errors(r), []);
  assert.deepEqual(r.settings?.hosts, ['zk1:2181', 'zk2:2181']);
  assert.equal(r.settings?.useSsl, true);
  assert.equal(r.settings?.verify, false);
  assert.equal(r.settings?.cacert, '/ca.pem');
  assert.deepEqual(r.settings?.acl, [{ scheme: 'x509', id: 'CN=p1', perms: 31 }]);
  assert.deepEqual(r.settings?.auth, [{ scheme: 'digest', credential: 'u:p' }]);
  // No section in the file: the environment alone makes one.
  assert.deepEqual(parseZookeeperSettings(undefined, { PATRONI_ZOOKEEPER_HOSTS: 'zk3' }).settings?.hosts, ['zk3:2181']);
});
