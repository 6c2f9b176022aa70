// PostgreSQL WAL positions ('X/Y' text, two 32-bit hex halves) as absolute byte positions.
// JavaScript numbers are exact up to 2^53, i.e. 8 PiB of WAL: enough for any real cluster.

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses 'X/Y' into a byte position. Throws on malformed input. */
export function lsnToNumber(lsn: string): number {
  const m = LSN_RE.exec(lsn.trim());
  if (m === null) throw new Error(`invalid LSN: ${JSON.stringify(lsn)}`);
  return parseInt(m[1]!, 16) * 0x1_0000_0000 + parseInt(m[2]!, 16);
}

/** Like lsnToNumber, but undefined for null/undefined/malformed input. */
export function maybeLsn(lsn: string | null | undefined): number | undefined {
  if (lsn === null || lsn === undefined) return undefined;
  try {
    return lsnToNumber(lsn);
  } catch {
    return undefined;
  }
}

/** Formats a byte position as PostgreSQL does ('16/B374D848': upper-case hex, no padding). */
export function numberToLsn(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`invalid LSN number: ${n}`);
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n - hi * 0x1_0000_0000;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
