// loadConfig and loadConfigFile as a whole: Patroni's example, defaults, all problems at once, unknown
// and refused keys, files and directories.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigFile, loadConfigFromEnvironment } from './load.ts';
import { errors, hasIssue, MINIMAL_CONFIG, PATRONI_EXAMPLE, warnings } from './testing.ts';

test("Patroni's postgres0.yml (with etcd3) loads", () => {
  const { config, issues } = loadConfig(PATRONI_EXAMPLE, {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(warnings(issues), []);
  assert.ok(config);
  assert.equal(config.scope, 'batman');
  assert.equal(config.name, 'postgresql0');
  assert.equal(config.namespace, '/service/');
  assert.deepEqual(config.restapi, { listen: '127.0.0.1:8008', connectAddress: '127.0.0.1:8008' });
  assert.deepEqual(config.etcd3, { hosts: ['127.0.0.1:2379'], protocol: 'http' });
  assert.equal(config.postgresql.listen, '127.0.0.1:5432');
  assert.equal(config.postgresql.dataDir, 'data/postgresql0');
  assert.equal(config.postgresql.pgpass, '/tmp/pgpass0');
  assert.deepEqual(config.postgresql.authentication, {
    superuser: { username: 'postgres', password: 'zalando' },
    replication: { username: 'replicator', password: 'rep-pass' },
    rewind: { username: 'rewind_user', password: 'rewind_password' },
  });
  assert.deepEqual(config.postgresql.parameters, { unix_socket_directories: '..' });
  assert.equal(config.postgresql.usePgRewind, undefined, 'not in the local section: /config (seeded from bootstrap.dcs) decides');
  assert.ok(config.bootstrap);
  assert.deepEqual(config.bootstrap.initdb, ['--encoding=UTF8', '--data-checksums']);
  assert.deepEqual(config.bootstrap.pgHba, ['host replication replicator 127.0.0.1/32 md5', 'host all all 0.0.0.0/0 md5']);
  assert.deepEqual(config.bootstrap.users, { admin: { password: 'admin%', options: ['createrole', 'createdb'] } });
  assert.deepEqual(config.bootstrap.dcs, {
    ttl: 30, loop_wait: 10, retry_timeout: 10, maximum_lag_on_failover: 1048576, postgresql: { use_pg_rewind: true, parameters: null },
  });
  assert.deepEqual(config.tags, { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false });
  assert.equal(config.logLevel, 'info');
});

test('defaults are filled', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG, {});
  assert.deepEqual(errors(issues), []);
  assert.ok(config);
  assert.equal(config.namespace, '/service/');
  assert.equal(config.restapi.connectAddress, '127.0.0.1:8008');
  assert.equal(config.postgresql.connectAddress, '127.0.0.1:5432');
  assert.equal(config.postgresql.pgpass, '/var/lib/vigil/pgpass.n1');
  assert.equal(config.postgresql.database, 'postgres');
  assert.equal(config.postgresql.useSlots, true);
  assert.equal(config.postgresql.usePgRewind, undefined);
  assert.equal(config.postgresql.pgCtlTimeout, 60);
  assert.equal(config.postgresql.removeDataDirectoryOnRewindFailure, false);
  assert.equal(config.postgresql.removeDataDirectoryOnDivergedTimelines, false);
  assert.deepEqual(config.postgresql.basebackup, []);
  assert.deepEqual(config.postgresql.pgHba, []);
  assert.deepEqual(config.postgresql.parameters, {});
  assert.equal(config.bootstrap, undefined, 'no bootstrap section: never bootstraps');
  assert.deepEqual(config.tags, {});
  assert.equal(config.logLevel, 'info');
  if (existsSync('/usr/lib/postgresql/15/bin/pg_ctl') && !existsSync('/usr/lib/postgresql/16')) {
    assert.equal(config.postgresql.binDir, '/usr/lib/postgresql/15/bin');
  }
  assert.ok(config.postgresql.binDir === '' || config.postgresql.binDir.startsWith('/usr/lib/postgresql/'));
});

