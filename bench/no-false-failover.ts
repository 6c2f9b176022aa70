// No-false-failover benchmark (issue 13, item 6): a three-node synchronous cluster under a steady
// write load, with both cores of this machine saturated by stress-ng and the primary's disk
// stalled for 2 s at a time (fsfreeze on the loop-mounted file system that holds the primary's
// node directory, bench/lib/disk-stall.ts), must see no failover at all. Counts leader changes,
// re-creations of the leader key, timeline changes and lost acknowledged writes, for Vigil and
// Patroni 3.0.2 on the same per-node YAML. Method and caveats: bench/README.md. Usage: --help.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { LocalCluster, PATRONI_DEFAULT_TIMING } from '../src/local/cluster.ts';
import { CLUSTER_CREDENTIALS, directEndpoints, log, sleep, tail } from './lib/common.ts';
import { readLeaderKey, waitHealthy } from './lib/cluster-ops.ts';
import { diskStallUnavailable, freeze, mountLoopDisk, removeLoopDisk, thaw, type LoopDisk } from './lib/disk-stall.ts';
import { mergeIntoFile, parseExtra, type Doc } from './lib/node-config.ts';
import { PatroniCluster, patroniUnavailableReason } from './lib/patroni.ts';
import { formatTable } from './lib/stats.ts';
import { missingIds, Writer } from './lib/workload.ts';

type SystemName = 'vigil' | 'patroni';
type ModeName = 'sync' | 'quorum';
const MODE_DCS: Record<ModeName, Record<string, unknown>> = {
  sync: { synchronous_mode: true, synchronous_node_count: 1 },
  quorum: { synchronous_mode: 'quorum', synchronous_node_count: 1 },
};
const SCOPE = 'bench';
const NAMESPACE = '/service/';
const TIMING = PATRONI_DEFAULT_TIMING;

const USAGE = `usage: npm run bench:stress -- [--duration S | --short] [--system vigil|patroni|both]
       [--mode sync|quorum] [--stall-every S] [--stall-ms MS] [--cpu N] [--no-cpu] [--no-disk]
       [--pause-ms MS] [--vigil-extra YAML]... [--patroni-extra YAML]... [--json FILE] [--keep]

A three-node cluster (synchronous_mode on by default; quorum = synchronous_mode quorum; Patroni 3.0.2
has no quorum mode), ttl 30 / loop_wait 10 / retry_timeout 10, under a steady write load (one client,
a pause of --pause-ms, default 10, after each INSERT) for --duration seconds (default 600; --short =
150), while stress-ng saturates the CPUs (--cpu workers, default 0 = one per CPU) and the primary's
node directory is frozen (fsfreeze) for --stall-ms (default 2000) every --stall-every seconds
(default 10). Prints, per system, the failovers (leader changes, leader key re-created, timeline
changes) and the acknowledged writes lost: the target is none of either.
--vigil-extra / --patroni-extra: YAML or JSON deep-merged into every node's configuration file.`;

interface Result {
  system: SystemName;
  mode: ModeName;
  durationS: number;
  stalls: number;
  /** Mean time a stall kept the file system frozen, ms (freeze returned -> thaw returned). */
  stallMeanMs: number | undefined;
  acked: number;
  syncCancelled: number;
  writeErrors: number;
  /** Longest time between two consecutive acknowledged writes, s. */
  maxGapS: number | undefined;
  leaderChanges: number;
  keyRecreated: number;
  timelineChanges: number;
  /** Samples (1 s apart) where the leader key could not be read or was absent. */
  keyMissingSamples: number;
  lost: number | undefined;
  events: string[];
  skipped?: string;
}

let cleanup: (() => Promise<void>) | undefined;

/** stress-ng burning `workers` CPUs (0 = all) until killed; its own process group. */
function startStress(workers: number): ChildProcess {
  const p = spawn('stress-ng', ['--cpu', String(workers), '--cpu-method', 'matrixprod', '--quiet'], { stdio: 'ignore', detached: true });
  p.on('error', (err) => log(`stress-ng: ${err.message}`));
  return p;
}

function stopStress(p: ChildProcess | undefined): void {
  if (p?.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(-p.pid, 'SIGTERM'); // its group: stress-ng and its workers, which we started
  } catch {
    // gone
  }
}

