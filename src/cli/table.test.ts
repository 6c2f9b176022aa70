import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterView } from '../core/model.ts';
import type { ClusterView, Member, MemberData } from '../core/model.ts';
import { clusterRows, formatLsn, lagInMb, prettyTable, pyJson, renderTable } from './table.ts';

function member(name: string, data: MemberData): Member {
  return { name, data, version: '1', session: '' };
}

function view(over: Partial<ClusterView>): ClusterView {
  return clusterView({ initialize: '7277694203142172922', config: { ttl: 30, loop_wait: 10 }, configVersion: '1', revision: '10', ...over });
}

// 0/40004E8 = 67110120
const LSN = 0x40004e8;

/** The spec's §3.3 example cluster. */
function batman(): ClusterView {
  return view({
    leader: { name: 'postgresql0', version: '5', session: 'abc' },
    status: { optime: LSN },
    members: [
      member('postgresql1', {
        conn_url: 'postgres://127.0.0.1:5433/postgres',
        api_url: 'http://127.0.0.1:8009/patroni',
        state: 'running',
        role: 'replica',
        xlog_location: LSN,
        receive_lsn: LSN,
        replay_lsn: LSN,
        replication_state: 'streaming',
        timeline: 5,
      }),
      member('postgresql0', {
        conn_url: 'postgres://127.0.0.1:5432/postgres',
        api_url: 'http://127.0.0.1:8008/patroni',
        state: 'running',
        role: 'primary',
        xlog_location: LSN,
        timeline: 5,
      }),
    ],
  });
}

test('formatLsn renders upper-case hex without padding', () => {
  assert.equal(formatLsn(0), '0/0');
  assert.equal(formatLsn(LSN), '0/40004E8');
  assert.equal(formatLsn(0x1_0000_00ab), '1/AB');
  assert.equal(formatLsn(0x2f_ffff_ffff), '2F/FFFFFFFF');
});

test('lagInMb rounds half to even like Python round()', () => {
  assert.equal(lagInMb(0), 0);
  assert.equal(lagInMb(524287), 0);
  assert.equal(lagInMb(524288), 0); // 0.5 -> 0
  assert.equal(lagInMb(524289), 1);
  assert.equal(lagInMb(1572864), 2); // 1.5 -> 2
  assert.equal(lagInMb(2621440), 2); // 2.5 -> 2
  assert.equal(lagInMb(10 * 1048576 + 1), 10);
});

test('pretty table matches the spec example exactly', () => {
  const expected = [
    '+ Cluster: batman (7277694203142172922) -+-----------+----+-------------+-----+------------+-----+',
    '| Member      | Host           | Role    | State     | TL | Receive LSN | Lag | Replay LSN | Lag |',
    '+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+',
    '| postgresql0 | 127.0.0.1:5432 | Leader  | running   |  5 |             |     |            |     |',
    '| postgresql1 | 127.0.0.1:5433 | Replica | streaming |  5 |   0/40004E8 |   0 |  0/40004E8 |   0 |',
    '+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+',
  ].join('\n');
  assert.equal(renderTable('batman', batman(), { format: 'pretty', extended: false }), expected);
});

test('uninitialized and initializing titles; empty member list', () => {
  const v = view({ initialize: undefined });
  assert.equal(
    renderTable('x', v, { format: 'pretty', extended: false }),
    [
      '+ Cluster: x (uninitialized) --+----+-------------+-----+------------+-----+',
      '| Member | Host | Role | State | TL | Receive LSN | Lag | Replay LSN | Lag |',
      '+--------+------+------+-------+----+-------------+-----+------------+-----+',
      '+--------+------+------+-------+----+-------------+-----+------------+-----+',
    ].join('\n'),
  );
  const init = view({
    initialize: '',
    members: [member('n1', { conn_url: 'postgres://10.0.0.1:5432/postgres', state: 'initializing new cluster', role: 'uninitialized' })],
  });
  assert.equal(
    renderTable('x', init, { format: 'pretty', extended: false }),
    [
      '+ Cluster: x (initializing) --+--------------------------+----+-------------+-----+------------+-----+',
      '| Member | Host     | Role    | State                    | TL | Receive LSN | Lag | Replay LSN | Lag |',
      '+--------+----------+---------+--------------------------+----+-------------+-----+------------+-----+',
      '| n1     | 10.0.0.1 | Replica | initializing new cluster |    |     unknown |     |    unknown |     |',
      '+--------+----------+---------+--------------------------+----+-------------+-----+------------+-----+',
    ].join('\n'),
  );
});

