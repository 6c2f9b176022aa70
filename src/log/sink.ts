// Where log lines go: standard error (Patroni's default) or `<dir>/patroni.log`, rotated as
// Patroni's rotating file handler does (before a line would bring the file to `file_size` bytes,
// keeping `file_num` older files patroni.log.1 ... patroni.log.<file_num>).
//
// Contract: write() never blocks and never throws. Lines are queued in memory and written by one
// asynchronous write at a time (fs.write runs on libuv's thread pool, so a stalled pipe or disk holds
// one pool thread, never the event loop). When the queue holds `maxQueue` lines, or a write fails
// (disk full, directory removed, pipe closed), lines are dropped and counted; the count is reported
// in a line of its own (`lostLine`) as soon as a write succeeds again.

import { closeSync, constants as fsConstants, fchmod, fstat, open, write } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface FileTarget {
  dir: string;
  /** Rotate before a line would bring the file to this many bytes (a longer line gets a file of its own); 0: never. */
  fileSize: number;
  /** Rotated files kept; 0: the file is never rotated. */
  fileNum: number;
  /** Permission bits of the log file; undefined: 0666 less the umask. */
  mode?: number;
}

/** Patroni's file name, so that log shippers pointed at it keep working. */
export const LOG_FILE_NAME = 'patroni.log';

const EAGAIN_RETRY_MS = 50;

function writeAsync(fd: number, buf: Buffer, offset: number): Promise<number> {
  return new Promise((res, rej) => write(fd, buf, offset, buf.length - offset, null, (err, n) => (err ? rej(err) : res(n))));
}

function openAsync(path: string): Promise<number> {
  return new Promise((res, rej) => open(path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT, 0o666, (err, fd) => (err ? rej(err) : res(fd))));
}

function sizeOf(fd: number): Promise<number> {
  return new Promise((res) => fstat(fd, (err, st) => res(err ? 0 : st.size)));
}

