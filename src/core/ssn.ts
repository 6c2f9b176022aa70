// synchronous_standby_names as Vigil writes and reads it, and the case-insensitive name sets
// the sync rules compare (member names are matched as PostgreSQL matches application_name).

import { nameIn } from './election.ts';
import type { LocalSync } from './model.ts';

/** The name no standby may use: ssn that makes every commit wait (strict mode without standbys). */
export const SSN_PLACEHOLDER = '__patroni_strict_sync_replica_placeholder__';

// ---- names ------------------------------------------------------------------------------------

export function lower(s: string): string {
  return s.toLowerCase();
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x) => nameIn(b, x)) && b.every((x) => nameIn(a, x));
}

export function subset(a: readonly string[], b: readonly string[]): boolean {
  return a.every((x) => nameIn(b, x));
}

export function union(...lists: (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const l of lists) for (const x of l) if (!nameIn(out, x)) out.push(x);
  return out.sort();
}

export function minus(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => !nameIn(b, x));
}

export function intersect(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => nameIn(b, x));
}

// ---- synchronous_standby_names ----------------------------------------------------------------

const PLAIN_IDENT = /^[a-z_][a-z0-9_$]*$/;

function quoteName(name: string): string {
  if (PLAIN_IDENT.test(name) && name !== 'first' && name !== 'any') return name;
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The ssn value for `names` needing `num` acknowledgements. Quorum mode gives `ANY num (a,b)`;
 * priority gives `num (a,b)` with more than one name and the bare name with one. '*' among the
 * names, or no names with num >= 1, gives the placeholder (every commit waits); no names and
 * num 0 gives '' (no synchronous replication).
 */
export function buildSsn(names: readonly string[], num: number, quorum: boolean): string {
  if (names.includes('*') || (names.length === 0 && num >= 1)) return SSN_PLACEHOLDER;
  if (names.length === 0) return '';
  const list = [...new Set(names)].sort().map(quoteName).join(',');
  const n = Math.max(1, Math.min(num, names.length));
  if (quorum) return `ANY ${n} (${list})`;
  if (names.length === 1) return list;
  return `${n} (${list})`;
}

export type ParsedSsn =
  | { kind: 'empty'; num: 0; names: [] }
  | { kind: 'priority' | 'quorum'; num: number; names: string[] }
  | { kind: 'invalid'; error: string; num: 0; names: [] };

/**
 * Parse synchronous_standby_names as PostgreSQL reads it: '', a bare list (FIRST 1), `n (list)`,
 * `FIRST n (list)`, `ANY n (list)`; names bare (case kept; compare case-insensitively) or
 * double-quoted. Never throws: anything else is { kind: 'invalid' } (the leader rewrites it).
 */
export function parseSsn(value: string | undefined | null): ParsedSsn {
  const s = (value ?? '').trim();
  if (s === '') return { kind: 'empty', num: 0, names: [] };
  const tokens: { t: 'word' | 'quoted' | 'num' | '(' | ')' | ','; v: string }[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ t: c, v: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let out = '';
      for (;;) {
        if (j >= s.length) return { kind: 'invalid', error: 'unterminated quoted name', num: 0, names: [] };
        if (s[j] === '"') {
          if (s[j + 1] === '"') {
            out += '"';
            j += 2;
            continue;
          }
          break;
        }
        out += s[j];
        j++;
      }
      if (out === '') return { kind: 'invalid', error: 'empty quoted name', num: 0, names: [] };
      tokens.push({ t: 'quoted', v: out });
      i = j + 1;
    } else if (/\d/.test(c)) {
      const m = /^\d+/.exec(s.slice(i)) as RegExpExecArray;
      // A name may start with a digit only when quoted; a number followed by letters is invalid.
      if (/^[A-Za-z_$]/.test(s.slice(i + m[0].length))) return { kind: 'invalid', error: `bad token at "${s.slice(i, i + 20)}"`, num: 0, names: [] };
      tokens.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_\u0080-\uffff*]/.test(c)) {
      if (c === '*') {
        tokens.push({ t: 'word', v: '*' });
        i++;
        continue;
      }
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(s.slice(i)) as RegExpExecArray;
      tokens.push({ t: 'word', v: m[0] });
      i += m[0].length;
    } else {
      return { kind: 'invalid', error: `unexpected character ${JSON.stringify(c)}`, num: 0, names: [] };
    }
  }
  let pos = 0;
  let kind: 'priority' | 'quorum' = 'priority';
  let num = 1;
  let parenthesised = false;
  const first = tokens[0];
  const kw = first?.t === 'word' ? first.v.toLowerCase() : '';
  if ((kw === 'first' || kw === 'any') && tokens[1]?.t === 'num') {
    kind = kw === 'any' ? 'quorum' : 'priority';
    num = Number(tokens[1].v);
    pos = 2;
    parenthesised = true;
  } else if (first?.t === 'num') {
    num = Number(first.v);
    pos = 1;
    parenthesised = true;
  }
  if (parenthesised) {
    if (tokens[pos]?.t !== '(' || tokens[tokens.length - 1]?.t !== ')') return { kind: 'invalid', error: 'expected a parenthesised list after the number', num: 0, names: [] };
    pos++;
  }
  const end = parenthesised ? tokens.length - 1 : tokens.length;
  const names: string[] = [];
  for (;;) {
    const tok = tokens[pos];
    if (tok === undefined || pos >= end || (tok.t !== 'word' && tok.t !== 'quoted')) return { kind: 'invalid', error: 'expected a standby name', num: 0, names: [] };
    names.push(tok.v);
    pos++;
    if (pos === end) break;
    if (tokens[pos]?.t !== ',') return { kind: 'invalid', error: 'expected "," between names', num: 0, names: [] };
    pos++;
  }
  if (num < 1) return { kind: 'invalid', error: 'the number of synchronous standbys must be at least 1', num: 0, names: [] };
  return { kind, num, names };
}

/** The canonical form of an ssn value (undefined when unparsable), for comparisons. */
function canonicalSsn(value: string): string | undefined {
  const p = parseSsn(value);
  if (p.kind === 'invalid') return undefined;
  if (p.kind === 'empty') return '';
  if (p.names.length === 1 && p.names[0] === SSN_PLACEHOLDER && p.kind === 'priority') return SSN_PLACEHOLDER;
  return buildSsn(p.names, p.num, p.kind === 'quorum');
}

/** The running ssn already means `desired` (and Vigil manages it). */
export function ssnIs(local: LocalSync, desired: string): boolean {
  return local.managed && canonicalSsn(local.ssn) === canonicalSsn(desired);
}
