import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clusterView } from '../core/model.ts';
import type { ClusterView, Member, PeerStatus } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import { patchConfigValue, pyStr } from './config-endpoints.ts';
import { parseTimestamp } from './operation-common.ts';
import type { OperationOptions } from './operation-common.ts';
import { handleOperation } from './operations.ts';
import type { FailsafeSender, OperationsPort, RestartOutcome, RestartRequest, ScheduledRestart } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { readJsonBody } from './request.ts';
import { parseSecondsValue, postgresVersionProblem } from './restart.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { snapshot } from './testing.ts';

// 2024-05-01T12:00:00Z
const NOW = new Date(Date.UTC(2024, 4, 1, 12, 0, 0));

function member(name: string, extra: Member['data'] = {}): Member {
  return {
    name,
    data: { api_url: `http://127.0.0.1:80${name.slice(2)}/patroni`, state: 'running', role: name === 'pg1' ? 'primary' : 'replica', ...extra },
    version: '1',
    session: '',
  };
}

function view(extra: Partial<ClusterView> = {}): ClusterView {
  return clusterView({
    initialize: '7268616322854375442',
    config: { ttl: 30, loop_wait: 10, postgresql: { parameters: { max_connections: 100 } } },
    configVersion: '5',
    leader: { name: 'pg1', version: '9', session: 'abc' },
    members: [member('pg1'), member('pg2'), member('pg3')],
    history: [],
    revision: '100',
    ...extra,
  });
}

function peer(name: string, extra: Partial<PeerStatus> = {}): PeerStatus {
  return { name, reachable: true, inRecovery: true, walPosition: 0, timeline: 1, nofailover: false, failoverPriority: 1, watchdogFailed: false, ...extra };
}

/** An in-memory stand-in for the agent: a DCS held in one ClusterView with CAS versions. */
class MemPort implements OperationsPort {
  readonly name: string;
  cluster: ClusterView;
  rev = 100;
  reads = 0;
  readFails = false;
  writeFails = false;
  /** Called on each readCluster, after the count is bumped: lets a test play the HA loop. */
  onRead?: (p: MemPort) => void;
  peers = new Map<string, PeerStatus>();
  fetched: string[] = [];
  failoverWrites: { value: Record<string, unknown>; version: string | undefined }[] = [];
  configWrites: { config: Record<string, unknown>; version: string | undefined }[] = [];
  wakeups = 0;
  restarts: RestartRequest[] = [];
  restartOutcome: RestartOutcome = { ok: true };
  restartThrows = false;
  scheduled: ScheduledRestart | undefined;
  reloads = 0;
  reinits: { force: boolean; fromLeader: boolean }[] = [];
  reinitResult: { ok: true } | { ok: false; message: string } = { ok: true };
  failsafeSenders: FailsafeSender[] = [];
  failsafeLsn: number | undefined;

  constructor(cluster: ClusterView = view(), name = 'pg1') {
    this.cluster = cluster;
    this.name = name;
  }

  readCluster(): Promise<ClusterView> {
    this.reads++;
    if (this.readFails) return Promise.reject(new Error('etcd is down'));
    this.onRead?.(this);
    return Promise.resolve(structuredClone(this.cluster));
  }

  writeFailover(value: Record<string, unknown>, version?: string): Promise<boolean> {
    if (this.writeFails) return Promise.reject(new Error('etcd is down'));
    this.failoverWrites.push({ value, version });
    if (version !== undefined && version !== this.cluster.failover?.version) return Promise.resolve(false);
    this.cluster.failover = { ...(value as Record<string, string>), version: String(++this.rev) };
    return Promise.resolve(true);
  }

  writeConfig(cfg: Record<string, unknown>, version?: string): Promise<boolean> {
    if (this.writeFails) return Promise.resolve(false);
    this.configWrites.push({ config: cfg, version });
    if (version !== undefined && version !== this.cluster.configVersion) return Promise.resolve(false);
    this.cluster.config = structuredClone(cfg);
    this.cluster.configVersion = String(++this.rev);
    return Promise.resolve(true);
  }

  fetchPeer(name: string, _apiUrl: string): Promise<PeerStatus> {
    this.fetched.push(name);
    return Promise.resolve(this.peers.get(name) ?? { ...peer(name), reachable: false });
  }

  wakeup(): void {
    this.wakeups++;
  }

  restart(req: RestartRequest): Promise<RestartOutcome> {
    this.restarts.push(req);
    if (this.restartThrows) return Promise.reject(new Error('boom'));
    return Promise.resolve(this.restartOutcome);
  }

  scheduleRestart(sr: ScheduledRestart): boolean {
    if (this.scheduled !== undefined) return false;
    this.scheduled = sr;
    return true;
  }

  cancelScheduledRestart(): boolean {
    if (this.scheduled === undefined) return false;
    this.scheduled = undefined;
    return true;
  }

  reload(): Promise<void> {
    this.reloads++;
    return Promise.resolve();
  }

  reinitialize(opts: { force: boolean; fromLeader: boolean }): Promise<{ ok: true } | { ok: false; message: string }> {
    this.reinits.push(opts);
    return Promise.resolve(this.reinitResult);
  }

  failsafeReceived(sender: FailsafeSender): { lsn: number | undefined } {
    this.failsafeSenders.push(sender);
    return { lsn: this.failsafeLsn };
  }
}

const OPTS: OperationOptions = { now: () => NOW, pollIntervalMs: 2, switchoverTimeoutMs: 40 };

