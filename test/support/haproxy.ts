// A real HAProxy (/usr/sbin/haproxy) in front of a local cluster, on loopback: a `primary` listener
// whose servers are checked with GET /primary and a `replicas` listener checked with GET /replica,
// each server's check going to its REST port (the layout of examples/haproxy.cfg), plus a stats
// socket to read HAProxy's view of every server. Used by the HAProxy integration test and the
// switchover benchmark.
//
// Failure modes: start() throws (with HAProxy's output) when the binary is missing, the config is
// refused or the process exits at once; stop() is idempotent and SIGKILLs after a grace period.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';

import { freePort } from '../../src/local/etcd.ts';

export const HAPROXY_BIN = '/usr/sbin/haproxy';

/** Health-check timing of every server line (HAProxy's `default-server` keywords). */
export interface HaproxyChecks {
  /** Label for reports. */
  label: string;
  /** Interval while the server is stable (UP, or DOWN without downinter). HAProxy time syntax. */
  inter: string;
  /** Interval while a server is in transition (UP going down, DOWN going up). */
  fastinter?: string;
  /** Interval while a server is DOWN (a replica in the primary listener). */
  downinter?: string;
  rise: number;
  fall: number;
  /** `timeout connect` (also caps the pause before a retry to a server that refused). Default 1s. */
  timeoutConnect?: string;
  /** `retries`. Default 2. */
  retries?: number;
  /** `option redispatch 1`: every retry may go to another UP server. Default false. */
  redispatch?: boolean;
}

/**
 * The low-latency setup docs/haproxy.md recommends (and examples/haproxy.cfg uses): a DOWN server
 * (the switchover candidate) is polled every 100 ms, a failing primary is confirmed by a second check
 * 100 ms after the first, and a connection refused by a node that is stopping is retried after
 * 100 ms (timeout connect) on whichever server is UP by then (redispatch).
 */
export const LOW_LATENCY_CHECKS: HaproxyChecks = {
  label: 'low-latency',
  inter: '500ms',
  fastinter: '100ms',
  downinter: '100ms',
  rise: 1,
  fall: 2,
  timeoutConnect: '100ms',
  retries: 2,
  redispatch: true,
};

/** Patroni's documented template (`inter 3s fall 3 rise 2`) with 1 s checks. */
export const CLASSIC_CHECKS: HaproxyChecks = { label: 'classic 1s', inter: '1s', rise: 2, fall: 3 };

export interface HaproxyBackend {
  name: string;
  /** Address of its PostgreSQL and REST API; default the listener host (127.0.0.1). */
  host?: string;
  pgPort: number;
  apiPort: number;
}

export interface HaproxyConfigOptions {
  host?: string;
  primaryPort: number;
  replicaPort: number;
  statsSocket: string;
  backends: readonly HaproxyBackend[];
  checks?: HaproxyChecks;
}

/** The generated configuration (same structure as examples/haproxy.cfg, loopback ports). */
export function renderHaproxyConfig(o: HaproxyConfigOptions): string {
  const host = o.host ?? '127.0.0.1';
  const c = o.checks ?? LOW_LATENCY_CHECKS;
  const timing = [
    `inter ${c.inter}`,
    c.fastinter !== undefined ? `fastinter ${c.fastinter}` : '',
    c.downinter !== undefined ? `downinter ${c.downinter}` : '',
    `rise ${c.rise}`,
    `fall ${c.fall}`,
  ].filter((s) => s !== '');
  const servers = o.backends.map((b) => `  server ${b.name} ${b.host ?? host}:${b.pgPort} check port ${b.apiPort}`);
  const listener = (name: string, port: number, check: string): string[] => [
    `listen ${name}`,
    `  bind ${host}:${port}`,
    `  option httpchk ${check}`,
    '  http-check expect status 200',
    `  default-server ${timing.join(' ')} on-marked-down shutdown-sessions`,
    ...servers,
  ];
  return [
    `# Generated for a local cluster; checks: ${c.label}. See examples/haproxy.cfg and docs/haproxy.md.`,
    'global',
    '  maxconn 200',
    `  stats socket ${o.statsSocket} mode 600 level admin`,
    'defaults',
    '  mode tcp',
    `  retries ${c.retries ?? 2}`,
    ...(c.redispatch === true ? ['  option redispatch 1'] : []),
    `  timeout connect ${c.timeoutConnect ?? '1s'}`,
    '  timeout client 30m',
    '  timeout server 30m',
    '  timeout check 1s',
    ...listener('primary', o.primaryPort, 'GET /primary'),
    ...listener('replicas', o.replicaPort, 'GET /replica'),
    '',
  ].join('\n');
}