interface Opts {
  mode: ModeName;
  durationS: number;
  stallEveryS: number;
  stallMs: number;
  cpu: number | undefined;
  disk: boolean;
  pauseMs: number;
  keep: boolean;
  extras: Doc[];
}

async function benchSystem(system: SystemName, o: Opts): Promise<Result> {
  const r: Result = {
    system, mode: o.mode, durationS: o.durationS, stalls: 0, stallMeanMs: undefined, acked: 0, syncCancelled: 0, writeErrors: 0,
    maxGapS: undefined, leaderChanges: 0, keyRecreated: 0, timelineChanges: 0, keyMissingSamples: 0, lost: undefined, events: [],
  };
  const label = `${system}/${o.mode}`;
  if (system === 'patroni' && o.mode === 'quorum') {
    r.skipped = 'Patroni 3.0.2 has no quorum mode: not run';
    return r;
  }
  const baseDir = await mkdtemp(join(tmpdir(), `vigil-stress-${system}-${o.mode}-`));
  await chmod(baseDir, 0o755);
  const disks: LoopDisk[] = [];
  const Cls = system === 'vigil' ? LocalCluster : PatroniCluster;
  const c = new Cls({ baseDir, scope: SCOPE, nodes: 3, timing: TIMING, dcs: MODE_DCS[o.mode] });
  let stress: ChildProcess | undefined;
  let keepDir = o.keep;
  const teardown = async (): Promise<void> => {
    stopStress(stress);
    for (const d of disks) await thaw(d).catch(() => undefined);
    await c.stop().catch((err: unknown) => log(`stopping the cluster: ${String(err)}`));
    for (const d of disks) await removeLoopDisk(d);
  };
  cleanup = teardown;
  try {
    // Each node's directory on its own loop-mounted ext4 (LocalCluster names them node0..node2).
    if (o.disk) for (let i = 0; i < 3; i++) disks.push(await mountLoopDisk(join(baseDir, `node${i}.img`), join(baseDir, `node${i}`)));
    await c.prepare();
    // The agent's own log stays off the stalled disk: it is the agent's stdout, and a blocked write
    // there would freeze the agent's process, not just its data directory.
    await mkdir(join(baseDir, 'logs'), { recursive: true });
    for (const n of c.nodes) {
      n.logFile = join(baseDir, 'logs', `${n.name}.agent.log`);
      await mergeIntoFile(n.configFile, o.extras);
    }
    log(`${label}: starting etcd and 3 nodes in ${baseDir} (ttl ${TIMING.ttl}, loop_wait ${TIMING.loop_wait}, retry_timeout ${TIMING.retry_timeout})`);
    await c.startAll();
    const first = await waitHealthy(c, 300_000);
    const w = new Writer(directEndpoints(c), CLUSTER_CREDENTIALS, { pauseMs: o.pauseMs });
    await w.ensureTable();
    const k0 = await readLeaderKey(c.etcdEndpoint, NAMESPACE, SCOPE);
    if (k0 === undefined) throw new Error('no leader key in etcd although the cluster is healthy');
    const timelineOf = async (name: string): Promise<number | undefined> => {
      const t = (await c.api(name, '/patroni'))?.body?.['timeline'];
      return typeof t === 'number' ? t : undefined;
    };
    let holder = k0.holder;
    let createRevision = k0.createRevision;
    let timeline = await timelineOf(first);
    log(`${label}: healthy, primary ${first} (timeline ${timeline ?? '?'}); ${o.durationS} s of writes${o.cpu !== undefined ? `, stress-ng --cpu ${o.cpu}` : ''}${o.disk ? `, ${o.stallMs} ms disk stall of the primary every ${o.stallEveryS} s` : ''}`);

    const t0 = performance.now();
    const end = t0 + o.durationS * 1000;
    const at = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    w.start();
    if (o.cpu !== undefined) stress = startStress(o.cpu);

    const monitor = (async () => {
      while (performance.now() < end) {
        await sleep(1000);
        const k = await readLeaderKey(c.etcdEndpoint, NAMESPACE, SCOPE);
        if (k === undefined) {
          r.keyMissingSamples++;
          continue;
        }
        if (k.holder !== holder) {
          r.leaderChanges++;
          r.events.push(`${at()}: leader ${holder} -> ${k.holder}`);
          log(`${label}: FAILOVER at ${at()}: leader ${holder} -> ${k.holder}`);
        } else if (k.createRevision !== createRevision) {
          r.keyRecreated++;
          r.events.push(`${at()}: leader key of ${holder} re-created (revision ${createRevision} -> ${k.createRevision})`);
          log(`${label}: leader key re-created at ${at()} (same holder ${holder})`);
        }
        holder = k.holder;
        createRevision = k.createRevision;
        const t = await timelineOf(holder);
        if (t !== undefined && timeline !== undefined && t !== timeline) {
          r.timelineChanges++;
          r.events.push(`${at()}: timeline ${timeline} -> ${t}`);
        }
        if (t !== undefined) timeline = t;
      }
    })();

    const frozenMs: number[] = [];
    const stalls = (async () => {
      if (!o.disk) return;
      while (performance.now() + o.stallEveryS * 1000 < end) {
        await sleep(Math.max(0, o.stallEveryS * 1000 - o.stallMs));
        const d = disks[c.nodes.findIndex((n) => n.name === holder)];
        if (d === undefined) continue;
        await freeze(d);
        const frozenAt = performance.now();
        try {
          await sleep(o.stallMs);
        } finally {
          await thaw(d);
        }
        frozenMs.push(performance.now() - frozenAt);
      }
    })();

    await Promise.all([monitor, stalls]);
    stopStress(stress);
    await w.stop();
    r.stalls = frozenMs.length;
    r.stallMeanMs = frozenMs.length > 0 ? frozenMs.reduce((a, b) => a + b, 0) / frozenMs.length : undefined;
    r.acked = w.acks.length;
    r.syncCancelled = w.syncCancelled.length;
    r.writeErrors = w.errors;
    for (let i = 1; i < w.acks.length; i++) r.maxGapS = Math.max(r.maxGapS ?? 0, (w.acks[i]!.at - w.acks[i - 1]!.at) / 1000);
    const ports = new Set(w.acks.map((a) => a.serverPort));
    if (ports.size > 1) r.events.push(`writes acknowledged by ${ports.size} different nodes`);
    await waitHealthy(c, 300_000).catch((err: unknown) => r.events.push(`not healthy afterwards: ${String(err)}`));
    const missing = await missingIds(directEndpoints(c), CLUSTER_CREDENTIALS, w.acks.map((a) => a.id), { timeoutMs: 120_000 });
    r.lost = missing.length;
    if (missing.length > 0) r.events.push(`missing ids: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ' ...' : ''}`);
    if (r.leaderChanges + r.keyRecreated + r.timelineChanges + (r.lost ?? 0) > 0) keepDir = true;
    log(`${label}: done: ${r.leaderChanges} leader change(s), ${r.keyRecreated} key re-creation(s), ${r.timelineChanges} timeline change(s), ${r.lost} lost of ${r.acked} acknowledged`);
    return r;
  } catch (err) {
    keepDir = true;
    r.skipped = err instanceof Error ? err.message : String(err);
    log(`${label}: aborted: ${r.skipped}`);
    for (const n of c.nodes) log(`last lines of ${n.logFile}:\n${await tail(n.logFile, 15)}`);
    return r;
  } finally {
    if (keepDir) {
      // Keep the agent logs (off the loop disks) and the disk images (data directories, PostgreSQL logs).
      stopStress(stress);
      for (const d of disks) await thaw(d).catch(() => undefined);
      await c.stop().catch(() => undefined);
      for (const d of disks) await removeLoopDisk(d, true);
      log(`${label}: kept ${baseDir}: agent logs in logs/, each node's file system in nodeN.img (mount -o loop to read)`);
    } else {
      await teardown();
      await rm(baseDir, { recursive: true, force: true });
    }
    cleanup = undefined;
  }
}

