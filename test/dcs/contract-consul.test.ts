// The Dcs contract (contract.ts) through the Consul backend (factory -> ConsulDcs) against the FAKE
// Consul agent of test/support/consul-fake.ts: no real Consul server can be installed here, so this
// checks the backend against Consul's documented HTTP semantics as the fake reproduces them (see
// that file's header and docs/dcs-consul.md), not against Consul itself.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/contract-consul.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { ConsulFake } from '../support/consul-fake.ts';
import { run } from '../support/cli.ts';
import { makePki, type Pki } from '../support/pki.ts';
import { ConsulSettingError } from '../../src/dcs/consul.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import { DcsError, type Dcs } from '../../src/dcs/dcs.ts';
import { KvDcs } from '../../src/dcs/kv-dcs.ts';
import { parseConsulSettings, type ConsulSettings } from '../../src/dcs/consul-settings.ts';
import { dcsContract, type DcsTestCluster } from './contract.ts';

/** Patroni's ttl: sessions get TTL ttl/2 = 1 s, invalidated by the agent 2 s after the last renewal. */
const TTL = 2;
const RETRY_TIMEOUT = 3;
const TOKEN = 'contract-token';

let consul: ConsulFake;
let seq = 0;

function sessionOf(client: Dcs): string | undefined {
  if (!(client instanceof KvDcs)) throw new Error('not a KvDcs');
  return client.session;
}

/** A plain call to the fake, independent of the client under test. */
async function agent(path: string): Promise<Response> {
  return fetch(`http://${consul.address}${path}`, { headers: { 'x-consul-token': TOKEN }, signal: AbortSignal.timeout(5000) });
}

function cluster(): DcsTestCluster {
  seq += 1;
  const scope = `c${seq}-${process.pid}`;
  const prefix = `/vigil-contract/${scope}/`;
  const clients: Dcs[] = [];
  const { settings } = parseConsulSettings({ host: consul.address, token: TOKEN });
  if (settings === undefined) throw new Error('bad test settings');
  return {
    ttl: TTL,
    client(name) {
      const d = createDcs({ consul: settings }, { prefix, name, ttl: TTL, retryTimeout: RETRY_TIMEOUT });
      clients.push(d);
      return d;
    },
    session: sessionOf,
    async expireSession(client) {
      const id = sessionOf(client);
      if (id === undefined) throw new Error('the client holds no session');
      // The agent's own TTL expiry (no destroy): gone once session/info answers [].
      for (let i = 0; i < 300; i++) {
        const list = (await (await agent(`/v1/session/info/${id}`)).json()) as unknown[];
        if (list.length === 0) return;
        await sleep(100);
      }
      throw new Error(`session ${id} did not expire within 30 s`);
    },
    async elapse(ms) {
      await sleep(ms);
    },
    async unreachable(client, fn) {
      client.setRetryTimeout(1);
      consul.pause();
      try {
        return await fn();
      } finally {
        consul.resume();
        client.setRetryTimeout(RETRY_TIMEOUT);
      }
    },
    async raw(rel) {
      const res = await agent(`/v1/kv/${prefix.slice(1)}${rel}`);
      if (res.status === 404) return undefined;
      const [kv] = (await res.json()) as { Value: string | null; Session?: string }[];
      if (kv === undefined) return undefined;
      return { value: kv.Value === null ? '' : Buffer.from(kv.Value, 'base64').toString('utf8'), session: kv.Session ?? '' };
    },
    async writeRaw(rel, value) {
      const res = await fetch(`http://${consul.address}/v1/kv/${prefix.slice(1)}${rel}`, { method: 'PUT', body: value, headers: { 'x-consul-token': TOKEN }, signal: AbortSignal.timeout(5000) });
      if (res.status !== 200) throw new Error(`PUT ${rel} answered ${res.status}`);
    },
    async close() {
      await Promise.all(clients.map((d) => d.close()));
    },
  };
}

dcsContract('consul (FAKE Consul agent, test/support/consul-fake.ts)', {
  async setup() {
    consul = await ConsulFake.start({ token: TOKEN, sessionTtlMinMs: 1000 });
  },
  async teardown() {
    await consul?.stop();
  },
  cluster,
});

// ---- Consul specifics (the same fake agent, its own instance) ---------------------------------

