// The fuzzing suite's knobs and runner (issue 14): property-based cases from fast-check with a fixed
// seed, printed, so that a failure replays exactly.
//
// - VIGIL_FUZZ_RUNS: a multiplier of every property's default number of cases (default 1; 10 runs
//   ten times as many). The end-to-end test scales its rounds by it too.
// - VIGIL_FUZZ_SEED: the seed (default 14, the number). A failure prints fast-check's seed
//   and path: set VIGIL_FUZZ_SEED to that seed to replay it.

import fc from 'fast-check';

const runsEnv = Number(process.env.VIGIL_FUZZ_RUNS ?? '1');
/** Multiplier of the default numbers of cases (VIGIL_FUZZ_RUNS, default 1). */
export const RUNS_FACTOR = Number.isFinite(runsEnv) && runsEnv > 0 ? runsEnv : 1;
const seedEnv = Number(process.env.VIGIL_FUZZ_SEED ?? '14');
/** The fast-check seed of every property (VIGIL_FUZZ_SEED, default 14). */
export const SEED = Number.isInteger(seedEnv) ? seedEnv : 14;

/** A secret planted in inputs: it must never come out in a message, log line or reply. */
export const SECRET = 'Planted-S3cret-xyzzy';

/** Cases for a property whose default is `n` (scaled by VIGIL_FUZZ_RUNS, at least 1). */
export function runs(n: number): number {
  return Math.max(1, Math.round(n * RUNS_FACTOR));
}

/**
 * Run `property` on `defaultRuns` (scaled) cases with the suite's seed; print how many cases ran.
 * Throws fast-check's report (counterexample, seed, path) when a case fails.
 */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(
  name: string,
  defaultRuns: number,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => void | Promise<void>,
): Promise<void> {
  let cases = 0;
  const numRuns = runs(defaultRuns);
  const counted = async (...args: Ts): Promise<void> => {
    cases++;
    await predicate(...args);
  };
  const prop = fc.asyncProperty(...arbs, counted as never);
  try {
    await fc.assert(prop as fc.IAsyncProperty<Ts>, { numRuns, seed: SEED, includeErrorInReport: true });
  } finally {
    console.log(`# fuzz ${name}: ${cases} generated cases run (seed ${SEED}, VIGIL_FUZZ_RUNS=${RUNS_FACTOR})`);
  }
}

/** Strings with a bias to odd characters (controls, quotes, brackets, non-ASCII). */
export const oddString = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\\', '\n', '\u0000', '-', '.', '0', '9', 'e', '/', '%', '?', '&', '='), maxLength: 40 }),
  );

/** Any JSON-ish value, including the odd numbers and deep-ish nesting. */
export const anyValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 63), 9_000_000_001, Number.MAX_VALUE, '', ' ', 'null', '1e400', [], {}) },
    { weight: 1, arbitrary: oddString() },
  );

/** A value in which SECRET appears somewhere (as a string, in a list, in a mapping, as a key). */
export const withSecret = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constant(SECRET),
    fc.constant([SECRET]),
    fc.constant({ value: SECRET }),
    fc.constant({ [SECRET]: 1 }),
    fc.tuple(anyValue(), fc.constant(SECRET)).map(([a, s]) => [a, s]),
    fc.tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })).map(([a, b]) => `${a}${SECRET}${b}`),
    fc.constant({ nested: { deeper: [SECRET, 1] } }),
  );
