// initdb and pg_basebackup options in Patroni's forms, rendered as command-line arguments. Which
// options are refused, and why, is postgres/options.ts's single list: the configuration refuses
// exactly what the controller would refuse.

import { canonicalOption, optionRefusal, renderOption, type OptionTool } from '../postgres/options.ts';
import { show } from './dynamic.ts';
import { describe, isMap, sub, type Issues, type Obj } from './fields.ts';

/**
 * Renders Patroni's option forms as arguments: a list of strings ("data-checksums" -> --data-checksums)
 * and single-key maps ({encoding: UTF8} -> --encoding=UTF8), or one map of option -> value.
 */
export function renderOptions(issues: Issues, parent: Obj, key: string, path: string, tool: OptionTool): string[] {
  const v = parent[key];
  const p = sub(path, key);
  if (v === undefined || v === null) return [];
  const out: string[] = [];
  const one = (name: string, value: unknown, itemPath: string): void => {
    const opt = name.replace(/^-+/, '');
    if (opt === '') {
      issues.error(itemPath, 'empty option name');
      return;
    }
    const scalar = typeof value === 'string' || typeof value === 'number' ? value : undefined;
    const refusal = optionRefusal(tool, opt, scalar);
    if (refusal !== undefined) {
      const canonical = canonicalOption(tool, opt);
      const named = canonical === opt ? `"${opt}"` : `"${opt}" (${canonical})`;
      issues.error(itemPath, `option ${named} is not allowed for ${tool}: ${refusal}`);
    } else if (value !== undefined && scalar === undefined) {
      issues.error(itemPath, `expected a string or number value for option "${opt}", got ${describe(value, opt)}`);
    } else out.push(renderOption(opt, scalar));
  };
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const itemPath = `${p}[${i}]`;
      if (typeof item === 'string') one(item, undefined, itemPath);
      else if (isMap(item)) {
        const entries = Object.entries(item);
        if (entries.length !== 1) issues.error(itemPath, `expected a single-key mapping like {encoding: UTF8}, got ${show(item)}`);
        else one(entries[0]![0], entries[0]![1], itemPath);
      } else issues.error(itemPath, `expected an option name or a single-key mapping, got ${describe(item)}`);
    });
  } else if (isMap(v)) {
    for (const [name, value] of Object.entries(v)) one(name, value, sub(p, name));
  } else {
    issues.error(p, `expected a list of options, got ${describe(v)}`);
  }
  return out;
}
