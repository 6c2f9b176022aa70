import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failoverPriority, isNoFailover, syncModeOf } from './election.ts';

test('isNoFailover / failoverPriority: Patroni 4.1 rule, an explicit nofailover decides, failover_priority only ranks', () => {
  // [tags, never promoted?, rank]
  const table: [Record<string, unknown> | undefined, boolean, number][] = [
    [undefined, false, 1],
    [{}, false, 1],
    [{ nofailover: true }, true, 0],
    [{ nofailover: false }, false, 1],
    [{ failover_priority: 0 }, true, 0],
    [{ failover_priority: -1 }, true, -1],
    [{ failover_priority: 3 }, false, 3],
    [{ failover_priority: '2' }, false, 2],
    [{ failover_priority: '0' }, true, 0],
    [{ failover_priority: 'high' }, false, 1],
    // The contradictory pair: nofailover false wins, the member may be promoted, ranked 0.
    [{ nofailover: false, failover_priority: 0 }, false, 0],
    [{ nofailover: false, failover_priority: 5 }, false, 5],
    [{ nofailover: true, failover_priority: 5 }, true, 0],
    [{ nofailover: null, failover_priority: 0 }, true, 0],
    // String spellings (a raw REST response): read by parseBool; an unreadable value counts as set.
    [{ nofailover: 'false', failover_priority: 0 }, false, 0],
    [{ nofailover: 'on' }, true, 0],
    [{ nofailover: 'maybe' }, true, 0],
  ];
  for (const [tags, never, rank] of table) {
    assert.equal(isNoFailover(tags), never, `isNoFailover(${JSON.stringify(tags)})`);
    assert.equal(failoverPriority(tags), rank, `failoverPriority(${JSON.stringify(tags)})`);
  }
});

test('syncModeOf: synchronous_mode read by parseBool, or quorum', () => {
  const table: [unknown, 'off' | 'on' | 'quorum'][] = [
    [undefined, 'off'], [true, 'on'], ['on', 'on'], ['Yes', 'on'], [1, 'on'], ['quorum', 'quorum'], ['QUORUM', 'quorum'],
    [false, 'off'], ['off', 'off'], ['y', 'off'], ['t', 'off'], ['garbage', 'off'],
  ];
  for (const [v, want] of table) assert.equal(syncModeOf({ synchronous_mode: v }), want, String(v));
  assert.equal(syncModeOf({ synchronous_mode: true, standby_cluster: { host: 'h' } }), 'off');
});
