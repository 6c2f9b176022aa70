// REST API speed, Vigil and Patroni 3.0.2 side by side in one run: a three-node cluster of each
// (Patroni's default timings, so both agents run their loops as usual), then wrk against the
// leader's GET /primary, /replica, /health and /patroni. Vigil runs as it ships (built JavaScript,
// plain node). Asserts nothing. See bench/README.md.
//
//   npm run bench:rest                                    # wrk -t2 -c4 -d10s, 2 runs per path
//   npm run bench:rest -- --duration 5 --runs 1 --system vigil --path /primary
//   npm run bench:rest -- --node /usr/bin/node --connections 16
//   npm run bench:rest -- --node-flag=--max-semi-space-size=1 --node-flag=--lite-mode   # V8 flags for vigil

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import { LocalCluster, PATRONI_DEFAULT_TIMING } from '../src/local/cluster.ts';
import { SUPPORTED_NODE_VERSIONS, nodeBinary } from '../test/build/versions.ts';
import { buildVigil, builtVigil } from './lib/built.ts';
import { waitHealthy } from './lib/cluster-ops.ts';
import { log, sleep } from './lib/common.ts';
import { PatroniCluster, patroniUnavailableReason } from './lib/patroni.ts';

const { values } = parseArgs({
  options: {
    system: { type: 'string', multiple: true },
    path: { type: 'string', multiple: true },
    duration: { type: 'string', default: '10' },
    runs: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    connections: { type: 'string', default: '4' },
    node: { type: 'string' },
    'node-flag': { type: 'string', multiple: true },
  },
});
const systems = values.system ?? ['vigil', 'patroni'];
const paths = values.path ?? ['/primary', '/replica', '/health', '/patroni'];
const runs = Number(values.runs);
const newest = [...SUPPORTED_NODE_VERSIONS].reverse().map(nodeBinary).find((p) => existsSync(p));
const node = values.node ?? newest ?? process.execPath;

interface Result {
  system: string;
  path: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: string;
}

/** wrk's "1.23ms" / "456.00us" / "1.2s" as milliseconds. */
function ms(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

async function wrk(url: string): Promise<Omit<Result, 'system' | 'path'>> {
  const { stdout } = await promisify(execFile)('wrk', [`-t${values.threads}`, `-c${values.connections}`, `-d${values.duration}s`, '--latency', url], { maxBuffer: 1 << 20 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = ms(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const p99 = ms(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const errors = /Socket errors:.*$/m.exec(stdout)?.[0] ?? '';
  return { rps, p50Ms: p50, p99Ms: p99, non2xx, errors };
}

async function measure(system: string, vigil: string[] | undefined): Promise<Result[]> {
  const base = await mkdtemp(join(tmpdir(), `vigil-rest-${system}-`));
  const opts = { baseDir: base, nodes: 3, timing: PATRONI_DEFAULT_TIMING, ...(vigil ? { vigil } : {}) };
  const cluster = system === 'patroni' ? new PatroniCluster(opts) : new LocalCluster(opts);
  const out: Result[] = [];
  try {
    await cluster.prepare();
    await cluster.startAll();
    const leader = await waitHealthy(cluster, 180_000);
    await sleep((PATRONI_DEFAULT_TIMING.loop_wait + 1) * 1000);
    const port = cluster.node(leader).apiPort;
    for (const path of paths) {
      for (let i = 0; i < runs; i++) {
        const r = await wrk(`http://127.0.0.1:${port}${path}`);
        log(`${system} ${path} run ${i + 1}: ${r.rps.toFixed(0)} requests/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${r.non2xx ? `, ${r.non2xx} non-2xx` : ''} ${r.errors}`);
        out.push({ system, path, ...r });
      }
    }
  } finally {
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  const results: Result[] = [];
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
        results.push(...(await measure(system, undefined)));
      } else if (system === 'vigil') {
        build ??= await buildVigil();
        log(`vigil: built into ${build.dir}, run by ${node}`);
        results.push(...(await measure(system, (vigilCmd = builtVigil(node, build.dir, values['node-flag'] ?? [])))));
      } else throw new Error(`unknown system ${system} (vigil, patroni)`);
    }
  } finally {
    await build?.remove();
  }
  const lines = [`wrk -t${values.threads} -c${values.connections} -d${values.duration}s against the leader, ${runs} run(s) each; vigil = the build run as ${(vigilCmd ?? []).slice(0, -1).join(' ')} (node flags of its shebang included)`, '', 'path       system    requests/s   p50 ms   p99 ms   vs patroni'];
  for (const path of paths) {
    for (const r of results.filter((x) => x.path === path)) {
      const p = results.filter((x) => x.path === path && x.system === 'patroni');
      const pr = p.length > 0 ? p.reduce((a, x) => a + x.rps, 0) / p.length : Number.NaN;
      lines.push(`${path.padEnd(10)} ${r.system.padEnd(8)} ${r.rps.toFixed(0).padStart(11)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)}   ${r.system === 'patroni' || Number.isNaN(pr) ? '' : `${(r.rps / pr).toFixed(1)}x`}`);
    }
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
