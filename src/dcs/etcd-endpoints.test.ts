// EtcdEndpoints: the order of SRV names, member URLs to hosts, spreading and failover.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { EtcdEndpoints, hostOfUrl, srvNames } from './etcd-endpoints.ts';

test("SRV names in Patroni's order, by protocol, with the suffix", () => {
  assert.deepEqual(srvNames('example.org', undefined, 'http').map((n) => n.name), ['_etcd-client._tcp.example.org', '_etcd._tcp.example.org', '_etcd-server._tcp.example.org']);
  assert.deepEqual(srvNames('example.org', 'c1', 'https').map((n) => [n.name, n.server]), [
    ['_etcd-client-ssl-c1._tcp.example.org', false],
    ['_etcd-ssl-c1._tcp.example.org', false],
    ['_etcd-server-ssl-c1._tcp.example.org', true],
  ]);
});

test('client URLs: only the protocol in use; default port; IPv6', () => {
  assert.equal(hostOfUrl('http://10.0.0.1:2379', 'http'), '10.0.0.1:2379');
  assert.equal(hostOfUrl('http://etcd1', 'http'), 'etcd1:2379');
  assert.equal(hostOfUrl('https://etcd1:1', 'http'), undefined);
  assert.equal(hostOfUrl('http://[::1]:2379', 'http'), '[::1]:2379');
  assert.equal(hostOfUrl('nonsense', 'http'), undefined);
});

test('the member list replaces the seeds; failover moves on; the seeds come back after a failed round', () => {
  const ep = new EtcdEndpoints({ hosts: ['seed:1'], protocol: 'http' });
  assert.equal(ep.refreshDue(0), true);
  ep.refreshStarted(0);
  assert.equal(ep.refreshDue(1000), false);
  ep.adopt(['http://a:1', 'http://b:1', 'http://c:1', 'https://d:1']);
  assert.deepEqual([...ep.list], ['a:1', 'b:1', 'c:1']);
  const first = ep.current();
  assert.ok(first);
  ep.failover(first.index);
  assert.notEqual(ep.current()?.host, first.host);
  assert.equal(ep.refreshDue(1000), true, 'asked again after a failover');
  // A concurrent call that failed on the same member does not skip a second one.
  const second = ep.current();
  ep.failover(first.index);
  assert.equal(ep.current()?.host, second?.host);
  // The same members again: the current one is kept.
  ep.adopt(['http://c:1', 'http://a:1', 'http://b:1']);
  assert.equal(ep.current()?.host, second?.host);
  ep.roundFailed();
  assert.deepEqual([...ep.list], ['a:1', 'b:1', 'c:1', 'seed:1']);
  assert.equal(ep.refreshDue(400_000), true, 'refreshed every 5 minutes');
});

test('use_proxies: no member list; srv without hosts starts empty', () => {
  const ep = new EtcdEndpoints({ hosts: ['p:1'], protocol: 'http', useProxies: true });
  assert.equal(ep.refreshDue(0), false);
  const srv = new EtcdEndpoints({ hosts: [], protocol: 'http', srv: 'example.org' });
  assert.equal(srv.current(), undefined);
  assert.throws(() => new EtcdEndpoints({ hosts: [], protocol: 'http' }), /at least one host/);
});
