// The REST API's unsafe endpoints on a real loopback server, with an in-memory OperationsPort
// standing in for the agent: body framing (Content-Length, chunked, raw HTTP/1.0), Basic auth,
// patronictl-style requests (JSON without Content-Type), operations running concurrently with
// health checks, and HTTPS with and without client certificates (certificates made by openssl).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';

import { readTlsFiles, startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import type { FailsafeSender, OperationsPort, RestartOutcome, RestartRequest, ScheduledRestart } from '../../src/api/port.ts';
import type { ClusterView, Member, PeerStatus } from '../../src/core/model.ts';
import { clusterView } from '../../src/core/model.ts';
import { primarySnapshot, rawExchange } from './fixtures.ts';
import { makePki, readPki, type Pki, type PkiFiles } from '../support/pki.ts';

const AUTH = { username: 'patroni', password: 'se:cret' };
const BASIC = 'Basic ' + Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64');

function member(name: string): Member {
  return { name, data: { api_url: `http://127.0.0.1:1/${name}`, state: 'running' }, version: '1', session: '' };
}

/** The agent's side, in memory: one ClusterView as the DCS, peers always healthy. */
class MemPort implements OperationsPort {
  readonly name = 'pg1';
  cluster: ClusterView = clusterView({
    initialize: '7268616322854375442',
    config: { ttl: 30, loop_wait: 10 },
    configVersion: '5',
    leader: { name: 'pg1', version: '9', session: 's' },
    members: [member('pg1'), member('pg2'), member('pg3')],
    history: [],
    revision: '1',
  });
  rev = 10;
  reads = 0;
  /** Called on every readCluster once /failover was written: plays the HA loop. */
  afterWrite?: (p: MemPort, readsSinceWrite: number) => void;
  private readsSinceWrite = 0;
  restarts: RestartRequest[] = [];
  scheduled: ScheduledRestart | undefined;
  reloads = 0;

  readCluster(): Promise<ClusterView> {
    this.reads++;
    if (this.cluster.failover !== undefined && this.afterWrite !== undefined) this.afterWrite(this, ++this.readsSinceWrite);
    return Promise.resolve(structuredClone(this.cluster));
  }
  writeFailover(value: Record<string, unknown>, version?: string): Promise<boolean> {
    if (version !== undefined && version !== this.cluster.failover?.version) return Promise.resolve(false);
    this.readsSinceWrite = 0;
    this.cluster.failover = { ...(value as Record<string, string>), version: String(++this.rev) };
    return Promise.resolve(true);
  }
  writeConfig(config: Record<string, unknown>, version?: string): Promise<boolean> {
    if (version !== undefined && version !== this.cluster.configVersion) return Promise.resolve(false);
    this.cluster.config = structuredClone(config);
    this.cluster.configVersion = String(++this.rev);
    return Promise.resolve(true);
  }
  fetchPeer(name: string): Promise<PeerStatus> {
    return Promise.resolve({ name, reachable: true, inRecovery: true, walPosition: 0, timeline: 1, nofailover: false, failoverPriority: 1, watchdogFailed: false });
  }
  wakeup(): void {}
  restart(req: RestartRequest): Promise<RestartOutcome> {
    this.restarts.push(req);
    return Promise.resolve({ ok: true });
  }
  scheduleRestart(sr: ScheduledRestart): boolean {
    if (this.scheduled !== undefined) return false;
    this.scheduled = sr;
    return true;
  }
  cancelScheduledRestart(): boolean {
    const had = this.scheduled !== undefined;
    this.scheduled = undefined;
    return had;
  }
  reload(): Promise<void> {
    this.reloads++;
    return Promise.resolve();
  }
  reinitialize(): Promise<{ ok: true }> {
    return Promise.resolve({ ok: true });
  }
  failsafeSenders: FailsafeSender[] = [];
  failsafeReceived(sender: FailsafeSender): { lsn: number | undefined } {
    this.failsafeSenders.push(sender);
    return { lsn: 67395700 };
  }
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * One request the way patronictl sends it: node:http(s), JSON body with Content-Length and no
 * Content-Type. `chunked` sends the body without Content-Length.
 */
function send(
  url: string,
  method: string,
  body?: string,
  opts: { headers?: Record<string, string>; chunked?: boolean; tls?: { ca: string; cert?: string; key?: string } } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (body !== undefined && !opts.chunked) headers['Content-Length'] = String(Buffer.byteLength(body));
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req = url.startsWith('https:')
      ? httpsRequest(url, { method, headers, ...(opts.tls ?? {}), agent: false }, onResponse)
      : httpRequest(url, { method, headers, agent: false }, onResponse);
    req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (body !== undefined && opts.chunked) {
      req.write(body.slice(0, 3));
      req.write(body.slice(3));
    } else if (body !== undefined) req.write(body);
    req.end();
  });
}

