// PATRONI_* environment overrides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.ts';
import { errors, MINIMAL_CONFIG, PATRONI_EXAMPLE } from './testing.ts';

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
  assert.equal(config?.etcd3?.hosts[0], '127.0.0.1:2379');
});