test('a title longer than the table is cut so the last + stays', () => {
  assert.equal(prettyTable(' Cluster: a-very-long-name ', ['A'], ['l'], [['x']]), ['+ Cl+', '| A |', '+---+', '| x |', '+---+'].join('\n'));
});

test('Host rule: plain hosts on distinct hosts with port 5432, host:port otherwise', () => {
  const mk = (urls: Array<string | undefined>): ClusterView =>
    view({ members: urls.map((u, i) => member(`m${i}`, u === undefined ? { state: 'running' } : { conn_url: u, state: 'running' })) });
  const hosts = (v: ClusterView): string[] => clusterRows(v).map((r) => r.host);
  assert.deepEqual(hosts(mk(['postgres://10.0.0.1:5432/postgres', 'postgres://10.0.0.2/postgres'])), ['10.0.0.1', '10.0.0.2']);
  // one non-default port: every member gets its port
  assert.deepEqual(hosts(mk(['postgres://10.0.0.1:5432/postgres', 'postgres://10.0.0.2:5433/postgres'])), ['10.0.0.1:5432', '10.0.0.2:5433']);
  // repeated host
  assert.deepEqual(hosts(mk(['postgres://h:5432/postgres', 'postgres://h/postgres'])), ['h:5432', 'h:5432']);
  // members without a parsable host are blank and do not count
  assert.deepEqual(hosts(mk(['postgres://a:5432/postgres', undefined, 'not a url'])), ['a', '', '']);
  // IPv6 host is shown unbracketed; conn_kwargs are honoured
  const v = view({
    members: [member('a', { conn_url: 'postgres://[::1]:5432/postgres' }), member('b', { conn_kwargs: { host: 'db-b', port: 6432 } })],
  });
  assert.deepEqual(hosts(v), ['::1:5432', 'db-b:6432']);
});

test('roles, states and sorting', () => {
  const v = view({
    config: { synchronous_mode: true },
    leader: { name: 'b', version: '1', session: '' },
    sync: { leader: 'b', sync_standby: 'C', quorum: 0, version: '3' },
    members: [
      member('d', { state: 'running', replication_state: 'in archive recovery' }),
      member('c', { state: 'running', replication_state: 'streaming' }),
      member('b', { state: 'running', role: 'primary', replication_state: 'streaming' }),
      member('a', { state: 'stopped' }),
      member('e', {}),
    ],
  });
  const rows = clusterRows(v);
  assert.deepEqual(
    rows.map((r) => [r.member, r.role, r.state]),
    [
      ['a', 'Replica', 'stopped'],
      ['b', 'Leader', 'running'],
      ['c', 'Sync Standby', 'streaming'],
      ['d', 'Replica', 'in archive recovery'],
      ['e', 'Replica', ''],
    ],
  );
  // sync mode off: the sync key is ignored
  const off = clusterRows({ ...v, config: { synchronous_mode: false } });
  assert.equal(off.find((r) => r.member === 'c')?.role, 'Replica');
  // quorum mode
  const q = clusterRows({ ...v, config: { synchronous_mode: 'quorum' } });
  assert.equal(q.find((r) => r.member === 'c')?.role, 'Quorum Standby');
  // standby cluster: the lock holder is a Standby Leader
  const sb = clusterRows({ ...v, config: { standby_cluster: { host: '10.1.1.1', port: 5432 } } });
  assert.equal(sb.find((r) => r.member === 'b')?.role, 'Standby Leader');
  // a /sync without a leader still names its standby (as Patroni 3.0.2's list does, and as
  // GET /sync answers); synchronous_mode spelled as Patroni's parse_bool accepts it
  const { leader: _leader, ...noLeader } = v.sync ?? { leader: '', sync_standby: '', quorum: 0, version: '' };
  for (const mode of [true, 'on', 'TRUE', 'yes', '1', 1] as const) {
    const r = clusterRows({ ...v, config: { synchronous_mode: mode }, sync: noLeader });
    assert.equal(r.find((x) => x.member === 'c')?.role, 'Sync Standby', `synchronous_mode ${JSON.stringify(mode)}`);
  }
  for (const mode of [false, 'off', 'maybe', 2, null] as const) {
    const r = clusterRows({ ...v, config: { synchronous_mode: mode } });
    assert.equal(r.find((x) => x.member === 'c')?.role, 'Replica', `synchronous_mode ${JSON.stringify(mode)}`);
  }
});

