// Reloading restapi settings into a running REST API server (ApiServer.reconfigure) over real
// HTTP and HTTPS on 127.0.0.1: authentication, allowlist and extra headers count from the next
// request; a renewed certificate is served on the next TLS connection; a new listen address or a
// switch between HTTP and HTTPS replaces the listener; bad settings are refused and the running
// ones kept. The last test does it through a real `vigil agent` process and SIGHUP.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiReloadableOptions, ApiServer, ApiServerOptions, ApiTlsOptions } from '../../src/api/server.ts';
import type { OperationsPort } from '../../src/api/port.ts';
import { reloadRestApi } from '../../src/cli/agent.ts';
import { LocalCluster } from '../../src/local/cluster.ts';
import { freePort, primarySnapshot } from './fixtures.ts';
import { makePki, readPki, selfSigned } from '../support/pki.ts';
import type { Pki, PkiFiles } from '../support/pki.ts';

const OLD = { username: 'admin', password: 'old secret' };
const NEW = { username: 'admin', password: 'new secret' };
const basic = (a: { username: string; password: string }): string => 'Basic ' + Buffer.from(`${a.username}:${a.password}`).toString('base64');

/** Counts POST /reload: the harmless unsafe request these tests send. */
class Port {
  reloads = 0;
  readonly port = {
    name: 'pg1',
    reload: (): Promise<void> => {
      this.reloads++;
      return Promise.resolve();
    },
  } as unknown as OperationsPort;
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  /** SHA-256 fingerprint of the server certificate (HTTPS only). */
  fingerprint?: string;
}

/**
 * One request on a new connection (no agent, so no TLS session reuse). HTTPS does not check the
 * server certificate: the tests compare its fingerprint instead.
 */
function send(url: string, method: string, opts: { headers?: Record<string, string>; tls?: { cert?: string; key?: string } } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      const fingerprint = url.startsWith('https:') ? (res.socket as TLSSocket).getPeerCertificate().fingerprint256 : undefined;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ...(fingerprint !== undefined ? { fingerprint } : {}) }),
      );
      res.on('error', reject);
    };
    const headers = { ...(opts.headers ?? {}) };
    const req = url.startsWith('https:')
      ? httpsRequest(url, { method, headers, agent: false, rejectUnauthorized: false, ...(opts.tls ?? {}) }, onResponse)
      : httpRequest(url, { method, headers, agent: false }, onResponse);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

let pkiFiles: Pki;
let pki: PkiFiles;
/** A second certificate for 127.0.0.1 (self-signed): "the renewed one". */
let renewed: { cert: string; key: string; certFile: string; keyFile: string };
const servers: ApiServer[] = [];

before(async () => {
  pkiFiles = await makePki();
  pki = await readPki(pkiFiles);
  const files = await selfSigned(pkiFiles.dir, 'renewed', '/CN=127.0.0.1');
  renewed = { cert: await readFile(files.cert, 'utf8'), key: await readFile(files.key, 'utf8'), certFile: files.cert, keyFile: files.key };
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await pkiFiles?.remove();
});

async function start(opts: Partial<ApiServerOptions> = {}): Promise<{ server: ApiServer; ops: Port }> {
  const ops = new Port();
  const server = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => primarySnapshot(Date.now()),
    operations: ops.port,
    ...opts,
  });
  servers.push(server);
  return { server, ops };
}

const serverTls = (): ApiTlsOptions => ({ cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, verifyClient: 'none' });

test('authentication: the new credentials count from the next request, the old ones get 401', async () => {
  const { server, ops } = await start({ auth: OLD });
  const url = (): string => `http://127.0.0.1:${server.port}/reload`;
  assert.equal((await send(url(), 'POST', { headers: { Authorization: basic(OLD) } })).status, 202);

  const what = await server.reconfigure({ listen: '127.0.0.1:0', auth: NEW });
  assert.match(what, /authentication changed/);
  const old = await send(url(), 'POST', { headers: { Authorization: basic(OLD) } });
  assert.equal(old.status, 401);
  assert.equal(old.body, 'not authenticated');
  assert.equal((await send(url(), 'POST', { headers: { Authorization: basic(NEW) } })).status, 202);

  // Leaving authentication out of the new settings removes it.
  assert.match(await server.reconfigure({ listen: '127.0.0.1:0' }), /authentication removed/);
  assert.equal((await send(url(), 'POST')).status, 202);
  assert.equal(await server.reconfigure({ listen: '127.0.0.1:0' }), 'no change');
  await new Promise((r) => setImmediate(r));
  assert.equal(ops.reloads, 3);
});

