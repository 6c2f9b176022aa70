import assert from 'node:assert/strict';
import test from 'node:test';
import { defaultConfig } from './testing.ts';
import { decide } from './decide.ts';
import { clusterView, type LeaderStatus, type LocalPg, type Member, type MemberData, type Observation } from './model.ts';
import { ignoreMatchers, memberSlotName, permanentSlots, planSlots, retainStep, type LocalSlot, type SlotInputs, type SlotOp } from './slots.ts';

function inputs(over: Partial<SlotInputs> = {}): SlotInputs {
  return {
    self: 'n0',
    leader: true,
    leaderName: 'n0',
    nofailover: false,
    nostream: false,
    paused: false,
    useSlots: true,
    memberSlotsTtl: 1800,
    members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2' }],
    retained: [],
    permanent: [],
    ignore: [],
    published: {},
    replayLsn: undefined,
    ...over,
  };
}

function phys(name: string, over: Partial<LocalSlot> = {}): LocalSlot {
  return { name, type: 'physical', plugin: null, database: null, active: false, restartLsn: 100, confirmedFlushLsn: undefined, walStatus: 'reserved', holdsXmin: false, ...over };
}

function logical(name: string, over: Partial<LocalSlot> = {}): LocalSlot {
  return { name, type: 'logical', plugin: 'test_decoding', database: 'postgres', active: false, restartLsn: 90, confirmedFlushLsn: 100, walStatus: 'reserved', holdsXmin: false, ...over };
}

const cdc = { name: 'cdc', type: 'logical' as const, database: 'postgres', plugin: 'test_decoding' };

