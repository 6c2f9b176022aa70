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
 * Run a command with `input` on its stdin, without PATRONICTL_CONFIG_FILE and DCS_URL from this
 * process's environment (`env` is added on top). code -1: killed (the timeout) or not started.
 */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const env = { ...process.env, PATRONICTL_CONFIG_FILE: '', DCS_URL: '', ...opts.env };
    const child = execFile(cmd, args, { env, timeout: opts.timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(opts.input ?? '');
  });
}