let port: MemPort;
let server: ApiServer;
let base: string;

before(async () => {
  port = new MemPort();
  server = await startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => primarySnapshot(Date.now()),
    auth: AUTH,
    operations: port,
    switchoverPollMs: 20,
    headersTimeoutMs: 500,
    requestTimeoutMs: 1000,
  });
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.close();
});

test('Basic auth guards the operations: 401 messages, nothing reaches the port', async () => {
  const reloads = port.reloads;
  const none = await send(`${base}/reload`, 'POST');
  assert.equal(none.status, 401);
  assert.equal(none.body, 'no auth header received');
  assert.equal(none.headers['www-authenticate'], 'Basic realm="Patroni"');
  const wrong = await send(`${base}/reload`, 'POST', undefined, { headers: { Authorization: 'Basic ' + Buffer.from('patroni:nope').toString('base64') } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body, 'not authenticated');
  assert.equal(port.reloads, reloads);
  const ok = await send(`${base}/reload`, 'POST', undefined, { headers: { Authorization: BASIC } });
  assert.equal(ok.status, 202);
  assert.equal(ok.body, 'reload scheduled');
  assert.match(String(ok.headers['content-type']), /^text\/html/);
  assert.equal(port.reloads, reloads + 1);
});

test('patronictl-style switchover: JSON without Content-Type, waits for the new leader', async () => {
  port.afterWrite = (p, n) => {
    if (n === 3) p.cluster.leader = { name: 'pg2', version: '10', session: 't' };
  };
  try {
    const res = await send(`${base}/switchover`, 'POST', JSON.stringify({ leader: 'pg1', candidate: 'pg2' }), { headers: { Authorization: BASIC } });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'Successfully switched over to "pg2"');
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.headers['connection'], 'close');
    assert.equal(port.cluster.failover?.leader, 'pg1');
    assert.equal(port.cluster.failover?.member, 'pg2');
  } finally {
    port.afterWrite = undefined;
    port.cluster.leader = { name: 'pg1', version: '9', session: 's' };
    port.cluster.failover = undefined;
  }
});

test('health checks are answered while an operation waits; a long wait outlives requestTimeout', async () => {
  // The leader changes only after ~150 polls (>3 s at 20 ms): well past requestTimeoutMs and its
  // once-a-second check.
  let polls = 0;
  port.afterWrite = (p, n) => {
    polls = n;
    if (n === 150) p.cluster.leader = { name: 'pg3', version: '11', session: 'u' };
  };
  try {
    const pending = send(`${base}/failover`, 'POST', '{"candidate":"pg3"}', { headers: { Authorization: BASIC } });
    while (polls < 5) await new Promise((r) => setTimeout(r, 10));
    const health = await fetch(`${base}/primary`);
    assert.equal(health.status, 200);
    await health.text();
    assert.ok(polls < 150, 'the GET was answered before the operation finished');
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'Successfully failed over to "pg3"');
  } finally {
    port.afterWrite = undefined;
    port.cluster.leader = { name: 'pg1', version: '9', session: 's' };
    port.cluster.failover = undefined;
  }
});

