import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROBE_SQL, toProbeResult, type RawProbeRow } from './probe.ts';

const base: RawProbeRow = {
  in_recovery: false,
  flush_lsn: '0/3000060',
  walfile: '000000020000000000000003',
  receive_lsn: null,
  replay_lsn: null,
  replay_paused: false,
  checkpoint_tli: 1,
  wal_receiver: null,
  postmaster_start: '2024-01-01T00:00:00.000000Z',
  server_version_num: 150000,
  replication: [],
  sysid: '7300000000000000000',
  ssn: 'ANY 1 (r1)',
  synchronous_commit: 'on',
  sync_rep_waiters: 3,
};

test('probe maps the synchronous replication columns', () => {
  assert.match(PROBE_SQL, /current_setting\('synchronous_standby_names'\)/);
  const p = toProbeResult({
    ...base,
    replication: [
      {
        pid: 4242,
        usename: 'replicator',
        application_name: 'r1',
        client_addr: '127.0.0.1',
        state: 'streaming',
        sync_state: 'quorum',
        sync_priority: 1,
        write_lsn: '0/3000060',
        flush_lsn: '0/3000060',
        replay_lsn: '0/3000028',
        reply_time: '2026-12-07 02:00:00.123456+00',
      },
      // odd values are tolerated, not trusted
      { pid: 'x', application_name: null, state: null, sync_state: null, write_lsn: 'bad', flush_lsn: null, replay_lsn: 7 },
    ],
  });
  assert.equal(p.synchronousStandbyNames, 'ANY 1 (r1)');
  assert.equal(p.synchronousCommit, 'on');
  assert.equal(p.syncRepWaiters, 3);
  assert.match(PROBE_SQL, /wait_event = 'SyncRep'/);
  assert.equal(p.timeline, 2);
  assert.deepEqual(p.replication[0], {
    pid: 4242,
    usename: 'replicator',
    application_name: 'r1',
    client_addr: '127.0.0.1',
    state: 'streaming',
    sync_state: 'quorum',
    sync_priority: 1,
    write_lsn: 0x3000060,
    flush_lsn: 0x3000060,
    replay_lsn: 0x3000028,
    reply_time: '2026-12-07 02:00:00.123456+00',
  });
  assert.equal(p.replication[1]?.reply_time, null, 'PostgreSQL < 12 has no reply_time: null, the probe does not fail');
  assert.equal(p.replication[1]?.pid, null);
  assert.equal(p.replication[1]?.write_lsn, undefined);
  assert.equal(p.replication[1]?.replay_lsn, undefined);
});

test('probe: empty settings read as empty strings', () => {
  const p = toProbeResult({ ...base, ssn: null, synchronous_commit: null, replication: null as unknown as [] });
  assert.equal(p.synchronousStandbyNames, '');
  assert.equal(p.synchronousCommit, '');
  assert.deepEqual(p.replication, []);
});
