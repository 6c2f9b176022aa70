// The REST API server on a real loopback port: fetch, raw HTTP/1.0 over node:net, node:http and
// (when installed) curl.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { Socket } from 'node:net';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer, RequestInfo } from '../../src/api/server.ts';
import type { NodeSnapshot } from '../../src/api/snapshot.ts';
import { freePort, primarySnapshot, rawExchange, replicaSnapshot } from './fixtures.ts';

const AUTH = { username: 'admin', password: 'pa:ss' };

let server: ApiServer;
let base: string;
let current: NodeSnapshot;
let throwOnSnapshot = false;
const seen: RequestInfo[] = [];

before(async () => {
  current = primarySnapshot(Date.now());
  server = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => {
      if (throwOnSnapshot) throw new Error('snapshot exploded');
      return current;
    },
    auth: AUTH,
    onRequest: (info) => seen.push(info),
    extraHeaders: { 'X-Extra': 'yes' },
    headersTimeoutMs: 500,
    requestTimeoutMs: 1000,
  });
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.close();
});

test('GET /patroni over fetch: 200 JSON answered from the snapshot', async () => {
  current = primarySnapshot(Date.now());
  const res = await fetch(`${base}/patroni`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(res.headers.get('connection'), 'keep-alive', 'an HTTP/1.1 client keeps its connection');
  assert.equal(res.headers.get('x-extra'), 'yes');
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body['role'], 'primary');
  assert.deepEqual(body['xlog'], { location: 67395656 });
  assert.deepEqual(body['patroni'], { version: '4.1.4', scope: 'demo', name: 'pg1' });
});

test('the snapshot is read per request', async () => {
  current = replicaSnapshot(Date.now());
  assert.equal((await fetch(`${base}/primary`)).status, 503);
  assert.equal((await fetch(`${base}/replica`)).status, 200);
  assert.equal((await fetch(`${base}/replica?tag_dc=west`)).status, 503);
  current = primarySnapshot(Date.now());
  assert.equal((await fetch(`${base}/primary`)).status, 200);
  const replica = await fetch(`${base}/replica`);
  assert.equal(replica.status, 503);
  assert.equal(((await replica.json()) as Record<string, unknown>)['role'], 'primary');
});

