// Helpers for the fencer tests: a fake postmaster tree and /proc checks.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const text = readFileSync(`/proc/${n}/stat`, 'utf8');
      if (Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

/** Polls until `fn` is true; throws with `what` after `ms`. */
export async function until(what: string, fn: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export interface FakeTree {
  postmaster: number;
  children: number[];
  all(): number[];
  kill(): void;
}

/**
 * A stand-in for PostgreSQL: a process whose cwd is `dir` (the "data directory"), in its own
 * process group, with two children that each call setsid() like PostgreSQL backends do.
 */
export async function fakePostmaster(dir: string): Promise<FakeTree> {
  const child = spawn('sh', ['-c', 'setsid sleep 1000 & setsid sleep 1000 & exec sleep 1000'], { cwd: dir, detached: true, stdio: 'ignore' });
  child.unref();
  const pm = child.pid!;
  await until('the fake backends', () => childrenOf(pm).length >= 2);
  const children = childrenOf(pm);
  return {
    postmaster: pm,
    children,
    all: () => [pm, ...children],
    kill: () => {
      for (const p of [pm, ...children]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
    },
  };
}

/** A logger that keeps lines. */
export function memLogger(): { lines: string[]; debug: (o: object, m?: string) => void; info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void; error: (o: object, m?: string) => void } {
  const lines: string[] = [];
  const at = (level: string) => (o: object, m?: string) => lines.push(`${level} ${m ?? ''} ${JSON.stringify(o)}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
