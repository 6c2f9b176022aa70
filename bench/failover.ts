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
import { leaderLeaseRemaining, leaderLeaseTtl, waitHealthy } from './lib/cluster-ops.ts';
import { PatroniCluster, patroniUnavailableReason } from './lib/patroni.ts';
import { formatTable, summarize } from './lib/stats.ts';
import { measureFault, type FaultName } from './lib/measure.ts';
import { missingIds, Writer } from './lib/workload.ts';
import { mergeIntoFile, parseExtra, type Doc } from './lib/node-config.ts';

type SystemName = 'vigil' | 'patroni';
type ProfileName = 'default' | 'fast';
type ModeName = 'async' | 'sync' | 'quorum';

/**
 * bootstrap.dcs keys of each replication mode. sync: one synchronous standby of two replicas
 * (Patroni's default synchronous_node_count 1); quorum: ANY 1 of the two replicas, a failover
 * candidate must be in /sync. Patroni 3.0.2 has no quorum mode (it reads "quorum" as true, i.e.
 * plain synchronous mode), so Patroni is not run in quorum mode.
 */
const MODE_DCS: Record<ModeName, Record<string, unknown>> = {
  async: {},
  sync: { synchronous_mode: true, synchronous_node_count: 1 },
  quorum: { synchronous_mode: 'quorum', synchronous_node_count: 1 },
};

const PROFILES: Record<ProfileName, Timing> = { default: PATRONI_DEFAULT_TIMING, fast: FAST_TIMING };
const SCOPE = 'bench';
const NAMESPACE = '/service/';

/** Patroni 3.0.2 on this machine, direct client, median of 5 (from the issue), seconds. */
const YARDSTICK: Record<ProfileName, Record<FaultName, number>> = {
  default: { 'host-crash': 21.6, 'postmaster-kill': 4.6 },
  fast: { 'host-crash': 9.8, 'postmaster-kill': 2.6 },
};

const USAGE = `usage: npm run bench:failover -- [--runs N | --quick] [--system vigil|patroni|both]
       [--profile default|fast|both] [--mode async|sync|quorum|all (or a comma list)]
       [--fault host-crash|postmaster-kill|both] [--vigil-extra YAML]... [--patroni-extra YAML]...
       [--json FILE] [--keep]

Unplanned failover seen by a client that inserts rows continuously. For each system, timing profile
(default = Patroni's 30/10/10, fast = 10/2/3), replication mode (default async; sync =
synchronous_mode on, quorum = synchronous_mode quorum, 3 nodes each; Patroni 3.0.2 has no quorum
mode) and fault (host crash = SIGKILL of agent, fencer and PostgreSQL; postmaster kill = SIGKILL of
PostgreSQL only), runs N times (default 5, --quick 2) on one three-node cluster and prints
median/min/max write unavailability and acknowledged writes lost.
--vigil-extra / --patroni-extra: a YAML or JSON mapping deep-merged into every Vigil (Patroni) node's
configuration file before the agents start (repeatable), e.g. --vigil-extra '{"log":{"level":"DEBUG"}}'.
--json writes every run's raw figures to FILE; --keep keeps the cluster directories.
Issue 13's measurement: --mode sync,quorum --profile default --fault host-crash --runs 10`;

interface RunResult {
  system: SystemName;
  profile: ProfileName;
  mode: ModeName;
  fault: FaultName;
  run: number;
  oldPrimary: string;
  newPrimary: string | undefined;
  /** Seconds from the last acknowledged write before the fault to the first after it; undefined = none. */
  unavailableS: number | undefined;
  acked: number;
  lost: number | undefined;
  leaseTtl: number | undefined;
  /** Seconds the old leader's lease had left just before the fault (etcd, whole seconds). */
  leaseLeftS: number | undefined;
  /** Random extra wait before this run's fault, s (spreads the fault over the leader's loop). */
  phaseS: number;
  /** Up to 10 missing ids, each with how many acknowledged writes preceded the fault after it (0 = the last one before the fault). */
  missing?: { id: number; fromEnd: number }[];
  note?: string;
}

interface Setup {
  system: SystemName;
  profile: ProfileName;
  mode: ModeName;
  leaseTtl: number | undefined;
  skipped?: string;
}

const secs = (ms: number): string => (ms / 1000).toFixed(2);

