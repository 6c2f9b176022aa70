// Extra configuration for the benchmarks' nodes: a YAML (or JSON, a subset of YAML) document
// deep-merged into every node's configuration file after LocalCluster.prepare() wrote it and before
// any agent starts. Lets a run turn on a setting the cluster helper does not know about, e.g.
// `--vigil-extra '{"bootstrap":{"dcs":{"synchronous_node_count":2}}}'` or a new agent section.

import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';

export type Doc = Record<string, unknown>;

const isObject = (x: unknown): x is Doc => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * `extra` merged into `base`: objects merge key by key, recursively; anything else in `extra`
 * (scalars, arrays, null) replaces the value in `base`. Neither input is modified.
 */
export function deepMerge(base: Doc, extra: Doc): Doc {
  const out: Doc = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** Parses one --*-extra argument; throws unless it is a YAML/JSON mapping. */
export function parseExtra(text: string): Doc {
  const doc: unknown = parse(text);
  if (!isObject(doc)) throw new Error(`extra configuration must be a YAML or JSON mapping, got ${JSON.stringify(text)}`);
  return doc;
}

/** Deep-merges every document of `extras` (in order) into the YAML file `file`, in place. */
export async function mergeIntoFile(file: string, extras: readonly Doc[]): Promise<void> {
  if (extras.length === 0) return;
  const doc: unknown = parse(await readFile(file, 'utf8'));
  if (!isObject(doc)) throw new Error(`${file} is not a YAML mapping`);
  const merged = extras.reduce<Doc>((acc, e) => deepMerge(acc, e), doc);
  // writeFile keeps the file's owner and mode (0600, owned by whoever runs the node).
  await writeFile(file, `# Extra configuration merged in by the benchmark: ${JSON.stringify(extras)}\n${stringify(merged)}`);
}
