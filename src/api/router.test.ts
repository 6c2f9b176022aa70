// The router (router.ts) without sockets: allowlist first on the guarded unsafe endpoints, then
// the gate, then the read-only handlers (synchronously) or the operations (asynchronously).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clusterView } from '../core/model.ts';
import { Allowlist } from './allowlist.ts';
import type { OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import { route } from './router.ts';
import type { RouterOptions, RouteScope } from './router.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { FailsafeOnlyPort, snapshot } from './testing.ts';

const BASIC = { username: 'admin', password: 'secret' };
const BASIC_HEADER = 'Basic ' + Buffer.from('admin:secret').toString('base64');

/** A port whose reload() is counted; every other method fails the test (FailsafeOnlyPort). */
class ReloadPort extends FailsafeOnlyPort {
  readonly name = 'pg1';
  reloads = 0;
  failsafeReceived(): { lsn: number | undefined } {
    return this.unused();
  }
  override reload(): Promise<void> {
    this.reloads++;
    return Promise.resolve();
  }
}

function req(method: string, path: string, headers: Record<string, string> = {}): ApiRequest {
  return { method, path, query: new URLSearchParams(), headers };
}

interface Harness {
  opts: RouterOptions;
  errors: string[];
  warnings: string[];
  snapshotReads: number;
  signals: number;
}

function harness(snap: () => NodeSnapshot = () => snapshot(), operations?: OperationsPort): Harness {
  const h: Harness = {
    errors: [],
    warnings: [],
    snapshotReads: 0,
    signals: 0,
    opts: undefined as unknown as RouterOptions,
  };
  h.opts = {
    getSnapshot: () => {
      h.snapshotReads++;
      return snap();
    },
    clock: () => 0,
    operations,
    wallClock: () => new Date(0),
    switchoverPollMs: undefined,
    log: {
      error: (_o, msg) => void h.errors.push(msg ?? ''),
      warn: (_o, msg) => void h.warnings.push(msg ?? ''),
    },
  };
  return h;
}

function scope(h: Harness, extra: Partial<RouteScope> = {}, handlerOptions: HandlerOptions = {}): RouteScope {
  return {
    handlerOptions,
    allowlist: undefined,
    client: '127.0.0.1',
    signal: () => {
      h.signals++;
      return new AbortController().signal;
    },
    ...extra,
  };
}

test('safe requests are answered synchronously from the snapshot; no abort signal is asked for', () => {
  const h = harness();
  const r = route(req('GET', '/patroni'), h.opts, scope(h));
  assert.ok(!(r instanceof Promise));
  assert.equal(r.status, 200);
  const head = route(req('HEAD', '/replica'), h.opts, scope(h));
  assert.ok(!(head instanceof Promise));
  assert.deepEqual(head, { status: 503, statusLineOnly: true });
  assert.equal(h.signals, 0);
});

test('an unsafe operation runs asynchronously against the port, with the abort signal', async () => {
  const port = new ReloadPort();
  const h = harness(undefined, port);
  const r = route(req('POST', '/reload'), h.opts, scope(h));
  assert.ok(r instanceof Promise);
  const res = await r;
  assert.equal(res.status, 202);
  assert.equal(res.body, 'reload scheduled');
  assert.equal(h.signals, 1);
});

test('the gate comes before the operation: 401 without credentials, the port untouched', async () => {
  const port = new ReloadPort();
  const h = harness(undefined, port);
  const denied = await route(req('POST', '/reload'), h.opts, scope(h, {}, { auth: BASIC }));
  assert.equal(denied.status, 401);
  assert.equal(denied.headers?.['WWW-Authenticate'], 'Basic realm="Patroni"');
  const ok = await route(req('POST', '/reload', { authorization: BASIC_HEADER }), h.opts, scope(h, {}, { auth: BASIC }));
  assert.equal(ok.status, 202);
  // The reload runs on its own after the reply.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(port.reloads, 1);
});

test('with a port, gated keys the port does not implement answer from the handlers (503 not supported yet); unknown ones 501', async () => {
  const h = harness(undefined, new ReloadPort());
  const citus = await route(req('POST', '/citus'), h.opts, scope(h));
  assert.equal(citus.status, 503);
  assert.equal(citus.body, 'POST /citus is not supported yet');
  assert.equal((await route(req('POST', '/nothing'), h.opts, scope(h))).status, 501);
  assert.equal((await route(req('BREW', '/patroni'), h.opts, scope(h))).status, 501);
});

test('without a port every unsafe endpoint answers 503 not supported yet (behind the gate)', async () => {
  const h = harness();
  const r = await route(req('POST', '/switchover'), h.opts, scope(h));
  assert.equal(r.status, 503);
  assert.equal(r.body, 'POST /switchover is not supported yet');
  assert.equal((await route(req('POST', '/switchover'), h.opts, scope(h, {}, { auth: BASIC }))).status, 401);
});

test('allowlist: a client outside it gets 403 Access is denied before the gate; the port untouched', async () => {
  const port = new ReloadPort();
  const h = harness(undefined, port);
  const allowlist = new Allowlist({ entries: ['10.0.0.0/8'] });
  const r = route(req('POST', '/reload'), h.opts, scope(h, { allowlist }, { auth: BASIC }));
  assert.ok(r instanceof Promise);
  const res = await r;
  assert.equal(res.status, 403);
  assert.match(res.body ?? '', /Access is denied/);
  assert.deepEqual(h.warnings, ['REST API: client address not in restapi.allowlist']);
  const inside = await route(req('POST', '/reload', { authorization: BASIC_HEADER }), h.opts, scope(h, { allowlist, client: '10.1.2.3' }, { auth: BASIC }));
  assert.equal(inside.status, 202);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(port.reloads, 1);
});

test('allowlist: not applied to safe methods nor to the unguarded POST /mpp', async () => {
  const h = harness();
  const allowlist = new Allowlist({ entries: ['10.0.0.0/8'] });
  const get = route(req('GET', '/patroni'), h.opts, scope(h, { allowlist }));
  assert.ok(!(get instanceof Promise));
  assert.equal(get.status, 200);
  assert.equal((await route(req('POST', '/mpp'), h.opts, scope(h, { allowlist }))).status, 503);
});

test('allowlist_include_members: member api_url hosts count, except on POST /failsafe', async () => {
  const members = [{ name: 'pg2', version: '1', session: '', data: { api_url: 'http://10.9.9.9:8008/patroni' } }];
  const snap = snapshot({ cluster: clusterView({ members }) });
  const h = harness(() => snap);
  const allowlist = new Allowlist({ entries: [], includeMembers: true });
  const fromMember = scope(h, { allowlist, client: '10.9.9.9' });
  assert.equal((await route(req('POST', '/switchover'), h.opts, fromMember)).status, 503, 'passed the allowlist');
  assert.equal((await route(req('POST', '/switchover'), h.opts, scope(h, { allowlist, client: '10.9.9.8' }))).status, 403);
  // POST /failsafe: an allowlist without entries does not apply at all.
  const failsafe = route(req('POST', '/failsafe'), h.opts, scope(h, { allowlist, client: '10.9.9.8' }));
  assert.ok(!(failsafe instanceof Promise));
  assert.equal(failsafe.status, 503);
  // With entries, members do not count on POST /failsafe.
  const listed = new Allowlist({ entries: ['192.0.2.1'], includeMembers: true });
  assert.equal((await route(req('POST', '/failsafe'), h.opts, scope(h, { allowlist: listed, client: '10.9.9.9' }))).status, 403);
});

test('a snapshot that throws gives 500 internal error (logged), on both paths', async () => {
  const h = harness(() => {
    throw new Error('broken');
  });
  const expected: ApiResponse = { status: 500, body: 'internal error', contentType: 'text/plain; charset=utf-8' };
  assert.deepEqual(route(req('GET', '/patroni'), h.opts, scope(h)), expected);
  const allowlist = new Allowlist({ entries: [], includeMembers: true });
  assert.deepEqual(await route(req('POST', '/reload'), h.opts, scope(h, { allowlist })), expected);
  assert.deepEqual(h.errors, ['REST API request failed', 'REST API request failed']);
});