/** Why HAProxy cannot run here, or undefined. */
export function haproxyUnavailableReason(): string | undefined {
  return existsSync(HAPROXY_BIN) ? undefined : `${HAPROXY_BIN} is not installed`;
}

/** The HAProxy backends of a LocalCluster (or anything with the same node fields). */
export function backendsOf(cluster: { nodes: readonly HaproxyBackend[] }): HaproxyBackend[] {
  return cluster.nodes.map((n) => ({ name: n.name, pgPort: n.pgPort, apiPort: n.apiPort, ...(n.host !== undefined ? { host: n.host } : {}) }));
}

export class Haproxy {
  private output = '';

  private constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly primaryPort: number,
    readonly replicaPort: number,
    readonly statsSocket: string,
    readonly checks: HaproxyChecks,
    private readonly proc: ChildProcess,
  ) {
    proc.stdout?.on('data', (b: Buffer) => this.append(b));
    proc.stderr?.on('data', (b: Buffer) => this.append(b));
  }

  /** HAProxy's own output so far (warnings, alerts, server state changes). */
  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private append(b: Buffer): void {
    this.output += b.toString();
    if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
  }

  /**
   * Writes <dir>/haproxy.cfg and starts HAProxy in the foreground; resolves once its stats socket
   * answers and every server has been checked at least once (none is still in its initial state).
   */
  static async start(o: { dir: string; backends: readonly HaproxyBackend[]; checks?: HaproxyChecks; timeoutMs?: number }): Promise<Haproxy> {
    const why = haproxyUnavailableReason();
    if (why !== undefined) throw new Error(why);
    await mkdir(o.dir, { recursive: true });
    const primaryPort = await freePort();
    const replicaPort = await freePort();
    const statsSocket = join(o.dir, 'haproxy.sock');
    const configFile = join(o.dir, 'haproxy.cfg');
    const checks = o.checks ?? LOW_LATENCY_CHECKS;
    await writeFile(configFile, renderHaproxyConfig({ primaryPort, replicaPort, statsSocket, backends: o.backends, checks }));
    const proc = spawn(HAPROXY_BIN, ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const h = new Haproxy(o.dir, configFile, primaryPort, replicaPort, statsSocket, checks, proc);
    const deadline = Date.now() + (o.timeoutMs ?? 15_000);
    let lastErr: unknown;
    while (Date.now() < deadline) {
      if (!h.running) throw new Error(`haproxy exited (code ${String(proc.exitCode)}): ${h.log}`);
      try {
        const states = await h.serverStates();
        const all = [...states.values()];
        if (all.length === 2 * o.backends.length && all.every((s) => s === 'UP' || s === 'DOWN')) return h;
      } catch (err) {
        lastErr = err; // socket not there yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await h.stop();
    throw new Error(`haproxy did not check its servers in time (${String(lastErr ?? 'states incomplete')}): ${h.log}`);
  }

  /** `show stat` through the stats socket: {"listener/server": status}, e.g. "primary/node0" -> "UP". */
  serverStates(): Promise<Map<string, string>> {
    return new Promise((resolve, reject) => {
      const sock = new Socket();
      const chunks: Buffer[] = [];
      sock.setTimeout(2000, () => sock.destroy(new Error('stats socket timed out')));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', reject);
      sock.on('close', () => {
        const lines = Buffer.concat(chunks).toString().split('\n');
        const header = (lines[0] ?? '').replace(/^# /, '').split(',');
        const px = header.indexOf('pxname');
        const sv = header.indexOf('svname');
        const st = header.indexOf('status');
        const out = new Map<string, string>();
        if (px < 0 || sv < 0 || st < 0) {
          reject(new Error(`unexpected 'show stat' output: ${lines[0] ?? ''}`));
          return;
        }
        for (const line of lines.slice(1)) {
          const f = line.split(',');
          if (f.length <= st || f[sv] === 'FRONTEND' || f[sv] === 'BACKEND') continue;
          // "UP 1/2" (going down) and "DOWN 1/2" (going up) are transitions; keep the word only.
          out.set(`${f[px]}/${f[sv]}`, (f[st] ?? '').split(' ')[0] ?? '');
        }
        resolve(out);
      });
      sock.connect(this.statsSocket, () => sock.end('show stat\n'));
    });
  }

  /** Names of the servers HAProxy has UP in a listener ('primary' or 'replicas'). */
  async upServers(listener: 'primary' | 'replicas'): Promise<string[]> {
    const out: string[] = [];
    for (const [k, v] of await this.serverStates()) if (k.startsWith(`${listener}/`) && v === 'UP') out.push(k.slice(listener.length + 1));
    return out.sort();
  }

  /** SIGTERM, SIGKILL after 5 s; resolves once the process has exited. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
