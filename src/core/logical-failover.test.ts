import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { defaultConfig } from './testing.ts';
import { clusterView, type Member, type MemberData, type Observation } from './model.ts';
import { enforceHotStandbyFeedback, hotStandbyFeedbackFor, readinessBegin, readinessCopied, readinessStep, type FeedbackInputs, type Readiness } from './logical-failover.ts';
import { replicaSlots, slotNameOnPrimary, type LocalSlot, type SlotMember } from './slots.ts';

const CDC = { slots: { cdc: { type: 'logical', database: 'postgres', plugin: 'test_decoding' } } };

test('slotNameOnPrimary: own slot, the head of a cascade, none through nostream or a loop', () => {
  const members: SlotMember[] = [{ name: 'p' }, { name: 'i-1' }, { name: 'leaf', replicatefrom: 'i-1' }, { name: 'ns', nostream: true }, { name: 'a', replicatefrom: 'b' }, { name: 'b', replicatefrom: 'a' }];
  assert.equal(slotNameOnPrimary('r', members, {}), 'r');
  assert.equal(slotNameOnPrimary('leaf', members, { replicatefrom: 'i-1' }), 'i_1');
  assert.equal(slotNameOnPrimary('x', members, { replicatefrom: 'gone' }), 'x');
  assert.equal(slotNameOnPrimary('x', members, { replicatefrom: 'x' }), 'x');
  assert.equal(slotNameOnPrimary('x', members, { nostream: true }), undefined);
  assert.equal(slotNameOnPrimary('x', members, { replicatefrom: 'ns' }), undefined);
  assert.equal(slotNameOnPrimary('a', members, { replicatefrom: 'b' }), undefined);
  // Cascading from the leader is streaming from the primary: the member's own slot.
  assert.equal(slotNameOnPrimary('x', members, { replicatefrom: 'p' }, 'p'), 'x');
  assert.equal(slotNameOnPrimary('x', members, { replicatefrom: 'p' }), 'p');
});

function fb(over: Partial<FeedbackInputs> = {}): FeedbackInputs {
  return { self: 'n1', tags: {}, config: CDC, useSlots: true, leaderName: 'n0', members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2' }], ...over };
}

test('enforceHotStandbyFeedback: where permanent logical slots have copies, or a cascading member needs it', () => {
  assert.equal(enforceHotStandbyFeedback(fb()), true);
  assert.equal(enforceHotStandbyFeedback(fb({ config: { slots: { barman: { type: 'physical' } } } })), false, 'no logical slot');
  assert.equal(enforceHotStandbyFeedback(fb({ useSlots: false })), false, 'use_slots off');
  assert.equal(enforceHotStandbyFeedback(fb({ config: { ...CDC, standby_cluster: { host: 'a' } } })), false, 'standby cluster');
  assert.equal(enforceHotStandbyFeedback(fb({ tags: { nostream: true } })), false, 'nostream');
  assert.equal(enforceHotStandbyFeedback(fb({ tags: { nofailover: true } })), false, 'nofailover keeps no copies');
  assert.equal(enforceHotStandbyFeedback(fb({ tags: { nofailover: true }, members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'n1' }] })), true,
    'a nofailover intermediate passes on the feedback of a downstream that keeps copies');
  assert.equal(enforceHotStandbyFeedback(fb({ tags: { nofailover: true }, members: [{ name: 'n0' }, { name: 'n1' }, { name: 'n2', replicatefrom: 'n1', nofailover: true }] })), false);
  assert.equal(enforceHotStandbyFeedback(fb({ tags: { nofailover: true }, members: [{ name: 'n0' }, { name: 'n1', replicatefrom: 'n2' }, { name: 'n2', replicatefrom: 'n1' }] })), false, 'a loop');
});

function member(name: string, data: MemberData = {}): Member {
  return { name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, state: 'running', role: 'replica', ...data } };
}

test('hotStandbyFeedbackFor reads use_slots and the members from the cluster view', () => {
  const cluster = clusterView({ initialize: '1', config: {}, configVersion: '1', history: [], revision: '1', leader: { name: 'n0', version: '1', session: 's' }, members: [member('n0'), member('n1'), member('n2', { tags: { replicatefrom: 'n1' } })] });
  assert.equal(hotStandbyFeedbackFor('n1', {}, { ...CDC, postgresql: {} }, cluster), true);
  assert.equal(hotStandbyFeedbackFor('n1', {}, { ...CDC, postgresql: { use_slots: false } }, cluster), false);
  assert.equal(hotStandbyFeedbackFor('n1', { nofailover: true }, { ...CDC, postgresql: {} }, cluster), true, 'n2 cascades from n1');
  assert.equal(hotStandbyFeedbackFor('n2', { nofailover: true, replicatefrom: 'n1' }, { ...CDC, postgresql: {} }, cluster), false);
});

const fresh: Readiness = { started: false, pending: {} };

test('readiness: the first check makes every copy pending and asks the primary for their catalog_xmin', () => {
  const { state, ask } = readinessBegin(fresh, { cdc: 700, other: 710 });
  assert.deepEqual(state, { started: true, pending: { cdc: null, other: null } });
  assert.deepEqual(ask, ['cdc', 'other']);
  // Later checks keep only the pending copies that still exist; nothing new becomes pending.
  const later = readinessBegin({ started: true, pending: { cdc: 650, gone: null } }, { cdc: 700, other: 710 });
  assert.deepEqual(later, { state: { started: true, pending: { cdc: 650 } }, ask: [] });
  assert.deepEqual(readinessCopied({ started: true, pending: {} }, ['cdc']), { started: true, pending: { cdc: null } });
});

