// Process control of the local postmaster: start, stop, promote, reload, CHECKPOINT, and the
// watch that reports a postmaster exit we did not ask for (crash, kill -9, OOM).
//
// PostgreSQL is spawned as `postgres -D <data_dir>` in its own process group, detached, so that it
// keeps running if the agent dies (as Patroni's does). The GUCs Patroni controls are also passed
// on the command line (see ConfigFiles.commandLine) so that ALTER SYSTEM cannot override them.
// Its stdout/stderr go to node.logFile (appended).

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PgControlError } from './errors.ts';
import { baseEnv, killGroup, lastLines, ownForPg, pgOsUser } from './exec.ts';
import { sleep, type PgNode } from './node.ts';
import { withClient } from './probe.ts';

export interface PostmasterExitInfo {
  code: number | null;
  signal: string | null;
}

/** Whether a pid is a live (non-zombie) process. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {
    // no /proc: trust kill(0)
  }
  return true;
}

export class Postmaster {
  private child: ChildProcess | undefined;
  private watchedPid: number | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Pid we signalled ourselves: its exit is not a crash. */
  private stoppedPid: number | undefined;
  /** Pid start() is waiting for: an exit then makes start() reject instead of a callback. */
  private startingPid: number | undefined;
  private crashedFlag = false;

  /**
   * `commandLine`: the GUCs to pass on the command line at the next start.
   * `onExit`: the postmaster exited without us stopping it.
   */
  constructor(
    private readonly node: PgNode,
    private readonly commandLine: () => Promise<Record<string, string>>,
    private readonly onExit: ((info: PostmasterExitInfo) => void) | undefined,
  ) {}

  /** From postmaster.pid (+ kill(pid, 0), zombie check, cwd check on Linux), or our own child. */
  async isRunning(): Promise<{ running: boolean; pid?: number }> {
    // Our own child: its 'exit' event may lag behind the process's death, so check the pid too.
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined && pidAlive(this.child.pid)) {
      return { running: true, pid: this.child.pid };
    }
    let text: string;
    try {
      text = await readFile(join(this.node.dataDir, 'postmaster.pid'), 'utf8');
    } catch {
      return { running: false };
    }
    const pid = Number(text.split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return { running: false };
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cwd !== realpathSync(this.node.dataDir)) return { running: false }; // pid reused by another process
    } catch {
      // no /proc or no permission: trust kill(0)
    }
    this.watch(pid);
    return { running: true, pid };
  }

  /** Watches a postmaster we did not start (poll every 100 ms). */
  private watch(pid: number): void {
    if (this.watchedPid === pid) return;
    this.stopWatching();
    this.watchedPid = pid;
    this.pollTimer = setInterval(() => {
      if (!pidAlive(pid)) this.handleExit(pid, { code: null, signal: null });
    }, 100);
    this.pollTimer.unref();
  }

  private stopWatching(): void {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.watchedPid = undefined;
  }

  private handleExit(pid: number, info: PostmasterExitInfo): void {
    if (this.watchedPid !== pid) return;
    this.stopWatching();
    if (this.child?.pid === pid) this.child = undefined;
    if (this.stoppedPid === pid) {
      this.node.log.info(`postmaster ${pid} exited after stop`);
      return;
    }
    if (this.startingPid === pid) return; // start() reports it
    this.crashedFlag = true;
    this.node.log.warn(`postmaster ${pid} exited unexpectedly (code ${info.code}, signal ${info.signal})`);
    try {
      this.onExit?.(info);
    } catch (e) {
      this.node.log.error(`onPostmasterExit handler threw: ${(e as Error).message}`);
    }
  }

  /** The postmaster exited on its own since we last started it. */
  get crashed(): boolean {
    return this.crashedFlag;
  }


  /**
   * Starts `postgres -D <data_dir>` detached and waits until it accepts connections. Rejects if it
   * exits (with the last log lines) or the deadline passes (PostgreSQL is left running then).
   * Already running: just waits for readiness.
   */
  async start(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? this.node.defaultTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    if (await this.node.dataDirEmpty()) throw new PgControlError('PG_DATA_DIR', `cannot start: ${this.node.dataDir} is not initialised`);
    const state = await this.isRunning();
    let logOffset = 0;
    let exitInfo: PostmasterExitInfo | undefined;
    let pid: number;
    if (state.running && state.pid !== undefined) {
      pid = state.pid;
    } else {
      const cmdline = await this.commandLine();
      const args = ['-D', this.node.dataDir, `--config-file=${this.node.confPath}`];
      for (const [k, v] of Object.entries(cmdline)) args.push(`--${k}=${v}`);
      try {
        logOffset = (await stat(this.node.logFile)).size;
      } catch {
        logOffset = 0;
      }
      const fd = openSync(this.node.logFile, 'a', 0o640);
      let child: ChildProcess;
      try {
        await ownForPg(this.node.logFile);
        const u = pgOsUser();
        child = spawn(this.node.bin('postgres'), args, {
          cwd: this.node.dataDir,
          env: baseEnv(),
          stdio: ['ignore', fd, fd],
          detached: true,
          ...(u !== undefined ? { uid: u.uid, gid: u.gid } : {}),
        });
      } finally {
        closeSync(fd);
      }
      const spawned = await new Promise<number>((res, rej) => {
        child.once('spawn', () => res(child.pid!));
        child.once('error', (e) => rej(new PgControlError('PG_START_FAILED', `cannot start postgres: ${e.message}`, { cause: e })));
      });
      pid = spawned;
      child.unref();
      this.crashedFlag = false;
      this.stoppedPid = undefined;
      this.stopWatching();
      this.child = child;
      this.watchedPid = pid;
      child.on('exit', (code, signal) => {
        exitInfo = { code, signal };
        this.handleExit(pid, { code, signal });
      });
      this.node.log.info(`started postgres (pid ${pid}), log ${this.node.logFile}`);
    }

    this.startingPid = pid;
    try {
      await this.waitReady(pid, deadline, timeoutMs, logOffset, () => exitInfo);
    } finally {
      this.startingPid = undefined;
    }
  }

  private async waitReady(
    pid: number,
    deadline: number,
    timeoutMs: number,
    logOffset: number,
    exited: () => PostmasterExitInfo | undefined,
  ): Promise<void> {
    while (true) {
      const exitInfo = exited();
      if (exitInfo !== undefined || !pidAlive(pid)) {
        const tail = await this.logTail(logOffset);
        throw new PgControlError('PG_START_FAILED', `postgres exited during start-up${exitInfo ? ` (code ${exitInfo.code}, signal ${exitInfo.signal})` : ''}: ${tail}`);
      }
      try {
        await withClient(this.node.localConn(), Math.min(1000, Math.max(100, deadline - Date.now())), (c) => c.query('SELECT 1'), 'start-up check');
        return;
      } catch {
        // not ready yet
      }
      if (Date.now() >= deadline) {
        throw new PgControlError('PG_CONTROL_TIMEOUT', `postgres did not accept connections within ${timeoutMs} ms: ${await this.logTail(logOffset)}`);
      }
      await sleep(100);
    }
  }

  private async logTail(offset: number): Promise<string> {
    try {
      const fh = await open(this.node.logFile, 'r');
      try {
        const size = (await fh.stat()).size;
        const from = Math.max(offset, size - 8192);
        const buf = Buffer.alloc(size - from);
        await fh.read(buf, 0, buf.length, from);
        return lastLines(buf.toString('utf8'), 10);
      } finally {
        await fh.close();
      }
    } catch {
      return '(no log)';
    }
  }

  /**
   * Stops the postmaster: smart = SIGTERM, fast = SIGINT, immediate = SIGQUIT. After the deadline
   * (default pg_ctl_timeout) a smart/fast stop escalates to immediate (5 s more), then SIGKILL of
   * the process group and the postmaster's children. Fast/smart stops first run a CHECKPOINT
   * (bounded, errors ignored) unless opts.checkpoint is false. Idempotent.
   */
  async stop(mode: 'smart' | 'fast' | 'immediate', opts: { timeoutMs?: number; checkpoint?: boolean } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? this.node.defaultTimeoutMs;
    const { running, pid } = await this.isRunning();
    if (!running || pid === undefined) return;
    if (mode !== 'immediate' && opts.checkpoint !== false) {
      await this.checkpoint({ timeoutMs: Math.min(timeoutMs / 2, 10_000) }).catch((e: Error) => this.node.log.warn(`checkpoint before stop failed: ${e.message}`));
    }
    this.stoppedPid = pid;
    const sig: NodeJS.Signals = mode === 'smart' ? 'SIGTERM' : mode === 'fast' ? 'SIGINT' : 'SIGQUIT';
    this.node.log.info(`stopping postgres (pid ${pid}, ${mode})`);
    const signal = (s: NodeJS.Signals): void => {
      try {
        process.kill(pid, s);
      } catch {
        // gone
      }
    };
    signal(sig);
    if (await this.waitGone(pid, timeoutMs)) return;
    if (mode !== 'immediate') {
      this.node.log.warn(`postgres did not stop within ${timeoutMs} ms, sending SIGQUIT`);
      signal('SIGQUIT');
      if (await this.waitGone(pid, 5000)) return;
    }
    this.node.log.warn(`postgres (pid ${pid}) still alive: SIGKILL`);
    const children = this.childPids(pid);
    killGroup(pid, 'SIGKILL');
    signal('SIGKILL');
    for (const c of children) {
      try {
        process.kill(c, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (!(await this.waitGone(pid, 5000))) throw new PgControlError('PG_CONTROL_TIMEOUT', `postgres (pid ${pid}) survived SIGKILL`, { retryable: false });
  }

  private async waitGone(pid: number, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (pidAlive(pid)) {
      if (Date.now() >= until) return false;
      await sleep(50);
    }
    return true;
  }

  private childPids(ppid: number): number[] {
    const out: number[] = [];
    try {
      for (const d of readdirSyncSafe('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          const st = readFileSync(`/proc/${d}/stat`, 'utf8');
          const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
          if (Number(fields[1]) === ppid) out.push(Number(d));
        } catch {
          // raced with exit
        }
      }
    } catch {
      // no /proc
    }
    return out;
  }

  /** Promotes a standby and resolves once it is out of recovery. No-op on a primary. */
  async promote(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? this.node.defaultTimeoutMs;
    const waitS = Math.max(1, Math.ceil(timeoutMs / 1000));
    const ok = await withClient(
      this.node.localConn(),
      timeoutMs + 2000,
      async (c) => {
        const rec = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (rec.rows[0]?.r !== true) return true;
        await c.query('SET statement_timeout = 0');
        const r = await c.query<{ ok: boolean }>('SELECT pg_promote(true, $1) AS ok', [waitS]);
        return r.rows[0]?.ok === true;
      },
      'promote',
    );
    if (!ok) throw new PgControlError('PG_CONTROL_TIMEOUT', `promotion did not complete within ${waitS} s`);
    // pg_promote(wait) returned true: recovery ended. Confirm on a fresh connection.
    const inRecovery = await withClient(this.node.localConn(), 5000, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r);
    if (inRecovery !== false) throw new PgControlError('PG_FAILED', 'still in recovery after pg_promote');
    const signalPath = join(this.node.dataDir, 'standby.signal');
    if (existsSync(signalPath)) await unlink(signalPath).catch(() => undefined);
  }


  /** CHECKPOINT on the local PostgreSQL. */
  async checkpoint(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    await withClient(this.node.localConn(), timeoutMs, (c) => c.query('CHECKPOINT'), 'checkpoint');
  }


  /** SIGHUP the postmaster (reload configuration). No-op when not running. */
  async reload(): Promise<void> {
    const { running, pid } = await this.isRunning();
    if (running && pid !== undefined) process.kill(pid, 'SIGHUP');
  }
}

function readdirSyncSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
