// The simulator's safety invariants, checked after every step, and its convergence test (tests
// only).

import { ackLsn } from './replication.ts';
import { isPrefix, walEnd, walTimeline } from './wal.ts';
import type { World } from './world.ts';

/** Writable primaries right now. */
export function writablePrimaries(w: World): string[] {
  return [...w.nodes.values()].filter((n) => n.pg.writable).map((n) => n.name);
}

/** Nodes whose agent believes it holds the lock (as the REST API would answer GET /primary). */
export function believers(w: World): string[] {
  const ttlMs = w.config.ttl * 1000;
  return [...w.nodes.values()]
    .filter((n) => n.agent !== undefined && n.agent.isLeader && n.agent.lockRefreshedAt !== undefined && w.now - n.agent.lockRefreshedAt < ttlMs)
    .map((n) => n.name);
}

export class Invariants {
  private overlapSince: number | undefined;
  private overlapReported = false;

  constructor(private readonly w: World) {}

  /** How long two writable primaries may overlap without the fencer: loop_wait + 2 * retry_timeout. */
  fenceMs(): number {
    return (this.w.config.loop_wait + 2 * this.w.config.retry_timeout) * 1000;
  }

  check(): void {
    const w = this.w;
    const writable = writablePrimaries(w);
    // The fast failover of synchronous modes (issue 13) promotes before the old primary's lock
    // expires: an old primary cut off from everyone stays writable, and its agent believes it leads,
    // until it notices or its fencer fires; but it can acknowledge nothing (every /sync standby
    // detached, ssn frozen by the /sync take-over): only primaries that can acknowledge count.
    const acking = w.fastFailover ? writable.filter((x) => ackLsn(w, w.node(x)) !== undefined) : writable;
    const believing = acking.filter((x) => believers(w).includes(x));
    if (believing.length >= 2) w.violation(`split brain: ${believing.join(' and ')} are writable primaries that both believe they hold the lock`);
    // With the fencer a primary is dead before its lock can expire, so a second one never overlaps.
    if (w.fencing && acking.length >= 2) w.violation(`${acking.join(' and ')} are writable primaries at once${w.fastFailover ? ', both able to acknowledge commits' : ''} (fencing is on)`);
    if (w.syncMode !== 'off') {
      const holder = w.dcs.leader === undefined ? undefined : w.nodes.get(w.dcs.leader.value);
      const hd = holder?.pg.data;
      if (holder !== undefined && hd !== undefined && holder.pg.writable) {
        for (const h of w.ackHeads) {
          if (!isPrefix(h, hd.wal)) w.violation(`acknowledged commits lost: the lock holder ${holder.name} (tl${walTimeline(hd.wal)}@${walEnd(hd.wal)}) lacks the acknowledged history up to tl${walTimeline(h)}@${walEnd(h)}`);
        }
      }
    }
    if (writable.length >= 2) {
      this.overlapSince ??= w.now;
      if (!this.overlapReported && w.now - this.overlapSince > this.fenceMs()) {
        this.overlapReported = true;
        w.violation(`${writable.join(' and ')} have been writable primaries at once for more than loop_wait + 2*retry_timeout`);
      }
    } else {
      this.overlapSince = undefined;
      this.overlapReported = false;
    }
    const sysids = new Set<string>();
    for (const n of w.nodes.values()) if (n.pg.data !== undefined) sysids.add(n.pg.data.sysid);
    const init = w.dcs.initialize?.value;
    if (init !== undefined && init !== '') sysids.add(init);
    if (sysids.size > 1) w.violation(`more than one system identifier: ${[...sysids].join(', ')}`);
    if (w.initdbs > 1) w.violation(`initdb ran ${w.initdbs} times`);
  }
}

/** undefined when the cluster has one primary holding the lock and every other node streams from it; else why not. */
export function convergence(w: World): string | undefined {
  const leader = w.dcs.leader?.value;
  if (!w.dcs.up) return 'the DCS is down';
  if (leader === undefined) return 'no leader key';
  const ln = w.nodes.get(leader);
  if (ln === undefined || !ln.pg.writable || ln.agent === undefined) return `leader ${leader} is not a running primary`;
  const writable = writablePrimaries(w);
  if (writable.length !== 1) return `writable primaries: ${writable.join(', ')}`;
  for (const n of w.nodes.values()) {
    if (n === ln) continue;
    const a = n.agent;
    if (a === undefined) return `${n.name} has no agent`;
    if (a.task?.state === 'running') return `${n.name} runs ${a.task.spec.kind}`;
    const d = n.pg.data;
    if (!n.pg.running || d === undefined || !d.standby) return `${n.name} is not a running replica (${n.pg.describe()})`;
    const rf = n.tags.replicatefrom;
    const expected = typeof rf === 'string' && w.nodes.has(rf) && rf !== n.name ? rf : leader;
    if (d.upstream !== expected) return `${n.name} follows ${d.upstream ?? 'nobody'}, not ${expected}`;
    if (!n.pg.streaming) return `${n.name} does not stream from ${expected}`;
  }
  return undefined;
}
