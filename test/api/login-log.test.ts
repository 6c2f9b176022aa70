// Failed logins on the REST API's guarded endpoints are logged with the client address, method,
// path and reason, rate-limited per address, and never with the Authorization header or a password.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer, ApiServerOptions } from '../../src/api/server.ts';
import { makePki, readPki } from '../support/pki.ts';
import { primarySnapshot } from './fixtures.ts';

const AUTH = { username: 'admin', password: 'right-horse-battery' };
const GUESS = 'planted-Secret-guess-4711';
const basic = (user: string, pass: string): string => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

const servers: ApiServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function start(opts: Partial<ApiServerOptions>): Promise<{ base: string; lines: { obj: object; msg: string }[] }> {
  const lines: { obj: object; msg: string }[] = [];
  const record = (obj: object, msg?: string): void => void lines.push({ obj, msg: msg ?? '' });
  const server = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => primarySnapshot(Date.now()),
    auth: AUTH,
    logger: { debug: record, info: record, warn: record, error: record },
    ...opts,
  });
  servers.push(server);
  return { base: `http://127.0.0.1:${server.port}`, lines };
}

async function send(base: string, method: string, path: string, authorization?: string): Promise<number> {
  const res = await fetch(`${base}${path}`, { method, headers: authorization !== undefined ? { authorization } : {} });
  await res.text();
  return res.status;
}

test('each failed login is logged with address, method, path and reason; a good one is not; no secret is printed', async () => {
  const { base, lines } = await start({ loginLogWindowMs: 0 });
  assert.equal(await send(base, 'POST', '/reload'), 401);
  assert.equal(await send(base, 'POST', '/restart?x=1', basic('admin', GUESS)), 401);
  assert.equal(await send(base, 'PATCH', '/config', basic(GUESS, AUTH.password)), 401);
  assert.equal(await send(base, 'POST', '/reload', `Bearer ${GUESS}`), 401);
  const before = lines.length;
  assert.notEqual(await send(base, 'POST', '/reload', basic(AUTH.username, AUTH.password)), 401);
  const failures = lines.filter((l) => l.msg.startsWith('REST API: failed login'));
  assert.equal(failures.length, 4, JSON.stringify(lines));
  assert.equal(lines.slice(before).filter((l) => l.msg.startsWith('REST API: failed login')).length, 0, 'a good login is no failure');
  assert.deepEqual(
    failures.map((l) => l.obj),
    [
      { client: '127.0.0.1', method: 'POST', path: '/reload', reason: 'no Authorization header', suppressed: 0 },
      { client: '127.0.0.1', method: 'POST', path: '/restart', reason: 'wrong username or password', suppressed: 0 },
      { client: '127.0.0.1', method: 'PATCH', path: '/config', reason: 'wrong username or password', suppressed: 0 },
      { client: '127.0.0.1', method: 'POST', path: '/reload', reason: 'wrong username or password', suppressed: 0 },
    ],
  );
  const all = JSON.stringify(lines);
  for (const secret of [GUESS, AUTH.password, Buffer.from(`admin:${GUESS}`).toString('base64'), 'Basic ', 'Bearer']) {
    assert.ok(!all.includes(secret), `the log shows ${secret}`);
  }
});

test('a client guessing passwords gets one line per window, with the count of the others on the next one', async () => {
  let now = 0;
  const { base, lines } = await start({ loginLogWindowMs: 10_000, clock: () => now });
  for (let i = 0; i < 20; i++) assert.equal(await send(base, 'POST', '/switchover', basic('admin', `${GUESS}${i}`)), 401);
  assert.equal(lines.filter((l) => l.msg.startsWith('REST API: failed login')).length, 1);
  now = 10_000;
  assert.equal(await send(base, 'POST', '/switchover', basic('admin', GUESS)), 401);
  const failures = lines.filter((l) => l.msg.startsWith('REST API: failed login'));
  assert.equal(failures.length, 2);
  assert.equal(failures[1]!.msg, 'REST API: failed login from 127.0.0.1: wrong username or password (19 more from this address not logged)');
  assert.ok(!JSON.stringify(lines).includes(GUESS));
});

test('HTTPS with verify_client optional: an unsafe request without a client certificate is logged as a failed login', async () => {
  const files = await makePki({ clientName: 'patronictl' });
  try {
    const pki = await readPki(files);
    const { base, lines } = await start({ loginLogWindowMs: 0, tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, verifyClient: 'optional' } });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base.replace('http:', 'https:')}/reload`, { method: 'POST', ca: pki.ca, headers: { authorization: basic('admin', GUESS) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
    const failures = lines.filter((l) => l.msg.startsWith('REST API: failed login'));
    assert.deepEqual(failures.map((l) => l.obj), [{ client: '127.0.0.1', method: 'POST', path: '/reload', reason: 'no client certificate', suppressed: 0 }]);
    assert.ok(!JSON.stringify(lines).includes(GUESS));
  } finally {
    await files.remove();
  }
});
