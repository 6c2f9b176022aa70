// The simulated ports of the node driver (src/agent/ports.ts), for the simulator (tests only): the
// same driver as production's, over the world's PostgreSQL (./pg.ts, ./wal.ts), its etcd
// (./dcs-client.ts), the other nodes' REST APIs, the fencer and the simulated clock.
//
// Time: every port call completes at once, except the PostgreSQL work of a background task, which
// takes the task's duration (TASK_MS) on the simulated clock: the first slow call of the task
// (initdb excepted: the data directory appears at once, as in the world before) waits until
// task start + TASK_MS[kind]; the calls after it complete at once. Sleeps and timeouts are timers
// of the world's clock. A port of an agent that died never completes again (its timers are
// dropped), as a killed process never returns.

import type { NodeDriver } from '../agent/driver.ts';
import type { Clock, FencePort, HooksPort, PeersPort, PgObservation, PgPort, PgProbe } from '../agent/ports.ts';
import { failoverPriority, isNoFailover } from '../core/election.ts';
import type { LocalPg, PeerStatus, TaskKind } from '../core/model.ts';
import { PgUnavailableError } from '../postgres/errors.ts';
import { numberToLsn } from '../postgres/lsn.ts';
import { initdb, promotePg, setSsn, startPg, stopPg } from './pg-effects.ts';
import { localSync, senders } from './replication.ts';
import type { SimNode, World } from './world.ts';
import { isPrefix, truncate, walEnd } from './wal.ts';

/** How long each background task takes (simulated ms). */
export const TASK_MS: Record<TaskKind, number> = {
  bootstrap: 3000,
  clone: 5000,
  start: 2000,
  promote: 1000,
  demote: 1500,
  rewind: 3000,
  reinitialize: 6000,
  restart: 3000,
  stop: 1500,
};

/** One incarnation of a node's agent: its timers die with it. */
export interface Incarnation {
  alive: boolean;
  driver: NodeDriver | undefined;
}

export function simClock(w: World, inc: Incarnation): Clock {
  return {
    now: () => w.now,
    wallNow: () => w.wallNow(),
    sleep: (ms) => w.timer(w.now + ms, inc),
    timeout: (ms) => {
      const c = new AbortController();
      void w.timer(w.now + ms, inc).then(() => c.abort(new Error(`timed out after ${ms} ms`)));
      return c.signal;
    },
  };
}

/** The member a conn_url or api_url names (postgres://n1:5432/..., http://n1:8008/...). */
function nodeOf(w: World, url: string): SimNode | undefined {
  try {
    return w.nodes.get(new URL(url).hostname);
  } catch {
    return undefined;
  }
}

