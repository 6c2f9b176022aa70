import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MemPort, req, run } from './operation-fixtures.ts';

const body = { leader: 'pg1', leader_version: '9', leader_session: 'abc', sync_version: '12' };

test('POST /vigil/detach: the port is asked with the pair, the answer is its JSON', async () => {
  const p = new MemPort();
  const asked: unknown[] = [];
  p.detachFrom = async (r: typeof body) => {
    asked.push(r);
    return { name: 'pg2', detached: true, flushLsn: 5000, timeline: 3, tags: { nofailover: false } };
  };
  const res = await run(p, req('POST', '/vigil/detach', body));
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body ?? ''), { name: 'pg2', detached: true, flush_lsn: 5000, timeline: 3, tags: { nofailover: false } });
  assert.deepEqual(asked, [body]);
});

test('POST /vigil/detach: a malformed body is refused without asking the port; no port: 503; other paths: 404', async () => {
  const p = new MemPort();
  let asked = 0;
  p.detachFrom = async () => {
    asked++;
    return { name: 'pg2', detached: true, flushLsn: 0, timeline: 1, tags: {} };
  };
  for (const bad of [{ ...body, leader: '' }, { ...body, sync_version: 12 }, { leader: 'pg1' }]) {
    assert.equal((await run(p, req('POST', '/vigil/detach', bad))).status, 400, JSON.stringify(bad));
  }
  assert.equal(asked, 0);
  assert.equal((await run(p, req('POST', '/vigil/other', body))).status, 404);
  assert.equal((await run(new MemPort(), req('POST', '/vigil/detach', body))).status, 503);
});