test('lag: against status.optime, else the leader xlog_location; never negative; legacy xlog_location', () => {
  const mb = 1048576;
  const base = (status: ClusterView['status']): ClusterView =>
    view({
      leader: { name: 'l', version: '1', session: '' },
      status,
      members: [
        member('l', { state: 'running', xlog_location: 100 * mb }),
        member('r1', { state: 'running', replication_state: 'streaming', receive_lsn: 90 * mb, replay_lsn: 80 * mb + 600 * 1024 }),
        member('r2', { state: 'running', receive_lsn: 200 * mb, replay_lsn: 200 * mb }),
        member('r3', { state: 'running', replication_state: 'streaming', xlog_location: 99 * mb }),
        member('r4', { state: 'running', xlog_location: 98 * mb }),
        member('r5', { state: 'starting' }),
      ],
    });
  const cells = (v: ClusterView): unknown[] =>
    clusterRows(v).map((r) => [r.member, r.receiveLag, r.replayLag, r.receiveLsn, r.replayLsn]);
  assert.deepEqual(cells(base({ optime: 120 * mb })), [
    ['l', undefined, undefined, undefined, undefined],
    ['r1', 30 * mb, 40 * mb - 600 * 1024, 90 * mb, 80 * mb + 600 * 1024],
    ['r2', 0, 0, 200 * mb, 200 * mb],
    ['r3', 21 * mb, undefined, 99 * mb, 'unknown'],
    ['r4', undefined, 22 * mb, 'unknown', 98 * mb],
    ['r5', undefined, undefined, 'unknown', 'unknown'],
  ]);
  // without /status: the leader's xlog_location
  assert.deepEqual(cells(base(undefined))[1], ['r1', 10 * mb, 20 * mb - 600 * 1024, 90 * mb, 80 * mb + 600 * 1024]);
  // rendered in MB, rounded; 19.41 MB -> 19
  const out = renderTable('c', base(undefined), { format: 'tsv', extended: false }).split('\n');
  assert.equal(out[2], 'c\tr1\t\tReplica\tstreaming\t\t0/5A00000\t10\t0/5096000\t19');
});

test('tsv: all columns including Cluster, full lag titles', () => {
  assert.equal(
    renderTable('batman', batman(), { format: 'tsv', extended: false }),
    [
      'Cluster\tMember\tHost\tRole\tState\tTL\tReceive LSN\tReceive Lag\tReplay LSN\tReplay Lag',
      'batman\tpostgresql0\t127.0.0.1:5432\tLeader\trunning\t5\t\t\t\t',
      'batman\tpostgresql1\t127.0.0.1:5433\tReplica\tstreaming\t5\t0/40004E8\t0\t0/40004E8\t0',
    ].join('\n'),
  );
});

test('json: objects keyed by column name, empty cells omitted, Python json.dumps spacing', () => {
  const out = renderTable('batman', batman(), { format: 'json', extended: false });
  assert.equal(
    out,
    '[{"Cluster": "batman", "Member": "postgresql0", "Host": "127.0.0.1:5432", "Role": "Leader", "State": "running", "TL": 5}, ' +
      '{"Cluster": "batman", "Member": "postgresql1", "Host": "127.0.0.1:5433", "Role": "Replica", "State": "streaming", "TL": 5, ' +
      '"Receive LSN": "0/40004E8", "Receive Lag": 0, "Replay LSN": "0/40004E8", "Replay Lag": 0}]',
  );
  assert.deepEqual(JSON.parse(out)[1]['Receive Lag'], 0);
  assert.equal(renderTable('x', view({}), { format: 'json', extended: false }), '[]');
  assert.equal(pyJson({ a: 'é', b: [1, true, null] }), '{"a": "\\u00e9", "b": [1, true, null]}');
});

