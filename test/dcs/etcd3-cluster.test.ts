// etcd3 cluster awareness against three real etcd 3.4 members on loopback: from one seed the
// client finds every member (GET member list) and spreads over them, or through DNS SRV records
// (a local dnsmasq); when the member it talks to stops (twice), freezes, or etcd's raft leader is
// killed, under a loop of HA verbs, it moves to another one with no verb failing and no leader
// refresh lost (no false demotion) while a majority lives. The same for the etcd v2 backend (the members serve --enable-v2).
// Run: node --import tsx --test --test-concurrency=1 test/dcs/etcd3-cluster.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster.ts';
import { startDns, type DnsServer } from '../support/etcd-dns.ts';
import { Etcd3Dcs } from '../../src/dcs/etcd3.ts';
import { Etcd2Dcs } from '../../src/dcs/etcd2.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';

type ClusterDcs = Dcs & { endpoints(): { hosts: readonly string[]; current: string | undefined } };

const T = { timeout: 120_000 };
/** loop_wait + 2 * retry_timeout <= ttl, as Patroni requires. */
const TTL = 12;
const RETRY_TIMEOUT = 5;

let etcd: EtcdCluster;
let dns: DnsServer | undefined;
let seq = 0;
const clients: ClusterDcs[] = [];

function client(name: string, prefix: string, hosts: string[], extra: { useProxies?: boolean; srv?: string; srvSuffix?: string; dnsServers?: string[] } = {}): Etcd3Dcs {
  const d = new Etcd3Dcs({ hosts, protocol: 'http', prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT, ...extra });
  clients.push(d);
  return d;
}

function client2(name: string, prefix: string, hosts: string[]): Etcd2Dcs {
  const d = new Etcd2Dcs({ hosts, protocol: 'http', prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT });
  clients.push(d);
  return d;
}