export function simPgPort(w: World, n: SimNode, inc: Incarnation): PgPort {
  /** The task whose duration was already spent. */
  let charged: object | undefined;
  /** The task's PostgreSQL work: the first slow call of a running task waits for its end. */
  const work = async (): Promise<void> => {
    const t = inc.driver?.task;
    if (t === undefined || t.state !== 'running' || charged === t) return;
    charged = t;
    await w.timer(t.startedAt + TASK_MS[t.kind], inc);
  };
  const data = () => {
    const d = n.pg.data;
    if (d === undefined) throw new Error('data directory is empty');
    return d;
  };
  const source = (connUrl: string): SimNode => {
    const s = nodeOf(w, connUrl);
    if (s === undefined || s.pg.data === undefined || !s.pg.running || !w.reachable(n, s)) throw new PgUnavailableError(`could not connect to ${s?.name ?? connUrl}`);
    return s;
  };
  const copyFrom = (s: SimNode): void => {
    const sd = s.pg.data as NonNullable<SimNode['pg']['data']>;
    n.pg.stop('immediate');
    n.pg.data = { sysid: sd.sysid, wal: truncate(sd.wal, walEnd(sd.wal)), standby: true, upstream: s.name, controlState: 'shut down in recovery' };
  };
  return {
    observe: async (): Promise<PgObservation> => localPg(w, n),
    probe: async (): Promise<PgProbe> => {
      if (!n.pg.running) throw new PgUnavailableError('could not connect to server: no postmaster');
      const inRecovery = n.pg.data?.standby ?? false;
      // pg_stat_replication as the snapshot refresher reads it (the sync step's watch between ticks).
      // A simulated standby stops streaming the moment it cannot reach its upstream (as after a TCP
      // reset): no sender is ever silent, so silent_ms and the SyncRep waiters are left out (read
      // as 0: core/sync-stall.ts never finds a stalled sender here).
      const replication = inRecovery ? [] : senders(w, n).map((s) => ({ pid: s.pid, usename: 'replicator', application_name: s.name, client_addr: null, state: s.state, sync_state: s.syncState, sync_priority: null, write_lsn: s.writeLsn, flush_lsn: s.flushLsn, replay_lsn: s.replayLsn }));
      // pg_stat_wal_receiver on a standby (the fast failover's detection and detachment).
      const end = n.pg.data === undefined ? undefined : walEnd(n.pg.data.wal);
      const walReceiver = inRecovery && n.pg.streaming ? { status: 'streaming', receivedTli: n.pg.timeline, senderHost: n.pg.data?.upstream ?? null, senderPort: 5432, slotName: null } : undefined;
      return { timeline: n.pg.timeline, inRecovery, replication, walReceiver, ...(inRecovery ? { receiveLsn: end } : { flushLsn: end }) } as unknown as PgProbe;
    },
    isRunning: async () => (n.pg.running ? { running: true, pid: 1 } : { running: false }),
    initdb: async () => {
      if (n.pg.data !== undefined) throw new Error('data directory is not empty');
      initdb(w, n);
    },
    postBootstrap: async () => undefined,
    writeConfig: async (opts) => {
      const d = data();
      // A running server keeps its role until restarted; the upstream follows a reload.
      if (!n.pg.running) {
        d.standby = opts.role === 'replica';
        d.upstream = opts.upstream?.name ?? null;
      } else if (opts.role === 'replica' && d.standby) d.upstream = opts.upstream?.name ?? null;
      return { changed: false, needsRestart: false, restartReasons: [], reloadParams: [], ignored: [] };
    },
    reload: async () => undefined,
    start: async () => {
      await work();
      data();
      startPg(n);
    },
    stop: async (mode) => {
      await work();
      stopPg(w, n, mode === 'immediate' ? 'immediate' : 'fast');
    },
    promote: async () => {
      await work();
      if (!n.pg.running) throw new Error('postgres is not running');
      if (n.pg.data?.standby === true) promotePg(w, n);
    },
    pendingRestart: async () => ({}),
    checkpoint: async () => {
      await work();
    },
    removeDataDir: async () => {
      n.pg.stop('immediate');
      n.pg.data = undefined;
    },
    basebackup: async (from) => {
      if (from === undefined) throw new Error('the simulation has no replica methods that work without a leader');
      await work();
      copyFrom(source(from.connUrl));
    },
    rewind: async (from) => {
      await work();
      const s = source(from.connUrl);
      if (n.pg.data === undefined || s.pg.data?.sysid !== n.pg.data.sysid) throw new Error('pg_rewind: source and target clusters are from different systems');
      copyFrom(s);
    },
    ensureSlots: async () => undefined,
    // The simulator does not model slots (LocalPg.slots stays undefined, so none are planned).
    applySlotOps: async () => undefined,
    fetchLogicalSlots: async () => [],
    writeLogicalSlots: async () => undefined,
    // An idealised pg_rewind --dry-run: a true comparison of the histories.
    checkDivergence: async (leader) => {
      const l = nodeOf(w, leader.connUrl);
      const ld = l?.pg.data;
      const mine = n.pg.data;
      if (l === undefined || ld === undefined || mine === undefined || !l.pg.running || !w.reachable(n, l)) throw new PgUnavailableError(`could not connect to ${l?.name ?? leader.connUrl}`);
      return isPrefix(mine.wal, ld.wal) ? 'not_needed' : 'need';
    },
    setSyncStandbyNames: async (value) => setSsn(n, value),
    controlData: async (): Promise<Record<string, string>> => {
      const lsn = n.pg.lsn;
      return lsn === undefined ? {} : { 'Latest checkpoint location': numberToLsn(lsn) };
    },
    timelineHistory: async (tl) => {
      const wal = n.pg.data?.wal ?? [];
      return wal
        .slice(0, -1)
        .filter((s) => s.tl < tl)
        .map((s) => `${s.tl}\t${numberToLsn(s.end)}\tno recovery target specified`)
        .join('\n');
    },
  };
}

