import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSyncStandbyNames } from './ssn-grammar.ts';

test('checkSyncStandbyNames accepts what PostgreSQL accepts', () => {
  for (const ok of ['', '  ', 'r1', '*', 'a, b', '"pg-b"', '2 (a, b, c)', 'FIRST 1 (a,b)', 'any 2 (a, "b c", *)', '"any"', '"a""b"', '""', '12', '__patroni_strict_sync_replica_placeholder__', 'ANY 1 (r1)']) {
    assert.equal(checkSyncStandbyNames(ok), undefined, ok);
  }
  for (const bad of ['pg-b', 'any', 'first', 'ANY 0 (a)', '0 (a)', 'ANY 1 ()', 'ANY 1 (a', 'ANY (a)', 'a,', ',a', '"a', '1 (a) b', 'a b', '1abc', 'a;b', 'a\0b', 'FIRST 1 (any)']) {
    assert.equal(typeof checkSyncStandbyNames(bad), 'string', bad);
  }
});