test('bodies: 411 without Content-Length (raw HTTP/1.0 and chunked), 400 on bad JSON, 412/400 messages', async () => {
  const raw = await rawExchange(
    server.port,
    `POST /switchover HTTP/1.0\r\nAuthorization: ${BASIC}\r\n\r\n`,
    { endInput: true },
  );
  assert.match(raw, /^HTTP\/1\.1 411 /);
  assert.match(raw, /Error code: 411/);
  const chunked = await send(`${base}/config`, 'PATCH', '{"pause":true}', { headers: { Authorization: BASIC }, chunked: true });
  assert.equal(chunked.status, 411);
  const badJson = await send(`${base}/switchover`, 'POST', '{"leader":', { headers: { Authorization: BASIC } });
  assert.equal(badJson.status, 400);
  assert.match(badJson.body, /not valid JSON/);
  assert.match(String(badJson.headers['content-type']), /^text\/html/);
  const notObject = await send(`${base}/config`, 'PUT', '["ttl"]', { headers: { Authorization: BASIC } });
  assert.equal(notObject.status, 400);
  assert.match(notObject.body, /must be a JSON object/);
  const empty = await send(`${base}/failover`, 'POST', '{}', { headers: { Authorization: BASIC } });
  assert.equal(empty.status, 400);
  const mismatch = await send(`${base}/switchover`, 'POST', '{"leader":"pg2"}', { headers: { Authorization: BASIC } });
  assert.equal(mismatch.status, 412);
  assert.equal(mismatch.body, 'leader name does not match');
  const same = await send(`${base}/switchover`, 'POST', '{"leader":"pg1","candidate":"pg1"}', { headers: { Authorization: BASIC } });
  assert.equal(same.status, 400);
  assert.equal(same.body, 'Switchover target and source are the same');
  assert.equal(port.cluster.failover, undefined);
  // Content-Type is ignored, even when it is wrong.
  const restart = await send(`${base}/restart`, 'POST', '{"role":"primary"}', { headers: { Authorization: BASIC, 'Content-Type': 'text/plain' } });
  assert.equal(restart.status, 200);
  assert.equal(restart.body, 'restarted successfully');
  assert.deepEqual(port.restarts.at(-1), { role: 'primary' });
});

test('restart: no body and Content-Length 0 are unconditional; schedule, 409 and DELETE', async () => {
  const before = port.restarts.length;
  const raw = await rawExchange(server.port, `POST /restart HTTP/1.0\r\nAuthorization: ${BASIC}\r\n\r\n`, { endInput: true });
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.match(raw, /restarted successfully$/);
  const zero = await send(`${base}/restart`, 'POST', '', { headers: { Authorization: BASIC } });
  assert.equal(zero.status, 200);
  assert.deepEqual(port.restarts.slice(before), [{}, {}]);

  const at = new Date(Date.now() + 3_600_000).toISOString();
  const sched = await send(`${base}/restart`, 'POST', JSON.stringify({ schedule: at, timeout: '5min' }), { headers: { Authorization: BASIC } });
  assert.equal(sched.status, 202);
  assert.equal(sched.body, 'Restart scheduled');
  assert.equal(port.scheduled?.timeout, 300);
  assert.equal(Date.parse(port.scheduled?.schedule ?? ''), Date.parse(at));
  const again = await send(`${base}/restart`, 'POST', JSON.stringify({ schedule: at }), { headers: { Authorization: BASIC } });
  assert.equal(again.status, 409);
  assert.equal(again.body, 'Another restart is already scheduled');
  const del = await send(`${base}/restart`, 'DELETE', undefined, { headers: { Authorization: BASIC } });
  assert.equal(del.status, 200);
  assert.equal(del.body, 'scheduled restart deleted');
  const del2 = await send(`${base}/restart`, 'DELETE', undefined, { headers: { Authorization: BASIC } });
  assert.equal(del2.status, 404);
  assert.equal(del2.body, 'no restarts are scheduled');
});