test('namespace is normalised to /name/', () => {
  for (const [ns, expected] of [['service', '/service/'], ['/pg/', '/pg/'], ['a//b', '/a/b/'], ['""', '/service/']] as const) {
    const { config } = loadConfig(MINIMAL_CONFIG + `namespace: ${ns}\n`, {});
    assert.equal(config?.namespace, expected, ns);
  }
});

test('the returned config is deep-frozen', () => {
  const { config } = loadConfig(PATRONI_EXAMPLE, {});
  assert.ok(config);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.postgresql.authentication.superuser));
  assert.ok(Object.isFrozen(config.bootstrap?.initdb));
  assert.ok(Object.isFrozen(config.etcd3?.hosts));
  assert.throws(() => {
    (config.postgresql as { dataDir: string }).dataDir = 'x';
  }, TypeError);
});

test('several errors are reported at once, each with its path', () => {
  const text = `
name: n1
restapi:
  listen: 8008x
etcd3:
  hosts: [127.0.0.1:2379, "127.0.0.1:99999"]
  protocol: gopher
postgresql:
  listen: 127.0.0.1:5432
  pg_ctl_timeout: soon
  authentication:
    superuser:
      password: x
tags:
  failover_priority: -1
  nofailover: maybe
`;
  const { config, issues } = loadConfig(text, {});
  assert.equal(config, undefined);
  const errs = errors(issues);
  for (const expected of [
    'scope: required',
    'restapi.listen: expected host:port, got "8008x"',
    'etcd3.hosts[1]: port must be 1-65535, got 99999 in "127.0.0.1:99999"',
    'etcd3.protocol: expected http or https, got "gopher"',
    'postgresql.data_dir: required',
    'postgresql.pg_ctl_timeout: expected an integer, got "soon"',
    'postgresql.authentication.superuser.username: required',
    'postgresql.authentication.replication.username: required',
    'tags.nofailover: expected a boolean, got "maybe"',
    'tags.failover_priority: must be between 0 and 9007199254740991, got -1',
  ]) {
    assert.ok(errs.includes(expected), `missing ${JSON.stringify(expected)} in\n${errs.join('\n')}`);
  }
  assert.ok(issues.every((i) => i.severity === 'error' || i.severity === 'warning'));
});

test('missing sections are reported as required', () => {
  const { config, issues } = loadConfig('scope: s\nname: n\n', {});
  assert.equal(config, undefined);
  assert.deepEqual(errors(issues).sort(), [
    ': no DCS section: add one of consul, etcd, etcd3, kubernetes, zookeeper (the DCS sections Vigil implements)',
    'postgresql.authentication.replication.username: required',
    'postgresql.authentication.superuser.username: required',
    'postgresql.data_dir: required',
    'postgresql.listen: required',
    'restapi.listen: required',
  ]);
});

test('unknown keys and keys that cannot apply to Vigil warn', () => {
  const text = MINIMAL_CONFIG + `
colour: blue
watchdog: {mode: automatic}
restapi_typo: 1
thread_pool_size: 4
ctl: {insecure: true}
log: {level: WARNING, traceback_level: DEBUG}
bootstrap:
  dcs:
    postgresql:
      data_dir: /x
`;
  const withExtra = text.replace('postgresql:\n  listen', 'postgresql:\n  create_replica_methods: [basebackup]\n  frobnicate: 1\n  listen')
    .replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {host: "127.0.0.1:2379", weird: 1}')
    .replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", request_queue_size: 5}');
  const { config, issues } = loadConfig(withExtra, {});
  assert.deepEqual(errors(issues), []);
  assert.ok(config);
  assert.equal(config.logLevel, 'warn');
  const warns = warnings(issues);
  for (const re of [
    /^colour: unknown key$/,
    /^restapi_typo: unknown key$/,
    /^thread_pool_size: does not apply to Vigil/,
    /^ctl: read by vigil \(the control commands\); the agent uses only certfile/,
    /^restapi\.request_queue_size: does not apply to Vigil/,
    /^log\.traceback_level: does not apply to Vigil/,
    /^watchdog: device \/dev\/watchdog does not exist/,
    /^bootstrap\.dcs\.postgresql\.data_dir: not allowed in the dynamic configuration/,
    /^postgresql\.frobnicate: unknown key$/,
    /^etcd3\.weird: unknown key$/,
  ]) {
    assert.ok(hasIssue(warns, re), `no warning matching ${re} in\n${warns.join('\n')}`);
  }
});

