// Small helpers shared by the benchmark scripts: timestamped progress lines, the tail of a node's
// log for failure reports, and the cluster credentials/endpoints the workload uses.

import { readFile } from 'node:fs/promises';

import { SUPERUSER, type LocalCluster } from '../../src/local/cluster.ts';
import type { Credentials, Endpoint } from './workload.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes "[hh:mm:ss] msg" to stdout. */
export function log(msg: string): void {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** The last `lines` lines of a text file, or a note saying it cannot be read. */
export async function tail(file: string, lines = 25): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(cannot read ${file})`;
  }
}

/** The superuser credentials LocalCluster configures, for the workload client. */
export const CLUSTER_CREDENTIALS: Credentials = { user: SUPERUSER.username, password: SUPERUSER.password, database: 'postgres' };

/** Every node's PostgreSQL port as a workload endpoint (a direct client). */
export function directEndpoints(c: LocalCluster): Endpoint[] {
  return c.nodes.map((n) => ({ name: n.name, host: '127.0.0.1', port: n.pgPort }));
}

/** On SIGINT/SIGTERM: says so, runs `stop` (the bench's cluster teardown), then exits 130. */
export function stopOnSignal(stop: () => Promise<unknown>): void {
  const onSignal = (): void => {
    log('interrupted; stopping the cluster');
    void stop().catch(() => undefined).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
