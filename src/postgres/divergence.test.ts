import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideDivergence, parseTimelineHistory, parseWaldumpRecordEnd } from './divergence.ts';
import { parseControlData, positionFromControlData, controlRewindable, controlSysid } from './controldata.ts';
import { lsnToNumber as L } from './lsn.ts';

test('parseTimelineHistory reads parent timelines and switch points', () => {
  const h = parseTimelineHistory('1\t0/3000000\tno recovery target specified\n\n# comment\n2\t0/5000158\tno recovery target specified\nbad line\n');
  assert.deepEqual(h, [
    { parentTli: 1, switchLsn: L('0/3000000') },
    { parentTli: 2, switchLsn: L('0/5000158') },
  ]);
});

const hist = [
  { parentTli: 1, switchLsn: L('0/3000000') },
  { parentTli: 2, switchLsn: L('0/5000000') },
];

test('decideDivergence follows spec 10.3', () => {
  const cases: Array<[string, Parameters<typeof decideDivergence>[0], 'need' | 'not_needed']> = [
    ['local timeline ahead', { local: { timeline: 3, lsn: 1, inRecovery: true }, leaderTimeline: 2, history: [] }, 'need'],
    ['same timeline', { local: { timeline: 2, lsn: L('9/0'), inRecovery: false }, leaderTimeline: 2, history: [] }, 'not_needed'],
    ['replica behind the switch', { local: { timeline: 1, lsn: L('0/2FFFFFF'), inRecovery: true }, leaderTimeline: 2, history: hist }, 'not_needed'],
    ['replica exactly at the switch', { local: { timeline: 1, lsn: L('0/3000000'), inRecovery: true }, leaderTimeline: 2, history: hist }, 'not_needed'],
    ['replica past the switch', { local: { timeline: 1, lsn: L('0/3000001'), inRecovery: true }, leaderTimeline: 2, history: hist }, 'need'],
    ['replica on a middle timeline', { local: { timeline: 2, lsn: L('0/4000000'), inRecovery: true }, leaderTimeline: 3, history: hist }, 'not_needed'],
    ['primary checkpoint at/after switch', { local: { timeline: 1, lsn: L('0/3000000'), inRecovery: false }, leaderTimeline: 2, history: hist }, 'need'],
    [
      'primary whose shutdown checkpoint ends at the switch',
      { local: { timeline: 1, lsn: L('0/2FFFF90'), inRecovery: false }, leaderTimeline: 2, history: hist, checkpointEnd: L('0/3000000') },
      'not_needed',
    ],
    [
      'primary whose checkpoint ends before the switch',
      { local: { timeline: 1, lsn: L('0/2FFFF00'), inRecovery: false }, leaderTimeline: 2, history: hist, checkpointEnd: L('0/2FFFF80') },
      'need',
    ],
    ['primary, checkpoint end unknown', { local: { timeline: 1, lsn: L('0/2FFFF00'), inRecovery: false }, leaderTimeline: 2, history: hist }, 'need'],
    ['history skips our timeline', { local: { timeline: 2, lsn: 1, inRecovery: true }, leaderTimeline: 4, history: [{ parentTli: 1, switchLsn: 5 }, { parentTli: 3, switchLsn: 9 }] }, 'need'],
    ['no history entry', { local: { timeline: 1, lsn: 1, inRecovery: true }, leaderTimeline: 2, history: [] }, 'need'],
  ];
  for (const [name, input, want] of cases) assert.equal(decideDivergence(input), want, name);
});

test('parseWaldumpRecordEnd: next record, end-of-WAL error, or computed length', () => {
  const ck = L('0/3000028');
  const two =
    'rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/03000028, prev 0/02000100, desc: CHECKPOINT_SHUTDOWN redo 0/3000028\n' +
    'rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/030000A0, prev 0/03000028, desc: RUNNING_XACTS\n';
  assert.equal(parseWaldumpRecordEnd(two, ck), L('0/30000A0'));
  const one =
    'rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/03000028, prev 0/02000100, desc: CHECKPOINT_SHUTDOWN\n' +
    'pg_waldump: error: error in WAL record at 0/3000028: invalid record length at 0/30000A0: wanted 24, got 0\n';
  assert.equal(parseWaldumpRecordEnd(one, ck), L('0/30000A0'));
  const bare = 'rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/03000028, prev 0/02000100, desc: CHECKPOINT_SHUTDOWN\n';
  assert.equal(parseWaldumpRecordEnd(bare, ck), L('0/30000A0'));
  assert.equal(parseWaldumpRecordEnd('pg_waldump: error: could not find file', ck), undefined);
});

const CONTROLDATA = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7310826529893558244
Database cluster state:               shut down in recovery
pg_control last modified:             Sun 22 Nov 2026 03:05:05 AM UTC
Latest checkpoint location:           0/5000060
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's TimeLineID:       2
Minimum recovery ending location:     0/6000100
Min recovery ending loc's timeline:   2
wal_log_hints setting:                off
max_connections setting:              100
Data page checksum version:           1
`;

test('pg_controldata parsing and derived facts', () => {
  const cd = parseControlData(CONTROLDATA);
  assert.equal(cd["Latest checkpoint's TimeLineID"], '2');
  assert.equal(controlSysid(cd), '7310826529893558244');
  assert.equal(controlRewindable(cd), true);
  assert.equal(controlRewindable({ ...cd, 'Data page checksum version': '0' }), false);
  assert.equal(controlRewindable({ ...cd, 'Data page checksum version': '0', 'wal_log_hints setting': 'on' }), true);
  assert.deepEqual(positionFromControlData(cd), { timeline: 2, lsn: L('0/6000100'), inRecovery: true });
  // 0/0 minimum recovery point: treated as a primary shutdown.
  assert.deepEqual(positionFromControlData({ ...cd, 'Minimum recovery ending location': '0/0', "Min recovery ending loc's timeline": '0' }), {
    timeline: 2,
    lsn: L('0/5000060'),
    inRecovery: false,
    checkpointLsn: L('0/5000060'),
  });
  assert.deepEqual(positionFromControlData({ ...cd, 'Database cluster state': 'shut down' }), {
    timeline: 2,
    lsn: L('0/5000060'),
    inRecovery: false,
    checkpointLsn: L('0/5000060'),
  });
  assert.equal(positionFromControlData({}), undefined);
});
