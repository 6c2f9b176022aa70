// Snapshots and small network helpers for the REST API tests.

import { createServer, Socket } from 'node:net';

import type { NodeSnapshot } from '../../src/api/snapshot.ts';
import { snapshot } from '../../src/api/testing.ts';
import { PATRONI_COMPAT_VERSION } from '../../src/api/version.ts';

/** A running primary holding the lock, as of `now` (ms, Date.now clock). */
export function primarySnapshot(now: number, name = 'pg1'): NodeSnapshot {
  return snapshot({
    patroni: { version: PATRONI_COMPAT_VERSION, scope: 'demo', name },
    postmasterStartTime: '2024-08-28 19:39:26.352526+00:00',
    serverVersion: 150004,
    xlog: { location: 67395656 },
    timeline: 3,
    leaderValidUntil: now + 3_600_000,
    dcsLastSeen: Math.floor(now / 1000),
    sysid: '7268616322854375442',
    lastReason: 'no action. I am the leader with the lock',
    takenAt: now,
    nextRunAt: now + 3_600_000,
  });
}

/** A streaming replica, as of `now`. */
export function replicaSnapshot(now: number, name = 'pg2'): NodeSnapshot {
  return {
    ...primarySnapshot(now, name),
    role: 'replica',
    xlog: { received_location: 67395700, replayed_location: 67395656, replayed_timestamp: null, paused: false },
    replicationState: 'streaming',
    isLeader: false,
    leaderValidUntil: undefined,
    tags: { failover_priority: 2, dc: 'east' },
    lastReason: 'no action. I am a secondary following pg1',
  };
}

/** A port that was free a moment ago (bind 0, read, close). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Send raw bytes to 127.0.0.1:port and collect everything until the server closes. */
export function rawExchange(port: number, request: string, opts: { endInput?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('raw exchange: server did not close the connection'));
    }, 10_000);
    const sock = new Socket();
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    sock.connect(port, '127.0.0.1', () => {
      if (opts.endInput) sock.end(request);
      else sock.write(request);
    });
  });
}
