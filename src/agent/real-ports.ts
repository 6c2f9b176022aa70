// The production ports of the node driver: PostgreSQL through PostgresController, the peers through
// HTTP(S), the monotonic clock and real timers, the user's scripts as child processes. The DCS port
// is the adapter itself; the fence port is the Fence (src/fence/fence.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

import type { Config } from '../config/types.ts';
import { checkFailsafeTopology } from '../api/failsafe.ts';
import { fetchPeers, peerTls } from '../api/peers.ts';
import type { PostgresController } from '../postgres/controller.ts';
import { killGroup, pgOsUser } from '../postgres/exec.ts';
import type { DetachPromise } from '../core/fast-failover.ts';
import type { PromiseStore } from './fast-failover.ts';
import type { Clock, HooksPort, Logger, PeersPort, PgPort, ScriptExit } from './ports.ts';

/** PostgreSQL: the controller's methods, and the timeline history files of its data directory. */
export function realPgPort(pg: PostgresController): PgPort {
  return {
    observe: () => pg.observe(),
    probe: (opts) => pg.probe(opts),
    isRunning: () => pg.isRunning(),
    initdb: (b) => pg.initdb(b),
    postBootstrap: (b, opts) => pg.postBootstrap(b, opts),
    customBootstrap: (c, opts) => pg.customBootstrap(c, opts),
    writeConfig: (opts) => pg.writeConfig(opts),
    reload: () => pg.reload(),
    start: (opts) => pg.start(opts),
    stop: (mode, opts) => pg.stop(mode, opts),
    promote: (opts) => pg.promote(opts),
    pendingRestart: () => pg.pendingRestart(),
    checkpoint: (opts) => pg.checkpoint(opts),
    removeDataDir: () => pg.removeDataDir(),
    basebackup: (from, opts) => pg.createReplica(from, opts),
    rewind: (from, opts) => pg.rewind(from, opts),
    ensureSlots: (names, opts) => pg.ensureSlots(names, opts),
    applySlotOps: (ops) => pg.applySlotOps(ops),
    fetchLogicalSlots: (connUrl, names) => pg.fetchLogicalSlots(connUrl, names),
    writeLogicalSlots: (states) => pg.writeLogicalSlots(states),
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
      return fetchPeers(members, { timeoutMs: 2000, ...(auth !== undefined ? { auth } : {}), tls: peerTls(config().restapi) });
    },
    checkFailsafe: async (me, topology, body) => {
      const res = await checkFailsafeTopology({ me, topology, body, auth: config().restapi.authentication, tls: peerTls(config().restapi), timeoutMs: 2000, retries: 1 });
      return { ok: res.ok, reason: res.reason };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Monotonic time from performance.now() (or `now`), real timers. */
export function realClock(now: () => number = () => performance.now()): Clock {
  return { now, wallNow: () => Date.now(), sleep, timeout: (ms) => AbortSignal.timeout(ms) };
}

// ---- the user's scripts ---------------------------------------------------------------------------
// As root they run as the PostgreSQL OS user (as Patroni, which runs as that user, runs them);
// otherwise as ourselves. Each script gets a process group of its own, so that killing it (a newer
// callback in its slot, an aborted pre_promote, a deadline) kills everything it started. Working
// directory /, our environment. Every line a script prints is logged as it comes.

/** At most this many output lines are logged per script run (then one line saying the rest was dropped). */
const MAX_LINES = 200;

interface Started {
  child: ChildProcess | undefined;
  exit: Promise<ScriptExit>;
}

function start(argv: readonly string[], label: string, log: Logger): Started {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return { child: undefined, exit: Promise.resolve({ code: null, why: 'empty command' }) };
  const user = pgOsUser();
  const env: Record<string, string | undefined> = { ...process.env };
  if (user !== undefined) Object.assign(env, { HOME: user.home, USER: user.name, LOGNAME: user.name });
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(user !== undefined ? { uid: user.uid, gid: user.gid } : {}) });
  } catch (err) {
    return { child: undefined, exit: Promise.resolve({ code: null, why: `could not start ${cmd}: ${(err as Error).message}` }) };
  }
  let lines = 0;
  for (const [stream, level] of [[child.stdout, 'info'], [child.stderr, 'warn']] as const) {
    if (stream === null) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      lines++;
      if (lines <= MAX_LINES) log[level]({ hook: label, pid: child.pid }, line.slice(0, 2000));
      else if (lines === MAX_LINES + 1) log.warn({ hook: label, pid: child.pid }, `further output of ${label} is not logged`);
    });
  }
  const exit = new Promise<ScriptExit>((resolve) => {
    child.once('error', (err) => resolve({ code: null, why: `could not start ${cmd}: ${err.message}` }));
    child.once('exit', (code, signal) => resolve(code !== null ? { code } : { code: null, why: `killed by ${signal ?? 'a signal'}` }));
  });
  return { child, exit };
}

