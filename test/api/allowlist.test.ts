// restapi.allowlist, allowlist_include_members and http(s)_extra_headers on a real loopback server.
// Requests come from 127.0.0.1; the allowlist decides whether that address may use the unsafe
// endpoints, before Basic auth.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer, ApiServerOptions, RequestInfo } from '../../src/api/server.ts';
import type { OperationsPort } from '../../src/api/port.ts';
import { effectiveExtraHeaders } from '../../src/api/settings.ts';
import type { NodeSnapshot } from '../../src/api/snapshot.ts';
import type { ClusterView, Member } from '../../src/core/model.ts';
import { clusterView } from '../../src/core/model.ts';
import { primarySnapshot, rawExchange, replicaSnapshot } from './fixtures.ts';
import { selfSigned } from '../support/pki.ts';

const AUTH = { username: 'admin', password: 'pa:ss' };
const BASIC = 'Basic ' + Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64');
const FAILSAFE_BODY = JSON.stringify({ name: 'pg1', conn_url: 'postgres://10.0.0.1:5432/postgres', api_url: 'http://10.0.0.1:8008/patroni' });

const started: ApiServer[] = [];
after(async () => {
  await Promise.all(started.map((s) => s.close()));
});

function member(name: string, apiUrl: string): Member {
  return { name, data: { api_url: apiUrl, state: 'running' }, version: '1', session: '' };
}

function cluster(apiUrls: string[]): ClusterView {
  return clusterView({
    initialize: '7268616322854375442',
    config: {},
    configVersion: '1',
    leader: { name: 'm0', version: '1', session: 's' },
    members: apiUrls.map((u, i) => member(`m${i}`, u)),
    history: [],
    revision: '1',
  });
}

/** A replica with failsafe mode on, whose last DCS read lists members with these api_url. */
function replicaWithMembers(apiUrls: string[]): NodeSnapshot {
  const now = Date.now();
  const snap = replicaSnapshot(now);
  return { ...snap, config: { ...snap.config, failsafe_mode: true }, cluster: cluster(apiUrls), clusterReadAt: now };
}

/** Only what POST /reload and POST /failsafe use. */
class Port {
  reloads = 0;
  failsafes = 0;
  readonly port = {
    name: 'pg2',
    reload: (): Promise<void> => {
      this.reloads++;
      return Promise.resolve();
    },
    failsafeReceived: (): { lsn: number | undefined } => {
      this.failsafes++;
      return { lsn: 42 };
    },
  } as unknown as OperationsPort;
}

interface Started {
  server: ApiServer;
  base: string;
  ops: Port;
  snap: { current: NodeSnapshot };
}

async function start(opts: Partial<ApiServerOptions>, snapshot: NodeSnapshot = replicaWithMembers([])): Promise<Started> {
  const ops = new Port();
  const snap = { current: snapshot };
  const server = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => snap.current,
    auth: AUTH,
    operations: ops.port,
    ...opts,
  });
  started.push(server);
  return { server, base: `http://127.0.0.1:${server.port}`, ops, snap };
}