test('yaml: sorted keys, block style', () => {
  const out = renderTable('batman', batman(), { format: 'yaml', extended: false });
  assert.equal(
    out,
    [
      '- Cluster: batman',
      '  Host: 127.0.0.1:5432',
      '  Member: postgresql0',
      '  Role: Leader',
      '  State: running',
      '  TL: 5',
      '- Cluster: batman',
      '  Host: 127.0.0.1:5433',
      '  Member: postgresql1',
      '  Receive LSN: 0/40004E8',
      '  Receive Lag: 0',
      '  Replay LSN: 0/40004E8',
      '  Replay Lag: 0',
      '  Role: Replica',
      '  State: streaming',
      '  TL: 5',
    ].join('\n'),
  );
});

test('extended columns, multi-line cells with rules between rows, footers', () => {
  const v = batman();
  const [m1, m0] = v.members; // batman() lists postgresql1 first
  m1!.data.tags = { nofailover: true, clonefrom: true };
  m1!.data.pending_restart = true;
  m1!.data.pending_restart_reason = {
    max_connections: { old_value: '100', new_value: '200' },
    shared_preload_libraries: { old_value: 'pg_stat_statements', new_value: 'pg_stat_statements,auto_explain' },
  };
  m0!.data.scheduled_restart = { schedule: '2024-01-01T10:00:00+00:00', postgres_version: '15.4' };
  v.config = { pause: true };
  v.failover = { leader: 'postgresql0', member: 'postgresql1', scheduled_at: '2023-09-24T10:36:00+02:00', version: '7' };
  const out = renderTable('batman', v, { format: 'pretty', extended: false });
  const expected = [
    '+ Cluster: batman (7277694203142172922) -+-----------+----+-------------+-----+------------+-----+-----------------+-----------------------------------------------+---------------------------------------------+------------------+',
    '| Member      | Host           | Role    | State     | TL | Receive LSN | Lag | Replay LSN | Lag | Pending restart | Pending restart reason                        | Scheduled restart                           | Tags             |',
    '+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+-----------------+-----------------------------------------------+---------------------------------------------+------------------+',
    '| postgresql0 | 127.0.0.1:5432 | Leader  | running   |  5 |             |     |            |     |                 |                                               | 2024-01-01T10:00:00+00:00 if version < 15.4 |                  |',
    '+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+-----------------+-----------------------------------------------+---------------------------------------------+------------------+',
    '| postgresql1 | 127.0.0.1:5433 | Replica | streaming |  5 |   0/40004E8 |   0 |  0/40004E8 |   0 | *               | max_connections: 100->200                     |                                             | clonefrom: true  |',
    '|             |                |         |           |    |             |     |            |     |                 | shared_preload_libraries: [hidden - too long] |                                             | nofailover: true |',
    '+-------------+----------------+---------+-----------+----+-------------+-----+------------+-----+-----------------+-----------------------------------------------+---------------------------------------------+------------------+',
    ' Maintenance mode: on',
    ' Switchover scheduled at: 2023-09-24T10:36:00+02:00',
    '                    from: postgresql0',
    '                      to: postgresql1',
  ].join('\n');
  assert.equal(out, expected);
  // tsv: tags in flow style, reasons not hidden
  const tsv = renderTable('batman', v, { format: 'tsv', extended: false });
  assert.equal(
    tsv,
    'Cluster\tMember\tHost\tRole\tState\tTL\tReceive LSN\tReceive Lag\tReplay LSN\tReplay Lag\tPending restart\tPending restart reason\tScheduled restart\tTags\n' +
      'batman\tpostgresql0\t127.0.0.1:5432\tLeader\trunning\t5\t\t\t\t\t\t\t2024-01-01T10:00:00+00:00 if version < 15.4\t\n' +
      'batman\tpostgresql1\t127.0.0.1:5433\tReplica\tstreaming\t5\t0/40004E8\t0\t0/40004E8\t0\t*\tmax_connections: 100->200\nshared_preload_libraries: pg_stat_statements->pg_stat_statements,auto_explain\t\t{clonefrom: true, nofailover: true}',
  );
  // json: tags stay an object
  const json = JSON.parse(renderTable('batman', v, { format: 'json', extended: false })) as Array<Record<string, unknown>>;
  assert.deepEqual(json[1]!['Tags'], { nofailover: true, clonefrom: true });
  assert.equal(json[1]!['Pending restart'], '*');
  assert.equal(json[0]!['Pending restart'], undefined);
  // -e on a plain cluster adds the empty columns
  const ext = renderTable('batman', batman(), { format: 'pretty', extended: true }).split('\n');
  assert.equal(ext[1], '| Member      | Host           | Role    | State     | TL | Receive LSN | Lag | Replay LSN | Lag | Pending restart | Pending restart reason | Scheduled restart | Tags |');
});


