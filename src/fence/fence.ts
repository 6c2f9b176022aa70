// Agent side of the fencer: spawns it, tells it the fence deadline after every successful lock
// refresh, and tells it to stand down when PostgreSQL stops being a writable primary. The fencer
// is the native program built from fencer.c when it exists beside this file, else fencer.mjs under
// node (one protocol and contract, in fencer.mjs's header; see FenceOptions.fencerPath).
//
// Contract:
// - No method throws or rejects: a broken fencer is logged at error level and restarted; a restarted
//   fencer is re-armed with the last deadline (absolute, so already-passed deadlines fence at once).
// - arm() after every successful lock acquire/refresh and failsafe confirmation, with the START time
//   of that call; disarm() once PostgreSQL is no longer a writable primary (demoted, stopped, in
//   pause); before a clean shutdown, disarm() then close(). close() while armed leaves the fencer
//   running until the deadline: an agent that exits while its PostgreSQL is primary gets it fenced.
// - Takeover of a previous agent's fencer: the pid file (default `<dataDir>.fencer.pid`, next to the
//   data directory, not inside it: base backups and rewinds must not carry it) names the fencer
//   that guards this data directory. A new Fence reads it at start(), and only after its own fencer
//   acknowledged the first arm or disarm does it send that predecessor SIGTERM (= disarm and exit)
//   and write its own pid there. Until then the predecessor keeps its deadline. Before signalling,
//   /proc/<pid>/cmdline must show a fencer for the same data directory (no reused pid is hit).
// - The fencer is detached (own session and process group): kill -9 of the agent, or of the agent's
//   process group, does not reach it. Under systemd, use KillMode=mixed or process so that stopping
//   the agent's unit does not kill it (or rely on PostgreSQL being stopped first).

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FenceLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface FenceOptions {
  /** The data directory whose postmaster is fenced. */
  dataDir: string;
  logger: FenceLogger;
  /** Append the fencer's log (stderr) to this file; default: relay its lines to `logger`. A file
   *  keeps logging even while the agent is frozen and after it died. */
  logFile?: string;
  /** Default: `<resolved dataDir>.fencer.pid`. */
  pidFile?: string;
  /** Monotonic milliseconds, the clock of `refreshStartMs` in arm(). Default performance.now(). */
  now?: () => number;
  /** Watchdog device the fencer opens and keeps alive while armed (see watchdog.ts). */
  watchdogDevice?: string;
  /** Called when the fencer reports a fence (PostgreSQL killed, or nothing left to kill). */
  onFenced?: (ev: FencedEvent) => void;
  /** Delay before restarting a fencer that died. Default 1000 ms. */
  restartDelayMs?: number;
  /** How long to wait for an acknowledgement. Default 5000 ms. */
  ackTimeoutMs?: number;
  /** The fencer program: a path ending in `.mjs` runs under process.execPath, anything else is
   *  executed directly. Default: $VIGIL_FENCER if set, else the native `fencer` beside this file
   *  when it was built (fencer.c, by scripts/setup.sh or `npm run build`), else fencer.mjs. */
  fencerPath?: string;
}

export type ArmRequest =
  | { pid: number; deadlineNs: bigint }
  /** refreshStartMs: on the clock of FenceOptions.now, taken right before the refresh call. */
  | { pid: number; refreshStartMs: number; timeoutMs: number };

export interface ArmResult {
  ok: boolean;
  /** 'active' | 'off' | 'failed: <why>' when ok. */
  watchdog?: string;
  error?: string;
}

