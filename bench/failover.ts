// Unplanned-failover benchmark: how long a client cannot write, and how many acknowledged writes
// are gone, when the primary's host crashes or its postmaster dies with the HA agent alive.
// Measured from the client's side against Vigil and, where /usr/bin/patroni exists, Patroni 3.0.2
// on the same per-node YAML. Method and caveats: bench/README.md. Usage: --help.

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { FAST_TIMING, LocalCluster, PATRONI_DEFAULT_TIMING, type Timing } from '../src/local/cluster.ts';
import { CLUSTER_CREDENTIALS, directEndpoints, log, sleep, tail, stopOnSignal } from './lib/common.ts';
import { leaderLeaseTtl, waitHealthy } from './lib/cluster-ops.ts';
import { PatroniCluster, patroniUnavailableReason } from './lib/patroni.ts';
import { formatTable, summarize } from './lib/stats.ts';
import { measureFault, type FaultName } from './lib/measure.ts';
import { missingIds, Writer } from './lib/workload.ts';

type SystemName = 'vigil' | 'patroni';
type ProfileName = 'default' | 'fast';

const PROFILES: Record<ProfileName, Timing> = { default: PATRONI_DEFAULT_TIMING, fast: FAST_TIMING };
const SCOPE = 'bench';
const NAMESPACE = '/service/';

/** Patroni 3.0.2 on this machine, direct client, median of 5 (from the issue), seconds. */
const YARDSTICK: Record<ProfileName, Record<FaultName, number>> = {
  default: { 'host-crash': 21.6, 'postmaster-kill': 4.6 },
  fast: { 'host-crash': 9.8, 'postmaster-kill': 2.6 },
};

const USAGE = `usage: npm run bench:failover -- [--runs N | --quick] [--system vigil|patroni|both]
       [--profile default|fast|both] [--fault host-crash|postmaster-kill|both] [--json FILE] [--keep]

Unplanned failover seen by a client that inserts rows continuously. For each system, timing profile
(default = Patroni's 30/10/10, fast = 10/2/3) and fault (host crash = SIGKILL of agent and
PostgreSQL; postmaster kill = SIGKILL of PostgreSQL only), runs N times (default 5, --quick 2) on
one three-node cluster and prints median/min/max write unavailability and acknowledged writes lost.
--json writes every run's raw figures to FILE; --keep keeps the cluster directories.`;

interface RunResult {
  system: SystemName;
  profile: ProfileName;
  fault: FaultName;
  run: number;
  oldPrimary: string;
  newPrimary: string | undefined;
  /** Seconds from the last acknowledged write before the fault to the first after it; undefined = none. */
  unavailableS: number | undefined;
  acked: number;
  lost: number | undefined;
  leaseTtl: number | undefined;
  /** Up to 10 missing ids, each with how many acknowledged writes preceded the fault after it (0 = the last one before the fault). */
  missing?: { id: number; fromEnd: number }[];
  note?: string;
}

interface Setup {
  system: SystemName;
  profile: ProfileName;
  leaseTtl: number | undefined;
  skipped?: string;
}

const secs = (ms: number): string => (ms / 1000).toFixed(2);

let current: LocalCluster | undefined;


/** One fault injection on a healthy cluster whose primary is `primary` (bench/lib/measure.ts). */
async function runOnce(
  c: LocalCluster,
  ctx: { system: SystemName; profile: ProfileName; fault: FaultName; run: number; firstId: number; leaseTtl: number | undefined },
  primary: string,
): Promise<{ result: RunResult; nextId: number; ackedIds: number[]; beforeIds: number[] }> {
  const m = await measureFault(c, ctx.fault, PROFILES[ctx.profile], directEndpoints(c), primary, ctx.firstId);
  const result: RunResult = {
    system: ctx.system,
    profile: ctx.profile,
    fault: ctx.fault,
    run: ctx.run,
    oldPrimary: m.oldPrimary,
    newPrimary: m.newPrimary,
    unavailableS: m.unavailableS,
    acked: m.acked,
    lost: undefined,
    leaseTtl: ctx.leaseTtl,
    ...(m.note !== undefined ? { note: m.note } : {}),
  };
  return { result, nextId: m.nextId, ackedIds: m.ackedIds, beforeIds: m.beforeIds };
}

