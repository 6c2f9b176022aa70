// A real single-member etcd (/usr/bin/etcd) on free loopback ports, data in a directory, output to a
// log file there. Used by `vigil demo`, the tests and the benchmarks. Stop it with stop(); a
// process-exit hook SIGKILLs any instance left running. With `tls` the client URL is https (the
// peer URL stays plain http on loopback), optionally requiring client certificates.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, mkdir, readdir, readFile } from 'node:fs/promises';
import { request as httpRequest } from '../node-http.ts';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Client-side TLS of a test etcd: PEM files. */
export interface EtcdTlsFiles {
  /** Server certificate (its subjectAltName must name 127.0.0.1) and key. */
  certFile: string;
  keyFile: string;
  /** CA of the server certificate (checked at start-up); with clientCertAuth also --trusted-ca-file. */
  caFile: string;
  /**
   * --client-cert-auth --trusted-ca-file=caFile: refuse clients without a certificate signed by
   * caFile. (etcd 3.4 asks for client certificates whenever --trusted-ca-file is set.)
   */
  clientCertAuth?: boolean;
  /** A client certificate and key for the start-up check when clientCertAuth is on. */
  clientCertFile?: string;
  clientKeyFile?: string;
}

export interface EtcdServer {
  /** host:port of the client URL. */
  endpoint: string;
  /** http, or https when started with `tls`. */
  protocol: 'http' | 'https';
  clientPort: number;
  /** Directory holding data/ and etcd.log. */
  dir: string;
  /** SIGTERM (SIGKILL after 5 s), wait for exit, remove the temp dir if we created it. */
  stop(): Promise<void>;
  /** Send a signal (default SIGKILL) without waiting; restart() brings it back. */
  kill(signal?: NodeJS.Signals): void;
  /** Stop (if running) and start again on the same ports and data; resolves once it answers. */
  restart(): Promise<void>;
  /**
   * SIGSTOP: the process keeps its sockets but answers nothing. Resolves once every thread is
   * stopped: kill() returns before the group stop reaches them all, and on a loaded machine a
   * thread still running answers a request sent right after (seen in about 5% of tries).
   */
  pause(): Promise<void>;
  /** SIGCONT. */
  resume(): void;
}

const live = new Set<ChildProcess>();
let exitHook = false;

/** A port that was free a moment ago (bind port 0 on loopback, then release it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Every thread of `pid` is in state T (stopped), per /proc (Linux). */
export async function allStopped(pid: number): Promise<boolean> {
  try {
    for (const t of await readdir(`/proc/${pid}/task`)) {
      const stat = await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8');
      // "pid (comm) STATE ...": comm may hold spaces and parentheses; the state follows the last ')'.
      const at = stat.lastIndexOf(')') + 2;
      if (stat.slice(at, at + 1) !== 'T') return false;
    }
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** One request for the start-up check; resolves with the status, rejects on any failure or after 500 ms. */
function probe(url: string, tls: EtcdTlsFiles | undefined, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const options = {
      host: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      method: body === undefined ? 'GET' : 'POST',
      agent: false as const,
      timeout: 500,
      ...(tls
        ? {
            ca: readFileSync(tls.caFile),
            ...(tls.clientCertFile !== undefined ? { cert: readFileSync(tls.clientCertFile) } : {}),
            ...(tls.clientKeyFile !== undefined ? { key: readFileSync(tls.clientKeyFile) } : {}),
          }
        : {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export async function startEtcd(opts: { dir?: string; tls?: EtcdTlsFiles } = {}): Promise<EtcdServer> {
  const tls = opts.tls;
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'vigil-etcd-')));
  await mkdir(dir, { recursive: true });
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const client = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=vigil-test',
    `--data-dir=${join(dir, 'data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=vigil-test=${peer}`,
    '--initial-cluster-state=new',
    '--logger=zap',
    `--log-outputs=${join(dir, 'etcd.log')}`,
    ...(tls
      ? [
          `--cert-file=${tls.certFile}`,
          `--key-file=${tls.keyFile}`,
          ...(tls.clientCertAuth === true ? ['--client-cert-auth', `--trusted-ca-file=${tls.caFile}`] : []),
        ]
      : []),
  ];

  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }

  let child: ChildProcess | undefined;

  async function launch(): Promise<void> {
    const c = spawn('/usr/bin/etcd', args, { stdio: 'ignore' });
    child = c;
    live.add(c);
    c.once('exit', () => live.delete(c));
    let spawnError: Error | undefined;
    c.once('error', (err) => {
      spawnError = err;
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (spawnError) throw spawnError;
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`etcd exited (${c.exitCode ?? c.signalCode}) during start-up; see ${join(dir, 'etcd.log')}`);
      }
      try {
        if ((await probe(`${client}/version`, tls)) === 200) {
          // /version answers before the member has elected itself; wait for a working KV.
          const kv = await probe(`${client}/v3/kv/range`, tls, JSON.stringify({ key: Buffer.from('/').toString('base64') }));
          if (kv === 200) return;
        }
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill('SIGKILL');
    throw new Error(`etcd did not answer on ${client} within 15 s; see ${join(dir, 'etcd.log')}`);
  }

  async function halt(): Promise<void> {
    const c = child;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT');
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited(c);
      clearTimeout(timer);
    }
  }

  await launch();

  return {
    endpoint: `127.0.0.1:${clientPort}`,
    protocol: tls ? 'https' : 'http',
    clientPort,
    dir,
    async stop() {
      await halt();
      child = undefined;
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      child?.kill(signal);
    },
    async restart() {
      await halt();
      await launch();
    },
    async pause() {
      const pid = child?.pid;
      if (pid === undefined) return;
      child?.kill('SIGSTOP');
      for (let i = 0; i < 500 && !(await allStopped(pid)); i++) await new Promise((r) => setTimeout(r, 2));
    },
    resume() {
      child?.kill('SIGCONT');
    },
  };
}
