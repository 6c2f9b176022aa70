// YAML 1.1 as PyYAML (Patroni) reads it, for the configuration file and PATRONI_* values.
//
// Cost: parsing is linear in the text. The `yaml` package's own duplicate-key check compares every
// key of a mapping with every other (40,000 keys took over 10 s); it is off and keys are checked
// here with a Set per mapping. The text is bounded (MAX_CONFIG_BYTES) and so is the nesting
// (MAX_NESTING), so a configuration cannot hold the agent's event loop for long or overflow the stack.

import { Worker } from 'node:worker_threads';
import { isMap as isYamlMap, isScalar, isSeq, LineCounter, parseDocument, type Tags as YamlTags } from 'yaml';
import { MAX_NESTING, nestedTooDeeply, tooDeepMessage } from './depth.ts';
import type { Issues } from './fields.ts';
import type { ConfigIssue } from './types.ts';

/** Largest configuration text accepted (Patroni configurations are a few kilobytes). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

// YAML 1.1 as PyYAML (Patroni) reads it: yes/no/on/off/true/false are booleans, but unlike the
// `yaml` package's 1.1 schema, y/Y/n/N stay strings (`name: n` is the string "n" for Patroni).
const PY_TRUE = /^(?:[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/;
const PY_FALSE = /^(?:[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/;
function pyyamlTags(tags: YamlTags): YamlTags {
  return tags.map((t) => {
    if (typeof t === 'object' && t.tag === 'tag:yaml.org,2002:bool' && 'test' in t && t.test instanceof RegExp) {
      return { ...t, test: t.test.test('true') ? PY_TRUE : PY_FALSE } as typeof t;
    }
    return t;
  });
}
export const YAML_OPTIONS = { version: '1.1', customTags: pyyamlTags } as const;

/**
 * Positions ("line L, column C") of every key repeated in the same mapping, found in linear time
 * without recursion. Keys compare by their scalar value as a string (as the `yaml` package does
 * for the usual plain keys); non-scalar keys are not compared.
 */
function duplicateKeys(root: unknown, lines: LineCounter): string[] {
  const out: string[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isYamlMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key)) {
          const k = String(key.value);
          if (seen.has(k)) {
            const at = lines.linePos(key.range?.[0] ?? 0);
            out.push(`Map keys must be unique at line ${at.line}, column ${at.col}`);
          }
          seen.add(k);
        }
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return out;
}

/**
 * The first line of a YAML error or warning without the text it quotes: "Unexpected scalar token
 * in YAML stream: \"hunter2\" at line 2, column 8" -> "... in YAML stream (text hidden) at line 2,
 * column 8". The quoted text may be a password with a slip around it; the position is enough.
 */
function yamlMessage(message: string): string {
  const first = (message.split('\n')[0] ?? '').replace(/:$/, '');
  return first.replace(/^([^:]*?): .*?( at line \d+, column \d+)?$/, (_m, what: string, at: string | undefined) => `${what} (text hidden)${at ?? ''}`);
}

/** Parses YAML 1.1 text; YAML errors become issues (duplicate keys warn: the last one wins, as in Patroni). */
export function parseText(text: string, issues: Issues, label: string): unknown {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) {
    issues.error('', `${label}the configuration is ${bytes} bytes, over the limit of ${MAX_CONFIG_BYTES} bytes (1 MiB)`);
    return undefined;
  }
  const lines = new LineCounter();
  let doc;
  try {
    doc = parseDocument(text, { ...YAML_OPTIONS, uniqueKeys: false, lineCounter: lines });
  } catch (err) {
    // The parser recurses per nesting level: absurd nesting can exhaust the stack.
    issues.error('', `YAML: ${label}${err instanceof RangeError ? tooDeepMessage() : err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  let fatal = false;
  for (const e of doc.errors) {
    // First line of a pretty message: "<what> at line L, column C:", without the text it quotes.
    const msg = `${label}${yamlMessage(e.message)}`;
    // The composer recurses per nesting level and reports a stack overflow as an error.
    if (msg.includes('Maximum call stack size exceeded')) issues.error('', `YAML: ${label}the configuration is ${tooDeepMessage()}`);
    else issues.error('', `YAML syntax error: ${msg}`);
    fatal = true;
  }
  for (const w of doc.warnings) issues.warn('', `YAML: ${label}${yamlMessage(w.message)}`);
  if (fatal) return undefined;
  for (const d of duplicateKeys(doc.contents, lines)) issues.warn('', `${label}${d}; the last value wins`);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    issues.error('', `YAML: ${label}${err instanceof RangeError ? tooDeepMessage() : err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  if (nestedTooDeeply(value, MAX_NESTING)) {
    issues.error('', `YAML: ${label}the configuration is ${tooDeepMessage()}`);
    return undefined;
  }
  return value;
}

/** Texts up to this size are parsed on the calling thread (a worker costs more than they do). */
const INLINE_BYTES = 64 * 1024;

/**
 * parseText for callers on the agent's event loop (loading the file, reloads): a text over
 * INLINE_BYTES is parsed in a worker thread so that REST and the loop keep answering while it
 * runs. Same results and issues as parseText; when the worker cannot run, parses inline.
 * (Measured on the 2-core test machine: a 0.94 MB file of 40,000 keys, about 0.7 s to parse, left
 * no gap over 15 ms between 5 ms timer ticks.)
 */
export async function parseTextOffLoop(text: string, issues: Issues, label: string): Promise<unknown> {
  if (text.length <= INLINE_BYTES || Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) return parseText(text, issues, label);
  let result: { value: unknown; issues: ConfigIssue[] };
  try {
    result = await new Promise((resolve, reject) => {
      // A worker does not inherit the main thread's TypeScript loader: it registers tsx first.
      const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
        `.then((t) => { t.register(); return import(${JSON.stringify(new URL('./yaml-worker.ts', import.meta.url).href)}); });`;
      const w = new Worker(boot, { eval: true, workerData: { text, label } });
      w.once('message', (m: { value: unknown; issues: ConfigIssue[] }) => resolve(m));
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`the YAML worker exited with code ${code}`)));
    });
  } catch {
    return parseText(text, issues, label);
  }
  issues.list.push(...result.issues);
  return result.value;
}
