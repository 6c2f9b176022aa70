import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigFile, splitHostPort } from './load.ts';
import { effectiveDynamicConfig, withLocalOverrides } from './dynamic.ts';
import type { ConfigIssue } from './types.ts';
import { MINIMAL_CONFIG } from './testing.ts';

// Patroni's postgres0.yml (its shipped example), with the etcd section switched to etcd3.
const PATRONI_EXAMPLE = `
scope: batman
#namespace: /service/
name: postgresql0

restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008

etcd3:
  host: 127.0.0.1:2379

bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
  initdb:
  - encoding: UTF8
  - data-checksums
  pg_hba:
  - host replication replicator 127.0.0.1/32 md5
  - host all all 0.0.0.0/0 md5
  users:
    admin:
      password: admin%
      options:
        - createrole
        - createdb

postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: data/postgresql0
  pgpass: /tmp/pgpass0
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: zalando
    rewind:
      username: rewind_user
      password: rewind_password
  parameters:
    unix_socket_directories: '..'

tags:
    nofailover: false
    noloadbalance: false
    clonefrom: false
    nosync: false
`;

function errors(issues: ConfigIssue[]): string[] {
  return issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
}
function warnings(issues: ConfigIssue[]): string[] {
  return issues.filter((i) => i.severity === 'warning').map((i) => `${i.path}: ${i.message}`);
}
function hasIssue(list: string[], re: RegExp): boolean {
  return list.some((l) => re.test(l));
}

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
  assert.ok(Object.isFrozen(config.etcd3.hosts));
  assert.throws(() => {
    (config.postgresql as { dataDir: string }).dataDir = 'x';
  }, TypeError);
});