function req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): ApiRequest {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const h: Record<string, string | undefined> = { ...headers };
  if (text !== undefined && h['content-length'] === undefined) h['content-length'] = String(Buffer.byteLength(text));
  return { method, path, query: new URLSearchParams(), headers: h, ...(text !== undefined ? { body: text } : {}) };
}

async function run(port: MemPort, r: ApiRequest, snap: NodeSnapshot = snapshot(), opts: OperationOptions = OPTS): Promise<ApiResponse> {
  return handleOperation(r, snap, port, opts);
}

function expectMessage(res: ApiResponse, status: number, body: string): void {
  assert.equal(res.status, status, `status (body: ${res.body})`);
  assert.equal(res.body, body);
  assert.match(res.contentType ?? '', /^text\/html/);
}

/** Peers pg2, pg3 reachable and healthy. */
function healthyPort(cluster: ClusterView = view()): MemPort {
  const p = new MemPort(cluster);
  p.peers.set('pg2', peer('pg2'));
  p.peers.set('pg3', peer('pg3'));
  return p;
}

// ---- Timestamps ------------------------------------------------------------------------------

test('parseTimestamp: ISO-8601 forms with offsets, normalised like Python isoformat()', () => {
  const ok = (s: string): { epochMs: number; iso: string } => {
    const t = parseTimestamp(s);
    assert.ok(t.ok, `${s} should parse`);
    return { epochMs: t.epochMs, iso: t.iso };
  };
  assert.deepEqual(ok('2024-05-01T14:00:00+02:00'), { epochMs: NOW.getTime(), iso: '2024-05-01T14:00:00+02:00' });
  assert.deepEqual(ok('2024-05-01T12:00:00Z'), { epochMs: NOW.getTime(), iso: '2024-05-01T12:00:00+00:00' });
  assert.deepEqual(ok('2024-05-01 12:00z'), { epochMs: NOW.getTime(), iso: '2024-05-01T12:00:00+00:00' });
  assert.deepEqual(ok('2024-05-01T09:00:00-0300'), { epochMs: NOW.getTime(), iso: '2024-05-01T09:00:00-03:00' });
  assert.deepEqual(ok('2024-05-01T17:30+05:30'), { epochMs: NOW.getTime(), iso: '2024-05-01T17:30:00+05:30' });
  assert.deepEqual(ok('2024-05-01T13:00:00+01'), { epochMs: NOW.getTime(), iso: '2024-05-01T13:00:00+01:00' });
  assert.deepEqual(ok('  2024-05-01T12:00:00.25+00:00 '), { epochMs: NOW.getTime() + 250, iso: '2024-05-01T12:00:00.250000+00:00' });
  assert.deepEqual(ok('2024-05-01T12:00:00,123456789Z'), { epochMs: NOW.getTime() + 123, iso: '2024-05-01T12:00:00.123456+00:00' });
  assert.equal(ok('2024-02-29T00:00:00Z').iso, '2024-02-29T00:00:00+00:00');
  assert.equal(ok('2000-02-29T00:00:00Z').iso, '2000-02-29T00:00:00+00:00');
  assert.equal(ok('0050-01-01T00:00:00Z').epochMs, Date.parse('0050-01-01T00:00:00Z'));
  assert.equal(ok('2024-12-31T23:59:59-23:59').iso, '2024-12-31T23:59:59-23:59');
});

test('parseTimestamp: a valid time without an offset is no-timezone; everything else unparsable', () => {
  for (const s of ['2024-05-01T12:00:00', '2024-05-01 12:00', '2024-05-01', '2024-05-01T12:00:00.5']) {
    assert.deepEqual(parseTimestamp(s), { ok: false, reason: 'no-timezone' }, s);
  }
  const bad = [
    '', 'now', 'tomorrow', '2024-13-01T00:00:00Z', '2024-00-10T00:00:00Z', '2023-02-29T00:00:00Z', '1900-02-29T00:00:00Z',
    '2024-04-31T00:00:00Z', '2024-05-01T24:00:00Z', '2024-05-01T12:60:00Z', '2024-05-01T12:00:60Z', '2024-05-01T12:00:00+24:00',
    '2024-05-01T12:00:00+02:60', '24-05-01T12:00:00Z', '2024-5-1T12:00:00Z', '2024-05-01T12Z', '2024-05-01T12:00:00 UTC',
    '2024-05-01T12:00:00+2', '0000-01-01T00:00:00Z', '2024-05-01T12:00:00Zjunk', '1714564800',
  ];
  for (const s of bad) assert.deepEqual(parseTimestamp(s), { ok: false, reason: 'unparsable' }, s);
  for (const v of [null, undefined, 1714564800, true, {}, []]) assert.deepEqual(parseTimestamp(v), { ok: false, reason: 'unparsable' });
});

// ---- Bodies ----------------------------------------------------------------------------------

