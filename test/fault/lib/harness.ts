// A Vigil cluster inside network namespaces (netns.ts), its DCS (etcd, or a real ZooKeeper) in its
// own namespace, the checker's writers in the root namespace, and the fault injectors. The fault
// kinds keep their etcd names on either DCS (`partition-primary-etcd` cuts the primary from
// whichever DCS runs; `etcd-restart` restarts it); a ZooKeeper run's records say `zookeeper`. Every injector is bounded in time and
// heals what it broke before returning; close() always tears everything down.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

import { LocalCluster, SUPERUSER, FAST_TIMING, type Timing } from '../../../src/local/cluster.ts';
import { killGroup } from '../../../src/postgres/exec.ts';
import { waitHealthy, observe } from '../../../bench/lib/cluster-ops.ts';
import { nsEtcd, type NsEtcd } from './etcd-ns.ts';
import { nsZookeeper } from './zookeeper-ns.ts';
import { setupTopology, teardownTopology, nsPids, linkDown, linkUp, cut, heal, throttleFrom, unthrottle, netemDelay, SUBNET, ETCD_HOST, type Host, type Topology } from './netns.ts';
import { FaultWriter, ensureTable, readIds, type Endpoint, type Credentials } from './writer.ts';
import { check, isSynchronous, type CheckReport, type FaultRecord, type ReplicationMode } from './checker.ts';
import { readProcs, selectFreezeTargets, isFencer, procState } from './procs.ts';
import { mergeIntoFile, type Doc } from '../../../bench/lib/node-config.ts';
import { hostCrash } from '../../../bench/lib/measure.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Faults Vigil survives on its own: no split brain, losses only as the replication mode allows. */
export const SAFE_FAULT_KINDS = [
  'partition-primary',
  'partition-primary-etcd',
  'isolate-replica',
  'kill-agent',
  'kill-postgres',
  'etcd-restart',
  'switchover',
] as const;
/**
 * Faults only fencing makes safe (Patroni relies on the watchdog here): the primary's agent dead
 * for longer than ttl leaves PostgreSQL running as a primary while a replica is promoted; a frozen
 * primary, once resumed, could accept writes until its agent notices it lost the lock. The fencer
 * (src/fence/) must kill PostgreSQL before the lock can expire. Asserted like every other fault.
 */
export const FENCING_FAULT_KINDS = ['kill-agent-long', 'freeze-primary'] as const;
export const FAULT_KINDS = [...SAFE_FAULT_KINDS, ...FENCING_FAULT_KINDS] as const;
/**
 * The faults of the fast-failover rule (issue 13; docs/guarantees.md section 7), run by
 * VIGIL_FAULTS=partitions and not drawn by the random sequence: `partition-primary-standbys` cuts
 * the primary from its replicas but not from etcd or the clients (no failover is expected: its
 * lease stays fresh) for ttl + 2*loop_wait s; `host-crash` SIGKILLs the primary's agent, fencer and
 * PostgreSQL at once and starts the agent again once another node is primary.
 */
export const PARTITION_FAULT_KINDS = ['partition-primary-standbys', 'host-crash'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number] | (typeof PARTITION_FAULT_KINDS)[number];
/** Faults where the old primary is cut off while it still has unreplicated WAL: with +lag, async may lose. */
export const FAILOVER_FAULT_KINDS = ['partition-primary', 'partition-primary-etcd', 'kill-agent-long', 'freeze-primary', 'kill-postgres', 'switchover'] as const satisfies readonly FaultKind[];

/**
 * The bootstrap.dcs keys of a replication mode. quorum with synchronous_node_count 1 over two
 * replicas: a commit waits for either replica (ANY 1), and a failover candidate must be in /sync.
 */
export function replicationDcs(mode: ReplicationMode): Record<string, unknown> {
  switch (mode) {
    case 'async':
      return { synchronous_mode: false };
    case 'sync':
      return { synchronous_mode: true, synchronous_node_count: 1 };
    case 'sync-strict':
      return { synchronous_mode: true, synchronous_mode_strict: true, synchronous_node_count: 1 };
    case 'quorum':
      return { synchronous_mode: 'quorum', synchronous_node_count: 1 };
  }
}

export interface FaultOptions {
  /** Slow the WAL stream to the replicas during the fault (see netns.throttleFrom). */
  lag?: boolean;
}

export const MAIN_WRITER = 'main';

