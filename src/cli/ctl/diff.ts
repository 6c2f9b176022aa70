// A unified diff of two texts, shaped like Python's difflib.unified_diff with empty file names
// (what patronictl edit-config prints): `--- `, `+++ `, then hunks with 3 lines of context.
// Lines are matched as difflib's SequenceMatcher matches them, so the hunks are the same.

type Op = { tag: 'equal' | 'change'; a0: number; a1: number; b0: number; b1: number };

/** Lines of a text as difflib sees patronictl's input: trailing newlines dropped, then split. */
export function splitLines(text: string): string[] {
  return text.replace(/\n+$/, '').split('\n');
}

/**
 * Matching blocks as difflib.SequenceMatcher finds them (no junk function, autojunk on): the
 * longest matching run first (earliest in a, then in b, on ties), then recursively on each side.
 * Elements of b occurring more than 1% + 1 times are "popular" when b has 200+ lines: they do not
 * seed a match but extend one.
 */
function matchingBlocks(a: string[], b: string[]): Array<[number, number, number]> {
  const b2j = new Map<string, number[]>();
  b.forEach((line, j) => {
    const l = b2j.get(line);
    if (l) l.push(j);
    else b2j.set(line, [j]);
  });
  if (b.length >= 200) {
    const ntest = Math.floor(b.length / 100) + 1;
    for (const [k, v] of [...b2j]) if (v.length > ntest) b2j.delete(k);
  }
  const longest = (alo: number, ahi: number, blo: number, bhi: number): [number, number, number] => {
    let besti = alo;
    let bestj = blo;
    let bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (const j of b2j.get(a[i]!) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = next;
    }
    while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) {
      besti--;
      bestj--;
      bestsize++;
    }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) bestsize++;
    return [besti, bestj, bestsize];
  };
  const blocks: Array<[number, number, number]> = [];
  const queue: Array<[number, number, number, number]> = [[0, a.length, 0, b.length]];
  while (queue.length > 0) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const [i, j, k] = longest(alo, ahi, blo, bhi);
    if (k === 0) continue;
    blocks.push([i, j, k]);
    if (alo < i && blo < j) queue.push([alo, i, blo, j]);
    if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
  }
  blocks.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const merged: Array<[number, number, number]> = [];
  for (const blk of blocks) {
    const last = merged[merged.length - 1];
    if (last && last[0] + last[2] === blk[0] && last[1] + last[2] === blk[1]) last[2] += blk[2];
    else merged.push([...blk]);
  }
  merged.push([a.length, b.length, 0]);
  return merged;
}

function opcodes(a: string[], b: string[]): Op[] {
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  for (const [ai, bj, size] of matchingBlocks(a, b)) {
    if (i < ai || j < bj) ops.push({ tag: 'change', a0: i, a1: ai, b0: j, b1: bj });
    if (size > 0) ops.push({ tag: 'equal', a0: ai, a1: ai + size, b0: bj, b1: bj + size });
    i = ai + size;
    j = bj + size;
  }
  return ops;
}

/** difflib's hunk range: `start,len`, `start` when len is 1, `start-1,0` when empty. */
function range(start: number, stop: number): string {
  let beginning = start + 1;
  const length = stop - start;
  if (length === 1) return `${beginning}`;
  if (length === 0) beginning -= 1;
  return `${beginning},${length}`;
}

/** Group opcodes into hunks with `n` lines of context, as difflib.get_grouped_opcodes. */
function grouped(ops: Op[], n: number): Op[][] {
  if (ops.length === 0) return [];
  const codes = ops.map((o) => ({ ...o }));
  const first = codes[0]!;
  if (first.tag === 'equal') {
    first.a0 = Math.max(first.a0, first.a1 - n);
    first.b0 = Math.max(first.b0, first.b1 - n);
  }
  const last = codes[codes.length - 1]!;
  if (last.tag === 'equal') {
    last.a1 = Math.min(last.a1, last.a0 + n);
    last.b1 = Math.min(last.b1, last.b0 + n);
  }
  const groups: Op[][] = [];
  let group: Op[] = [];
  for (const c of codes) {
    if (c.tag === 'equal' && c.a1 - c.a0 > 2 * n) {
      group.push({ tag: 'equal', a0: c.a0, a1: Math.min(c.a1, c.a0 + n), b0: c.b0, b1: Math.min(c.b1, c.b0 + n) });
      groups.push(group);
      group = [];
      group.push({ tag: 'equal', a0: Math.max(c.a0, c.a1 - n), a1: c.a1, b0: Math.max(c.b0, c.b1 - n), b1: c.b1 });
    } else {
      group.push(c);
    }
  }
  if (group.length > 0 && !(group.length === 1 && group[0]!.tag === 'equal')) groups.push(group);
  return groups;
}

/** Lines of the unified diff of `before` and `after` (empty when the texts have the same lines). */
export function unifiedDiff(before: string, after: string, context = 3): string[] {
  const a = splitLines(before);
  const b = splitLines(after);
  const groups = grouped(opcodes(a, b), context);
  if (groups.length === 0) return [];
  const out = ['--- ', '+++ '];
  for (const g of groups) {
    const f = g[0]!;
    const l = g[g.length - 1]!;
    out.push(`@@ -${range(f.a0, l.a1)} +${range(f.b0, l.b1)} @@`);
    for (const op of g) {
      if (op.tag === 'equal') {
        for (let i = op.a0; i < op.a1; i++) out.push(` ${a[i]}`);
        continue;
      }
      for (let i = op.a0; i < op.a1; i++) out.push(`-${a[i]}`);
      for (let j = op.b0; j < op.b1; j++) out.push(`+${b[j]}`);
    }
  }
  return out;
}
