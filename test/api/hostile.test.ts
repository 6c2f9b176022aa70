// Slow and hostile clients cannot keep HAProxy-style health checks from being answered: while
// slowloris clients trickle headers, others send endless headers or endless bodies, and 1,000
// connections sit idle, every check (a fresh connection, `GET /primary HTTP/1.0` or
// `OPTIONS /replica HTTP/1.0`, as HAProxy's `option httpchk` sends) gets its answer. The server
// runs with its defaults (headersTimeout 5 s, requestTimeout 10 s, 64 KiB bodies). Latencies are
// printed, not asserted (the figures to compare are bench/rest.ts's). Also: keep-alive.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { primarySnapshot, rawExchange } from './fixtures.ts';

let server: ApiServer;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  server = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()) });
});

after(async () => {
  await server.close();
});

/** A connection that stays open until the server or `stop` closes it; counts as open until then. */
function connect(port: number, onOpen: (s: Socket) => void): { socket: Socket; closed: Promise<void> } {
  const socket = new Socket();
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.connect(port, '127.0.0.1', () => onOpen(socket));
  return { socket, closed };
}

interface Attack {
  /** Connections of this kind currently open. */
  open: () => number;
  /** Connections the server closed so far. */
  closedByServer: () => number;
  stop: () => void;
}

/** Keeps `n` connections of one kind open: each one closed is replaced at once. */
function attack(port: number, n: number, behave: (s: Socket, stopped: () => boolean) => void): Attack {
  let stopped = false;
  const live = new Set<Socket>();
  let closedByServer = 0;
  const one = (): void => {
    if (stopped) return;
    const { socket, closed } = connect(port, (s) => behave(s, () => stopped || s.destroyed));
    live.add(socket);
    void closed.then(() => {
      live.delete(socket);
      if (!stopped) {
        closedByServer++;
        one();
      }
    });
  };
  for (let i = 0; i < n; i++) one();
  return {
    open: () => live.size,
    closedByServer: () => closedByServer,
    stop: () => {
      stopped = true;
      for (const s of live) s.destroy();
    },
  };
}

async function check(port: number, request: string, status: string): Promise<number> {
  const t0 = performance.now();
  const raw = await rawExchange(port, request);
  const ms = performance.now() - t0;
  assert.ok(new RegExp(`^HTTP/1\\.[01] ${status} `).test(raw), `${JSON.stringify(request)} answered ${JSON.stringify(raw.slice(0, 60))}`);
  return ms;
}

test('HAProxy-style checks are answered while slowloris, huge-header, endless-body and 1,000 idle clients are connected', async () => {
  const port = server.port;
  const attacks: Record<string, Attack> = {
    // Headers one byte every 100 ms, never finished.
    slowloris: attack(port, 50, (s, stopped) => {
      const text = 'GET /patroni HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(10_000);
      let i = 0;
      const tick = (): void => {
        if (stopped()) return;
        s.write(text[i++ % text.length]!);
        setTimeout(tick, 100);
      };
      tick();
    }),
    // Header lines without end, as fast as the server takes them.
    hugeHeaders: attack(port, 20, (s, stopped) => {
      s.write('GET /patroni HTTP/1.1\r\nHost: x\r\n');
      const line = `X-Big: ${'b'.repeat(8_000)}\r\n`;
      const pump = (): void => {
        while (!stopped() && s.write(line));
        if (!stopped()) s.once('drain', pump);
      };
      pump();
    }),
    // A chunked body that never ends, fast.
    endlessBody: attack(port, 10, (s, stopped) => {
      s.write('POST /reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = `2000\r\n${'c'.repeat(0x2000)}\r\n`;
      const pump = (): void => {
        while (!stopped() && s.write(chunk));
        if (!stopped()) s.once('drain', pump);
      };
      pump();
    }),
    // A body announced as 10 MB, sent one byte every 50 ms.
    slowBody: attack(port, 20, (s, stopped) => {
      s.write('POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n');
      const tick = (): void => {
        if (stopped()) return;
        s.write('d');
        setTimeout(tick, 50);
      };
      tick();
    }),
    // Connected, silent.
    idle: attack(port, 1000, () => undefined),
  };
  try {
    // Let every attacker connect and get going.
    for (let i = 0; i < 200 && attacks.idle!.open() + attacks.slowloris!.open() < 1050; i++) await sleep(10);
    await sleep(500);
    const lat: number[] = [];
    for (let i = 0; i < 100; i++) {
      lat.push(await check(port, 'GET /primary HTTP/1.0\r\n\r\n', '200'));
      lat.push(await check(port, 'OPTIONS /replica HTTP/1.0\r\n\r\n', '503'));
      lat.push(await check(port, 'GET /health HTTP/1.0\r\n\r\n', '200'));
    }
    // The checks ran while the hostile clients were there (the slow ones outlive the checks).
    assert.ok(attacks.slowloris!.open() > 0 && attacks.slowBody!.open() > 0, 'the slow clients were gone before the checks ended');
    assert.ok(attacks.idle!.open() + attacks.idle!.closedByServer() >= 1000);
    lat.sort((a, b) => a - b);
    const q = (p: number): string => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);
    const counts = Object.entries(attacks).map(([k, a]) => `${k} ${a.open()} open/${a.closedByServer()} closed by the server`).join(', ');
    console.log(`# ${lat.length} checks under attack: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms (${counts})`);
  } finally {
    for (const a of Object.values(attacks)) a.stop();
  }
  // And the server is still fine afterwards.
  await check(port, 'GET /primary HTTP/1.0\r\n\r\n', '200');
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
