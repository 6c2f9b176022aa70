import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepromoteActions, syncCandidates, syncConfirmation, syncSettings, syncStep } from './sync.ts';
import { buildSsn, parseSsn, SSN_PLACEHOLDER } from './ssn.ts';
import { quorumInvariant, quorumNext, quorumPlan, type QuorumInput, type QuorumState } from './quorum.ts';
import { Rng } from '../sim/world.ts';
import { clusterView } from './model.ts';
import type { Action, DynamicConfig, LocalSync, Member, MemberData, Observation, SyncState, WalSender } from './model.ts';
import { defaultConfig } from './testing.ts';

// ---- fixtures ----------------------------------------------------------------------------------

function config(over: Partial<DynamicConfig> = {}): DynamicConfig {
  return defaultConfig({ postgresql: {}, synchronous_mode: true, ...over });
}

function member(name: string, data: MemberData = {}): Member {
  return { name, version: '1', session: '1', data: { conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'replica', ...data } };
}

function sender(name: string, over: Partial<WalSender> = {}): WalSender {
  return { pid: 100 + name.charCodeAt(0), name, state: 'streaming', syncState: 'async', writeLsn: 5000, flushLsn: 5000, replayLsn: 5000, ...over };
}

function local(over: Partial<LocalSync> = {}): LocalSync {
  return { ssn: '', managed: true, synchronousCommit: 'on', senders: [], ssnSetAtLsn: 4000, ...over };
}

function syncKey(leader: string | undefined, standbys: string[], quorum = 0): SyncState {
  const s: SyncState = { sync_standby: standbys.length > 0 ? standbys.join(',') : null, quorum, version: '7' };
  if (leader !== undefined) s.leader = leader;
  return s;
}

function obs(o: { sync?: SyncState; local?: LocalSync; config?: Partial<DynamicConfig>; members?: Member[]; memory?: Observation['memory'] } = {}): Observation {
  const cluster = clusterView({
    initialize: '7268616322854375442',
    config: {},
    configVersion: '1',
    leader: { name: 'n0', version: '5', session: 'abc' },
    members: o.members ?? [member('n0', { role: 'primary' }), member('n1'), member('n2'), member('n3')],
    sync: o.sync,
    history: [],
    status: { optime: 5000 },
    revision: '10',
  });
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: 'n0', tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: config(o.config),
    cluster,
    pg: {
      dataDirEmpty: false, sysid: '7268616322854375442', running: true, ready: true, inRecovery: false, walLsn: 5000, receiveLsn: undefined, replayLsn: undefined,
      timeline: 1, streaming: false, upstream: null, controlState: 'in production', rewindable: true, crashed: false, sync: o.local ?? local(),
    },
    task: undefined,
    failures: [],
    memory: o.memory ?? { started: true },
  };
}

function brief(actions: Action[]): string[] {
  return actions.map((a) => {
    if (a.type === 'writeSync') return `sync ${a.leader}:[${a.syncStandby.join(',')}] q${a.quorum}${a.version !== undefined ? ` @${a.version}` : ''}`;
    if (a.type === 'setSyncStandbyNames') return `ssn ${a.value === null ? 'null' : JSON.stringify(a.value)}`;
    if (a.type === 'deleteSync') return `deleteSync @${a.version}`;
    return a.type;
  });
}

// ---- ssn text ------------------------------------------------------------------------------------

test('buildSsn: sorted, quoted when needed, ANY for quorum, n (list) for priority, bare single name, placeholder', () => {
  const cases: [string[], number, boolean, string][] = [
    [[], 0, false, ''],
    [[], 1, false, SSN_PLACEHOLDER],
    [[], 1, true, SSN_PLACEHOLDER],
    [['*'], 1, false, SSN_PLACEHOLDER],
    [['n1'], 1, false, 'n1'],
    [['n2', 'n1'], 2, false, '2 (n1,n2)'],
    [['n2', 'n1'], 1, true, 'ANY 1 (n1,n2)'],
    [['n1'], 1, true, 'ANY 1 (n1)'],
    [['Node-A', 'first', 'any', 'b"c', '1x'], 3, false, '3 ("1x","Node-A","any","b""c","first")'],
    [['a', 'b'], 5, false, '2 (a,b)'],
  ];
  for (const [names, num, quorum, want] of cases) assert.equal(buildSsn(names, num, quorum), want, `${names.join(',')} ${num} ${quorum}`);
});

