// HAProxy's health checks against two real Vigil API servers (one primary snapshot, one replica):
// `option httpchk` (OPTIONS / HTTP/1.0) must mark only the primary UP, `GET /replica` only the
// replica. Checked through HAProxy's stats socket and by connecting through HAProxy to trivial TCP
// backends that say their name. Skipped when haproxy is not installed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startApiServer } from '../../src/api/server.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { freePort, primarySnapshot, replicaSnapshot } from './fixtures.ts';

const HAPROXY = '/usr/sbin/haproxy';
const skip = !existsSync(HAPROXY) && 'haproxy not installed';

let dir = '';
let apis: ApiServer[] = [];
let backends: Server[] = [];
let haproxy: ChildProcess | undefined;
let haproxyLog = '';
let primaryPort = 0;
let replicaPort = 0;
let statsSocket = '';

/** A TCP backend that writes its name and closes. */
async function nameServer(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0 };
}

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'vigil-haproxy-'));
  const api1 = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => primarySnapshot(Date.now()) });
  const api2 = await startApiServer({ listen: '127.0.0.1:0', getSnapshot: () => replicaSnapshot(Date.now()) });
  apis = [api1, api2];
  const b1 = await nameServer('n1');
  const b2 = await nameServer('n2');
  backends = [b1.server, b2.server];
  primaryPort = await freePort();
  replicaPort = await freePort();
  statsSocket = join(dir, 'stats.sock');
  const servers = (): string =>
    `  server n1 127.0.0.1:${b1.port} check port ${api1.port}\n` +
    `  server n2 127.0.0.1:${b2.port} check port ${api2.port}\n`;
  const cfg =
    'global\n' +
    `  stats socket ${statsSocket} mode 600 level admin\n` +
    'defaults\n' +
    '  mode tcp\n' +
    '  timeout connect 1s\n' +
    '  timeout client 5s\n' +
    '  timeout server 5s\n' +
    '  default-server inter 200ms fall 1 rise 1\n' +
    'listen primary\n' +
    `  bind 127.0.0.1:${primaryPort}\n` +
    '  option httpchk\n' +
    '  http-check expect status 200\n' +
    servers() +
    'listen replicas\n' +
    `  bind 127.0.0.1:${replicaPort}\n` +
    '  option httpchk GET /replica\n' +
    '  http-check expect status 200\n' +
    servers();
  await writeFile(join(dir, 'haproxy.cfg'), cfg);
  haproxy = spawn(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout?.on('data', (c: Buffer) => (haproxyLog += c.toString()));
  haproxy.stderr?.on('data', (c: Buffer) => (haproxyLog += c.toString()));
});

after(async () => {
  if (haproxy !== undefined && haproxy.exitCode === null) {
    const exited = new Promise<void>((resolve) => haproxy?.once('exit', () => resolve()));
    haproxy.kill('SIGTERM');
    await exited;
  }
  for (const a of apis) await a.close();
  for (const b of backends) await new Promise<void>((resolve) => b.close(() => resolve()));
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** `show stat` through the stats socket -> {"proxy/server": status}. */
function showStat(): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const sock = new Socket();
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const lines = Buffer.concat(chunks).toString().split('\n');
      const header = (lines[0] ?? '').replace(/^# /, '').split(',');
      const px = header.indexOf('pxname');
      const sv = header.indexOf('svname');
      const st = header.indexOf('status');
      const out = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const f = line.split(',');
        if (f.length > st && f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND') out.set(`${f[px]}/${f[sv]}`, f[st] ?? '');
      }
      resolve(out);
    });
    sock.connect(statsSocket, () => sock.end('show stat\n'));
  });
}

async function waitForStates(want: Record<string, string>, deadlineMs: number): Promise<Map<string, string>> {
  const until = Date.now() + deadlineMs;
  let last = new Map<string, string>();
  while (Date.now() < until) {
    if (haproxy?.exitCode !== null) throw new Error(`haproxy exited: ${haproxyLog}`);
    try {
      last = await showStat();
      if (Object.entries(want).every(([k, v]) => last.get(k) === v)) return last;
    } catch {
      // Socket not there yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`haproxy states ${JSON.stringify([...last])}, wanted ${JSON.stringify(want)}; log: ${haproxyLog}`);
}

function readThrough(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = new Socket();
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks).toString()));
    sock.connect(port, '127.0.0.1');
  });
}

test('haproxy: option httpchk marks only the primary UP, GET /replica only the replica', { skip, timeout: 15_000 }, async () => {
  await waitForStates({ 'primary/n1': 'UP', 'primary/n2': 'DOWN', 'replicas/n1': 'DOWN', 'replicas/n2': 'UP' }, 10_000);
  for (let i = 0; i < 4; i++) {
    assert.equal(await readThrough(primaryPort), 'n1');
    assert.equal(await readThrough(replicaPort), 'n2');
  }
});
