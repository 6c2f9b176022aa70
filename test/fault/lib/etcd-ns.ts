// etcd inside its own network namespace, listening on that namespace's address, so that faults can
// cut a node from etcd alone. stop()/start() are the "etcd down" fault; data survives restarts.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { Host } from './netns.ts';

export interface NsEtcd {
  endpoint: string;
  /** Starts etcd (no-op when running) and waits until its KV answers. */
  start(): Promise<void>;
  /** SIGTERM, SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
  running(): boolean;
}

export function nsEtcd(host: Host, dir: string, port = 2379): NsEtcd {
  const client = `http://${host.ip}:${port}`;
  const peer = `http://${host.ip}:${port + 1}`;
  let child: ChildProcess | undefined;
  const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;

  async function start(): Promise<void> {
    if (alive()) return;
    await mkdir(dir, { recursive: true });
    const c = spawn(
      'ip',
      [
        'netns', 'exec', host.ns, '/usr/bin/etcd',
        '--name=vigil-fault',
        `--data-dir=${join(dir, 'data')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=vigil-fault=${peer}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        `--log-outputs=${join(dir, 'etcd.log')}`,
      ],
      { stdio: 'ignore' },
    );
    c.on('error', () => undefined);
    child = c;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (!alive()) throw new Error(`etcd exited during start-up; see ${join(dir, 'etcd.log')}`);
      try {
        const kv = await fetch(`${client}/v3/kv/range`, {
          method: 'POST',
          body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
          signal: AbortSignal.timeout(500),
        });
        await kv.arrayBuffer();
        if (kv.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`etcd did not answer on ${client} within 20 s`);
  }

  async function stop(): Promise<void> {
    const c = child;
    if (c === undefined || !alive()) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGCONT');
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  return { endpoint: `${host.ip}:${port}`, start, stop, running: alive };
}