test('parseSsn: what users type, and the inverse of buildSsn', () => {
  assert.deepEqual(parseSsn(''), { kind: 'empty', num: 0, names: [] });
  assert.deepEqual(parseSsn('  '), { kind: 'empty', num: 0, names: [] });
  assert.deepEqual(parseSsn('n1'), { kind: 'priority', num: 1, names: ['n1'] });
  assert.deepEqual(parseSsn('n1, n2'), { kind: 'priority', num: 1, names: ['n1', 'n2'] });
  assert.deepEqual(parseSsn('2 (n1,n2)'), { kind: 'priority', num: 2, names: ['n1', 'n2'] });
  assert.deepEqual(parseSsn('FIRST 2 (n1, "N 2")'), { kind: 'priority', num: 2, names: ['n1', 'N 2'] });
  assert.deepEqual(parseSsn('any 1(n1,n2)'), { kind: 'quorum', num: 1, names: ['n1', 'n2'] });
  assert.deepEqual(parseSsn('ANY 2 ("a""b", c)'), { kind: 'quorum', num: 2, names: ['a"b', 'c'] });
  assert.deepEqual(parseSsn('*'), { kind: 'priority', num: 1, names: ['*'] });
  assert.deepEqual(parseSsn('first'), { kind: 'priority', num: 1, names: ['first'] });
  for (const bad of ['ANY 2 n1', '2 (n1', 'n1,,n2', '"unterminated', '0 (a)', 'a b', 'ANY 1 ()', 'n1;drop', '2x (a)']) {
    assert.equal(parseSsn(bad).kind, 'invalid', bad);
  }
  for (const [names, num, quorum] of [[['a', 'b'], 2, false], [['Node-A', 'first', 'x'], 1, true], [['z'], 1, false]] as [string[], number, boolean][]) {
    const p = parseSsn(buildSsn(names, num, quorum));
    assert.equal(p.kind, quorum ? 'quorum' : 'priority');
    assert.deepEqual([...p.names].sort(), [...names].sort());
  }
});

test('syncSettings reads the dynamic config defensively', () => {
  assert.deepEqual(syncSettings(config({ synchronous_mode: 'quorum', synchronous_node_count: 2, synchronous_mode_strict: true, maximum_lag_on_syncnode: 100 } as Partial<DynamicConfig>)), { mode: 'quorum', strict: true, nodeCount: 2, maxLag: 100 });
  assert.deepEqual(syncSettings(config({ synchronous_mode: false, synchronous_node_count: 'x', maximum_lag_on_syncnode: null } as unknown as Partial<DynamicConfig>)), { mode: 'off', strict: false, nodeCount: 1, maxLag: -1 });
  assert.equal(syncSettings(config({ synchronous_mode: true, standby_cluster: { host: 'h' } } as Partial<DynamicConfig>)).mode, 'off');
});

// ---- candidates and confirmation ---------------------------------------------------------------

test('candidates: streaming members only, no nosync/me/cascading; sorted by sync_priority, sync_state, lsn; nofailover last', () => {
  const members = [
    member('n0', { role: 'primary' }),
    member('n1'),
    member('n2', { tags: { sync_priority: 5 } }),
    member('n3', { tags: { nofailover: true, sync_priority: 9 } }),
    member('n4', { tags: { nosync: true } }),
    member('n5', { tags: { replicatefrom: 'n1' } }),
    member('n6', { tags: { sync_priority: 0 } }),
    member('n7', { state: 'starting' }),
    member('n8'),
    member('n9'),
  ];
  const senders = [
    sender('n1', { flushLsn: 4000 }), sender('n2', { flushLsn: 100 }), sender('n3'), sender('n4'), sender('n5'), sender('n6'), sender('n7'),
    sender('n8', { flushLsn: 4000, syncState: 'sync' }), sender('n9', { state: 'catchup' }), sender('stranger'), sender('n0'),
  ];
  const o = obs({ members, local: local({ senders }) });
  const c = syncCandidates(o, o.pg.sync as LocalSync, syncSettings(o.config));
  assert.deepEqual(c.map((x) => x.name), ['n2', 'n8', 'n1', 'n3']);
});

