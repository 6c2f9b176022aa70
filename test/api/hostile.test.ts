// Slow and hostile clients cannot keep HAProxy-style health checks from being answered: while
// slowloris clients trickle headers, others send endless headers or endless bodies, and 1,000
// connections sit idle, every check (a fresh connection, `GET /primary HTTP/1.0` or
// `OPTIONS /replica HTTP/1.0`, as HAProxy's `option httpchk` sends) gets its answer. The server
// runs with its defaults (headersTimeout 5 s, requestTimeout 10 s, 64 KiB bodies); the clients run
// in a process of their own (hostile-clients.ts). Each abuse runs alone, then all together; every
// check during the abuse must get its right answer, and the latencies are printed, not asserted
// (no timed assertions; the figures to compare are bench/rest.ts's). Also: keep-alive.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { primarySnapshot, rawExchange } from './fixtures.ts';

const here = dirname(fileURLToPath(import.meta.url));
let server: ApiServer;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  server = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()) });
});

after(async () => {
  await server.close();
});

async function check(port: number, request: string, status: string): Promise<number> {
  const t0 = performance.now();
  const raw = await rawExchange(port, request);
  const ms = performance.now() - t0;
  assert.ok(new RegExp(`^HTTP/1\\.[01] ${status} `).test(raw), `${JSON.stringify(request)} answered ${JSON.stringify(raw.slice(0, 60))}`);
  return ms;
}

type Counts = Record<string, { open: number; closed: number }>;

/** How many connections of each kind hostile-clients.ts keeps open. */
const SIZES: Record<string, number> = { slowloris: 50, hugeHeaders: 20, endlessBody: 10, slowBody: 20, idle: 1000 };

/**
 * Runs the hostile clients of `kinds` (all when undefined) and, once they are all connected, 100
 * rounds of HAProxy-style checks: each must get its answer while the abuse runs. The latencies
 * are printed (p50, p99, max), not asserted: the rule is no timed assertions.
 */
async function checksUnderAttack(label: string, kinds: string[] | undefined): Promise<void> {
  const port = server.port;
  const args = [...['--import', 'tsx', join(here, 'hostile-clients.ts'), String(port)], ...(kinds !== undefined ? [kinds.join(',')] : [])];
  const clients = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let counts: Counts = {};
  createInterface({ input: clients.stdout! }).on('line', (l) => (counts = JSON.parse(l) as Counts));
  const open = (k: string): number => counts[k]?.open ?? 0;
  const wanted = kinds ?? Object.keys(SIZES);
  try {
    // Every attacker connected and going (the fast ones are replaced as the server closes them).
    const going = (): boolean => wanted.every((k) => (k === 'idle' ? open(k) >= SIZES[k]! : open(k) > 0));
    for (let i = 0; i < 1000 && !going(); i++) await sleep(20);
    assert.ok(going(), `the hostile clients did not all connect: ${JSON.stringify(counts)}`);
    await sleep(500);
    const lat: number[] = [];
    for (let i = 0; i < 100; i++) {
      lat.push(await check(port, 'GET /primary HTTP/1.0\r\n\r\n', '200'));
      lat.push(await check(port, 'OPTIONS /replica HTTP/1.0\r\n\r\n', '503'));
      lat.push(await check(port, 'GET /health HTTP/1.0\r\n\r\n', '200'));
    }
    await sleep(200); // a fresh report
    // The checks ran while the hostile clients were there (the slow ones outlive the checks).
    for (const k of wanted.filter((x) => x === 'slowloris' || x === 'slowBody' || x === 'idle')) {
      assert.ok(open(k) > 0, `the ${k} clients were gone before the checks ended: ${JSON.stringify(counts)}`);
    }
    lat.sort((a, b) => a - b);
    const q = (p: number): string => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);
    const seen = Object.entries(counts).map(([k, c]) => `${k} ${c.open} open/${c.closed} closed by the server`).join(', ');
    console.log(`# ${label}: ${lat.length} health checks answered under attack: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms (${seen})`);
  } finally {
    clients.stdin!.end();
    await new Promise((r) => clients.once('exit', r));
  }
  // And the server is still fine afterwards.
  await check(port, 'GET /primary HTTP/1.0\r\n\r\n', '200');
}

test('slowloris (50 clients trickling headers): every health check is answered; latencies printed', async () => {
  await checksUnderAttack('slowloris', ['slowloris']);
});

test('1,000 idle connections: every health check is answered; latencies printed', async () => {
  await checksUnderAttack('idle connections', ['idle']);
});

test('huge headers (20 clients sending endless header lines): every health check is answered; latencies printed', async () => {
  await checksUnderAttack('huge headers', ['hugeHeaders']);
});

test('endless and slow bodies: every health check is answered; latencies printed', async () => {
  await checksUnderAttack('endless and slow bodies', ['endlessBody', 'slowBody']);
});

test('HAProxy-style checks are answered while slowloris, huge-header, endless-body and 1,000 idle clients are connected', async () => {
  await checksUnderAttack('all at once', undefined);
});

test('keep-alive: an HTTP/1.1 client gets several replies on one connection; Connection: close and HTTP/1.0 close it', async () => {
  const port = server.port;
  const replies = await new Promise<string>((resolve, reject) => {
    const s = new Socket();
    let got = '';
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if ((got.match(/HTTP\/1\.1 \d{3} /g) ?? []).length === 3) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('close', () => resolve(got));
    s.connect(port, '127.0.0.1', () => {
      s.write('GET /primary HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /replica HTTP/1.1\r\nHost: x\r\n\r\n');
    });
  });
  // (Bodies end without a newline: the next status line follows on the same line.)
  assert.deepEqual(replies.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 503']);
  assert.deepEqual(replies.match(/^Connection: .*$/gm)?.map((l) => l.trim()), ['Connection: keep-alive', 'Connection: keep-alive', 'Connection: keep-alive']);
  // rawExchange resolves only when the server closes the connection.
  const closing = await rawExchange(port, 'GET /primary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(closing, /^Connection: close\r$/m);
  const old = await rawExchange(port, 'GET /primary HTTP/1.0\r\n\r\n');
  assert.match(old, /^Connection: close\r$/m);
});
