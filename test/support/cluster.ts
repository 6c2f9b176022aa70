// LocalClusters for the tests against real clusters (test/integration, test/cli): start and stop
// one in a temporary directory, and probes of it. Each probe looks once and answers "not yet" with
// undefined, so that it can be polled with waitFor (./wait.ts).

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clusterPrefix } from '../../src/dcs/codec.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { createDcs } from '../../src/dcs/factory.ts';
import { LocalCluster, type LocalClusterOptions } from '../../src/local/cluster.ts';
import { query } from './wait.ts';

/** A LocalCluster, prepared and started, in a new temporary directory `base` (its name starts with `prefix`); stopped again when the start fails. */
export async function startCluster(prefix: string, opts: Omit<LocalClusterOptions, 'baseDir'>): Promise<{ base: string; cluster: LocalCluster }> {
  const base = await mkdtemp(join(tmpdir(), prefix));
  const cluster = new LocalCluster({ ...opts, baseDir: base });
  try {
    await cluster.prepare();
    await cluster.startAll();
  } catch (err) {
    await stopCluster(cluster, base);
    throw err;
  }
  return { base, cluster };
}

/** Stop a cluster and remove its directory; with VIGIL_KEEP_TEST_DIRS set the directory is kept and named. Either may be missing. */
export async function stopCluster(cluster: LocalCluster | undefined, base: string | undefined): Promise<void> {
  await cluster?.stop();
  if (base === undefined || base === '') return;
  if (process.env.VIGIL_KEEP_TEST_DIRS === undefined) await rm(base, { recursive: true, force: true });
  else console.log(`# kept ${base}`);
}

/** The one member whose GET /primary answers 200, unless it is `exclude`; undefined for none or several. */
export async function onePrimary(cluster: LocalCluster, exclude?: string): Promise<string | undefined> {
  const p = await cluster.primaries();
  return p.length === 1 && p[0] !== exclude ? p[0] : undefined;
}

/** The members whose GET /replica?replication_state=streaming answers 200. */
export async function streamingReplicas(cluster: LocalCluster): Promise<string[]> {
  const out: string[] = [];
  for (const n of cluster.nodes) if ((await cluster.api(n.name, '/replica?replication_state=streaming'))?.status === 200) out.push(n.name);
  return out;
}

/** The primary, once there is exactly one and every other member streams from it. */
export async function healthy(cluster: LocalCluster): Promise<string | undefined> {
  const p = await onePrimary(cluster);
  if (p === undefined) return undefined;
  return (await streamingReplicas(cluster)).length === cluster.nodes.length - 1 ? p : undefined;
}

/** pg_is_in_recovery() on a member's PostgreSQL. */
export async function inRecovery(cluster: LocalCluster, name: string): Promise<boolean> {
  const rows = await query<{ r: boolean }>(cluster.connParams(name), 'SELECT pg_is_in_recovery() AS r');
  return rows[0]?.r === true;
}

/** The last lines of a member's agent log, for assertion messages. */
export function agentLog(cluster: LocalCluster, name: string, lines = 40): string {
  try {
    return readFileSync(cluster.node(name).logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A client of the cluster's etcd (scope demo) in ctl mode, as `vigil` commands use it. */
export function ctlDcs(cluster: LocalCluster): Dcs {
  return createDcs({ etcd3: { hosts: [cluster.etcdEndpoint], protocol: 'http' } }, { prefix: clusterPrefix('/service/', 'demo'), name: 'test', ttl: 30, retryTimeout: 3, ctl: true });
}

/** /proc says the process exists and is not a zombie. */
export function processRuns(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
