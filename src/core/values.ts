// One reading of each Patroni value, shared by the core, the configuration loader, the REST API
// and the CLI (src/core must not import src/config, so the readings live here). Pure functions.

/**
 * Patroni's parse_bool. Accepted, case-insensitively and without trimming:
 * - true: the strings "true", "yes", "on", "1"; the boolean true; the number 1;
 * - false: the strings "false", "no", "off", "0"; the boolean false; the number 0.
 * Anything else (other numbers, "y", "t", " true" with spaces, null, lists, mappings) is undefined:
 * not a boolean. Callers decide what an unreadable value means (most treat it as false, as
 * Patroni's `bool(parse_bool(value))` does).
 */
export function parseBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1 ? true : v === 0 ? false : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase();
  if (s === 'true' || s === 'yes' || s === 'on' || s === '1') return true;
  if (s === 'false' || s === 'no' || s === 'off' || s === '0') return false;
  return undefined;
}

/** True only for a value parseBool reads as true (Patroni's check of a mode flag such as `pause`). */
export function isTrue(v: unknown): boolean {
  return parseBool(v) === true;
}

/** Is cluster management paused: the dynamic configuration's `pause` read by parseBool. */
export function isPaused(config: { readonly [key: string]: unknown } | undefined): boolean {
  return isTrue(config?.['pause']);
}
