// checkFailsafeTopology (the primary's POST /failsafe fan-out) against real servers on loopback:
// Vigil's own API server as a replica, and node:http / net servers that accept, refuse, hang,
// close the connection, or wait until the other peers were called (parallelism).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';

import { checkFailsafeTopology } from '../../src/api/failsafe.ts';
import type { FailsafeBody } from '../../src/api/failsafe.ts';
import type { FailsafeSender } from '../../src/api/port.ts';
import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import type { NodeSnapshot } from '../../src/api/snapshot.ts';
import { FailsafeOnlyPort } from '../../src/api/testing.ts';
import { freePort, primarySnapshot, replicaSnapshot } from './fixtures.ts';

const AUTH = { username: 'patroni', password: 'se:cret' };
const BASIC = 'Basic ' + Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64');
const BODY: FailsafeBody = {
  name: 'pg1',
  conn_url: 'postgres://127.0.0.1:5432/postgres',
  api_url: 'http://127.0.0.1:8008/patroni',
  slots: { pg2: 67395656 },
};

interface Call {
  url: string | undefined;
  auth: string | undefined;
  contentType: string | undefined;
  body: string;
}

/** Every event of every test server, in arrival order (parallelism is judged from this order). */
const events: string[] = [];
const servers: HttpServer[] = [];
const netServers: NetServer[] = [];
const rawSockets = new Set<Socket>();

type Behaviour = (calls: Call[], res: ServerResponse, req: IncomingMessage) => void;

/** An HTTP server whose reply is chosen by `behaviour`; records every call. */
async function httpPeer(label: string, behaviour: Behaviour): Promise<{ url: string; calls: Call[] }> {
  const calls: Call[] = [];
  const srv = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push({ url: req.url, auth: req.headers.authorization, contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      events.push(`${label}:request`);
      behaviour(calls, res, req);
    });
  });
  srv.on('connection', (s: Socket) => rawSockets.add(s));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  servers.push(srv);
  const a = srv.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  // api_url with the /patroni path, as members publish it: the client must POST to <origin>/failsafe.
  return { url: `http://127.0.0.1:${port}/patroni`, calls };
}

/** Accepts connections, reads the request, never answers. Counts requests. */
async function hungPeer(label: string): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const srv = createNetServer((sock) => {
    rawSockets.add(sock);
    sock.on('error', () => undefined);
    sock.once('data', () => {
      n++;
      events.push(`${label}:request`);
    });
    sock.on('close', () => events.push(`${label}:closed`));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  netServers.push(srv);
  const a = srv.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return { url: `http://127.0.0.1:${port}/patroni`, requests: () => n };
}

const accept =
  (lsn?: string): Behaviour =>
  (_calls, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', ...(lsn !== undefined ? { lsn } : {}) }).end('Accepted');
  };

after(async () => {
  for (const s of rawSockets) s.destroy();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  for (const s of netServers) await new Promise<void>((resolve) => s.close(() => resolve()));
});

// ---- Topology rules (no network) --------------------------------------------------------------

test('topology missing, not an object, or without me: fail; only me: ok', async () => {
  const check = (topology: unknown) =>
    checkFailsafeTopology({ me: 'pg1', topology: topology as Record<string, string> | undefined, body: BODY });
  const none = await check(undefined);
  assert.equal(none.ok, false);
  assert.match(none.reason, /no \/failsafe topology/);
  for (const odd of [null, ['pg1'], 'pg1', 42]) {
    const r = await check(odd);
    assert.equal(r.ok, false, JSON.stringify(odd));
  }
  const notMe = await check({ pg2: 'http://127.0.0.1:1/patroni' });
  assert.equal(notMe.ok, false);
  assert.match(notMe.reason, /pg1 is not a member of \/failsafe/);
  const alone = await check({ pg1: 'http://127.0.0.1:1/patroni' });
  assert.deepEqual(alone, { ok: true, reason: 'pg1 is the only member of /failsafe', lsns: {} });
});

test('unusable api_url entries fail the check and name the member', async () => {
  const r = await checkFailsafeTopology({
    me: 'pg1',
    topology: { pg1: 'x', pg2: 'not a url', pg3: 'ftp://127.0.0.1/x', pg4: 7 as unknown as string },
    body: BODY,
  });
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg2: unusable api_url "not a url"/);
  assert.match(r.reason, /pg3: unusable api_url/);
  assert.match(r.reason, /pg4: no api_url/);
});

// ---- Against loopback servers -------------------------------------------------------------------