describe("Consul backend: Patroni's wire layout on the FAKE agent", () => {
  let fake: ConsulFake;
  const prefix = '/service/batman/';
  const opts = { prefix, ttl: 30, retryTimeout: 2 };
  const closing: Dcs[] = [];
  const settings = (extra: Record<string, unknown> = {}): ConsulSettings => {
    const { settings: s } = parseConsulSettings({ host: fake.address, token: TOKEN, ...extra });
    assert.ok(s);
    return s;
  };
  const client = (name: string, s: ConsulSettings = settings(), more: { ttl?: number; ctl?: boolean } = {}): Dcs => {
    const d = createDcs({ consul: s }, { ...opts, ...more, name });
    closing.push(d);
    return d;
  };
  const get = async (path: string): Promise<unknown> => (await fetch(`http://${fake.address}${path}`, { headers: { 'x-consul-token': TOKEN } })).json();

  before(async () => {
    fake = await ConsulFake.start({ token: TOKEN, sessionTtlMinMs: 1000 });
  });
  after(async () => {
    for (const d of closing) await d.close();
    await fake.stop();
  });

  it("sessions are created with Patroni's body: <scope>-<name>, TTL ttl/2, lock-delay 1 ms, behavior delete, no checks", async () => {
    const a = client('pg0');
    assert.equal(await a.acquireLeader(), true);
    const [info] = (await get(`/v1/session/info/${sessionOf(a)}`)) as { Name: string; TTL: string; LockDelay: number; Behavior: string; Checks: string[] }[];
    assert.deepEqual([info?.Name, info?.TTL, info?.LockDelay, info?.Behavior, info?.Checks], ['batman-pg0', '15.0s', 1e6, 'delete', []]);
    const [leader] = (await get('/v1/kv/service/batman/leader')) as { Session: string; Value: string }[];
    assert.equal(leader?.Session, sessionOf(a));
    assert.equal(Buffer.from(leader?.Value ?? '', 'base64').toString(), 'pg0');
    assert.ok(fake.log.some((l) => l.startsWith('PUT /v1/kv/service/batman/leader?acquire=')), 'the leader is taken with ?acquire=<session>');
  });

  it('a ttl change: the new session takes over the leader and member keys, then the replaced one is destroyed (not left up to 2 x TTL)', async () => {
    const p = { prefix: '/service/ttlchange/', ttl: 30, retryTimeout: 2 };
    const a = createDcs({ consul: settings() }, { ...p, name: 'pg0' });
    const b = createDcs({ consul: settings() }, { ...p, name: 'pg1' });
    closing.push(a, b);
    const sessionInfo = async (id: string | undefined): Promise<unknown[]> => (await get(`/v1/session/info/${id}`)) as unknown[];
    const holder = async (key: string): Promise<string | undefined> => ((await get(`/v1/kv/service/ttlchange/${key}`)) as { Session?: string }[])[0]?.Session;
    const member = { api_url: 'http://127.0.0.1:8008/patroni', state: 'running' };
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember(member);
    const old = sessionOf(a);
    a.setTtl(20);
    assert.equal(await a.refreshLeader(), true);
    const fresh = sessionOf(a);
    assert.notEqual(fresh, old, 'a new session for the new ttl');
    assert.equal(await holder('leader'), fresh, 'the leader key re-bound to the new session');
    await a.readCluster();
    assert.equal((await sessionInfo(old)).length, 1, 'not ended while our member key is still bound to it (ending it would delete the key)');
    await a.touchMember(member);
    assert.equal(await holder('members/pg0'), fresh, 'the member key re-bound to the new session');
    const view = await a.readCluster();
    assert.deepEqual((await sessionInfo(old)), [], 'the replaced session is destroyed once nothing is bound to it');
    assert.equal((await sessionInfo(fresh)).length, 1);
    assert.equal(view.leader?.name, 'pg0');
    assert.deepEqual(view.members.map((m) => m.name), ['pg0']);
    assert.equal(await b.acquireLeader(), false, 'the lock stayed ours');
    assert.equal(await a.refreshLeader(), true);
  });

  it("a TTL below the agent's session_ttl_min is raised to it (Patroni reads SessionTTLMin from /v1/agent/self)", async () => {
    const a = client('pg1', settings(), { ttl: 1 });
    await a.touchMember({ api_url: 'http://127.0.0.1:8008/patroni' });
    const [info] = (await get(`/v1/session/info/${sessionOf(a)}`)) as { TTL: string }[];
    assert.equal(info?.TTL, '1.0s');
  });

  it('a wrong token is DCS_AUTH; ctl clients read with ?consistent and hold no session', async () => {
    const bad = client('pg2', { ...settings(), token: 'wrong' });
    await assert.rejects(bad.readCluster(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_AUTH');
    const ctl = client('ctl', settings(), { ctl: true });
    fake.log.length = 0;
    await ctl.readCluster();
    assert.ok(fake.log.some((l) => /^GET \/v1\/kv\/service\/batman\/\?recurse&consistent$/.test(l)), fake.log.join('\n'));
    await assert.rejects(ctl.acquireLeader(), (err: unknown) => err instanceof DcsError && err.code === 'DCS_PROTOCOL');
  });

  it('keys written by another tool that Vigil cannot parse are read as empty, never crash the read', async () => {
    const put = (key: string, body: Buffer | string): Promise<Response> =>
      fetch(`http://${fake.address}/v1/kv/service/junk/${key}`, { method: 'PUT', body, headers: { 'x-consul-token': TOKEN } });
    await put('members/odd', Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
    await put('config', '{"ttl": 30, "loop_wa');
    await put('failover', '[1,2]');
    await put('sync', 'null');
    await put('history', '{}');
    await put('status', 'not json');
    const d = createDcs({ consul: settings() }, { ...opts, prefix: '/service/junk/', name: 'reader' });
    closing.push(d);
    const view = await d.readCluster();
    assert.deepEqual(view.members.map((m) => [m.name, m.data]), [['odd', {}]]);
    assert.equal(view.config, undefined);
    assert.equal(view.failover?.leader, undefined);
    assert.equal(view.sync, undefined);
    assert.equal(view.history, undefined);
  });

  it('register_service: registered while running with the role tags and HTTP check; re-tagged on role change; deregistered when stopped', async () => {
    const a = client('pg3', settings({ register_service: true, service_tags: ['pg'], service_check_tls_server_name: 'pg.local' }));
    const member = { conn_url: 'postgres://10.0.0.3:5433/postgres', api_url: 'https://10.0.0.3:8009/patroni', state: 'running', role: 'primary' };
    await a.touchMember(member);
    const services = (await get('/v1/agent/services')) as Record<string, { Service: string; Tags: string[]; Address: string; Port: number; EnableTagOverride: boolean }>;
    assert.deepEqual(services['batman/pg3'], { ID: 'batman/pg3', Service: 'batman', Tags: ['pg', 'primary', 'master'], Address: '10.0.0.3', Port: 5433, EnableTagOverride: true });
    const checks = (await get('/v1/agent/checks')) as Record<string, { HTTP: string; Interval: string; DeregisterCriticalServiceAfter: string; TLSServerName: string }>;
    const check = checks['service:batman/pg3'];
    assert.deepEqual([check?.HTTP, check?.Interval, check?.DeregisterCriticalServiceAfter, check?.TLSServerName], ['https://10.0.0.3:8009/primary', '5s', '150.0s', 'pg.local']);
    await a.touchMember({ ...member, role: 'standby_leader' });
    const retagged = (await get('/v1/agent/services')) as Record<string, { Tags: string[] }>;
    assert.deepEqual(retagged['batman/pg3']?.Tags, ['pg', 'standby-leader']);
    await a.touchMember({ ...member, role: 'replica', state: 'stopped' });
    assert.deepEqual(await get('/v1/agent/services'), {});
  });
});

describe("Patroni's patronictl 3.0.2 (python-consul) and Vigil on the same keys of the FAKE agent", () => {
  let fake: ConsulFake;
  let dir: string;
  const clients: Dcs[] = [];
  before(async () => {
    fake = await ConsulFake.start({ token: TOKEN });
    dir = mkdtempSync(join(tmpdir(), 'vigil-consul-'));
  });
  after(async () => {
    for (const d of clients) await d.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('patronictl lists the members Vigil wrote, and its edit-config (CAS on ModifyIndex) is read back by Vigil', async () => {
    const { settings } = parseConsulSettings({ host: fake.address, token: TOKEN });
    assert.ok(settings);
    const [a, b] = ['pg0', 'pg1'].map((name) => createDcs({ consul: settings }, { prefix: '/service/batman/', name, ttl: 30, retryTimeout: 3 })) as [Dcs, Dcs];
    clients.push(a, b);
    assert.equal(await a.attemptInitialize(), true);
    await a.writeInitialize('7268616322854375442');
    assert.equal(await a.writeConfig({ ttl: 30, loop_wait: 10 }), true);
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'primary', timeline: 1 });
    await b.touchMember({ conn_url: 'postgres://127.0.0.2:5432/postgres', api_url: 'http://127.0.0.2:1/patroni', state: 'streaming', role: 'replica', timeline: 1, xlog_location: 0 });
    const cfg = join(dir, 'patronictl.yml');
    writeFileSync(cfg, `scope: batman\nnamespace: /service/\nconsul:\n  host: ${fake.address}\n  token: ${TOKEN}\n`);

    const list = await run('patronictl', ['-c', cfg, 'list', '-f', 'json'], { timeoutMs: 30_000 });
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { Member: string; Role: string; State: string; Host: string }[];
    assert.deepEqual(rows.map((r) => [r.Member, r.Role, r.State, r.Host]), [['pg0', 'Leader', 'running', '127.0.0.1'], ['pg1', 'Replica', 'streaming', '127.0.0.2']]);

    const edit = await run('patronictl', ['-c', cfg, 'edit-config', '--force', '-s', 'loop_wait=5'], { timeoutMs: 30_000 });
    assert.equal(edit.code, 0, edit.stderr);
    assert.ok(fake.log.some((l) => /^PUT \/v1\/kv\/service\/batman\/config\?cas=\d+/.test(l)), 'patronictl wrote with ?cas=<ModifyIndex>');
    assert.deepEqual((await b.readCluster()).config, { ttl: 30, loop_wait: 5 });
  });
});

/** Patroni 3.0.2's own Consul DCS class, driven from Python: join as member p0 and race for the leader, then print the view. */
const PATRONI_SIDE = `
import sys, json
from patroni.dcs.consul import Consul
addr, token, action = sys.argv[1:4]
c = Consul({'host': addr, 'token': token, 'scope': 'batman', 'name': 'p0', 'namespace': '/service/', 'ttl': 30, 'retry_timeout': 10, 'loop_wait': 10})
out = {}
if action == 'join':
    out['touched'] = c.touch_member({'conn_url': 'postgres://10.0.0.9:5432/postgres', 'api_url': 'http://10.0.0.9:8008/patroni', 'state': 'running', 'role': 'replica'})
    out['acquired'] = c.attempt_to_acquire_leader()
    out['session'] = c._session
cl = c.get_cluster()
out['leader'] = cl.leader and cl.leader.name
out['members'] = sorted(m.name for m in cl.members)
print(json.dumps(out))
`;

describe("Patroni 3.0.2's Consul DCS class and Vigil in one cluster on the FAKE agent", () => {
  let fake: ConsulFake;
  const clients: Dcs[] = [];
  before(async () => {
    fake = await ConsulFake.start({ token: TOKEN });
  });
  after(async () => {
    for (const d of clients) await d.close();
    await fake.stop();
  });
  const patroni = async (action: 'join' | 'read'): Promise<{ touched?: boolean; acquired?: boolean; session?: string; leader: string | null; members: string[] }> => {
    const r = await run('/usr/bin/python3', ['-c', PATRONI_SIDE, fake.address, TOKEN, action], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { leader: string | null; members: string[] };
  };
  const info = async (id: string | undefined): Promise<Record<string, unknown>> => {
    const res = await fetch(`http://${fake.address}/v1/session/info/${id}`, { headers: { 'x-consul-token': TOKEN } });
    const [s] = (await res.json()) as Record<string, unknown>[];
    assert.ok(s, `session ${id}`);
    return s;
  };

  it("same session shape as Patroni's; each sees the other's leader and members; the lock passes when Patroni's session ends", async () => {
    const { settings } = parseConsulSettings({ host: fake.address, token: TOKEN });
    assert.ok(settings);
    const v = createDcs({ consul: settings }, { prefix: '/service/batman/', name: 'v1', ttl: 30, retryTimeout: 3 });
    clients.push(v);
    await v.touchMember({ conn_url: 'postgres://10.0.0.1:5432/postgres', api_url: 'http://10.0.0.1:8008/patroni', state: 'running', role: 'replica' });

    const joined = await patroni('join');
    assert.deepEqual([joined.touched, joined.acquired, joined.leader, joined.members], [true, true, 'p0', ['p0', 'v1']]);
    const theirs = await info(joined.session);
    const ours = await info(sessionOf(v));
    const shape = (s: Record<string, unknown>): unknown[] => [s.TTL, s.LockDelay, s.Behavior, s.Checks];
    assert.deepEqual(shape(theirs), ['15.0s', 1e6, 'delete', []], "Patroni's session as the spec describes it");
    assert.deepEqual(shape(ours), shape(theirs), "Vigil's session is created as Patroni's");
    assert.equal(theirs.Name, 'batman-p0');
    assert.equal(ours.Name, 'batman-v1');

    const view = await v.readCluster();
    assert.equal(view.leader?.name, 'p0');
    assert.equal(view.leader?.session, joined.session);
    assert.equal(await v.acquireLeader(), false, "Patroni's session holds the lock");

    // Patroni's node dies: its session ends (behavior delete), its keys go, the lock is free.
    await fetch(`http://${fake.address}/v1/session/destroy/${joined.session}`, { method: 'PUT', headers: { 'x-consul-token': TOKEN } });
    assert.equal(await v.acquireLeader(), true);
    const after = await patroni('read');
    assert.deepEqual([after.leader, after.members], ['v1', ['v1']]);
  });
});

describe('Consul over https (consul.cacert, cert, key, verify) on the FAKE agent', () => {
  let pki: Pki;
  let fake: ConsulFake;
  const clients: Dcs[] = [];
  before(async () => {
    pki = await makePki({ caName: 'vigil test consul CA' });
    fake = await ConsulFake.start({ tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.ca) } });
  });
  after(async () => {
    for (const d of clients) await d.close();
    await fake.stop();
    await pki.remove();
  });
  const client = (section: Record<string, unknown>): Dcs => {
    const { settings, issues } = parseConsulSettings({ url: `https://${fake.address}`, ...section });
    assert.ok(settings, JSON.stringify(issues));
    const d = createDcs({ consul: settings }, { prefix: '/service/batman/', name: 'pg0', ttl: 30, retryTimeout: 3 });
    clients.push(d);
    return d;
  };
  const unavailable = (message: RegExp) => (err: unknown): boolean =>
    err instanceof DcsError && err.code === 'DCS_UNAVAILABLE' && message.test(err.message);

  it('the agent is trusted through cacert and our client certificate (cert + key, or cert holding its key) is accepted', async () => {
    const a = client({ cacert: pki.ca, cert: pki.clientCert, key: pki.clientKey });
    assert.equal(await a.acquireLeader(), true);
    assert.equal((await a.readCluster()).leader?.name, 'pg0');
    const b = client({ cacert: pki.ca, cert: pki.clientCombined });
    assert.equal((await b.readCluster()).leader?.name, 'pg0');
    const c = client({ verify: false, cert: pki.clientCert, key: pki.clientKey });
    assert.equal((await c.readCluster()).leader?.name, 'pg0', 'verify: false skips the check of the agent');
  });

  // An untrusted agent fails at once (the client checks the certificate). A refused client
  // certificate is the server's verdict: under TLS 1.3 the client may see the server's alert (at
  // once) or only the connection closing (socket hang up: retried until retry_timeout, since a
  // restarting agent looks the same), so those two are judged by the error they name, not by time.
  it('TLS failures are DCS_UNAVAILABLE naming the cause: untrusted agent (at once), no or a foreign client certificate', async () => {
    await assert.rejects(client({ cert: pki.clientCert, key: pki.clientKey }).readCluster(), unavailable(/TLS/));
    await assert.rejects(client({ cacert: pki.ca }).readCluster(), unavailable(/TLS|socket hang up|ECONNRESET/));
    await assert.rejects(client({ cacert: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey }).readCluster(), unavailable(/TLS|socket hang up|ECONNRESET/));
  });

  it('a TLS file that cannot be read is a ConsulSettingError naming the setting', () => {
    assert.throws(() => client({ cacert: '/nonexistent/ca.crt' }), (err: unknown) => err instanceof ConsulSettingError && err.setting === 'consul.cacert');
  });
});

describe('Consul adapter: an unanswered request names its first error, not only the last timeout', () => {
  it('a connection closed at once, then silence: the DcsError names the hang-up as well as the timeout', async () => {
    const { createServer } = await import('node:net');
    let connections = 0;
    const held: import('node:net').Socket[] = [];
    // First connection: closed at once (as a TLS 1.3 agent refusing our certificate may look).
    // Later ones: accepted and never answered, so the last attempt ends in a short timeout.
    const server = createServer((sock) => {
      connections += 1;
      if (connections === 1) sock.destroy();
      else held.push(sock);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const { settings, issues } = parseConsulSettings({ url: `http://127.0.0.1:${port}` });
    assert.ok(settings, JSON.stringify(issues));
    const d = createDcs({ consul: settings }, { prefix: '/service/batman/', name: 'pg0', ttl: 30, retryTimeout: 3 });
    try {
      await assert.rejects(d.readCluster(), (err: unknown) => {
        assert.ok(err instanceof DcsError && err.code === 'DCS_UNAVAILABLE', String(err));
        assert.match(err.message, /socket hang up|ECONNRESET/, 'the first error is named');
        assert.match(err.message, /last: .*did not answer/, 'and the last one');
        return true;
      });
      assert.ok(connections >= 2, `retried (${connections} connections)`);
    } finally {
      await d.close();
      for (const sock of held) sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
