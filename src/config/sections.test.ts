// Section by section: restapi, etcd3, postgresql, bootstrap, tags, watchdog.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, splitHostPort } from './load.ts';
import { effectiveDynamicConfig, withLocalOverrides } from './dynamic.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';

test('watchdog mode required is an error; off is silent', () => {
  const required = loadConfig(MINIMAL_CONFIG + 'watchdog:\n  mode: required\n', {});
  assert.equal(required.config, undefined);
  assert.ok(hasIssue(errors(required.issues), /^watchdog\.mode: required is not supported/));
  const off = loadConfig(MINIMAL_CONFIG + 'watchdog:\n  mode: off\n', {});
  assert.deepEqual(off.issues, []);
});

test('initdb options: rendering and refused options (postgres/options.ts, with the reason)', () => {
  const ok = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  initdb:\n  - data-checksums\n  - encoding: UTF8\n  - locale: C.UTF-8\n  - wal-segsize: 32\n', {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(ok.config?.bootstrap?.initdb, ['--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8', '--wal-segsize=32']);
  const asMap = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  initdb: {encoding: UTF8, auth-local: trust}\n', {});
  assert.deepEqual(asMap.config?.bootstrap?.initdb, ['--encoding=UTF8', '--auth-local=trust']);

  const bad = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  initdb:\n  - pgdata: /x\n  - nosync\n  - pwfile: /p\n  - sync-only\n  - version\n  - encoding: UTF8\n  - {a: 1, b: 2}\n  - username: admin\n  - D: /y\n', {});
  assert.equal(bad.config, undefined);
  assert.deepEqual(errors(bad.issues), [
    'bootstrap.initdb[0]: option "pgdata" is not allowed for initdb: Vigil passes the data directory (postgresql.data_dir)',
    'bootstrap.initdb[1]: option "nosync" is not allowed for initdb: a data directory not synced to disk may be lost in a crash right after bootstrap',
    'bootstrap.initdb[2]: option "pwfile" is not allowed for initdb: Vigil writes the superuser password file itself (postgresql.authentication.superuser.password)',
    'bootstrap.initdb[3]: option "sync-only" is not allowed for initdb: it only syncs an existing data directory and creates none',
    'bootstrap.initdb[4]: option "version" is not allowed for initdb: it prints the version and creates no data directory',
    'bootstrap.initdb[6]: expected a single-key mapping like {encoding: UTF8}, got {"a":1,"b":2}',
    'bootstrap.initdb[7]: option "username" is not allowed for initdb: Vigil sets it to postgresql.authentication.superuser.username',
    'bootstrap.initdb[8]: option "D" (pgdata) is not allowed for initdb: Vigil passes the data directory (postgresql.data_dir)',
  ]);
});

