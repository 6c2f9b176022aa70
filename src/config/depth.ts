// Nesting depth of parsed JSON/YAML values, measured without recursion (a value nested 100,000
// levels deep must not overflow the stack of the code that checks it).

/** Deepest nesting Vigil accepts in a configuration, a REST body or the DCS /config key. */
export const MAX_NESTING = 100;

/**
 * True when `value` has containers (arrays or objects) nested more than `limit` levels deep; a
 * scalar has depth 0, `{}` and `[]` depth 1. Stops at the first container past the limit.
 */
export function nestedTooDeeply(value: unknown, limit = MAX_NESTING): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null || v instanceof Date) continue;
    if (d + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, d + 1]);
    }
  }
  return false;
}

/** The message every refusal of deep nesting uses. */
export function tooDeepMessage(limit = MAX_NESTING): string {
  return `nested too deeply (over ${limit} levels)`;
}