test('all accept: ok, body and auth passed, POST to <origin>/failsafe, lsn headers collected', async () => {
  const a = await httpPeer('a', accept('67395700'));
  const b = await httpPeer('b', accept());
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: BODY.api_url, pg2: a.url, pg3: b.url }, body: BODY, auth: AUTH });
  assert.equal(r.ok, true, r.reason);
  assert.match(r.reason, /all 2 other members of \/failsafe accepted \(pg2, pg3\)/);
  assert.deepEqual(r.lsns, { pg2: 67395700 });
  for (const peer of [a, b]) {
    assert.equal(peer.calls.length, 1);
    const call = peer.calls[0];
    assert.ok(call !== undefined);
    assert.equal(call.url, '/failsafe');
    assert.equal(call.auth, BASIC);
    assert.equal(call.contentType, 'application/json');
    assert.deepEqual(JSON.parse(call.body), BODY);
  }
  // Without auth configured, no Authorization header is sent.
  await checkFailsafeTopology({ me: 'pg1', topology: { pg1: BODY.api_url, pg2: a.url }, body: BODY });
  assert.equal(a.calls[1]?.auth, undefined);
});

test('a 500 refusal fails at once (no retry) and is named with its body', async () => {
  const ok = await httpPeer('ok500', accept('1'));
  const leader = await httpPeer('leader', (_c, res) => res.writeHead(500).end('Running as a leader'));
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: ok.url, pg3: leader.url }, body: BODY });
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg3: HTTP 500 "Running as a leader"/);
  assert.doesNotMatch(r.reason, /pg2/);
  assert.equal(leader.calls.length, 1);
  // Accepting members' lsns are still reported.
  assert.deepEqual(r.lsns, { pg2: 1 });
});

test('200 with a body other than Accepted, and 502 (failsafe off there), fail', async () => {
  const okBody = await httpPeer('okbody', (_c, res) => res.writeHead(200).end('OK'));
  const off = await httpPeer('off', (_c, res) => res.writeHead(502).end('<html>Error code: 502</html>'));
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: okBody.url, pg3: off.url }, body: BODY });
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg2: HTTP 200 but the body is not Accepted "OK"/);
  assert.match(r.reason, /pg3: HTTP 502/);
});

test('one retry: a connection closed once, then Accepted, counts as accepted', async () => {
  const flaky = await httpPeer('flaky', (calls, res, req) => {
    if (calls.length === 1) req.socket.destroy();
    else accept('99')(calls, res, req);
  });
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: flaky.url }, body: BODY });
  assert.equal(r.ok, true, r.reason);
  assert.equal(flaky.calls.length, 2);
  assert.deepEqual(r.lsns, { pg2: 99 });
  // retries: 0 -> the same failure is final.
  const flaky2 = await httpPeer('flaky2', (calls, res, req) => {
    if (calls.length === 1) req.socket.destroy();
    else accept()(calls, res, req);
  });
  const once = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: flaky2.url }, body: BODY, retries: 0 });
  assert.equal(once.ok, false);
  assert.match(once.reason, /pg2: connection closed by the peer/);
  assert.equal(flaky2.calls.length, 1);
});

test('nonsense timeoutMs / retries fall back to the defaults (2 s, one retry)', async () => {
  const closer = await httpPeer('closer-defaults', (_c, _res, req) => req.socket.destroy());
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: closer.url }, body: BODY, timeoutMs: -5, retries: Number.NaN });
  assert.equal(r.ok, false);
  assert.match(r.reason, /after 2 attempts/);
  assert.equal(closer.calls.length, 2);
});

test('a peer that always closes the connection is tried twice, then named', async () => {
  const closer = await httpPeer('closer', (_c, _res, req) => req.socket.destroy());
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: closer.url }, body: BODY });
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg2: connection closed by the peer .* after 2 attempts/);
  assert.equal(closer.calls.length, 2);
});

test('refused: a closed port fails after the retry', async () => {
  const port = await freePort();
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: `http://127.0.0.1:${port}/patroni` }, body: BODY });
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg2: refused after 2 attempts/);
});

test('a hung peer times out on both attempts; the others are each called once, before its first timeout', async () => {
  events.length = 0;
  const hung = await hungPeer('hung');
  const a = await httpPeer('a2', accept('5'));
  const b = await httpPeer('b2', accept('6'));
  // The hung peer comes first: a serial fan-out would call a2/b2 only after its timeouts.
  const r = await checkFailsafeTopology({
    me: 'pg1',
    topology: { pg1: 'x', hung: hung.url, pg2: a.url, pg3: b.url },
    body: BODY,
    timeoutMs: 500,
  });
  assert.equal(r.ok, false);
  assert.match(r.reason, /^failsafe check failed: hung: timeout \(no answer within 500 ms\) after 2 attempts$/);
  assert.equal(hung.requests(), 2);
  assert.equal(a.calls.length, 1);
  assert.equal(b.calls.length, 1);
  assert.deepEqual(r.lsns, { pg2: 5, pg3: 6 });
  const firstTimeout = events.indexOf('hung:closed');
  assert.ok(firstTimeout > 0, `events: ${events.join(' ')}`);
  assert.ok(events.indexOf('a2:request') < firstTimeout, `events: ${events.join(' ')}`);
  assert.ok(events.indexOf('b2:request') < firstTimeout, `events: ${events.join(' ')}`);
});

