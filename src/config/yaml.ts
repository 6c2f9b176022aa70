// YAML 1.1 as PyYAML (Patroni) reads it, for the configuration file and PATRONI_* values.

import { parseDocument, type Tags as YamlTags } from 'yaml';
import type { Issues } from './fields.ts';

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

/** Parses YAML 1.1 text; YAML errors become issues (duplicate keys warn: the last one wins, as in Patroni). */
export function parseText(text: string, issues: Issues, label: string): unknown {
  const doc = parseDocument(text, YAML_OPTIONS);
  let fatal = false;
  for (const e of doc.errors) {
    // First line of a pretty message: "<what> at line L, column C:".
    const msg = `${label}${(e.message.split('\n')[0] ?? '').replace(/:$/, '')}`;
    if (e.code === 'DUPLICATE_KEY') issues.warn('', `${msg}; the last value wins`);
    else {
      issues.error('', `YAML syntax error: ${msg}`);
      fatal = true;
    }
  }
  for (const w of doc.warnings) issues.warn('', `YAML: ${label}${w.message.split('\n')[0]}`);
  if (fatal) return undefined;
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    issues.error('', `YAML: ${label}${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}
