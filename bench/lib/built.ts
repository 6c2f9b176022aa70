// What the footprint and REST benchmarks run: Vigil built as it ships (scripts/build.sh into a
// directory under tmp/ of the checkout, plain JavaScript), or its sources through tsx; and /proc
// readings of a node's processes.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Builds Vigil into a fresh directory; returns it and a remover. */
export async function buildVigil(): Promise<{ dir: string; remove: () => Promise<void> }> {
  await mkdir(join(ROOT, 'tmp'), { recursive: true });
  const dir = await mkdtemp(join(ROOT, 'tmp', 'bench-build-'));
  await promisify(execFile)('bash', [join(ROOT, 'scripts/build.sh'), dir], { cwd: ROOT });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** argv that runs `vigil` from the sources through tsx (what bin/vigil does). */
export function sourceVigil(): string[] {
  return [process.execPath, '--import', join(ROOT, 'node_modules/tsx/dist/esm/index.mjs'), join(ROOT, 'src/cli/main.ts')];
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, clock ticks. */
  cpuTicks: number;
}

export async function procInfo(pid: number): Promise<ProcInfo | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(f[1]), comm, cpuTicks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** VmRSS in KiB (0 when gone). */
export async function rssKiB(pid: number): Promise<number> {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `pid` and its descendants whose command is not PostgreSQL's (the HA manager's own processes). */
export async function managerTree(pid: number): Promise<number[]> {
  const all: ProcInfo[] = [];
  for (const n of await readdir('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const p = await procInfo(Number(n));
    if (p !== undefined) all.push(p);
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const p of all) if (p.ppid === out[i] && !out.includes(p.pid)) out.push(p.pid);
  }
  const keep: number[] = [];
  for (const p of out) {
    const exe = await readlink(`/proc/${p}/exe`).catch(() => '');
    if (!/\/postgres$/.test(exe)) keep.push(p);
  }
  return keep;
}

/**
 * argv that runs a built `vigil` as the package's bin does: the node flags of dist/cli/main.js's
 * shebang (`#!/usr/bin/env -S node FLAGS`), then `extra` flags, under the given node binary.
 */
export function builtVigil(node: string, dir: string, extra: readonly string[] = []): string[] {
  const main = join(dir, 'cli/main.js');
  return [node, ...shebangFlags(main), ...extra, main];
}

/** The node flags a script's `#!/usr/bin/env -S node FLAGS` line sets (none for a plain shebang). */
export function shebangFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env\s+-S\s+\S*node((?:\s+-\S+)*)\s*$/.exec(first);
  return m?.[1] === undefined ? [] : m[1].trim().split(/\s+/).filter((f) => f !== '');
}
