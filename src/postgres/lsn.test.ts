import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lsnToNumber, maybeLsn, numberToLsn } from './lsn.ts';

test('lsnToNumber parses X/Y as absolute byte positions', () => {
  assert.equal(lsnToNumber('0/0'), 0);
  assert.equal(lsnToNumber('0/3000028'), 0x3000028);
  assert.equal(lsnToNumber('1/0'), 0x1_0000_0000);
  assert.equal(lsnToNumber('16/B374D848'), 0x16 * 0x1_0000_0000 + 0xb374d848);
  assert.equal(lsnToNumber('ff/ffffffff'), 0xff * 0x1_0000_0000 + 0xffffffff);
});

test('lsnToNumber rejects malformed text', () => {
  for (const bad of ['', '0', '0/', '/1', 'g/1', '1/2/3', '123456789/0', '0/x']) {
    assert.throws(() => lsnToNumber(bad), /invalid LSN/, bad);
  }
  assert.equal(maybeLsn('junk'), undefined);
  assert.equal(maybeLsn(null), undefined);
  assert.equal(maybeLsn('0/10'), 16);
});

test('numberToLsn formats like PostgreSQL and round-trips', () => {
  assert.equal(numberToLsn(0), '0/0');
  assert.equal(numberToLsn(0x3000028), '0/3000028');
  assert.equal(numberToLsn(0x16 * 0x1_0000_0000 + 0xb374d848), '16/B374D848');
  for (const n of [1, 0xffffffff, 0x1_0000_0000, 2 ** 52 + 7]) assert.equal(lsnToNumber(numberToLsn(n)), n);
  assert.throws(() => numberToLsn(-1));
  assert.throws(() => numberToLsn(1.5));
});