const cases: [string, Partial<SlotInputs>, LocalSlot[], SlotOp[]][] = [
  ['leader creates the members\' slots', {}, [], [{ op: 'createPhysical', name: 'n1' }, { op: 'createPhysical', name: 'n2' }]],
  ['leader drops an unknown inactive slot', {}, [phys('n1'), phys('n2'), phys('old')], [{ op: 'drop', name: 'old', why: 'unknown' }]],
  ['an active unknown slot stays', {}, [phys('n1'), phys('n2'), phys('old', { active: true })], []],
  ['nothing is dropped in pause', { paused: true }, [phys('n1'), phys('n2'), logical('old')], []],
  ['ignore_slots by name', { ignore: [{ name: 'barman' }] }, [phys('n1'), phys('n2'), phys('barman')], []],
  ['ignore_slots by type and plugin, other plugin dropped', { ignore: [{ type: 'logical', plugin: 'pgoutput' }] },
    [phys('n1'), phys('n2'), logical('a', { plugin: 'pgoutput' }), logical('b')], [{ op: 'drop', name: 'b', why: 'unknown' }]],
  ['ignore_slots by database', { ignore: [{ database: 'app' }] }, [phys('n1'), phys('n2'), logical('a', { database: 'app' })], []],
  ['permanent physical and logical slots are created on the leader', { permanent: [{ name: 'barman', type: 'physical' }, cdc] },
    [phys('n1'), phys('n2')], [{ op: 'createPhysical', name: 'barman' }, { op: 'createLogical', name: 'cdc', database: 'postgres', plugin: 'test_decoding' }]],
  ['a logical slot whose plugin changed is re-created', { permanent: [cdc] }, [phys('n1'), phys('n2'), logical('cdc', { plugin: 'pgoutput' })],
    [{ op: 'drop', name: 'cdc', why: 'attributes changed (logical postgres pgoutput)' }, { op: 'createLogical', name: 'cdc', database: 'postgres', plugin: 'test_decoding' }]],
  ['a slot with wal_status lost is dropped (re-created next pass)', {}, [phys('n1', { walStatus: 'lost' }), phys('n2')], [{ op: 'drop', name: 'n1', why: 'wal_status lost' }]],
  ['a member that streams elsewhere does not hold an xmin on the leader', { members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'n1', lsn: 500 }] },
    [phys('n1'), phys('n2', { holdsXmin: true })], [{ op: 'drop', name: 'n2', why: 'holds an xmin while no member streams through it' }]],
  ['cascading member: the leader keeps its slot and advances it to the member\'s position', { members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'n1', lsn: 500 }] },
    [phys('n1'), phys('n2')], [{ op: 'advance', name: 'n2', lsn: 500 }]],
  ['replicatefrom a member that is gone: the leader expects it to stream (no advance)', { members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'gone', lsn: 500 }] },
    [phys('n1'), phys('n2')], []],
  ['nostream members get no slot', { members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', nostream: true }] }, [phys('n1'), phys('n2')], [{ op: 'drop', name: 'n2', why: 'unknown' }]],
  ['retained slot of a vanished member is kept', { members: [{ name: 'n0' }, { name: 'n1' }], retained: ['n0', 'n1', 'n2'] }, [phys('n1'), phys('n2')], []],
  ['without member_slots_ttl a vanished member\'s slot goes', { memberSlotsTtl: 0, members: [{ name: 'n0' }, { name: 'n1' }], retained: ['n2'] }, [phys('n1'), phys('n2')], [{ op: 'drop', name: 'n2', why: 'unknown' }]],
  ['use_slots off: every unknown slot goes, none created', { useSlots: false, ignore: [{ name: 'keep' }] }, [phys('n1'), phys('keep')], [{ op: 'drop', name: 'n1', why: 'unknown' }]],
  // replicas
  ['replica keeps every member\'s slot and advances them to /status', { self: 'n1', leader: false, published: { n0: 400, n2: 300 } },
    [phys('n0'), phys('n2')], [{ op: 'advance', name: 'n0', lsn: 400 }, { op: 'advance', name: 'n2', lsn: 300 }]],
  ['a replica asks no advance past its replay position', { self: 'n1', leader: false, published: { n0: 400, n2: 300 }, replayLsn: 350 },
    [phys('n0', { restartLsn: 350 }), phys('n2')], [{ op: 'advance', name: 'n2', lsn: 300 }]],
  ['replica creates missing member slots', { self: 'n1', leader: false }, [], [{ op: 'createPhysical', name: 'n0' }, { op: 'createPhysical', name: 'n2' }]],
  ['nofailover replica keeps only its cascading members\' slots', { self: 'n1', leader: false, nofailover: true, members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'n1' }], permanent: [cdc] },
    [phys('n0')], [{ op: 'drop', name: 'n0', why: 'unknown' }, { op: 'createPhysical', name: 'n2' }]],
  ['the intermediate replica creates the downstream\'s slot (expected active: not advanced)', { self: 'n1', leader: false, members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'n1', lsn: 900 }], published: { n2: 800 } },
    [phys('n0')], [{ op: 'createPhysical', name: 'n2' }]],
  ['replica copies a published logical slot it lacks, advances the one it has to min(published, replay)', { self: 'n1', leader: false, permanent: [cdc, { ...cdc, name: 'cdc2' }], published: { cdc: 300, cdc2: 200 }, replayLsn: 250 },
    [phys('n0'), phys('n2'), logical('cdc')], [{ op: 'advance', name: 'cdc', lsn: 250, database: 'postgres' }, { op: 'copyLogical', names: ['cdc2'], leader: 'n0' }]],
  ['replica does not copy a logical slot the leader has not published', { self: 'n1', leader: false, permanent: [cdc] }, [phys('n0'), phys('n2')], []],
  ['a nostream replica has no logical slot copies', { self: 'n1', leader: false, nostream: true, permanent: [cdc], published: { cdc: 5 } }, [phys('n0'), phys('n2'), logical('cdc')], [{ op: 'drop', name: 'cdc', why: 'unknown' }]],
  ['replica advances a permanent physical slot', { self: 'n1', leader: false, permanent: [{ name: 'barman', type: 'physical' }], published: { barman: 700 } },
    [phys('n0'), phys('n2'), phys('barman')], [{ op: 'advance', name: 'barman', lsn: 700 }]],
  ['no permanent physical slot named as the node itself', { permanent: [{ name: 'n0', type: 'physical' }] }, [phys('n1'), phys('n2')], []],
];

for (const [name, over, have, want] of cases) {
  test(`planSlots: ${name}`, () => {
    assert.deepEqual(planSlots(inputs(over), have), want);
  });
}

test('planSlots: slots not read, nothing planned', () => {
  assert.deepEqual(planSlots(inputs(), undefined), []);
});

test('permanentSlots reads Patroni\'s forms and leaves out what it cannot create', () => {
  assert.deepEqual(
    permanentSlots({ slots: { a: null, b: { type: 'physical' }, c: { database: 'd', plugin: 'p' }, d: { type: 'logical' }, 'Bad-Name': null, e: { cluster_type: 'standby' } } }),
    [{ name: 'a', type: 'physical' }, { name: 'b', type: 'physical' }, { name: 'c', type: 'logical', database: 'd', plugin: 'p' }],
  );
  assert.deepEqual(permanentSlots({ permanent_slots: { x: null }, slots: { y: null } }), [{ name: 'x', type: 'physical' }]);
  assert.deepEqual(ignoreMatchers({ ignore_slots: [{ name: 'a', type: 'physical', other: 1 }, 'junk'] }), [{ name: 'a', type: 'physical' }]);
});

