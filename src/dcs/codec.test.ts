import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterPrefix,
  compactJson,
  decodeCluster,
  decodeFailover,
  decodeHistory,
  decodeMemberData,
  decodeStatus,
  decodeSync,
  encodeFailover,
  encodeStatus,
  encodeSync,
  type RawKv,
  INVALID_CONFIG_VERSION,
  unusableConfigVersion,
} from './codec.ts';

const P = '/service/batman/';
function kv(rel: string, value: string, modRevision = '7', lease = '0'): RawKv {
  return { key: P + rel, value, modRevision, createRevision: '5', lease };
}

describe('clusterPrefix', () => {
  const cases: [string, string, string][] = [
    ['service', 'batman', '/service/batman/'],
    ['/service', 'batman', '/service/batman/'],
    ['/service/', 'batman', '/service/batman/'],
    ['//a//b//', 'c', '/a/b/c/'],
    ['', 'batman', '/batman/'],
  ];
  for (const [ns, scope, want] of cases) {
    it(`${JSON.stringify(ns)} + ${JSON.stringify(scope)} -> ${want}`, () => assert.equal(clusterPrefix(ns, scope), want));
  }
});

describe('decodeMemberData', () => {
  const cases: [string, string, unknown][] = [
    ['json object', '{"conn_url":"postgres://h:5432/postgres","role":"master","state":"running"}',
      { conn_url: 'postgres://h:5432/postgres', role: 'master', state: 'running' }],
    ['unparsable', '{"conn_url":', {}],
    ['json array', '[1,2]', {}],
    ['json null', 'null', {}],
    ['json string', '"x"', {}],
    ['empty', '', {}],
    ['legacy governor url', 'postgres://u:p@10.0.0.1:5432/postgres?application_name=http://10.0.0.1:8008/patroni',
      { conn_url: 'postgres://u:p@10.0.0.1:5432/postgres', api_url: 'http://10.0.0.1:8008/patroni' }],
    ['legacy url without query', 'postgres://10.0.0.1:5432/postgres', { conn_url: 'postgres://10.0.0.1:5432/postgres' }],
    ['legacy url, other params', 'postgresql://h/db?sslmode=require&application_name=http%3A%2F%2Fh%3A8008%2Fpatroni',
      { conn_url: 'postgresql://h/db', api_url: 'http://h:8008/patroni' }],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.deepEqual(decodeMemberData(input), want));
});

describe('decodeFailover', () => {
  const cases: [string, string, unknown][] = [
    ['switchover', '{"leader":"pg0","member":"pg2"}', { version: '9', leader: 'pg0', member: 'pg2' }],
    ['scheduled', '{"leader":"pg0","scheduled_at":"2019-09-24T12:00:00+00:00"}',
      { version: '9', leader: 'pg0', scheduled_at: '2019-09-24T12:00:00+00:00' }],
    ['cleared', '{}', { version: '9' }],
    ['empty string', '', { version: '9' }],
    ['legacy leader:candidate', 'pg0:pg2', { version: '9', leader: 'pg0', member: 'pg2' }],
    ['legacy leader only', 'pg0', { version: '9', leader: 'pg0' }],
    ['legacy candidate only', ' : pg2', { version: '9', member: 'pg2' }],
    ['json number', '5', { version: '9' }],
    ['wrong field types', '{"leader":1,"member":null,"scheduled_at":false}', { version: '9' }],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.deepEqual(decodeFailover(input, '9'), want));
});

describe('decodeSync', () => {
  const cases: [string, string, unknown][] = [
    ['on', '{"leader":"node0","quorum":0,"sync_standby":"node1,node2"}', { version: '3', leader: 'node0', quorum: 0, sync_standby: 'node1,node2' }],
    ['no standby', '{"leader":"node0","quorum":0,"sync_standby":null}', { version: '3', leader: 'node0', quorum: 0, sync_standby: null }],
    ['old format without quorum', '{"leader":"node0","sync_standby":"node1"}', { version: '3', leader: 'node0', quorum: null, sync_standby: 'node1' }],
    ['quorum as string', '{"leader":"a","quorum":"2","sync_standby":"b"}', { version: '3', leader: 'a', quorum: 2, sync_standby: 'b' }],
    ['bad quorum', '{"leader":"a","quorum":"x","sync_standby":"b"}', { version: '3', leader: 'a', quorum: null, sync_standby: 'b' }],
    ['empty object', '{}', { version: '3', quorum: null, sync_standby: null }],
    ['unparsable', 'nope', undefined],
    ['array', '[]', undefined],
    ['empty', '', undefined],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.deepEqual(decodeSync(input, '3'), want));
});

