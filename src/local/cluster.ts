// A whole Vigil cluster on this machine: one etcd and N agents on loopback ports, each agent a
// child process running `vigil agent <file>` with its own Patroni-style YAML file, data directory
// and log file under one base directory. Used by `vigil demo`, the integration tests and the
// benchmarks, so all three exercise exactly what a user runs.
// The DCS is an etcd started here (or given by etcdEndpoint), written as an `etcd3` section; or,
// with `store`, any DCS section the caller provides (the caller runs that DCS, e.g. a test's fake
// Consul agent or Kubernetes API server) plus environment variables for the agents.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startEtcd, freePort, type EtcdServer } from './etcd.ts';
import { killGroup, pgOsUser } from '../postgres/exec.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
/** The `vigil` command as this module runs: built JavaScript (dist/, `npm run build` or the
 *  package) runs dist/cli/main.js with plain node; the TypeScript sources run through tsx. */
const VIGIL: string[] = import.meta.url.endsWith('.js')
  ? [process.execPath, join(HERE, '..', 'cli', 'main.js')]
  : [process.execPath, '--import', join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs'), join(ROOT, 'src', 'cli', 'main.ts')];

export interface Timing {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
}

export const PATRONI_DEFAULT_TIMING: Timing = { ttl: 30, loop_wait: 10, retry_timeout: 10 };
export const FAST_TIMING: Timing = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

export interface LocalClusterOptions {
  baseDir: string;
  scope?: string;
  nodes?: number;
  timing?: Timing;
  /** Extra dynamic configuration merged into bootstrap.dcs. */
  dcs?: Record<string, unknown>;
  /** Extra PostgreSQL parameters (all nodes). */
  parameters?: Record<string, string | number>;
  /** Per-node tags. */
  tags?: Record<string, Record<string, unknown>>;
  /** Use an existing etcd (host:port) instead of starting one. */
  etcdEndpoint?: string;
  /**
   * Run on this DCS instead of etcd: `section` (e.g. 'consul') with `settings` is written into every
   * node's file in place of the etcd3 section, and `env` is added to the agents' environment (e.g.
   * KUBERNETES_SERVICE_HOST/PORT). No etcd is started; the caller runs the DCS.
   */
  store?: DcsStore;
  logLevel?: string;
  /** Test-friendly PostgreSQL settings (fsync off, small buffers). Default true. */
  fast?: boolean;
  /**
   * Per-node IP address (index = node number) the agent's REST API and PostgreSQL listen on and
   * advertise. Default 127.0.0.1 for every node. Addresses other than loopback need pgHba lines.
   */
  hosts?: string[];
  /** Extra pg_hba.conf lines (postgresql.pg_hba), e.g. to let replicas connect from other addresses. */
  pgHba?: string[];
  /**
   * Command prefix to run a node's agent (and so its PostgreSQL) under, e.g.
   * {command: 'ip', args: ['netns', 'exec', 'vigil-n0']}. The prefix must exec the agent in place
   * (same pid), so signals sent to the child reach the agent. Default: run it directly.
   */
  wrap?: (node: { name: string; index: number }) => { command: string; args: string[] };
  /** argv that runs `vigil` (the agent gets `agent <yaml>` appended), e.g. [node, 'dist/cli/main.js']
   *  for the built package. Default: the way this module itself runs (see VIGIL). */
  vigil?: string[];
}

export interface DcsStore {
  section: string;
  settings: Record<string, unknown>;
  env?: Record<string, string>;
}

export interface LocalNode {
  name: string;
  /** Address its REST API and PostgreSQL listen on (127.0.0.1 unless LocalClusterOptions.hosts). */
  host: string;
  dir: string;
  configFile: string;
  pgPort: number;
  apiPort: number;
  dataDir: string;
  logFile: string;
  process: ChildProcess | undefined;
}

export const SUPERUSER = { username: 'postgres', password: 'vigil-superuser' };
export const REPLICATION = { username: 'replicator', password: 'vigil-replication' };

function yamlString(s: string): string {
  return JSON.stringify(s);
}

export function renderNodeConfig(o: {
  scope: string;
  name: string;
  etcd: string;
  /** A DCS section written instead of `etcd3: {hosts: [etcd]}`. */
  store?: Pick<DcsStore, 'section' | 'settings'> | undefined;
  apiPort: number;
  pgPort: number;
  dir: string;
  timing: Timing;
  dcs: Record<string, unknown>;
  parameters: Record<string, string | number>;
  tags: Record<string, unknown>;
  logLevel: string;
  /** Listen/connect address; default 127.0.0.1. */
  host?: string;
  pgHba?: string[];
}): string {
  const host = o.host ?? '127.0.0.1';
  const params = { unix_socket_directories: o.dir, ...o.parameters };
  const lines = [
    `# Generated by vigil for a local cluster. Patroni's YAML format: patronictl -c ${o.dir}/vigil.yml list`,
    `scope: ${yamlString(o.scope)}`,
    `namespace: /service/`,
    `name: ${yamlString(o.name)}`,
    `log:`,
    `  level: ${o.logLevel.toUpperCase()}`,
    `restapi:`,
    `  listen: ${host}:${o.apiPort}`,
    `  connect_address: ${host}:${o.apiPort}`,
    ...(o.store === undefined ? [`etcd3:`, `  hosts: [${yamlString(o.etcd)}]`] : [`${o.store.section}: ${JSON.stringify(o.store.settings)}`]),
    `bootstrap:`,
    `  dcs: ${JSON.stringify({
      ttl: o.timing.ttl,
      loop_wait: o.timing.loop_wait,
      retry_timeout: o.timing.retry_timeout,
      maximum_lag_on_failover: 1048576,
      ...o.dcs,
      postgresql: { use_pg_rewind: true, use_slots: true, ...((o.dcs['postgresql'] as object | undefined) ?? {}) },
    })}`,
    `  initdb: [{encoding: UTF8}, data-checksums, {locale: C}]`,
    `postgresql:`,
    `  listen: ${host}:${o.pgPort}`,
    `  connect_address: ${host}:${o.pgPort}`,
    `  data_dir: ${yamlString(join(o.dir, 'data'))}`,
    `  pgpass: ${yamlString(join(o.dir, 'pgpass'))}`,
    `  use_pg_rewind: true`,
    `  authentication:`,
    `    superuser: {username: ${SUPERUSER.username}, password: ${SUPERUSER.password}}`,
    `    replication: {username: ${REPLICATION.username}, password: ${REPLICATION.password}}`,
    ...(o.pgHba !== undefined && o.pgHba.length > 0 ? [`  pg_hba: ${JSON.stringify(o.pgHba)}`] : []),
    `  parameters: ${JSON.stringify(params)}`,
    `  basebackup: [{checkpoint: fast}]`,
    `tags: ${JSON.stringify(o.tags)}`,
  ];
  return lines.join('\n') + '\n';
}

export class LocalCluster {
  readonly opts: Required<Omit<LocalClusterOptions, 'etcdEndpoint' | 'hosts' | 'pgHba' | 'wrap' | 'store' | 'vigil'>> &
    Pick<LocalClusterOptions, 'etcdEndpoint' | 'hosts' | 'pgHba' | 'wrap' | 'store' | 'vigil'>;
  etcd: EtcdServer | undefined;
  etcdEndpoint = '';
  readonly nodes: LocalNode[] = [];

  constructor(opts: LocalClusterOptions) {
    this.opts = {
      scope: 'demo',
      nodes: 3,
      timing: FAST_TIMING,
      dcs: {},
      parameters: {},
      tags: {},
      logLevel: 'info',
      fast: true,
      ...opts,
    };
  }

  /** Start etcd (unless given, or another DCS is) and write every node's configuration; agents are not started yet. */
  async prepare(): Promise<void> {
    await mkdir(this.opts.baseDir, { recursive: true });
    // mkdtemp makes 0700 directories; PostgreSQL runs as another user and must traverse it.
    await chmod(this.opts.baseDir, 0o755);
    if (this.opts.etcdEndpoint !== undefined) this.etcdEndpoint = this.opts.etcdEndpoint;
    else if (this.opts.store === undefined) {
      this.etcd = await startEtcd({ dir: join(this.opts.baseDir, 'etcd') });
      this.etcdEndpoint = this.etcd.endpoint;
    }
    const pgUser = pgOsUser();
    const fastParams: Record<string, string> = this.opts.fast ? { fsync: 'off', shared_buffers: '32MB', max_wal_size: '128MB' } : {};
    for (let i = 0; i < this.opts.nodes; i++) {
      const name = `node${i}`;
      const host = this.opts.hosts?.[i] ?? '127.0.0.1';
      const dir = join(this.opts.baseDir, name);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      if (pgUser !== undefined) await chown(dir, pgUser.uid, pgUser.gid);
      const pgPort = await freePort();
      const apiPort = await freePort();
      const configFile = join(dir, 'vigil.yml');
      await writeFile(
        configFile,
        renderNodeConfig({
          scope: this.opts.scope,
          name,
          etcd: this.etcdEndpoint,
          store: this.opts.store,
          apiPort,
          pgPort,
          dir,
          timing: this.opts.timing,
          dcs: this.opts.dcs,
          parameters: { ...fastParams, ...this.opts.parameters },
          tags: this.opts.tags[name] ?? {},
          logLevel: this.opts.logLevel,
          host,
          pgHba: this.opts.pgHba,
        }),
        // It holds the superuser and replication passwords: readable by its owner only (the
        // agents run as the user who writes it). chmod too: mode applies only when creating.
        { mode: 0o600 },
      );
      await chmod(configFile, 0o600);
      this.nodes.push({ name, host, dir, configFile, pgPort, apiPort, dataDir: join(dir, 'data'), logFile: join(dir, 'agent.log'), process: undefined });
    }
  }

  node(name: string): LocalNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** Start (or restart) one node's agent as a child process, logging to <dir>/agent.log. */
  startAgent(name: string): void {
    const n = this.node(name);
    if (n.process !== undefined && n.process.exitCode === null && n.process.signalCode === null) return;
    const fd = openSync(n.logFile, 'a');
    try {
      const argv = [...(this.opts.vigil ?? VIGIL), 'agent', n.configFile];
      const prefix = this.opts.wrap?.({ name: n.name, index: this.nodes.indexOf(n) });
      const [command, ...args] = prefix === undefined ? argv : [prefix.command, ...prefix.args, ...argv];
      n.process = spawn(command!, args, {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...this.opts.store?.env },
      });
    } finally {
      closeSync(fd);
    }
  }

  async startAll(): Promise<void> {
    for (const n of this.nodes) this.startAgent(n.name);
  }

  /** Send a signal to a node's agent; with SIGKILL, also kill its PostgreSQL (a host crash). */
  killAgent(name: string, signal: NodeJS.Signals = 'SIGKILL', opts: { withPostgres?: boolean } = {}): void {
    const n = this.node(name);
    if (opts.withPostgres) this.killPostgres(name, 'SIGKILL');
    n.process?.kill(signal);
  }

  /** Wait for a node's agent to exit (after SIGTERM). */
  async waitAgentExit(name: string, timeoutMs = 60_000): Promise<number | null> {
    const p = this.node(name).process;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    try {
      const [code] = (await once(p, 'exit')) as [number | null];
      return code;
    } finally {
      clearTimeout(t);
    }
  }

  postmasterPid(name: string): number | undefined {
    const f = join(this.node(name).dataDir, 'postmaster.pid');
    if (!existsSync(f)) return undefined;
    const pid = Number(readFileSync(f, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** Kill a node's postmaster; with SIGKILL also every process of its group (a crash). */
  killPostgres(name: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    killGroup(this.postmasterPid(name), signal);
  }

  /** GET a node's REST endpoint: status code and parsed JSON body (undefined when unreachable). */
  async api(name: string, path = '/patroni', timeoutMs = 2000): Promise<{ status: number; body: Record<string, unknown> | undefined } | undefined> {
    const n = this.node(name);
    try {
      const res = await fetch(`http://${n.host}:${n.apiPort}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      let body: Record<string, unknown> | undefined;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = undefined;
      }
      return { status: res.status, body };
    } catch {
      return undefined;
    }
  }

  /** Names of the nodes whose /primary answers 200 right now. */
  async primaries(): Promise<string[]> {
    const res = await Promise.all(this.nodes.map(async (n) => ((await this.api(n.name, '/primary'))?.status === 200 ? n.name : undefined)));
    return res.filter((x): x is string => x !== undefined);
  }

  /** libpq-style connection parameters for a node. */
  connParams(name: string, database = 'postgres') {
    const n = this.node(name);
    return { host: n.host, port: n.pgPort, user: SUPERUSER.username, password: SUPERUSER.password, database };
  }

  /** Stop every agent (SIGTERM, then SIGKILL after a grace), every PostgreSQL, and etcd (if started here). */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.process !== undefined && n.process.exitCode === null && n.process.signalCode === null) {
          n.process.kill('SIGTERM');
          await this.waitAgentExit(n.name, 30_000);
        }
        this.killPostgres(n.name, 'SIGKILL');
      }),
    );
    await this.etcd?.stop();
  }
}
