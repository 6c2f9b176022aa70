// Runs Patroni 3.0.2 (/usr/bin/patroni) on exactly the per-node YAML files LocalCluster writes for
// Vigil, so both systems are measured with the same configuration. Differences from a Vigil node:
// - Patroni runs as the `postgres` OS user (PostgreSQL refuses root), from its node directory, with
//   the newest /usr/lib/postgresql/<v>/bin prepended to PATH (the YAML names no bin_dir; Vigil finds
//   the binaries on its own).
// - Patroni starts the postmaster from a helper that calls setsid() and exits, so the postmaster is
//   not its own process-group leader; killPostgres therefore signals the postmaster's actual
//   process group (read from /proc), which holds the postmaster and its children only.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';

import { LocalCluster } from '../../src/local/cluster.ts';
import { pgOsUser } from '../../src/postgres/exec.ts';

export const PATRONI_BIN = '/usr/bin/patroni';

/** The newest /usr/lib/postgresql/<version>/bin that has a postgres binary, or undefined. */
export function pgBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(base).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'postgres'))) return join(base, v, 'bin');
  return undefined;
}

/** Why Patroni cannot run here, or undefined when it looks runnable. */
export function patroniUnavailableReason(): string | undefined {
  if (!existsSync(PATRONI_BIN)) return `${PATRONI_BIN} is not installed`;
  if (pgBinDir() === undefined) return 'no PostgreSQL binaries under /usr/lib/postgresql';
  try {
    pgOsUser();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return undefined;
}

/** Process-group id of a live process (field 5 of /proc/<pid>/stat), or undefined. */
function pgidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(rest[2]);
    return Number.isInteger(pgid) && pgid > 0 ? pgid : undefined;
  } catch {
    return undefined;
  }
}

export class PatroniCluster extends LocalCluster {
  /** LocalCluster's preparation; then each node's configuration file (mode 0600, written by us)
   *  is handed to the postgres user Patroni runs as, or Patroni could not read it. */
  override async prepare(): Promise<void> {
    await super.prepare();
    const user = pgOsUser();
    if (user !== undefined) for (const n of this.nodes) await chown(n.configFile, user.uid, user.gid);
  }

  /** Starts (or restarts) one node's Patroni as the postgres user, logging to <dir>/agent.log. */
  override startAgent(name: string): void {
    const n = this.node(name);
    if (n.process !== undefined && n.process.exitCode === null && n.process.signalCode === null) return;
    const user = pgOsUser();
    const bin = pgBinDir();
    const fd = openSync(n.logFile, 'a');
    try {
      n.process = spawn(PATRONI_BIN, [n.configFile], {
        cwd: n.dir,
        stdio: ['ignore', fd, fd],
        env: {
          ...process.env,
          PATH: `${bin ?? ''}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
          HOME: user?.home ?? process.env['HOME'] ?? '/',
          PYTHONUNBUFFERED: '1',
        },
        ...(user !== undefined ? { uid: user.uid, gid: user.gid } : {}),
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Kills the postmaster's whole process group (the postmaster and its children). */
  override killPostgres(name: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.postmasterPid(name);
    if (pid === undefined) return;
    const pgid = pgidOf(pid);
    // Never signal our own group or Patroni's: only a group that is not ours.
    if (pgid !== undefined && pgid !== pgidOf(process.pid)) {
      try {
        process.kill(-pgid, signal);
        return;
      } catch {
        // fall through to the single process
      }
    }
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
