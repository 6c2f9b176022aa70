import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatTable, median, summarize } from './stats.ts';

test('median of odd, even and empty inputs', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), undefined);
});

test('summarize ignores non-finite values and reports n/min/max', () => {
  assert.deepEqual(summarize([5, Number.NaN, 1, 9, Number.POSITIVE_INFINITY]), { n: 3, median: 5, min: 1, max: 9 });
  assert.equal(summarize([Number.NaN]), undefined);
});

test('formatTable pads columns and underlines the header', () => {
  assert.equal(formatTable([['a', 'bb'], ['ccc', 'd']]), 'a    bb\n---  --\nccc  d');
});
