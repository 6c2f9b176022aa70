// --dcs-url as patronictl reads it (dcs-url.ts), the sections it becomes, and the global options
// before the verb (global-options.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DCS_SCHEMES, DEFAULT_PORTS, dcsUrlHostPort, dcsUrlSections, parseDcsUrl } from './dcs-url.ts';
import { loadCtlSettings, withDcsUrl, ctlSettingsFromYaml } from './args.ts';
import { UsageError, CliError } from './errors.ts';
import { splitGlobalOptions } from './global-options.ts';

test('every scheme, with its default port and localhost', () => {
  for (const scheme of DCS_SCHEMES) {
    const u = parseDcsUrl(`${scheme}://`);
    assert.deepEqual(u, { scheme, host: undefined, port: undefined, namespace: undefined });
    assert.equal(dcsUrlHostPort(u), `localhost:${DEFAULT_PORTS[scheme]}`);
  }
  assert.deepEqual(DEFAULT_PORTS, { etcd3: 2379, etcd: 2379, zookeeper: 2181, consul: 8500, exhibitor: 8181, kubernetes: 443 });
  assert.deepEqual(parseDcsUrl('etcd3://10.0.0.1:2380/ns'), { scheme: 'etcd3', host: '10.0.0.1', port: 2380, namespace: 'ns' });
  assert.deepEqual(parseDcsUrl('ZooKeeper://zk-1.example.com'), { scheme: 'zookeeper', host: 'zk-1.example.com', port: undefined, namespace: undefined });
  assert.deepEqual(parseDcsUrl('consul://:8501'), { scheme: 'consul', host: undefined, port: 8501, namespace: undefined });
  assert.deepEqual(parseDcsUrl('etcd://[::1]:2399//a/b/'), { scheme: 'etcd', host: '[::1]', port: 2399, namespace: 'a/b' });
  assert.deepEqual(parseDcsUrl('etcd://[fe80::1%eth0]'), { scheme: 'etcd', host: '[fe80::1%eth0]', port: undefined, namespace: undefined });
  assert.deepEqual(parseDcsUrl('kubernetes://api.k8s:6443/prod'), { scheme: 'kubernetes', host: 'api.k8s', port: 6443, namespace: 'prod' });
  assert.equal(parseDcsUrl('etcd3://h/').namespace, undefined);
});

test('no scheme: the port chooses the DCS, else etcd (v2 API), as patronictl', () => {
  assert.equal(parseDcsUrl('').scheme, 'etcd');
  assert.equal(dcsUrlHostPort(parseDcsUrl('')), 'localhost:2379');
  assert.deepEqual(parseDcsUrl('localhost'), { scheme: 'etcd', host: 'localhost', port: undefined, namespace: undefined });
  assert.deepEqual(parseDcsUrl(':2399'), { scheme: 'etcd', host: undefined, port: 2399, namespace: undefined });
  assert.equal(parseDcsUrl('h:2181').scheme, 'zookeeper');
  assert.equal(parseDcsUrl('h:8181').scheme, 'exhibitor');
  assert.equal(parseDcsUrl('//h:8500').scheme, 'consul');
  assert.equal(parseDcsUrl('h:2379/ns').namespace, 'ns');
  assert.equal(parseDcsUrl('  etcd3://h:1  ').scheme, 'etcd3');
});

test('bad URLs are usage errors naming the problem', () => {
  const bad = (url: string, re: RegExp): void => {
    assert.throws(() => parseDcsUrl(url), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message), url);
  };
  bad('raft://h:1', /^Unknown dcs scheme: raft .*known: etcd3, etcd, zookeeper, consul, exhibitor, kubernetes/);
  bad('http://h:2379', /Unknown dcs scheme: http/);
  bad('etcd3://h:99999', /'99999' is not a port/);
  bad('etcd3://h:0', /'0' is not a port/);
  bad('etcd3://h:', /'' is not a port/);
  bad('etcd3://h:abc', /'abc' is not a port/);
  bad('zookeeper://a:1:2', /IPv6 address must be written in brackets/);
  bad('etcd3://[::1', /IPv6 address must be written in brackets/);
  bad('etcd3://user:pw@h:2379', /credentials/);
  bad('etcd3://h:2379?x=1', /query/);
  bad('etcd3://h!x', /'h!x' is not a host/);
  bad('etcd3://h x', /white space/);
  bad('3tcd://h', /expected \[SCHEME:\/\/\]/);
  bad('etcd3:/h', /'' is not a port/);
});