let current: LocalCluster | undefined;


/** One fault injection on a healthy cluster whose primary is `primary` (bench/lib/measure.ts). */
async function runOnce(
  c: LocalCluster,
  ctx: { system: SystemName; profile: ProfileName; mode: ModeName; fault: FaultName; run: number; firstId: number; leaseTtl: number | undefined },
  primary: string,
  phaseS: number,
): Promise<{ result: RunResult; nextId: number; ackedIds: number[]; beforeIds: number[] }> {
  let leaseLeftS: number | undefined;
  const m = await measureFault(c, ctx.fault, PROFILES[ctx.profile], directEndpoints(c), primary, ctx.firstId, undefined, async () => {
    leaseLeftS = await leaderLeaseRemaining(c.etcdEndpoint, NAMESPACE, SCOPE);
  });
  const result: RunResult = {
    system: ctx.system,
    profile: ctx.profile,
    mode: ctx.mode,
    fault: ctx.fault,
    run: ctx.run,
    oldPrimary: m.oldPrimary,
    newPrimary: m.newPrimary,
    unavailableS: m.unavailableS,
    acked: m.acked,
    lost: undefined,
    leaseTtl: ctx.leaseTtl,
    leaseLeftS,
    phaseS,
    ...(m.note !== undefined ? { note: m.note } : {}),
  };
  if (m.syncCancelled > 0) result.note = [result.note, `${m.syncCancelled} commit(s) answered with "canceling wait for synchronous replication" (not counted as acknowledged)`].filter(Boolean).join('; ');
  return { result, nextId: m.nextId, ackedIds: m.ackedIds, beforeIds: m.beforeIds };
}

