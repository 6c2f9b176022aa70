// bin/vigil (and patronictl) as child processes, for the command-line tests (test/cli).

import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const VIGIL = join(ROOT, 'bin', 'vigil');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a command, without PATRONICTL_CONFIG_FILE and DCS_URL from this process's environment (`env`
 * is added on top). `input` is written to its stdin; without it stdin is closed at once (end of
 * file). A child that exits or closes stdin before reading all of `input` (EPIPE) is judged by its
 * output and exit code like any other; another error writing stdin rejects. code -1: killed (the
 * timeout) or not started.
 */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolvePromise, rejectPromise) => {
    const env = { ...process.env, PATRONICTL_CONFIG_FILE: '', DCS_URL: '', ...opts.env };
    const child = execFile(cmd, args, { env, timeout: opts.timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') rejectPromise(err);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