test('standby cluster: the lock holder shows replication_state, the sync key is ignored', () => {
  const v = view({
    config: { standby_cluster: { host: '10.9.9.9', port: 5432 }, synchronous_mode: true },
    leader: { name: 'a', version: '1', session: '' },
    sync: { leader: 'a', sync_standby: 'b', quorum: 0, version: '2' },
    members: [
      member('a', { conn_url: 'postgres://h1:5432/postgres', state: 'running', role: 'standby_leader', replication_state: 'streaming', timeline: 3 }),
      member('b', { conn_url: 'postgres://h2:5432/postgres', state: 'running', role: 'replica', receive_lsn: 0, replay_lsn: 5 }),
    ],
  });
  assert.deepEqual(
    clusterRows(v).map((r) => [r.member, r.role, r.state, r.receiveLsn, r.replayLsn]),
    [
      ['a', 'Standby Leader', 'streaming', undefined, undefined],
      // receive_lsn 0 counts as not reported
      ['b', 'Replica', 'running', 'unknown', 5],
    ],
  );
  const json = JSON.parse(renderTable('s', v, { format: 'json', extended: false })) as Array<Record<string, unknown>>;
  assert.equal(json[1]!['Receive LSN'], 'unknown');
  assert.equal('Receive Lag' in json[1]!, false);
  assert.equal(json[1]!['Replay LSN'], '0/5');
});

test('odd DCS contents are tolerated', () => {
  const v = view({
    leader: { name: 'x', version: '1', session: '' },
    status: { optime: Number.NaN },
    sync: { leader: 'x', sync_standby: 42 as unknown as string, quorum: null, version: '1' },
    config: { synchronous_mode: 'on' },
    members: [
      member('a', 'garbage' as unknown as MemberData),
      member('b', { conn_url: 42, state: ['x'], timeline: '5', receive_lsn: '100', replay_lsn: -3, tags: ['t'], pending_restart_reason: 'no', scheduled_restart: { when: 1 } } as unknown as MemberData),
      member('c', { conn_url: 'postgres://:5432/x', conn_kwargs: { port: 'zz' } }),
    ],
  });
  const out = renderTable('odd', v, { format: 'pretty', extended: true });
  assert.equal(
    out,
    [
      '+ Cluster: odd (7277694203142172922) --+-------------+-----+------------+-----+-----------------+------------------------+-------------------+------+',
      '| Member | Host | Role    | State | TL | Receive LSN | Lag | Replay LSN | Lag | Pending restart | Pending restart reason | Scheduled restart | Tags |',
      '+--------+------+---------+-------+----+-------------+-----+------------+-----+-----------------+------------------------+-------------------+------+',
      '| a      |      | Replica |       |    |     unknown |     |    unknown |     |                 |                        |                   |      |',
      '| b      |      | Replica |       |    |     unknown |     |    unknown |     |                 |                        |                   |      |',
      '| c      |      | Replica |       |    |     unknown |     |    unknown |     |                 |                        |                   |      |',
      '+--------+------+---------+-------+----+-------------+-----+------------+-----+-----------------+------------------------+-------------------+------+',
    ].join('\n'),
  );
  for (const format of ['tsv', 'json', 'yaml'] as const) assert.doesNotThrow(() => renderTable('odd', v, { format, extended: true }));
});

test('optional columns appear only for values of members that have a host', () => {
  const v = view({
    members: [
      member('a', { conn_url: 'postgres://h1:5432/postgres', state: 'running' }),
      member('b', { state: 'running', pending_restart: true, tags: { nofailover: true } }),
    ],
  });
  assert.equal(renderTable('c', v, { format: 'tsv', extended: false }).split('\n')[0], 'Cluster\tMember\tHost\tRole\tState\tTL\tReceive LSN\tReceive Lag\tReplay LSN\tReplay Lag');
  v.members[0]!.data.tags = { nofailover: true };
  assert.match(renderTable('c', v, { format: 'tsv', extended: false }).split('\n')[0]!, /\tTags$/);
});
