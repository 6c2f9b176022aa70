import { test } from 'node:test';
import assert from 'node:assert/strict';

import { allowedUpstream, detachBinds, fastFailoverStep, leaseSilentFor, type DetachAnswer, type FastFailoverInput } from './fast-failover.ts';
import type { Member } from './model.ts';
import { defaultConfig } from './testing.ts';

const leaderMember: Member = { name: 'n0', version: '1', session: '7', data: { state: 'running', role: 'primary', vigil: { keepalive_ms: 1000 } } as Member['data'] };

function input(over: Partial<FastFailoverInput> = {}): FastFailoverInput {
  return {
    me: 'n1',
    myTags: {},
    config: defaultConfig({ synchronous_mode: 'on', synchronous_mode_strict: true }),
    now: 100_000,
    leader: { name: 'n0', version: '40', session: '7' },
    leaderMember,
    sync: { leader: 'n0', sync_standby: 'n1,n2', quorum: 0, version: '41' },
    lease: { remaining: 25, granted: 30 },
    streamingFromLeader: false,
    leaderPgReachable: false,
    leaderApiReachable: false,
    suspectSince: 96_000,
    ...over,
  };
}

const answer = (name: string, flushLsn: number, over: Partial<DetachAnswer> = {}): DetachAnswer => ({ name, detached: true, flushLsn, timeline: 1, tags: {}, ...over });

test('the whole rule: detect for W, detach every /sync standby, then one transaction', () => {
  const first = fastFailoverStep(input({ suspectSince: undefined }));
  assert.equal(first.kind, 'suspect');
  const detach = fastFailoverStep(input());
  assert.equal(detach.kind, 'detach');
  assert.ok(detach.kind === 'detach');
  assert.deepEqual(detach.pair, { leaderVersion: '40', leaderSession: '7', syncVersion: '41' });
  assert.deepEqual(detach.standbys, ['n1', 'n2']);
  const take = fastFailoverStep(input({ answers: [answer('n1', 900), answer('n2', 800)] }));
  assert.equal(take.kind, 'take', take.reason);
  assert.ok(take.kind === 'take');
  assert.deepEqual(take.txn, { expect: { leaderVersion: '40', leaderSession: '7', syncVersion: '41' }, sync: { leader: 'n1', sync_standby: 'n0,n2', quorum: 0 } });
  // Not strict: /sync names no standby (as the ordinary promotion writes it).
  const loose = fastFailoverStep(input({ config: defaultConfig({ synchronous_mode: 'on' }), answers: [answer('n1', 900), answer('n2', 800)] }));
  assert.ok(loose.kind === 'take');
  assert.equal(loose.txn.sync.sync_standby, null);
});

test('quorum mode keeps the quorum and names every former member but me', () => {
  const r = fastFailoverStep(input({ config: defaultConfig({ synchronous_mode: 'quorum' }), sync: { leader: 'n0', sync_standby: 'n1,n2,n3', quorum: 1, version: '41' }, answers: [answer('n1', 900), answer('n2', 900), answer('n3', 100)] }));
  assert.ok(r.kind === 'take', r.reason);
  assert.deepEqual(r.txn.sync, { leader: 'n1', sync_standby: 'n0,n2,n3', quorum: 1 });
});

test('each detection condition alone stops the fast path', () => {
  assert.equal(fastFailoverStep(input({ config: defaultConfig() })).kind, 'none', 'asynchronous mode');
  assert.equal(fastFailoverStep(input({ lease: { remaining: 28, granted: 30 } })).kind, 'suspect', 'lease renewed within W: unreachability is remembered, no detachment');
  assert.equal(fastFailoverStep(input({ lease: undefined })).kind, 'suspect', 'lease unknown (expired: the ordinary race)');
  assert.equal(fastFailoverStep(input({ lease: { remaining: 28, granted: 30 }, suspectSince: 0 })).kind, 'suspect', 'however long unreachable');
  assert.equal(fastFailoverStep(input({ streamingFromLeader: true })).kind, 'none', 'still streaming');
  assert.equal(fastFailoverStep(input({ leaderPgReachable: true })).kind, 'none', 'PostgreSQL answers');
  assert.equal(fastFailoverStep(input({ leaderApiReachable: true })).kind, 'none', 'REST API answers');
  assert.equal(fastFailoverStep(input({ leaderMember: { ...leaderMember, data: { state: 'running' } } })).kind, 'none', 'a leader without the keep-alive');
  assert.equal(fastFailoverStep(input({ me: 'n3' })).kind, 'none', 'not a /sync standby');
  assert.equal(fastFailoverStep(input({ myTags: { nofailover: true } })).kind, 'none', 'nofailover');
  assert.equal(fastFailoverStep(input({ sync: { leader: 'n9', sync_standby: 'n1', quorum: 0, version: '41' } })).kind, 'none', '/sync of another leader');
});