function chmodAsync(fd: number, mode: number): Promise<void> {
  return new Promise((res) => fchmod(fd, mode, () => res()));
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

export class LineSink {
  private queue: string[] = [];
  private busy = false;
  private lost = 0;
  private lostReason = '';
  private fd: number | undefined;
  private size = 0;
  private closed = false;
  private idle: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private rotationBroken = false;

  /**
   * `target`: a file target, or a file descriptor (2 for standard error) that is not closed.
   * `lostLine(n, reason)` renders the report of n dropped lines.
   */
  constructor(
    readonly target: FileTarget | number,
    private maxQueue: number,
    private readonly lostLine: (count: number, reason: string) => string,
  ) {
    if (typeof target === 'number') this.fd = target;
  }

  /** Lines dropped and not reported yet. */
  get pendingLost(): number {
    return this.lost;
  }

  /** Lines waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  setMaxQueue(n: number): void {
    this.maxQueue = n;
  }

  /** The file's settings may change without reopening it (reload). */
  retarget(t: FileTarget): boolean {
    if (typeof this.target === 'number' || t.dir !== this.target.dir) return false;
    this.rotationBroken = false;
    this.target.fileSize = t.fileSize;
    this.target.fileNum = t.fileNum;
    if (t.mode !== this.target.mode) {
      this.target.mode = t.mode;
      if (t.mode !== undefined && this.fd !== undefined) void chmodAsync(this.fd, t.mode);
    }
    return true;
  }

  /** Queue one line (without its newline). Never blocks, never throws. */
  write(line: string): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueue) {
      this.drop(1, 'the log queue is full');
      return;
    }
    this.queue.push(line + '\n');
    this.kick();
  }

  /** Resolves once everything queued so far was written or dropped. */
  flush(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((res) => this.idle.push(res));
  }

  /** Flush, then close a file (never a given descriptor). Later writes are ignored. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (typeof this.target !== 'number' && this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
      this.fd = undefined;
    }
  }

  private drop(n: number, reason: string): void {
    this.lost += n;
    this.lostReason = reason;
  }

  private kick(): void {
    if (this.busy || this.timer !== undefined || this.closed) return;
    this.busy = true;
    void this.drain().catch((err: unknown) => this.drop(this.queue.splice(0).length, String(err))).finally(() => {
      this.busy = false;
      if (this.queue.length > 0 && this.timer === undefined && !this.closed) this.kick();
      else if (this.queue.length === 0 || this.closed) for (const r of this.idle.splice(0)) r();
    });
  }

  /** Retry after `ms` (the queue keeps what it has); flush() waiters are released meanwhile. */
  private later(ms: number): void {
    for (const r of this.idle.splice(0)) r();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, ms);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      // Opened again at each batch while it fails (a directory that comes back, a disk with room).
      if (this.fd === undefined && !(await this.openFile())) {
        this.drop(this.queue.length, this.lostReason);
        this.queue = [];
        return;
      }
      let carried = 0;
      if (this.lost > 0) {
        carried = this.lost;
        this.queue.unshift(this.lostLine(this.lost, this.lostReason) + '\n');
        this.lost = 0;
      }
      if (this.rotationDue()) {
        await this.rotate(this.target as FileTarget);
        continue;
      }
      const batch = this.takeBatch();
      const buf = Buffer.from(batch.join(''));
      let offset = 0;
      try {
        while (offset < buf.length) offset += await writeAsync(this.fd as number, buf, offset);
        this.size += buf.length;
      } catch (err) {
        if (code(err) === 'EAGAIN') {
          // A non-blocking pipe that is full: keep the rest and try again a little later.
          const rest = buf.subarray(offset).toString();
          if (rest !== '') this.queue.unshift(rest);
          this.size += offset;
          this.later(EAGAIN_RETRY_MS);
          return;
        }
        // The report of earlier losses, if it was in this batch, failed with it: count them again.
        this.drop(batch.length - (carried > 0 ? 1 : 0) + carried, `write failed: ${code(err) ?? String(err)}`);
        if (typeof this.target !== 'number') this.closeFile();
      }
    }
  }

  /** The next lines to write: all queued ones, or for a file as many as fit before rotation. */
  private takeBatch(): string[] {
    const t = this.target;
    if (typeof t === 'number' || t.fileSize <= 0 || t.fileNum <= 0) return this.queue.splice(0);
    let bytes = this.size;
    let n = 0;
    for (const line of this.queue) {
      const b = Buffer.byteLength(line);
      if (n > 0 && bytes + b >= t.fileSize) break;
      bytes += b;
      n++;
    }
    return this.queue.splice(0, n);
  }

  /** The next queued line would take a non-empty rotated file past file_size. */
  private rotationDue(): boolean {
    const t = this.target;
    if (typeof t === 'number' || t.fileSize <= 0 || t.fileNum <= 0 || this.size === 0 || this.rotationBroken) return false;
    return this.size + Buffer.byteLength(this.queue[0] as string) >= t.fileSize;
  }

  private async openFile(): Promise<boolean> {
    const t = this.target as FileTarget;
    try {
      const fd = await openAsync(join(t.dir, LOG_FILE_NAME));
      if (t.mode !== undefined) await chmodAsync(fd, t.mode);
      this.fd = fd;
      this.size = await sizeOf(fd);
      return true;
    } catch (err) {
      this.lostReason = `cannot open ${join(t.dir, LOG_FILE_NAME)}: ${code(err) ?? String(err)}`;
      return false;
    }
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // nothing to do
    }
    this.fd = undefined;
    this.size = 0;
  }

  /**
   * patroni.log.<n-1> -> .<n>, ..., patroni.log -> .1; the next write opens a new file. A failed
   * rename (permissions) leaves the current file to grow until the settings are reloaded.
   */
  private async rotate(t: FileTarget): Promise<void> {
    this.closeFile();
    const base = join(t.dir, LOG_FILE_NAME);
    const ignoreMissing = (err: unknown): void => {
      if (code(err) !== 'ENOENT') throw err;
    };
    try {
      await unlink(`${base}.${t.fileNum}`).catch(ignoreMissing);
      for (let i = t.fileNum - 1; i >= 1; i--) await rename(`${base}.${i}`, `${base}.${i + 1}`).catch(ignoreMissing);
      await rename(base, `${base}.1`).catch(ignoreMissing);
    } catch {
      this.rotationBroken = true;
    }
  }
}
