// The production ports of the node driver: PostgreSQL through PostgresController, the peers through
// HTTP(S), the monotonic clock and real timers. The DCS port is the adapter itself; the fence port
// is the Fence (src/fence/fence.ts).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Config } from '../config/types.ts';
import { checkFailsafeTopology } from '../api/failsafe.ts';
import { fetchPeers } from '../api/peers.ts';
import type { PostgresController } from '../postgres/controller.ts';
import type { Clock, PeersPort, PgPort } from './ports.ts';

/** PostgreSQL: the controller's methods, and the timeline history files of its data directory. */
export function realPgPort(pg: PostgresController): PgPort {
  return {
    observe: () => pg.observe(),
    probe: (opts) => pg.probe(opts),
    isRunning: () => pg.isRunning(),
    initdb: (b) => pg.initdb(b),
    postBootstrap: (b) => pg.postBootstrap(b),
    writeConfig: (opts) => pg.writeConfig(opts),
    reload: () => pg.reload(),
    start: (opts) => pg.start(opts),
    stop: (mode, opts) => pg.stop(mode, opts),
    promote: (opts) => pg.promote(opts),
    pendingRestart: () => pg.pendingRestart(),
    checkpoint: (opts) => pg.checkpoint(opts),
    removeDataDir: () => pg.removeDataDir(),
    basebackup: (from) => pg.basebackup(from),
    rewind: (from) => pg.rewind(from),
    ensureSlots: (names, opts) => pg.ensureSlots(names, opts),
    checkDivergence: (leader, opts) => pg.checkDivergence(leader, opts),
    setSyncStandbyNames: (value) => pg.setSyncStandbyNames(value),
    controlData: () => pg.controlData(),
    timelineHistory: (tl) => readFile(join(pg.dataDir, 'pg_wal', `${tl.toString(16).toUpperCase().padStart(8, '0')}.history`), 'utf8'),
  };
}

/** The peers' REST APIs; the credentials are read at call time (a reload may change them). */
export function realPeersPort(config: () => Config): PeersPort {
  return {
    fetchStatuses: (members) => {
      const auth = config().restapi.authentication;
      return fetchPeers(members, { timeoutMs: 2000, ...(auth !== undefined ? { auth } : {}) });
    },
    checkFailsafe: async (me, topology, body) => {
      const res = await checkFailsafeTopology({ me, topology, body, auth: config().restapi.authentication, timeoutMs: 2000, retries: 1 });
      return { ok: res.ok, reason: res.reason };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Monotonic time from performance.now() (or `now`), real timers. */
export function realClock(now: () => number = () => performance.now()): Clock {
  return { now, wallNow: () => Date.now(), sleep, timeout: (ms) => AbortSignal.timeout(ms) };
}
