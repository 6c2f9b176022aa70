// A unified diff of two texts, shaped like Python's difflib.unified_diff with empty file names
// (what patronictl edit-config prints): `--- `, `+++ `, then hunks with 3 lines of context.
// Line matching is a longest common subsequence (quadratic; configurations are small).

type Op = { tag: 'equal' | 'change'; a0: number; a1: number; b0: number; b1: number };

/** Lines of a text as difflib sees patronictl's input: trailing newlines dropped, then split. */
export function splitLines(text: string): string[] {
  return text.replace(/\n+$/, '').split('\n');
}

function opcodes(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: LCS length of a[i..] and b[j..].
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const ops: Op[] = [];
  const push = (tag: Op['tag'], i0: number, i1: number, j0: number, j1: number): void => {
    const last = ops[ops.length - 1];
    if (last && last.tag === tag) {
      last.a1 = i1;
      last.b1 = j1;
    } else ops.push({ tag, a0: i0, a1: i1, b0: j0, b1: j1 });
  };
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      push('equal', i, i + 1, j, j + 1);
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      push('change', i, i, j, j + 1);
      j++;
    } else {
      push('change', i, i + 1, j, j);
      i++;
    }
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