test('readiness: a copy is ready once primary slot xmin <= physical slot catalog_xmin <= copy catalog_xmin', () => {
  const s0 = readinessBegin(fresh, { cdc: 700 }).state;
  // The physical slot holds no catalog_xmin (no feedback): nothing is decided, not even remembered.
  assert.deepEqual(readinessStep(s0, null, { cdc: 650 }, { cdc: 700 }), { state: s0, ready: [] });
  // Feedback arrives: the primary's 650 is remembered; the physical slot at 640 has not reached it.
  const s1 = readinessStep(s0, 640, { cdc: 650 }, { cdc: 700 });
  assert.deepEqual(s1, { state: { started: true, pending: { cdc: 650 } }, ready: [] });
  // The physical slot's catalog_xmin is newer than the copy's: not ready (the copy may need older rows).
  assert.deepEqual(readinessStep(s1.state, 720, {}, { cdc: 700 }).ready, []);
  // The copy has no catalog_xmin: not ready.
  assert.deepEqual(readinessStep(s1.state, 680, {}, { cdc: null }).ready, []);
  // 650 <= 680 <= 700: ready, no longer pending.
  assert.deepEqual(readinessStep(s1.state, 680, {}, { cdc: 700 }), { state: { started: true, pending: {} }, ready: ['cdc'] });
  // The primary has no such slot: it stays pending, unknown.
  assert.deepEqual(readinessStep(s0, 680, {}, { cdc: 700 }).state.pending, { cdc: null });
});

test('readiness: xids compare modulo 2^32 across the wraparound', () => {
  const s = { started: true, pending: { cdc: 4294967000 } };
  assert.deepEqual(readinessStep(s, 100, {}, { cdc: 200 }).ready, ['cdc']);
  assert.deepEqual(readinessStep(s, 4294966000, {}, { cdc: 200 }).ready, []);
  fc.assert(
    fc.property(fc.nat(0xffffffff), fc.nat(1000), fc.nat(1000), (base, d1, d2) => {
      const t = base, p = (base + d1) >>> 0, c = (base + d1 + d2) >>> 0;
      return readinessStep({ started: true, pending: { x: t } }, p, {}, { x: c }).ready.length === 1;
    }),
  );
});

function logical(name: string, over: Partial<LocalSlot> = {}): LocalSlot {
  return { name, type: 'logical', plugin: 'test_decoding', database: 'postgres', active: false, restartLsn: 90, confirmedFlushLsn: 100, walStatus: 'reserved', holdsXmin: false, ...over };
}

function replicaObs(slots: LocalSlot[], tags: Record<string, unknown> = {}): Observation {
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: 'n1', tags, canBootstrap: true, bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: { ...defaultConfig(), member_slots_ttl: 0, ...CDC },
    cluster: clusterView({
      initialize: '1', config: {}, configVersion: '1', history: [], revision: '10', status: { optime: 1000, slots: { cdc: 100 } },
      leader: { name: 'n0', version: '5', session: 'abc' },
      members: [member('n0', { role: 'primary' }), member('n1', { tags })],
    }),
    pg: {
      dataDirEmpty: false, sysid: '1', running: true, ready: true, inRecovery: true, walLsn: 1000, receiveLsn: 1000, replayLsn: 1000,
      timeline: 1, streaming: true, upstream: 'n0', controlState: 'in archive recovery', rewindable: true, crashed: false, slots,
    },
    task: undefined,
    failures: [],
    memory: { started: true },
  };
}

test('replicaSlots: a replica with logical copies checks their readiness against the leader', () => {
  assert.deepEqual(replicaSlots(replicaObs([logical('cdc', { catalogXmin: 700 })]), { started: true }), [
    { type: 'syncSlots', ops: [{ op: 'checkReady', connUrl: 'postgres://n0:5432/postgres', physical: 'n1', copies: { cdc: 700 } }] },
  ]);
  // A copy with wal_status lost is dropped, not checked.
  assert.deepEqual(replicaSlots(replicaObs([logical('cdc', { walStatus: 'lost' })]), { started: true }), [{ type: 'syncSlots', ops: [{ op: 'drop', name: 'cdc', why: 'wal_status lost' }] }]);
  // A cascading replica: its feedback reaches the primary through the intermediate's slot.
  const casc = replicaObs([logical('cdc', { catalogXmin: 700 })], { replicatefrom: 'n2' });
  casc.cluster = clusterView({ ...casc.cluster!, members: [...casc.cluster!.members, member('n2')] });
  assert.deepEqual(replicaSlots(casc, { started: true }).flatMap((a) => (a.type === 'syncSlots' ? a.ops.filter((o) => o.op === 'checkReady') : [])), [
    { op: 'checkReady', connUrl: 'postgres://n0:5432/postgres', physical: 'n2', copies: { cdc: 700 } },
  ]);
  // Without copies there is nothing to check.
  assert.deepEqual(replicaSlots(replicaObs([]), { started: true }), [{ type: 'syncSlots', ops: [{ op: 'copyLogical', names: ['cdc'], leader: 'n0' }] }]);
});