test('each URL becomes the DCS section the factory builds its backend from', () => {
  const sec = (url: string, fileK8s?: unknown, env: NodeJS.ProcessEnv = {}): ReturnType<typeof dcsUrlSections> => dcsUrlSections(url, parseDcsUrl(url), fileK8s, env);
  assert.deepEqual(sec('etcd3://h:1'), { etcd3: { hosts: ['h:1'], protocol: 'http' } });
  assert.deepEqual(sec('etcd://h'), { etcd: { hosts: ['h:2379'], protocol: 'http' } });
  const zk = sec('zookeeper://z');
  assert.deepEqual((zk.zookeeper as { hosts: string[] }).hosts, ['z:2181']);
  assert.equal((sec('consul://c:8501').consul as { host: string }).host, 'c:8501');
  assert.throws(() => sec('exhibitor://e'), (e: unknown) => e instanceof CliError && /Exhibitor DCS is not implemented/.test(e.message));
  // kubernetes: labels and the rest from the file's section; API server and namespace from the URL.
  const k8s = sec('kubernetes://api:6443/prod', { labels: { application: 'patroni' }, namespace: 'other' }).kubernetes as { apiHost: string; apiPort: number; namespace: string; labels: unknown };
  assert.deepEqual([k8s.apiHost, k8s.apiPort, k8s.namespace, k8s.labels], ['api', 6443, 'prod', { application: 'patroni' }]);
  const inCluster = sec('kubernetes://', undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '8443', PATRONI_KUBERNETES_LABELS: '{app: x}' }).kubernetes as { apiHost: string; apiPort: number; namespace: string };
  assert.deepEqual([inCluster.apiHost, inCluster.apiPort, inCluster.namespace], ['10.0.0.1', 8443, 'default']);
  assert.equal((sec('kubernetes://[::1]', { labels: { a: 'b' } }).kubernetes as { apiPort: number; apiHost: string }).apiHost, '::1');
  assert.throws(() => sec('kubernetes://api'), (e: unknown) => e instanceof CliError && /kubernetes\.labels: is required/.test(e.message));
  assert.throws(() => sec('kubernetes:///ns', { labels: { a: 'b' } }), (e: unknown) => e instanceof CliError && /KUBERNETES_SERVICE_HOST/.test(e.message));
});

