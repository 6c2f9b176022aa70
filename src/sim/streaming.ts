// The world's physics each step (tests only): clients write to every writable primary, and each
// running standby streams from its upstream when the two hosts reach each other and the histories
// allow it (a diverged history is a violation), keeping `lagBytes` behind a primary being written.

import { append, isPrefix, pgCanStream, truncate, walEnd, walTimeline } from './wal.ts';
import type { World } from './world.ts';

export function physics(w: World, dtMs: number): void {
  for (const n of w.nodes.values()) {
    const d = n.pg.data;
    if (w.writing && n.pg.writable && d !== undefined) d.wal = append(d.wal, Math.round((w.writeRate * dtMs) / 1000));
  }
  for (const n of [...w.nodes.values()].sort((x, y) => x.name.localeCompare(y.name))) {
    const d = n.pg.data;
    if (!n.pg.running || d === undefined || !d.standby || d.upstream === null) {
      n.pg.streaming = false;
      continue;
    }
    const u = w.nodes.get(d.upstream);
    const ud = u?.pg.data;
    if (u === undefined || ud === undefined || !u.pg.running || ud.sysid !== d.sysid || !w.reachable(n, u) || !pgCanStream(d.wal, ud.wal)) {
      n.pg.streaming = false;
      continue;
    }
    if (!isPrefix(d.wal, ud.wal)) w.violation(`${n.name} streams from ${u.name} over a diverged history (tl${walTimeline(d.wal)}@${walEnd(d.wal)} vs tl${walTimeline(ud.wal)})`);
    if (!n.pg.streaming) n.senderPid = w.newSenderPid();
    n.pg.streaming = true;
    const lag = u.pg.writable && w.writing ? (n.opts.lagBytes ?? 4000) : 0;
    const target = Math.max(walEnd(d.wal), walEnd(ud.wal) - lag);
    if (target > walEnd(d.wal) || walTimeline(d.wal) !== walTimeline(truncate(ud.wal, target))) d.wal = truncate(ud.wal, target);
  }
}
