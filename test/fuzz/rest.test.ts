// Fuzzing of the REST API's request handling in process (src/api/router.ts and everything behind it:
// the gate, the read-only handlers, the operations against an in-memory OperationsPort): random
// methods, paths, query strings, headers and bodies (random JSON, and objects of each endpoint's
// fields with random values). The REST password is the planted secret. Properties:
// - route never throws or rejects and never answers 500;
// - without the right credentials no operation reaches the agent (no DCS write, restart, reload,
//   reinitialize), and the reply is a refusal;
// - whatever PATCH/PUT /config writes is a dynamic configuration the agent can use (no errors from
//   validateDynamicConfig, timings within bounds: see issue 14 item 1);
// - no reply contains the password or the Authorization header.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { MemPort, NOW, peer, view } from '../../src/api/operation-fixtures.ts';
import type { ApiRequest, ApiResponse } from '../../src/api/request.ts';
import { splitUrl } from '../../src/api/exchange.ts';
import { route } from '../../src/api/router.ts';
import { snapshot } from '../../src/api/testing.ts';
import { validateDynamicConfig } from '../../src/config/dynamic.ts';
import { anyValue, fuzz, oddString, SECRET } from './fuzz.ts';

const AUTH = { username: 'admin', password: SECRET };
const GOOD = 'Basic ' + Buffer.from(`admin:${SECRET}`).toString('base64');
const SEGMENTS = ['', 'patroni', 'health', 'primary', 'replica', 'cluster', 'history', 'config', 'failsafe', 'metrics', 'liveness', 'readiness', 'switchover',
  'failover', 'restart', 'reload', 'reinitialize', 'sigterm', 'citus', 'mpp', 'read-only', 'sync', 'quorum', 'standby-leader'];
const FIELDS = ['leader', 'candidate', 'member', 'scheduled_at', 'schedule', 'restart_pending', 'role', 'postgres_version', 'timeout', 'force', 'from-leader',
  'ttl', 'loop_wait', 'retry_timeout', 'postgresql', 'pause', 'synchronous_mode', 'maximum_lag_on_failover', 'name', 'conn_url', 'api_url', 'slots', 'failsafe_mode'];
const QUERY_KEYS = ['lag', 'replication_state', 'tag_key', 'tag_value', 'mode', 'x'];

