// The unsafe endpoints through handleOperation (operations.ts): timestamps, bodies, POST /restart,
// POST /reload, POST /reinitialize, PATCH/PUT /config, unknown operations. Switchover and
// failover: switchover.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { defaultConfig } from '../core/testing.ts';
import { patchConfigValue, pyStr } from './config-endpoints.ts';
import { parseTimestamp } from './operation-common.ts';
import { expectMessage, healthyPort, MemPort, NOW, OPTS, req, run, view } from './operation-fixtures.ts';
import type { RestartOutcome } from './port.ts';
import type { ApiRequest } from './request.ts';
import { readJsonBody } from './request.ts';
import { parseSecondsValue, postgresVersionProblem } from './restart.ts';
import { snapshot } from './testing.ts';

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

  expectMessage(await run(p, req('PUT', '/config', { loop_wait: -1 })), 400, 'Invalid dynamic configuration: loop_wait: must be between 1 and 86400, got -1');
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