test('raw OPTIONS / HTTP/1.0 (HAProxy httpchk) gets exactly the status line, then close', async () => {
  current = primarySnapshot(Date.now());
  assert.equal(await rawExchange(server.port, 'OPTIONS / HTTP/1.0\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
  current = replicaSnapshot(Date.now());
  assert.equal(await rawExchange(server.port, 'OPTIONS / HTTP/1.0\r\n\r\n'), 'HTTP/1.0 503 Service Unavailable\r\n\r\n');
  assert.equal(
    await rawExchange(server.port, 'OPTIONS /replica HTTP/1.0\r\nHost: x\r\n\r\n', { endInput: true }),
    'HTTP/1.0 200 OK\r\n\r\n',
  );
  assert.equal(await rawExchange(server.port, 'HEAD /replica HTTP/1.1\r\nHost: x\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
  assert.equal(await rawExchange(server.port, 'GET /liveness HTTP/1.1\r\nHost: x\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
});

test('HEAD and status-line-only GETs work with fetch and node:http', async () => {
  current = primarySnapshot(Date.now());
  const head = await fetch(`${base}/primary`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('x-extra'), null);
  assert.equal((await fetch(`${base}/replica`, { method: 'HEAD' })).status, 503);
  const live = await fetch(`${base}/liveness`);
  assert.equal(live.status, 200);
  assert.equal(await live.text(), '');
  const ready = await fetch(`${base}/readiness`);
  assert.equal(ready.status, 200);
  const status = await new Promise<number>((resolve, reject) => {
    const r = request(`${base}/`, { method: 'OPTIONS' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
  assert.equal(status, 200);
});

test('curl: GET, HEAD and OPTIONS', { skip: !existsSync('/usr/bin/curl') && 'curl not installed' }, async () => {
  current = primarySnapshot(Date.now());
  const curl = (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile('/usr/bin/curl', ['-s', '--max-time', '5', ...args], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', `${base}/primary`), '200');
  assert.equal(await curl('-I', '-o', '/dev/null', '-w', '%{http_code}', `${base}/replica`), '503');
  assert.equal(await curl('-X', 'OPTIONS', '-o', '/dev/null', '-w', '%{http_code}', `${base}/`), '200');
  const metrics = await curl(`${base}/metrics`);
  assert.match(metrics, /^patroni_primary\{scope="demo",name="pg1"\} 1$/m);
});

test('request body over the limit -> 413', async () => {
  const res = await fetch(`${base}/config`, {
    method: 'PATCH',
    body: 'x'.repeat(100 * 1024),
    headers: { authorization: basic(AUTH.username, AUTH.password) },
  });
  assert.equal(res.status, 413);
  await res.text();
  // A small body gets past the size check to the operation.
  const small = await fetch(`${base}/config`, {
    method: 'PATCH',
    body: '{"pause":true}',
    headers: { authorization: basic(AUTH.username, AUTH.password) },
  });
  assert.equal(small.status, 503);
  assert.match(await small.text(), /not supported yet/);
});

test('basic auth on unsafe methods; GET stays open', async () => {
  const none = await fetch(`${base}/switchover`, { method: 'POST', body: '{"leader":"pg1"}' });
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Basic realm="Patroni"');
  assert.equal(await none.text(), 'no auth header received');
  const wrong = await fetch(`${base}/switchover`, { method: 'POST', body: '{}', headers: { authorization: basic('admin', 'nope') } });
  assert.equal(wrong.status, 401);
  assert.equal(await wrong.text(), 'not authenticated');
  const right = await fetch(`${base}/switchover`, { method: 'POST', body: '{}', headers: { authorization: basic(AUTH.username, AUTH.password) } });
  assert.equal(right.status, 503);
  await right.text();
  assert.equal((await fetch(`${base}/patroni`)).status, 200);
});

test('unknown method -> 501', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const r = request(`${base}/`, { method: 'PROPFIND' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
  assert.equal(status, 501);
});

test('a throwing getSnapshot gives 500 and the server keeps serving', async () => {
  throwOnSnapshot = true;
  try {
    const res = await fetch(`${base}/patroni`);
    assert.equal(res.status, 500);
    await res.text();
  } finally {
    throwOnSnapshot = false;
  }
  assert.equal((await fetch(`${base}/patroni`)).status, 200);
});

test('a client that never finishes its headers is cut off', async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = new Socket();
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('server kept a half-sent request open'));
    }, 10_000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    sock.connect(server.port, '127.0.0.1', () => sock.write('GET /patroni HTTP/1.1\r\nHost: x\r\n'));
  });
  assert.ok(reply === '' || reply.startsWith('HTTP/1.0 408') || reply.startsWith('HTTP/1.1 408'), reply);
});

test('onRequest sees every reply', async () => {
  seen.length = 0;
  current = primarySnapshot(Date.now());
  await (await fetch(`${base}/replica?lag=1`)).text();
  await rawExchange(server.port, 'OPTIONS / HTTP/1.0\r\n\r\n');
  assert.deepEqual(
    seen.map((s) => [s.method, s.path, s.status]),
    [
      ['GET', '/replica', 503],
      ['OPTIONS', '/', 200],
    ],
  );
  assert.equal(seen[0]?.remoteAddress, '127.0.0.1');
});

test('close() stops accepting, does not wait for idle keep-alive sockets, and is idempotent', async () => {
  const own = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()) });
  // An idle connection that never sends anything.
  const idle = new Socket();
  await new Promise<void>((resolve) => idle.connect(own.port, '127.0.0.1', resolve));
  idle.on('error', () => undefined);
  const idleClosed = new Promise<void>((resolve) => idle.on('close', () => resolve()));
  await Promise.all([own.close(), own.close()]);
  await idleClosed;
  await assert.rejects(fetch(`http://127.0.0.1:${own.port}/patroni`));
});

test('listen errors reject (parseListen itself: src/api/listener.test.ts)', async () => {
  await assert.rejects(startApiServer({ listen: `127.0.0.1:${server.port}`, getSnapshot: () => current }), /EADDRINUSE/);
  await assert.rejects(startApiServer({ listen: '127.0.0.1:http', getSnapshot: () => current }), /bad port/);
});

test('all interfaces: listen "*:port" answers on loopback', async () => {
  const port = await freePort();
  const own = await startApiServer({ listen: `*:${port}`, getSnapshot: () => primarySnapshot(Date.now()) });
  try {
    assert.equal(own.port, port);
    assert.equal((await fetch(`http://127.0.0.1:${port}/primary`)).status, 200);
  } finally {
    await own.close();
  }
});

function basic(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}
