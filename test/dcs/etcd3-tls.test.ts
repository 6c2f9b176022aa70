// The etcd3 adapter over TLS against a real etcd 3.4 (/usr/bin/etcd) serving https on loopback with
// --client-cert-auth, certificates made by openssl (test/support/etcd.ts makeTestPki); the
// transport's abort and timeout contract against a loopback server that never answers; the
// settings wired through `vigil agent` (makeDcs), `vigil list` and `vigil history`; and, when
// installed, Patroni 3.0.2's patronictl reading the same etcd with the same configuration file.
// Run: node --import tsx --test --test-concurrency=1 test/dcs/etcd3-tls.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, makeTestPki, startEtcd, type EtcdServer, type TestPki } from '../support/etcd.ts';
import { Etcd3Dcs, Etcd3SettingError, type Etcd3Options } from '../../src/dcs/etcd3.ts';
import { DcsError, type Dcs } from '../../src/dcs/dcs.ts';
import { loadConfig } from '../../src/config/load.ts';
import { makeDcs } from '../../src/cli/agent.ts';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const VIGIL = join(ROOT, 'bin', 'vigil');
const PATRONICTL = '/usr/bin/patronictl';

let pki: TestPki;
let etcd: EtcdServer;
const open: Dcs[] = [];
let seq = 0;

before(async () => {
  pki = await makeTestPki();
  etcd = await startEtcd({
    tls: {
      certFile: pki.serverCert,
      keyFile: pki.serverKey,
      caFile: pki.ca,
      clientCertAuth: true,
      clientCertFile: pki.clientCert,
      clientKeyFile: pki.clientKey,
    },
  });
});

after(async () => {
  await Promise.all(open.map((d) => d.close()));
  await etcd?.stop();
  await pki?.remove();
});

function freshPrefix(): string {
  seq += 1;
  return `/vigil-tls-test/c${seq}-${process.pid}/`;
}

/** An https adapter; `tls` replaces the default (CA, client certificate and key). */
function adapter(prefix: string, name: string, tls?: Partial<Etcd3Options>, extra: Partial<Etcd3Options> = {}): Etcd3Dcs {
  const d = new Etcd3Dcs({
    hosts: [etcd.endpoint],
    protocol: 'https',
    prefix,
    name,
    ttl: 30,
    retryTimeout: 3,
    ...(tls ?? { cacert: pki.ca, cert: pki.clientCert, key: pki.clientKey }),
    ...extra,
  });
  open.push(d);
  return d;
}