/** The DCS the agents run on: etcd v3, or a real ZooKeeper 3.8 (`zookeeper` section). */
export const FAULT_DCS = ['etcd', 'zookeeper'] as const;
export type FaultDcs = (typeof FAULT_DCS)[number];

export class FaultCluster {
  readonly cluster: LocalCluster;
  /** The DCS server (etcd or ZooKeeper) in its namespace; stop()/start() is the DCS-down fault. */
  readonly etcd: NsEtcd;
  readonly faults: FaultRecord[] = [];
  readonly writers: FaultWriter[] = [];
  readonly log: string[] = [];
  private generation = 0;
  private constructor(
    readonly base: string,
    readonly topo: Topology,
    readonly timing: Timing,
    readonly maxLag: number,
    readonly replication: ReplicationMode,
    readonly dcsKind: FaultDcs,
  ) {
    this.etcd = dcsKind === 'zookeeper' ? nsZookeeper(ETCD_HOST, join(base, 'zookeeper')) : nsEtcd(ETCD_HOST, join(base, 'etcd'));
    this.cluster = new LocalCluster({
      baseDir: base,
      nodes: topo.nodes.length,
      scope: 'faults',
      timing,
      ...(dcsKind === 'zookeeper'
        ? { store: { section: 'zookeeper', settings: { hosts: [this.etcd.endpoint] } } }
        : { etcdEndpoint: this.etcd.endpoint }),
      hosts: topo.nodes.map((h) => h.ip),
      pgHba: [`host all all ${SUBNET} scram-sha-256`, `host replication all ${SUBNET} scram-sha-256`],
      dcs: { maximum_lag_on_failover: maxLag, ...replicationDcs(replication) },
      wrap: ({ index }) => ({ command: 'ip', args: ['netns', 'exec', topo.nodes[index]!.ns] }),
      logLevel: 'debug',
    });
  }

  /** Builds the topology, starts the DCS and the agents, waits for a healthy cluster, creates the table. */
  /** `extra`: YAML/JSON documents deep-merged into every node's configuration file (VIGIL_FAULTS_VIGIL_EXTRA). */
  static async start(opts: { nodes?: number; timing?: Timing; maximumLagOnFailover?: number; replication?: ReplicationMode; dcs?: FaultDcs; extra?: Doc[] } = {}): Promise<FaultCluster> {
    const replication = opts.replication ?? 'async';
    const dcs = opts.dcs ?? 'etcd';
    const topo = await setupTopology(opts.nodes ?? 3);
    const base = await mkdtemp(join(tmpdir(), `vigil-faults-${dcs === 'etcd' ? '' : `${dcs}-`}${replication}-`));
    const fc = new FaultCluster(base, topo, opts.timing ?? FAST_TIMING, opts.maximumLagOnFailover ?? 1048576, replication, dcs);
    try {
      await fc.etcd.start();
      await fc.cluster.prepare();
      for (const n of fc.cluster.nodes) await mergeIntoFile(n.configFile, opts.extra ?? []);
      await fc.cluster.startAll();
      await waitHealthy(fc.cluster, 120_000);
      await ensureTable(fc.endpoints(), fc.cred());
    } catch (err) {
      await fc.close(true);
      throw err;
    }
    return fc;
  }

  endpoints(): Endpoint[] {
    return this.cluster.nodes.map((n) => ({ name: n.name, host: n.host, port: n.pgPort }));
  }

  cred(): Credentials {
    return { user: SUPERUSER.username, password: SUPERUSER.password, database: 'postgres' };
  }

  hostOf(node: string): Host {
    const i = this.cluster.nodes.findIndex((n) => n.name === node);
    const h = this.topo.nodes[i];
    if (h === undefined) throw new Error(`no host for ${node}`);
    return h;
  }

  /** The main writer (any primary) plus one sentinel pinned to each node; ids never overlap. */
  startWriters(): void {
    const eps = this.endpoints();
    // Each call gets its own id range, so writers of a later scenario never collide with rows left
    // by an earlier one.
    const base = ++this.generation * 1_000_000_000;
    const ws = [
      new FaultWriter(MAIN_WRITER, eps, this.cred(), { firstId: base }),
      ...eps.map((ep, i) => new FaultWriter(`sentinel-${ep.name}`, [ep], this.cred(), { firstId: base + (i + 1) * 100_000_000, pauseMs: 20 })),
    ];
    for (const w of ws) {
      this.writers.push(w);
      w.start();
    }
  }

  async stopWriters(): Promise<void> {
    await Promise.all(this.writers.map((w) => w.stop()));
  }