test('readJsonBody: Content-Length rules, JSON object required', () => {
  const noLength: ApiRequest = { method: 'POST', path: '/switchover', query: new URLSearchParams(), headers: {}, body: '{"leader":"pg1"}' };
  const r411 = readJsonBody(noLength, false);
  assert.ok(!r411.ok);
  assert.equal(r411.response.status, 411);
  assert.match(r411.response.body ?? '', /Content-Length is required/);
  assert.deepEqual(readJsonBody(noLength, true), { ok: true, value: {} });
  assert.deepEqual(readJsonBody(req('POST', '/restart', '', { 'content-length': '0' }), true), { ok: true, value: {} });

  const bad = (body: string, optional: boolean, msg: RegExp): void => {
    const r = readJsonBody(req('POST', '/x', body), optional);
    assert.ok(!r.ok, body);
    assert.equal(r.response.status, 400, body);
    assert.match(r.response.body ?? '', msg);
    assert.match(r.response.contentType ?? '', /^text\/html/);
  };
  bad('{"leader":', false, /not valid JSON/);
  bad('{"leader":', true, /not valid JSON/);
  bad('[1,2]', false, /must be a JSON object/);
  bad('"x"', true, /must be a JSON object/);
  bad('null', true, /must be a JSON object/);
  bad('{}', false, /non-empty JSON object/);
  bad('', false, /not valid JSON/);
  const weird = readJsonBody(req('POST', '/x', '{}', { 'content-length': '-1' }), true);
  assert.ok(!weird.ok);
  assert.equal(weird.response.status, 400);
  assert.deepEqual(readJsonBody(req('POST', '/x', '{}'), true), { ok: true, value: {} });
  assert.deepEqual(readJsonBody(req('POST', '/x', '{"a":1}'), false), { ok: true, value: { a: 1 } });
});

test('every endpoint that needs a body: 411 without Content-Length, 400 on a bad body; nothing written', async () => {
  for (const [method, path] of [['POST', '/switchover'], ['POST', '/failover'], ['PATCH', '/config'], ['PUT', '/config']] as const) {
    const p = healthyPort();
    const noLen = await run(p, { method, path, query: new URLSearchParams(), headers: {}, body: '{"leader":"pg1"}' });
    assert.equal(noLen.status, 411, `${method} ${path}`);
    assert.equal((await run(p, req(method, path, 'not json'))).status, 400);
    assert.equal((await run(p, req(method, path, []))).status, 400);
    assert.equal((await run(p, req(method, path, {}))).status, 400);
    assert.equal(p.failoverWrites.length + p.configWrites.length, 0);
  }
  for (const path of ['/restart', '/reinitialize']) {
    const p = healthyPort();
    p.cluster.leader = { name: 'pg3', version: '1', session: '' };
    assert.equal((await run(p, req('POST', path, '{oops'))).status, 400, path);
    assert.equal((await run(p, req('POST', path, [1]))).status, 400, path);
    assert.equal(p.restarts.length + p.reinits.length, 0);
  }
});

// ---- POST /switchover, POST /failover --------------------------------------------------------

