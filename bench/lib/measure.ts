// One measured fault and one measured switchover on a healthy cluster, seen from a client that
// inserts rows continuously (bench/lib/workload.ts). Shared by bench/failover.ts, bench/switchover.ts
// and bench/backends.ts; the method is described in bench/README.md.

import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import type { LocalCluster, Timing } from '../../src/local/cluster.ts';
import { requestSwitchover } from './cluster-ops.ts';
import { CLUSTER_CREDENTIALS, sleep } from './common.ts';
import { Writer, type Endpoint } from './workload.ts';

export type FaultName = 'host-crash' | 'postmaster-kill';

/** The pid of a Vigil node's fencer (its pid file next to the data directory), if it has one. */
export function fencerPid(c: LocalCluster, name: string): number | undefined {
  const file = `${c.node(name).dataDir}.fencer.pid`;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * A host crash: SIGKILL to the node's agent, its PostgreSQL process group and its fencer (Vigil;
 * Patroni has none) in the same tick, so nothing of the node survives to act on the cluster.
 */
export function hostCrash(c: LocalCluster, name: string): void {
  const fencer = fencerPid(c, name);
  c.killAgent(name, 'SIGKILL', { withPostgres: true });
  if (fencer !== undefined) {
    try {
      process.kill(fencer, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface FaultMeasure {
  oldPrimary: string;
  newPrimary: string | undefined;
  /** Seconds from the last acknowledged write before the fault to the first after it; undefined = none. */
  unavailableS: number | undefined;
  acked: number;
  /** Commits answered with "canceling wait for synchronous replication" (not acknowledged). */
  syncCancelled: number;
  note?: string;
  /** Next free id for the writer, every acknowledged id, and those acknowledged before the fault. */
  nextId: number;
  ackedIds: number[];
  beforeIds: number[];
}

/**
 * Inject `fault` on `primary` with a writer on `endpoints` running (2 s of steady writes first);
 * wait for the first write acknowledged over a connection made after the fault (give up after
 * 3*ttl + 60 s), write 1 s more, stop. A host crash kills the agent, PostgreSQL and the fencer
 * (hostCrash); afterwards the node's agent is started again (the host comes back). `alsoKill` runs
 * at the moment of the fault; `beforeFault` is awaited just before it (e.g. to read the lease).
 */
export async function measureFault(
  c: LocalCluster,
  fault: FaultName,
  timing: Timing,
  endpoints: Endpoint[],
  primary: string,
  firstId: number,
  alsoKill?: () => void,
  beforeFault?: () => Promise<void>,
): Promise<FaultMeasure> {
  const writer = new Writer(endpoints, CLUSTER_CREDENTIALS, { firstId });
  writer.start();
  // Steady state first: at least 2 s of acknowledged writes to the current primary.
  const warmDeadline = performance.now() + 30_000;
  while (performance.now() < warmDeadline) {
    const first = writer.acks[0];
    if (first !== undefined && performance.now() - first.at >= 2000) break;
    await sleep(100);
  }
  if (writer.acks.length === 0) {
    await writer.stop();
    throw new Error('the writer got no acknowledged write within 30 s before the fault');
  }

  await beforeFault?.();
  const tFault = performance.now();
  if (fault === 'host-crash') hostCrash(c, primary);
  else c.killPostgres(primary, 'SIGKILL');
  alsoKill?.();

  // Recovered = an acknowledged write over a connection made after the fault.
  const giveUp = tFault + (3 * timing.ttl + 60) * 1000;
  let firstAfter: (typeof writer.acks)[number] | undefined;
  while (performance.now() < giveUp) {
    firstAfter = writer.acks.find((a) => a.connectedAt > tFault);
    if (firstAfter !== undefined) break;
    await sleep(50);
  }
  if (firstAfter !== undefined) await sleep(1000);
  await writer.stop();
  // Last write before the fault: the last one acknowledged on a connection made before it (it may
  // arrive a moment after the kill when the reply was already on its way).
  const before = writer.acks.filter((a) => a.connectedAt <= tFault);
  const lastBefore = before[before.length - 1];
  const unavailableS = firstAfter !== undefined && lastBefore !== undefined ? (firstAfter.at - lastBefore.at) / 1000 : undefined;

  // The "host" comes back: restart its agent, which must rejoin the new primary as a replica.
  if (fault === 'host-crash') c.startAgent(primary);
  const m: FaultMeasure = {
    oldPrimary: primary,
    newPrimary: firstAfter?.node,
    unavailableS,
    acked: writer.acks.length,
    syncCancelled: writer.syncCancelled.length,
    nextId: writer.next,
    ackedIds: writer.acks.map((a) => a.id),
    beforeIds: before.map((a) => a.id),
  };
  if (firstAfter === undefined) m.note = `no write acknowledged within ${((giveUp - tFault) / 1000).toFixed(2)} s of the fault`;
  return m;
}

export interface SwitchoverMeasure {
  oldPrimary: string;
  candidate: string;
  /** HTTP status of POST /switchover (0 = no reply) and its text. */
  status: number;
  reply: string;
  /** Seconds the POST took. */
  requestS: number;
  /** Seconds from the old primary's last acknowledged write to the new primary's first; undefined = none. */
  gapS: number | undefined;
  /** Seconds from sending the request to the first write acknowledged by the new primary. */
  firstNewAfterRequestS: number | undefined;
  acked: number;
  failedAttempts: number;
  note?: string;
  nextId: number;
  ackedIds: number[];
}

/**
 * POST /switchover from `primary` to `candidate` with a writer on `endpoints` running (2 s of
 * writes acknowledged by the primary first); wait for the candidate's first acknowledged write
 * (give up after 60 s), write 1 s more, stop. Each acknowledgement names the port of the node that
 * committed it, so the gap is attributed also through a proxy.
 */
export async function measureSwitchover(c: LocalCluster, endpoints: Endpoint[], primary: string, candidate: string, firstId: number): Promise<SwitchoverMeasure> {
  const writer = new Writer(endpoints, CLUSTER_CREDENTIALS, { firstId });
  writer.start();
  const oldPort = c.node(primary).pgPort;
  const newPort = c.node(candidate).pgPort;
  const m: SwitchoverMeasure = {
    oldPrimary: primary,
    candidate,
    status: 0,
    reply: '',
    requestS: 0,
    gapS: undefined,
    firstNewAfterRequestS: undefined,
    acked: 0,
    failedAttempts: 0,
    nextId: firstId,
    ackedIds: [],
  };
  try {
    // Steady state first: at least 2 s of acknowledged writes to the current primary.
    const warmDeadline = performance.now() + 30_000;
    while (performance.now() < warmDeadline) {
      const first = writer.acks.find((a) => a.serverPort === oldPort);
      if (first !== undefined && performance.now() - first.at >= 2000) break;
      await sleep(100);
    }
    if (!writer.acks.some((a) => a.serverPort === oldPort)) throw new Error(`the writer got no write acknowledged by ${primary} within 30 s`);

    const reply = await requestSwitchover(c, primary, candidate, 120_000);
    m.status = reply.status;
    m.reply = reply.text.slice(0, 200);
    m.requestS = (reply.doneAt - reply.sentAt) / 1000;
    // Writes resume on the new primary; keep writing 1 s after the first such write (give up after 60 s).
    const giveUp = performance.now() + 60_000;
    let firstNew = writer.acks.find((a) => a.serverPort === newPort && a.at > reply.sentAt);
    while (firstNew === undefined && performance.now() < giveUp) {
      await sleep(50);
      firstNew = writer.acks.find((a) => a.serverPort === newPort && a.at > reply.sentAt);
    }
    if (firstNew !== undefined) await sleep(1000);
    await writer.stop();
    const onOld = writer.acks.filter((a) => a.serverPort === oldPort);
    const lastOld = onOld[onOld.length - 1];
    if (firstNew !== undefined && lastOld !== undefined) {
      m.gapS = (firstNew.at - lastOld.at) / 1000;
      m.firstNewAfterRequestS = (firstNew.at - reply.sentAt) / 1000;
    }
    const stray = writer.acks.filter((a) => a.serverPort !== oldPort && a.serverPort !== newPort).length;
    const lateOld = firstNew !== undefined ? writer.acks.filter((a) => a.serverPort === oldPort && a.at > firstNew.at).length : 0;
    const notes: string[] = [];
    if (reply.status !== 200) notes.push(`POST /switchover answered ${reply.status}: ${m.reply}`);
    if (firstNew === undefined) notes.push(`no write acknowledged by ${candidate} within 60 s of the request`);
    if (stray > 0) notes.push(`${stray} writes acknowledged by a third node`);
    if (lateOld > 0) notes.push(`${lateOld} writes acknowledged by ${primary} after ${candidate} took writes (split brain)`);
    if (notes.length > 0) m.note = notes.join('; ');
  } finally {
    await writer.stop();
    m.acked = writer.acks.length;
    m.failedAttempts = writer.errors;
    m.nextId = writer.next;
    m.ackedIds = writer.acks.map((a) => a.id);
  }
  return m;
}