test('Patroni keys that Vigil does not implement yet are refused, each by name, all at once', () => {
  const text = MINIMAL_CONFIG + `
citus: {group: 0, database: citus}
bootstrap:
  dcs:
    standby_cluster: {host: 10.0.0.1, port: 5432}
    slots: {cdc: {type: logical, database: app, plugin: pgoutput}}
    ignore_slots: [{name: barman}]
  post_init: /bin/true
tags: {nostream: true, replicatefrom: n2}
`;
  const withExtra = text
    .replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {host: "127.0.0.1:2379", srv: x}')
    .replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", ciphers: HIGH, certfile: /c.pem, verify_client: required}');
  const { config, issues } = loadConfig(withExtra, {});
  assert.equal(config, undefined);
  const errs = errors(issues);
  for (const re of [
    /^citus: not implemented by Vigil yet/,
    /^restapi\.ciphers: not implemented by Vigil yet/,
  ]) {
    assert.ok(hasIssue(errs, re), `no error matching ${re} in\n${errs.join('\n')}`);
  }
  // The same keys from the environment are refused under the variable's name.
  const env = loadConfig(MINIMAL_CONFIG, { PATRONI_SUPERUSER_GSSENCMODE: 'require' } as NodeJS.ProcessEnv);
  assert.equal(env.config, undefined);
  assert.ok(hasIssue(errors(env.issues), /^PATRONI_SUPERUSER_GSSENCMODE: require cannot be honoured/), errors(env.issues).join('\n'));
  // The libpq TLS settings are taken, from the file and from the environment.
  const tls = loadConfig(MINIMAL_CONFIG, { PATRONI_REPLICATION_SSLMODE: 'verify-full', PATRONI_REPLICATION_SSLROOTCERT: '/ca.crt' } as NodeJS.ProcessEnv);
  assert.deepEqual(tls.config?.postgresql.authentication.replication.libpq, { sslmode: 'verify-full', sslrootcert: '/ca.crt' });
  const badMode = loadConfig(MINIMAL_CONFIG, { PATRONI_SUPERUSER_SSLMODE: 'verify' } as NodeJS.ProcessEnv);
  assert.ok(hasIssue(errors(badMode.issues), /^PATRONI_SUPERUSER_SSLMODE: expected one of disable, allow, prefer, require, verify-ca, verify-full/), errors(badMode.issues).join('\n'));
});

test('name: reserved name and slashes rejected', () => {
  const reserved = loadConfig(MINIMAL_CONFIG.replace('name: n1', 'name: __patroni_strict_sync_replica_placeholder__'), {});
  assert.ok(hasIssue(errors(reserved.issues), /^name: .* is reserved$/));
  const slash = loadConfig(MINIMAL_CONFIG.replace('name: n1', 'name: a/b'), {});
  assert.deepEqual(errors(slash.issues), ['name: must not contain "/", got "a/b"']);
});

