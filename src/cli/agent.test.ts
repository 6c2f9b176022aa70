import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conflictingFailoverTags } from './agent.ts';

test("conflicting nofailover and failover_priority tags: Patroni's warning text; none when they agree or one is absent", () => {
  const line = (nf: string, p: string): string => `Conflicting configuration between nofailover: ${nf} and failover_priority: ${p}. Defaulting to nofailover: ${nf}`;
  assert.equal(conflictingFailoverTags({ nofailover: true, failover_priority: 1 }), line('True', '1'));
  assert.equal(conflictingFailoverTags({ nofailover: false, failover_priority: 0 }), line('False', '0'));
  assert.equal(conflictingFailoverTags({ nofailover: false, failover_priority: -2 }), line('False', '-2'));
  assert.equal(conflictingFailoverTags({ nofailover: true, failover_priority: 0 }), undefined);
  assert.equal(conflictingFailoverTags({ nofailover: false, failover_priority: 3 }), undefined);
  assert.equal(conflictingFailoverTags({ nofailover: true }), undefined);
  assert.equal(conflictingFailoverTags({ failover_priority: 0 }), undefined);
  assert.equal(conflictingFailoverTags({}), undefined);
});