async function benchProfile(
  system: SystemName,
  profile: ProfileName,
  faults: FaultName[],
  runs: number,
  opts: { keep: boolean },
  results: RunResult[],
): Promise<Setup> {
  const timing = PROFILES[profile];
  const baseDir = await mkdtemp(join(tmpdir(), `vigil-bench-${system}-${profile}-`));
  await chmod(baseDir, 0o755); // Patroni runs as postgres and must reach its node directory.
  const Cls = system === 'vigil' ? LocalCluster : PatroniCluster;
  const c = new Cls({ baseDir, scope: SCOPE, nodes: 3, timing });
  current = c;
  const setup: Setup = { system, profile, leaseTtl: undefined };
  let failed = false;
  let keepDir = false;
  const healthyTimeout = (4 * timing.ttl + 120) * 1000;
  try {
    log(`${system}/${profile}: starting etcd and 3 nodes in ${baseDir} (ttl ${timing.ttl}, loop_wait ${timing.loop_wait}, retry_timeout ${timing.retry_timeout})`);
    await c.prepare();
    await c.startAll();
    let primary = await waitHealthy(c, healthyTimeout);
    setup.leaseTtl = await leaderLeaseTtl(c.etcdEndpoint, NAMESPACE, SCOPE);
    log(`${system}/${profile}: healthy, primary ${primary}; leader key lease TTL granted by etcd: ${setup.leaseTtl ?? 'unknown'} s (configured ttl ${timing.ttl})`);
    await new Writer(directEndpoints(c), CLUSTER_CREDENTIALS).ensureTable();
    let nextId = 1;
    for (const fault of faults) {
      for (let run = 1; run <= runs; run++) {
        // Let every agent run a full loop with the rejoined node before the next fault.
        await sleep((timing.loop_wait + 1) * 1000);
        primary = await waitHealthy(c, healthyTimeout);
        const leaseTtl = (await leaderLeaseTtl(c.etcdEndpoint, NAMESPACE, SCOPE)) ?? setup.leaseTtl;
        const { result, nextId: n, ackedIds, beforeIds } = await runOnce(c, { system, profile, fault, run, firstId: nextId, leaseTtl }, primary);
        nextId = n;
        results.push(result);
        try {
          primary = await waitHealthy(c, healthyTimeout);
        } catch (err) {
          failed = true;
          result.note = [result.note, `cluster did not recover: ${err instanceof Error ? err.message : String(err)}`].filter(Boolean).join('; ');
          log(`${system}/${profile} ${fault} run ${run}: ${result.note}`);
          log(`last lines of ${result.oldPrimary}'s log (${c.node(result.oldPrimary).logFile}):\n${await tail(c.node(result.oldPrimary).logFile)}`);
        }
        // Acknowledged ids only: a failed INSERT may or may not have committed.
        try {
          const missing = await missingIds(directEndpoints(c), CLUSTER_CREDENTIALS, ackedIds, { timeoutMs: 60_000 });
          result.lost = missing.length;
          if (missing.length > 0) {
            result.missing = missing.slice(0, 10).map((id) => {
              const i = beforeIds.indexOf(id);
              return { id, fromEnd: i < 0 ? -1 : beforeIds.length - 1 - i };
            });
            const where = result.missing.map((m) => (m.fromEnd < 0 ? `${m.id} (after the fault)` : `${m.id} (${m.fromEnd} acked after it before the fault)`));
            result.note = [result.note, `missing ids: ${where.join(', ')}`].filter(Boolean).join('; ');
            keepDir = true; // the node logs explain which replica was promoted and what it had
          }
        } catch (err) {
          result.note = [result.note, err instanceof Error ? err.message : String(err)].filter(Boolean).join('; ');
        }
        log(
          `${system}/${profile} ${fault} run ${run}/${runs}: ` +
            (result.unavailableS !== undefined ? `writes unavailable ${result.unavailableS.toFixed(2)} s` : 'writes never resumed') +
            ` (${result.oldPrimary} -> ${result.newPrimary ?? '?'}), acknowledged writes missing ${result.lost ?? '?'} of ${result.acked}` +
            (result.note !== undefined ? ` [${result.note}]` : ''),
        );
        if (failed) return setup;
      }
    }
    return setup;
  } catch (err) {
    failed = true;
    setup.skipped = err instanceof Error ? err.message : String(err);
    log(`${system}/${profile}: aborted: ${setup.skipped}`);
    for (const n of c.nodes) log(`last lines of ${n.logFile}:\n${await tail(n.logFile, 15)}`);
    return setup;
  } finally {
    await c.stop().catch((err: unknown) => log(`stopping the cluster: ${String(err)}`));
    current = undefined;
    if (opts.keep || failed || keepDir) log(`${system}/${profile}: cluster directory kept: ${baseDir}`);
    else await rm(baseDir, { recursive: true, force: true });
  }
}

function fmtS(x: number | undefined): string {
  return x === undefined ? '-' : x.toFixed(2);
}