  async primary(timeoutMs = 120_000): Promise<string> {
    return waitHealthy(this.cluster, timeoutMs);
  }

  private note(s: string): void {
    this.log.push(`${(performance.now() / 1000).toFixed(1)}s ${s}`);
  }

  /** Waits (at most maxMs) until a node other than `old` answers /primary; true if one did. */
  private async waitNewPrimary(old: string, maxMs: number): Promise<boolean> {
    const deadline = performance.now() + maxMs;
    while (performance.now() < deadline) {
      const p = await this.cluster.primaries();
      if (p.some((x) => x !== old)) return true;
      await sleep(250);
    }
    return false;
  }

  /**
   * Synchronous modes: waits (at most maxMs) until the primary's GET /cluster lists a synchronous
   * (or quorum) standby, i.e. /sync names one, so that a fault starts from the steady state the
   * mode promises; a fault injected before that finds nobody eligible to take over (not in /sync)
   * and shows only that the cluster waits, not how it fails over. Throws when none appears.
   */
  /** Waits until `primary` lists a synchronous (or quorum) standby; returns those standbys' names. */
  async waitSyncStandby(primary: string, maxMs = 60_000): Promise<string[]> {
    const n = this.cluster.node(primary);
    const deadline = performance.now() + maxMs;
    let last = '';
    while (performance.now() < deadline) {
      try {
        const res = await fetch(`http://${n.host}:${n.apiPort}/cluster`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { members?: { name?: string; role?: string }[] };
        const roles = (body.members ?? []).map((m) => `${m.name}:${m.role}`);
        last = roles.join(', ');
        const sync = (body.members ?? []).filter((m) => m.role === 'sync_standby' || m.role === 'quorum_standby').map((m) => m.name ?? '');
        if (sync.length > 0) return sync;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await sleep(250);
    }
    throw new Error(`no synchronous standby listed by ${primary} within ${maxMs} ms (last: ${last})`);
  }

  /** Replication lag (bytes) of the slowest streaming replica as seen on the primary. */
  async replicaLag(primary: string): Promise<number | undefined> {
    const c = new pg.Client({ ...this.cluster.connParams(primary), connectionTimeoutMillis: 1000, statement_timeout: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ lag: string | null }>(`SELECT max(pg_current_wal_lsn() - flush_lsn)::text AS lag FROM pg_stat_replication`);
      const v = r.rows[0]?.lag;
      return v === null || v === undefined ? undefined : Number(v);
    } catch {
      return undefined;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /**
   * Slows the WAL stream from `primary` to every other node. In synchronous modes the writer can
   * only go as fast as the standbys that acknowledge its commits, so throttling every replica alike
   * leaves none of them behind: there `acking` (the synchronous standby, or in quorum mode one of
   * the voters) gets `rate` and every other replica an eighth of it, so that one replica really
   * lags (it must never be the one promoted, and nothing acknowledged may be lost).
   */
  async startLag(primary: string, acking?: readonly string[], rate = 200): Promise<void> {
    const port = this.cluster.node(primary).pgPort;
    const fast = acking === undefined ? undefined : acking.slice(0, 1);
    for (const n of this.cluster.nodes) {
      if (n.name === primary) continue;
      const r = fast === undefined || fast.includes(n.name) ? rate : Math.max(1, Math.floor(rate / 8));
      await throttleFrom(this.hostOf(n.name), port, `${r}kbit`);
    }
  }

  async stopLag(): Promise<void> {
    for (const n of this.cluster.nodes) await unthrottle(this.hostOf(n.name));
  }

  /** netem delay on the replicas' links, where the kernel supports it. */
  async startNetemDelay(primary: string, ms: number): Promise<void> {
    for (const n of this.cluster.nodes) if (n.name !== primary) await netemDelay(this.hostOf(n.name), ms);
  }

  private signalNs(host: Host, sig: NodeJS.Signals): Promise<void> {
    return nsPids(host.ns).then((pids) => {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          // gone
        }
      }
    });
  }

  /**
   * SIGSTOPs `node`'s agent and PostgreSQL (postmaster first, then every descendant of either),
   * never a fencer process (it plays the watchdog; procs.ts). Rescans until no new descendant
   * appears (a process forked between scan and stop), at most 5 rounds. Returns the stopped pids
   * (to SIGCONT exactly those) and the fencer pids seen in the namespace, which it checks are
   * not stopped.
   */
  async freeze(node: string): Promise<{ stopped: number[]; fencers: number[] }> {
    const host = this.hostOf(node);
    const agent = this.cluster.node(node).process?.pid;
    const postmaster = this.cluster.postmasterPid(node);
    const roots = [agent, postmaster].filter((p): p is number => p !== undefined);
    const stopped = new Set<number>();
    let fencers: number[] = [];
    for (let round = 0; round < 5; round++) {
      const procs = await readProcs(await nsPids(host.ns));
      fencers = procs.filter(isFencer).map((p) => p.pid);
      const fresh = selectFreezeTargets(procs, roots, postmaster).filter((p) => !stopped.has(p));
      if (fresh.length === 0) break;
      for (const pid of fresh) {
        try {
          process.kill(pid, 'SIGSTOP');
          stopped.add(pid);
        } catch {
          // exited meanwhile
        }
      }
    }
    for (const f of fencers) {
      if ((await procState(f)) === 'T') {
        this.thaw([...stopped, f]);
        throw new Error(`freeze stopped the fencer (pid ${f}): it must keep running`);
      }
    }
    return { stopped: [...stopped], fencers };
  }

  /** SIGCONTs the pids freeze() stopped. */
  thaw(pids: readonly number[]): void {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone (e.g. killed by the fencer)
      }
    }
  }