test('YAML 1.1 booleans: on/off/yes/no', () => {
  const text = MINIMAL_CONFIG.replace('  data_dir:', '  use_pg_rewind: on\n  remove_data_directory_on_rewind_failure: yes\n  data_dir:') +
    'tags:\n  nofailover: yes\n  noloadbalance: off\n  nosync: "true"\n';
  const { config, issues } = loadConfig(text, {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.postgresql.usePgRewind, true);
  assert.equal(config?.postgresql.removeDataDirectoryOnRewindFailure, true);
  assert.deepEqual(config?.tags, { nofailover: true, noloadbalance: false, nosync: true });
});

test('a password read as a YAML 1.1 boolean is an error with a hint', () => {
  const text = MINIMAL_CONFIG.replace('superuser: {username: postgres}', 'superuser: {username: postgres, password: on}');
  const { config, issues } = loadConfig(text, {});
  assert.equal(config, undefined);
  assert.ok(hasIssue(errors(issues), /^postgresql\.authentication\.superuser\.password: expected a string, got boolean true \(YAML 1\.1/));
});

test('environment overrides win over the file', () => {
  const env = {
    PATRONI_SCOPE: 'envscope',
    PATRONI_NAME: 'envname',
    PATRONI_NAMESPACE: 'ns',
    PATRONI_RESTAPI_LISTEN: '0.0.0.0:9008',
    PATRONI_RESTAPI_CONNECT_ADDRESS: '10.0.0.1:9008',
    PATRONI_RESTAPI_USERNAME: 'api',
    PATRONI_RESTAPI_PASSWORD: 'secret',
    PATRONI_ETCD3_HOSTS: '10.0.0.5:2379,10.0.0.6',
    PATRONI_ETCD3_PROTOCOL: 'https',
    PATRONI_ETCD3_USERNAME: 'etcduser',
    PATRONI_ETCD3_PASSWORD: 'etcdpass',
    PATRONI_POSTGRESQL_LISTEN: '127.0.0.1,::1:6432',
    PATRONI_POSTGRESQL_CONNECT_ADDRESS: '10.0.0.1:6432',
    PATRONI_POSTGRESQL_DATA_DIR: '/data/pg',
    PATRONI_POSTGRESQL_BIN_DIR: '/usr/lib/postgresql/15/bin',
    PATRONI_POSTGRESQL_PGPASS: '/tmp/envpgpass',
    PATRONI_SUPERUSER_USERNAME: 'su',
    PATRONI_SUPERUSER_PASSWORD: 'supass',
    PATRONI_REPLICATION_USERNAME: 'repl',
    PATRONI_REPLICATION_PASSWORD: 'replpass',
    PATRONI_REWIND_USERNAME: 'rw',
    PATRONI_REWIND_PASSWORD: 'rwpass',
    PATRONI_LOG_LEVEL: 'DEBUG',
    PATRONI_BOB_PASSWORD: 'bobpass',
    PATRONI_BOB_OPTIONS: 'createdb,createrole',
    PATRONI_EMPTY_VALUE: '',
    UNRELATED: 'x',
  };
  const { config, issues } = loadConfig(PATRONI_EXAMPLE, env);
  assert.deepEqual(errors(issues), []);
  assert.ok(config);
  assert.equal(config.scope, 'envscope');
  assert.equal(config.name, 'envname');
  assert.equal(config.namespace, '/ns/');
  assert.deepEqual(config.restapi, {
    listen: '0.0.0.0:9008', connectAddress: '10.0.0.1:9008', authentication: { username: 'api', password: 'secret' },
  });
  assert.deepEqual(config.etcd3, {
    hosts: ['10.0.0.5:2379', '10.0.0.6:2379'], protocol: 'https', username: 'etcduser', password: 'etcdpass',
  });
  assert.equal(config.postgresql.listen, '127.0.0.1,::1:6432');
  assert.equal(config.postgresql.connectAddress, '10.0.0.1:6432');
  assert.equal(config.postgresql.dataDir, '/data/pg');
  assert.equal(config.postgresql.binDir, '/usr/lib/postgresql/15/bin');
  assert.equal(config.postgresql.pgpass, '/tmp/envpgpass');
  assert.deepEqual(config.postgresql.authentication, {
    superuser: { username: 'su', password: 'supass' },
    replication: { username: 'repl', password: 'replpass' },
    rewind: { username: 'rw', password: 'rwpass' },
  });
  assert.equal(config.logLevel, 'debug');
  assert.deepEqual(config.bootstrap?.users.bob, { password: 'bobpass', options: ['createdb', 'createrole'] });
  assert.deepEqual(config.bootstrap?.users.admin, { password: 'admin%', options: ['createrole', 'createdb'] }, 'file users kept');
});

test('problems in values from the environment name the variable', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG, { PATRONI_RESTAPI_LISTEN: '8008x', PATRONI_ETCD3_HOST: 'h:0' });
  assert.equal(config, undefined);
  assert.deepEqual(errors(issues), [
    'PATRONI_RESTAPI_LISTEN: expected host:port, got "8008x"',
    'PATRONI_ETCD3_HOST: port must be 1-65535, got 0 in "h:0"',
  ]);
});

