import { test } from 'node:test';
import assert from 'node:assert/strict';
import { historyToPublish } from './tasks.ts';

const entries = [1, 2, 3, 4].map((tli) => ({ parentTli: tli, switchLsn: tli * 100 }));
const old: Array<[number, number, string, string?, string?]> = [[1, 100, 'no recovery target specified', '2020-01-01T00:00:00+00:00', 'a']];

test('historyToPublish: known lines kept as they are, new ones stamped with now and this member', () => {
  const lines = historyToPublish(entries, old, 'NOW', 'b', 0);
  assert.equal(lines.length, 4);
  assert.deepEqual(lines[0], old[0]);
  assert.deepEqual(lines[3], [4, 400, 'no recovery target specified', 'NOW', 'b']);
});

test('historyToPublish: max_timelines_history > 0 keeps only the newest lines', () => {
  assert.deepEqual(historyToPublish(entries, old, 'NOW', 'b', 2).map((l) => l[0]), [3, 4]);
  assert.deepEqual(historyToPublish(entries, old, 'NOW', 'b', 10).map((l) => l[0]), [1, 2, 3, 4]);
});