function report(results: RunResult[], setups: Setup[], systems: SystemName[], profiles: ProfileName[], faults: FaultName[]): string {
  const rows: string[][] = [['system', 'profile', 'lease TTL', 'fault', 'runs', 'median s', 'min s', 'max s', 'lost writes', 'Patroni yardstick s']];
  const medians = new Map<string, number>();
  for (const system of systems) {
    for (const profile of profiles) {
      const setup = setups.find((s) => s.system === system && s.profile === profile);
      if (setup === undefined) continue;
      const t = PROFILES[profile];
      for (const fault of faults) {
        const rs = results.filter((r) => r.system === system && r.profile === profile && r.fault === fault);
        const s = summarize(rs.map((r) => r.unavailableS ?? Number.NaN));
        const never = rs.filter((r) => r.unavailableS === undefined).length;
        if (s !== undefined) medians.set(`${system}/${profile}/${fault}`, s.median);
        const lost = rs.map((r) => r.lost);
        const lostText = rs.length === 0 ? '-' : lost.some((l) => l === undefined) ? `${lost.map((l) => l ?? '?').join('/')}` : `${lost.reduce<number>((a, b) => a + (b ?? 0), 0)} (${lost.join('/')})`;
        rows.push([
          system,
          `${profile} ${t.ttl}/${t.loop_wait}/${t.retry_timeout}`,
          setup.leaseTtl === undefined ? '?' : `${setup.leaseTtl} s`,
          fault,
          `${s?.n ?? 0}/${rs.length}${never > 0 ? ` (${never} never resumed)` : ''}${setup.skipped !== undefined && rs.length === 0 ? ' (aborted)' : ''}`,
          fmtS(s?.median),
          fmtS(s?.min),
          fmtS(s?.max),
          lostText,
          YARDSTICK[profile][fault].toFixed(1),
        ]);
      }
    }
  }
  const out = [formatTable(rows)];
  if (systems.includes('vigil') && systems.includes('patroni')) {
    const ratio: string[][] = [['profile', 'fault', 'Vigil median s', 'Patroni median s', 'Vigil/Patroni']];
    for (const profile of profiles) {
      for (const fault of faults) {
        const v = medians.get(`vigil/${profile}/${fault}`);
        const p = medians.get(`patroni/${profile}/${fault}`);
        ratio.push([profile, fault, fmtS(v), fmtS(p), v !== undefined && p !== undefined && p > 0 ? (v / p).toFixed(2) : '-']);
      }
    }
    out.push('', formatTable(ratio));
  }
  out.push(
    '',
    'lost writes: acknowledged INSERTs absent on the final primary, total (per run).',
    'lease TTL: TTL etcd granted to the leader key\'s lease, i.e. the ttl the leader really used.',
    "Vigil's targets (issue): host crash <= ttl + 1 s; postmaster death handled as soon as it exits (<= 1.5 s with short crash recovery).",
  );
  for (const s of setups) if (s.skipped !== undefined) out.push(`${s.system}/${s.profile}: ${s.skipped}`);
  return out.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        runs: { type: 'string' },
        quick: { type: 'boolean', default: false },
        system: { type: 'string', default: 'both' },
        profile: { type: 'string', default: 'both' },
        fault: { type: 'string', default: 'both' },
        json: { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
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
  const runs = v.runs !== undefined ? Number(v.runs) : v.quick ? 2 : 5;
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) {
    process.stderr.write(`Error: --runs must be a whole number from 1 to 100, got ${JSON.stringify(v.runs)}\n`);
    return 2;
  }
  const pick = <T extends string>(flag: string, value: string, all: readonly T[]): T[] | undefined => {
    if (value === 'both' || value === 'all') return [...all];
    if ((all as readonly string[]).includes(value)) return [value as T];
    process.stderr.write(`Error: --${flag} must be one of ${all.join(', ')} or both, got ${JSON.stringify(value)}\n`);
    return undefined;
  };
  let systems = pick<SystemName>('system', v.system, ['vigil', 'patroni']);
  const profiles = pick<ProfileName>('profile', v.profile, ['default', 'fast']);
  const faults = pick<FaultName>('fault', v.fault, ['host-crash', 'postmaster-kill']);
  if (systems === undefined || profiles === undefined || faults === undefined) return 2;

  const why = patroniUnavailableReason();
  if (systems.includes('patroni') && why !== undefined) {
    log(`Patroni will not be measured: ${why}. Continuing with Vigil only.`);
    systems = systems.filter((s) => s !== 'patroni');
    if (systems.length === 0) return 1;
  }

  stopOnSignal(() => current?.stop() ?? Promise.resolve());

  const started = performance.now();
  log(`failover benchmark: systems ${systems.join(', ')}; profiles ${profiles.join(', ')}; faults ${faults.join(', ')}; ${runs} run(s) each`);
  const results: RunResult[] = [];
  const setups: Setup[] = [];
  for (const system of systems) {
    for (const profile of profiles) {
      setups.push(await benchProfile(system, profile, faults, runs, { keep: v.keep }, results));
    }
  }
  const table = report(results, setups, systems, profiles, faults);
  process.stdout.write(`\n${table}\n\ntotal time ${(performance.now() - started) / 60_000 < 1 ? secs(performance.now() - started) + ' s' : ((performance.now() - started) / 60_000).toFixed(1) + ' min'}\n`);
  if (v.json !== undefined) {
    await writeFile(v.json, JSON.stringify({ date: new Date().toISOString(), runs, systems, profiles, faults, setups, results }, null, 2) + '\n');
    log(`raw results written to ${v.json}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`failover benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
  },
);
