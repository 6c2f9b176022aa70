// POST /failsafe receiver (patroni-interfaces.md 2.10): every status code, bad bodies, the lsn
// header; dispatched by the server's router (gate.ts, then operations.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { defaultConfig } from '../core/testing.ts';
import { parseFailsafeBody, parseLsnHeader } from './failsafe.ts';
import { handle } from './handlers.ts';
import type { FailsafeSender, OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { route } from './router.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { FailsafeOnlyPort, snapshot } from './testing.ts';
import { PATRONI_COMPAT_VERSION } from './version.ts';

/** A streaming replica with failsafe_mode on; the DCS view is gone (the case failsafe is for). */
function replica(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return snapshot({
    patroni: { version: PATRONI_COMPAT_VERSION, scope: 'demo', name: 'pg2' },
    role: 'replica',
    xlog: { received_location: 5000, replayed_location: 4000, replayed_timestamp: null, paused: false },
    replicationState: 'streaming',
    isLeader: false,
    config: defaultConfig({ failsafe_mode: true }),
    ...extra,
  });
}

function primary(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return replica({ role: 'primary', xlog: { location: 9000 }, replicationState: undefined, isLeader: true, ...extra });
}

/** Records what reaches the agent; every other port method is a test failure if called. */
class FailsafePort extends FailsafeOnlyPort {
  readonly name = 'pg2';
  senders: FailsafeSender[] = [];
  lsn: number | undefined = 4500;
  throws = false;
  failsafeReceived(sender: FailsafeSender): { lsn: number | undefined } {
    if (this.throws) throw new Error('cache broken');
    this.senders.push(sender);
    return { lsn: this.lsn };
  }
}

const SENDER = { name: 'pg1', conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', slots: { pg2: 4096, perm: 0 } };

function req(body: unknown, headers: Record<string, string> = {}): ApiRequest {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const h: Record<string, string | undefined> = { ...headers };
  if (text !== undefined && h['content-length'] === undefined) h['content-length'] = String(Buffer.byteLength(text));
  return { method: 'POST', path: '/failsafe', query: new URLSearchParams(), headers: h, ...(text !== undefined ? { body: text } : {}) };
}

/** The server's path (router.ts): gate (auth), then handleOperation. */
async function post(r: ApiRequest, snap: NodeSnapshot, port: OperationsPort, auth?: { username: string; password: string }): Promise<ApiResponse> {
  const opts = { getSnapshot: () => snap, clock: () => 0, operations: port, wallClock: () => new Date(0), switchoverPollMs: undefined, log: undefined };
  const scope = { handlerOptions: auth !== undefined ? { auth } : {}, allowlist: undefined, client: '127.0.0.1', signal: () => new AbortController().signal };
  return route(r, opts, scope);
}

test('200 Accepted: the sender reaches the port, lsn header from the port', async () => {
  const port = new FailsafePort();
  const res = await post(req(SENDER), replica(), port);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'Accepted');
  assert.match(res.contentType ?? '', /^text\/html/);
  assert.deepEqual(res.headers, { lsn: '4500' });
  assert.deepEqual(port.senders, [
    { name: 'pg1', connUrl: SENDER.conn_url, apiUrl: SENDER.api_url, slots: { pg2: 4096, perm: 0 } },
  ]);
});

test('lsn header: falls back to the snapshot (max of received/replayed), omitted when unknown', async () => {
  const port = new FailsafePort();
  port.lsn = undefined;
  const fromSnap = await post(req(SENDER), replica(), port);
  assert.equal(fromSnap.status, 200);
  assert.deepEqual(fromSnap.headers, { lsn: '5000' });
  const unknown = await post(req(SENDER), replica({ xlog: undefined, state: 'stopped' }), port);
  assert.equal(unknown.status, 200);
  assert.equal(unknown.body, 'Accepted');
  assert.equal(unknown.headers, undefined);
  // A port answering nonsense does not produce a bogus header.
  port.lsn = -1;
  const bad = await post(req(SENDER), replica({ xlog: undefined }), port);
  assert.equal(bad.headers, undefined);
  assert.equal(port.senders.length, 3);
});

test('slots absent or null: accepted, slots undefined', async () => {
  const port = new FailsafePort();
  const { slots: _slots, ...noSlots } = SENDER;
  assert.equal((await post(req(noSlots), replica(), port)).status, 200);
  assert.equal((await post(req({ ...noSlots, slots: null }), replica(), port)).status, 200);
  assert.deepEqual(port.senders.map((s) => s.slots), [undefined, undefined]);
});

test('502 when failsafe_mode is off (checked before the body)', async () => {
  const port = new FailsafePort();
  for (const cfg of [defaultConfig({ failsafe_mode: false }), defaultConfig({ failsafe_mode: undefined })]) {
    const res = await post(req('not json'), replica({ config: cfg }), port);
    assert.equal(res.status, 502);
    assert.match(res.body ?? '', /Error code: 502/);
  }
  assert.equal(port.senders.length, 0);
});

test('500 Running as a leader on a running primary (probe or agent role says so)', async () => {
  const port = new FailsafePort();
  for (const snap of [primary(), replica({ role: 'primary' }), replica({ role: 'promoted' }), primary({ role: 'replica' })]) {
    const res = await post(req(SENDER), snap, port);
    assert.equal(res.status, 500);
    assert.equal(res.body, 'Running as a leader');
    assert.match(res.contentType ?? '', /^text\/html/);
  }
  assert.equal(port.senders.length, 0);
  // A stopped former primary is not running as a leader.
  const stopped = await post(req(SENDER), primary({ state: 'stopped', xlog: undefined }), port);
  assert.equal(stopped.status, 200);
});

test('bad bodies: 411 without Content-Length, 400 naming the field, nothing reaches the port', async () => {
  const port = new FailsafePort();
  const noLength = req(SENDER);
  delete noLength.headers['content-length'];
  assert.equal((await post(noLength, replica(), port)).status, 411);
  const cases: [unknown, RegExp][] = [
    ['{"name": ', /not valid JSON/],
    ['[1,2]', /must be a JSON object/],
    [{}, /non-empty JSON object/],
    [{ ...SENDER, name: undefined }, /name is required/],
    [{ ...SENDER, name: 7 }, /name must be a string/],
    [{ ...SENDER, name: '' }, /name must not be empty/],
    [{ ...SENDER, conn_url: undefined }, /conn_url is required/],
    [{ ...SENDER, api_url: ['x'] }, /api_url must be a string/],
    [{ ...SENDER, slots: [1] }, /slots must be an object/],
    [{ ...SENDER, slots: 'pg2' }, /slots must be an object/],
    [{ ...SENDER, slots: { pg2: '0/3000060' } }, /slots\.pg2 must be a non-negative integer LSN/],
    [{ ...SENDER, slots: { pg2: -5 } }, /slots\.pg2/],
    [{ ...SENDER, slots: { pg2: 1.5 } }, /slots\.pg2/],
  ];
  for (const [body, re] of cases) {
    const res = await post(req(body), replica(), port);
    assert.equal(res.status, 400, `status for ${JSON.stringify(body)}`);
    assert.match(res.body ?? '', re);
  }
  assert.equal(port.senders.length, 0);
});

test('401 without the configured Basic auth; accepted with it', async () => {
  const port = new FailsafePort();
  const auth = { username: 'patroni', password: 'pw' };
  assert.equal((await post(req(SENDER), replica(), port, auth)).status, 401);
  const basic = 'Basic ' + Buffer.from('patroni:pw').toString('base64');
  assert.equal((await post(req(SENDER, { authorization: basic }), replica(), port, auth)).status, 200);
  assert.equal(port.senders.length, 1);
});

test('503 when the port has no failsafe support; 500 when it throws', async () => {
  // An own property shadows the class method: a port built without failsafeReceived.
  const without: OperationsPort = Object.assign(new FailsafePort(), { failsafeReceived: undefined });
  assert.equal(without.failsafeReceived, undefined);
  const res = await post(req(SENDER), replica(), without);
  assert.equal(res.status, 503);
  assert.notEqual(res.body, 'Accepted');
  const port = new FailsafePort();
  port.throws = true;
  const thrown = await post(req(SENDER), replica(), port);
  assert.equal(thrown.status, 500);
  assert.notEqual(thrown.body, 'Accepted');
});

test('without an operations port the handler answers 503 (not supported yet), never Accepted', () => {
  const res = handle(req(SENDER), replica(), 0);
  assert.equal(res.status, 503);
});

test('parseFailsafeBody ignores unknown fields', () => {
  const p = parseFailsafeBody({ ...SENDER, extra: { x: 1 } });
  assert.equal(p.ok, true);
  if (p.ok) assert.equal(p.sender.name, 'pg1');
});

test('parseLsnHeader', () => {
  assert.equal(parseLsnHeader('67395656'), 67395656);
  assert.equal(parseLsnHeader(' 42 '), 42);
  assert.equal(parseLsnHeader(['7', '8']), 7);
  for (const bad of [undefined, '', '0/3000060', '-1', '1e3', '99999999999999999999']) assert.equal(parseLsnHeader(bad), undefined, String(bad));
});
