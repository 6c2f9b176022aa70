// Per-backend benchmark (issue 9): on every DCS Vigil runs on here, a three-node cluster with the
// fast timing profile (ttl 10 / loop_wait 2 / retry_timeout 3), measured in one run: the client's
// write unavailability after a host crash of the primary, the client's write gap in a switchover,
// and the idle cost (requests per second the three agents send to the DCS, agent CPU). etcd v3,
// etcd v2 (--enable-v2) and ZooKeeper 3.8 are the real servers; Consul and Kubernetes are the FAKES
// of test/support (run in this process), labelled so in the output. Patroni 3.0.2 is measured the
// same way on the backends where it runs here (etcd v3, ZooKeeper). Asserts nothing.
// Method: bench/README.md; measurements: bench/lib/measure.ts; DCS request counting:
// bench/lib/dcs-load.ts. Usage: --help.

import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { FAST_TIMING, LocalCluster, type DcsStore } from '../src/local/cluster.ts';
import { startStore, type RunningStore } from '../test/support/dcs-stores.ts';
import { procInfo, managerTree } from './lib/built.ts';
import { waitHealthy } from './lib/cluster-ops.ts';
import { CLUSTER_CREDENTIALS, directEndpoints, log, sleep, tail, stopOnSignal } from './lib/common.ts';
import { etcd2Counter, etcd3Counter, inProcessHttpCounter, kindDelta, zookeeperCountingProxy, type RequestCounter } from './lib/dcs-load.ts';
import { measureFault, measureSwitchover } from './lib/measure.ts';
import { PatroniCluster, patroniUnavailableReason } from './lib/patroni.ts';
import { formatTable, summarize } from './lib/stats.ts';
import { missingIds, Writer } from './lib/workload.ts';

type Backend = 'etcd3' | 'etcd2' | 'zookeeper' | 'consul' | 'kubernetes';
type SystemName = 'vigil' | 'patroni';

const BACKENDS: readonly Backend[] = ['etcd3', 'etcd2', 'zookeeper', 'consul', 'kubernetes'];
/** Where Patroni 3.0.2 runs here (its Consul and Kubernetes clients are not pointed at our fakes). */
const PATRONI_BACKENDS: readonly Backend[] = ['etcd3', 'zookeeper'];
const SERVER: Record<Backend, string> = {
  etcd3: 'etcd 3.4, v3 API (real)',
  etcd2: 'etcd 3.4 --enable-v2, v2 API (real)',
  zookeeper: 'ZooKeeper 3.8 (real)',
  consul: 'Consul: FAKE (test/support)',
  kubernetes: 'Kubernetes API: FAKE (test/support)',
};
const SCOPE = 'bench';
const NAMES = ['node0', 'node1', 'node2'];
const TIMING = FAST_TIMING;
const TICK_MS = 10; // USER_HZ 100

const USAGE = `usage: npm run bench:backends -- [--runs N] [--idle SECONDS] [--backend B ...] [--system vigil|patroni|both]
       [--sync] [--json FILE] [--keep]

For each DCS backend (etcd3, etcd2, zookeeper: real servers; consul, kubernetes: the fakes of
test/support) and system (Vigil; Patroni 3.0.2 on etcd3 and zookeeper), one three-node cluster
with ttl ${TIMING.ttl} / loop_wait ${TIMING.loop_wait} / retry_timeout ${TIMING.retry_timeout}: idle cost over --idle s (default 30; DCS
requests/s of the three agents, agent CPU % per node), then N switchovers and N host crashes of
the primary (default 3; 0: the idle cost only), seen by a client inserting rows. --sync: synchronous_mode
on (synchronous_node_count 1), where Vigil's fast failover adds its 1 s lease keep-alive. --json writes the raw figures.`;

interface ClusterResult {
  backend: Backend;
  system: SystemName;
  failoverS: number[];
  switchoverGapS: number[];
  lost: number;
  dcsReqPerS: number | undefined;
  cpuPct: number | undefined;
  notes: string[];
  skipped?: string;
}

let current: { stop(): Promise<void> } | undefined;

/** The DCS of one cluster: what to write into the nodes' files, and how to count its requests. */
interface RunningDcs {
  store: DcsStore | undefined;
  counter(c: LocalCluster): RequestCounter;
  stop(): Promise<void>;
}

