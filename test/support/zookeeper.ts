// A real ZooKeeper 3.8 (Debian's `zookeeper` package, Java 17) for the tests: standalone, on a
// free loopback port (or a given address and port, optionally inside a network namespace: the
// fault suite), its own dataDir in a temp dir, no admin server, tickTime 500 ms (so session
// timeouts from 1 s to 10 s are accepted: min 2 ticks, max 20 ticks), a small JVM heap. Started
// and stopped by the tests. Plus a loopback TCP proxy that can cut a client off (a partition that
// delivers nothing until healed, as TCP retransmission would).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePort } from './etcd.ts';

/** zookeeper.jar's manifest names its dependencies, except two that Netty (the TLS port) needs. */
export const ZOOKEEPER_CLASSPATH = '/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar';

/** A TLS client port (secureClientPort, Netty), PEM files. */
export interface ZookeeperTls {
  /** The server's certificate followed by its unencrypted PKCS#8 key, in one PEM file. */
  keyStore: string;
  /** CA certificate(s) client certificates must chain to. */
  trustStore: string;
  /** need (default): clients must present a certificate; none: they need not. */
  clientAuth?: 'need' | 'none';
}

export interface ZookeeperServer {
  /** 127.0.0.1:<port> */
  readonly endpoint: string;
  /** 127.0.0.1:<port> of the TLS client port, when started with tls. */
  readonly secureEndpoint: string | undefined;
  /** Freeze the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaw it (SIGCONT). */
  resume(): void;
  /** Stop the server (SIGTERM) and start it again on the same ports; on the same data unless `wipe`. */
  restart(opts?: { wipe?: boolean }): Promise<void>;
  /** Stop the server (SIGTERM, SIGKILL after 5 s), keeping its data: restart() starts it again. */
  halt(): Promise<void>;
  /** Whether the server process is running (possibly paused). */
  running(): boolean;
  stop(): Promise<void>;
}

