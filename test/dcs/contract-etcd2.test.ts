// The Dcs contract (contract.ts) for the etcd v2 backend against a real etcd 3.4 started with
// --enable-v2, through the factory; plus what Patroni's v2 layout needs beyond it: leader and
// member keys carry the TTL, and a leader refresh keeps the watchers asleep; and, when installed,
// Patroni 3.0.2's patronictl listing a Vigil-written v2 cluster and editing its config (CAS on
// prevIndex) for Vigil to read; basic authentication against etcd's v2 auth.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/contract-etcd2.test.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';

import { startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import { DcsError, type Dcs } from '../../src/dcs/dcs.ts';
import { Etcd2Dcs } from '../../src/dcs/etcd2.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

const TTL = 3;
const RETRY_TIMEOUT = 3;

let etcd: EtcdCluster;
let seq = 0;

interface V2Node { value?: string; ttl?: number; expiration?: string; modifiedIndex?: number }

/** A plain v2 GET, independent of the client under test. */
async function getKey(key: string): Promise<V2Node | undefined> {
  const res = await fetch(`http://${etcd.endpoints[0]}/v2/keys${key}`, { signal: AbortSignal.timeout(5000) });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET ${key} answered ${res.status}`);
  return ((await res.json()) as { node: V2Node }).node;
}

function sessionOf(client: Dcs): string | undefined {
  if (!(client instanceof Etcd2Dcs)) throw new Error('not an Etcd2Dcs');
  return client.session;
}

function cluster(): DcsTestCluster {
  seq += 1;
  const prefix = `/vigil-contract/c${seq}-${process.pid}/`;
  const clients: Dcs[] = [];
  return {
    ttl: TTL,
    client(name) {
      const d = createDcs({ etcd: { hosts: [etcd.endpoints[0] as string], protocol: 'http' } }, { prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT });
      clients.push(d);
      return d;
    },
    session: sessionOf,
    async expireSession(client) {
      const name = (client as Etcd2Dcs).session === undefined ? undefined : prefix;
      if (name === undefined) throw new Error('the client wrote no TTL key');
      // No refresh meanwhile: wait for etcd to expire the TTL keys (leader and members).
      for (let i = 0; i < 300; i++) {
        const r = await fetch(`http://${etcd.endpoints[0]}/v2/keys${prefix}?recursive=true`);
        const body = (await r.json()) as { node?: { nodes?: { key: string; expiration?: string; nodes?: { expiration?: string }[] }[] } };
        const withTtl = (body.node?.nodes ?? []).some((n) => n.expiration !== undefined || (n.nodes ?? []).some((m) => m.expiration !== undefined));
        if (!withTtl) return;
        await sleep(100);
      }
      throw new Error('the TTL keys did not expire within 30 s');
    },
    async elapse(ms) {
      await sleep(ms);
    },
    async unreachable(client, fn) {
      client.setRetryTimeout(1);
      await etcd.members[0]?.pause();
      try {
        return await fn();
      } finally {
        etcd.members[0]?.resume();
        client.setRetryTimeout(RETRY_TIMEOUT);
      }
    },
    async raw(rel) {
      const node = await getKey(prefix + rel);
      if (node === undefined) return undefined;
      return { value: node.value ?? '', session: node.expiration === undefined ? '0' : String(Math.max(1, node.ttl ?? 0)) };
    },
    async writeRaw(rel, value) {
      const res = await fetch(`http://${etcd.endpoints[0]}/v2/keys${prefix}${rel}`, { method: 'PUT', body: new URLSearchParams({ value }), signal: AbortSignal.timeout(5000) });
      if (res.status !== 200 && res.status !== 201) throw new Error(`PUT ${rel} answered ${res.status}`);
    },
    async close() {
      await Promise.all(clients.map((d) => d.close()));
    },
  };
}

dcsContract('etcd v2 (real etcd --enable-v2)', {
  sessions: 'ttl',
  async setup() {
    etcd = await startEtcdCluster({ enableV2: true });
  },
  async teardown() {
    await etcd?.stop();
  },
  cluster,
});

