// Process selection for the freeze fault. Freezing a node means SIGSTOP for its Vigil agent and its
// PostgreSQL (postmaster and every backend/auxiliary process), but NOT for the fencer: the fencer
// (src/fence/, a `node` process whose command line contains "fencer") stands in for the kernel
// watchdog, which a frozen host does not freeze either. Stopping it would test a machine without
// any watchdog, which Vigil does not claim to survive.
//
// Contract: selectFreezeTargets() is pure; readProcs() reads /proc and tolerates processes that
// exit while it reads (they are skipped).

import { readFile } from 'node:fs/promises';

export interface Proc {
  pid: number;
  ppid: number;
  /** Command line, arguments joined by spaces ('' for kernel threads and zombies). */
  cmd: string;
}

/**
 * Whether a process is the fencer (never frozen: it plays the watchdog): a `node` process with
 * "fencer" in its command line (its script), or one whose argv[0] itself says "fencer" (a process
 * that renamed itself). A shell whose -c script merely mentions "fencer" is not one.
 */
export function isFencer(p: Proc): boolean {
  const argv0 = p.cmd.split(' ')[0] ?? '';
  return /fencer/.test(argv0) || (/(^|\/)node$/.test(argv0) && /fencer/.test(p.cmd));
}

/**
 * The pids to stop: every process in `procs` that is one of `roots` (the agent's pid, the
 * postmaster's pid) or descends from one, unless it or an ancestor below the root is a fencer.
 * The postmaster (if present) comes first, so it cannot fork replacements for children being
 * stopped. Unknown roots (already exited) are ignored.
 */
export function selectFreezeTargets(procs: readonly Proc[], roots: readonly number[], postmaster?: number): number[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const rootSet = new Set(roots.filter((r) => byPid.has(r)));
  const out: number[] = [];
  for (const p of procs) {
    let cur: Proc | undefined = p;
    let keep = false;
    // Walk up to a root; a fencer on the way (itself included) excludes the process. The hop limit
    // guards against a malformed (cyclic) table.
    for (let hops = 0; cur !== undefined && hops < 64; hops++) {
      if (isFencer(cur)) break;
      if (rootSet.has(cur.pid)) {
        keep = true;
        break;
      }
      cur = cur.ppid === cur.pid ? undefined : byPid.get(cur.ppid);
    }
    if (keep) out.push(p.pid);
  }
  out.sort((a, b) => (a === postmaster ? -1 : b === postmaster ? 1 : a - b));
  return out;
}

/** Reads pid, ppid and command line of the given pids from /proc; vanished pids are skipped. */
export async function readProcs(pids: readonly number[]): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(rest[1]);
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean).join(' ');
      if (Number.isInteger(ppid)) out.push({ pid, ppid, cmd });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The one-letter state of a process ('T' = stopped), or undefined when it is gone. */
export async function procState(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}