async function rejectsWith(p: Promise<unknown>, code: DcsError['code'], message: RegExp): Promise<DcsError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof DcsError, `expected DcsError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  return caught;
}

function throwsSetting(fn: () => unknown, setting: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Etcd3SettingError, `expected Etcd3SettingError, got ${String(err)}`);
    assert.equal(err.setting, setting, err.message);
    assert.match(err.message, message);
    return true;
  });
}

/** Poll until `check` holds or `ms` pass; returns whether it held. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('etcd3 adapter over TLS with client certificates', () => {
  it('with cacert, cert and key: reads, writes, grants a lease, watches, and revokes it on close', async () => {
    const prefix = freshPrefix();
    const a = adapter(prefix, 'a');
    const b = adapter(prefix, 'b');
    assert.equal(await a.attemptInitialize(), true);
    assert.equal(await a.writeConfig({ ttl: 30 }), true);
    assert.equal(await a.acquireLeader(), true);
    await a.touchMember({ state: 'running', role: 'primary' });
    const view = await b.readCluster();
    assert.deepEqual(view.config, { ttl: 30 });
    assert.equal(view.leader?.name, 'a');
    assert.match(view.leader?.session ?? '', /^\d+$/, 'the leader key is bound to a lease');
    assert.equal(view.members[0]?.session, view.leader?.session);

    let fired = false;
    const watch = b.watchLeader(view.revision, 30_000).then(() => {
      fired = true;
    });
    await sleep(300);
    assert.equal(fired, false, 'no change yet');
    assert.equal(await a.releaseLeader(), true);
    assert.equal(await Promise.race([watch.then(() => 'event'), sleep(10_000).then(() => 'stuck')]), 'event');

    // ttl is 30 s: only the revoke sent by close() removes the member key this soon.
    await a.close();
    assert.ok(await eventually(async () => (await b.readCluster()).members.length === 0, 3000), 'the lease was revoked over https');
  });

  it('an encrypted key works with key_password; without it or with a wrong one the client is not created', async () => {
    const enc = adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCert, key: pki.clientKeyEncrypted, keyPassword: pki.keyPassword });
    assert.equal(await enc.writeConfig({ ttl: 30 }), true);
    const file = escape(JSON.stringify(pki.clientKeyEncrypted));
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCert, key: pki.clientKeyEncrypted }),
      'etcd3.key', new RegExp(`^etcd3\\.key ${file}: the key is encrypted and etcd3\\.key_password is not set`));
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCert, key: pki.clientKeyEncrypted, keyPassword: 'nope' }),
      'etcd3.key', new RegExp(`^etcd3\\.key ${file}: cannot decrypt the key: wrong etcd3\\.key_password`));
    // A certificate file that holds the key as well needs no etcd3.key.
    const combined = adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCombined });
    assert.equal(await combined.writeConfig({ ttl: 30 }), true);
  });

  it('TLS files that cannot be used are an error when the client is created, naming the setting and the file', () => {
    const missing = join(pki.dir, 'missing.pem');
    const quoted = escape(JSON.stringify(missing));
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: missing }), 'etcd3.cacert', new RegExp(`^etcd3\\.cacert ${quoted} cannot be read: ENOENT`));
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: missing, key: pki.clientKey }), 'etcd3.cert', new RegExp(`^etcd3\\.cert ${quoted} cannot be read`));
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCert, key: missing }), 'etcd3.key', new RegExp(`^etcd3\\.key ${quoted} cannot be read`));
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.clientKey }), 'etcd3.cacert', /holds no PEM certificate/);
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCert }), 'etcd3.key', /holds no private key and etcd3\.key is not set/);
    throwsSetting(() => adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.clientCert, key: pki.otherClientKey }),
      'etcd3.key', /is not the key of the certificate in etcd3\.cert/);
    // With protocol http the TLS settings do not apply and are not read.
    assert.ok(adapter(freshPrefix(), 'a', { cacert: missing }, { protocol: 'http' }));
  });

  it('without cacert the server is not trusted: a DcsError naming the TLS problem, without waiting for retryTimeout', async () => {
    const d = adapter(freshPrefix(), 'a', { cert: pki.clientCert, key: pki.clientKey }, { retryTimeout: 5 });
    const t0 = Date.now();
    const err = await rejectsWith(d.readCluster(), 'DCS_UNAVAILABLE', /TLS: .*\(etcd3\.cacert not set\?\)/);
    const ms = Date.now() - t0;
    assert.ok(ms < 2000, `gave up after ${ms} ms`);
    assert.match(err.message, new RegExp(`^etcd \\(${escape(etcd.endpoint)}\\): no TLS connection for /kv/range: etcd ${escape(etcd.endpoint)}: TLS: `));
    const w0 = Date.now();
    await d.watchLeader('1', 30_000); // resolves (broken watch), does not reject
    assert.ok(Date.now() - w0 < 2000);

    const other = adapter(freshPrefix(), 'a', { cacert: pki.otherCa, cert: pki.clientCert, key: pki.clientKey });
    await rejectsWith(other.readCluster(), 'DCS_UNAVAILABLE', /TLS: .*\(the server certificate is not signed by a CA in etcd3\.cacert\)/);
  });

  it('with cacert but no client certificate etcd refuses: a DcsError saying a client certificate is needed', async () => {
    const t0 = Date.now();
    await rejectsWith(adapter(freshPrefix(), 'a', { cacert: pki.ca }).acquireLeader(), 'DCS_UNAVAILABLE',
      /TLS: .*\(etcd asks for a client certificate: set etcd3\.cert and etcd3\.key\)/);
    assert.ok(Date.now() - t0 < 2000);
    await rejectsWith(adapter(freshPrefix(), 'a', { cacert: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey }).readCluster(),
      'DCS_UNAVAILABLE', /TLS: .*\(etcd rejected the client certificate in etcd3\.cert\)/);
  });

  it('a host name that is not in the server certificate is a TLS error saying so', async () => {
    const d = adapter(freshPrefix(), 'a', undefined, { hosts: [etcd.endpoint.replace('127.0.0.1', 'localhost')] });
    await rejectsWith(d.readCluster(), 'DCS_UNAVAILABLE', /TLS: .*localhost.*\(the host in etcd3\.hosts must be a subjectAltName of the server certificate\)/);
  });

  it('protocol mismatches are named: http to the TLS etcd, https to a plain HTTP server', async () => {
    await rejectsWith(adapter(freshPrefix(), 'a', {}, { protocol: 'http', retryTimeout: 1 }).readCluster(), 'DCS_UNAVAILABLE',
      /if it serves https, set etcd3\.protocol: https/);
    const plain = await startEtcd();
    try {
      await rejectsWith(adapter(freshPrefix(), 'a', undefined, { hosts: [plain.endpoint], retryTimeout: 2 }).readCluster(), 'DCS_UNAVAILABLE',
        /TLS: .*\(does etcd serve plain HTTP there\? check etcd3\.protocol\)/);
    } finally {
      await plain.stop();
    }
  });

  it('fails over from a dead endpoint to the TLS one', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const d = adapter(freshPrefix(), 'a', undefined, { hosts: [dead, etcd.endpoint] });
    assert.equal(await d.acquireLeader(), true);
    assert.equal(await d.refreshLeader(), true);
  });

  it('a paused TLS etcd yields DCS_UNAVAILABLE within retryTimeout, and the client recovers', async () => {
    const own = await startEtcd({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca } });
    try {
      const d = adapter(freshPrefix(), 'a', { cacert: pki.ca }, { hosts: [own.endpoint], retryTimeout: 1.5 });
      assert.equal(await d.acquireLeader(), true);
      await own.pause();
      try {
        const t0 = Date.now();
        await rejectsWith(d.readCluster(), 'DCS_UNAVAILABLE', /did not answer \/kv\/range within 1\.5s: etcd 127\.0\.0\.1:\d+ did not answer/);
        assert.ok(Date.now() - t0 < 4000, `${Date.now() - t0} ms`);
      } finally {
        own.resume();
      }
      assert.equal(await d.refreshLeader(), true, 'recovers once etcd answers again');
    } finally {
      await own.stop();
    }
  });
});

describe('etcd3 transport: aborts and timeouts end the exchange and close its socket', () => {
  let server: Server;
  let host: string;
  const sockets = new Set<Socket>();
  let accepted = 0;
  before(async () => {
    // Accepts connections, reads requests, never answers.
    server = createServer((s) => {
      accepted += 1;
      sockets.add(s);
      s.on('data', () => undefined);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('a caller abort rejects at once and the server sees the connection closed', async () => {
    const d = new Etcd3Dcs({ hosts: [host], protocol: 'http', prefix: '/x/', name: 'a', ttl: 10, retryTimeout: 30 });
    open.push(d);
    const before = accepted;
    const ac = new AbortController();
    const read = d.readCluster({ signal: ac.signal }).then(() => 'answered', (err: unknown) => err);
    assert.ok(await eventually(async () => accepted > before, 2000), 'connected');
    const t0 = Date.now();
    ac.abort();
    const outcome = await Promise.race([read, sleep(5000).then(() => 'hang')]);
    assert.ok(outcome instanceof DcsError && !outcome.retryable, String(outcome));
    assert.ok(Date.now() - t0 < 500, `ended after ${Date.now() - t0} ms`);
    assert.ok(await eventually(async () => sockets.size === 0, 1000), 'socket released');
  });

  it('per-attempt deadlines: DCS_UNAVAILABLE after retryTimeout naming the silent endpoint; no socket left open', async () => {
    const d = new Etcd3Dcs({ hosts: [host], protocol: 'http', prefix: '/x/', name: 'a', ttl: 10, retryTimeout: 2 });
    open.push(d);
    const t0 = Date.now();
    await rejectsWith(d.readCluster(), 'DCS_UNAVAILABLE', new RegExp(`^etcd \\(${escape(host)}\\) did not answer /kv/range within 2s: etcd ${escape(host)} did not answer /version within \\d+ ms$`));
    const ms = Date.now() - t0;
    assert.ok(ms >= 1900 && ms < 3500, `${ms} ms`);
    assert.ok(await eventually(async () => sockets.size === 0, 1000), 'sockets released');
  });

  it('an aborted watch resolves at once; its stream, kept for the next wait (src/dcs/etcd3-watch.ts), is closed with the client', async () => {
    const d = new Etcd3Dcs({ hosts: [host], protocol: 'http', prefix: '/x/', name: 'a', ttl: 10, retryTimeout: 2 });
    open.push(d);
    const before = accepted;
    const ac = new AbortController();
    const watch = d.watchLeader('1', 60_000, { signal: ac.signal });
    assert.ok(await eventually(async () => accepted > before, 2000), 'connected');
    const t0 = Date.now();
    ac.abort();
    assert.equal(await Promise.race([watch.then(() => 'done'), sleep(5000).then(() => 'hang')]), 'done');
    assert.ok(Date.now() - t0 < 500);
    await d.close();
    assert.ok(await eventually(async () => sockets.size === 0, 1000), 'socket released');
  });
});

describe('etcd3 TLS settings wired through the commands', () => {
  const MINIMAL = (etcd3: string): string => `