test('the URL replaces every DCS section of the file, and the namespace when it has a path', async () => {
  const file = ctlSettingsFromYaml('scope: s\nnamespace: ns0\netcd3:\n  hosts: a:1\nkubernetes:\n  labels: {application: p}\n', {});
  assert.ok(file.etcd3 !== undefined);
  const zk = withDcsUrl(file, 'zookeeper://z:2/ns1', {});
  assert.equal(zk.etcd3, undefined);
  assert.deepEqual(Object.keys(zk.sections ?? {}), ['zookeeper']);
  assert.equal(zk.namespace, 'ns1');
  assert.equal(zk.dcsLabel, 'zookeeper at z:2');
  const e3 = withDcsUrl(file, 'etcd3://b:3', {});
  assert.deepEqual(e3.etcd3, { hosts: ['b:3'], protocol: 'http' });
  assert.equal(e3.sections, undefined);
  assert.equal(e3.namespace, 'ns0');
  const k8s = withDcsUrl(file, 'kubernetes://api/prod', {});
  assert.equal(k8s.namespace, 'ns0', "Patroni's namespace stays: the path is the Kubernetes namespace");
  assert.equal((k8s.sections?.kubernetes as { namespace: string }).namespace, 'prod');

  const dir = await mkdtemp(join(tmpdir(), 'vigil-dcs-url-'));
  try {
    const none = join(dir, 'none.yml');
    await writeFile(none, 'scope: s\n');
    const viaEnv = await loadCtlSettings({ configFile: none, env: { DCS_URL: 'consul://c' } });
    assert.deepEqual(Object.keys(viaEnv.sections ?? {}), ['consul']);
    const flagWins = await loadCtlSettings({ configFile: none, dcsUrl: 'etcd://e', env: { DCS_URL: 'consul://c' } });
    assert.deepEqual(Object.keys(flagWins.sections ?? {}), ['etcd']);
    await assert.rejects(loadCtlSettings({ configFile: none, dcsUrl: 'nope://x', env: {} }), /Unknown dcs scheme: nope/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a patronictl file (not a daemon configuration) with another DCS than etcd3', () => {
  const zk = ctlSettingsFromYaml('scope: s\nzookeeper:\n  hosts: [z:1]\n', {});
  assert.deepEqual((zk.sections?.zookeeper as { hosts: string[] }).hosts, ['z:1']);
  const etcd = ctlSettingsFromYaml('etcd:\n  host: e:2\nconsul:\n  host: c:3\n', {});
  assert.deepEqual(Object.keys(etcd.sections ?? {}), ['consul'], "Patroni's order: consul before etcd");
  const env = ctlSettingsFromYaml('etcd:\n  hosts: [e:2]\n', { PATRONI_ETCD_HOSTS: 'f:4' });
  assert.deepEqual((env.sections?.etcd as { hosts: string[] }).hosts, ['f:4']);
  const broken = ctlSettingsFromYaml('zookeeper:\n  port: 1\n', {});
  assert.equal(broken.sections, undefined);
  assert.match(broken.notes.join(), /zookeeper\.hosts/);
  assert.match(ctlSettingsFromYaml('raft:\n  self_addr: x\n', {}).notes.join(), /Raft DCS is not implemented/);
});

test('global options before the verb, in click spellings', () => {
  assert.deepEqual(splitGlobalOptions(['-c', 'f.yml', 'list', '-e']), { args: ['--config-file=f.yml'], help: false, version: false, rest: ['list', '-e'] });
  assert.deepEqual(splitGlobalOptions(['--dcs-url', 'zookeeper://z', '-k', 'list']).args, ['--dcs-url=zookeeper://z', '--insecure']);
  assert.deepEqual(splitGlobalOptions(['--dcs=etcd://e', '--config-file=x=y', '--insecure', 'topology']).args, ['--dcs-url=etcd://e', '--config-file=x=y', '--insecure']);
  assert.deepEqual(splitGlobalOptions(['-kc', 'f', '-detcd3://h', 'query', '-c', 'SELECT 1']), {
    args: ['--insecure', '--config-file=f', '--dcs-url=etcd3://h'],
    help: false,
    version: false,
    rest: ['query', '-c', 'SELECT 1'],
  });
  assert.deepEqual(splitGlobalOptions(['-c', '-odd-name.yml', 'list']).args, ['--config-file=-odd-name.yml']);
  assert.deepEqual(splitGlobalOptions(['--', '-x']).rest, ['-x']);
  assert.equal(splitGlobalOptions(['-h']).help, true);
  assert.equal(splitGlobalOptions(['--version']).version, true);
  assert.deepEqual(splitGlobalOptions([]).rest, []);
  assert.throws(() => splitGlobalOptions(['-c']), (e: unknown) => e instanceof UsageError && /'-c' needs a value/.test(e.message));
  assert.throws(() => splitGlobalOptions(['--dcs-url']), /'--dcs-url' needs a value/);
  assert.throws(() => splitGlobalOptions(['-e', 'list']), /unknown option '-e' before the command/);
  assert.throws(() => splitGlobalOptions(['--insecure=yes', 'list']), /unknown option '--insecure=yes'/);
});