test('basebackup options: list or map rendered as arguments, refused ones rejected with the reason', () => {
  const list = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  basebackup:\n  - verbose\n  - max-rate: 100M\n  - compress: server-lz4:5\n  data_dir:'), {});
  assert.deepEqual(errors(list.issues), []);
  assert.deepEqual(list.config?.postgresql.basebackup, ['--verbose', '--max-rate=100M', '--compress=server-lz4:5']);
  const map = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  basebackup: {checkpoint: fast}\n  data_dir:'), {});
  assert.deepEqual(map.config?.postgresql.basebackup, ['--checkpoint=fast']);
  const bad = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  basebackup: [{host: x}, wal-method, {username: u}, {compress: gzip}, {max-rate: [1]}]\n  data_dir:'), {});
  assert.equal(bad.config, undefined);
  assert.deepEqual(errors(bad.issues), [
    `postgresql.basebackup[0]: option "host" is not allowed for pg_basebackup: Vigil connects to the leader's conn_url`,
    'postgresql.basebackup[1]: option "wal-method" is not allowed for pg_basebackup: Vigil streams WAL (-X stream) so that the copy is consistent',
    'postgresql.basebackup[2]: option "username" is not allowed for pg_basebackup: Vigil connects as postgresql.authentication.replication.username',
    'postgresql.basebackup[3]: option "compress" is not allowed for pg_basebackup: only server-side compression ("server-gzip", "server-lz4:5", ...) or "none" fits the plain format a replica needs',
    'postgresql.basebackup[4]: expected a string or number value for option "max-rate", got a list [1]',
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
    assert.deepEqual(config?.etcd3?.hosts, hosts, yaml);
    assert.equal(config?.etcd3?.protocol, protocol, yaml);
  }
  const none = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {protocol: http}'), {});
  assert.deepEqual(errors(none.issues), ['etcd3.host: required: host, hosts, url, proxy or srv']);
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
  assert.equal(env.config?.etcd3?.protocol, 'https');
  assert.equal(env.config?.etcd3?.keyPassword, 'fromenv');
  assert.equal(env.config?.etcd3?.cacert, '/env/ca.crt');

  const http = loadConfig(section('etcd3: {host: "127.0.0.1:2379", cacert: /tls/ca.crt, cert: /tls/c.crt, key: /tls/c.key}'), {});
  assert.deepEqual(errors(http.issues), []);
  assert.ok(hasIssue(warnings(http.issues), /^etcd3: cacert, cert, key ignored: protocol is http/), warnings(http.issues).join('\n'));

  const lonely = loadConfig(section('etcd3: {host: "127.0.0.1:2379", protocol: https, key_password: x}'), {});
  assert.deepEqual(errors(lonely.issues), []);
  assert.ok(hasIssue(warnings(lonely.issues), /^etcd3\.key_password: ignored: no client certificate/));
  const keyOnly = loadConfig(section('etcd3: {host: "127.0.0.1:2379", protocol: https, key: /tls/c.key}'), {});
  assert.deepEqual(errors(keyOnly.issues), ['etcd3.key: set without cert']);
});

test("DCS sections: the first in Patroni's order is used, the others are ignored with a warning; one Vigil lacks is refused", () => {
  // etcd (v2) sorts before etcd3: Patroni 3.0.2 runs such a file on the v2 API, and so does Vigil.
  const v2 = loadConfig(MINIMAL_CONFIG + 'etcd: {host: "127.0.0.1:2379"}\n', {});
  assert.deepEqual(errors(v2.issues), []);
  assert.equal(v2.config?.etcd3, undefined);
  assert.deepEqual(v2.config?.etcd?.hosts, ['127.0.0.1:2379']);
  assert.ok(hasIssue(warnings(v2.issues), /^etcd3: ignored: Patroni uses the first DCS section present in the order consul, etcd, etcd3, .* so this configuration runs on etcd$/));
  // zookeeper sorts after etcd3: etcd3 is used, zookeeper ignored with a warning.
  const zk = loadConfig(MINIMAL_CONFIG + 'zookeeper: {hosts: ["127.0.0.1:2181"]}\n', {});
  assert.deepEqual(errors(zk.issues), []);
  assert.deepEqual(zk.config?.etcd3?.hosts, ['127.0.0.1:2379']);
  assert.ok(hasIssue(warnings(zk.issues), /^zookeeper: ignored: .*runs on etcd3$/));
  // zookeeper alone: parsed by its backend's parser (src/dcs/zookeeper-settings.ts).
  const zkOnly = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'zookeeper: {hosts: "zk1, zk2:2182"}'), {});
  assert.deepEqual(errors(zkOnly.issues), []);
  assert.deepEqual(zkOnly.config?.zookeeper?.hosts, ['zk1:2181', 'zk2:2182']);
  // consul sorts first: the configuration runs on Consul.
  const consul = loadConfig(MINIMAL_CONFIG + 'consul: {host: "127.0.0.1:8500"}\n', {});
  assert.deepEqual(errors(consul.issues), []);
  assert.equal(consul.config?.etcd3, undefined);
  assert.ok(consul.config?.consul !== undefined);
  assert.ok(hasIssue(warnings(consul.issues), /^etcd3: ignored: .*runs on consul$/));
  // A section Vigil lacks, alone: refused by name.
  const raft = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'raft: {data_dir: /x}'), {});
  assert.ok(hasIssue(errors(raft.issues), /^raft: not implemented by Vigil yet \(Raft as the DCS/));
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

test('use_slots: only from bootstrap.dcs, a local one is ignored with a warning; use_pg_rewind: only the local value (it overrides /config)', () => {
  const fromDcs = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  dcs:\n    postgresql: {use_slots: false, use_pg_rewind: true}\n', {});
  assert.equal(fromDcs.config?.postgresql.useSlots, false);
  assert.equal(fromDcs.config?.postgresql.usePgRewind, undefined);
  const localSlots = loadConfig(MINIMAL_CONFIG.replace('  data_dir:', '  use_slots: false\n  data_dir:'), {});
  assert.equal(localSlots.config?.postgresql.useSlots, true);
  assert.ok(hasIssue(warnings(localSlots.issues), /^postgresql\.use_slots: ignored: replication slots are switched on or off for the whole cluster/));
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

test('tags: nofailover with failover_priority warns with what Patroni 4.1 does (nofailover decides, the priority only ranks)', () => {
  const cases: [string, RegExp][] = [
    ['nofailover: false\n  failover_priority: 0', /^tags: both nofailover and failover_priority are set and contradict each other: nofailover: false wins, so the member MAY be promoted .*failover_priority 0 only ranks it last/],
    ['nofailover: true\n  failover_priority: 3', /^tags: both nofailover and failover_priority are set: nofailover: true wins, the member is never promoted \(failover_priority 3 is ignored\)$/],
    ['nofailover: false\n  failover_priority: 3', /^tags: both nofailover and failover_priority are set: nofailover: false wins, the member may be promoted; failover_priority 3 only ranks/],
  ];
  for (const [tags, re] of cases) {
    const { config, issues } = loadConfig(MINIMAL_CONFIG + `tags:\n  ${tags}\n`, {});
    assert.ok(config !== undefined, tags);
    const tagWarnings = warnings(issues).filter((w) => w.startsWith('tags:'));
    assert.equal(tagWarnings.length, 1, tags);
    assert.match(tagWarnings[0] as string, re);
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

test('etcd3: srv, srv_suffix, use_proxies and proxy are read (Patroni: a proxy is the only endpoint and disables discovery)', () => {
  const srv = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {srv: example.org, srv_suffix: prod}'), {});
  assert.deepEqual(errors(srv.issues), []);
  assert.deepEqual([srv.config?.etcd3?.srv, srv.config?.etcd3?.srvSuffix, srv.config?.etcd3?.hosts], ['example.org', 'prod', []]);
  const proxy = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {proxy: "127.0.0.1:23790", use_proxies: false}'), {});
  assert.deepEqual(errors(proxy.issues), []);
  assert.deepEqual([proxy.config?.etcd3?.hosts, proxy.config?.etcd3?.useProxies], [['127.0.0.1:23790'], true]);
  const plain = loadConfig(MINIMAL_CONFIG.replace('etcd3: {host: "127.0.0.1:2379"}', 'etcd3: {hosts: "127.0.0.1:2379", use_proxies: true}'), {});
  assert.equal(plain.config?.etcd3?.useProxies, true);
});

test('postgresql.pg_ident: a list of lines, kept when non-empty; a wrong type is an error', () => {
  const withIdent = MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  pg_ident: ["vmap osuser alice"]\n');
  const ok = loadConfig(withIdent, {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(ok.config?.postgresql.pgIdent, ['vmap osuser alice']);
  assert.equal(loadConfig(MINIMAL_CONFIG, {}).config?.postgresql.pgIdent, undefined);
  const bad = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  pg_ident: vmap\n'), {});
  assert.ok(hasIssue(errors(bad.issues), /^postgresql\.pg_ident: /), errors(bad.issues).join('\n'));
});

test('postgresql.custom_conf: kept as given; a file missing on this machine is a warning', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', 'postgresql:\n  custom_conf: /nonexistent/custom.conf\n'), {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.postgresql.customConf, '/nonexistent/custom.conf');
  assert.ok(hasIssue(warnings(issues), /^postgresql\.custom_conf: \/nonexistent\/custom\.conf does not exist/));
});
