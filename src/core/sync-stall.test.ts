import { test } from 'node:test';
import assert from 'node:assert/strict';

import { healthySenders, stalledSenders, stallThresholdMs, trackSilence, withoutStalled, type SilenceRow, type SilenceState } from './sync-stall.ts';
import { syncStep } from './sync.ts';
import { quorumInvariant, quorumStateOf } from './quorum.ts';
import { SSN_PLACEHOLDER } from './ssn.ts';
import { clusterView } from './model.ts';
import type { Action, DynamicConfig, LocalSync, Member, Observation, SyncState, WalSender } from './model.ts';
import { defaultConfig } from './testing.ts';

// ---- fixtures ----------------------------------------------------------------------------------

const member = (name: string): Member => ({
  name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, api_url: `http://${name}:8008/patroni`, state: 'running', role: name === 'n0' ? 'primary' : 'replica' },
});

const sender = (name: string, over: Partial<WalSender> = {}): WalSender => ({
  pid: 100 + Number(name.slice(1)), name, state: 'streaming', syncState: 'async', writeLsn: 5000, flushLsn: 5000, replayLsn: 5000, ...over,
});

const local = (over: Partial<LocalSync> = {}): LocalSync => ({ ssn: '', managed: true, synchronousCommit: 'on', senders: [], ssnSetAtLsn: 4000, ...over });

const syncKey = (standbys: string[], quorum = 0): SyncState => ({ leader: 'n0', sync_standby: standbys.length > 0 ? standbys.join(',') : null, quorum, version: '7' });

