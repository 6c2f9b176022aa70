// `vigil demo`: a three-node Vigil cluster and an etcd on this machine's loopback interface, in a
// temporary directory. Prints the cluster table and connection strings, keeps running and prints
// the table again whenever the roles change; Ctrl-C (or SIGTERM) stops everything and removes the
// directory (unless --keep).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { FAST_TIMING, LocalCluster, PATRONI_DEFAULT_TIMING, SUPERUSER } from '../local/cluster.ts';
import { createDcs } from '../dcs/factory.ts';
import { clusterPrefix } from '../dcs/codec.ts';
import { renderTable } from './table.ts';

const USAGE = `usage: vigil demo [--nodes N] [--timing fast|patroni] [--dir DIR] [--keep]

Starts etcd and N (default 3) Vigil agents with PostgreSQL on 127.0.0.1 ports, prints the cluster
table and how to connect, and runs until Ctrl-C. --timing fast (default) uses ttl 10, loop_wait 2,
retry_timeout 3; patroni uses Patroni's defaults (30/10/10).`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        nodes: { type: 'string', default: '3' },
        timing: { type: 'string', default: 'fast' },
        dir: { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    });
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const nodes = Number(args.values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) {
    process.stderr.write(`Error: --nodes must be a whole number from 1 to 9, got ${JSON.stringify(args.values.nodes)}\n`);
    return 2;
  }
  const timingName = args.values.timing;
  if (timingName !== 'fast' && timingName !== 'patroni') {
    process.stderr.write(`Error: --timing must be fast or patroni, got ${JSON.stringify(timingName)}\n`);
    return 2;
  }
  const baseDir = args.values.dir ?? (await mkdtemp(join(tmpdir(), 'vigil-demo-')));
  const cluster = new LocalCluster({ baseDir, nodes, scope: 'demo', timing: timingName === 'fast' ? FAST_TIMING : PATRONI_DEFAULT_TIMING, fast: false });

  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (): void => {
      if (stopping) return;
      stopping = true;
      process.stdout.write('\nstopping the demo cluster...\n');
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  process.stdout.write(`vigil demo: ${nodes} nodes in ${baseDir}\n`);
  await cluster.prepare();
  process.stdout.write(`etcd listening on ${cluster.etcdEndpoint}\n`);
  await cluster.startAll();
  const dcs = createDcs({ etcd3: { hosts: [cluster.etcdEndpoint], protocol: 'http' } }, { prefix: clusterPrefix('/service/', 'demo'), name: 'vigil-demo', ttl: 30, retryTimeout: 5, ctl: true });

  let last = '';
  let printedHelp = false;
  while (!stopping) {
    try {
      const view = await dcs.readCluster();
      const table = renderTable('demo', view, { format: 'pretty', extended: false });
      const signature = view.members.map((m) => `${m.name}:${m.data.role}:${m.data.state}`).join(',') + `|${view.leader?.name ?? ''}`;
      if (signature !== last) {
        last = signature;
        process.stdout.write(`\n${new Date().toISOString()}\n${table}\n`);
      }
      const ready = view.leader !== undefined && view.members.length === nodes && view.members.every((m) => m.data.state === 'running');
      if (ready && !printedHelp) {
        printedHelp = true;
        printHelp(cluster);
      }
    } catch (err) {
      process.stdout.write(`cannot read the cluster from etcd: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    await Promise.race([sleep(1000), stopped]);
  }
  await dcs.close();
  await cluster.stop();
  if (!args.values.keep && args.values.dir === undefined) await rm(baseDir, { recursive: true, force: true });
  process.stdout.write('demo stopped\n');
  return 0;
}

function printHelp(cluster: LocalCluster): void {
  const lines = ['', 'The cluster is up. Try:'];
  const hosts = cluster.nodes.map((n) => `127.0.0.1:${n.pgPort}`).join(',');
  // The password is not printed (issue 14): it is in each node's configuration file (mode 0600).
  const file = cluster.nodes[0]?.configFile ?? 'each node\'s vigil.yml';
  lines.push(`  psql 'postgresql://${SUPERUSER.username}@${hosts}/postgres?target_session_attrs=read-write'   # the primary`);
  lines.push(`      (password: postgresql.authentication.superuser.password in ${file})`);
  for (const n of cluster.nodes) {
    lines.push(`  ${n.name}: postgres 127.0.0.1:${n.pgPort}  REST http://127.0.0.1:${n.apiPort}/patroni  config ${n.configFile}`);
  }
  const first = cluster.nodes[0];
  if (first !== undefined) {
    lines.push(`  bin/vigil list -c ${first.configFile}`);
    lines.push(`  patronictl -c ${first.configFile} list        # Patroni's own client, if installed`);
    lines.push(`  curl -s http://127.0.0.1:${first.apiPort}/cluster`);
    lines.push(`  kill -9 the primary's agent and postgres to watch a failover; logs are in each node's directory`);
  }
  lines.push('Ctrl-C stops everything.', '');
  process.stdout.write(lines.join('\n') + '\n');
}
