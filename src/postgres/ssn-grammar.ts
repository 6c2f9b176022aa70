// The grammar of synchronous_standby_names, checked before a value is written (sync.ts). No IO.

/**
 * Checks a synchronous_standby_names value against PostgreSQL's grammar (syncrep_gram.y), so that a
 * value PostgreSQL would reject (and refuse to start with) never reaches postgresql.conf:
 * '' | list | N (list) | FIRST N (list) | ANY N (list), list = name [, name ...], a name being an
 * identifier other than ANY/FIRST, a "double-quoted" name (even ""), digits or *, N > 0. Returns an error
 * message, or undefined.
 */
export function checkSyncStandbyNames(value: string): string | undefined {
  if (value.includes('\0')) return 'contains a NUL byte';
  type Tok = { k: 'name' | 'num' | 'any' | 'first' | '(' | ')' | ','; v: string };
  const toks: Tok[] = [];
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      toks.push({ k: c, v: c });
      i++;
    } else if (c === '*') {
      toks.push({ k: 'name', v: c });
      i++;
    } else if (c === '"') {
      let v = '';
      let j = i + 1;
      for (; j < value.length; j++) {
        if (value[j] === '"') {
          if (value[j + 1] === '"') {
            v += '"';
            j++;
          } else break;
        } else v += value[j];
      }
      if (j >= value.length) return 'unterminated quoted name';
      toks.push({ k: 'name', v });
      i = j + 1;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(value.slice(i))![0];
      // PostgreSQL's scanner reads digits followed by letters as a number then a name: reject.
      if (/^[A-Za-z_\u0080-\uffff$]/.test(value.slice(i + m.length))) return `invalid name starting with digits at offset ${i}`;
      toks.push({ k: 'num', v: m });
      i += m.length;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(value.slice(i))![0];
      const low = m.toLowerCase();
      toks.push({ k: low === 'any' ? 'any' : low === 'first' ? 'first' : 'name', v: m });
      i += m.length;
    } else {
      return `unexpected character ${JSON.stringify(c)} at offset ${i}`;
    }
  }
  if (toks.length === 0) return undefined;
  let p = 0;
  const peek = (): Tok | undefined => toks[p];
  const list = (): string | undefined => {
    for (;;) {
      const t = toks[p++];
      if (t === undefined || (t.k !== 'name' && t.k !== 'num')) return 'expected a standby name';
      if (peek()?.k !== ',') return undefined;
      p++;
    }
  };
  const first = peek()!;
  const counted = (): string | undefined => {
    const n = toks[p++];
    if (n?.k !== 'num') return 'expected the number of synchronous standbys';
    if (!(Number(n.v) > 0)) return 'the number of synchronous standbys must be greater than zero';
    if (toks[p++]?.k !== '(') return "expected '('";
    const e = list();
    if (e !== undefined) return e;
    if (toks[p++]?.k !== ')') return "expected ')'";
    return undefined;
  };
  let err: string | undefined;
  if ((first.k === 'any' || first.k === 'first') && toks[1]?.k === 'num') {
    p = 1;
    err = counted();
  } else if (first.k === 'num' && toks[1]?.k === '(') {
    err = counted();
  } else {
    // Bare ANY/FIRST are keywords, not names (they must be double-quoted to name a standby).
    err = list();
  }
  if (err === undefined && p < toks.length) err = `unexpected ${JSON.stringify(toks[p]!.v)}`;
  return err;
}