async function post(base: string, path: string, opts: { auth?: string; body?: string } = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    headers: opts.auth !== undefined ? { authorization: opts.auth } : {},
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

test('127.0.0.1 outside the allowlist: 403 Access is denied, before Basic auth; safe methods stay open', async () => {
  const { base, server, ops } = await start({ allowlist: { entries: ['10.0.0.0/8', '::1', 'fd00::/8'] } });
  const denied = await post(base, '/reload', { auth: BASIC });
  assert.equal(denied.status, 403);
  assert.match(denied.text, /Access is denied/);
  assert.equal((await post(base, '/reload')).status, 403, 'no 401: the allowlist comes first');
  const patch = await fetch(`${base}/config`, { method: 'PATCH', body: '{"pause":true}', headers: { authorization: BASIC } });
  assert.equal(patch.status, 403);
  await patch.text();
  assert.equal(ops.reloads, 0);
  // Not guarded: GET, HEAD, OPTIONS, POST /mpp, unknown operations.
  assert.equal((await fetch(`${base}/patroni`)).status, 200);
  assert.equal(await rawExchange(server.port, 'OPTIONS /replica HTTP/1.0\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
  assert.notEqual((await post(base, '/mpp', { body: '{}' })).status, 403);
  assert.equal((await post(base, '/nothing')).status, 501);
});

test('127.0.0.0/8 in the allowlist: the request goes on to Basic auth and the operation', async () => {
  const { base, ops } = await start({ allowlist: { entries: ['192.0.2.1', '127.0.0.0/8'] } });
  const noAuth = await post(base, '/reload');
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.text, 'no auth header received');
  const ok = await post(base, '/reload', { auth: BASIC });
  assert.equal(ok.status, 202);
  assert.equal(ok.text, 'reload scheduled');
  await new Promise((r) => setImmediate(r));
  assert.equal(ops.reloads, 1);
});

test('a hostname in the allowlist (localhost) lets 127.0.0.1 in', async () => {
  const { base } = await start({ allowlist: { entries: ['localhost'] } });
  assert.equal((await post(base, '/reload', { auth: BASIC })).status, 202);
});

test('an allowlist of hosts that do not resolve denies everyone', async () => {
  const { base } = await start({
    allowlist: { entries: ['no-such-host.invalid'], lookup: () => Promise.reject(new Error('ENOTFOUND')) },
  });
  assert.equal((await post(base, '/reload', { auth: BASIC })).status, 403);
});

test('allowlist_include_members: members api_url hosts from the last DCS view', async () => {
  const { base, snap, ops } = await start({ allowlist: { entries: [], includeMembers: true } }, replicaWithMembers(['http://10.1.1.1:8008/patroni']));
  assert.equal((await post(base, '/reload', { auth: BASIC })).status, 403, '127.0.0.1 is no member');
  snap.current = replicaWithMembers(['http://10.1.1.1:8008/patroni', 'http://127.0.0.1:8009/patroni']);
  assert.equal((await post(base, '/reload', { auth: BASIC })).status, 202, 'a member by IP');
  snap.current = replicaWithMembers(['http://10.1.1.1:8008/patroni', 'http://localhost:8010/patroni']);
  assert.equal((await post(base, '/reload', { auth: BASIC })).status, 202, 'a member by hostname');
  snap.current = { ...replicaWithMembers([]), cluster: undefined };
  assert.equal((await post(base, '/reload', { auth: BASIC })).status, 403, 'no DCS view: no members');
  await new Promise((r) => setImmediate(r));
  assert.equal(ops.reloads, 2);
});

test('POST /failsafe: the members never count, only the explicit allowlist', async () => {
  const members = ['http://127.0.0.1:8008/patroni'];
  const withList = await start({ allowlist: { entries: ['10.0.0.0/8'], includeMembers: true } }, replicaWithMembers(members));
  assert.equal((await post(withList.base, '/reload', { auth: BASIC })).status, 202, 'members count for /reload');
  const denied = await post(withList.base, '/failsafe', { auth: BASIC, body: FAILSAFE_BODY });
  assert.equal(denied.status, 403);
  assert.match(denied.text, /Access is denied/);
  assert.equal(withList.ops.failsafes, 0);

  // include_members alone: /failsafe is not IP-checked at all.
  const membersOnly = await start({ allowlist: { entries: [], includeMembers: true } }, replicaWithMembers(['http://10.9.9.9:8008/patroni']));
  assert.equal((await post(membersOnly.base, '/reload', { auth: BASIC })).status, 403);
  const accepted = await post(membersOnly.base, '/failsafe', { auth: BASIC, body: FAILSAFE_BODY });
  assert.equal(accepted.status, 200);
  assert.equal(accepted.text, 'Accepted');
  assert.equal(membersOnly.ops.failsafes, 1);

  // An explicit allowlist that holds 127.0.0.1 lets /failsafe through.
  const allowed = await start({ allowlist: { entries: ['127.0.0.1'] } }, replicaWithMembers([]));
  assert.equal((await post(allowed.base, '/failsafe', { auth: BASIC, body: FAILSAFE_BODY })).status, 200);
});

test('an IPv4-mapped client address (dual-stack listener) matches an IPv4 entry', async () => {
  const seen: RequestInfo[] = [];
  const { server } = await start({ listen: '[::]:0', allowlist: { entries: ['127.0.0.1'] }, onRequest: (i) => seen.push(i) });
  const res = await post(`http://127.0.0.1:${server.port}`, '/reload', { auth: BASIC });
  assert.equal(res.status, 202);
  // '::ffff:127.0.0.1' where the host has IPv6, '127.0.0.1' otherwise.
  assert.match(seen[0]?.remoteAddress ?? '', /^(::ffff:)?127\.0\.0\.1$/);
});

test('http_extra_headers: on GET replies and error pages, not on status-line-only replies', async () => {
  const { base, server } = await start(
    {
      allowlist: { entries: ['10.0.0.0/8'] },
      extraHeaders: { 'X-Frame-Options': 'DENY', 'connection': 'keep-alive' },
      httpsExtraHeaders: { 'Strict-Transport-Security': 'max-age=31536000' },
    },
    primarySnapshot(Date.now()),
  );
  const get = await fetch(`${base}/patroni`);
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('x-frame-options'), 'DENY');
  assert.equal(get.headers.get('strict-transport-security'), null, 'https_extra_headers only with TLS');
  await get.text();
  const denied = await post(base, '/reload', { auth: BASIC });
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get('x-frame-options'), 'DENY');

  // Raw: one Connection header (the server's own), the extra header present.
  const raw = await rawExchange(server.port, 'GET /patroni HTTP/1.0\r\n\r\n');
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  assert.match(head, /^X-Frame-Options: DENY$/m);
  assert.deepEqual(head.match(/^connection:.*$/gim), ['Connection: close']);

  // Status-line-only: OPTIONS, HEAD, /liveness, /readiness carry no header at all.
  assert.equal(await rawExchange(server.port, 'OPTIONS / HTTP/1.0\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
  assert.equal(await rawExchange(server.port, 'HEAD /primary HTTP/1.0\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
  assert.equal(await rawExchange(server.port, 'GET /liveness HTTP/1.0\r\n\r\n'), 'HTTP/1.0 200 OK\r\n\r\n');
  const options = await fetch(`${base}/`, { method: 'OPTIONS' });
  assert.equal(options.headers.get('x-frame-options'), null);
});

test('effectiveExtraHeaders: https ones only with TLS, winning by case-insensitive name; bad ones throw', async () => {
  const http = { 'X-Frame-Options': 'DENY', 'X-Who': 'http' };
  const https = { 'x-who': 'https', 'Strict-Transport-Security': 'max-age=1' };
  assert.deepEqual(effectiveExtraHeaders(http, https, false), { 'X-Frame-Options': 'DENY', 'X-Who': 'http' });
  assert.deepEqual(effectiveExtraHeaders(http, https, true), { 'X-Frame-Options': 'DENY', 'x-who': 'https', 'Strict-Transport-Security': 'max-age=1' });
  assert.deepEqual(effectiveExtraHeaders(undefined, undefined, true), {});
  assert.throws(() => effectiveExtraHeaders({ 'bad name': 'x' }, undefined, false), /extra header "bad name"/);
  assert.throws(() => effectiveExtraHeaders({ 'X-Ok': 'a\r\nInjected: 1' }, undefined, false), /extra header "X-Ok"/);
  await assert.rejects(startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()), extraHeaders: { 'a b': 'c' } }), /extra header/);
  await assert.rejects(
    startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()), allowlist: { entries: ['10.0.0.0/99'] } }),
    /restapi\.allowlist/,
  );
});

test('https_extra_headers are sent over HTTPS', { skip: !existsSync('/usr/bin/openssl') && 'openssl not installed' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-allowlist-'));
  try {
    const files = await selfSigned(dir, 'localhost', '/CN=localhost', 1);
    const { server } = await start(
      {
        tls: { cert: await readFile(files.cert, 'utf8'), key: await readFile(files.key, 'utf8') },
        extraHeaders: { 'X-Frame-Options': 'DENY' },
        httpsExtraHeaders: { 'Strict-Transport-Security': 'max-age=31536000' },
      },
      primarySnapshot(Date.now()),
    );
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const r = httpsRequest({ host: '127.0.0.1', port: server.port, path: '/patroni', rejectUnauthorized: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers));
      });
      r.on('error', reject);
      r.end();
    });
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(headers['strict-transport-security'], 'max-age=31536000');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
