// Running PostgreSQL binaries as the right OS user, with a deadline.
//
// PostgreSQL refuses to run as root. When this process is root, every PostgreSQL binary runs as
// the `postgres` OS user (uid/gid looked up once from /etc/passwd) and every file or directory
// PostgreSQL must own is chowned to it. When not root, everything runs as ourselves.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chown, chmod, lstat } from 'node:fs/promises';
import { ExecError } from './errors.ts';

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

let cachedPgUser: OsUser | null | undefined;

/** Parses one /etc/passwd line set and returns the entry for `name`, if any. Pure. */
export function findPasswdEntry(passwd: string, name: string): OsUser | undefined {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
    return { name, uid, gid, home: f[5] ?? '/' };
  }
  return undefined;
}

/**
 * The OS user PostgreSQL binaries run as: `postgres` when we are root, undefined (= ourselves)
 * otherwise. Throws when we are root and no `postgres` user exists.
 */
export function pgOsUser(): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  if (cachedPgUser === undefined) {
    let passwd: string;
    try {
      passwd = readFileSync('/etc/passwd', 'utf8');
    } catch {
      passwd = '';
    }
    cachedPgUser = findPasswdEntry(passwd, 'postgres') ?? null;
  }
  if (cachedPgUser === null) {
    throw new Error('running as root but no "postgres" OS user exists: PostgreSQL refuses to run as root');
  }
  return cachedPgUser;
}

/** chown a path to the PostgreSQL OS user (no-op when not root), optionally chmod it. */
export async function ownForPg(path: string, mode?: number): Promise<void> {
  const u = pgOsUser();
  if (u !== undefined) {
    const st = await lstat(path);
    if (st.uid !== u.uid || st.gid !== u.gid) await chown(path, u.uid, u.gid);
  }
  if (mode !== undefined) await chmod(path, mode);
}

export interface RunOptions {
  /**
   * Hard deadline; the process group is SIGKILLed when it passes. Undefined: no deadline (long
   * work such as a base backup of a large cluster; cancel it with `signal`).
   */
  timeoutMs?: number | undefined;
  /** When it aborts, the process group is SIGKILLed and the call rejects (kind 'timeout'). */
  signal?: AbortSignal | undefined;
  /** Extra environment (merged over a cleaned copy of ours: PG* variables removed). */
  env?: Record<string, string>;
  /** Run as the PostgreSQL OS user (when root). Default true. */
  asPg?: boolean;
  cwd?: string;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 1 << 20;

/** Our environment minus libpq variables (PGHOST etc. must not leak into binaries), plus LC_ALL=C. */
export function baseEnv(extra?: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('PG')) continue;
    env[k] = v;
  }
  const u = pgOsUser();
  if (u !== undefined) {
    env.HOME = u.home;
    env.USER = u.name;
    env.LOGNAME = u.name;
  }
  env.LC_MESSAGES = 'C';
  return { ...env, ...extra };
}

/**
 * PGKRBSRVNAME for a user's script that may connect with libpq (replica methods, post_bootstrap):
 * postgresql.krbsrvname, as Patroni exports it (baseEnv drops the agent's own PG* variables).
 */
export function krbEnv(krbsrvname: string | undefined): Record<string, string> {
  return krbsrvname !== undefined && krbsrvname !== '' ? { PGKRBSRVNAME: krbsrvname } : {};
}

/**
 * Runs `cmd args`, capturing stdout/stderr (first MiB each). Resolves on an ok exit code; rejects
 * with ExecError otherwise. The child gets its own process group so the deadline kills it and
 * anything it spawned.
 */
export function run(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const u = opts.asPg === false ? undefined : pgOsUser();
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let cancelled = false;
    let child;
    try {
      child = spawn(cmd, args, {
        cwd: opts.cwd ?? '/',
        env: baseEnv(opts.env),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        ...(u !== undefined ? { uid: u.uid, gid: u.gid } : {}),
      });
    } catch (e) {
      reject(new ExecError('spawn', `${cmd}: ${(e as Error).message}`, null, ''));
      return;
    }
    const c = child;
    c.stdout.setEncoding('utf8');
    c.stderr.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += d;
    });
    c.stderr.on('data', (d: string) => {
      if (stderr.length < MAX_CAPTURE) stderr += d;
    });
    const timer = opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
        timedOut = true;
        killGroup(c.pid, 'SIGKILL');
      }, opts.timeoutMs);
    const onAbort = (): void => {
      cancelled = true;
      killGroup(c.pid, 'SIGKILL');
    };
    if (opts.signal?.aborted === true) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    c.on('error', (e) => {
      done();
      reject(new ExecError('spawn', `${cmd}: ${e.message}`, null, stderr));
    });
    c.on('close', (code, signal) => {
      done();
      const name = cmd.split('/').pop() ?? cmd;
      if (cancelled) {
        reject(new ExecError('timeout', `${name} cancelled: ${lastLines(stderr, 5)}`, code, stderr));
      } else if (timedOut) {
        reject(new ExecError('timeout', `${name} did not finish within ${opts.timeoutMs} ms: ${lastLines(stderr, 5)}`, code, stderr));
      } else if (code !== null && (opts.okCodes ?? [0]).includes(code)) {
        resolve({ code, stdout, stderr });
      } else {
        const how = code !== null ? `exit code ${code}` : `signal ${signal ?? '?'}`;
        reject(new ExecError('exit', `${name} failed (${how}): ${lastLines(stderr || stdout, 8)}`, code, stderr));
      }
    });
  });
}

/** Sends a signal to a process group, falling back to the process itself. Never throws. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function lastLines(text: string, n: number): string {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  return lines.slice(-n).join('\n');
}