test('detachment: every /sync standby must answer detached; the most advanced is promoted', () => {
  assert.equal(fastFailoverStep(input({ answers: [answer('n1', 900), undefined] })).kind, 'none', 'n2 did not answer');
  assert.equal(fastFailoverStep(input({ answers: [answer('n1', 900), answer('n2', 950, { detached: false })] })).kind, 'none', 'n2 still attached');
  assert.equal(fastFailoverStep(input({ answers: [answer('n1', 900), answer('n2', 950)] })).kind, 'yield', 'n2 is ahead');
  assert.equal(fastFailoverStep(input({ answers: [answer('n1', 900), answer('n2', 950, { tags: { nofailover: true } })] })).kind, 'take', 'n2 may not be promoted');
  assert.equal(fastFailoverStep(input({ answers: [answer('n1', 900), answer('n2', 100, { timeline: 2 })] })).kind, 'yield', 'n2 is on a newer timeline');
  assert.equal(fastFailoverStep(input({ answers: [answer('n1', 900), answer('n2', 900, { tags: { failover_priority: 5 } })] })).kind, 'yield', 'a tie goes to the higher priority');
});

test('leaseSilentFor takes a second off for etcd rounding', () => {
  assert.equal(leaseSilentFor({ remaining: 26, granted: 30 }, 3000), true);
  assert.equal(leaseSilentFor({ remaining: 27, granted: 30 }, 3000), false);
});

test('a detachment promise binds until the leader key or /sync changes; unknown cluster: it binds', () => {
  const p = { leader: 'n0', leaderVersion: '40', leaderSession: '7', syncVersion: '41' };
  const view = (over: { leader?: { name: string; version: string; session: string } | undefined; syncVersion?: string }) => ({
    leader: 'leader' in over ? over.leader : { name: 'n0', version: '40', session: '7' },
    sync: { leader: 'n0', sync_standby: 'n1', version: over.syncVersion ?? '41' },
  });
  assert.equal(detachBinds(p, view({})), true);
  assert.equal(detachBinds(p, undefined), true, 'DCS unreadable');
  assert.equal(detachBinds(undefined, view({})), false);
  assert.equal(detachBinds(p, view({ syncVersion: '42' })), false, '/sync written since');
  assert.equal(detachBinds(p, view({ leader: { name: 'n0', version: '45', session: '7' } })), false, 'leader key re-written');
  assert.equal(detachBinds(p, view({ leader: { name: 'n0', version: '40', session: '8' } })), false, 'other lease');
  assert.equal(detachBinds(p, view({ leader: undefined })), false, 'leader key gone');
  const up = { name: 'n0', connUrl: 'postgres://n0' };
  assert.equal(allowedUpstream(up, p, view({})), null, 'the promised leader is refused');
  assert.equal(allowedUpstream({ name: 'n2', connUrl: 'x' }, p, view({}))?.name, 'n2', 'another upstream is fine');
  assert.equal(allowedUpstream(up, p, view({ syncVersion: '42' })), up, 'promise ended');
  const timed = { ...p, untilWall: 1000 };
  assert.equal(detachBinds(timed, view({}), 999), true);
  assert.equal(detachBinds(timed, view({}), 1000), false, 'its time is up');
  assert.equal(allowedUpstream(up, timed, view({}), 1000), up);
});
