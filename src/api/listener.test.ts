// Listeners (listener.ts): restapi.listen parsing, what a reload does to the listener, and the
// pool's lifecycle on real loopback sockets (bind, replace, retire with requests in progress).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';

import { describeListener, ListenerPool, listenerChange, parseListen } from './listener.ts';
import type { Listener } from './listener.ts';
import type { ApiTlsOptions } from './tls.ts';

const TLS: ApiTlsOptions = { cert: 'C', key: 'K', verifyClient: 'none' };

test('parseListen', () => {
  assert.deepEqual(parseListen('127.0.0.1:8008'), { host: '127.0.0.1', port: 8008 });
  assert.deepEqual(parseListen(' 127.0.0.1:8008 '), { host: '127.0.0.1', port: 8008 });
  assert.deepEqual(parseListen(':8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen('*:8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen('0.0.0.0:8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen('[::]:8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen('[::1]:8008'), { host: '::1', port: 8008 });
  assert.deepEqual(parseListen('8008'), { host: undefined, port: 8008 });
  assert.deepEqual(parseListen('db1.example:0'), { host: 'db1.example', port: 0 });
  assert.throws(() => parseListen('host:port'), /bad port/);
  assert.throws(() => parseListen('h:70000'), /bad port/);
  assert.throws(() => parseListen('h:'), /bad port/);
  assert.throws(() => parseListen('[::1]8008'), /invalid listen/);
  assert.throws(() => parseListen('[::1:8008'), /invalid listen/);
});

test('describeListener', () => {
  assert.equal(describeListener({ listen: ':8008', tls: undefined, verifyClient: 'none' }), 'HTTP on :8008');
  assert.equal(describeListener({ listen: ':8008', tls: TLS, verifyClient: 'none' }), 'HTTPS on :8008');
  assert.equal(describeListener({ listen: ':8008', tls: TLS, verifyClient: 'required' }), 'HTTPS on :8008 (verify_client required)');
});

test('listenerChange: restart on a new address, HTTP<->HTTPS or verify_client; renew on new material; else keep', () => {
  const http = { host: '127.0.0.1', configuredPort: 8008, tls: undefined, verifyClient: 'none' as const };
  const https = { ...http, tls: TLS };
  assert.equal(listenerChange(http, '127.0.0.1:8008', undefined), 'keep');
  assert.equal(listenerChange(http, '127.0.0.1:8009', undefined), 'restart');
  assert.equal(listenerChange(http, '*:8008', undefined), 'restart');
  assert.equal(listenerChange(http, '127.0.0.1:8008', TLS), 'restart');
  assert.equal(listenerChange(https, '127.0.0.1:8008', undefined), 'restart');
  assert.equal(listenerChange(https, '127.0.0.1:8008', { ...TLS }), 'keep');
  assert.equal(listenerChange(https, '127.0.0.1:8008', { cert: 'C', key: 'K' }), 'keep', 'verify_client defaults to none');
  assert.equal(listenerChange(https, '127.0.0.1:8008', { ...TLS, verifyClient: 'optional' }), 'restart');
  assert.equal(listenerChange(https, '127.0.0.1:8008', { ...TLS, cert: 'C2' }), 'renew');
  assert.equal(listenerChange(https, '127.0.0.1:8008', { ...TLS, ca: 'CA' }), 'renew');
  assert.equal(listenerChange(https, '127.0.0.1:8009', { ...TLS, cert: 'C2' }), 'restart');
  assert.throws(() => listenerChange(http, 'nowhere', undefined), /bad port/);
});

// ---- ListenerPool on loopback -----------------------------------------------------------------

/** Each request is answered with the listener's listen string, unless `hold` keeps it open. */
function makePool(hold?: (l: Listener, res: ServerResponse) => boolean): { pool: ListenerPool; seen: Listener[] } {
  const seen: Listener[] = [];
  const onRequest = (l: Listener, req: IncomingMessage, res: ServerResponse): void => {
    seen.push(l);
    l.busy.add(req.socket);
    req.resume();
    req.on('end', () => {
      if (hold?.(l, res) === true) return;
      res.end(l.listen);
    });
  };
  const pool = new ListenerPool({ headersTimeoutMs: 5000, requestTimeoutMs: 10000, log: undefined, onRequest }, '127.0.0.1:0', undefined);
  return { pool, seen };
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    r.on('error', reject);
    r.end();
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

test('pool: bind reports the bound port; requests reach onRequest with their listener', async () => {
  const { pool, seen } = makePool();
  await pool.bind(pool.current);
  try {
    assert.ok(pool.current.boundPort > 0);
    assert.equal(await get(pool.current.boundPort), '127.0.0.1:0');
    assert.deepEqual(seen, [pool.current]);
  } finally {
    await pool.shutAll(0);
  }
});

test('pool: replace with another address binds the new listener first; the old one refuses new connections but finishes its request', async () => {
  let held: ServerResponse | undefined;
  const { pool } = makePool((l, res) => {
    if (l.listen !== '127.0.0.1:0' || held !== undefined) return false;
    held = res;
    return true;
  });
  await pool.bind(pool.current);
  const old = pool.current;
  const oldPort = old.boundPort;
  try {
    // A request in progress on the old listener.
    const pending = get(oldPort);
    while (old.busy.size === 0) await new Promise((resolve) => setImmediate(resolve));

    const next = pool.make('127.0.0.1:0', undefined);
    let installed = 0;
    await pool.replace(next, () => {
      installed++;
      assert.equal(pool.current, next, 'installed once current');
    });
    assert.equal(installed, 1);
    assert.equal(pool.current, next);
    assert.notEqual(next.boundPort, oldPort);
    assert.equal(await get(next.boundPort), '127.0.0.1:0');
    assert.equal(await refused(oldPort), true);

    assert.ok(held !== undefined);
    held.end('finished');
    assert.equal(await pending, 'finished');
    await old.shut;
  } finally {
    await pool.shutAll(0);
  }
});

test('pool: replace on the same address lets the old listener go first', async () => {
  const port = await freePort();
  const { pool } = makePool();
  pool.current = pool.make(`127.0.0.1:${port}`, undefined);
  await pool.bind(pool.current);
  const old = pool.current;
  try {
    const next = pool.make(`127.0.0.1:${port}`, undefined);
    await pool.replace(next, () => undefined);
    assert.equal(pool.current, next);
    assert.equal(next.boundPort, port);
    assert.equal(old.server.listening, false);
    assert.equal(await get(port), `127.0.0.1:${port}`);
  } finally {
    await pool.shutAll(0);
  }
});

test('pool: replace onto a taken port rejects; the current listener and settings stay', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const takenPort = (taken.address() as AddressInfo).port;
  const { pool } = makePool();
  await pool.bind(pool.current);
  const old = pool.current;
  try {
    let installed = false;
    await assert.rejects(
      pool.replace(pool.make(`127.0.0.1:${takenPort}`, undefined), () => (installed = true)),
      new RegExp(`REST API cannot listen on 127.0.0.1:${takenPort}: .*EADDRINUSE`),
    );
    assert.equal(installed, false);
    assert.equal(pool.current, old);
    assert.equal(await get(old.boundPort), '127.0.0.1:0');
  } finally {
    await pool.shutAll(0);
    await new Promise((resolve) => taken.close(resolve));
  }
});

test('pool: make refuses unusable TLS material and bad listen addresses', () => {
  const { pool } = makePool();
  assert.throws(() => pool.make('127.0.0.1:0', { cert: 'not a pem', key: 'not a pem' }), /REST API TLS setup failed \(certfile\/keyfile\/keyfile_password\/cafile\)/);
  assert.throws(() => pool.make('127.0.0.1:x', undefined), /bad port/);
});

test('pool: shut destroys idle connections at once and resolves when they are gone', async () => {
  const { pool } = makePool();
  await pool.bind(pool.current);
  const l = pool.current;
  const idle = connect({ host: '127.0.0.1', port: l.boundPort });
  await new Promise<void>((resolve) => idle.on('connect', () => resolve()));
  while (l.sockets.size === 0) await new Promise((resolve) => setImmediate(resolve));
  const closed = new Promise<void>((resolve) => idle.on('close', () => resolve()));
  // A long grace: only the idle socket's destruction lets shut resolve.
  await pool.shut(l, 60_000);
  await closed;
  assert.equal(l.sockets.size, 0);
  assert.equal(await refused(l.boundPort), true);
});