const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), anyValue(), { maxKeys: 5 }).map((o) => JSON.stringify(o)),
  fc.record({ leader: fc.constantFrom('pg1', 'pg2', 'pgx', ''), candidate: fc.constantFrom('pg2', 'pg3', 'pg1', '', 'zz'), scheduled_at: fc.oneof(fc.constant('2024-05-01T12:00:00+00:00'), oddString()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  anyValue().map((v) => JSON.stringify(v) ?? ''),
  oddString(),
  fc.nat(3000).map((n) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`),
);

const w = <T,>(weight: number, arbitrary: fc.Arbitrary<T>): { weight: number; arbitrary: fc.Arbitrary<T> } => ({ weight, arbitrary });
const request = fc.record({
  method: fc.oneof(w(8, fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'POST', 'POST', 'PATCH', 'PUT', 'DELETE')), w(1, fc.constantFrom('TRACE', 'CONNECT', 'get', 'BREW', ''))),
  path: fc.oneof(
    w(6, fc.constantFrom(...SEGMENTS).map((s) => `/${s}`)),
    w(1, fc.tuple(fc.constantFrom(...SEGMENTS), oddString()).map(([s, x]) => `/${s}/${x}`)),
    w(1, oddString().map((s) => `/${s}`)),
  ),
  query: fc.oneof(w(3, fc.constant('')), w(3, fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), oddString()), { maxLength: 3 }).map((a) => new URLSearchParams(a).toString())), w(1, oddString())),
  body: fc.option(body, { nil: undefined, freq: 5 }),
  contentLength: fc.constantFrom('right', 'right', 'right', 'none', 'zero', 'bogus'),
  auth: fc.constantFrom('good', 'good', 'good', 'none', 'wrong', 'bearer', 'garbage'),
});

/** Half of the requests go to an operation endpoint with its method. */
const OPS = ['POST /switchover', 'POST /failover', 'DELETE /switchover', 'POST /restart', 'DELETE /restart', 'POST /reload', 'POST /reinitialize',
  'PATCH /config', 'PUT /config', 'POST /failsafe', 'POST /sigterm', 'POST /mpp', 'POST /citus'];
const requests = fc.tuple(request, fc.option(fc.constantFrom(...OPS), { nil: undefined })).map(([r, op]) => {
  if (op === undefined) return r;
  const [method, path] = op.split(' ') as [string, string];
  return { ...r, method, path };
});

type Req = Omit<typeof request extends fc.Arbitrary<infer T> ? T : never, 'method'> & { method: string };

function toApiRequest(r: Req): ApiRequest {
  const headers: Record<string, string | undefined> = {};
  if (r.body !== undefined) {
    if (r.contentLength === 'right') headers['content-length'] = String(Buffer.byteLength(r.body));
    else if (r.contentLength === 'zero') headers['content-length'] = '0';
    else if (r.contentLength === 'bogus') headers['content-length'] = '-1x';
  }
  if (r.auth === 'good') headers['authorization'] = GOOD;
  else if (r.auth === 'wrong') headers['authorization'] = 'Basic ' + Buffer.from(`admin:${SECRET}x`).toString('base64');
  else if (r.auth === 'bearer') headers['authorization'] = `Bearer ${SECRET}`;
  else if (r.auth === 'garbage') headers['authorization'] = 'Basic %%%';
  let query: URLSearchParams;
  try {
    query = new URLSearchParams(r.query);
  } catch {
    query = new URLSearchParams();
  }
  return { method: r.method, path: r.path, query, headers, ...(r.body !== undefined ? { body: r.body } : {}) };
}

function port(): MemPort {
  const p = new MemPort(view());
  p.peers.set('pg2', peer('pg2'));
  p.peers.set('pg3', peer('pg3'));
  return p;
}

/** Anything done to the agent or the DCS. */
function effects(p: MemPort): number {
  return p.failoverWrites.length + p.configWrites.length + p.restarts.length + p.reloads + p.reinits.length + (p.scheduled !== undefined ? 1 : 0) + p.failsafeSenders.length;
}

test('random requests: never a throw or a 500, no effect without credentials, /config writes stay usable, no secret in replies', async () => {
  await fuzz('rest: requests to the router', 3000, [requests], async (r) => {
    const p = port();
    const snap = snapshot({ cluster: p.cluster, clusterReadAt: 1000, leaderValidUntil: 60_000, takenAt: 1000, dcsLastSeen: 1 });
    const req = toApiRequest(r);
    let res: ApiResponse;
    try {
      res = await route(
        req,
        { getSnapshot: () => snap, clock: () => 2000, operations: p, wallClock: () => NOW, switchoverPollMs: 1, log: undefined },
        // A switchover waits for its result: the client "leaves" after 20 ms.
        { handlerOptions: { auth: AUTH }, allowlist: undefined, client: '127.0.0.1', signal: () => AbortSignal.timeout(20) },
      );
    } catch (err) {
      assert.fail(`route threw: ${String(err)}`);
    }
    assert.ok(res.status >= 200 && res.status < 600 && res.status !== 500, `${r.method} ${r.path} answered ${res.status}: ${res.body}`);
    const text = JSON.stringify(res);
    assert.ok(!text.includes(SECRET) && !text.includes(GOOD.slice(6)), `the reply shows the secret: ${text}`);
    if (r.auth !== 'good' && ['POST', 'PATCH', 'PUT', 'DELETE'].includes(r.method)) {
      assert.equal(effects(p), 0, `${r.method} ${r.path} without credentials had an effect`);
      if (!r.path.startsWith('/mpp')) assert.ok(res.status >= 400, `${r.method} ${r.path} without credentials answered ${res.status}`);
    }
    for (const w of p.configWrites) {
      assert.deepEqual(validateDynamicConfig(w.config), [], `${r.method} /config wrote an unusable configuration: ${JSON.stringify(w.config)}`);
    }
  });
});

test('random request targets: splitUrl never throws and the path it gives starts with /', async () => {
  const target = fc.oneof(oddString(), fc.string({ unit: 'binary', maxLength: 60 }), fc.webUrl({ withQueryParameters: true, withFragments: true }), oddString().map((s) => `/${s}?${s}`));
  await fuzz('rest: request targets', 2000, [target], (t) => {
    const { path, query } = splitUrl(t);
    assert.ok(path.startsWith('/'), `path ${JSON.stringify(path)} from ${JSON.stringify(t)}`);
    assert.ok(query instanceof URLSearchParams);
  });
});