async function benchProfile(
  system: SystemName,
  profile: ProfileName,
  mode: ModeName,
  faults: FaultName[],
  runs: number,
  opts: { keep: boolean; extras: Doc[] },
  results: RunResult[],
): Promise<Setup> {
  const timing = PROFILES[profile];
  const label = `${system}/${profile}/${mode}`;
  const setup: Setup = { system, profile, mode, leaseTtl: undefined };
  if (system === 'patroni' && mode === 'quorum') {
    setup.skipped = 'Patroni 3.0.2 has no quorum mode (synchronous_mode "quorum" would run as plain synchronous mode): not run';
    log(`${label}: ${setup.skipped}`);
    return setup;
  }
  const baseDir = await mkdtemp(join(tmpdir(), `vigil-bench-${system}-${profile}-${mode}-`));
  await chmod(baseDir, 0o755); // Patroni runs as postgres and must reach its node directory.
  const Cls = system === 'vigil' ? LocalCluster : PatroniCluster;
  const c = new Cls({ baseDir, scope: SCOPE, nodes: 3, timing, dcs: MODE_DCS[mode] });
  current = c;
  let failed = false;
  let keepDir = false;
  const healthyTimeout = (4 * timing.ttl + 120) * 1000;
  try {
    log(`${label}: starting etcd and 3 nodes in ${baseDir} (ttl ${timing.ttl}, loop_wait ${timing.loop_wait}, retry_timeout ${timing.retry_timeout})`);
    await c.prepare();
    for (const n of c.nodes) await mergeIntoFile(n.configFile, opts.extras);
    if (opts.extras.length > 0) log(`${label}: merged into every node's configuration: ${JSON.stringify(opts.extras)}`);
    await c.startAll();
    let primary = await waitHealthy(c, healthyTimeout);
    setup.leaseTtl = await leaderLeaseTtl(c.etcdEndpoint, NAMESPACE, SCOPE);
    log(`${label}: healthy, primary ${primary}; leader key lease TTL granted by etcd: ${setup.leaseTtl ?? 'unknown'} s (configured ttl ${timing.ttl})`);
    await new Writer(directEndpoints(c), CLUSTER_CREDENTIALS).ensureTable();
    let nextId = 1;
    for (const fault of faults) {
      for (let run = 1; run <= runs; run++) {
        // Let every agent run a full loop with the rejoined node before the next fault, then wait a
        // random part of loop_wait more: the fault must not land at the same point of the leader's
        // loop in every run (after a host crash the lease rule's delay depends on that point).
        const phaseS = Math.random() * timing.loop_wait;
        await sleep((timing.loop_wait + 1 + phaseS) * 1000);
        primary = await waitHealthy(c, healthyTimeout);
        const leaseTtl = (await leaderLeaseTtl(c.etcdEndpoint, NAMESPACE, SCOPE)) ?? setup.leaseTtl;
        const { result, nextId: n, ackedIds, beforeIds } = await runOnce(c, { system, profile, mode, fault, run, firstId: nextId, leaseTtl }, primary, phaseS);
        nextId = n;
        results.push(result);
        try {
          primary = await waitHealthy(c, healthyTimeout);
        } catch (err) {
          failed = true;
          result.note = [result.note, `cluster did not recover: ${err instanceof Error ? err.message : String(err)}`].filter(Boolean).join('; ');
          log(`${label} ${fault} run ${run}: ${result.note}`);
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
          `${label} ${fault} run ${run}/${runs}: ` +
            (result.unavailableS !== undefined ? `writes unavailable ${result.unavailableS.toFixed(2)} s` : 'writes never resumed') +
            ` (lease left at the fault ${result.leaseLeftS ?? '?'} s)` +
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
    log(`${label}: aborted: ${setup.skipped}`);
    for (const n of c.nodes) log(`last lines of ${n.logFile}:\n${await tail(n.logFile, 15)}`);
    return setup;
  } finally {
    await c.stop().catch((err: unknown) => log(`stopping the cluster: ${String(err)}`));
    current = undefined;
    if (opts.keep || failed || keepDir) log(`${label}: cluster directory kept: ${baseDir}`);
    else await rm(baseDir, { recursive: true, force: true });
  }
}

function fmtS(x: number | undefined): string {
  return x === undefined ? '-' : x.toFixed(2);
}

function report(results: RunResult[], setups: Setup[], systems: SystemName[], profiles: ProfileName[], modes: ModeName[], faults: FaultName[]): string {
  const rows: string[][] = [['system', 'mode', 'profile', 'lease TTL', 'fault', 'runs', 'median s', 'min s', 'max s', 'median s - lease left', 'lost writes', 'Patroni yardstick s']];
  const medians = new Map<string, number>();
  for (const mode of modes) {
    for (const profile of profiles) {
      for (const system of systems) {
        const setup = setups.find((s) => s.system === system && s.profile === profile && s.mode === mode);
        if (setup === undefined) continue;
        const t = PROFILES[profile];
        for (const fault of faults) {
          const rs = results.filter((r) => r.system === system && r.profile === profile && r.mode === mode && r.fault === fault);
          const s = summarize(rs.map((r) => r.unavailableS ?? Number.NaN));
          const never = rs.filter((r) => r.unavailableS === undefined).length;
          const beyond = summarize(rs.map((r) => (r.unavailableS !== undefined && r.leaseLeftS !== undefined ? r.unavailableS - r.leaseLeftS : Number.NaN)));
          if (s !== undefined) medians.set(`${system}/${profile}/${mode}/${fault}`, s.median);
          const lost = rs.map((r) => r.lost);
          const lostText = rs.length === 0 ? '-' : lost.some((l) => l === undefined) ? `${lost.map((l) => l ?? '?').join('/')}` : `${lost.reduce<number>((a, b) => a + (b ?? 0), 0)} (${lost.join('/')})`;
          rows.push([
            system,
            mode,
            `${profile} ${t.ttl}/${t.loop_wait}/${t.retry_timeout}`,
            setup.leaseTtl === undefined ? '?' : `${setup.leaseTtl} s`,
            fault,
            `${s?.n ?? 0}/${rs.length}${never > 0 ? ` (${never} never resumed)` : ''}${setup.skipped !== undefined && rs.length === 0 ? ' (not run)' : ''}`,
            fmtS(s?.median),
            fmtS(s?.min),
            fmtS(s?.max),
            fmtS(beyond?.median),
            lostText,
            mode === 'async' ? YARDSTICK[profile][fault].toFixed(1) : '-',
          ]);
        }
      }
    }
  }
  const out = [formatTable(rows)];
  if (systems.includes('vigil') && systems.includes('patroni')) {
    const ratio: string[][] = [['mode', 'profile', 'fault', 'Vigil median s', 'Patroni median s', 'Vigil/Patroni']];
    for (const mode of modes) {
      for (const profile of profiles) {
        for (const fault of faults) {
          const v = medians.get(`vigil/${profile}/${mode}/${fault}`);
          const p = medians.get(`patroni/${profile}/${mode}/${fault}`);
          ratio.push([mode, profile, fault, fmtS(v), fmtS(p), v !== undefined && p !== undefined && p > 0 ? (v / p).toFixed(2) : '-']);
        }
      }
    }
    out.push('', formatTable(ratio));
  }
  out.push(
    '',
    'lost writes: acknowledged INSERTs absent on the final primary, total (per run). A commit answered with',
    '  "canceling wait for synchronous replication" is not an acknowledged write (counted apart, never lost).',
    'lease TTL: TTL etcd granted to the leader key\'s lease, i.e. the ttl the leader really used.',
    'median s - lease left: unavailability minus what the old leader\'s lease had left at the fault (etcd, whole',
    '  seconds): the time past the lease\'s expiry, independent of where in its loop the leader was hit.',
    'Patroni yardstick: Patroni 3.0.2 median measured earlier here, asynchronous mode only.',
    "Targets (issue 13, sync and quorum, default profile, host crash): median <= 5 s, 0 lost over >= 10 runs.",
  );
  for (const s of setups) if (s.skipped !== undefined) out.push(`${s.system}/${s.profile}/${s.mode}: ${s.skipped}`);
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
        mode: { type: 'string', default: 'async' },
        'vigil-extra': { type: 'string', multiple: true, default: [] },
        'patroni-extra': { type: 'string', multiple: true, default: [] },
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
  /** One value, a comma list, or both/all. */
  const pick = <T extends string>(flag: string, value: string, all: readonly T[]): T[] | undefined => {
    if (value === 'both' || value === 'all') return [...all];
    const vals = value.split(',').map((x) => x.trim()).filter(Boolean);
    const bad = vals.filter((x) => !(all as readonly string[]).includes(x));
    if (vals.length > 0 && bad.length === 0) return all.filter((a) => vals.includes(a));
    process.stderr.write(`Error: --${flag} must be one or more (comma-separated) of ${all.join(', ')}, or all, got ${JSON.stringify(value)}\n`);
    return undefined;
  };
  let systems = pick<SystemName>('system', v.system, ['vigil', 'patroni']);
  const profiles = pick<ProfileName>('profile', v.profile, ['default', 'fast']);
  const faults = pick<FaultName>('fault', v.fault, ['host-crash', 'postmaster-kill']);
  const modes = pick<ModeName>('mode', v.mode, ['async', 'sync', 'quorum']);
  if (systems === undefined || profiles === undefined || faults === undefined || modes === undefined) return 2;
  const extras: Record<SystemName, Doc[]> = { vigil: [], patroni: [] };
  try {
    extras.vigil = v['vigil-extra'].map(parseExtra);
    extras.patroni = v['patroni-extra'].map(parseExtra);
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }

  const why = patroniUnavailableReason();
  if (systems.includes('patroni') && why !== undefined) {
    log(`Patroni will not be measured: ${why}. Continuing with Vigil only.`);
    systems = systems.filter((s) => s !== 'patroni');
    if (systems.length === 0) return 1;
  }

  stopOnSignal(() => current?.stop() ?? Promise.resolve());

  const started = performance.now();
  log(`failover benchmark: systems ${systems.join(', ')}; modes ${modes.join(', ')}; profiles ${profiles.join(', ')}; faults ${faults.join(', ')}; ${runs} run(s) each`);
  const results: RunResult[] = [];
  const setups: Setup[] = [];
  // Vigil and Patroni one after the other for each mode and profile: side by side in one run.
  for (const mode of modes) {
    for (const profile of profiles) {
      for (const system of systems) {
        setups.push(await benchProfile(system, profile, mode, faults, runs, { keep: v.keep, extras: extras[system] }, results));
      }
    }
  }
  const table = report(results, setups, systems, profiles, modes, faults);
  process.stdout.write(`\n${table}\n\ntotal time ${(performance.now() - started) / 60_000 < 1 ? secs(performance.now() - started) + ' s' : ((performance.now() - started) / 60_000).toFixed(1) + ' min'}\n`);
  if (v.json !== undefined) {
    await writeFile(v.json, JSON.stringify({ date: new Date().toISOString(), runs, systems, modes, profiles, faults, extras, setups, results }, null, 2) + '\n');
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