export function simPeersPort(w: World, n: SimNode): PeersPort {
  return {
    fetchStatuses: async (members) => members.map((m) => peerStatus(w, n, m.name)),
    checkFailsafe: async (me, topology, body) => {
      if (topology === undefined || !(me in topology)) return { ok: false, reason: `failsafe check failed: ${me} is not a member of /failsafe` };
      const refused: string[] = [];
      for (const name of Object.keys(topology)) {
        if (name === me) continue;
        const to = w.nodes.get(name);
        const d = to?.agent?.driver;
        if (to === undefined || d === undefined || !w.reachable(n, to) || to.pg.writable) refused.push(name);
        else d.failsafeReceived({ name: me, connUrl: body.conn_url, apiUrl: body.api_url, slots: undefined });
      }
      return refused.length === 0 ? { ok: true, reason: 'failsafe check passed' } : { ok: false, reason: `failsafe check failed: ${refused.join(', ')} did not accept` };
    },
  };
}

/** The fencer: a process of its own (its deadline lives on the node and outlives the agent). */
export function simFencePort(w: World, n: SimNode): FencePort {
  return {
    arm: async (req) => {
      if (w.fencing) n.fenceDeadline = req.refreshStartMs + req.timeoutMs;
      return { ok: true };
    },
    disarm: async () => {
      n.fenceDeadline = undefined;
      return true;
    },
  };
}

/** What PostgresController.observe() reports. */
export function localPg(w: World, n: SimNode): LocalPg {
  const pg = n.pg;
  const d = pg.data;
  const lsn = pg.running ? pg.lsn : undefined;
  const local: LocalPg = {
    dataDirEmpty: d === undefined,
    sysid: d?.sysid,
    running: pg.running,
    ready: pg.running,
    inRecovery: d?.standby ?? false,
    walLsn: lsn,
    receiveLsn: d?.standby === true ? lsn : undefined,
    replayLsn: d?.standby === true ? lsn : undefined,
    timeline: pg.timeline,
    streaming: pg.running && pg.streaming,
    upstream: d?.upstream ?? null,
    controlState: d?.controlState,
    rewindable: n.opts.rewindable ?? true,
    crashed: n.crashed && !pg.running,
  };
  if (pg.running && !local.inRecovery) local.sync = localSync(w, n);
  else {
    n.ssnSeen = undefined;
    n.ssnSetAt = undefined;
  }
  return local;
}

/** GET /patroni on `name`, as seen from `from` (what api/peers.ts would parse). */
export function peerStatus(w: World, from: SimNode, name: string): PeerStatus {
  const unreachable: PeerStatus = { name, reachable: false, inRecovery: true, walPosition: 0, timeline: undefined, nofailover: false, failoverPriority: 1, watchdogFailed: false };
  const to = w.nodes.get(name);
  const a = to?.agent;
  if (to === undefined || a === undefined || a.exited !== undefined || !w.reachable(from, to)) return unreachable;
  const isPrimary = a.role === 'primary' || to.pg.writable;
  if (!isPrimary && !to.pg.running) return unreachable; // no xlog in the answer: Patroni ignores it
  const nofailover = isNoFailover(to.tags);
  return {
    name: to.name,
    reachable: true,
    inRecovery: !isPrimary,
    walPosition: isPrimary ? 0 : (to.pg.lsn ?? 0),
    timeline: to.pg.timeline,
    nofailover,
    failoverPriority: nofailover ? 0 : failoverPriority(to.tags),
    watchdogFailed: false,
  };
}

/** The user's scripts: the simulated nodes configure none; any that were would end at once with exit code 0. */
export function simHooksPort(): HooksPort {
  return {
    spawn: async () => ({ code: 0 }),
    run: async () => ({ code: 0 }),
  };
}
