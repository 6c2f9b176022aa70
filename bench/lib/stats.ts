// Small order statistics for benchmark figures. Inputs are plain arrays of finite numbers; empty
// input gives undefined rather than NaN so callers must say what "no data" means.

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

/** Median (mean of the two middle values for an even count); undefined for an empty array. */
export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** n, median, min and max of the finite values; undefined when there are none. */
export function summarize(xs: readonly number[]): Summary | undefined {
  const finite = xs.filter((x) => Number.isFinite(x));
  const m = median(finite);
  if (m === undefined) return undefined;
  return { n: finite.length, median: m, min: Math.min(...finite), max: Math.max(...finite) };
}

/** Right-pads every column to its widest cell; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const out = rows.map(line);
  if (out.length > 0) out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return out.join('\n');
}