/** Calls readCluster until the client uses `n` hosts (the member list is read in the background). */
async function discovered(d: ClusterDcs, n: number): Promise<readonly string[]> {
  for (let i = 0; i < 100; i++) {
    await d.readCluster();
    const { hosts } = d.endpoints();
    if (hosts.length === n) return hosts;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the client still uses ${d.endpoints().hosts.join(',')}`);
}

/** The member that is etcd's raft leader now (asked over the v3 gateway). */
async function raftLeader(): Promise<(typeof etcd.members)[number]> {
  const ep = etcd.members.find((m) => m.running())?.endpoint;
  const post = async <R>(path: string): Promise<R> => (await (await fetch(`http://${ep}/v3${path}`, { method: 'POST', body: '{}' })).json()) as R;
  const status = await post<{ leader?: string }>('/maintenance/status');
  const list = await post<{ members?: { ID?: string; name?: string }[] }>('/cluster/member/list');
  const name = list.members?.find((m) => m.ID === status.leader)?.name;
  const member = etcd.members.find((m) => m.name === name);
  if (!member) throw new Error(`no raft leader found (${status.leader})`);
  return member;
}

describe('etcd3 cluster awareness (three real etcd members)', () => {
  before(async () => {
    etcd = await startEtcdCluster({ members: 3, enableV2: true });
  });
  after(async () => {
    await Promise.all(clients.map((d) => d.close()));
    await etcd?.stop();
    await dns?.stop();
  });

  it('finds every member from one seed; with use_proxies keeps the seed', T, async () => {
    const prefix = `/vigil-cluster/c${++seq}/`;
    const seed = etcd.endpoints[1] as string;
    const hosts = await discovered(client('a', prefix, [seed]), 3);
    assert.deepEqual([...hosts].sort(), [...etcd.endpoints].sort());

    const proxied = client('b', prefix, [seed], { useProxies: true });
    for (let i = 0; i < 5; i++) await proxied.readCluster();
    assert.deepEqual(proxied.endpoints().hosts, [seed]);
  });

  it('finds the members through DNS SRV records (client records, srv_suffix, server records)', T, async () => {
    const [m0, m1] = etcd.members;
    assert.ok(m0 && m1);
    const split = (hp: string): { target: string; port: number } => ({ target: hp.split(':')[0] as string, port: Number(hp.split(':')[1]) });
    dns = await startDns([
      { name: '_etcd-client._tcp.client.test', ...split(m0.endpoint) },
      { name: '_etcd-client-vigil._tcp.suffix.test', ...split(m1.endpoint) },
      { name: '_etcd-server._tcp.peer.test', ...split(m1.peerEndpoint) },
    ]);
    const prefix = `/vigil-cluster/c${++seq}/`;
    const all = [...etcd.endpoints].sort();
    for (const [srv, srvSuffix] of [['client.test', undefined], ['suffix.test', 'vigil'], ['peer.test', undefined]] as const) {
      const d = client('a', prefix, [], { srv, ...(srvSuffix ? { srvSuffix } : {}), dnsServers: [dns.address] });
      assert.deepEqual([...(await discovered(d, 3))].sort(), all, `srv ${srv}`);
    }
    // No record at all: unavailable, named.
    const none = client('a', prefix, [], { srv: 'nothing.test', dnsServers: [dns.address] });
    none.setRetryTimeout(1);
    await assert.rejects(none.readCluster(), /no member found through DNS SRV records of nothing.test/);
  });

  const kinds: [string, (name: string, prefix: string, hosts: string[]) => ClusterDcs][] = [['etcd3', client], ['etcd v2', client2]];
  for (const [kind, make] of kinds) it(`${kind}: the member in use stops under a loop of HA verbs: no verb fails, the leader never loses its lock`, T, async () => {
    const prefix = `/vigil-cluster/c${++seq}/`;
    const a = make('a', prefix, [etcd.endpoints[0] as string]);
    const b = make('b', prefix, [etcd.endpoints[2] as string]);
    await discovered(a, 3);
    await discovered(b, 3);
    assert.equal(await a.acquireLeader(), true);

    const failures: string[] = [];
    let rounds = 0;
    let stop = false;
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        const steps: [string, () => Promise<unknown>][] = [
          ['a.refreshLeader', async () => {
            if (!(await a.refreshLeader())) throw new Error('refreshLeader returned false');
          }],
          ['a.touchMember', () => a.touchMember({ api_url: 'http://a/patroni', state: 'running', role: 'primary', xlog_location: i })],
          ['a.writeStatus', () => a.writeStatus({ optime: i })],
          ['a.readCluster', () => a.readCluster()],
          ['b.readCluster', async () => {
            const v = await b.readCluster();
            if (v.leader?.name !== 'a') throw new Error(`b sees leader ${v.leader?.name ?? 'none'}`);
          }],
          ['b.touchMember', () => b.touchMember({ api_url: 'http://b/patroni', state: 'streaming', role: 'replica', xlog_location: i })],
        ];
        for (const [what, fn] of steps) {
          try {
            await fn();
          } catch (err) {
            failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        rounds++;
      }
    })();
    /** Let the loop run `n` more full rounds. */
    const rounds$ = async (n: number): Promise<void> => {
      const target = rounds + n;
      while (rounds < target && failures.length === 0) await new Promise((r) => setTimeout(r, 20));
    };

    try {
      await rounds$(3);
      for (let k = 0; k < 2; k++) {
        const inUse = a.endpoints().current;
        const member = etcd.members.find((m) => m.endpoint === inUse);
        assert.ok(member, `a talks to ${inUse}`);
        await member.stop();
        await rounds$(10);
        assert.deepEqual(failures, []);
        assert.notEqual(a.endpoints().current, inUse, 'a moved to another member');
        await member.start();
        await rounds$(3);
      }
      // The member in use freezes (SIGSTOP: connections open, no answer): attempts on it time out
      // within their share of the deadline, and the next member answers.
      const frozen = etcd.members.find((m) => m.endpoint === a.endpoints().current);
      assert.ok(frozen);
      await frozen.pause();
      await rounds$(5);
      assert.deepEqual(failures, []);
      frozen.resume();
      await rounds$(3);
      // etcd's raft leader crashes (in use or not): a new election happens under the verbs.
      const leader = await raftLeader();
      await leader.crash();
      await rounds$(10);
      assert.deepEqual(failures, []);
      await leader.start();
      await rounds$(3);
    } finally {
      stop = true;
      await loop;
    }
    assert.deepEqual(failures, []);
    const view = await b.readCluster();
    assert.equal(view.leader?.name, 'a');
    assert.equal(view.status?.optime !== undefined, true);
  });
});