test('candidates: maximum_lag_on_syncnode excludes standbys too far behind the most advanced (or the primary when alone)', () => {
  const o = obs({ config: { maximum_lag_on_syncnode: 500 } as Partial<DynamicConfig>, local: local({ senders: [sender('n1', { flushLsn: 5000 }), sender('n2', { flushLsn: 4400 }), sender('n3', { flushLsn: 4600 })] }) });
  assert.deepEqual(syncCandidates(o, o.pg.sync as LocalSync, syncSettings(o.config)).map((c) => c.name), ['n1', 'n3']);
  const alone = obs({ config: { maximum_lag_on_syncnode: 500 } as Partial<DynamicConfig>, local: local({ senders: [sender('n1', { flushLsn: 4000 })] }) });
  assert.deepEqual(syncCandidates(alone, alone.pg.sync as LocalSync, syncSettings(alone.config)), []);
});

test('confirmation: in ssn, LSN (column by synchronous_commit) >= ssnSetAtLsn, and sync state or already in /sync; kept per pid', () => {
  const l = local({
    ssn: '3 (n1,n2,n3)',
    synchronousCommit: 'remote_apply',
    senders: [
      sender('n1', { syncState: 'sync', replayLsn: 4000 }),
      sender('n2', { syncState: 'sync', replayLsn: 3999, flushLsn: 9000 }),
      sender('n3', { syncState: 'potential', replayLsn: 4500 }),
      sender('n4', { syncState: 'sync' }),
    ],
  });
  assert.deepEqual(syncConfirmation(l, 'on', undefined, undefined).confirmed, ['n1']);
  assert.deepEqual(syncConfirmation(l, 'on', syncKey('n0', ['n3']), undefined).confirmed, ['n1', 'n3']);
  // Remembered with the same pid: still confirmed though the LSN test would fail now.
  const pid2 = l.senders[1]?.pid as number;
  assert.deepEqual(syncConfirmation(l, 'on', undefined, { n2: pid2 }).confirmed, ['n1', 'n2']);
  // A reconnect (new pid) must confirm again; a name that left ssn is forgotten.
  assert.deepEqual(syncConfirmation(l, 'on', undefined, { n2: pid2 + 1 }).confirmed, ['n1']);
  assert.deepEqual(syncConfirmation(l, 'on', undefined, { n4: l.senders[3]?.pid as number }).memory, { n1: l.senders[0]?.pid });
  // Unknown ssnSetAtLsn: nothing new is confirmed.
  assert.deepEqual(syncConfirmation({ ...l, ssnSetAtLsn: undefined }, 'on', syncKey('n0', ['n1']), undefined).confirmed, []);
  // Quorum mode accepts sync_state quorum; priority mode forgets confirmations made under ANY.
  const q = local({ ssn: 'ANY 1 (n1,n2)', senders: [sender('n1', { syncState: 'quorum' }), sender('n2', { syncState: 'quorum', flushLsn: 10 })] });
  assert.deepEqual(syncConfirmation(q, 'quorum', undefined, undefined).confirmed, ['n1']);
  assert.deepEqual(syncConfirmation(q, 'on', undefined, { n2: q.senders[1]?.pid as number }).confirmed, []);
});

// ---- priority mode -------------------------------------------------------------------------------

