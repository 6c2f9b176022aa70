// fetchPeerStatus / fetchPeers against real servers on loopback: Vigil's own API server, a closed
// port, a server that accepts and never answers, and servers answering oddly.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';

import { fetchPeers, fetchPeerStatus } from '../../src/api/peers.ts';
import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { freePort, primarySnapshot, replicaSnapshot } from './fixtures.ts';

let primaryApi: ApiServer;
let replicaApi: ApiServer;
let silent: NetServer;
const silentSockets = new Set<Socket>();
let odd: HttpServer;
let raw10: NetServer;
let lastAuth: string | undefined;

function portOf(s: NetServer | HttpServer): number {
  const a = s.address();
  return typeof a === 'object' && a !== null ? a.port : 0;
}

before(async () => {
  primaryApi = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()) });
  replicaApi = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => ({ ...replicaSnapshot(Date.now()), watchdogFailed: true }),
  });
  // Accepts connections and never writes a byte.
  silent = createNetServer((sock) => {
    silentSockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => silentSockets.delete(sock));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  // Answers by path: not JSON, 404 with JSON, 503 with a replica's JSON, a huge body.
  odd = createHttpServer((req, res) => {
    lastAuth = req.headers.authorization;
    const replicaJson = JSON.stringify({ role: 'replica', xlog: { received_location: 7, replayed_location: 3 }, timeline: 9 });
    if (req.url === '/text') res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    else if (req.url === '/404') res.writeHead(404).end(replicaJson);
    else if (req.url === '/503') res.writeHead(503).end(replicaJson);
    else if (req.url === '/array') res.writeHead(200).end('[1,2,3]');
    else if (req.url === '/stopped') res.writeHead(200).end('{"state":"stopped","role":"replica"}');
    else res.writeHead(200).end(replicaJson);
  });
  await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
  // Patroni style: HTTP/1.0, no Content-Length, the body ends with the connection.
  raw10 = createNetServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => {
      sock.end('HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"role":"primary","xlog":{"location":42},"timeline":7}');
    });
  });
  await new Promise<void>((resolve) => raw10.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await primaryApi.close();
  await replicaApi.close();
  for (const s of silentSockets) s.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  odd.closeAllConnections();
  await new Promise<void>((resolve) => odd.close(() => resolve()));
  await new Promise<void>((resolve) => raw10.close(() => resolve()));
});

test('a primary served by Vigil', async () => {
  const p = await fetchPeerStatus('pg1', `http://127.0.0.1:${primaryApi.port}/patroni`);
  assert.deepEqual(p, {
    name: 'pg1', reachable: true, inRecovery: false, walPosition: 0, timeline: 3, nofailover: false, failoverPriority: 1, watchdogFailed: false,
  });
});

test('a replica served by Vigil', async () => {
  const p = await fetchPeerStatus('pg2', `http://127.0.0.1:${replicaApi.port}/patroni`);
  assert.deepEqual(p, {
    name: 'pg2', reachable: true, inRecovery: true, walPosition: 67395700, timeline: 3, nofailover: false, failoverPriority: 2, watchdogFailed: true,
  });
});

test('a closed port is unreachable', async () => {
  const port = await freePort();
  const reasons: string[] = [];
  const p = await fetchPeerStatus('gone', `http://127.0.0.1:${port}/patroni`, { onError: (_n, _u, r) => reasons.push(r) });
  assert.equal(p.reachable, false);
  assert.equal(p.name, 'gone');
  assert.match(reasons[0] ?? '', /ECONNREFUSED/);
});

test('a server that never answers times out as unreachable', async () => {
  const reasons: string[] = [];
  const p = await fetchPeerStatus('hung', `http://127.0.0.1:${portOf(silent)}/patroni`, {
    timeoutMs: 300,
    onError: (_n, _u, r) => reasons.push(r),
  });
  assert.equal(p.reachable, false);
  assert.match(reasons[0] ?? '', /no answer within 300 ms/);
});

test('an external abort signal ends the request early', async () => {
  const ac = new AbortController();
  const pending = fetchPeerStatus('hung', `http://127.0.0.1:${portOf(silent)}/patroni`, { timeoutMs: 60_000, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  assert.equal((await pending).reachable, false);
});

test('odd answers', async () => {
  const url = (path: string): string => `http://127.0.0.1:${portOf(odd)}${path}`;
  assert.equal((await fetchPeerStatus('x', url('/text'))).reachable, false);
  assert.equal((await fetchPeerStatus('x', url('/404'))).reachable, false);
  assert.equal((await fetchPeerStatus('x', url('/array'))).reachable, false);
  assert.equal((await fetchPeerStatus('x', url('/stopped'))).reachable, false);
  const r503 = await fetchPeerStatus('x', url('/503'));
  assert.equal(r503.reachable, true);
  assert.equal(r503.walPosition, 7);
  assert.equal(r503.timeline, 9);
  assert.equal((await fetchPeerStatus('x', 'ftp://127.0.0.1/patroni')).reachable, false);
  assert.equal((await fetchPeerStatus('x', 'not a url')).reachable, false);
});

test('basic auth is sent when configured', async () => {
  await fetchPeerStatus('x', `http://127.0.0.1:${portOf(odd)}/patroni`, { auth: { username: 'u', password: 'p' } });
  assert.equal(lastAuth, 'Basic ' + Buffer.from('u:p').toString('base64'));
});

test('HTTP/1.0 answer without Content-Length (Patroni style)', async () => {
  const p = await fetchPeerStatus('old', `http://127.0.0.1:${portOf(raw10)}/patroni`);
  assert.equal(p.reachable, true);
  assert.equal(p.inRecovery, false);
  assert.equal(p.timeline, 7);
});

test('fetchPeers: in parallel, in the given order, a hung peer does not hide the others', async () => {
  const port = await freePort();
  const peers = await fetchPeers(
    [
      { name: 'hung', apiUrl: `http://127.0.0.1:${portOf(silent)}/patroni` },
      { name: 'pg1', apiUrl: `http://127.0.0.1:${primaryApi.port}/patroni` },
      { name: 'gone', apiUrl: `http://127.0.0.1:${port}/patroni` },
      { name: 'pg2', apiUrl: `http://127.0.0.1:${replicaApi.port}/patroni` },
    ],
    { timeoutMs: 500 },
  );
  assert.deepEqual(
    peers.map((p) => [p.name, p.reachable, p.inRecovery]),
    [
      ['hung', false, true],
      ['pg1', true, false],
      ['gone', false, true],
      ['pg2', true, true],
    ],
  );
});