scope: tlsc
name: n1
restapi: {listen: "127.0.0.1:8008"}
etcd3: ${etcd3}
postgresql:
  listen: 127.0.0.1:5432
  data_dir: /tmp/vigil-tls-config/data
  bin_dir: /usr/lib/postgresql/15/bin
  authentication:
    superuser: {username: postgres}
    replication: {username: replicator}
`;
  const section = (extra: string): string =>
    `{hosts: "${etcd.endpoint}", protocol: https, cacert: "${pki.ca}", cert: "${pki.clientCert}"${extra}}`;

  function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((done) => {
      execFile(cmd, args, { env: { ...process.env, PATRONICTL_CONFIG_FILE: '', DCS_URL: '' }, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    });
  }

  it('vigil agent: makeDcs passes cacert, cert, key and key_password; an unreadable file names the setting', async () => {
    const good = loadConfig(MINIMAL(section(`, key: "${pki.clientKeyEncrypted}", key_password: "${pki.keyPassword}"`)), {});
    assert.ok(good.config, JSON.stringify(good.issues));
    const dcs = makeDcs(good.config);
    open.push(dcs);
    assert.match((await dcs.readCluster()).revision, /^\d+$/, 'read over https with the encrypted key');

    const bad = loadConfig(MINIMAL(section(`, key: "${pki.clientKey}"`).replace(pki.ca, '/nonexistent/ca.crt')), {});
    assert.ok(bad.config);
    assert.throws(() => makeDcs(bad.config!), /^Etcd3SettingError: etcd3\.cacert "\/nonexistent\/ca\.crt" cannot be read/);
  });

  it('vigil list and vigil history read the TLS etcd with the settings of the configuration file; a bad file is exit code 1', async () => {
    const prefix = '/service/tlsc/';
    const a = adapter(prefix, 'a');
    await a.writeConfig({ ttl: 30 });
    await a.touchMember({ conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:1/patroni', state: 'running', role: 'primary', timeline: 1 });
    assert.equal(await a.acquireLeader(), true);
    await a.writeHistory([[1, 25623960, 'no recovery target specified', '2019-09-23T16:57:57+02:00', 'a']]);

    const cfg = join(pki.dir, 'ctl.yml');
    await writeFile(cfg, MINIMAL(section(`, key: "${pki.clientKeyEncrypted}", key_password: "${pki.keyPassword}"`)));
    const list = await run(VIGIL, ['list', '-c', cfg, '-f', 'json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { Member: string; Role: string }[]).map((m) => [m.Member, m.Role]), [['a', 'Leader']]);
    const history = await run(VIGIL, ['history', '-c', cfg]);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /no recovery target specified/);

    const broken = join(pki.dir, 'broken.yml');
    await writeFile(broken, MINIMAL(section(`, key: "${pki.clientKeyEncrypted}", key_password: wrong`)));
    for (const cmd of ['list', 'history']) {
      const r = await run(VIGIL, [cmd, '-c', broken]);
      assert.equal(r.code, 1, `${cmd}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /etcd3\.key ".*client-enc\.key": cannot decrypt the key: wrong etcd3\.key_password/, cmd);
    }

    if (existsSync(PATRONICTL)) {
      // Patroni 3.0.2 reads the same etcd3 section (its key_password support came later: plain key).
      const plain = join(pki.dir, 'patronictl.yml');
      await writeFile(plain, MINIMAL(section(`, key: "${pki.clientKey}"`)));
      const p = await run(PATRONICTL, ['-c', plain, 'list', '-f', 'json']);
      assert.equal(p.code, 0, p.stderr.slice(0, 2000));
      assert.deepEqual((JSON.parse(p.stdout) as { Member: string; Role: string }[]).map((m) => [m.Member, m.Role]), [['a', 'Leader']]);
    }
  });
});