test('priority: /sync absent -> created naming me (plain put), then ssn widened to the best candidate', () => {
  const p = syncStep(obs({ local: local({ senders: [sender('n1'), sender('n2', { flushLsn: 4000 })] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0', 'ssn "n1"']);
  assert.equal(p.wakeMs, 1000);
  assert.equal(p.memory.syncPendingSince, 100_000);
});

test('priority ordering: ssn widened before /sync gains the name (next tick, once confirmed)', () => {
  // Tick 1: n1 streams, not in ssn: only ssn changes.
  let p = syncStep(obs({ sync: syncKey('n0', []), local: local({ senders: [sender('n1')] }) }));
  assert.deepEqual(brief(p.actions), ['ssn "n1"']);
  // Tick 2: ssn is n1 but n1 has not reached ssnSetAtLsn: wait.
  p = syncStep(obs({ sync: syncKey('n0', []), local: local({ ssn: 'n1', ssnSetAtLsn: 6000, senders: [sender('n1', { syncState: 'sync' })] }), memory: { syncPendingSince: 99_000 } }));
  assert.deepEqual(p.actions, []);
  assert.equal(p.wakeMs, 1000);
  assert.equal(p.memory.syncPendingSince, 99_000);
  // Tick 3: caught up and sync: /sync gains n1 (CAS on the version read).
  p = syncStep(obs({ sync: syncKey('n0', []), local: local({ ssn: 'n1', ssnSetAtLsn: 4000, senders: [sender('n1', { syncState: 'sync' })] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[n1] q0 @7']);
  assert.deepEqual(p.memory.syncConfirmed, { n1: sender('n1').pid });
  // Tick 4: steady.
  p = syncStep(obs({ sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', senders: [sender('n1', { syncState: 'sync' })] }), memory: { syncConfirmed: { n1: sender('n1').pid } } }));
  assert.deepEqual(p.actions, []);
  assert.equal(p.note, '');
});

test('priority ordering: /sync loses a name before ssn does', () => {
  // n1 (sync) disconnected; n2 streams: /sync [] first, then ssn n2.
  const p = syncStep(obs({ sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', senders: [sender('n2')] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0 @7', 'ssn "n2"']);
});

test('priority: a more preferred standby replaces the current one: drop from /sync, swap ssn, add later', () => {
  const members = [member('n0', { role: 'primary' }), member('n1'), member('n2', { tags: { sync_priority: 3 } })];
  const p = syncStep(obs({ members, sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', senders: [sender('n1', { syncState: 'sync' }), sender('n2')] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0 @7', 'ssn "n2"']);
});

test('priority: synchronous_node_count 2 lists both; /sync holds only the confirmed ones', () => {
  const p = syncStep(obs({ config: { synchronous_node_count: 2 } as Partial<DynamicConfig>, sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', senders: [sender('n1', { syncState: 'sync' }), sender('n2')] }) }));
  assert.deepEqual(brief(p.actions), ['ssn "2 (n1,n2)"']);
  assert.equal(p.wakeMs, 1000);
});

test('priority: voters equal the picked set but one is not confirmed -> /sync shrinks to the confirmed', () => {
  const p = syncStep(obs({ config: { synchronous_node_count: 2 } as Partial<DynamicConfig>, sync: syncKey('n0', ['n1', 'n2']), local: local({ ssn: '2 (n1,n2)', senders: [sender('n1', { syncState: 'sync' }), sender('n2', { syncState: 'sync', flushLsn: 100 })] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[n1] q0 @7']);
});

test('priority: /sync of another leader is taken over (standbys dropped) before anything else', () => {
  const p = syncStep(obs({ sync: syncKey('old', ['n1']), local: local({ ssn: 'n1', senders: [sender('n1', { syncState: 'sync' })] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0 @7']);
  assert.match(p.note, /next \/sync change on the next tick/);
  assert.equal(p.wakeMs, 1000);
});

test('priority, not strict: no standby left -> /sync emptied, then ssn cleared (writes proceed)', () => {
  const p = syncStep(obs({ sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', senders: [] }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0 @7', 'ssn ""']);
  const q = syncStep(obs({ sync: syncKey('n0', []), local: local({ ssn: 'n1', senders: [] }) }));
  assert.deepEqual(brief(q.actions), ['ssn ""']);
});

test('priority, strict: no standby left -> keep /sync and the ssn that requires it; placeholder when /sync is empty', () => {
  const strict = { synchronous_mode_strict: true } as Partial<DynamicConfig>;
  let p = syncStep(obs({ config: strict, sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', senders: [] }) }));
  assert.deepEqual(p.actions, []);
  assert.equal(p.logs, undefined, 'nothing changes: no warning');
  p = syncStep(obs({ config: strict, sync: syncKey('n0', []), local: local({ ssn: '', senders: [] }) }));
  assert.deepEqual(brief(p.actions), [`ssn "${SSN_PLACEHOLDER}"`]);
  assert.deepEqual(p.logs, [{ level: 'warn', msg: 'No standbys available!' }], "Patroni's warning, same words and level");
  // An unmanaged user value is replaced even when it reads the same.
  p = syncStep(obs({ config: strict, sync: syncKey('n0', ['n1']), local: local({ ssn: 'n1', managed: false, senders: [] }) }));
  assert.deepEqual(brief(p.actions), ['ssn "n1"']);
});

test('priority: an ANY-typed or unparsable running ssn is rewritten and not trusted for confirmation', () => {
  let p = syncStep(obs({ sync: syncKey('n0', ['n1']), local: local({ ssn: 'ANY 1 (n1)', senders: [sender('n1', { syncState: 'quorum' })] }), memory: { syncConfirmed: { n1: sender('n1').pid } } }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0 @7', 'ssn "n1"']);
  p = syncStep(obs({ sync: syncKey('n0', []), local: local({ ssn: 'n1 n2 ((', senders: [sender('n1')] }) }));
  assert.deepEqual(brief(p.actions), ['ssn "n1"']);
});

test('sync step without PostgreSQL facts or with mode off does nothing', () => {
  const o = obs();
  delete o.pg.sync;
  assert.deepEqual(syncStep(o).actions, []);
  assert.deepEqual(syncStep(obs({ config: { synchronous_mode: false } })).actions, []);
});

// ---- prepromote ----------------------------------------------------------------------------------

function replicaObs(o: Parameters<typeof obs>[0], me = 'n1'): Observation {
  const x = obs(o);
  x.self = { ...x.self, name: me };
  x.pg = { ...x.pg, inRecovery: true };
  delete x.pg.sync;
  return x;
}

test('prepromote, priority: CAS /sync naming me first, then ssn (strict keeps the former members)', () => {
  assert.deepEqual(brief(prepromoteActions(replicaObs({ sync: syncKey('n0', ['n1']) }))), ['sync n1:[] q0 @7', 'ssn ""']);
  assert.deepEqual(brief(prepromoteActions(replicaObs({ sync: syncKey('n0', ['n1', 'n2']), config: { synchronous_mode_strict: true } as Partial<DynamicConfig> }))), ['sync n1:[n0,n2] q0 @7', 'ssn "2 (n0,n2)"']);
  assert.deepEqual(brief(prepromoteActions(replicaObs({ sync: syncKey('n0', []), config: { synchronous_mode_strict: true } as Partial<DynamicConfig> }, 'n0'))), ['sync n0:[] q0 @7', `ssn "${SSN_PLACEHOLDER}"`]);
  assert.deepEqual(brief(prepromoteActions(replicaObs({}))), ['sync n1:[] q0', 'ssn ""']);
  assert.deepEqual(prepromoteActions(replicaObs({ config: { synchronous_mode: false } })), []);
});

test('prepromote, quorum: no /sync write; ssn = former members but me, numsync |members| - quorum - 1 (+1 if I was no voter)', () => {
  const q = { synchronous_mode: 'quorum' } as Partial<DynamicConfig>;
  assert.deepEqual(brief(prepromoteActions(replicaObs({ config: q, sync: syncKey('n0', ['n1', 'n2', 'n3'], 1) }))), ['ssn "ANY 2 (n0,n2,n3)"']);
  assert.deepEqual(brief(prepromoteActions(replicaObs({ config: q, sync: syncKey('n0', ['n2', 'n3'], 1) }))), ['ssn "ANY 2 (n0,n2,n3)"']);
  assert.deepEqual(brief(prepromoteActions(replicaObs({ config: q, sync: syncKey('n0', ['n1'], 1) }))), ['ssn ""']);
  assert.deepEqual(brief(prepromoteActions(replicaObs({ config: { ...q, synchronous_mode_strict: true } as Partial<DynamicConfig>, sync: syncKey('n0', ['n1'], 1) }))), ['ssn "ANY 1 (n0)"']);
});

// ---- quorum mode ---------------------------------------------------------------------------------

test('quorum: from nothing to the optimal steady state (ssn first while there are no voters)', () => {
  const q = { synchronous_mode: 'quorum', synchronous_node_count: 1 } as Partial<DynamicConfig>;
  const senders = [sender('n1', { syncState: 'quorum' }), sender('n2', { syncState: 'quorum' })];
  let p = syncStep(obs({ config: q, local: local({ senders }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[] q0', 'ssn "ANY 1 (n1,n2)"']);
  p = syncStep(obs({ config: q, sync: syncKey('n0', []), local: local({ ssn: 'ANY 1 (n1,n2)', senders }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[n1,n2] q1 @7']);
  p = syncStep(obs({ config: q, sync: syncKey('n0', ['n1', 'n2'], 1), local: local({ ssn: 'ANY 1 (n1,n2)', senders }) }));
  assert.deepEqual(p.actions, []);
  // A priority-typed value with the same meaning is rewritten as ANY.
  p = syncStep(obs({ config: q, sync: syncKey('n0', ['n1'], 0), local: local({ ssn: 'n1', senders: [senders[0] as WalSender] }) }));
  assert.deepEqual(brief(p.actions), ['ssn "ANY 1 (n1)"']);
});

test('quorum: adding a standby raises the quorum in /sync before ssn lists it; the quorum drops once it confirms', () => {
  const q = { synchronous_mode: 'quorum' } as Partial<DynamicConfig>;
  const senders = [sender('n1', { syncState: 'quorum' }), sender('n2', { syncState: 'quorum' }), sender('n3')];
  let p = syncStep(obs({ config: q, sync: syncKey('n0', ['n1', 'n2'], 1), local: local({ ssn: 'ANY 1 (n1,n2)', senders }) }));
  assert.deepEqual(brief(p.actions), ['sync n0:[n1,n2,n3] q2 @7', 'ssn "ANY 1 (n1,n2,n3)"']);
  p = syncStep(obs({ config: q, sync: syncKey('n0', ['n1', 'n2', 'n3'], 2), local: local({ ssn: 'ANY 1 (n1,n2,n3)', senders }) }));
  assert.deepEqual(p.actions, []);
});

test('quorum: after a failover /sync moves to me with the former leader as a voter', () => {
  const q = { synchronous_mode: 'quorum' } as Partial<DynamicConfig>;
  const o = obs({ config: q, sync: syncKey('old', ['n0', 'n1'], 1), local: local({ ssn: 'ANY 1 (n1,old)', senders: [sender('n1', { syncState: 'quorum' })] }) });
  const p = syncStep(o);
  assert.deepEqual(brief(p.actions), ['sync n0:[n1,old] q1 @7']);
  assert.equal(p.wakeMs, 1000);
});

function qs(ssn: string[], numsync: number, voters: string[], quorum: number, leader: string | undefined = 'm', syncExists = true): QuorumState {
  return { ssn, numsync, voters, quorum, leader, syncExists };
}

test('quorumInvariant: the overlap rule of 11.5', () => {
  assert.equal(quorumInvariant(qs(['a', 'b'], 1, ['a', 'b'], 1), 'm'), true);
  assert.equal(quorumInvariant(qs(['a', 'b'], 1, ['a', 'b'], 0), 'm'), false);
  assert.equal(quorumInvariant(qs(['a', 'b', 'c'], 1, ['a', 'b'], 2), 'm'), true);
  assert.equal(quorumInvariant(qs(['a', 'c'], 2, ['a', 'b'], 2), 'm'), false);
  assert.equal(quorumInvariant(qs([], 0, [], 0), 'm'), true);
  assert.equal(quorumInvariant(qs(['a'], 1, ['a'], 0, 'o'), 'm'), false);
  assert.equal(quorumInvariant(qs(['a', 'o'], 1, ['a'], 1, 'o'), 'm'), true);
});

test('quorum: an inconsistent /sync is repaired from ssn in one write', () => {
  const m = quorumNext(qs(['a', 'b'], 1, ['a', 'b', 'c'], 0), { me: 'm', active: ['a', 'b'], confirmed: ['a', 'b'], nodeCount: 1, strict: false });
  assert.deepEqual(m, { kind: 'sync', leader: 'm', voters: ['a', 'b'], quorum: 1 });
});

// The property test of 11.5: from random valid states, with random standby sets and confirmations,
// apply the planned writes one at a time (any one may fail and end the tick): the invariant holds
// after every single write, and with the facts held still the writes converge to the optimum.
test('quorum property: invariant after every single write, convergence to the optimal steady state', () => {
  const U = ['a', 'b', 'c', 'd', 'e'];
  const rng = new Rng(20261122);
  const pick = (from: string[], p: number) => from.filter(() => rng.next() < p);
  let starts = 0;
  let writes = 0;
  for (let trial = 0; trial < 4000; trial++) {
    const nodeCount = 1 + rng.int(3);
    const strict = rng.next() < 0.3;
    // A random start state; only valid ones (an invalid one is repaired first, tested above).
    const S = pick(U, 0.5);
    if (rng.next() < 0.05) S.push(SSN_PLACEHOLDER);
    const V = pick(U, 0.5);
    const r = rng.next();
    const leader = r < 0.75 ? 'm' : r < 0.9 ? 'o' : undefined;
    let st: QuorumState = qs(S, S.length === 0 ? 0 : 1 + rng.int(S.length), V, rng.int(V.length + 2), leader, leader !== undefined || rng.next() < 0.5);
    if (!quorumInvariant(st, 'm')) continue;
    starts++;
    let prevSsn = st.ssn;
    let active = pick(U, 0.6);
    const where = () => `trial ${trial}: ${JSON.stringify(st)} active ${active.join(',')} k=${nodeCount} strict=${strict}`;
    const tick = (failures: boolean, confirmP: number): number => {
      // Confirmed: listed in the running ssn since the previous tick and streaming.
      const confirmed = st.ssn.filter((n) => prevSsn.includes(n) && active.includes(n) && rng.next() < confirmP);
      prevSsn = st.ssn;
      const inp: QuorumInput = { me: 'm', active, confirmed, nodeCount, strict };
      const { moves } = quorumPlan(st, inp);
      const stopAt = failures && rng.next() < 0.3 ? rng.int(moves.length + 1) : moves.length;
      for (const m of moves.slice(0, stopAt)) {
        st = m.kind === 'ssn' ? { ...st, ssn: m.names, numsync: m.numsync } : { ...st, leader: m.leader, voters: m.voters, quorum: m.quorum, syncExists: true };
        writes++;
        assert.ok(quorumInvariant(st, 'm'), `invariant broken by ${JSON.stringify(m)} at ${where()}`);
        if (m.kind === 'ssn') assert.ok(m.numsync <= Math.max(1, m.names.length) && (m.names.length === 0 || m.numsync >= 1), `bad numsync ${JSON.stringify(m)}`);
        if (m.kind === 'sync') assert.ok(m.quorum >= 0, 'negative quorum');
      }
      return moves.length;
    };
    // Phase 1: churn (standbys come and go, writes fail, confirmations are slow).
    for (let i = 0; i < 6; i++) {
      if (rng.next() < 0.4) active = pick(U, 0.6);
      tick(true, 0.5);
    }
    // Phase 2: facts held still, every write succeeds, standbys confirm: must converge.
    let converged = false;
    for (let i = 0; i < 12 && !converged; i++) converged = tick(false, 1) === 0 && tick(false, 1) === 0;
    assert.ok(converged, `did not converge: ${where()}`);
    const T = [...active].sort();
    if (T.length > 0) {
      const n = Math.min(nodeCount, T.length);
      assert.deepEqual({ ssn: [...st.ssn].sort(), numsync: st.numsync, voters: [...st.voters].sort(), quorum: st.quorum, leader: st.leader }, { ssn: T, numsync: n, voters: T, quorum: T.length - n, leader: 'm' }, where());
    } else if (!strict) {
      assert.deepEqual({ ssn: st.ssn, voters: st.voters, leader: st.leader }, { ssn: [], voters: [], leader: 'm' }, where());
    } else {
      assert.ok(st.ssn.length > 0, `strict mode emptied ssn: ${where()}`);
    }
  }
  assert.ok(starts > 800 && writes > 1000, `too few cases exercised (${starts} starts, ${writes} writes)`);
});
