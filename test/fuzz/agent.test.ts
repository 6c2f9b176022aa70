// End-to-end fuzzing against a real two-node cluster (PostgreSQL 15, etcd, two `vigil agent`
// processes, FAST timing, restapi.authentication set to a planted secret): random REST requests
// (methods, paths, query strings, headers, bodies; some as raw bytes) and random contents written
// into the DCS keys the agents read (member keys of members that do not exist, /config, /sync,
// /status, /history, /failover, /failsafe, /optime/leader). Between them the health checks are
// asked. Asserted: every health check answers (GET /health 200 on both, GET /primary 200 on the
// primary), both agents keep running, the primary stays the primary and the replica a replica,
// and neither the REST password nor the PostgreSQL passwords appear in a reply, an agent log or
// an agent's command line.
//
// What is fair input: garbage, not operations. A /failover naming real members, or valid
// credentials with a well-formed switchover, restart, reload or sigterm, legitimately changes
// things, so requests with the right credentials carry only bodies that are not JSON objects (or go
// to the read-only endpoints), and /failover values naming a member are skipped. /leader and
// /initialize are a lock and an identity: their cases are the tests of issue 14 item 5.
// The number of rounds is 300 times VIGIL_FUZZ_RUNS; the seed is VIGIL_FUZZ_SEED (fuzz.ts).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import fc from 'fast-check';

