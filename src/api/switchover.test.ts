// POST /switchover, POST /failover and DELETE /switchover (2.12) through handleOperation.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { ClusterView } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import type { OperationOptions } from './operation-common.ts';
import { expectMessage, healthyPort, MemPort, member, NOW, OPTS, peer, req, run, view } from './operation-fixtures.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { snapshot } from './testing.ts';

// ---- POST /switchover, POST /failover --------------------------------------------------------

test('switchover/failover: 400 messages of the intake rules', async () => {
  const p = healthyPort();
  const paused = snapshot({ config: defaultConfig({ pause: true }) });
  const cases: [string, unknown, NodeSnapshot, number, string][] = [
    ['/failover', { leader: '' , member: '' }, snapshot(), 400, 'Failover could be performed only to a specific candidate'],
    ['/failover', { scheduled_at: '2030-01-01T00:00:00Z' }, snapshot(), 400, 'Failover could be performed only to a specific candidate'],
    ['/switchover', { candidate: 'pg2' }, snapshot(), 400, 'Switchover could be performed only from a specific leader'],
    ['/failover', { candidate: 'pg2', scheduled_at: '2030-01-01T00:00:00Z' }, snapshot(), 400, "Failover can't be scheduled"],
    ['/failover', { leader: 'pg1', candidate: 'pg2', scheduled_at: '2030-01-01T00:00:00Z' }, snapshot(), 400, "Failover can't be scheduled"],
    ['/switchover', { leader: 'pg1', candidate: 'pg2', scheduled_at: '2030-01-01T00:00:00Z' }, paused, 400, "Can't schedule switchover in the paused state"],
    ['/switchover', { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00' }, snapshot(), 400, 'Timezone information is mandatory for the scheduled switchover'],
    ['/switchover', { leader: 'pg1', scheduled_at: '2024-05-01T11:59:59Z' }, snapshot(), 422, 'Cannot schedule switchover in the past'],
    ['/switchover', { leader: 'pg1', scheduled_at: 'next tuesday' }, snapshot(), 422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601'],
    ['/switchover', { leader: 'pg1', scheduled_at: 12345 }, snapshot(), 422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601'],
    ['/switchover', { leader: 'pg1' }, paused, 400, 'Switchover is possible only to a specific candidate in a paused state'],
    ['/switchover', { leader: 'pg1', candidate: 'pg1' }, snapshot(), 400, 'Switchover target and source are the same'],
    ['/failover', { leader: 'pg2', member: 'pg2' }, snapshot(), 400, 'Switchover target and source are the same'],
    ['/switchover', { leader: 5 }, snapshot(), 400, 'leader must be a member name (a string)'],
    ['/failover', { candidate: ['pg2'] }, snapshot(), 400, 'candidate must be a member name (a string)'],
  ];
  for (const [path, body, snap, status, msg] of cases) {
    expectMessage(await run(p, req('POST', path, body), snap), status, msg);
  }
  assert.equal(p.failoverWrites.length, 0);
  assert.equal(p.wakeups, 0);
});

test('switchover: pause read from the fresh cluster config too', async () => {
  const p = healthyPort(view({ config: { pause: true, loop_wait: 10 } }));
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' })), 400, 'Switchover is possible only to a specific candidate in a paused state');
  expectMessage(
    await run(p, req('POST', '/switchover', { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00Z' })),
    400,
    "Can't schedule switchover in the paused state",
  );
  // snap.pause (the agent's own view) counts as well.
  const q = healthyPort();
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1' }), snapshot({ pause: true })), 400, 'Switchover is possible only to a specific candidate in a paused state');
});

test('scheduled switchover: 202, /failover written with normalised scheduled_at, no feasibility check', async () => {
  const p = new MemPort(); // no peer reachable: a scheduled request is not pre-checked
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2', scheduled_at: '2024-05-01T15:00:00+02:00' })), 202, 'Switchover scheduled');
  assert.deepEqual(p.failoverWrites, [{ value: { leader: 'pg1', member: 'pg2', scheduled_at: '2024-05-01T15:00:00+02:00' }, version: undefined }]);
  assert.equal(p.wakeups, 1);
  assert.deepEqual(p.fetched, []);
  // Without a candidate only the set fields are written.
  const q = new MemPort();
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1', scheduled_at: '2024-05-01T12:00:00.5Z' })), 202, 'Switchover scheduled');
  assert.deepEqual(q.failoverWrites[0]?.value, { leader: 'pg1', scheduled_at: '2024-05-01T12:00:00.500000+00:00' });
});

test('feasibility: 412 messages', async () => {
  const cases: [string, unknown, MemPort, string][] = [];
  cases.push(['/switchover', { leader: 'pg2', candidate: 'pg3' }, healthyPort(), 'leader name does not match']);
  cases.push(['/switchover', { leader: 'pg1' }, healthyPort(view({ leader: undefined })), 'leader name does not match']);
  cases.push(['/failover', { leader: 'pg9', candidate: 'pg3' }, healthyPort(), 'leader name does not match']);
  const sync = (extra: Partial<ClusterView> = {}): MemPort =>
    healthyPort(view({ config: { synchronous_mode: true }, sync: { leader: 'pg1', sync_standby: 'PG2', version: '3' }, ...extra }));
  cases.push(['/switchover', { leader: 'pg1', candidate: 'pg3' }, sync(), 'candidate name does not match with sync_standby']);
  cases.push(['/switchover', { leader: 'pg1', candidate: 'pg7' }, healthyPort(), 'candidate does not exists']);
  cases.push(['/failover', { candidate: 'pg7' }, healthyPort(), 'candidate does not exists']);
  cases.push(['/failover', { candidate: 'pg7' }, sync(), 'candidate does not exists']);
  cases.push(['/switchover', { leader: 'pg1' }, sync({ sync: undefined }), 'switchover is not possible: can not find sync_standby']);
  cases.push(['/switchover', { leader: 'pg1' }, healthyPort(view({ members: [member('pg1')] })), 'switchover is not possible: cluster does not have members except leader']);
  cases.push([
    '/switchover',
    { leader: 'pg1' },
    healthyPort(view({ members: [member('pg1'), member('pg2', { api_url: '' })] })),
    'switchover is not possible: cluster does not have members except leader',
  ]);
  cases.push(['/switchover', { leader: 'pg1' }, new MemPort(), 'switchover is not possible: no good candidates have been found']);
  const limited = healthyPort();
  limited.peers.set('pg2', peer('pg2', { nofailover: true }));
  limited.peers.set('pg3', peer('pg3', { watchdogFailed: true }));
  cases.push(['/switchover', { leader: 'pg1' }, limited, 'switchover is not possible: no good candidates have been found']);
  const cand = healthyPort();
  cand.peers.set('pg3', peer('pg3', { reachable: false }));
  cases.push(['/switchover', { leader: 'pg1', candidate: 'pg3' }, cand, 'switchover is not possible: no good candidates have been found']);
  cases.push(['/failover', { candidate: 'pg3' }, cand, 'failover is not possible: no good candidates have been found']);
  // A failover that names the leader is a switchover: the message says so.
  cases.push(['/failover', { leader: 'pg1', candidate: 'pg3' }, cand, 'switchover is not possible: no good candidates have been found']);
  // The lock holder is never a good candidate.
  cases.push(['/failover', { candidate: 'pg1' }, healthyPort(), 'failover is not possible: no good candidates have been found']);
  // A candidate without api_url cannot be asked.
  cases.push(['/failover', { candidate: 'pg2' }, healthyPort(view({ members: [member('pg1'), member('pg2', { api_url: undefined })] })), 'failover is not possible: no good candidates have been found']);
  for (const [path, body, p, msg] of cases) {
    expectMessage(await run(p, req('POST', path, body)), 412, msg);
    assert.equal(p.failoverWrites.length, 0, msg);
  }
});

test('feasibility: sync mode limits the candidates to /sync; quorum mode and standby clusters do not', async () => {
  const p = healthyPort(view({ config: { synchronous_mode: 'on' }, sync: { leader: 'pg1', sync_standby: 'pg3', version: '3' } }));
  p.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg3', version: '10', session: 'x' };
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' })), 200, 'Successfully switched over to "pg3"');
  assert.deepEqual(p.fetched, ['pg3']);
  // Quorum: any member; a failover ignores /sync membership of the candidate.
  const q = healthyPort(view({ config: { synchronous_mode: 'quorum' }, sync: { leader: 'pg1', sync_standby: 'pg3', version: '3' } }));
  q.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');
  const f = healthyPort(view({ config: { synchronous_mode: true }, sync: { leader: 'pg1', sync_standby: 'pg3', version: '3' } }));
  f.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  expectMessage(await run(f, req('POST', '/failover', { candidate: 'pg2' })), 200, 'Successfully failed over to "pg2"');
  const standby = healthyPort(view({ config: { synchronous_mode: true, standby_cluster: { host: '10.0.0.9' } } }));
  standby.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  expectMessage(await run(standby, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');
});

test('immediate switchover: writes /failover, wakes the loop, waits for the new leader', async () => {
  const p = healthyPort();
  p.peers.set('pg2', peer('pg2', { reachable: false }));
  let readsAfterWrite = 0;
  p.onRead = (port) => {
    if (port.failoverWrites.length === 0) return;
    readsAfterWrite++;
    if (readsAfterWrite === 3) port.cluster.leader = { name: 'pg3', version: '10', session: 'x' };
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' })), 200, 'Successfully switched over to "pg3"');
  assert.deepEqual(p.failoverWrites, [{ value: { leader: 'pg1' }, version: undefined }]);
  assert.equal(p.wakeups, 1);
  assert.deepEqual(p.fetched.sort(), ['pg2', 'pg3']);
  assert.equal(readsAfterWrite, 3);
});

test('immediate switchover/failover: every result message', async () => {
  const leaderBecomes = (name: string) => (port: MemPort): void => {
    if (port.failoverWrites.length > 0) port.cluster.leader = { name, version: '10', session: 'x' };
  };
  let p = healthyPort();
  p.onRead = leaderBecomes('pg2');
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg3' })), 200, 'Switched over to "pg2" instead of "pg3"');
  assert.deepEqual(p.failoverWrites[0]?.value, { leader: 'pg1', member: 'pg3' });

  p = healthyPort(view({ leader: undefined }));
  p.onRead = leaderBecomes('pg2');
  expectMessage(await run(p, req('POST', '/failover', { candidate: 'pg2' })), 200, 'Successfully failed over to "pg2"');
  assert.deepEqual(p.failoverWrites[0]?.value, { member: 'pg2' });

  p = healthyPort(view({ leader: undefined }));
  p.onRead = leaderBecomes('pg3');
  expectMessage(await run(p, req('POST', '/failover', { member: 'pg2' })), 200, 'Failed over to "pg3" instead of "pg2"');

  // failover with a leader = switchover, and the messages say so.
  p = healthyPort();
  p.onRead = leaderBecomes('pg2');
  expectMessage(await run(p, req('POST', '/failover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');

  // The leader refused and cleared the key: failed.
  p = healthyPort();
  p.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.failover = { version: '77' };
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 503, 'Switchover failed');
  p = healthyPort();
  p.onRead = (port) => {
    if (port.failoverWrites.length > 0) port.cluster.failover = undefined;
  };
  expectMessage(await run(p, req('POST', '/failover', { candidate: 'pg2' })), 503, 'Failover failed');

  // Nothing happens: status unknown after the timeout (2 * max(10, loop_wait) s by default).
  p = healthyPort();
  expectMessage(
    await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })),
    503,
    'Switchover status unknown after 0 seconds; operation may still be in progress',
  );
  p = healthyPort();
  expectMessage(
    await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' }), snapshot(), { ...OPTS, switchoverTimeoutMs: 3000, pollIntervalMs: 1000, signal: AbortSignal.abort() }),
    503,
    'Switchover status unknown after 3 seconds; operation may still be in progress',
  );
  // DCS errors while polling are retried, not fatal.
  p = healthyPort();
  let n = 0;
  p.onRead = (port) => {
    if (port.failoverWrites.length === 0) return;
    n++;
    if (n === 1) port.readFails = true;
    if (n >= 2) port.cluster.leader = { name: 'pg2', version: '10', session: 'x' };
  };
  const original = p.readCluster.bind(p);
  p.readCluster = (): Promise<ClusterView> => {
    if (p.readFails) {
      p.readFails = false;
      return Promise.reject(new Error('hiccup'));
    }
    return original();
  };
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 200, 'Successfully switched over to "pg2"');
});

test('switchover: the default wait is 2 * max(10, loop_wait) seconds', async () => {
  const opts: OperationOptions = { now: () => NOW, pollIntervalMs: 1, signal: AbortSignal.abort() };
  let p = healthyPort();
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' }), snapshot(), opts), 503, 'Switchover status unknown after 20 seconds; operation may still be in progress');
  p = healthyPort(view({ config: { loop_wait: 25 } }));
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' }), snapshot(), opts), 503, 'Switchover status unknown after 50 seconds; operation may still be in progress');
  p = healthyPort(view({ config: {} }));
  expectMessage(await run(p, req('POST', '/switchover', { leader: 'pg1' }), snapshot({ config: defaultConfig({ loop_wait: 12 }) }), opts), 503, 'Switchover status unknown after 24 seconds; operation may still be in progress');
});

test('switchover: DCS failures give 503', async () => {
  const p = healthyPort();
  p.readFails = true;
  const res = await run(p, req('POST', '/switchover', { leader: 'pg1' }));
  assert.equal(res.status, 503);
  assert.match(res.body ?? '', /failed to read the cluster state from DCS: etcd is down/);
  const q = healthyPort();
  q.writeFails = true;
  expectMessage(await run(q, req('POST', '/switchover', { leader: 'pg1', candidate: 'pg2' })), 503, 'failed to write failover key into DCS');
  assert.equal(q.wakeups, 0);
});

test('DELETE /switchover: 404 without a schedule, 200 clears with CAS, 409 when the key changed', async () => {
  let p = new MemPort();
  expectMessage(await run(p, req('DELETE', '/switchover')), 404, 'no switchover is scheduled');
  p = new MemPort(view({ failover: { leader: 'pg1', member: 'pg2', version: '50' } }));
  expectMessage(await run(p, req('DELETE', '/switchover')), 404, 'no switchover is scheduled');
  assert.equal(p.failoverWrites.length, 0);
  p = new MemPort(view({ failover: { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00+00:00', version: '50' } }));
  expectMessage(await run(p, req('DELETE', '/switchover')), 200, 'scheduled switchover deleted');
  assert.deepEqual(p.failoverWrites, [{ value: {}, version: '50' }]);
  // CAS lost: someone rewrote the key between our read (version 50) and our write.
  p = new MemPort(view({ failover: { leader: 'pg1', scheduled_at: '2030-01-02T00:00:00+00:00', version: '51' } }));
  p.readCluster = (): Promise<ClusterView> =>
    Promise.resolve(view({ failover: { leader: 'pg1', scheduled_at: '2030-01-01T00:00:00+00:00', version: '50' } }));
  const lost = await run(p, req('DELETE', '/switchover'));
  assert.equal(lost.status, 409);
  assert.match(lost.body ?? '', /Error code: 409/);
  p = new MemPort();
  p.readFails = true;
  assert.equal((await run(p, req('DELETE', '/switchover'))).status, 503);
});