describe("etcd v2: Patroni's TTL keys", () => {
  let own: EtcdCluster;
  before(async () => {
    own = await startEtcdCluster({ enableV2: true });
  });
  after(async () => {
    await own?.stop();
  });

  it('leader and member keys carry ttl; a refresh rewrites the leader with its TTL but does not wake a watch', { timeout: 60_000 }, async () => {
    const prefix = '/service/batman/';
    const mk = (name: string): Etcd2Dcs => new Etcd2Dcs({ hosts: [own.endpoints[0] as string], protocol: 'http', prefix, name, ttl: 20, retryTimeout: 3 });
    const a = mk('a');
    const b = mk('b');
    try {
      assert.equal(await a.acquireLeader(), true);
      await a.touchMember({ api_url: 'http://a/patroni' });
      const get = async (rel: string): Promise<V2Node | undefined> => {
        const res = await fetch(`http://${own.endpoints[0]}/v2/keys${prefix}${rel}`);
        return res.status === 404 ? undefined : ((await res.json()) as { node: V2Node }).node;
      };
      const leader = await get('leader');
      assert.equal(leader?.value, 'a');
      assert.ok(leader?.ttl !== undefined && leader.ttl > 0 && leader.ttl <= 20);
      assert.ok((await get('members/a'))?.ttl !== undefined);
      assert.equal(await a.writeConfig({ ttl: 20 }), true);
      assert.equal((await get('config'))?.ttl, undefined, 'config has no TTL');

      // A refresh is a rewrite (Patroni's prevValue write): new index, the watch stays asleep.
      const rev = (await b.readCluster()).revision;
      let woken = false;
      const watch = b.watchLeader(rev, 1500).then(() => (woken = true));
      assert.equal(await a.refreshLeader(), true);
      assert.ok(((await get('leader'))?.modifiedIndex ?? 0) > (leader.modifiedIndex ?? 0));
      assert.equal(woken, false);
      await watch; // by its timeout
      // A real change wakes it.
      const rev2 = (await b.readCluster()).revision;
      const watch2 = b.watchLeader(rev2, 600_000);
      assert.equal(await a.releaseLeader(), true);
      await watch2;
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('patronictl (Patroni 3.0.2, etcd section) lists the cluster Vigil wrote and edits its config', { timeout: 60_000, skip: !existsSync('/usr/bin/patronictl') }, async () => {
    const prefix = '/service/v2ctl/';
    const mk = (name: string): Etcd2Dcs => new Etcd2Dcs({ hosts: [own.endpoints[0] as string], protocol: 'http', prefix, name, ttl: 30, retryTimeout: 3 });
    const a = mk('a');
    const b = mk('b');
    try {
      assert.equal(await a.attemptInitialize(), true);
      await a.writeInitialize('7268616322854375442');
      assert.equal(await a.writeConfig({ ttl: 30, loop_wait: 10, retry_timeout: 10 }), true);
      assert.equal(await a.acquireLeader(), true);
      await a.touchMember({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'primary', timeline: 1 });
      await b.touchMember({ conn_url: 'postgres://127.0.0.2:5432/postgres', api_url: 'http://127.0.0.2:1/patroni', state: 'streaming', role: 'replica', timeline: 1 });
      const cfg = join(own.dir, 'patronictl.yml');
      await writeFile(cfg, `scope: v2ctl\nnamespace: /service/\netcd:\n  hosts: ${own.endpoints[0]}\n`);
      const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
        execFile('/usr/bin/patronictl', ['-c', cfg, ...args], { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }));
      });
      const list = await run(['list', '-f', 'json']);
      assert.equal(list.code, 0, list.stderr.slice(0, 2000));
      const rows = JSON.parse(list.stdout) as { Member: string; Role: string }[];
      assert.deepEqual(rows.map((r) => [r.Member, r.Role]), [['a', 'Leader'], ['b', 'Replica']]);
      const edit = await run(['edit-config', '--force', '-s', 'loop_wait=5']);
      assert.equal(edit.code, 0, edit.stderr.slice(0, 2000));
      assert.deepEqual((await b.readCluster()).config, { ttl: 30, loop_wait: 5, retry_timeout: 10 });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('etcd v2: basic authentication', () => {
  let secured: EtcdCluster;
  before(async () => {
    secured = await startEtcdCluster({ enableV2: true });
    const call = async (path: string, body?: object, auth?: string): Promise<void> => {
      const res = await fetch(`http://${secured.endpoints[0]}${path}`, {
        method: 'PUT',
        ...(body ? { body: JSON.stringify(body) } : {}),
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) },
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${path} answered ${res.status}`);
    };
    // A root user, auth on, and the guest role without rights: anonymous requests are refused.
    await call('/v2/auth/users/root', { user: 'root', password: 'pw' });
    await call('/v2/auth/enable');
    await call('/v2/auth/roles/guest', { role: 'guest', revoke: { kv: { read: ['/*'], write: ['/*'] } } }, 'root:pw');
  });
  after(async () => {
    await secured?.stop();
  });

  it('username/password are sent; wrong or missing credentials are DCS_AUTH', { timeout: 60_000 }, async () => {
    const mk = (creds: { username?: string; password?: string }): Etcd2Dcs =>
      new Etcd2Dcs({ hosts: [secured.endpoints[0] as string], protocol: 'http', prefix: '/service/auth/', name: 'a', ttl: 5, retryTimeout: 2, ...creds });
    const good = mk({ username: 'root', password: 'pw' });
    const bad = mk({ username: 'root', password: 'wrong' });
    const none = mk({});
    try {
      assert.equal(await good.acquireLeader(), true);
      assert.equal((await good.readCluster()).leader?.name, 'a');
      for (const d of [bad, none]) {
        await assert.rejects(d.readCluster(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_AUTH');
      }
    } finally {
      await Promise.all([good.close(), bad.close(), none.close()]);
    }
  });
});