export interface FencedEvent {
  pid: number;
  killed: number[];
  /** Processes still alive after SIGKILL (D state...). */
  alive: number[];
  /** Milliseconds between the deadline and the fence. */
  lateMs: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** See FenceOptions.fencerPath. */
export function defaultFencerPath(): string {
  const env = process.env.VIGIL_FENCER;
  if (env !== undefined && env !== '') return env;
  const native = join(HERE, 'fencer');
  try {
    accessSync(native, constants.X_OK);
    return native;
  } catch {
    return join(HERE, 'fencer.mjs');
  }
}

/** Whether an argv element names a fencer program (either implementation). */
function isFencerProgram(arg: string): boolean {
  return arg.endsWith('fencer.mjs') || basename(arg) === 'fencer';
}

interface Pending {
  resolve: (m: Record<string, unknown> | undefined) => void;
  timer: NodeJS.Timeout;
}

export class Fence {
  private readonly dataDir: string;
  private readonly pidFile: string;
  private readonly log: FenceLogger;
  private readonly now: () => number;
  private readonly fencerPath: string;
  private child: ChildProcess | undefined;
  private ready: Promise<boolean> | undefined;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  /** The last arm sent, replayed to a restarted fencer; undefined when disarmed. */
  private lastArm: { pid: number; deadlineNs: bigint } | undefined;
  private predecessor: number | undefined;
  private tookOver = false;
  /** Set after the first fencer started: later starts are restarts. */
  private restarted = false;
  private closed = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private watchdogDevice: string | undefined;

  constructor(private readonly opts: FenceOptions) {
    this.dataDir = resolve(opts.dataDir);
    this.pidFile = opts.pidFile ?? `${this.dataDir}.fencer.pid`;
    this.log = opts.logger;
    this.now = opts.now ?? (() => performance.now());
    this.fencerPath = opts.fencerPath ?? defaultFencerPath();
    this.watchdogDevice = opts.watchdogDevice;
  }

  /** The running fencer's pid. */
  get fencerPid(): number | undefined {
    return this.child?.pid;
  }

  /** Changes the watchdog device for the next arm (undefined: none; the fencer then magic-closes
   *  an open device at that arm). For a new planWatchdog result after a configuration change. */
  setWatchdogDevice(device: string | undefined): void {
    this.watchdogDevice = device;
  }

  /** Whether the last request was an arm (the fencer guards PostgreSQL). */
  get armed(): boolean {
    return this.lastArm !== undefined;
  }

  /** Spawns the fencer and finds a predecessor; resolves once it is ready (false: it is not, and
   *  a restart is scheduled). */
  async start(): Promise<boolean> {
    if (this.closed) return false;
    this.predecessor = this.findPredecessor();
    if (this.predecessor !== undefined) {
      this.log.info({ fencer: this.predecessor, dataDir: this.dataDir }, 'a previous fencer guards this data directory; it stands down once ours is armed or disarmed');
    }
    return this.spawnFencer();
  }

  /**
   * Sets the fence deadline. Resolves when the fencer acknowledged (ok) or refused it, or after the
   * acknowledgement timeout (ok false); never rejects.
   */
  async arm(req: ArmRequest): Promise<ArmResult> {
    let deadlineNs: bigint;
    if ('deadlineNs' in req) deadlineNs = req.deadlineNs;
    else {
      // Age of the refresh start on the agent's clock, moved onto CLOCK_MONOTONIC.
      const ageMs = this.now() - req.refreshStartMs;
      if (!Number.isFinite(ageMs) || !Number.isFinite(req.timeoutMs)) {
        this.log.error({ req: { ...req } }, 'fence: arm with a non-finite time: arming with an immediate deadline');
      }
      const leftMs = Number.isFinite(ageMs) && Number.isFinite(req.timeoutMs) ? req.timeoutMs - ageMs : 0;
      deadlineNs = process.hrtime.bigint() + BigInt(Math.round(leftMs * 1e6));
    }
    if (deadlineNs < 0n) deadlineNs = 0n;
    this.lastArm = { pid: req.pid, deadlineNs };
    const reply = await this.request({ op: 'arm', pid: req.pid, dataDir: this.dataDir, deadlineNs: String(deadlineNs), ...(this.watchdogDevice ? { watchdog: this.watchdogDevice } : {}) });
    if (reply === undefined) return { ok: false, error: 'no answer from the fencer' };
    if (reply.ev !== 'armed') {
      const error = String(reply.message ?? reply.ev);
      this.log.error({ pid: req.pid, error }, 'fence: the fencer refused to arm');
      return { ok: false, error };
    }
    await this.takeOver();
    const watchdog = String(reply.watchdog);
    if (watchdog.startsWith('failed')) this.log.error({ device: this.watchdogDevice, watchdog }, 'fence: watchdog could not be activated');
    return { ok: true, watchdog };
  }

