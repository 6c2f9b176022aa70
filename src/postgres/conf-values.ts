// Values as postgresql.conf writes and PostgreSQL reads them: quoting, booleans, integers, sizes.

/** Quotes a value for postgresql.conf: single quotes, backslash and quote escaped, no raw newlines. */
export function quoteConfValue(value: string): string {
  const escaped = value
    .replace(/\\/g, '\\\\')
    .replace(/'/g, "''")
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r');
  return `'${escaped}'`;
}

/** Renders a parameter value as PostgreSQL text: booleans as on/off. undefined for null/objects. */
export function confValueToString(value: unknown): string | undefined {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}

/** Interprets a PostgreSQL boolean ('on', 'true', 'yes', '1', unique prefixes...). */
export function parseBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined;
  if (typeof value !== 'string') return undefined;
  const v = value.trim().toLowerCase();
  if (v === '') return undefined;
  if (v === 'on' || v === '1' || 'true'.startsWith(v) || 'yes'.startsWith(v)) return true;
  if (v === 'o') return undefined;
  if ('off'.startsWith(v) || v === '0' || 'false'.startsWith(v) || 'no'.startsWith(v)) return false;
  return undefined;
}

export function parseIntValue(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number(value);
  return undefined;
}

/** A size in MB from a number (MB) or text with a unit (kB, MB, GB, TB). */
export function parseSizeMb(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(kB|MB|GB|TB)?\s*$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'MB';
  return unit === 'kB' ? n / 1024 : unit === 'MB' ? n : unit === 'GB' ? n * 1024 : n * 1024 * 1024;
}