test('a configuration built purely from the environment loads', () => {
  const env = {
    PATRONI_SCOPE: 's', PATRONI_NAME: 'n', PATRONI_RESTAPI_LISTEN: '127.0.0.1:8008', PATRONI_ETCD3_HOST: '127.0.0.1:2379',
    PATRONI_POSTGRESQL_LISTEN: '127.0.0.1:5432', PATRONI_POSTGRESQL_DATA_DIR: '/d/n',
    PATRONI_SUPERUSER_USERNAME: 'postgres', PATRONI_REPLICATION_USERNAME: 'repl',
  };
  const { config, issues } = loadConfig('{}', env);
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.etcd3.hosts[0], '127.0.0.1:2379');
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
    'etcd3: required: an etcd3 section with host or hosts',
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
    /^ctl: read by vigil \(the control commands\) only/,
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
consul: {host: "127.0.0.1:8500"}
citus: {group: 0, database: citus}
log: {level: INFO, dir: /var/log/vigil, format: '%(message)s'}
bootstrap:
  dcs:
    standby_cluster: {host: 10.0.0.1, port: 5432}
    slots: {cdc: {type: logical, database: app, plugin: pgoutput}}
    ignore_slots: [{name: barman}]
  post_init: /bin/true
tags: {nostream: true, replicatefrom: n2}
`;
  const withExtra = text.replace('postgresql:\n  listen', 'postgresql:\n  callbacks: {on_start: /bin/true}\n  pre_promote: /bin/true\n  create_replica_methods: [pgbackrest, basebackup]\n  config_dir: /etc/postgresql/15/main\n  parameters_primary: {work_mem: 1MB}\n  listen')
    .replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {host: "127.0.0.1:2379", srv: x}')
    .replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", ciphers: HIGH, certfile: /c.pem, verify_client: required}');
  const { config, issues } = loadConfig(withExtra, {});
  assert.equal(config, undefined);
  const errs = errors(issues);
  for (const re of [
    /^consul: not implemented by Vigil yet \(Consul as the DCS/,
    /^citus: not implemented by Vigil yet/,
    /^restapi\.verify_client: required is not implemented by Vigil yet \(the agent's own calls/,
    /^log\.dir: not implemented by Vigil yet \(logs would go to standard output/,
    /^log\.format: not implemented by Vigil yet/,
    /^bootstrap\.dcs\.standby_cluster: standby clusters are not implemented by Vigil yet: this cluster's leader would be promoted/,
    /^bootstrap\.dcs\.slots: permanent replication slots are not implemented/,
    /^bootstrap\.dcs\.ignore_slots: ignore_slots is not implemented/,
    /^bootstrap\.post_init: not implemented by Vigil yet/,
    /^postgresql\.callbacks: not implemented by Vigil yet \(on_start\/on_stop/,
    /^postgresql\.pre_promote: not implemented by Vigil yet/,
    /^postgresql\.create_replica_methods: not implemented by Vigil yet \(replicas would be cloned with pg_basebackup/,
    /^postgresql\.config_dir: not implemented by Vigil yet/,
    /^postgresql\.parameters_primary: not implemented by Vigil yet/,
    /^etcd3\.srv: not implemented by Vigil yet/,
    /^restapi\.ciphers: not implemented by Vigil yet/,
    /^tags\.nostream: not implemented by Vigil yet/,
    /^tags\.replicatefrom: not implemented by Vigil yet/,
  ]) {
    assert.ok(hasIssue(errs, re), `no error matching ${re} in\n${errs.join('\n')}`);
  }
  // The same keys from the environment are refused under the variable's name.
  const env = loadConfig(MINIMAL_CONFIG, { PATRONI_SUPERUSER_SSLMODE: 'verify-full' } as NodeJS.ProcessEnv);
  assert.equal(env.config, undefined);
  assert.ok(hasIssue(errors(env.issues), /^PATRONI_SUPERUSER_SSLMODE: .*sslmode would not be used/), errors(env.issues).join('\n'));
});

test('watchdog mode required is an error; off is silent', () => {
  const required = loadConfig(MINIMAL_CONFIG + 'watchdog:\n  mode: required\n', {});
  assert.equal(required.config, undefined);
  assert.ok(hasIssue(errors(required.issues), /^watchdog\.mode: required is not supported/));
  const off = loadConfig(MINIMAL_CONFIG + 'watchdog:\n  mode: off\n', {});
  assert.deepEqual(off.issues, []);
});

test('initdb options: rendering and forbidden options', () => {
  const ok = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  initdb:\n  - data-checksums\n  - encoding: UTF8\n  - locale: C.UTF-8\n  - wal-segsize: 32\n', {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(ok.config?.bootstrap?.initdb, ['--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8', '--wal-segsize=32']);
  const asMap = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  initdb: {encoding: UTF8, auth-local: trust}\n', {});
  assert.deepEqual(asMap.config?.bootstrap?.initdb, ['--encoding=UTF8', '--auth-local=trust']);

  const bad = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  initdb:\n  - pgdata: /x\n  - nosync\n  - pwfile: /p\n  - sync-only\n  - version\n  - encoding: UTF8\n  - {a: 1, b: 2}\n', {});
  assert.equal(bad.config, undefined);
  assert.deepEqual(errors(bad.issues), [
    'bootstrap.initdb[0]: option "pgdata" is not allowed (Vigil sets it for initdb)',
    'bootstrap.initdb[1]: option "nosync" is not allowed (Vigil sets it for initdb)',
    'bootstrap.initdb[2]: option "pwfile" is not allowed (Vigil sets it for initdb)',
    'bootstrap.initdb[3]: option "sync-only" is not allowed (Vigil sets it for initdb)',
    'bootstrap.initdb[4]: option "version" is not allowed (Vigil sets it for initdb)',
    'bootstrap.initdb[6]: expected a single-key mapping like {encoding: UTF8}, got {"a":1,"b":2}',
  ]);
});

test('basebackup options: list or map rendered as arguments, forbidden ones rejected', () => {
  const list = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  basebackup:\n  - verbose\n  - max-rate: 100M\n  data_dir:'), {});
  assert.deepEqual(list.config?.postgresql.basebackup, ['--verbose', '--max-rate=100M']);
  const map = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  basebackup: {checkpoint: fast}\n  data_dir:'), {});
  assert.deepEqual(map.config?.postgresql.basebackup, ['--checkpoint=fast']);
  const bad = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  basebackup: [{host: x}, wal-method]\n  data_dir:'), {});
  assert.deepEqual(errors(bad.issues), [
    'postgresql.basebackup[0]: option "host" is not allowed (Vigil sets it for pg_basebackup)',
    'postgresql.basebackup[1]: option "wal-method" is not allowed (Vigil sets it for pg_basebackup)',
  ]);
});

test('ports must be 1-65535 and listen must be host:port', () => {
  const cases: Array<[string, string, string]> = [
    ['restapi', '127.0.0.1:0', 'restapi.listen: port must be 1-65535, got 0 in "127.0.0.1:0"'],
    ['restapi', '127.0.0.1:65536', 'restapi.listen: port must be 1-65535, got 65536 in "127.0.0.1:65536"'],
    ['restapi', '127.0.0.1', 'restapi.listen: expected host:port, got "127.0.0.1"'],
    ['restapi', '127.0.0.1:http', 'restapi.listen: expected host:port, got "127.0.0.1:http"'],
    ['postgresql', '127.0.0.1:99999', 'postgresql.listen: port must be 1-65535, got 99999 in "127.0.0.1:99999"'],
  ];
  for (const [sectionName, value, expected] of cases) {
    const text = sectionName === 'restapi'
      ? MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', `restapi: {listen: "${value}", connect_address: "10.0.0.1:8008"}`)
      : MINIMAL_CONFIG.replace('  listen: 127.0.0.1:5432', `  listen: "${value}"\n  connect_address: 10.0.0.1:5432`);
    const { config, issues } = loadConfig(text, {});
    assert.equal(config, undefined, value);
    assert.deepEqual(errors(issues), [expected]);
  }
  const num = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: 8008}'), {});
  assert.deepEqual(errors(num.issues), ['restapi.listen: expected host:port, got "8008"']);
  const conn = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", connect_address: "127.0.0.1:0"}'), {});
  assert.deepEqual(errors(conn.issues), ['restapi.connect_address: port must be 1-65535, got 0 in "127.0.0.1:0"']);
});

test('listen forms: :port, *:port, 0.0.0.0:port, several hosts', () => {
  const wild = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "*:8008", connect_address: "10.1.1.1:8008"}'), {});
  assert.deepEqual(errors(wild.issues), []);
  assert.equal(wild.config?.restapi.listen, '*:8008');
  const colon = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: ":8008", connect_address: "10.1.1.1:8008"}'), {});
  assert.deepEqual(errors(colon.issues), []);
  // A wildcard listen without connect_address cannot be advertised.
  const noConnect = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "0.0.0.0:8008"}'), {});
  assert.deepEqual(errors(noConnect.issues), ['restapi.connect_address: required when listen ("0.0.0.0:8008") is a wildcard address']);
  const wildConnect = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", connect_address: "*:8008"}'), {});
  assert.deepEqual(errors(wildConnect.issues), ['restapi.connect_address: must name one host other members can connect to, got "*:8008"']);
  // Patroni's multi-host form for PostgreSQL: hosts comma separated, port after the last colon.
  const multi = loadConfig(MINIMAL_CONFIG.replace('  listen: 127.0.0.1:5432', '  listen: 127.0.0.1,::1:5432'), {});
  assert.deepEqual(errors(multi.issues), []);
  assert.equal(multi.config?.postgresql.listen, '127.0.0.1,::1:5432');
  assert.equal(multi.config?.postgresql.connectAddress, '127.0.0.1:5432');

  assert.deepEqual(splitHostPort('[::1]:5432'), { host: '::1', port: 5432 });
  assert.deepEqual(splitHostPort('::1:5432'), { host: '::1', port: 5432 });
  assert.deepEqual(splitHostPort(':8008'), { host: '', port: 8008 });
});

test('etcd3 hosts: list, comma string, default port, url', () => {
  const cases: Array<[string, string[], string]> = [
    ['hosts: [a:1, b:2]', ['a:1', 'b:2'], 'http'],
    ['hosts: "a:1, b"', ['a:1', 'b:2379'], 'http'],
    ['host: etcd.local', ['etcd.local:2379'], 'http'],
    ['hosts: ["https://a:2379", "https://b:2379"]', ['a:2379', 'b:2379'], 'https'],
    ['url: "http://127.0.0.1:2379"', ['127.0.0.1:2379'], 'http'],
  ];
  for (const [yaml, hosts, protocol] of cases) {
    const { config, issues } = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', `etcd3:\n  ${yaml}`), {});
    assert.deepEqual(errors(issues), [], yaml);
    assert.deepEqual(config?.etcd3.hosts, hosts, yaml);
    assert.equal(config?.etcd3.protocol, protocol, yaml);
  }
  const none = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {protocol: http}'), {});
  assert.deepEqual(errors(none.issues), ['etcd3.host: required: host or hosts']);
});

test('etcd3 TLS: cacert, cert, key, key_password from the file or the environment; warnings when they cannot apply', () => {
  const section = (yaml: string): string => MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', yaml);
  const full = loadConfig(section('etcd3: {host: "127.0.0.1:2379", protocol: https, cacert: /tls/ca.crt, cert: /tls/c.crt, key: /tls/c.key, key_password: s3cret}'), {});
  assert.deepEqual(errors(full.issues), []);
  assert.deepEqual(warnings(full.issues).filter((w) => w.startsWith('etcd3')), [], 'key_password is supported now');
  assert.deepEqual(full.config?.etcd3, {
    hosts: ['127.0.0.1:2379'], protocol: 'https', cacert: '/tls/ca.crt', cert: '/tls/c.crt', key: '/tls/c.key', keyPassword: 's3cret',
  });

  const env = loadConfig(section('etcd3: {hosts: "https://127.0.0.1:2379", cert: /tls/c.crt, key: /tls/c.key}'), {
    PATRONI_ETCD3_KEY_PASSWORD: 'fromenv', PATRONI_ETCD3_CACERT: '/env/ca.crt',
  });
  assert.deepEqual(errors(env.issues), []);
  assert.equal(env.config?.etcd3.protocol, 'https');
  assert.equal(env.config?.etcd3.keyPassword, 'fromenv');
  assert.equal(env.config?.etcd3.cacert, '/env/ca.crt');

  const http = loadConfig(section('etcd3: {host: "127.0.0.1:2379", cacert: /tls/ca.crt, cert: /tls/c.crt, key: /tls/c.key}'), {});
  assert.deepEqual(errors(http.issues), []);
  assert.ok(hasIssue(warnings(http.issues), /^etcd3: cacert, cert, key ignored: protocol is http/), warnings(http.issues).join('\n'));

  const lonely = loadConfig(section('etcd3: {host: "127.0.0.1:2379", protocol: https, key_password: x}'), {});
  assert.deepEqual(errors(lonely.issues), []);
  assert.ok(hasIssue(warnings(lonely.issues), /^etcd3\.key_password: ignored: no client certificate/));
  const keyOnly = loadConfig(section('etcd3: {host: "127.0.0.1:2379", protocol: https, key: /tls/c.key}'), {});
  assert.deepEqual(errors(keyOnly.issues), ['etcd3.key: set without cert']);
});

test('etcd (v2) instead of etcd3 is an error that says what to do', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG.replace('etcd3:', 'etcd:'), {});
  assert.equal(config, undefined);
  assert.ok(hasIssue(errors(issues), /^etcd3: required.*the v2 store, which an etcd3 section does not see/));
  assert.ok(hasIssue(errors(issues), /^etcd: not implemented by Vigil yet \(the etcd v2 API/));
});

test('bootstrap.dcs: timings adjusted with a warning, errors with paths', () => {
  const adjusted = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  dcs:\n    ttl: 20\n    loop_wait: 10\n    retry_timeout: 10\n', {});
  assert.deepEqual(errors(adjusted.issues), []);
  assert.deepEqual(adjusted.config?.bootstrap?.dcs, { ttl: 20, loop_wait: 1, retry_timeout: 9 });
  assert.ok(hasIssue(warnings(adjusted.issues), /^bootstrap\.dcs\.loop_wait: loop_wait \+ 2\*retry_timeout must not exceed ttl \(10 \+ 2\*10 > 20\); using loop_wait 1 and retry_timeout 9$/));

  const fast = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  dcs: {ttl: 10, loop_wait: 2, retry_timeout: 4}\n', {});
  assert.deepEqual(errors(fast.issues), []);
  assert.deepEqual(fast.config?.bootstrap?.dcs, { ttl: 10, loop_wait: 2, retry_timeout: 4 }, 'below Patroni minimums but allowed');
  assert.ok(hasIssue(warnings(fast.issues), /^bootstrap\.dcs\.ttl: 10 is below Patroni's documented minimum 20/));

  const bad = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  dcs:\n    ttl: soon\n    postgresql:\n      parameters: {max_connections: 0}\n', {});
  assert.equal(bad.config, undefined);
  assert.deepEqual(errors(bad.issues), [
    'bootstrap.dcs.ttl: expected an integer, got "soon"',
    'bootstrap.dcs.postgresql.parameters.max_connections: must be an integer between 1 and 262143, got 0',
  ]);
});

test('use_slots: local first, then bootstrap.dcs; use_pg_rewind: only the local value (it overrides /config)', () => {
  const fromDcs = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  dcs:\n    postgresql: {use_slots: false, use_pg_rewind: true}\n', {});
  assert.equal(fromDcs.config?.postgresql.useSlots, false);
  assert.equal(fromDcs.config?.postgresql.usePgRewind, undefined);
  const local = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  use_pg_rewind: false\n  data_dir:') + 'bootstrap:\n  dcs:\n    postgresql: {use_pg_rewind: true}\n', {});
  assert.equal(local.config?.postgresql.usePgRewind, false);
});

test('withLocalOverrides: a local use_pg_rewind wins over /config (Patroni: local postgresql keys override dynamic ones)', () => {
  const dyn = effectiveDynamicConfig({ postgresql: { use_pg_rewind: true } }).config;
  assert.equal(withLocalOverrides(dyn, { usePgRewind: false }).postgresql.use_pg_rewind, false);
  assert.equal(withLocalOverrides(dyn, {}).postgresql.use_pg_rewind, true);
  const off = effectiveDynamicConfig({ postgresql: { use_pg_rewind: false } }).config;
  assert.equal(withLocalOverrides(off, { usePgRewind: true }).postgresql.use_pg_rewind, true);
  assert.equal(off.postgresql.use_pg_rewind, false, 'the input is not modified');
});

test('Patroni-controlled parameters in the local section are dropped with a warning', () => {
  const text = MINIMAL_CONFIG.replace('  data_dir:', '  parameters:\n    max_connections: 500\n    port: 6000\n    work_mem: 4MB\n    shared_buffers: 128MB\n    ssl: on\n  data_dir:');
  const { config, issues } = loadConfig(text, {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(config?.postgresql.parameters, { work_mem: '4MB', shared_buffers: '128MB', ssl: true });
  assert.ok(hasIssue(warnings(issues), /^postgresql\.parameters\.max_connections: ignored in the local configuration/));
  assert.ok(hasIssue(warnings(issues), /^postgresql\.parameters\.port: ignored: set from postgresql\.listen/));
});

test('tags: predefined typed, custom kept, both forms warn', () => {
  const text = MINIMAL_CONFIG + 'tags:\n  failover_priority: "2"\n  nofailover: false\n  nostream: false\n  zone: eu-1\n  weight: 3\n  sync_priority: 0\n';
  const { config, issues } = loadConfig(text, {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(config?.tags, { failover_priority: 2, nofailover: false, nostream: false, zone: 'eu-1', weight: 3, sync_priority: 0 });
  assert.ok(hasIssue(warnings(issues), /^tags: both nofailover and failover_priority are set/));
});

test('name: reserved name and slashes rejected', () => {
  const reserved = loadConfig(MINIMAL_CONFIG.replace('name: n1', 'name: __patroni_strict_sync_replica_placeholder__'), {});
  assert.ok(hasIssue(errors(reserved.issues), /^name: .* is reserved$/));
  const slash = loadConfig(MINIMAL_CONFIG.replace('name: n1', 'name: a/b'), {});
  assert.deepEqual(errors(slash.issues), ['name: must not contain "/", got "a/b"']);
});

test('YAML problems: syntax errors, empty text, top-level list, duplicate keys', () => {
  const syntax = loadConfig('scope: [\nname: x\n', {}, { fileName: 'x.yml' });
  assert.equal(syntax.config, undefined);
  assert.equal(syntax.issues.length, 1);
  assert.match(syntax.issues[0]!.message, /^YAML syntax error: x\.yml: .* at line 2, column 1$/);
  assert.deepEqual(errors(loadConfig('', {}).issues), [': the configuration is empty']);
  assert.deepEqual(errors(loadConfig('- a\n- b\n', {}).issues), [': expected a mapping at the top level, got a list ["a","b"]']);
  const dup = loadConfig(MINIMAL_CONFIG + 'scope: other\n', {});
  assert.deepEqual(errors(dup.issues), []);
  assert.equal(dup.config?.scope, 'other');
  assert.ok(hasIssue(warnings(dup.issues), /Map keys must be unique.*the last value wins/));
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

test('YAML 1.1 as PyYAML reads it: y and n stay strings', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG.replace('name: n1', 'name: n') + 'tags:\n  zone: y\n  nofailover: no\n', {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.name, 'n');
  assert.deepEqual(config?.tags, { zone: 'y', nofailover: false });
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

test('restapi allowlist and extra headers: parsed, validated with paths, from the file or the environment', () => {
  const restapi = `restapi:
  listen: 127.0.0.1:8008
  allowlist: [10.0.0.1, 10.0.0.0/8, "fd00::/8", "::1", pg1.example.com, localhost]
  allowlist_include_members: on
  http_extra_headers: {X-Frame-Options: DENY, X-Count: 3}
  https_extra_headers:
    Strict-Transport-Security: max-age=31536000`;
  const ok = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', restapi), {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(warnings(ok.issues).filter((w) => w.startsWith('restapi')), [], 'no "not supported" warning any more');
  assert.deepEqual(ok.config?.restapi.allowlist, ['10.0.0.1', '10.0.0.0/8', 'fd00::/8', '::1', 'pg1.example.com', 'localhost']);
  assert.equal(ok.config?.restapi.allowlistIncludeMembers, true);
  assert.deepEqual(ok.config?.restapi.httpExtraHeaders, { 'X-Frame-Options': 'DENY', 'X-Count': '3' });
  assert.deepEqual(ok.config?.restapi.httpsExtraHeaders, { 'Strict-Transport-Security': 'max-age=31536000' });

  const empty = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", allowlist: []}'), {});
  assert.deepEqual(errors(empty.issues), []);
  assert.equal(empty.config?.restapi.allowlist, undefined, 'an empty list is no list');

  const bad = `restapi:
  listen: 127.0.0.1:8008
  allowlist: [10.0.0.1, 10.0.0.256, 10.0.0.0/33, "bad host!", 42]
  allowlist_include_members: sometimes
  http_extra_headers: {X-Ok: fine, X-Bool: yes, X-List: [a], "Bad Name": x, X-Nl: "a\\r\\nInjected: 1"}
  https_extra_headers: [X-A]`;
  const r = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', bad), {});
  assert.equal(r.config, undefined);
  assert.deepEqual(errors(r.issues), [
    'restapi.allowlist[1]: not an IP address, a CIDR network or a hostname: "10.0.0.256"',
    'restapi.allowlist[2]: not a CIDR network: "10.0.0.0/33" (the prefix must be 0-32)',
    'restapi.allowlist[3]: not an IP address, a CIDR network or a hostname: "bad host!"',
    'restapi.allowlist[4]: expected an IP address, a CIDR network or a hostname, got 42',
    'restapi.allowlist_include_members: expected a boolean, got "sometimes"',
    'restapi.http_extra_headers.X-Bool: expected a string, got boolean true (YAML 1.1 reads yes/no/on/off/true/false as booleans: quote it)',
    'restapi.http_extra_headers.X-List: expected a string, got a list ["a"]',
    'restapi.http_extra_headers.Bad Name: not a valid HTTP header name: "Bad Name"',
    'restapi.http_extra_headers.X-Nl: not a valid HTTP header value (control characters such as line breaks are not allowed): "a\\r\\nInjected: 1"',
    'restapi.https_extra_headers: expected a mapping of header names to values, got a list ["X-A"]',
  ]);
  const notList = loadConfig(MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}', 'restapi: {listen: "127.0.0.1:8008", allowlist: 10.0.0.0/8}'), {});
  assert.deepEqual(errors(notList.issues), ['restapi.allowlist: expected a list of IP addresses, CIDR networks or hostnames, got "10.0.0.0/8"']);

  const env = loadConfig(MINIMAL_CONFIG, {
    PATRONI_RESTAPI_ALLOWLIST: '127.0.0.1, 10.0.0.0/8,localhost',
    PATRONI_RESTAPI_ALLOWLIST_INCLUDE_MEMBERS: 'true',
    PATRONI_RESTAPI_HTTP_EXTRA_HEADERS: 'X-Frame-Options: DENY',
    PATRONI_RESTAPI_HTTPS_EXTRA_HEADERS: '{Strict-Transport-Security: max-age=1}',
  });
  assert.deepEqual(errors(env.issues), []);
  assert.deepEqual(env.config?.restapi.allowlist, ['127.0.0.1', '10.0.0.0/8', 'localhost']);
  assert.equal(env.config?.restapi.allowlistIncludeMembers, true);
  assert.deepEqual(env.config?.restapi.httpExtraHeaders, { 'X-Frame-Options': 'DENY' });
  assert.deepEqual(env.config?.restapi.httpsExtraHeaders, { 'Strict-Transport-Security': 'max-age=1' });
  const envBad = loadConfig(MINIMAL_CONFIG, { PATRONI_RESTAPI_ALLOWLIST: '[10.0.0.0/40]', PATRONI_RESTAPI_HTTP_EXTRA_HEADERS: 'X-A: [1]' });
  assert.deepEqual(errors(envBad.issues), [
    'PATRONI_RESTAPI_ALLOWLIST[0]: not a CIDR network: "10.0.0.0/40" (the prefix must be 0-32)',
    'PATRONI_RESTAPI_HTTP_EXTRA_HEADERS.X-A: expected a string, got a list [1]',
  ]);
});