test('switchover/failover: 400 messages of the intake rules', async () => {
  const p = healthyPort();
  const paused = snapshot({ config: defaultConfig({ pause: true }) });
  const cases: [string, unknown, NodeSnapshot, number, string][] = [
    ['/failover', { leader: '' , member: '' }, snapshot(), 400, 'Failover could be performed only to a specific candidate'],
    ['/failover', { scheduled_at: '2030-01-01T00:00:00Z' }, snapshot(), 400, 'Failover could be performed only to a specific candidate'],
    ['/switchover', { candidate: 'pg2' }, snapshot(), 400, 'Switchover could be performed only from a specific leader'],
    ['/failover', { candidate: 'pg2', scheduled_at: '2030-01-01T00:00:00Z' }, snapshot(), 400, "Failover can't be scheduled"],
    ['/failover', { leader: 'pg1', candidate: 'pg2', scheduled_at: '2030-01-01T00:00:00Z' }, snapshot(), 400, "Failover can't be scheduled"],
    ['/switchover', { leader: 'pg1', candidate: 'pg2', scheduled_at: '2030-01-01T00:00:00Z' }, paused, 400, "Can't schedule switchover in the paused state"],
    ['/switchover', { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00' }, snapshot(), 400, 'Timezone information is mandatory for the scheduled switchover'],
    ['/switchover', { leader: 'pg1', scheduled_at: '2024-05-01T11:59:59Z' }, snapshot(), 422, 'Cannot schedule switchover in the past'],
    ['/switchover', { leader: 'pg1', scheduled_at: 'next tuesday' }, snapshot(), 422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601'],
    ['/switchover', { leader: 'pg1', scheduled_at: 12345 }, snapshot(), 422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601'],
    ['/switchover', { leader: 'pg1' }, paused, 400, 'Switchover is possible only to a specific candidate in a paused state'],
    ['/switchover', { leader: 'pg1', candidate: 'pg1' }, snapshot(), 400, 'Switchover target and source are the same'],
    ['/failover', { leader: 'pg2', member: 'pg2' }, snapshot(), 400, 'Switchover target and source are the same'],
    ['/switchover', { leader: 5 }, snapshot(), 400, 'leader must be a member name (a string)'],
    ['/failover', { candidate: ['pg2'] }, snapshot(), 400, 'candidate must be a member name (a string)'],
  ];
  for (const [path, body, snap, status, msg] of cases) {
    expectMessage(await run(p, req('POST', path, body), snap), status, msg);
  }
  assert.equal(p.failoverWrites.length, 0);
  assert.equal(p.wakeups, 0);
});

test('switchover: pause read from the fresh cluster config too', async () => {
  const p = healthyPort(view({ config: { pause: true, loop_wait: 10 } }));
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' })), 400, 'Switchover is possible only to a specific candidate in a paused state');
  expectMessage(
    await run(p, req('POST', '/switchover', { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00Z' })),
    400,
    "Can't schedule switchover in the paused state",
  );
  // snap.pause (the agent's own view) counts as well.
  const q = healthyPort();
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1' }), snapshot({ pause: true })), 400, 'Switchover is possible only to a specific candidate in a paused state');
});

test('scheduled switchover: 202, /failover written with normalised scheduled_at, no feasibility check', async () => {
  const p = new MemPort(); // no peer reachable: a scheduled request is not pre-checked
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2', scheduled_at: '2024-05-01T15:00:00+02:00' })), 202, 'Switchover scheduled');
  assert.deepEqual(p.failoverWrites, [{ value: { leader: 'pg1', member: 'pg2', scheduled_at: '2024-05-01T15:00:00+02:00' }, version: undefined }]);
  assert.equal(p.wakeups, 1);
  assert.deepEqual(p.fetched, []);
  // Without a candidate only the set fields are written.
  const q = new MemPort();
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1', scheduled_at: '2024-05-01T12:00:00.5Z' })), 202, 'Switchover scheduled');
  assert.deepEqual(q.failoverWrites[0]?.value, { leader: 'pg1', scheduled_at: '2024-05-01T12:00:00.500000+00:00' });
});

test('feasibility: 412 messages', async () => {
  const cases: [string, unknown, MemPort, string][] = [];
  cases.push(['/switchover', { leader: 'pg2', candidate: 'pg3' }, healthyPort(), 'leader name does not match']);
  cases.push(['/switchover', { leader: 'pg1' }, healthyPort(view({ leader: undefined })), 'leader name does not match']);
  cases.push(['/failover', { leader: 'pg9', candidate: 'pg3' }, healthyPort(), 'leader name does not match']);
  const sync = (extra: Partial<ClusterView> = {}): MemPort =>
    healthyPort(view({ config: { synchronous_mode: true }, sync: { leader: 'pg1', sync_standby: 'PG2', version: '3' }, ...extra }));
  cases.push(['/switchover', { leader: 'pg1', candidate: 'pg3' }, sync(), 'candidate name does not match with sync_standby']);
  cases.push(['/switchover', { leader: 'pg1', candidate: 'pg7' }, healthyPort(), 'candidate does not exists']);
  cases.push(['/failover', { candidate: 'pg7' }, healthyPort(), 'candidate does not exists']);
  cases.push(['/failover', { candidate: 'pg7' }, sync(), 'candidate does not exists']);
  cases.push(['/switchover', { leader: 'pg1' }, sync({ sync: undefined }), 'switchover is not possible: can not find sync_standby']);
  cases.push(['/switchover', { leader: 'pg1' }, healthyPort(view({ members: [member('pg1')] })), 'switchover is not possible: cluster does not have members except leader']);
  cases.push([
    '/switchover',
    { leader: 'pg1' },
    healthyPort(view({ members: [member('pg1'), member('pg2', { api_url: '' })] })),
    'switchover is not possible: cluster does not have members except leader',
  ]);
  cases.push(['/switchover', { leader: 'pg1' }, new MemPort(), 'switchover is not possible: no good candidates have been found']);
  const limited = healthyPort();
  limited.peers.set('pg2', peer('pg2', { nofailover: true }));
  limited.peers.set('pg3', peer('pg3', { watchdogFailed: true }));
  cases.push(['/switchover', { leader: 'pg1' }, limited, 'switchover is not possible: no good candidates have been found']);
  const cand = healthyPort();
  cand.peers.set('pg3', peer('pg3', { reachable: false }));
  cases.push(['/switchover', { leader: 'pg1', candidate: 'pg3' }, cand, 'switchover is not possible: no good candidates have been found']);
  cases.push(['/failover', { candidate: 'pg3' }, cand, 'failover is not possible: no good candidates have been found']);
  // A failover that names the leader is a switchover: the message says so.
  cases.push(['/failover', { leader: 'pg1', candidate: 'pg3' }, cand, 'switchover is not possible: no good candidates have been found']);
  // The lock holder is never a good candidate.
  cases.push(['/failover', { candidate: 'pg1' }, healthyPort(), 'failover is not possible: no good candidates have been found']);
  // A candidate without api_url cannot be asked.
  cases.push(['/failover', { candidate: 'pg2' }, healthyPort(view({ members: [member('pg1'), member('pg2', { api_url: undefined })] })), 'failover is not possible: no good candidates have been found']);
  for (const [path, body, p, msg] of cases) {
    expectMessage(await run(p, req('POST', path, body)), 412, msg);
    assert.equal(p.failoverWrites.length, 0, msg);
  }
});

test('feasibility: sync mode limits the candidates to /sync; quorum mode and standby clusters do not', async () => {
  const p = healthyPort(view({ config: { synchronous_mode: 'on' }, sync: { leader: 'pg1', sync_standby: 'pg3', version: '3' } }));
  p.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg3', version: '10', session: 'x' };
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' })), 200, 'Successfully switched over to "pg3"');
  assert.deepEqual(p.fetched, ['pg3']);
  // Quorum: any member; a failover ignores /sync membership of the candidate.
  const q = healthyPort(view({ config: { synchronous_mode: 'quorum' }, sync: { leader: 'pg1', sync_standby: 'pg3', version: '3' } }));
  q.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');
  const f = healthyPort(view({ config: { synchronous_mode: true }, sync: { leader: 'pg1', sync_standby: 'pg3', version: '3' } }));
  f.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  expectMessage(await run(f, req('POST', '/failover', { candidate: 'pg2' })), 200, 'Successfully failed over to "pg2"');
  const standby = healthyPort(view({ config: { synchronous_mode: true, standby_cluster: { host: '10.0.0.9' } } }));
  standby.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  expectMessage(await run(standby, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');
});

test('immediate switchover: writes /failover, wakes the loop, waits for the new leader', async () => {
  const p = healthyPort();
  p.peers.set('pg2', peer('pg2', { reachable: false }));
  let readsAfterWrite = 0;
  p.onRead = (port) => {
    if (port.failoverWrites.length === 0) return;
    readsAfterWrite++;
    if (readsAfterWrite === 3) port.cluster.leader = { name: 'pg3', version: '10', session: 'x' };
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' })), 200, 'Successfully switched over to "pg3"');
  assert.deepEqual(p.failoverWrites, [{ value: { leader: 'pg1' }, version: undefined }]);
  assert.equal(p.wakeups, 1);
  assert.deepEqual(p.fetched.sort(), ['pg2', 'pg3']);
  assert.equal(readsAfterWrite, 3);
});

test('immediate switchover/failover: every result message', async () => {
  const leaderBecomes = (name: string) => (port: MemPort): void => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name, version: '10', session: 'x' };
  };
  let p = healthyPort();
  p.onRead = leaderBecomes('pg2');
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg3' })), 200, 'Switched over to "pg2" instead of "pg3"');
  assert.deepEqual(p.failoverWrites[0]?.value, { leader: 'pg1', member: 'pg3' });

  p = healthyPort(view({ leader: undefined }));
  p.onRead = leaderBecomes('pg2');
  expectMessage(await run(p, req('POST', '/failover', { candidate: 'pg2' })), 200, 'Successfully failed over to "pg2"');
  assert.deepEqual(p.failoverWrites[0]?.value, { member: 'pg2' });

  p = healthyPort(view({ leader: undefined }));
  p.onRead = leaderBecomes('pg3');
  expectMessage(await run(p, req('POST', '/failover', { member: 'pg2' })), 200, 'Failed over to "pg3" instead of "pg2"');

  // failover with a leader = switchover, and the messages say so.
  p = healthyPort();
  p.onRead = leaderBecomes('pg2');
  expectMessage(await run(p, req('POST', '/failover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');

  // The leader refused and cleared the key: failed.
  p = healthyPort();
  p.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.failover = { version: '77' };
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 503, 'Switchover failed');
  p = healthyPort();
  p.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.failover = undefined;
  };
  expectMessage(await run(p, req('POST', '/failover', { candidate: 'pg2' })), 503, 'Failover failed');

  // Nothing happens: status unknown after the timeout (2 * max(10, loop_wait) s by default).
  p = healthyPort();
  expectMessage(
    await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })),
    503,
    'Switchover status unknown after 0 seconds; operation may still be in progress',
  );
  p = healthyPort();
  expectMessage(
    await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' }), snapshot(), { ...OPTS, switchoverTimeoutMs: 3000, pollIntervalMs: 1000, signal: AbortSignal.abort() }),
    503,
    'Switchover status unknown after 3 seconds; operation may still be in progress',
  );
  // DCS errors while polling are retried, not fatal.
  p = healthyPort();
  let n = 0;
  p.onRead = (port) => {
    if (port.failoverWrites.length === 0) return;
    n++;
    if (n === 1) port.readFails = true;
    if (n >= 2) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  const original = p.readCluster.bind(p);
  p.readCluster = (): Promise<ClusterView> => {
    if (p.readFails) {
      p.readFails = false;
      return Promise.reject(new Error('hiccup'));
    }
    return original();
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');
});

test('switchover: the default wait is 2 * max(10, loop_wait) seconds', async () => {
  const opts: OperationOptions = { now: () => NOW, pollIntervalMs: 1, signal: AbortSignal.abort() };
  let p = healthyPort();
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' }), snapshot(), opts), 503, 'Switchover status unknown after 20 seconds; operation may still be in progress');
  p = healthyPort(view({ config: { loop_wait: 25 } }));
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' }), snapshot(), opts), 503, 'Switchover status unknown after 50 seconds; operation may still be in progress');
  p = healthyPort(view({ config: {} }));
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' }), snapshot({ config: defaultConfig({ loop_wait: 12 }) }), opts), 503, 'Switchover status unknown after 24 seconds; operation may still be in progress');
});

test('switchover: DCS failures give 503', async () => {
  const p = healthyPort();
  p.readFails = true;
  const res = await run(p, req('POST', '/switchover', { leader: 'pg1' }));
  assert.equal(res.status, 503);
  assert.match(res.body ?? '', /failed to read the cluster state from DCS: etcd is down/);
  const q = healthyPort();
  q.writeFails = true;
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 503, 'failed to write failover key into DCS');
  assert.equal(q.wakeups, 0);
});

test('DELETE /switchover: 404 without a schedule, 200 clears with CAS, 409 when the key changed', async () => {
  let p = new MemPort();
  expectMessage(await run(p, req('DELETE', '/switchover')), 404, 'no switchover is scheduled');
  p = new MemPort(view({ failover: { leader: 'pg1', member: 'pg2', version: '50' } }));
  expectMessage(await run(p, req('DELETE', '/switchover')), 404, 'no switchover is scheduled');
  assert.equal(p.failoverWrites.length, 0);
  p = new MemPort(view({ failover: { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00+00:00', version: '50' } }));
  expectMessage(await run(p, req('DELETE', '/switchover')), 200, 'scheduled switchover deleted');
  assert.deepEqual(p.failoverWrites, [{ value: {}, version: '50' }]);
  // CAS lost: someone rewrote the key between our read (version 50) and our write.
  p = new MemPort(view({ failover: { leader: 'pg1', scheduled_at: '2030-01-02T00:00:00+00:00', version: '51' } }));
  p.readCluster = (): Promise<ClusterView> =>
    Promise.resolve(view({ failover: { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00+00:00', version: '50' } }));
  const lost = await run(p, req('DELETE', '/switchover'));
  assert.equal(lost.status, 409);
  assert.match(lost.body ?? '', /Error code: 409/);
  p = new MemPort();
  p.readFails = true;
  assert.equal((await run(p, req('DELETE', '/switchover'))).status, 503);
});

// ---- Restart ---------------------------------------------------------------------------------

test('POST /restart: filter validation messages', async () => {
  const cases: [unknown, number, string][] = [
    [{ role: 'master' }, 400, 'PostgreSQL role should be either primary, standby_leader, or replica'],
    [{ role: null }, 400, 'PostgreSQL role should be either primary, standby_leader, or replica'],
    [{ postgres_version: 'fifteen' }, 400, 'Invalid PostgreSQL major version format: fifteen'],
    [{ postgres_version: '9.6' }, 400, 'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 9.6'],
    [{ postgres_version: '15' }, 400, 'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 15'],
    [{ postgres_version: '15.1.2.3' }, 400, 'Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 15.1.2.3'],
    [{ postgres_version: true }, 400, 'Invalid PostgreSQL major version format: true'],
    [{ timeout: 0 }, 400, 'Timeout should be a positive number of seconds'],
    [{ timeout: '-5s' }, 400, 'Timeout should be a positive number of seconds'],
    [{ timeout: 'soon' }, 400, 'Timeout should be a positive number of seconds'],
    [{ timeout: '10 years' }, 400, 'Timeout should be a positive number of seconds'],
    [{ timeout: true }, 400, 'Timeout should be a positive number of seconds'],
    [{ force: true }, 400, 'Unknown filter for the scheduled restart: force'],
    [{ schedule: '2024-05-01T13:00:00' }, 400, 'Timezone information is mandatory for the scheduled restart'],
    [{ schedule: '2024-05-01T11:00:00Z' }, 422, 'Cannot schedule restart in the past'],
    [{ schedule: 'at noon' }, 422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601'],
    // The first bad key in body order decides.
    [{ role: 'replica', bogus: 1, timeout: 0 }, 400, 'Unknown filter for the scheduled restart: bogus'],
    [{ timeout: 0, bogus: 1 }, 400, 'Timeout should be a positive number of seconds'],
  ];
  for (const [body, status, msg] of cases) {
    const p = new MemPort();
    expectMessage(await run(p, req('POST', '/restart', body)), status, msg);
    assert.equal(p.restarts.length, 0);
    assert.equal(p.scheduled, undefined);
  }
});

test('POST /restart: immediate restart with the parsed filters, and its outcomes', async () => {
  let p = new MemPort();
  expectMessage(await run(p, { method: 'POST', path: '/restart', query: new URLSearchParams(), headers: {} }), 200, 'restarted successfully');
  expectMessage(await run(p, req('POST', '/restart', '', { 'content-length': '0' })), 200, 'restarted successfully');
  expectMessage(await run(p, req('POST', '/restart', {})), 200, 'restarted successfully');
  expectMessage(
    await run(p, req('POST', '/restart', { role: 'replica', postgres_version: '15.4', timeout: '2min', restart_pending: false })),
    200,
    'restarted successfully',
  );
  assert.deepEqual(p.restarts, [{}, {}, {}, { role: 'replica', postgres_version: '15.4', timeout: 120, restart_pending: true }]);

  const outcomes: [RestartOutcome, string][] = [
    [{ ok: false, reason: 'conditions', message: 'restart conditions are not satisfied' }, 'restart conditions are not satisfied'],
    [{ ok: false, reason: 'busy', message: 'reinitialize already in progress' }, 'reinitialize already in progress'],
    [{ ok: false, reason: 'starting', message: 'postgres is still starting' }, 'postgres is still starting'],
    [{ ok: false, reason: 'failed', message: 'restart failed' }, 'restart failed'],
    [{ ok: false, reason: 'conditions', message: '' }, 'restart conditions are not satisfied'],
  ];
  for (const [outcome, msg] of outcomes) {
    p = new MemPort();
    p.restartOutcome = outcome;
    expectMessage(await run(p, req('POST', '/restart', {})), 503, msg);
  }
  p = new MemPort();
  p.restartThrows = true;
  expectMessage(await run(p, req('POST', '/restart', {})), 400, 'restart failed');
  // An immediate restart is allowed in pause.
  p = new MemPort();
  expectMessage(await run(p, req('POST', '/restart', {}), snapshot({ config: defaultConfig({ pause: true }) })), 200, 'restarted successfully');
});

test('POST /restart with schedule: 202, 409 when one exists, 500 in pause; DELETE /restart', async () => {
  const p = new MemPort();
  expectMessage(await run(p, req('DELETE', '/restart')), 404, 'no restarts are scheduled');
  expectMessage(await run(p, req('POST', '/restart', { schedule: '2024-05-01T16:00:00+03:00', role: 'primary', timeout: 30 })), 202, 'Restart scheduled');
  assert.deepEqual(p.scheduled, { schedule: '2024-05-01T16:00:00+03:00', role: 'primary', timeout: 30 });
  assert.equal(p.restarts.length, 0);
  expectMessage(await run(p, req('POST', '/restart', { schedule: '2024-05-02T00:00:00Z' })), 409, 'Another restart is already scheduled');
  assert.equal(p.scheduled?.schedule, '2024-05-01T16:00:00+03:00');
  expectMessage(await run(p, req('DELETE', '/restart')), 200, 'scheduled restart deleted');
  assert.equal(p.scheduled, undefined);

  const paused = new MemPort(view({ config: { pause: true } }));
  expectMessage(await run(paused, req('POST', '/restart', { schedule: '2024-05-02T00:00:00Z' })), 500, "Can't schedule restart in the paused state");
  assert.equal(paused.scheduled, undefined);
  const pausedSnap = new MemPort();
  pausedSnap.readFails = true; // the snapshot's pause is enough
  expectMessage(await run(pausedSnap, req('POST', '/restart', { schedule: '2024-05-02T00:00:00Z' }), snapshot({ pause: true })), 500, "Can't schedule restart in the paused state");
});

test('filter parsers', () => {
  assert.equal(parseSecondsValue(30), 30);
  assert.equal(parseSecondsValue('30'), 30);
  assert.equal(parseSecondsValue(' 45s '), 45);
  assert.equal(parseSecondsValue('1.5min'), 90);
  assert.equal(parseSecondsValue('2h'), 7200);
  assert.equal(parseSecondsValue('1d'), 86400);
  assert.equal(parseSecondsValue('1500ms'), 2);
  assert.equal(parseSecondsValue('2 weeks'), undefined);
  assert.equal(parseSecondsValue(null), undefined);
  assert.equal(parseSecondsValue(Infinity), undefined);
  assert.equal(postgresVersionProblem('15.4'), undefined);
  assert.equal(postgresVersionProblem('9.6.24'), undefined);
  assert.equal(postgresVersionProblem('10.0'), undefined);
  assert.equal(postgresVersionProblem(15.4), undefined);
  assert.equal(postgresVersionProblem('15.x'), 'Invalid PostgreSQL major version format: 15.x');
  assert.equal(postgresVersionProblem(''), 'Invalid PostgreSQL major version format: ');
  assert.equal(postgresVersionProblem(null), 'Invalid PostgreSQL major version format: null');
});

// ---- Reload, reinitialize --------------------------------------------------------------------

test('POST /reload: 202 at once, the reload runs on its own', async () => {
  const p = new MemPort();
  let release: () => void = () => undefined;
  p.reload = (): Promise<void> => {
    p.reloads++;
    return new Promise((r) => (release = r));
  };
  expectMessage(await run(p, req('POST', '/reload')), 202, 'reload scheduled');
  await new Promise((r) => setImmediate(r));
  assert.equal(p.reloads, 1);
  release();
  // A failing reload is reported to onError, the reply is still 202.
  const q = new MemPort();
  q.reload = (): Promise<void> => Promise.reject(new Error('bad file'));
  const errors: string[] = [];
  expectMessage(await run(q, req('POST', '/reload'), snapshot(), { ...OPTS, onError: (what) => errors.push(what) }), 202, 'reload scheduled');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(errors, ['reload']);
});

test('POST /reinitialize: leader checks from a fresh read, string booleans, port refusals', async () => {
  let p = new MemPort(view({ leader: undefined }), 'pg2');
  expectMessage(await run(p, req('POST', '/reinitialize')), 503, 'Cluster has no leader, can not reinitialize');
  p = new MemPort(view(), 'pg1');
  expectMessage(await run(p, req('POST', '/reinitialize', {})), 503, 'I am the leader, can not reinitialize');
  assert.equal(p.reinits.length, 0);
  p = new MemPort(view(), 'pg2');
  expectMessage(await run(p, req('POST', '/reinitialize')), 200, 'reinitialize started');
  expectMessage(await run(p, req('POST', '/reinitialize', { force: 'yes', from_leader: 'on' })), 200, 'reinitialize started');
  expectMessage(await run(p, req('POST', '/reinitialize', { force: true, from_leader: 'nonsense' })), 200, 'reinitialize started');
  expectMessage(await run(p, req('POST', '/reinitialize', { force: 'off', from_leader: '1' })), 200, 'reinitialize started');
  assert.deepEqual(p.reinits, [
    { force: false, fromLeader: false },
    { force: true, fromLeader: true },
    { force: true, fromLeader: false },
    { force: false, fromLeader: true },
  ]);
  p.reinitResult = { ok: false, message: 'reinitialize already in progress' };
  expectMessage(await run(p, req('POST', '/reinitialize', {})), 503, 'reinitialize already in progress');
  p.readFails = true;
  assert.equal((await run(p, req('POST', '/reinitialize', {}))).status, 503);
});

// ---- /config ---------------------------------------------------------------------------------

test('patchConfigValue: Patroni merge rules', () => {
  const c: Record<string, unknown> = { ttl: 30, loop_wait: '10', postgresql: { parameters: { a: 1, b: 2 }, use_slots: true }, x: 'y' };
  assert.equal(patchConfigValue(c, { ttl: '30', loop_wait: 10 }), false); // same string form
  assert.equal(patchConfigValue(c, { nothere: null }), false);
  assert.equal(patchConfigValue(c, { postgresql: { parameters: { a: null, c: 3 }, use_slots: 'True' } }), true);
  assert.deepEqual(c, { ttl: 30, loop_wait: '10', postgresql: { parameters: { b: 2, c: 3 }, use_slots: true }, x: 'y' });
  assert.equal(patchConfigValue(c, { x: { deep: null } }), true); // object over a scalar replaces it
  assert.equal(patchConfigValue(c, { new: { p: null } }), true); // a new key is stored as given
  const after = c as Record<string, unknown>;
  assert.deepEqual(after['x'], { deep: null });
  assert.deepEqual(after['new'], { p: null });
  assert.equal(patchConfigValue(after, { postgresql: null }), true);
  assert.equal('postgresql' in after, false);
  assert.equal(pyStr(true), 'True');
  assert.equal(pyStr(null), 'None');
  assert.equal(pyStr(['a', 1, false]), "['a', 1, False]");
  assert.equal(pyStr({ k: 'v' }), "{'k': 'v'}");
  assert.equal(pyStr('x'), 'x');
});

test('PATCH /config: merge, CAS write, wakeup, full config back', async () => {
  const p = new MemPort();
  const res = await run(p, req('PATCH', '/config', { pause: true, postgresql: { parameters: { max_connections: null, work_mem: '8MB' } } }));
  assert.equal(res.status, 200);
  assert.equal(res.contentType, 'application/json');
  const expected = { ttl: 30, loop_wait: 10, postgresql: { parameters: { work_mem: '8MB' } }, pause: true };
  assert.deepEqual(JSON.parse(res.body ?? ''), expected);
  assert.deepEqual(p.configWrites, [{ config: expected, version: '5' }]);
  assert.equal(p.wakeups, 1);
  // Unchanged (Python string forms: str(True) == 'True', str(30) == '30'): no write, still 200
  // with the whole config, still a wakeup.
  const same = await run(p, req('PATCH', '/config', { pause: 'True', ttl: '30' }));
  assert.equal(same.status, 200);
  assert.deepEqual(JSON.parse(same.body ?? ''), { ...expected, pause: true });
  assert.equal(p.configWrites.length, 1);
  assert.equal(p.wakeups, 2);
  // Resume as patronictl does it.
  await run(p, req('PATCH', '/config', { pause: null }));
  assert.equal('pause' in (p.cluster.config ?? {}), false);
});

test('PATCH /config: 503 without a valid config, 409 on CAS loss, 400 on invalid values, 503 on DCS errors', async () => {
  let p = new MemPort(view({ config: undefined, configVersion: undefined }));
  const none = await run(p, req('PATCH', '/config', { pause: true }));
  assert.equal(none.status, 503);
  assert.match(none.body ?? '', /Error code: 503/);
  p = new MemPort(view({ configVersion: '0' }));
  assert.equal((await run(p, req('PATCH', '/config', { pause: true }))).status, 503);

  p = new MemPort();
  p.writeConfig = (cfg, version): Promise<boolean> => {
    p.configWrites.push({ config: cfg, version });
    return Promise.resolve(false);
  };
  const lost = await run(p, req('PATCH', '/config', { ttl: 40 }));
  assert.equal(lost.status, 409);
  assert.match(lost.body ?? '', /Error code: 409/);
  assert.equal(p.wakeups, 0);

  p = new MemPort();
  expectMessage(
    await run(p, req('PATCH', '/config', { ttl: 'forever', postgresql: { parameters: { max_connections: 0 } } })),
    400,
    'Invalid dynamic configuration: ttl: expected an integer, got "forever"; postgresql.parameters.max_connections: must be an integer between 1 and 262143, got 0',
  );
  expectMessage(await run(p, req('PATCH', '/config', { synchronous_mode: 'maybe' })), 400, 'Invalid dynamic configuration: synchronous_mode: expected on, off or quorum, got "maybe"');
  assert.equal(p.configWrites.length, 0);

  // A problem already stored does not block an unrelated change, nor the fix.
  p = new MemPort(view({ config: { ttl: 'broken', loop_wait: 10 } }));
  assert.equal((await run(p, req('PATCH', '/config', { loop_wait: 5 }))).status, 200);
  assert.equal((await run(p, req('PATCH', '/config', { ttl: 30 }))).status, 200);
  assert.deepEqual(p.cluster.config, { ttl: 30, loop_wait: 5 });

  p = new MemPort();
  p.readFails = true;
  assert.equal((await run(p, req('PATCH', '/config', { ttl: 40 }))).status, 503);
});

test('PUT /config: validated, unconditional overwrite, 502 on write failure, request echoed', async () => {
  const p = new MemPort();
  const body = { ttl: 20, loop_wait: 5, retry_timeout: 5, postgresql: { use_pg_rewind: true } };
  const res = await run(p, req('PUT', '/config', body));
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body ?? ''), body);
  assert.deepEqual(p.configWrites, [{ config: body, version: undefined }]);
  assert.equal(p.wakeups, 1);
  // Same content (by Python string form): no write.
  assert.equal((await run(p, req('PUT', '/config', { ...body, ttl: '20' }))).status, 200);
  assert.equal(p.configWrites.length, 1);

  expectMessage(await run(p, req('PUT', '/config', { loop_wait: -1 })), 400, 'Invalid dynamic configuration: loop_wait: must be between 1 and 9007199254740991, got -1');
  assert.equal(p.configWrites.length, 1);

  const q = new MemPort();
  q.writeFails = true;
  const failed = await run(q, req('PUT', '/config', body));
  assert.equal(failed.status, 502);
  assert.match(failed.body ?? '', /Error code: 502/);
  // No config in the DCS yet: PUT creates it.
  const r = new MemPort(view({ config: undefined, configVersion: undefined }));
  assert.equal((await run(r, req('PUT', '/config', body))).status, 200);
  assert.deepEqual(r.cluster.config, body);
});

test('unknown operations: 501', async () => {
  const p = new MemPort();
  assert.equal((await run(p, req('POST', '/sigterm'))).status, 501);
  assert.equal((await run(p, req('GET', '/switchover'))).status, 501);
});