test('pause and resume the way patronictl does it: PATCH /config, JSON back', async () => {
  const paused = await send(`${base}/config`, 'PATCH', '{"pause":true}', { headers: { Authorization: BASIC } });
  assert.equal(paused.status, 200);
  assert.equal(paused.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(paused.body), { ttl: 30, loop_wait: 10, pause: true });
  assert.equal(port.cluster.config?.['pause'], true);
  const resumed = await send(`${base}/config`, 'PATCH', '{"pause":null}', { headers: { Authorization: BASIC } });
  assert.equal(resumed.status, 200);
  assert.deepEqual(JSON.parse(resumed.body), { ttl: 30, loop_wait: 10 });
  const invalid = await send(`${base}/config`, 'PATCH', '{"loop_wait":"often"}', { headers: { Authorization: BASIC } });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body, 'Invalid dynamic configuration: loop_wait: expected an integer, got "often"');
  assert.deepEqual(port.cluster.config, { ttl: 30, loop_wait: 10 });
});

test('scheduled switchover and DELETE /switchover', async () => {
  const at = '2099-01-01T10:00:00+01:00';
  const res = await send(`${base}/switchover`, 'POST', JSON.stringify({ leader: 'pg1', scheduled_at: at }), { headers: { Authorization: BASIC } });
  assert.equal(res.status, 202);
  assert.equal(res.body, 'Switchover scheduled');
  assert.equal(port.cluster.failover?.scheduled_at, at);
  const del = await send(`${base}/switchover`, 'DELETE', undefined, { headers: { Authorization: BASIC } });
  assert.equal(del.status, 200);
  assert.equal(del.body, 'scheduled switchover deleted');
  assert.equal(port.cluster.failover?.leader, undefined);
  const none = await send(`${base}/switchover`, 'DELETE', undefined, { headers: { Authorization: BASIC } });
  assert.equal(none.status, 404);
  assert.equal(none.body, 'no switchover is scheduled');
  port.cluster.failover = undefined;
});

test('endpoints not implemented yet keep answering 503; unknown ones 501', async () => {
  const mpp = await send(`${base}/mpp`, 'POST', '{}');
  assert.equal(mpp.status, 503);
  assert.match(mpp.body, /not supported yet/);
  const nope = await send(`${base}/nothing`, 'POST', '{}', { headers: { Authorization: BASIC } });
  assert.equal(nope.status, 501);
});

// ---- HTTPS ---------------------------------------------------------------------------------

/** The PEM text of the PKI's files (pkiFiles: their paths). */
let pki: PkiFiles;
let pkiFiles: Pki;

async function tlsServer(verifyClient: 'none' | 'optional' | 'required', encryptedKey = false): Promise<ApiServer> {
  return startApiServer({
    listen: '127.0.0.1:0',
    getSnapshot: () => primarySnapshot(Date.now()),
    auth: AUTH,
    operations: port,
    tls: {
      cert: pki.serverCert,
      key: encryptedKey ? pki.serverKeyEncrypted : pki.serverKey,
      ...(encryptedKey ? { passphrase: 'keypass' } : {}),
      ca: pki.ca,
      verifyClient,
    },
  });
}

before(async () => {
  // A throwaway CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's.
  pkiFiles = await makePki({ clientName: 'patronictl', keyPassword: 'keypass' });
  pki = await readPki(pkiFiles);
});

after(async () => {
  await pkiFiles?.remove();
});

test('HTTPS, verify_client none, encrypted key: GET and authenticated operations work without a client cert', async () => {
  const s = await tlsServer('none', true);
  try {
    const url = `https://127.0.0.1:${s.port}`;
    const get = await send(`${url}/patroni`, 'GET', undefined, { tls: { ca: pki.ca } });
    assert.equal(get.status, 200);
    assert.equal(JSON.parse(get.body).role, 'primary');
    const reload = await send(`${url}/reload`, 'POST', undefined, { tls: { ca: pki.ca }, headers: { Authorization: BASIC } });
    assert.equal(reload.status, 202);
    const noAuth = await send(`${url}/reload`, 'POST', undefined, { tls: { ca: pki.ca } });
    assert.equal(noAuth.status, 401);
    // Plain HTTP on the HTTPS port gets nothing useful.
    await assert.rejects(fetch(`http://127.0.0.1:${s.port}/patroni`));
  } finally {
    await s.close();
  }
});