  /**
   * Injects one fault against the current primary (or a replica), holds it for a bounded time,
   * heals it, waits until the cluster is healthy again and records the timings.
   */
  async inject(kind: FaultKind, opts: FaultOptions = {}): Promise<FaultRecord> {
    const primaryBefore = await this.primary();
    const acking = isSynchronous(this.replication) ? await this.waitSyncStandby(primaryBefore) : undefined;
    const replicas = this.cluster.nodes.map((n) => n.name).filter((n) => n !== primaryBefore);
    const ph = this.hostOf(primaryBefore);
    const ttlMs = this.timing.ttl * 1000;
    const maxHold = ttlMs * 3;
    let note = '';
    if (opts.lag) {
      await this.startLag(primaryBefore, acking);
      // Let the replicas fall behind a little before the fault proper.
      const deadline = performance.now() + 10_000;
      let lag = 0;
      while (performance.now() < deadline && lag < 256 * 1024) {
        await sleep(200);
        lag = (await this.replicaLag(primaryBefore)) ?? 0;
      }
      note = `lag ${Math.round(lag / 1024)} KiB at injection`;
    }
    const start = performance.now();
    const label = this.dcsKind === 'etcd' ? kind : kind.replace('etcd', this.dcsKind);
    this.note(`inject ${label} on ${primaryBefore}${opts.lag ? ' (lagging replicas)' : ''}`);
    try {
      switch (kind) {
        case 'partition-primary':
          await linkDown(ph);
          try {
            if (!(await this.waitNewPrimary(primaryBefore, maxHold))) note = [note, 'no failover while partitioned'].filter(Boolean).join('; ');
            await sleep(2000);
          } finally {
            await linkUp(ph);
          }
          break;
        case 'partition-primary-etcd':
          await cut(ph, ETCD_HOST);
          try {
            if (!(await this.waitNewPrimary(primaryBefore, maxHold))) note = [note, `no failover while cut from ${this.dcsKind}`].filter(Boolean).join('; ');
            await sleep(2000);
          } finally {
            await heal(ph, ETCD_HOST);
          }
          break;
        case 'partition-primary-standbys':
          for (const r of replicas) await cut(ph, this.hostOf(r));
          try {
            await sleep(ttlMs + 2 * this.timing.loop_wait * 1000);
          } finally {
            for (const r of replicas) await heal(ph, this.hostOf(r));
          }
          break;
        case 'host-crash': {
          hostCrash(this.cluster, primaryBefore); // agent, PostgreSQL and fencer at once
          try {
            if (!(await this.waitNewPrimary(primaryBefore, maxHold))) note = [note, 'no failover after the host crash'].filter(Boolean).join('; ');
          } finally {
            this.cluster.startAgent(primaryBefore);
          }
          break;
        }
        case 'isolate-replica': {
          const r = this.hostOf(replicas[0]!);
          await linkDown(r);
          try {
            await sleep(ttlMs);
          } finally {
            await linkUp(r);
          }
          break;
        }
        case 'kill-agent':
          // Shorter than ttl: the restarted agent must find its running primary and keep the lock.
          this.cluster.killAgent(primaryBefore, 'SIGKILL');
          await sleep(Math.min(3000, ttlMs / 3));
          this.cluster.startAgent(primaryBefore);
          break;
        case 'kill-agent-long':
          // Longer than ttl: the leader key expires while PostgreSQL keeps running as a primary
          // with nobody to demote it (Patroni relies on the watchdog here).
          this.cluster.killAgent(primaryBefore, 'SIGKILL');
          try {
            if (!(await this.waitNewPrimary(primaryBefore, maxHold))) note = [note, 'no failover while the agent was dead'].filter(Boolean).join('; ');
            await sleep(2000);
          } finally {
            this.cluster.startAgent(primaryBefore);
          }
          break;
        case 'kill-postgres':
          killGroup(this.cluster.postmasterPid(primaryBefore), 'SIGKILL');
          break;
        case 'freeze-primary': {
          // Agent + PostgreSQL only; the fencer keeps running like a hardware watchdog would.
          const fz = await this.freeze(primaryBefore);
          note = [note, `froze ${fz.stopped.length} pids, fencer ${fz.fencers.length ? `${fz.fencers.join(',')} left running` : 'none seen'}`].filter(Boolean).join('; ');
          try {
            if (!(await this.waitNewPrimary(primaryBefore, maxHold))) note = [note, 'no failover while frozen'].filter(Boolean).join('; ');
            await sleep(1000);
          } finally {
            this.thaw(fz.stopped);
          }
          break;
        }
        case 'etcd-restart':
          await this.etcd.stop();
          try {
            await sleep(this.timing.loop_wait * 1000 + 2 * this.timing.retry_timeout * 1000 + 2000);
          } finally {
            await this.etcd.start();
          }
          break;
        case 'switchover': {
          const cand = replicas[Math.floor(Math.random() * replicas.length)]!;
          const n = this.cluster.node(primaryBefore);
          try {
            const res = await fetch(`http://${n.host}:${n.apiPort}/switchover`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ leader: primaryBefore, candidate: cand }),
              signal: AbortSignal.timeout(90_000),
            });
            note = [note, `to ${cand}: ${res.status} ${(await res.text()).trim().slice(0, 60)}`].filter(Boolean).join('; ');
          } catch (err) {
            note = [note, `to ${cand}: ${err instanceof Error ? err.message : String(err)}`].filter(Boolean).join('; ');
          }
          break;
        }
      }
    } finally {
      if (opts.lag) await this.stopLag();
    }
    const healed = performance.now();
    this.note(`healed ${label}`);
    let primaryAfter: string | undefined;
    try {
      primaryAfter = await this.primary(180_000);
    } catch (err) {
      const h = await observe(this.cluster);
      throw new Error(`cluster did not recover from ${label}: ${err instanceof Error ? err.message : String(err)}; now ${JSON.stringify(h)}`, { cause: err });
    }
    const recovered = performance.now();
    this.note(`recovered from ${label}: primary ${primaryAfter}`);
    const rec: FaultRecord = { name: `${label}${opts.lag ? '+lag' : ''}`, start, healed, recovered, primaryBefore, primaryAfter, ...(note ? { note } : {}) };
    this.faults.push(rec);
    return rec;
  }

  /** Stops the writers and checks everything they recorded against the final primary. */
  async verify(): Promise<CheckReport> {
    await this.stopWriters();
    const final = await this.primary();
    const ep = this.endpoints().find((e) => e.name === final)!;
    const present = await readIds(ep, this.cred());
    return check({
      acks: this.writers.flatMap((w) => w.acks),
      mainWriter: MAIN_WRITER,
      present,
      faults: this.faults,
      ttlSeconds: this.timing.ttl,
      maximumLagOnFailover: this.maxLag,
    });
  }

  /** Tail of a node's agent.log (for reports). */
  agentLogPath(node: string): string {
    return this.cluster.node(node).logFile;
  }

  /** Stops writers, agents, PostgreSQL, the DCS and removes the topology; keepDir keeps the logs. */
  async close(keepDir = false): Promise<void> {
    try {
      await this.stopWriters();
      // Frozen processes would never exit on SIGTERM.
      for (const h of this.topo.nodes) await this.signalNs(h, 'SIGCONT');
      await this.stopLag().catch(() => undefined);
      await this.cluster.stop().catch(() => undefined);
      await this.etcd.stop().catch(() => undefined);
    } finally {
      await teardownTopology(this.topo.nodes.length);
      if (!keepDir) await rm(this.base, { recursive: true, force: true });
    }
  }
}