function obs(sync: SyncState, l: LocalSync, config: Partial<DynamicConfig> = {}, memory: Observation['memory'] = { started: true }): Observation {
  return {
    now: 100_000,
    wallClock: '2026-12-07T00:00:00+00:00',
    self: { name: 'n0', tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig({ postgresql: {}, synchronous_mode: true, ...config }),
    cluster: clusterView({ initialize: '1', configVersion: '1', leader: { name: 'n0', version: '5', session: 'a' }, members: ['n0', 'n1', 'n2'].map(member), sync, history: [], revision: '10' }),
    pg: {
      dataDirEmpty: false, sysid: '1', running: true, ready: true, inRecovery: false, walLsn: 9000, receiveLsn: undefined, replayLsn: undefined,
      timeline: 1, streaming: false, upstream: null, controlState: 'in production', rewindable: true, crashed: false, sync: l,
    },
    task: undefined,
    failures: [],
    memory,
  };
}

function brief(actions: Action[]): string[] {
  return actions.map((a) => {
    if (a.type === 'writeSync') return `sync [${a.syncStandby.join(',')}] q${a.quorum}`;
    if (a.type === 'setSyncStandbyNames') return `ssn ${JSON.stringify(a.value)}`;
    return a.type;
  });
}

// ---- the threshold and the silence ---------------------------------------------------------------

test('stallThresholdMs: max(5 s, loop_wait / 2)', () => {
  const cases: [number, number][] = [[1, 5000], [10, 5000], [12, 6000], [30, 15000]];
  for (const [lw, want] of cases) assert.equal(stallThresholdMs({ loop_wait: lw }), want, `loop_wait ${lw}`);
});

test('trackSilence: silent since the first probe that saw a behind standby report the same values; any change or catching up resets it', () => {
  const row = (over: Partial<SilenceRow> = {}): SilenceRow => ({ pid: 7, write_lsn: 100, flush_lsn: 100, replay_lsn: 90, reply_time: 't1', ...over });
  let st: SilenceState = new Map();
  const step = (r: SilenceRow, primaryFlush: number | undefined, now: number): number => {
    const out = trackSilence(st, [r], primaryFlush, now);
    st = out.state;
    return out.silentMs[0] as number;
  };
  // Caught up (nothing to confirm): never silent, however old its reply.
  assert.equal(step(row(), 100, 0), 0);
  assert.equal(step(row(), 100, 20_000), 0);
  assert.equal(st.size, 0);
  // Behind: counted from the first probe that sees it behind with these values.
  assert.equal(step(row(), 200, 21_000), 0);
  assert.equal(step(row(), 300, 24_000), 3000);
  assert.equal(step(row(), 300, 27_000), 6000);
  // Any sign of life resets: a position, or reply_time alone (an answer to a keepalive).
  assert.equal(step(row({ replay_lsn: 95 }), 300, 28_000), 0);
  assert.equal(step(row({ replay_lsn: 95 }), 300, 30_000), 2000);
  assert.equal(step(row({ replay_lsn: 95, reply_time: 't2' }), 300, 31_000), 0);
  // A new WAL sender (a reconnect: another pid) starts over.
  assert.equal(step(row({ pid: 8, replay_lsn: 95, reply_time: 't2' }), 300, 40_000), 0);
  assert.equal(st.has(7), false, 'the old pid is forgotten');
  // Not a primary, or no pid: nothing is tracked.
  assert.equal(step(row(), undefined, 50_000), 0);
  assert.equal(st.size, 0);
  assert.equal(step(row({ pid: null }), 300, 60_000), 0);
});

test('stalledSenders: silent past the threshold while commits wait, or while not listed; never a stale reply alone', () => {
  const T = 5000;
  const s = (name: string, silentMs: number, state = 'streaming') => ({ name, state, silentMs });
  const cases: { name: string; ssn: string; waiters: number | undefined; senders: ReturnType<typeof s>[]; want: string[] }[] = [
    { name: 'listed, silent, commits wait', ssn: 'n1', waiters: 2, senders: [s('n1', 5000)], want: ['n1'] },
    { name: 'just under the threshold', ssn: 'n1', waiters: 2, senders: [s('n1', 4999)], want: [] },
    { name: 'listed, silent, no commit waits (idle, or another voter answers)', ssn: 'ANY 1 (n1,n2)', waiters: 0, senders: [s('n1', 60_000), s('n2', 0)], want: [] },
    { name: 'waiters not read', ssn: 'n1', waiters: undefined, senders: [s('n1', 60_000)], want: [] },
    { name: 'replaced already (not listed): stays out while silent', ssn: '', waiters: 0, senders: [s('n1', 60_000)], want: ['n1'] },
    { name: "'*' lists everyone", ssn: '*', waiters: 0, senders: [s('n1', 60_000)], want: [] },
    { name: 'only the silent one of two', ssn: '2 (n1,n2)', waiters: 1, senders: [s('n1', 9000), s('n2', 0)], want: ['n1'] },
    { name: 'not streaming is not stalled (already out)', ssn: 'n1', waiters: 1, senders: [s('n1', 9000, 'catchup')], want: [] },
    { name: 'not a member (a logical subscriber answering every 10 s): never judged', ssn: 'n1', waiters: 1, senders: [s('sub', 9000), s('n1', 0)], want: [] },
  ];
  const members = ['n0', 'N1', 'n2'];
  for (const c of cases) {
    const f = { ssn: c.ssn, syncRepWaiters: c.waiters, senders: c.senders };
    assert.deepEqual(stalledSenders(f, T, members), c.want, c.name);
    assert.deepEqual(healthySenders(f, T, members), c.senders.filter((x) => x.state === 'streaming' && !c.want.includes(x.name)).map((x) => x.name), c.name);
  }
  const l = local({ ssn: 'n1', syncRepWaiters: 1, senders: [sender('n1', { silentMs: 6000 })] });
  assert.equal(withoutStalled(l, T, members).senders[0]?.state, 'stalled');
  const idle = { ...l, syncRepWaiters: 0 };
  assert.equal(withoutStalled(idle, T, members), idle, 'nothing stalled: the same facts');
});

// ---- the sync step with a stalled standby ----------------------------------------------------------

const silent = (name: string, syncState = 'sync') => sender(name, { syncState, flushLsn: 4500, writeLsn: 4500, replayLsn: 4500, silentMs: 6000 });

test('priority, not strict: a silent sync standby while commits wait leaves /sync first (CAS), then ssn; a healthy one takes its place', () => {
  const memory = { started: true, syncConfirmed: { n1: 101 } };
  // Alone: /sync emptied, then ssn cleared (commits proceed asynchronously, as when it disconnects).
  let p = syncStep(obs(syncKey(['n1']), local({ ssn: 'n1', syncRepWaiters: 3, senders: [silent('n1')] }), {}, memory));
  assert.deepEqual(brief(p.actions), ['sync [] q0', 'ssn ""']);
  assert.match(p.note, /\[n1\] silent for 5 s or more/);
  // Without waiting commits the same silence changes nothing.
  p = syncStep(obs(syncKey(['n1']), local({ ssn: 'n1', syncRepWaiters: 0, senders: [silent('n1')] }), {}, memory));
  assert.deepEqual(p.actions, []);
  // With another streaming standby: /sync drops n1, ssn names n2, n2 enters /sync once confirmed.
  p = syncStep(obs(syncKey(['n1']), local({ ssn: 'n1', syncRepWaiters: 3, senders: [silent('n1'), sender('n2')] }), {}, memory));
  assert.deepEqual(brief(p.actions), ['sync [] q0', 'ssn "n2"']);
  // Replaced: it stays out while silent although no commit waits for it any more.
  p = syncStep(obs(syncKey([]), local({ ssn: '', syncRepWaiters: 0, senders: [silent('n1')] })));
  assert.deepEqual(p.actions, []);
  // It answers again: a candidate as any new standby (ssn first, /sync after its confirmation).
  p = syncStep(obs(syncKey([]), local({ ssn: '', syncRepWaiters: 0, senders: [sender('n1')] })));
  assert.deepEqual(brief(p.actions), ['ssn "n1"']);
});

test('priority, strict: a silent sync standby with no other standby stays in ssn and /sync (commits keep waiting)', () => {
  const strict = { synchronous_mode_strict: true } as Partial<DynamicConfig>;
  const memory = { started: true, syncConfirmed: { n1: 101 } };
  let p = syncStep(obs(syncKey(['n1']), local({ ssn: 'n1', syncRepWaiters: 3, senders: [silent('n1')] }), strict, memory));
  assert.deepEqual(p.actions, []);
  // Another standby streams: strict mode moves to it as when the silent one disconnects (/sync
  // first, then ssn names the other one; never an empty list).
  p = syncStep(obs(syncKey(['n1']), local({ ssn: 'n1', syncRepWaiters: 3, senders: [silent('n1'), sender('n2')] }), strict, memory));
  assert.deepEqual(brief(p.actions), ['sync [] q0', 'ssn "n2"']);
  // /sync already empty (and ssn empty): the placeholder, never an empty list.
  p = syncStep(obs(syncKey([]), local({ ssn: '', syncRepWaiters: 0, senders: [silent('n1')] }), strict));
  assert.deepEqual(brief(p.actions), [`ssn "${SSN_PLACEHOLDER}"`]);
});

test('quorum, not strict: a silent voter is removed keeping the overlap invariant after every write', () => {
  const q = { synchronous_mode: 'quorum', synchronous_node_count: 2 } as Partial<DynamicConfig>;
  const memory = { started: true, syncConfirmed: { n1: 101, n2: 102 } };
  let sync = syncKey(['n1', 'n2'], 0);
  let l = local({ ssn: 'ANY 2 (n1,n2)', syncRepWaiters: 4, senders: [silent('n1', 'quorum'), sender('n2', { syncState: 'quorum' })] });
  const seen: string[] = [];
  for (let tick = 0; tick < 5; tick++) {
    const p = syncStep(obs(sync, l, q, memory));
    if (p.actions.length === 0) break;
    for (const a of p.actions) {
      if (a.type === 'writeSync') sync = { leader: a.leader, sync_standby: a.syncStandby.join(',') || null, quorum: a.quorum, version: String(tick) };
      else if (a.type === 'setSyncStandbyNames') l = { ...l, ssn: a.value ?? '' };
      seen.push(brief([a])[0] as string);
      assert.ok(quorumInvariant(quorumStateOf(l, sync), 'n0'), `invariant after ${seen.join(' -> ')}`);
    }
    // Once n1 is out of ssn no commit waits for it any more.
    l = { ...l, syncRepWaiters: 0 };
  }
  assert.deepEqual(seen, ['sync [n1,n2] q1', 'ssn "ANY 1 (n2)"', 'sync [n2] q0']);
});

test('quorum, strict: no voter answers -> ssn keeps requiring the last voters', () => {
  const q = { synchronous_mode: 'quorum', synchronous_mode_strict: true } as Partial<DynamicConfig>;
  const p = syncStep(obs(syncKey(['n1'], 0), local({ ssn: 'ANY 1 (n1)', syncRepWaiters: 2, senders: [silent('n1', 'quorum')] }), q, { started: true, syncConfirmed: { n1: 101 } }));
  assert.deepEqual(p.actions, []);
});