test('HTTPS, verify_client optional: GETs open, unsafe endpoints need a certificate from the CA', async () => {
  const s = await tlsServer('optional');
  try {
    const url = `https://127.0.0.1:${s.port}`;
    const get = await send(`${url}/primary`, 'GET', undefined, { tls: { ca: pki.ca } });
    assert.equal(get.status, 200);
    const noCert = await send(`${url}/reload`, 'POST', undefined, { tls: { ca: pki.ca }, headers: { Authorization: BASIC } });
    assert.equal(noCert.status, 403);
    assert.match(noCert.body, /client certificate required/);
    const stranger = await send(`${url}/reload`, 'POST', undefined, {
      tls: { ca: pki.ca, cert: pki.strangerCert, key: pki.strangerKey },
      headers: { Authorization: BASIC },
    });
    assert.equal(stranger.status, 403);
    // The certificate check comes before Basic auth.
    const certNoAuth = await send(`${url}/reload`, 'POST', undefined, { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    assert.equal(certNoAuth.status, 401);
    const ok = await send(`${url}/reload`, 'POST', undefined, {
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey },
      headers: { Authorization: BASIC },
    });
    assert.equal(ok.status, 202);
    assert.equal(ok.body, 'reload scheduled');
  } finally {
    await s.close();
  }
});

test('HTTPS, verify_client required: no handshake without a valid client certificate', async () => {
  const s = await tlsServer('required');
  try {
    const url = `https://127.0.0.1:${s.port}`;
    await assert.rejects(send(`${url}/patroni`, 'GET', undefined, { tls: { ca: pki.ca } }));
    await assert.rejects(send(`${url}/patroni`, 'GET', undefined, { tls: { ca: pki.ca, cert: pki.strangerCert, key: pki.strangerKey } }));
    const get = await send(`${url}/patroni`, 'GET', undefined, { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    assert.equal(get.status, 200);
    const patch = await send(`${url}/config`, 'PATCH', '{"ttl":31}', {
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey },
      headers: { Authorization: BASIC },
    });
    assert.equal(patch.status, 200);
    assert.equal(JSON.parse(patch.body).ttl, 31);
  } finally {
    await s.close();
  }
});

test('HTTPS: a wrong key password or a bad certificate fails at start with a clear error', async () => {
  await assert.rejects(
    startApiServer({
      listen: '127.0.0.1:0',
      getSnapshot: () => primarySnapshot(Date.now()),
      tls: { cert: pki.serverCert, key: pki.serverKeyEncrypted, passphrase: 'wrong' },
    }),
    /REST API TLS setup failed/,
  );
  await assert.rejects(
    startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()), tls: { cert: 'not a pem', key: pki.serverKey } }),
    /REST API TLS setup failed/,
  );
});

test('readTlsFiles: restapi file settings, key inside certfile, clear error for a missing file', async () => {
  const combined = join(pkiFiles.dir, 'combined.pem');
  await writeFile(combined, pki.serverCert + pki.serverKeyEncrypted);
  const tls = await readTlsFiles({ certfile: combined, keyfilePassword: 'keypass', cafile: pkiFiles.ca, verifyClient: 'optional' });
  assert.equal(tls.ca, pki.ca);
  assert.equal(tls.verifyClient, 'optional');
  const s = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()), tls });
  try {
    const get = await send(`https://127.0.0.1:${s.port}/patroni`, 'GET', undefined, { tls: { ca: pki.ca } });
    assert.equal(get.status, 200);
  } finally {
    await s.close();
  }
  await assert.rejects(readTlsFiles({ certfile: join(pkiFiles.dir, 'missing.crt') }), /restapi\.certfile ".*missing\.crt" cannot be read/);
  await assert.rejects(
    readTlsFiles({ certfile: combined, keyfile: pkiFiles.serverKey, cafile: join(pkiFiles.dir, 'nope.crt') }),
    /restapi\.cafile/,
  );
});