test('retainStep keeps a vanished member for member_slots_ttl, resets timers a new leader learns from /status', () => {
  let r = retainStep(undefined, ['n0', 'n1', 'n2'], undefined, 0, 1800);
  assert.deepEqual(Object.keys(r).sort(), ['n0', 'n1', 'n2']);
  r = retainStep(r, ['n0', 'n1'], undefined, 1_800_000, 1800);
  assert.deepEqual(Object.keys(r).sort(), ['n0', 'n1', 'n2']);
  r = retainStep(r, ['n0', 'n1'], undefined, 1_800_001, 1800);
  assert.deepEqual(Object.keys(r).sort(), ['n0', 'n1']);
  assert.deepEqual(retainStep(undefined, ['n1'], ['n0', 'n1', 'n9'], 5, 1800), { n0: 5, n1: 5, n9: 5 });
  assert.deepEqual(retainStep({ a: 1 }, ['n1'], ['n0'], 5, 0), {});
});

test('memberSlotName maps member names as Patroni does', () => {
  assert.equal(memberSlotName('Node-1.dc'), 'node_1_dc');
  assert.equal(memberSlotName('a b'), 'au0032b');
  assert.equal(memberSlotName('x'.repeat(70)).length, 63);
});

// ---------------------------------------------------------------------------------------------
// Through decide(): the leader publishes slots and retain_slots, replicas plan from /status.

function member(name: string, data: MemberData = {}): Member {
  return { name, version: '1', session: '1', data: { conn_url: 'postgres://127.0.0.1:5432/postgres', state: 'running', role: 'replica', ...data } };
}

function observation(self: string, leader: string, pgOver: Partial<LocalPg>, status: LeaderStatus, config: Record<string, unknown> = {}): Observation {
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: self, tags: {}, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: { ...defaultConfig(), member_slots_ttl: 1800, ...config },
    cluster: clusterView({
      initialize: '7301234567890123456', config: {}, configVersion: '1', history: [], status, revision: '10',
      leader: { name: leader, version: '5', session: 'abc' },
      members: [member('n0', { role: 'primary', xlog_location: 1000 }), member('n1', { xlog_location: 900 })],
    }),
    pg: {
      dataDirEmpty: false, sysid: '7301234567890123456', running: true, ready: true, inRecovery: self !== leader, walLsn: 1000, receiveLsn: 1000, replayLsn: 1000,
      timeline: 1, streaming: self !== leader, upstream: self === leader ? null : leader, controlState: 'in production', rewindable: true, crashed: false, ...pgOver,
    },
    task: undefined,
    lockRefreshedAt: 99_000,
    failures: [],
    memory: { started: true },
  };
}

test('decide: the leader publishes its slots\' positions, its own slot at its LSN, retain_slots, and plans the slot changes', () => {
  const perm = { slots: { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' } } };
  const d = decide(observation('n0', 'n0', { slots: [phys('n1', { restartLsn: 900, active: true }), phys('gone'), logical('cdc', { confirmedFlushLsn: 950 })] }, { optime: 1000 }, perm));
  assert.deepEqual(d.actions, [
    { type: 'refreshLeader' },
    { type: 'writeStatus', status: { optime: 1000, slots: { cdc: 950, n0: 1000, n1: 900 }, retain_slots: ['n0', 'n1'] } },
    { type: 'syncSlots', ops: [{ op: 'drop', name: 'gone', why: 'unknown' }] },
  ]);
  assert.deepEqual(d.memory.slotsRetain, { n0: 100_000, n1: 100_000 });
  const again = decide(observation('n0', 'n0', { slots: [phys('n1', { restartLsn: 900, active: true }), logical('cdc', { confirmedFlushLsn: 950 })] },
    { optime: 1000, slots: { n1: 900, n0: 1000, cdc: 950 }, retain_slots: ['n1', 'n0'] }, perm));
  assert.deepEqual(again.actions, [{ type: 'refreshLeader' }]);
});

test('decide: a replica keeps the leader\'s slot and copies the published logical slot', () => {
  const perm = { slots: { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' } } };
  const d = decide(observation('n1', 'n0', { slots: [phys('n0', { restartLsn: 800 })] }, { optime: 1000, slots: { n0: 1000, n1: 900, cdc: 950 }, retain_slots: ['n0', 'n1'] }, perm));
  assert.deepEqual(d.actions, [{ type: 'syncSlots', ops: [{ op: 'advance', name: 'n0', lsn: 1000 }, { op: 'copyLogical', names: ['cdc'], leader: 'n0' }] }]);
});
