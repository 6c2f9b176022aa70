// The request target as the handlers see it (exchange.ts splitUrl): the raw path, as Patroni sees
// it, and the query. Bodies, replies and headers on the wire: test/api/server.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { splitUrl } from './exchange.ts';

function split(target: string): [string, Record<string, string[]>] {
  const { path, query } = splitUrl(target);
  const q: Record<string, string[]> = {};
  for (const k of new Set(query.keys())) q[k] = query.getAll(k);
  return [path, q];
}

test('splitUrl: origin form, raw path kept, query parsed', () => {
  assert.deepEqual(split('/replica'), ['/replica', {}]);
  assert.deepEqual(split('/replica?lag=1MB&tag_x=1&tag_x=2'), ['/replica', { lag: ['1MB'], tag_x: ['1', '2'] }]);
  assert.deepEqual(split('/a/../patroni?'), ['/a/../patroni', {}], 'not normalised');
  assert.deepEqual(split('/%70atroni'), ['/%70atroni', {}], 'not decoded');
  assert.deepEqual(split('/?x=%20y'), ['/', { x: [' y'] }]);
});

test('splitUrl: absolute form and odd targets', () => {
  assert.deepEqual(split('http://db1:8008/leader?lag=0'), ['/leader', { lag: ['0'] }]);
  assert.deepEqual(split('*'), ['/*', {}]);
  assert.deepEqual(split('patroni'), ['/patroni', {}]);
});