import { effectiveDynamicConfig } from '../../src/config/dynamic.ts';
import { decodeFailover } from '../../src/dcs/codec.ts';
import { FAST_TIMING, LocalCluster, REPLICATION, SUPERUSER } from '../../src/local/cluster.ts';
import { agentLog, healthy, processRuns, stopCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';
import { anyValue, oddString, runs, SECRET, SEED } from './fuzz.ts';

const PREFIX = '/service/demo/';
const REST_AUTH = 'Basic ' + Buffer.from(`admin:${SECRET}`).toString('base64');
const SECRETS = [SECRET, REST_AUTH.slice(6), SUPERUSER.password, REPLICATION.password];

type Action =
  | { kind: 'http'; node: number; method: string; path: string; headers: Record<string, string>; body: string | undefined }
  | { kind: 'raw'; node: number; bytes: string }
  | { kind: 'dcs'; key: string; value: string };

const SEGMENTS = ['', 'patroni', 'health', 'primary', 'replica', 'cluster', 'history', 'config', 'failsafe', 'metrics', 'switchover', 'failover', 'restart',
  'reload', 'reinitialize', 'sigterm', 'mpp', 'read-only', 'sync', 'liveness', 'readiness'];
const path = fc.oneof(
  fc.constantFrom(...SEGMENTS).map((s) => `/${s}`),
  fc.tuple(fc.constantFrom(...SEGMENTS), fc.array(fc.tuple(fc.constantFrom('lag', 'replication_state', 'tag_key', 'x', ''), oddString()), { maxLength: 3 }))
    .map(([s, q]) => `/${s}?${q.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`),
  fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
);
const jsonBody = fc.oneof(
  fc.dictionary(fc.constantFrom('leader', 'candidate', 'scheduled_at', 'ttl', 'loop_wait', 'postgresql', 'pause', 'schedule', 'role', 'x'), anyValue(), { maxKeys: 4 }).map((o) => JSON.stringify(o)),
  anyValue().map((v) => JSON.stringify(v) ?? 'null'),
);
/** Bodies that are not a JSON object: refused whoever sends them. */
const garbageBody = fc.oneof(oddString(), fc.array(anyValue(), { maxLength: 3 }).map((a) => JSON.stringify(a)), fc.nat(2000).map((n) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`)).filter((b) => {
  try {
    const v: unknown = JSON.parse(b);
    return typeof v !== 'object' || v === null || Array.isArray(v) || b.includes('[[[[');
  } catch {
    return true;
  }
});
const headerValue = fc.oneof(oddString().map((s) => s.replace(/[^\x20-\x7e]/g, 'x')), fc.nat(6000).map((n) => 'h'.repeat(n)));

const httpAction: fc.Arbitrary<Action> = fc.oneof(
  // Anyone, anything, without the right credentials.
  fc.record({
    node: fc.nat(1),
    method: fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'BREW'),
    path,
    auth: fc.constantFrom(undefined, `Basic ${Buffer.from('admin:guess').toString('base64')}`, 'Basic ###', `Bearer ${SECRET}`),
    body: fc.option(fc.oneof(jsonBody, garbageBody), { nil: undefined }),
    extra: fc.dictionary(fc.constantFrom('x-odd', 'content-type', 'accept', 'x-forwarded-for', 'cookie'), headerValue, { maxKeys: 3 }),
  }).map(({ node, method, path: p, auth, body, extra }) => ({ kind: 'http' as const, node, method, path: p, body: method === 'GET' || method === 'HEAD' ? undefined : body, headers: { ...extra, ...(auth !== undefined ? { authorization: auth } : {}) } })),
  // With the right credentials: read-only endpoints, or an operation with a body that is not an object.
  fc.record({
    node: fc.nat(1),
    op: fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'POST /switchover', 'POST /failover', 'PATCH /config', 'PUT /config', 'POST /failsafe'),
    path,
    body: garbageBody,
  }).map(({ node, op, path: p, body }) => {
    const [method, fixed] = op.split(' ') as [string, string | undefined];
    return { kind: 'http' as const, node, method, path: fixed ?? p, body: fixed === undefined ? undefined : body, headers: { authorization: REST_AUTH } };
  }),
);

const rawAction: fc.Arbitrary<Action> = fc.record({
  node: fc.nat(1),
  line: fc.oneof(fc.constantFrom('GET /patroni HTTP/1.1', 'POST /config HTTP/1.0', 'GET / HTTP/9.9', 'GET  HTTP/1.1', '\u0000\u0001', 'PATCH /config HTTP/1.1'), oddString()),
  headers: fc.array(fc.oneof(fc.constantFrom('Content-Length: -5', 'Content-Length: 99999999999999999999', 'Transfer-Encoding: chunked, identity', 'Content-Length: 3\r\nContent-Length: 4', 'Host:', ': x', 'X: \u0080\u00ff'), oddString().map((s) => s.replace(/[\r\n]/g, ''))), { maxLength: 4 }),
  body: fc.option(oddString(), { nil: undefined }),
}).map(({ node, line, headers, body }) => ({ kind: 'raw' as const, node, bytes: `${line.replace(/[\r\n]/g, ' ')}\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body ?? ''}` }));

/** A value as random as the DCS could hold: bytes, odd text, JSON, objects of the key's fields. */
const dcsValue = (fields: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('latin1')),
    oddString(),
    anyValue().map((v) => JSON.stringify(v) ?? 'null'),
    fc.dictionary(fc.constantFrom(...fields), anyValue(), { maxKeys: fields.length }).map((o) => JSON.stringify(o)),
  );
/** A /config whose timings are all unusable (wrong types, absurd values) beside random other keys. */
const badTiming = fc.oneof(oddString(), fc.constantFrom(true, null, 9_000_000_001, 1e300, '10 years', [], {}), fc.array(anyValue(), { maxLength: 2 }));
const garbageConfig = fc
  .tuple(fc.record({ ttl: badTiming, loop_wait: badTiming, retry_timeout: badTiming }), fc.dictionary(fc.constantFrom('postgresql', 'maximum_lag_on_failover', 'check_timeline', 'x', 'slots'), anyValue(), { maxKeys: 3 }))
  .map(([t, rest]) => JSON.stringify({ ...rest, ...t }));
const dcsAction: fc.Arbitrary<Action> = fc.oneof(
  garbageConfig.map((value) => ({ kind: 'dcs' as const, key: 'config', value })).filter((a) => keepsTimings(a.value)),
  fc.tuple(fc.string({ minLength: 1, maxLength: 10 }).filter((n) => !/^node[01]$/.test(n)), dcsValue(['conn_url', 'api_url', 'role', 'state', 'xlog_location', 'timeline', 'tags', 'replication_state']))
    .map(([name, value]) => ({ kind: 'dcs' as const, key: `members/${name}`, value })),
  fc.tuple(fc.constantFrom('config', 'sync', 'status', 'history', 'failover', 'failsafe', 'optime/leader'), dcsValue(['ttl', 'loop_wait', 'leader', 'sync_standby', 'quorum', 'optime', 'slots', 'member', 'scheduled_at', 'node0']))
    .map(([key, value]) => ({ kind: 'dcs' as const, key, value }))
    // A /config that changes the timings is an operation (a ttl of 5 s on a loaded machine may
    // legitimately cost the lock): garbage is a /config that is not an object, or one whose
    // timings are unusable or absent, so that the agent keeps the timings in force.
    .filter((a) => a.key !== 'config' || keepsTimings(a.value))
    .filter((a) => a.key !== 'failover' || !namesMember(a.value)),
);

/** The timings the agents run with stay the same when this text is written into /config. */
function keepsTimings(text: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return true;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return true;
  const last = effectiveDynamicConfig({ ...FAST_TIMING }).config;
  const next = effectiveDynamicConfig(v as Record<string, unknown>, last).config;
  return next.ttl === last.ttl && next.loop_wait === last.loop_wait && next.retry_timeout === last.retry_timeout;
}

function namesMember(value: string): boolean {
  const f = decodeFailover(value, '1');
  return /^node[01]$/.test(f.leader ?? '') || /^node[01]$/.test(f.member ?? '');
}

/** Send raw bytes, read until the server closes (or 3 s); the reply text. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = new Socket();
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const t = setTimeout(done, 3000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', done);
    s.on('close', done);
    s.connect(port, '127.0.0.1', () => s.write(Buffer.from(bytes, 'latin1')));
  });
}

describe('end-to-end fuzzing of a running cluster', { timeout: 300_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let primary: string;
  let replica: string;
  let etcd: string;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'vigil-fuzz-'));
    cluster = new LocalCluster({ baseDir: base, nodes: 2, timing: FAST_TIMING });
    await cluster.prepare();
    for (const n of cluster.nodes) {
      const text = readFileSync(n.configFile, 'utf8').replace(/^restapi:\n/m, `restapi:\n  authentication: {username: admin, password: ${JSON.stringify(SECRET)}}\n`);
      writeFileSync(n.configFile, text, { mode: 0o600 });
    }
    await cluster.startAll();
    primary = await waitFor('a primary and a streaming replica', () => healthy(cluster), 120_000);
    replica = cluster.nodes.map((n) => n.name).find((n) => n !== primary)!;
    etcd = `http://${cluster.etcdEndpoint.replace(/^https?:\/\//, '')}`;
  });

  after(async () => {
    await stopCluster(cluster, base);
  });

  const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
  async function put(key: string, value: string): Promise<void> {
    const res = await fetch(`${etcd}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(PREFIX + key), value: b64(value) }) });
    assert.equal(res.status, 200, `etcd refused the write of ${key}: ${res.status} ${await res.text()}`);
  }
  async function get(key: string): Promise<string | undefined> {
    const res = await fetch(`${etcd}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(PREFIX + key) }) });
    const j = (await res.json()) as { kvs?: { value?: string }[] };
    const v = j.kvs?.[0]?.value;
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('latin1');
  }

  test('random REST requests and DCS contents: health checks answer, no crash, no role change, no secret shown', async () => {
    const rounds = runs(300);
    const actions = fc.sample(fc.oneof({ weight: 3, arbitrary: httpAction }, { weight: 1, arbitrary: rawAction }, { weight: 2, arbitrary: dcsAction }), { numRuns: rounds, seed: SEED });
    const names = [primary, replica];
    const originalConfig = await get('config');
    const replies: string[] = [];
    const latencies: number[] = [];
    const counts: Record<string, number> = { http: 0, raw: 0, dcs: 0 };
    const check = async (name: string, p: string): Promise<void> => {
      const t0 = performance.now();
      const res = await cluster.api(name, p, 10_000);
      latencies.push(performance.now() - t0);
      assert.equal(res?.status, 200, `GET ${p} on ${name} answered ${res?.status ?? 'nothing'}\n${agentLog(cluster, name)}`);
    };
    for (const [i, a] of actions.entries()) {
      counts[a.kind]!++;
      if (a.kind === 'http') {
        const n = cluster.node(names[a.node]!);
        try {
          const res = await fetch(`http://127.0.0.1:${n.apiPort}${a.path}`, {
            method: a.method,
            headers: a.headers,
            ...(a.body !== undefined ? { body: a.body } : {}),
            signal: AbortSignal.timeout(15_000),
          });
          replies.push(`${a.method} ${a.path} ${res.status} ${[...res.headers].join(' ')} ${await res.text()}`);
        } catch (err) {
          // fetch refuses some methods and header values itself; the server refusing is fine too.
          replies.push(`${a.method} ${a.path} ${String(err)}`);
        }
      } else if (a.kind === 'raw') {
        replies.push(await raw(cluster.node(names[a.node]!).apiPort, a.bytes));
      } else {
        await put(a.key, a.value);
      }
      if (i % 4 === 3) {
        await check(primary, '/health');
        await check(replica, '/health');
        await check(primary, '/primary');
      }
      // Put /config back now and then, so that later cases meet a usable one too.
      if (a.kind === 'dcs' && a.key === 'config' && i % 3 === 0 && originalConfig !== undefined) await put('config', originalConfig);
    }
    if (originalConfig !== undefined) await put('config', originalConfig);
    // A few loops later: still the same roles, both agents alive.
    await new Promise((r) => setTimeout(r, 3 * FAST_TIMING.loop_wait * 1000));
    await check(primary, '/primary');
    await check(replica, '/replica');
    for (const n of cluster.nodes) assert.ok(processRuns(n.process?.pid), `the agent of ${n.name} exited\n${agentLog(cluster, n.name)}`);
    const status = await cluster.api(primary, '/patroni');
    assert.equal(status?.body?.role, 'primary', `the primary's role is now ${String(status?.body?.role)}\n${agentLog(cluster, primary)}`);
    for (const s of SECRETS) {
      const reply = replies.find((r) => r.includes(s));
      assert.equal(reply, undefined, `a reply shows a secret: ${reply?.slice(0, 300)}`);
      for (const n of cluster.nodes) {
        assert.ok(!readFileSync(n.logFile, 'utf8').includes(s), `the agent log of ${n.name} shows a secret`);
        // The process title and arguments (ps) too.
        assert.ok(!readFileSync(`/proc/${n.process!.pid!}/cmdline`, 'utf8').includes(s), `the command line of ${n.name}'s agent shows a secret`);
      }
    }
    latencies.sort((x, y) => x - y);
    const q = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
    console.log(`# fuzz agent end-to-end: ${actions.length} generated cases run (${counts.http} REST, ${counts.raw} raw HTTP, ${counts.dcs} DCS writes; seed ${SEED}); ` +
      `${latencies.length} health checks, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`);
  });
});