  /** Stops guarding: PostgreSQL is no longer a writable primary. Resolves true when acknowledged. */
  async disarm(): Promise<boolean> {
    this.lastArm = undefined;
    const reply = await this.request({ op: 'disarm' });
    if (reply?.ev !== 'disarmed') return false;
    await this.takeOver();
    return true;
  }

  /**
   * Stops the fencer: it exits at once when disarmed; when armed it stays until the deadline and
   * fences (call disarm() first on a clean shutdown). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    this.pending.clear();
    if (child === undefined) return;
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
    try {
      child.stdin?.end(`${JSON.stringify({ op: 'exit', seq: ++this.seq })}\n`);
    } catch {
      // Already gone.
    }
    if (this.lastArm === undefined) {
      // Disarmed: it exits at once; do not wait long for it.
      let t: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((r) => (t = setTimeout(r, 2000)))]);
      clearTimeout(t);
    } else {
      this.log.warn({ fencer: child.pid }, 'fence: closed while armed: the fencer stays and fences PostgreSQL at the deadline');
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  // ------------------------------------------------------------------------------------------

  private spawnFencer(): Promise<boolean> {
    let errFd: number | undefined;
    if (this.opts.logFile !== undefined) {
      try {
        errFd = openSync(this.opts.logFile, 'a');
      } catch (err) {
        this.log.error({ err: String(err), file: this.opts.logFile }, 'fence: cannot open the fencer log file; relaying its log instead');
      }
    }
    let child: ChildProcess;
    try {
      const [command, ...args] = this.fencerPath.endsWith('.mjs') ? [process.execPath, this.fencerPath] : [this.fencerPath];
      child = spawn(command!, [...args, '--data-dir', this.dataDir], {
        detached: true,
        stdio: ['pipe', 'pipe', errFd ?? 'pipe'],
        cwd: '/',
      });
    } catch (err) {
      this.log.error({ err: String(err) }, 'fence: cannot spawn the fencer: PostgreSQL is NOT fenced');
      this.scheduleRestart();
      return Promise.resolve(false);
    } finally {
      if (errFd !== undefined) closeSync(errFd);
    }
    this.child = child;
    // The agent may exit without close(): the fencer then lives on by design.
    child.unref();
    child.stdin?.on('error', () => undefined);
    let out = '';
    let readyResolve: (ok: boolean) => void = () => undefined;
    const ready = new Promise<boolean>((r) => (readyResolve = r));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(line) as Record<string, unknown>;
        } catch {
          this.log.warn({ line }, 'fence: unparsable line from the fencer');
          continue;
        }
        if (m.ev === 'ready') readyResolve(true);
        else this.onMessage(m);
      }
    });
    let errBuf = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      errBuf += chunk;
      let nl;
      while ((nl = errBuf.indexOf('\n')) >= 0) {
        const line = errBuf.slice(0, nl);
        errBuf = errBuf.slice(nl + 1);
        const level = / (ERROR|WARN|INFO) fencer/.exec(line)?.[1];
        const fields = { fencer: child.pid };
        if (level === 'ERROR') this.log.error(fields, line);
        else if (level === 'WARN') this.log.warn(fields, line);
        else this.log.info(fields, line);
      }
    });
    // None of the pipes keeps the agent alive: an agent that exits closes them, which the fencer sees.
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    child.on('error', (err) => {
      this.log.error({ err: String(err) }, 'fence: fencer process error');
      readyResolve(false);
    });
    child.on('exit', (code, sig) => {
      readyResolve(false);
      if (this.child !== child) return;
      this.child = undefined;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve(undefined);
      }
      this.pending.clear();
      if (this.closed) return;
      this.log.error({ code, signal: sig, armed: this.armed }, 'fence: the fencer died: PostgreSQL is NOT fenced until it is restarted');
      this.scheduleRestart();
    });
    const ackMs = this.opts.ackTimeoutMs ?? 5000;
    let t: NodeJS.Timeout | undefined;
    const started = Promise.race([ready, new Promise<boolean>((r) => (t = setTimeout(() => r(false), ackMs)))]).then((ok) => {
      clearTimeout(t);
      if (!ok) {
        if (this.child === child) this.log.error({ fencer: child.pid }, 'fence: the fencer did not start');
        return false;
      }
      this.log.info({ fencer: child.pid, dataDir: this.dataDir }, 'fence: fencer started');
      const last = this.lastArm;
      if (last !== undefined && this.child === child && this.restarted) {
        // A restart while armed: the same absolute deadline; a passed one fences at once.
        void this.arm(last);
      }
      this.restarted = true;
      return true;
    });
    this.ready = started;
    return started;
  }

  private scheduleRestart(): void {
    if (this.closed || this.restartTimer !== undefined) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed && this.child === undefined) void this.spawnFencer();
    }, this.opts.restartDelayMs ?? 1000);
    this.restartTimer.unref();
  }

  private onMessage(m: Record<string, unknown>): void {
    if (m.ev === 'fenced') {
      const ev: FencedEvent = {
        pid: Number(m.pid),
        killed: Array.isArray(m.killed) ? m.killed.map(Number) : [],
        alive: Array.isArray(m.alive) ? m.alive.map(Number) : [],
        lateMs: Number(m.lateMs),
      };
      this.lastArm = undefined;
      (ev.alive.length > 0 ? this.log.error : this.log.warn).call(this.log, { ...ev }, 'fence: the fencer fenced PostgreSQL: the lock refresh was too late');
      try {
        this.opts.onFenced?.(ev);
      } catch (err) {
        this.log.error({ err: String(err) }, 'fence: onFenced threw');
      }
      return;
    }
    const seq = typeof m.seq === 'number' ? m.seq : undefined;
    const p = seq === undefined ? undefined : this.pending.get(seq);
    if (p !== undefined && seq !== undefined) {
      this.pending.delete(seq);
      clearTimeout(p.timer);
      p.resolve(m);
    } else if (m.ev === 'error') {
      this.log.error({ message: m.message }, 'fence: the fencer reported an error');
    }
  }

  /** Sends one request and waits for its answer (undefined: none in time, or no fencer). */
  private async request(msg: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    if (this.closed) return undefined;
    if (this.ready !== undefined) await this.ready;
    const child = this.child;
    if (child?.stdin == null || !child.stdin.writable) {
      this.log.error({ op: msg.op }, 'fence: no fencer running (restart pending)');
      return undefined;
    }
    const seq = ++this.seq;
    const ackMs = this.opts.ackTimeoutMs ?? 5000;
    return new Promise((resolvePromise) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        this.log.error({ op: msg.op, fencer: child.pid }, 'fence: the fencer did not answer');
        resolvePromise(undefined);
      }, ackMs); // ref'd: an answer being awaited keeps the process alive
      this.pending.set(seq, { resolve: resolvePromise, timer });
      try {
        child.stdin!.write(`${JSON.stringify({ ...msg, seq })}\n`);
      } catch (err) {
        this.log.error({ err: String(err) }, 'fence: cannot write to the fencer');
      }
    });
  }

  /** After our fencer acknowledged: retire the predecessor and record ourselves in the pid file. */
  private async takeOver(): Promise<void> {
    if (this.tookOver || this.child?.pid === undefined) return;
    this.tookOver = true;
    const prev = this.predecessor;
    this.predecessor = undefined;
    if (prev !== undefined && this.isFencerOfDataDir(prev)) {
      try {
        process.kill(prev, 'SIGTERM');
        this.log.info({ fencer: prev }, 'fence: the previous fencer was told to stand down');
      } catch (err) {
        this.log.warn({ fencer: prev, err: String(err) }, 'fence: cannot signal the previous fencer');
      }
    }
    const tmp = `${this.pidFile}.tmp${process.pid}`;
    try {
      await writeFile(tmp, `${this.child.pid}\n`);
      await rename(tmp, this.pidFile);
    } catch (err) {
      this.log.error({ file: this.pidFile, err: String(err) }, 'fence: cannot write the fencer pid file: a restarted agent will not find this fencer');
    }
  }

  private findPredecessor(): number | undefined {
    let text: string;
    try {
      text = readFileSync(this.pidFile, 'utf8');
    } catch {
      return undefined;
    }
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return undefined;
    return this.isFencerOfDataDir(pid) ? pid : undefined;
  }

  /** Whether `pid` runs a fencer for our data directory (guards against reused pids). */
  private isFencerOfDataDir(pid: number): boolean {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('--data-dir');
      return argv.some(isFencerProgram) && i >= 0 && argv[i + 1] === this.dataDir;
    } catch {
      return false;
    }
  }
}