/** One ZooKeeper connect handshake; true when the server answered with a session. */
function handshake(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => sock.destroy(), 1000);
    let got = Buffer.alloc(0);
    sock.on('connect', () => {
      const b = Buffer.alloc(4 + 4 + 8 + 4 + 8 + 4 + 16 + 1);
      let o = b.writeInt32BE(b.length - 4, 0);
      o = b.writeInt32BE(0, o);
      o = b.writeBigInt64BE(0n, o);
      o = b.writeInt32BE(2000, o);
      o = b.writeBigInt64BE(0n, o);
      b.writeInt32BE(16, o);
      sock.write(b);
    });
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 4 + 16) {
        const timeout = got.readInt32BE(8);
        const session = got.readBigInt64BE(12);
        // Close the session we opened, so it does not linger for its timeout.
        const close = Buffer.alloc(12);
        close.writeInt32BE(8, 0);
        close.writeInt32BE(1, 4);
        close.writeInt32BE(-11, 8);
        sock.end(close);
        clearTimeout(timer);
        resolve(timeout > 0 && session !== 0n);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

export interface ZookeeperStartOptions {
  tls?: ZookeeperTls;
  /** Address the client port listens on (default 127.0.0.1); must be reachable from this process. */
  host?: string;
  /** Client port (default: a free loopback port). */
  port?: number;
  /** Run the JVM inside this network namespace (`ip netns exec`; needs root). */
  netns?: string;
  /** Parent of the server's directory (default the system temp dir). */
  baseDir?: string;
}

export async function startZookeeper(opts: ZookeeperStartOptions = {}): Promise<ZookeeperServer> {
  const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'vigil-zk-'));
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort());
  let securePort = opts.tls ? await freePort() : undefined;
  while (securePort === port) securePort = await freePort();
  const tlsLines = opts.tls && securePort !== undefined
    ? [
      `secureClientPort=${securePort}`,
      `secureClientPortAddress=${host}`,
      'serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory',
      `ssl.keyStore.location=${opts.tls.keyStore}`,
      'ssl.keyStore.type=PEM',
      `ssl.trustStore.location=${opts.tls.trustStore}`,
      'ssl.trustStore.type=PEM',
      `ssl.clientAuth=${opts.tls.clientAuth ?? 'need'}`,
    ]
    : [];
  const cfg = join(dir, 'zoo.cfg');
  await writeFile(cfg, [
    'tickTime=500',
    `dataDir=${join(dir, 'data')}`,
    `clientPort=${port}`,
    `clientPortAddress=${host}`,
    'admin.enableServer=false',
    'maxClientCnxns=0',
    '4lw.commands.whitelist=',
    ...tlsLines,
    '',
  ].join('\n'));
  let child: ChildProcess | undefined;
  let stderr = '';
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || (c.signalCode !== null && c.signalCode !== 'SIGSTOP' && c.signalCode !== 'SIGCONT')) return;
    c.kill('SIGCONT');
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const stop = async (): Promise<void> => {
    await kill();
    await rm(dir, { recursive: true, force: true });
  };
  /** Start the JVM on the same files and ports; resolve once it answers a session handshake. */
  const launch = async (): Promise<void> => {
    const prefix = opts.netns === undefined ? [] : ['netns', 'exec', opts.netns, 'java'];
    const c = spawn(opts.netns === undefined ? 'java' : 'ip', [
      ...prefix,
      '-Xmx128m', '-Xms32m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xss512k',
      '-Dzookeeper.jmx.log4j.disable=true',
      '-cp', ZOOKEEPER_CLASSPATH,
      'org.apache.zookeeper.server.ZooKeeperServerMain', cfg,
    ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    for (let i = 0; i < 300; i++) {
      if (c.exitCode !== null) break;
      if (await handshake(host, port)) return;
      await sleep(100);
    }
    await stop();
    throw new Error(`ZooKeeper did not start on port ${port}: ${stderr}`);
  };
  await launch();
  return {
    endpoint: `${host}:${port}`,
    secureEndpoint: securePort === undefined ? undefined : `127.0.0.1:${securePort}`,
    stop,
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async restart(o = {}) {
      await kill();
      if (o.wipe === true) await rm(join(dir, 'data'), { recursive: true, force: true });
      await launch();
    },
    halt: kill,
    running: () => child !== undefined && child.exitCode === null && (child.signalCode === null || child.signalCode === 'SIGSTOP' || child.signalCode === 'SIGCONT'),
  };
}

/** A loopback TCP proxy to `target` (host:port) that can be partitioned and healed. */
export interface CutProxy {
  readonly endpoint: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** From now on nothing passes either way (held back, not lost) until heal(). */
  cut(): void;
  /** Deliver what was held back (to connections still open on both sides) and pass again. */
  heal(): void;
  close(): Promise<void>;
}

export async function startCutProxy(target: string): Promise<CutProxy> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  let isCut = false;
  let connections = 0;
  const pairs = new Set<{ flush(): void; destroy(): void }>();
  const server = net.createServer((down) => {
    connections += 1;
    let up: net.Socket | undefined;
    let closed = false;
    const held: { toUp: Buffer[]; toDown: Buffer[] } = { toUp: [], toDown: [] };
    const destroy = (): void => {
      closed = true;
      down.destroy();
      up?.destroy();
      pairs.delete(pair);
    };
    const connectUp = (): void => {
      up = net.connect({ host, port });
      up.on('data', (c: Buffer) => (isCut ? held.toDown.push(c) : down.write(c)));
      up.on('error', () => undefined);
      up.on('close', () => {
        if (isCut) return; // a close is not seen across a partition; delivered by heal()
        destroy();
      });
      for (const c of held.toUp) up.write(c);
      held.toUp = [];
    };
    const pair = {
      flush(): void {
        if (closed) return;
        if (down.destroyed) return destroy();
        if (up === undefined) connectUp();
        else if (up.destroyed) return destroy();
        for (const c of held.toUp) up?.write(c);
        for (const c of held.toDown) down.write(c);
        held.toUp = [];
        held.toDown = [];
      },
      destroy,
    };
    pairs.add(pair);
    down.on('data', (c: Buffer) => (isCut || up === undefined ? held.toUp.push(c) : up.write(c)));
    down.on('error', () => undefined);
    down.on('close', () => {
      if (isCut) return;
      destroy();
    });
    if (!isCut) connectUp();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${addr.port}`,
    get connections() {
      return connections;
    },
    cut() {
      isCut = true;
    },
    heal() {
      isCut = false;
      for (const p of [...pairs]) p.flush();
    },
    async close() {
      for (const p of [...pairs]) p.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