/**
 * POST /reload whose headers are sent now and whose body only on finish(): a request in progress.
 * finish() resolves with everything the server sent before closing the connection.
 */
async function heldRequest(port: number, auth: { username: string; password: string }): Promise<{ finish(): Promise<string>; closed: Promise<void> }> {
  const sock = new Socket();
  await new Promise<void>((resolve) => sock.connect(port, '127.0.0.1', resolve));
  sock.on('error', () => undefined);
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.write(`POST /reload HTTP/1.0\r\nAuthorization: ${basic(auth)}\r\nContent-Length: 2\r\n\r\n`);
  // Let the server read the headers (the request is then in progress).
  await new Promise((r) => setTimeout(r, 100));
  return {
    closed,
    finish: async () => {
      sock.write('{}');
      await closed;
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

test('a request that arrived before the reconfigure keeps the settings it arrived with', async () => {
  const { server } = await start({ auth: OLD });
  // Headers now, the body only after the reconfigure.
  const held = await heldRequest(server.port, OLD);
  await server.reconfigure({ listen: '127.0.0.1:0', auth: NEW });
  assert.match(await held.finish(), /^HTTP\/1\.[01] 202 /);
  assert.equal((await send(`http://127.0.0.1:${server.port}/reload`, 'POST', { headers: { Authorization: basic(OLD) } })).status, 401);
});

test('allowlist: a change counts from the next request; a bad entry is refused and changes nothing', async () => {
  const { server } = await start({ auth: OLD, allowlist: { entries: ['10.0.0.0/8'] } });
  const post = async (auth: { username: string; password: string }): Promise<number> =>
    (await send(`http://127.0.0.1:${server.port}/reload`, 'POST', { headers: { Authorization: basic(auth) } })).status;
  assert.equal(await post(OLD), 403);

  // A bad entry: refused, and the authentication change given with it is not applied either.
  await assert.rejects(server.reconfigure({ listen: '127.0.0.1:0', auth: NEW, allowlist: { entries: ['127.0.0.1', '10.0.0.0/33'] } }), /restapi\.allowlist: not a CIDR network/);
  assert.equal(await post(OLD), 403);

  assert.match(await server.reconfigure({ listen: '127.0.0.1:0', auth: OLD, allowlist: { entries: ['192.0.2.0/24', '127.0.0.1'] } }), /allowlist changed/);
  assert.equal(await post(OLD), 202);
  assert.equal(await post(NEW), 401, 'the authentication of the refused settings never applied');

  assert.match(await server.reconfigure({ listen: '127.0.0.1:0', auth: OLD, allowlist: { entries: ['10.0.0.0/8'] } }), /allowlist changed/);
  assert.equal(await post(OLD), 403);
  assert.match(await server.reconfigure({ listen: '127.0.0.1:0', auth: OLD }), /allowlist removed/);
  assert.equal(await post(OLD), 202);
});

test('extra headers: replaced on the next reply; an invalid one is refused and the old ones stay', async () => {
  const { server } = await start({ extraHeaders: { 'X-Before': 'yes' } });
  const get = (): Promise<Reply> => send(`http://127.0.0.1:${server.port}/patroni`, 'GET');
  assert.equal((await get()).headers['x-before'], 'yes');

  await assert.rejects(server.reconfigure({ listen: '127.0.0.1:0', extraHeaders: { 'Bad Name': 'x' } }), /extra header "Bad Name"/);
  assert.equal((await get()).headers['x-before'], 'yes');

  assert.match(await server.reconfigure({ listen: '127.0.0.1:0', extraHeaders: { 'X-After': 'yes' }, httpsExtraHeaders: { 'X-Tls-Only': 'yes' } }), /extra headers changed/);
  const after = await get();
  assert.equal(after.headers['x-before'], undefined);
  assert.equal(after.headers['x-after'], 'yes');
  assert.equal(after.headers['x-tls-only'], undefined, 'https_extra_headers only over HTTPS');
});

test('a renewed certificate is served on the next TLS connection, on the same port', async () => {
  const { server } = await start({ tls: serverTls(), auth: OLD });
  const port = server.port;
  const url = (): string => `https://127.0.0.1:${server.port}/patroni`;
  assert.equal((await send(url(), 'GET')).fingerprint, fingerprintOf(pki.serverCert));

  const what = await server.reconfigure({ listen: '127.0.0.1:0', tls: { cert: renewed.cert, key: renewed.key, ca: pki.ca, verifyClient: 'none' }, auth: OLD });
  assert.equal(what, 'certificate reloaded');
  assert.equal(server.port, port, 'no new listener');
  const after = await send(url(), 'GET');
  assert.equal(after.status, 200);
  assert.equal(after.fingerprint, fingerprintOf(renewed.cert));
  assert.notEqual(fingerprintOf(renewed.cert), fingerprintOf(pki.serverCert));
});

test('an unreadable certfile or a key that does not match: refused, the old certificate and settings stay', async () => {
  const { server } = await start({ tls: serverTls(), auth: OLD });
  const port = server.port;
  const url = (path: string): string => `https://127.0.0.1:${server.port}${path}`;

  // Through the agent's reload path: restapi as read from the file, then the TLS files.
  await assert.rejects(
    reloadRestApi(server, {
      listen: '127.0.0.1:0',
      connectAddress: '127.0.0.1:8008',
      certfile: join(pkiFiles.dir, 'missing.crt'),
      keyfile: renewed.keyFile,
      authentication: NEW,
    }),
    /restapi\.certfile ".*missing\.crt" cannot be read/,
  );
  // The renewed certificate with the old key.
  await assert.rejects(
    server.reconfigure({ listen: '127.0.0.1:0', auth: NEW, tls: { cert: renewed.cert, key: pki.serverKey, verifyClient: 'none' } }),
    /REST API TLS setup failed/,
  );
  assert.equal(server.port, port);
  const get = await send(url('/patroni'), 'GET');
  assert.equal(get.status, 200);
  assert.equal(get.fingerprint, fingerprintOf(pki.serverCert));
  assert.equal((await send(url('/reload'), 'POST', { headers: { Authorization: basic(OLD) } })).status, 202);
  assert.equal((await send(url('/reload'), 'POST', { headers: { Authorization: basic(NEW) } })).status, 401);

  // The readable files then apply.
  const what = await reloadRestApi(server, { listen: '127.0.0.1:0', connectAddress: '127.0.0.1:8008', certfile: renewed.certFile, keyfile: renewed.keyFile, authentication: NEW });
  assert.match(what, /authentication changed/);
  assert.match(what, /certificate reloaded/);
  const renewedGet = await send(url('/patroni'), 'GET');
  assert.equal(renewedGet.fingerprint, fingerprintOf(renewed.cert));
  assert.equal((await send(url('/reload'), 'POST', { headers: { Authorization: basic(NEW) } })).status, 202);
});

async function refused(url: string): Promise<void> {
  await assert.rejects(send(url, 'GET'), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
}

test('listen moves to another port: the new port answers, the old one refuses', async () => {
  const { server } = await start({ auth: OLD });
  const oldPort = server.port;
  const newPort = await freePort();
  const held = await heldRequest(oldPort, OLD);
  const what = await server.reconfigure({ listen: `127.0.0.1:${newPort}`, auth: OLD });
  assert.match(what, new RegExp(`listener restarted: HTTP on 127\\.0\\.0\\.1:0 -> HTTP on 127\\.0\\.0\\.1:${newPort}`));
  assert.equal(server.port, newPort);
  assert.equal((await send(`http://127.0.0.1:${newPort}/patroni`, 'GET')).status, 200);
  assert.equal((await send(`http://127.0.0.1:${newPort}/reload`, 'POST', { headers: { Authorization: basic(OLD) } })).status, 202);
  await refused(`http://127.0.0.1:${oldPort}/patroni`);
  assert.match(await held.finish(), /^HTTP\/1\.[01] 202 /, 'a request in progress on the old listener is answered');
});

test('listen on a port that is taken: refused, the running listener stays', async () => {
  const { server } = await start({ auth: OLD });
  const port = server.port;
  const squatter = createNetServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  try {
    const taken = (squatter.address() as { port: number }).port;
    await assert.rejects(server.reconfigure({ listen: `127.0.0.1:${taken}`, auth: NEW }), /REST API cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    assert.equal(server.port, port);
    assert.equal((await send(`http://127.0.0.1:${port}/reload`, 'POST', { headers: { Authorization: basic(OLD) } })).status, 202);
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
});

test('HTTP -> HTTPS on the same address, then verify_client required, then back to HTTP', async () => {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const { server } = await start({ listen, auth: OLD, extraHeaders: { 'X-Plain': 'yes' }, httpsExtraHeaders: { 'X-Tls': 'yes' } });
  assert.equal((await send(`http://127.0.0.1:${port}/patroni`, 'GET')).status, 200);

  const what = await server.reconfigure({ listen, auth: OLD, tls: serverTls(), extraHeaders: { 'X-Plain': 'yes' }, httpsExtraHeaders: { 'X-Tls': 'yes' } });
  assert.match(what, /listener restarted: HTTP on 127\.0\.0\.1:\d+ -> HTTPS on 127\.0\.0\.1:\d+/);
  assert.equal(server.port, port);
  const get = await send(`https://127.0.0.1:${port}/patroni`, 'GET');
  assert.equal(get.status, 200);
  assert.equal(get.fingerprint, fingerprintOf(pki.serverCert));
  assert.equal(get.headers['x-tls'], 'yes', 'https_extra_headers now that TLS is on');
  await assert.rejects(send(`http://127.0.0.1:${port}/patroni`, 'GET'), 'plain HTTP is no longer answered');

  // verify_client required: the handshake needs a client certificate signed by cafile.
  assert.match(await server.reconfigure({ listen, auth: OLD, tls: { ...serverTls(), verifyClient: 'required' } }), /verify_client required/);
  await assert.rejects(send(`https://127.0.0.1:${port}/patroni`, 'GET'));
  const withCert = await send(`https://127.0.0.1:${port}/patroni`, 'GET', { tls: { cert: pki.clientCert, key: pki.clientKey } });
  assert.equal(withCert.status, 200);

  assert.match(await server.reconfigure({ listen, auth: OLD }), /HTTPS on .* -> HTTP on/);
  assert.equal((await send(`http://127.0.0.1:${port}/patroni`, 'GET')).status, 200);
});

test('HTTP -> HTTPS with unusable TLS material: refused, plain HTTP goes on', async () => {
  const { server } = await start({ auth: OLD });
  const port = server.port;
  await assert.rejects(server.reconfigure({ listen: '127.0.0.1:0', tls: { cert: 'not a pem', key: pki.serverKey } }), /REST API TLS setup failed/);
  assert.equal(server.port, port);
  assert.equal((await send(`http://127.0.0.1:${port}/patroni`, 'GET')).status, 200);
});

test('close() closes the listener of a reconfigure; reconfigure after close is refused', async () => {
  const { server } = await start({ auth: OLD });
  const oldPort = server.port;
  const newPort = await freePort();
  const held = await heldRequest(oldPort, OLD);
  await server.reconfigure({ listen: `127.0.0.1:${newPort}`, auth: OLD });
  assert.equal((await send(`http://127.0.0.1:${newPort}/patroni`, 'GET')).status, 200);
  const closedAt = Date.now();
  await server.close();
  // The replaced listener's request in progress gets close()'s short grace, not the longer one.
  await held.closed;
  assert.ok(Date.now() - closedAt < 10_000);
  await refused(`http://127.0.0.1:${newPort}/patroni`);
  await refused(`http://127.0.0.1:${oldPort}/patroni`);
  const next: ApiReloadableOptions = { listen: '127.0.0.1:0' };
  await assert.rejects(server.reconfigure(next), /closed/);
});

test('vigil agent: SIGHUP after a change of restapi.authentication in its file', { timeout: 180_000 }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'vigil-rest-reload-'));
  const cluster = new LocalCluster({ baseDir: base, nodes: 1 });
  try {
    await cluster.prepare();
    const node = cluster.node('node0');
    const yaml = await readFile(node.configFile, 'utf8');
    const withAuth = (a: { username: string; password: string }): string =>
      yaml.replace(/^restapi:\n/m, `restapi:\n  authentication:\n    username: ${a.username}\n    password: ${JSON.stringify(a.password)}\n`);
    await writeFile(node.configFile, withAuth(OLD));
    cluster.startAgent('node0');
    const url = `http://127.0.0.1:${node.apiPort}/reload`;
    const post = async (a: { username: string; password: string }): Promise<number | undefined> => {
      try {
        return (await send(url, 'POST', { headers: { Authorization: basic(a) } })).status;
      } catch {
        return undefined; // not listening yet
      }
    };
    const until = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 60_000;
      while (!(await ok())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; agent log:\n${await readFile(node.logFile, 'utf8').catch(() => '')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await until('the REST API', async () => (await post(OLD)) !== undefined);
    assert.equal(await post(OLD), 202);
    assert.equal(await post(NEW), 401);

    await writeFile(node.configFile, withAuth(NEW));
    cluster.killAgent('node0', 'SIGHUP');
    await until('the new credentials', async () => (await post(NEW)) === 202);
    assert.equal(await post(OLD), 401);
    assert.match(await readFile(node.logFile, 'utf8'), /REST API settings reloaded: authentication changed/);
  } finally {
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
  }
});
