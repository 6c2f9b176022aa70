// `vigil validate-config FILE`: load a configuration file (or directory) the way the agent does,
// PATRONI_* environment overrides included, and print every problem at once.
// Exit status: 0 no errors (warnings allowed), 1 configuration errors, 2 usage or read errors.

import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.ts';
import type { ConfigIssue } from '../config/types.ts';

const USAGE = `usage: vigil validate-config [-i] FILE

Loads FILE (a Patroni-style YAML file, or a directory of *.yml files merged in order) with the
PATRONI_* environment overrides applied, and prints every error and warning.
  -i, --ignore-listen-port   accepted for compatibility with patroni --validate-config (Vigil
                             does not try to bind the listen addresses)
Exit status: 0 valid, 1 errors found, 2 usage error or unreadable file.`;

/**
 * One line per issue, "FILE: path: message" (errors) or "FILE: warning: path: message", in the
 * order given, joined with newlines and without a trailing one; '' when there are none. An issue
 * about the file as a whole (empty path) prints as "FILE: message".
 */
export function formatIssues(file: string, issues: ConfigIssue[]): string {
  return issues
    .map((i) => {
      const where = i.path === '' ? '' : `${i.path}: `;
      const level = i.severity === 'warning' ? 'warning: ' : '';
      return `${file}: ${level}${where}${i.message}`;
    })
    .join('\n');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        'ignore-listen-port': { type: 'boolean', short: 'i' },
      },
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`Error: ${parsed.positionals.length === 0 ? 'missing FILE' : 'expected exactly one FILE'}\n${USAGE}\n`);
    return 2;
  }
  const file = parsed.positionals[0] as string;
  let result;
  try {
    result = await loadConfigFile(file, process.env);
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const errors = result.issues.filter((i) => i.severity === 'error').length;
  const warnings = result.issues.length - errors;
  const text = formatIssues(file, result.issues);
  if (text !== '') process.stdout.write(text + '\n');
  const summary = errors === 0
    ? `${file}: configuration is valid (${plural(warnings, 'warning')})`
    : `${file}: configuration is invalid: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}`;
  process.stdout.write(summary + '\n');
  return errors === 0 ? 0 : 1;
}