describe('decodeHistory', () => {
  const cases: [string, string, unknown][] = [
    ['full', '[[1,25623960,"no recovery target specified","2019-09-23T16:57:57+02:00","postgresql1"]]',
      [[1, 25623960, 'no recovery target specified', '2019-09-23T16:57:57+02:00', 'postgresql1']]],
    ['old three-field lines', '[[1,100,"r"],[2,200,"s"]]', [[1, 100, 'r'], [2, 200, 's']]],
    ['empty array', '[]', []],
    ['malformed lines skipped', '[[1,100,"r"],"x",[null,1,"y"],[2]]', [[1, 100, 'r']]],
    ['unparsable', '[[1,', undefined],
    ['object', '{}', undefined],
    ['empty', '', undefined],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.deepEqual(decodeHistory(input), want));
});

describe('decodeStatus', () => {
  const cases: [string, string, unknown][] = [
    ['full', '{"optime":67395656,"slots":{"pg1":67395656},"retain_slots":["pg0","pg1"]}',
      { optime: 67395656, slots: { pg1: 67395656 }, retain_slots: ['pg0', 'pg1'] }],
    ['bare int', '67395656', { optime: 67395656 }],
    ['slots as json strings', '{"optime":5,"slots":"{\\"a\\":4}","retain_slots":"[\\"a\\"]"}', { optime: 5, slots: { a: 4 }, retain_slots: ['a'] }],
    ['bad slots dropped', '{"optime":5,"slots":"{bad","retain_slots":7}', { optime: 5 }],
    ['bad slot values dropped', '{"optime":5,"slots":{"a":"x","b":3}}', { optime: 5, slots: { b: 3 } }],
    ['optime as string', '{"optime":"12"}', { optime: 12 }],
    ['no optime', '{"slots":{}}', undefined],
    ['unparsable', '{', undefined],
    ['negative', '-1', undefined],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.deepEqual(decodeStatus(input), want));
});

