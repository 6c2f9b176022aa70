// postgresql.callbacks, pre_promote and before_stop: the user's scripts around PostgreSQL operations
// (run by src/agent/hooks.ts; docs/hooks.md). Each command is a string split into arguments as
// Patroni splits it (Python's shlex.split in POSIX mode), so the same string runs the same program
// with the same arguments.

import { describe, isMap, sub, type Issues, type Obj } from './fields.ts';
import { CALLBACK_ACTIONS, type CallbackAction } from './types.ts';

/**
 * Split a command line as Python's shlex.split (POSIX mode, comments off): whitespace separates
 * words; single quotes keep everything literally; double quotes keep everything except that a
 * backslash escapes " and \ (shlex, unlike sh, keeps it before $, ` and a newline); outside quotes a backslash escapes any character.
 * Throws on an unterminated quote or a trailing backslash (shlex raises ValueError there too).
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('no closing quotation');
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new Error('no closing quotation');
        const d = line[i] as string;
        if (d === '"') break;
        if (d === '\\' && i + 1 < line.length && '"\\'.includes(line[i + 1] as string)) {
          word += line[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('no escaped character');
      word += line[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** One command string: its arguments, or undefined after reporting why it is unusable (not a string, unbalanced quotes, empty). */
export function command(issues: Issues, value: unknown, path: string): string[] | undefined {
  if (typeof value !== 'string') {
    issues.error(path, `expected a command (a string), got ${describe(value)}`);
    return undefined;
  }
  let argv: string[];
  try {
    argv = splitCommand(value);
  } catch (err) {
    issues.error(path, `cannot split the command into arguments: ${(err as Error).message}`);
    return undefined;
  }
  if (argv.length === 0) {
    issues.error(path, 'empty command');
    return undefined;
  }
  return argv;
}

export interface HookSettings {
  callbacks?: Partial<Record<CallbackAction, string[]>>;
  prePromote?: string[];
  beforeStop?: string[];
}

/** callbacks (a mapping of the five actions to commands), pre_promote and before_stop; absent or null: not set. */
export function parseHooks(issues: Issues, pg: Obj, path: string): HookSettings {
  const out: HookSettings = {};
  const cb = pg.callbacks;
  const cbPath = sub(path, 'callbacks');
  if (cb !== undefined && cb !== null) {
    if (!isMap(cb)) issues.error(cbPath, `expected a mapping of ${CALLBACK_ACTIONS.join(', ')} to commands, got ${describe(cb)}`);
    else {
      const callbacks: Partial<Record<CallbackAction, string[]>> = {};
      for (const [action, value] of Object.entries(cb)) {
        const p = sub(cbPath, action);
        if (!(CALLBACK_ACTIONS as readonly string[]).includes(action)) {
          issues.error(p, `unknown callback ${JSON.stringify(action)}: the callbacks are ${CALLBACK_ACTIONS.join(', ')}`);
          continue;
        }
        if (value === null || value === undefined) continue;
        const argv = command(issues, value, p);
        if (argv !== undefined) callbacks[action as CallbackAction] = argv;
      }
      if (Object.keys(callbacks).length > 0) out.callbacks = callbacks;
    }
  }
  for (const [key, field] of [['pre_promote', 'prePromote'], ['before_stop', 'beforeStop']] as const) {
    const v = pg[key];
    if (v === undefined || v === null || v === '') continue;
    const argv = command(issues, v, sub(path, key));
    if (argv !== undefined) out[field] = argv;
  }
  return out;
}