async function startDcs(backend: Backend): Promise<RunningDcs> {
  if (backend === 'etcd3') return { store: undefined, counter: (c) => etcd3Counter(c.etcdEndpoint), stop: async () => undefined };
  const running: RunningStore = await startStore(backend, SCOPE, NAMES);
  if (backend === 'etcd2') return { store: running.store, counter: () => etcd2Counter(running.etcd2!.endpoints[0]!), stop: () => running.stop() };
  if (backend === 'zookeeper') {
    const proxy = await zookeeperCountingProxy(running.zookeeper!.endpoint);
    return {
      store: { ...running.store, settings: { hosts: [proxy.endpoint] } },
      counter: () => proxy,
      stop: async () => {
        await proxy.close();
        await running.stop();
      },
    };
  }
  // The fakes run in this process: count the HTTP requests they receive.
  const counter = inProcessHttpCounter();
  return {
    store: running.store,
    counter: () => counter,
    stop: async () => {
      await counter.close();
      await running.stop();
    },
  };
}

/** The fencer of a Vigil node (its pid file next to the data directory), if running. */
function fencerPid(c: LocalCluster, name: string): number | undefined {
  const file = `${c.node(name).dataDir}.fencer.pid`;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').length > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The HA manager's processes of every node (agent tree without PostgreSQL, plus Vigil's fencer). */
async function managerPids(c: LocalCluster): Promise<number[][]> {
  return Promise.all(
    c.nodes.map(async (n) => {
      const pid = n.process?.pid;
      const tree = pid === undefined ? [] : await managerTree(pid);
      const fencer = fencerPid(c, n.name);
      return fencer !== undefined && !tree.includes(fencer) ? [...tree, fencer] : tree;
    }),
  );
}

async function ticksOf(pids: number[]): Promise<number> {
  let t = 0;
  for (const p of pids) t += (await procInfo(p))?.cpuTicks ?? 0;
  return t;
}

async function benchCluster(backend: Backend, system: SystemName, runs: number, idleS: number, keep: boolean, sync: boolean): Promise<ClusterResult> {
  const r: ClusterResult = { backend, system, failoverS: [], switchoverGapS: [], lost: 0, dcsReqPerS: undefined, cpuPct: undefined, notes: [] };
  const label = `${backend}/${system}`;
  const baseDir = await mkdtemp(join(tmpdir(), `vigil-bench-be-${backend}-${system}-`));
  await chmod(baseDir, 0o755); // Patroni runs as postgres and must reach its node directory.
  let dcs: RunningDcs | undefined;
  let c: LocalCluster | undefined;
  let keepDir = keep;
  const stop = async (): Promise<void> => {
    await c?.stop().catch((err: unknown) => log(`${label}: stopping the cluster: ${String(err)}`));
    await dcs?.stop().catch((err: unknown) => log(`${label}: stopping the DCS: ${String(err)}`));
  };
  current = { stop };
  const healthyTimeout = (4 * TIMING.ttl + 120) * 1000;
  try {
    log(`${label}: starting ${SERVER[backend]} and 3 nodes in ${baseDir}`);
    dcs = await startDcs(backend);
    const Cls = system === 'vigil' ? LocalCluster : PatroniCluster;
    c = new Cls({ baseDir, scope: SCOPE, nodes: NAMES.length, timing: TIMING, ...(sync ? { dcs: { synchronous_mode: true, synchronous_node_count: 1 } } : {}), ...(dcs.store !== undefined ? { store: dcs.store } : {}) });
    await c.prepare();
    await c.startAll();
    let primary = await waitHealthy(c, healthyTimeout);
    const counter = dcs.counter(c);
    const endpoints = directEndpoints(c);
    await new Writer(endpoints, CLUSTER_CREDENTIALS).ensureTable();

    // Idle cost: after a full loop of every agent, nothing but the agents' own work.
    await sleep((TIMING.loop_wait + 1) * 1000);
    const pids = await managerPids(c);
    const t0 = performance.now();
    const req0 = await counter.read();
    const kinds0 = await counter.byKind?.();
    const ticks0 = await Promise.all(pids.map(ticksOf));
    await sleep(idleS * 1000);
    const req1 = await counter.read();
    const kinds1 = await counter.byKind?.();
    const ticks1 = await Promise.all(pids.map(ticksOf));
    const wallMs = performance.now() - t0;
    if (kinds0 !== undefined && kinds1 !== undefined) {
      const perS = Object.entries(kindDelta(kinds0, kinds1)).map(([k, n]) => `${k} ${(n / (wallMs / 1000)).toFixed(2)}`);
      r.notes.push(`idle requests/s by kind: ${perS.join(', ')}`);
    }
    r.dcsReqPerS = (req1 - req0) / (wallMs / 1000);
    r.cpuPct = ticks1.reduce((a, t, i) => a + (100 * (t - (ticks0[i] ?? 0)) * TICK_MS) / wallMs, 0) / ticks1.length;
    log(`${label}: idle ${idleS} s: ${r.dcsReqPerS.toFixed(2)} DCS requests/s (3 agents), agent CPU ${r.cpuPct.toFixed(2)} % per node`);

    let nextId = 1;
    const lostOf = async (ids: number[], what: string): Promise<void> => {
      const missing = await missingIds(endpoints, CLUSTER_CREDENTIALS, ids, { timeoutMs: 60_000 });
      r.lost += missing.length;
      if (missing.length > 0) {
        keepDir = true;
        r.notes.push(`${what}: missing ids ${missing.slice(0, 10).join(', ')}`);
      }
    };
    for (let run = 1; run <= runs; run++) {
      await sleep((TIMING.loop_wait + 1) * 1000);
      primary = await waitHealthy(c, healthyTimeout);
      const candidate = NAMES[(NAMES.indexOf(primary) + 1) % NAMES.length]!;
      const m = await measureSwitchover(c, endpoints, primary, candidate, nextId);
      nextId = m.nextId;
      if (m.gapS !== undefined) r.switchoverGapS.push(m.gapS);
      if (m.note !== undefined) r.notes.push(`switchover ${run}: ${m.note}`);
      primary = await waitHealthy(c, healthyTimeout);
      await lostOf(m.ackedIds, `switchover ${run}`);
      log(`${label}: switchover ${run}/${runs} ${m.oldPrimary} -> ${m.candidate}: write gap ${m.gapS?.toFixed(3) ?? 'none'} s (POST ${m.status} in ${m.requestS.toFixed(2)} s)${m.note !== undefined ? ` [${m.note}]` : ''}`);
    }
    for (let run = 1; run <= runs; run++) {
      await sleep((TIMING.loop_wait + 1) * 1000);
      primary = await waitHealthy(c, healthyTimeout);
      // A host crash takes Vigil's fencer down with the agent and PostgreSQL (measureFault).
      const m = await measureFault(c, 'host-crash', TIMING, endpoints, primary, nextId);
      nextId = m.nextId;
      if (m.unavailableS !== undefined) r.failoverS.push(m.unavailableS);
      if (m.note !== undefined) r.notes.push(`host crash ${run}: ${m.note}`);
      primary = await waitHealthy(c, healthyTimeout);
      await lostOf(m.ackedIds, `host crash ${run}`);
      log(`${label}: host crash ${run}/${runs} of ${m.oldPrimary}: writes unavailable ${m.unavailableS?.toFixed(2) ?? 'never resumed'} s (new primary ${m.newPrimary ?? '?'})${m.note !== undefined ? ` [${m.note}]` : ''}`);
    }
  } catch (err) {
    keepDir = true;
    r.skipped = err instanceof Error ? err.message : String(err);
    log(`${label}: aborted: ${r.skipped}`);
    for (const n of c?.nodes ?? []) log(`last lines of ${n.logFile}:\n${await tail(n.logFile, 15)}`);
  } finally {
    await stop();
    current = undefined;
    if (keepDir) log(`${label}: cluster directory kept: ${baseDir}`);
    else await rm(baseDir, { recursive: true, force: true });
  }
  return r;
}

function cell(xs: number[], runs: number, digits: number): string {
  const s = summarize(xs);
  if (s === undefined) return '-';
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)}) n=${s.n}${s.n < runs ? `/${runs}` : ''}`;
}

function report(results: ClusterResult[], runs: number, idleS: number): string {
  const rows: string[][] = [['backend', 'DCS server', 'system', 'host-crash failover s', 'switchover gap s', 'lost', 'DCS req/s idle', 'agent CPU % idle']];
  for (const r of results) {
    rows.push([
      r.backend,
      SERVER[r.backend],
      r.system === 'vigil' ? 'Vigil' : 'Patroni 3.0.2',
      cell(r.failoverS, runs, 2),
      cell(r.switchoverGapS, runs, 3),
      String(r.lost),
      r.dcsReqPerS === undefined ? '-' : r.dcsReqPerS.toFixed(2),
      r.cpuPct === undefined ? '-' : r.cpuPct.toFixed(2),
    ]);
  }
  const out = [
    formatTable(rows),
    '',
    `timing ttl ${TIMING.ttl} / loop_wait ${TIMING.loop_wait} / retry_timeout ${TIMING.retry_timeout}; ${runs} run(s) of each; figures: median (min-max) n=runs measured.`,
    'host-crash failover: SIGKILL of the primary\'s agent, its fencer (Vigil) and PostgreSQL; last write acknowledged before -> first after, direct client.',
    'switchover gap: POST /switchover on the leader; last write acknowledged by the old primary -> first by the candidate.',
    'lost: acknowledged writes absent afterwards, all runs. FAKE = the in-process fake server of test/support, not the real product.',
    `DCS req/s idle: requests of the three agents to the DCS over ${idleS} s of an idle healthy cluster, counted at the DCS side`,
    '  (etcd v3: grpc_server_started_total; etcd v2: etcd_http_received_total; ZooKeeper: client frames through a counting proxy; fakes: HTTP requests received).',
    'agent CPU % idle: user+system CPU of one node\'s HA manager processes (Vigil: agent under tsx + fencer) over the same window / wall time, mean of the 3 nodes.',
  ];
  for (const r of results) {
    if (r.skipped !== undefined) out.push(`${r.backend}/${r.system}: aborted: ${r.skipped}`);
    for (const n of r.notes) out.push(`${r.backend}/${r.system}: ${n}`);
  }
  return out.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        runs: { type: 'string', default: '3' },
        idle: { type: 'string', default: '30' },
        backend: { type: 'string', multiple: true },
        system: { type: 'string', default: 'both' },
        json: { type: 'string' },
        keep: { type: 'boolean', default: false },
        sync: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const runs = Number(v.runs);
  const idleS = Number(v.idle);
  if (!Number.isInteger(runs) || runs < 0 || runs > 50) return fail(`--runs must be a whole number from 0 to 50, got ${JSON.stringify(v.runs)}`);
  if (!Number.isFinite(idleS) || idleS < 1 || idleS > 3600) return fail(`--idle must be from 1 to 3600 seconds, got ${JSON.stringify(v.idle)}`);
  const backends = v.backend ?? [...BACKENDS];
  const unknown = backends.filter((b) => !(BACKENDS as readonly string[]).includes(b));
  if (unknown.length > 0) return fail(`unknown --backend ${unknown.join(', ')} (one of ${BACKENDS.join(', ')})`);
  if (!['vigil', 'patroni', 'both'].includes(v.system)) return fail(`--system must be vigil, patroni or both, got ${JSON.stringify(v.system)}`);
  let systems: SystemName[] = v.system === 'both' ? ['vigil', 'patroni'] : [v.system as SystemName];
  const why = patroniUnavailableReason();
  if (systems.includes('patroni') && why !== undefined) {
    log(`Patroni will not be measured: ${why}.`);
    systems = systems.filter((s) => s !== 'patroni');
    if (systems.length === 0) return 1;
  }

  stopOnSignal(() => current?.stop() ?? Promise.resolve());

  const started = performance.now();
  log(`backends benchmark: ${backends.join(', ')}; systems ${systems.join(', ')}; ${runs} run(s) each; idle ${idleS} s${v.sync ? '; synchronous_mode on' : ''}`);
  const results: ClusterResult[] = [];
  for (const backend of backends as Backend[]) {
    for (const system of systems) {
      if (system === 'patroni' && !PATRONI_BACKENDS.includes(backend)) continue;
      results.push(await benchCluster(backend, system, runs, idleS, v.keep, v.sync));
    }
  }
  const minutes = (performance.now() - started) / 60_000;
  process.stdout.write(`\n${report(results, runs, idleS)}\n\ntotal time ${minutes.toFixed(1)} min\n`);
  if (v.json !== undefined) {
    await writeFile(v.json, JSON.stringify({ date: new Date().toISOString(), timing: TIMING, runs, idleS, results }, null, 2) + '\n');
    log(`raw results written to ${v.json}`);
  }
  return 0;
}

function fail(msg: string): number {
  process.stderr.write(`Error: ${msg}\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`backends benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
  },
);