describe('decodeCluster', () => {
  it('decodes a full cluster', () => {
    const view = decodeCluster(P, [
      kv('config', '{"ttl":30,"loop_wait":10,"postgresql":{"parameters":null}}', '11'),
      kv('failover', '{"member":"pg1"}', '12'),
      kv('failsafe', '{"pg0":"http://a/patroni","bad":1}'),
      kv('history', '[[1,100,"r","t","pg0"]]'),
      kv('initialize', '7268616322854375442'),
      kv('leader', 'pg0', '20', '7587869090389498372'),
      kv('members/pg0', '{"role":"primary","state":"running"}', '21', '7587869090389498372'),
      kv('members/pg1', 'garbage', '22', '9223372036854775807'),
      kv('members/sub/dir', '{}'),
      kv('status', '{"optime":500}'),
      kv('sync', '{"leader":"pg0","quorum":0,"sync_standby":"pg1"}', '13'),
      { key: '/service/other/leader', value: 'x', modRevision: '1', createRevision: '1', lease: '0' },
      kv('1/leader', 'citus-worker'),
    ], '42');
    assert.deepEqual(view, {
      initialize: '7268616322854375442',
      config: { ttl: 30, loop_wait: 10, postgresql: { parameters: null } },
      configVersion: '11',
      leader: { name: 'pg0', version: '20', session: '7587869090389498372' },
      members: [
        { name: 'pg0', data: { role: 'primary', state: 'running' }, version: '21', session: '7587869090389498372' },
        { name: 'pg1', data: {}, version: '22', session: '9223372036854775807' },
      ],
      failover: { version: '12', member: 'pg1' },
      sync: { version: '13', leader: 'pg0', quorum: 0, sync_standby: 'pg1' },
      history: [[1, 100, 'r', 't', 'pg0']],
      status: { optime: 500 },
      failsafe: { pg0: 'http://a/patroni' },
      revision: '42',
    });
  });

  it('an empty prefix gives an empty view', () => {
    const view = decodeCluster(P, [], '1');
    assert.equal(view.initialize, undefined);
    assert.equal(view.leader, undefined);
    assert.deepEqual(view.members, []);
    assert.equal(view.revision, '1');
  });

  it('keeps initialize "" (bootstrap in progress) apart from absent', () => {
    assert.equal(decodeCluster(P, [kv('initialize', '')], '1').initialize, '');
  });

  it('invalid config: config undefined, version INVALID_CONFIG_VERSION (no compare-and-set accepts it)', () => {
    for (const bad of ['{', '[]', '"x"', '']) {
      const view = decodeCluster(P, [kv('config', bad, '8')], '1');
      assert.equal(view.config, undefined, bad);
      assert.equal(view.configVersion, INVALID_CONFIG_VERSION);
      assert.equal(unusableConfigVersion(view.configVersion), true);
    }
    assert.equal(decodeCluster(P, [kv('config', '{}', '8')], '1').configVersion, '8', 'an empty object is a valid config');
    assert.equal(unusableConfigVersion('8'), false);
    assert.equal(unusableConfigVersion(undefined), false);
  });

  it('falls back to optime/leader when status is absent or unusable', () => {
    assert.deepEqual(decodeCluster(P, [kv('optime/leader', '123')], '1').status, { optime: 123 });
    assert.deepEqual(decodeCluster(P, [kv('status', '{'), kv('optime/leader', '123')], '1').status, { optime: 123 });
    assert.deepEqual(decodeCluster(P, [kv('status', '{"optime":9}'), kv('optime/leader', '123')], '1').status, { optime: 9 });
    assert.equal(decodeCluster(P, [kv('optime/leader', 'x')], '1').status, undefined);
  });

  it('unparsable sync, history, failsafe decode to undefined', () => {
    const view = decodeCluster(P, [kv('sync', '{'), kv('history', 'x'), kv('failsafe', '[]')], '1');
    assert.equal(view.sync, undefined);
    assert.equal(view.history, undefined);
    assert.equal(view.failsafe, undefined);
  });

  it('lease "0" is no session', () => {
    const view = decodeCluster(P, [kv('leader', 'pg0', '3', '0')], '1');
    assert.equal(view.leader?.session, '');
  });
});

describe('writers', () => {
  it('compact JSON with non-ASCII escaped like Python', () => {
    assert.equal(compactJson({ a: [1, 'é'], b: null }), '{"a":[1,"\\u00e9"],"b":null}');
    assert.equal(compactJson({ s: '😀' }), '{"s":"\\ud83d\\ude00"}');
  });
  it('failover: only set fields, Patroni order', () => {
    assert.equal(encodeFailover({ member: 'pg2', leader: 'pg0' }), '{"leader":"pg0","member":"pg2"}');
    assert.equal(encodeFailover({ leader: '', member: null }), '{}');
    assert.equal(encodeFailover({}), '{}');
  });
  it('sync field order', () => {
    assert.equal(encodeSync({ sync_standby: null, quorum: 0, leader: 'n0' }), '{"leader":"n0","quorum":0,"sync_standby":null}');
  });
  it('status omits empty slots', () => {
    assert.equal(encodeStatus({ optime: 5, slots: {}, retain_slots: [] }), '{"optime":5}');
    assert.equal(encodeStatus({ optime: 5, slots: { a: 1 }, retain_slots: ['a'] }), '{"optime":5,"slots":{"a":1},"retain_slots":["a"]}');
  });
  it('round trip through the decoders', () => {
    assert.deepEqual(decodeStatus(encodeStatus({ optime: 7, slots: { x: 3 } })), { optime: 7, slots: { x: 3 } });
    assert.deepEqual(decodeFailover(encodeFailover({ leader: 'a', member: 'b' }), '1'), { version: '1', leader: 'a', member: 'b' });
  });
});
