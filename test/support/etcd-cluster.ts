// Real etcd clusters for the tests of the etcd v2 backend and of etcd3 cluster awareness: one or more
// /usr/bin/etcd members on free loopback ports (plain http), data in a temp directory, each
// member's log in <dir>/<name>.log. With enableV2, the v2 API (/v2/keys) is served as well
// (--enable-v2). A process-exit hook SIGKILLs members left running.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from './etcd.ts';
import { allStopped } from '../../src/local/etcd.ts';

export interface EtcdMember {
  name: string;
  /** host:port of the client URL. */
  endpoint: string;
  /** host:port of the peer URL. */
  peerEndpoint: string;
  /** SIGTERM (SIGKILL after 5 s) and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: no leadership transfer, connections reset) and wait for exit. */
  crash(): Promise<void>;
  /** Start again on the same ports and data (after stop); resolves once its client port answers. */
  start(): Promise<void>;
  running(): boolean;
  /**
   * SIGSTOP: the process keeps its sockets but answers nothing. Resolves once every thread of it
   * is stopped: kill() returns before the group stop reaches all threads, and on a loaded machine
   * a thread still running can answer a request sent right after.
   */
  pause(): Promise<void>;
  /** SIGCONT. */
  resume(): void;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** host:port of every member's client URL. */
  endpoints: string[];
  dir: string;
  /** Stop every member and remove the data. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHook = false;

async function answers(url: string, body?: string): Promise<boolean> {
  try {
    const res = await fetch(url, { method: body === undefined ? 'GET' : 'POST', body, signal: AbortSignal.timeout(500) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

export async function startEtcdCluster(opts: { members?: number; enableV2?: boolean } = {}): Promise<EtcdCluster> {
  const n = opts.members ?? 1;
  const dir = await mkdtemp(join(tmpdir(), 'vigil-etcdc-'));
  const used = new Set<number>();
  const port = async (): Promise<number> => {
    let p = await freePort();
    while (used.has(p)) p = await freePort();
    used.add(p);
    return p;
  };
  const specs: { name: string; client: string; peer: string }[] = [];
  for (let i = 0; i < n; i++) {
    specs.push({ name: `m${i}`, client: `http://127.0.0.1:${await port()}`, peer: `http://127.0.0.1:${await port()}` });
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peer}`).join(',');
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }

  const members = specs.map((s): EtcdMember & { launch(): void; ready(): Promise<void> } => {
    let child: ChildProcess | undefined;
    const args = [
      `--name=${s.name}`,
      `--data-dir=${join(dir, s.name)}`,
      `--listen-client-urls=${s.client}`,
      `--advertise-client-urls=${s.client}`,
      `--listen-peer-urls=${s.peer}`,
      `--initial-advertise-peer-urls=${s.peer}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=vigil-test',
      '--logger=zap',
      `--log-outputs=${join(dir, `${s.name}.log`)}`,
      ...(opts.enableV2 === true ? ['--enable-v2'] : []),
    ];
    const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
    const m = {
      name: s.name,
      endpoint: s.client.slice('http://'.length),
      peerEndpoint: s.peer.slice('http://'.length),
      running,
      async pause(): Promise<void> {
        const pid = child?.pid;
        if (pid === undefined || !running()) return;
        child?.kill('SIGSTOP');
        for (let i = 0; i < 500; i++) {
          if (await allStopped(pid)) return;
          await new Promise((r) => setTimeout(r, 2));
        }
        throw new Error(`etcd ${s.name} (pid ${pid}) did not stop on SIGSTOP`);
      },
      resume(): void {
        child?.kill('SIGCONT');
      },
      launch(): void {
        const c = spawn('/usr/bin/etcd', args, { stdio: 'ignore' });
        child = c;
        live.add(c);
        c.once('exit', () => live.delete(c));
        c.once('error', () => undefined);
      },
      async ready(): Promise<void> {
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline) {
          if (!running()) throw new Error(`etcd ${s.name} exited during start-up; see ${join(dir, `${s.name}.log`)}`);
          if (await answers(`${s.client}/v3/kv/range`, JSON.stringify({ key: Buffer.from('/').toString('base64') }))) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`etcd ${s.name} did not answer on ${s.client} within 20 s; see ${join(dir, `${s.name}.log`)}`);
      },
      async stop(): Promise<void> {
        const c = child;
        if (c === undefined || !running()) return;
        c.kill('SIGCONT');
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
        await new Promise<void>((resolve) => c.once('exit', () => resolve()));
        clearTimeout(timer);
      },
      async crash(): Promise<void> {
        const c = child;
        if (c === undefined || !running()) return;
        c.kill('SIGKILL');
        await new Promise<void>((resolve) => c.once('exit', () => resolve()));
      },
      async start(): Promise<void> {
        if (running()) return;
        m.launch();
        await m.ready();
      },
    };
    return m;
  });
  // Every member at once: each waits for a quorum before it serves.
  for (const m of members) m.launch();
  try {
    await Promise.all(members.map((m) => m.ready()));
  } catch (err) {
    await Promise.all(members.map((m) => m.stop()));
    throw err;
  }
  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    dir,
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