test('parallel fan-out: a peer that answers only once both others were called gets its answer in time', async () => {
  // gate holds its reply until a3 and b3 have received their requests. With a serial fan-out
  // (gate first) they would never be called while gate waits, and gate would time out.
  let release: (() => void) | undefined;
  let others = 0;
  const otherBehaviour: Behaviour = (calls, res, req) => {
    others++;
    if (others === 2) release?.();
    accept()(calls, res, req);
  };
  const gate = await httpPeer('gate', (calls, res, req) => {
    if (others >= 2) accept('7')(calls, res, req);
    else release = () => accept('7')(calls, res, req);
  });
  const a = await httpPeer('a3', otherBehaviour);
  const b = await httpPeer('b3', otherBehaviour);
  const r = await checkFailsafeTopology({
    me: 'pg1',
    topology: { pg1: 'x', gate: gate.url, pg2: a.url, pg3: b.url },
    body: BODY,
    timeoutMs: 10_000,
    retries: 0,
  });
  assert.equal(r.ok, true, r.reason);
  assert.deepEqual([gate.calls.length, a.calls.length, b.calls.length], [1, 1, 1]);
  assert.equal(r.lsns['gate'], 7);
});

test('an external abort ends the check as failed', async () => {
  const hung = await hungPeer('hung-abort');
  const ac = new AbortController();
  const pending = checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: hung.url }, body: BODY, timeoutMs: 30_000, signal: ac.signal });
  while (hung.requests() === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  ac.abort();
  const r = await pending;
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg2: aborted/);
  assert.equal(hung.requests(), 1);
});

// ---- End to end: Vigil's own API server as the receiver -----------------------------------------

/** The agent's side of POST /failsafe on a replica. */
class ReplicaPort extends FailsafeOnlyPort {
  readonly name = 'pg2';
  senders: FailsafeSender[] = [];
  override wakeup(): void {}
  override scheduleRestart(): boolean {
    return false;
  }
  override cancelScheduledRestart(): boolean {
    return false;
  }
  override reload(): Promise<void> {
    return Promise.resolve();
  }
  failsafeReceived(sender: FailsafeSender): { lsn: number | undefined } {
    this.senders.push(sender);
    return { lsn: 67395700 };
  }
}

let replicaApi: ApiServer;
let primaryApi: ApiServer;
let offApi: ApiServer;
const replicaPort = new ReplicaPort();

function withFailsafe(s: NodeSnapshot, on: boolean): NodeSnapshot {
  return { ...s, config: { ...s.config, failsafe_mode: on } };
}

before(async () => {
  replicaApi = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => withFailsafe(replicaSnapshot(Date.now()), true),
    auth: AUTH,
    operations: replicaPort,
  });
  primaryApi = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => withFailsafe(primarySnapshot(Date.now(), 'pg3'), true),
    auth: AUTH,
    operations: new ReplicaPort(),
  });
  offApi = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => withFailsafe(replicaSnapshot(Date.now(), 'pg4'), false),
    auth: AUTH,
    operations: new ReplicaPort(),
  });
});

after(async () => {
  await replicaApi.close();
  await primaryApi.close();
  await offApi.close();
});

test('Vigil replica: accepts with auth, hands the sender to the agent, lsn header read back', async () => {
  const url = `http://127.0.0.1:${replicaApi.port}/patroni`;
  const r = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: BODY.api_url, pg2: url }, body: BODY, auth: AUTH });
  assert.equal(r.ok, true, r.reason);
  assert.deepEqual(r.lsns, { pg2: 67395700 });
  assert.deepEqual(replicaPort.senders.at(-1), { name: 'pg1', connUrl: BODY.conn_url, apiUrl: BODY.api_url, slots: BODY.slots });
  // Wrong credentials: 401, nothing reaches the agent.
  const before = replicaPort.senders.length;
  const denied = await checkFailsafeTopology({ me: 'pg1', topology: { pg1: 'x', pg2: url }, body: BODY, auth: { ...AUTH, password: 'no' } });
  assert.equal(denied.ok, false);
  assert.match(denied.reason, /pg2: HTTP 401 "not authenticated"/);
  assert.equal(replicaPort.senders.length, before);
});

test('Vigil primary answers 500 Running as a leader; failsafe_mode off answers 502', async () => {
  const r = await checkFailsafeTopology({
    me: 'pg1',
    topology: {
      pg1: 'x',
      pg2: `http://127.0.0.1:${replicaApi.port}/patroni`,
      pg3: `http://127.0.0.1:${primaryApi.port}/patroni`,
      pg4: `http://127.0.0.1:${offApi.port}/patroni`,
    },
    body: BODY,
    auth: AUTH,
  });
  assert.equal(r.ok, false);
  assert.match(r.reason, /pg3: HTTP 500 "Running as a leader"/);
  assert.match(r.reason, /pg4: HTTP 502/);
  assert.doesNotMatch(r.reason, /pg2/);
  assert.deepEqual(r.lsns, { pg2: 67395700 });
});