function describeExit(e: ScriptExit): string {
  return e.code !== null ? `exited with code ${e.code}` : e.why ?? 'ended';
}

export function realHooksPort(log: Logger): HooksPort {
  const slots = new Map<string, Started>();
  return {
    spawn(slot, argv, label) {
      const prev = slots.get(slot);
      if (prev?.child !== undefined && prev.child.exitCode === null && prev.child.signalCode === null) {
        log.info({ hook: label, pid: prev.child.pid }, `killing the callback still running (pid ${prev.child.pid}) to run ${label}`);
        killGroup(prev.child.pid, 'SIGKILL');
      }
      log.info({ hook: label, argv }, `running ${label}`);
      const s = start(argv, label, log);
      slots.set(slot, s);
      // A callback never keeps the agent alive (it may outlive a shutdown, as Patroni's do).
      s.child?.unref();
      for (const st of [s.child?.stdout, s.child?.stderr]) (st as { unref?: () => void } | null | undefined)?.unref?.();
      return s.exit.then((e) => {
        if (slots.get(slot) === s) slots.delete(slot);
        (e.code === 0 ? log.info : log.warn).call(log, { hook: label }, `${label} ${describeExit(e)}`);
        return e;
      });
    },
    async run(argv, label, opts) {
      log.info({ hook: label, argv }, `running ${label}`);
      const s = start(argv, label, log);
      let why: string | undefined;
      const kill = (reason: string): void => {
        why ??= reason;
        killGroup(s.child?.pid, 'SIGKILL');
      };
      const timer = setTimeout(() => kill(`killed after ${opts.timeoutMs} ms`), opts.timeoutMs);
      const onAbort = (): void => kill('cancelled');
      if (opts.signal?.aborted === true) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const e = await s.exit;
        const res = why !== undefined ? { code: null, why } : e;
        (res.code === 0 ? log.info : log.warn).call(log, { hook: label }, `${label} ${describeExit(res)}`);
        return res;
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      }
    },
  };
}

// ---- the fast failover's promise (issue 13) ---------------------------------------------------------

/**
 * A detachment promise kept in a file (written to a temporary file, fsynced, renamed): an agent
 * restarted during a take-over still refuses to follow the old leader. A missing or unreadable
 * file is no promise.
 */
export function filePromiseStore(path: string): PromiseStore {
  return {
    load: () => {
      try {
        const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
        const f = ['leader', 'leaderVersion', 'leaderSession', 'syncVersion'] as const;
        if (!f.every((k) => typeof v[k] === 'string')) return undefined;
        const until = typeof v['untilWall'] === 'number' ? { untilWall: v['untilWall'] } : {};
        return { leader: v['leader'] as string, leaderVersion: v['leaderVersion'] as string, leaderSession: v['leaderSession'] as string, syncVersion: v['syncVersion'] as string, ...until };
      } catch {
        return undefined;
      }
    },
    save: (p: DetachPromise) => {
      const tmp = `${path}.tmp`;
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(p));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    },
  };
}