function report(results: Result[]): string {
  const f = (x: number | undefined, d = 2): string => (x === undefined ? '-' : x.toFixed(d));
  const rows: string[][] = [['system', 'mode', 'run s', 'stalls', 'stall ms', 'acked', 'max gap s', 'leader changes', 'key re-created', 'timeline changes', 'key unreadable s', 'lost']];
  for (const r of results) {
    if (r.skipped !== undefined && r.acked === 0) {
      rows.push([r.system, r.mode, '-', '-', '-', '-', '-', '-', '-', '-', '-', `(${r.skipped})`]);
      continue;
    }
    rows.push([r.system, r.mode, String(r.durationS), String(r.stalls), f(r.stallMeanMs, 0), String(r.acked), f(r.maxGapS), String(r.leaderChanges), String(r.keyRecreated), String(r.timelineChanges), String(r.keyMissingSamples), r.lost === undefined ? '?' : String(r.lost)]);
  }
  const out = [formatTable(rows), ''];
  for (const r of results) for (const e of r.events) out.push(`${r.system}: ${e}`);
  for (const r of results) if (r.syncCancelled > 0) out.push(`${r.system}: ${r.syncCancelled} commit(s) answered "canceling wait for synchronous replication" (not counted as acknowledged)`);
  out.push(
    'leader changes: the leader key named another member (a failover); key re-created: same member, new key (its lease expired or it released it).',
    'max gap: longest time between two consecutive acknowledged writes (the stalls hold commits for their duration).',
    'Target (issue 13, item 6): no failover at all and no acknowledged write lost.',
  );
  return out.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string' },
        short: { type: 'boolean', default: false },
        system: { type: 'string', default: 'both' },
        mode: { type: 'string', default: 'sync' },
        'stall-every': { type: 'string', default: '10' },
        'stall-ms': { type: 'string', default: '2000' },
        cpu: { type: 'string', default: '0' },
        'no-cpu': { type: 'boolean', default: false },
        'no-disk': { type: 'boolean', default: false },
        'pause-ms': { type: 'string', default: '10' },
        'vigil-extra': { type: 'string', multiple: true, default: [] },
        'patroni-extra': { type: 'string', multiple: true, default: [] },
        json: { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const num = (flag: string, s: string, min: number): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} must be a number >= ${min}, got ${JSON.stringify(s)}`);
    return n;
  };
  let opts: Opts;
  let systems: SystemName[];
  const extras: Record<SystemName, Doc[]> = { vigil: [], patroni: [] };
  try {
    if (v.mode !== 'sync' && v.mode !== 'quorum') throw new Error(`--mode must be sync or quorum, got ${JSON.stringify(v.mode)}`);
    if (!['vigil', 'patroni', 'both'].includes(v.system)) throw new Error(`--system must be vigil, patroni or both, got ${JSON.stringify(v.system)}`);
    systems = v.system === 'both' ? ['vigil', 'patroni'] : [v.system as SystemName];
    opts = {
      mode: v.mode,
      durationS: v.duration !== undefined ? num('duration', v.duration, 10) : v.short ? 150 : 600,
      stallEveryS: num('stall-every', v['stall-every'], 1),
      stallMs: num('stall-ms', v['stall-ms'], 0),
      cpu: v['no-cpu'] ? undefined : num('cpu', v.cpu, 0),
      disk: !v['no-disk'],
      pauseMs: num('pause-ms', v['pause-ms'], 0),
      keep: v.keep,
      extras: [],
    };
    if (opts.disk && opts.stallMs >= opts.stallEveryS * 1000) throw new Error('--stall-ms must be shorter than --stall-every');
    extras.vigil = v['vigil-extra'].map(parseExtra);
    extras.patroni = v['patroni-extra'].map(parseExtra);
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (opts.disk) {
    const why = await diskStallUnavailable();
    if (why !== undefined) {
      process.stderr.write(`Error: disk stalls need loop mounts and fsfreeze: ${why} (or pass --no-disk)\n`);
      return 1;
    }
  }
  const whyNot = patroniUnavailableReason();
  if (systems.includes('patroni') && whyNot !== undefined) {
    log(`Patroni will not be measured: ${whyNot}`);
    systems = systems.filter((s) => s !== 'patroni');
    if (systems.length === 0) return 1;
  }
  const onSignal = (): void => {
    log('interrupted; thawing the disks and stopping the cluster');
    void (cleanup?.() ?? Promise.resolve()).catch(() => undefined).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: Result[] = [];
  for (const s of systems) results.push(await benchSystem(s, { ...opts, extras: extras[s] }));
  process.stdout.write(`\n${report(results)}\n`);
  if (v.json !== undefined) {
    await writeFile(v.json, JSON.stringify({ date: new Date().toISOString(), opts, systems, extras, results }, null, 2) + '\n');
    log(`raw results written to ${v.json}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`no-false-failover benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(1));
  },
);