test('loadConfigFile: a file, a directory merged in order, unreadable paths throw', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-config-'));
  try {
    const file = join(dir, 'single.yml');
    await writeFile(file, MINIMAL_CONFIG);
    const single = await loadConfigFile(file, {});
    assert.equal(single.config?.name, 'n1');

    const confd = join(dir, 'conf.d');
    await (await import('node:fs/promises')).mkdir(confd);
    await writeFile(join(confd, '10-base.yaml'), MINIMAL_CONFIG + 'tags: {zone: a, rack: r1}\n');
    await writeFile(join(confd, '20-node.yml'), 'name: n2\ntags: {zone: b, rack: null}\n');
    await writeFile(join(confd, 'README.txt'), 'not yaml: [');
    const merged = await loadConfigFile(confd, { PATRONI_SCOPE: 'fromenv' });
    assert.deepEqual(errors(merged.issues), []);
    assert.equal(merged.config?.name, 'n2');
    assert.equal(merged.config?.scope, 'fromenv');
    assert.deepEqual(merged.config?.tags, { zone: 'b' });

    await assert.rejects(loadConfigFile(join(dir, 'missing.yml'), {}), /cannot read configuration .*missing\.yml: ENOENT: no such file or directory/);
    const empty = join(dir, 'empty.d');
    await (await import('node:fs/promises')).mkdir(empty);
    await assert.rejects(loadConfigFile(empty, {}), /has no \.yml or \.yaml files/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('odd values in every section are reported, never thrown', () => {
  const odd: unknown[] = [null, 0, -1, 1.5, 'x', '', true, [], [1, 'a'], {}, { a: { b: null } }, '2024-01-01'];
  const keys = [
    'scope', 'name', 'namespace', 'restapi', 'restapi.listen', 'restapi.authentication', 'restapi.verify_client',
    'restapi.allowlist', 'restapi.allowlist_include_members', 'restapi.http_extra_headers', 'restapi.https_extra_headers', 'etcd3',
    'etcd3.hosts', 'etcd3.host', 'etcd3.protocol', 'bootstrap', 'bootstrap.dcs', 'bootstrap.dcs.postgresql', 'bootstrap.initdb',
    'bootstrap.users', 'bootstrap.pg_hba', 'postgresql', 'postgresql.listen', 'postgresql.authentication',
    'postgresql.authentication.superuser', 'postgresql.parameters', 'postgresql.basebackup', 'postgresql.pg_hba', 'tags',
    'tags.nofailover', 'log', 'log.level', 'watchdog', 'watchdog.mode',
  ];
  const base = () => ({
    scope: 's', name: 'n', restapi: { listen: '127.0.0.1:8008' }, etcd3: { host: '127.0.0.1:2379' },
    bootstrap: { dcs: { postgresql: {} } },
    postgresql: { listen: '127.0.0.1:5432', data_dir: '/d', authentication: { superuser: { username: 'p' }, replication: { username: 'r' } } },
    tags: {}, log: {}, watchdog: { mode: 'off' },
  });
  for (const key of keys) {
    for (const value of odd) {
      const doc: Record<string, unknown> = base();
      const parts = key.split('.');
      let node = doc;
      for (const p of parts.slice(0, -1)) node = node[p] as Record<string, unknown>;
      node[parts.at(-1)!] = value;
      const { config, issues } = loadConfig(JSON.stringify(doc), {});
      assert.equal(config === undefined, issues.some((i) => i.severity === 'error'), `${key} = ${JSON.stringify(value)}`);
    }
  }
});

test('no file: the YAML in PATRONI_CONFIGURATION (other PATRONI_* variables not applied), else the variables alone', () => {
  const fromDoc = loadConfigFromEnvironment({ PATRONI_CONFIGURATION: MINIMAL_CONFIG, PATRONI_NAME: 'other' });
  assert.equal(fromDoc.source, 'PATRONI_CONFIGURATION');
  assert.deepEqual(errors(fromDoc.issues), []);
  assert.equal(fromDoc.config?.name, 'n1');
  const env = {
    PATRONI_SCOPE: 's', PATRONI_NAME: 'e1', PATRONI_RESTAPI_LISTEN: '127.0.0.1:8008', PATRONI_ETCD3_HOSTS: '127.0.0.1:2379',
    PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:5432', PATRONI_POSTGRESQL_DATA_DIR: '/var/lib/vigil/e1',
    PATRONI_SUPERUSER_USERNAME: 'postgres', PATRONI_REPLICATION_USERNAME: 'replicator',
  };
  const fromEnv = loadConfigFromEnvironment({ ...env, PATRONI_CONFIGURATION: '' });
  assert.equal(fromEnv.source, 'the environment');
  assert.deepEqual(errors(fromEnv.issues), []);
  assert.equal(fromEnv.config?.name, 'e1');
  assert.equal(fromEnv.config?.postgresql.dataDir, '/var/lib/vigil/e1');
  const empty = loadConfigFromEnvironment({});
  assert.ok(hasIssue(errors(empty.issues), /^scope: required/), errors(empty.issues).join('\n'));
});
