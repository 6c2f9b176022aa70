import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildParameters,
  diffParams,
  isGeneratedConf,
  parseBool,
  parseConf,
  quoteConfValue,
  renderPostgresqlConf,
  slotName,
  withSyncOverride,
  type BuildParamsInput,
} from './conf.ts';
import { parseConnUrl, parseListen, quoteConninfoValue, quoteIdent, quoteLiteral, renderConninfo, renderPgHba, renderPgpass } from './conninfo.ts';

test('slotName maps member names as Patroni does (spec 1.10)', () => {
  assert.equal(slotName('pg-node.1'), 'pg_node_1');
  assert.equal(slotName('Node_A'), 'node_a');
  assert.equal(slotName('café'), 'cafu0233');
  assert.equal(slotName('a b'), 'au0032b');
  assert.equal(slotName('x'.repeat(70)).length, 63);
});

test('quoteConfValue escapes quotes, backslashes and newlines; parseConf reverses it', () => {
  assert.equal(quoteConfValue('plain'), "'plain'");
  assert.equal(quoteConfValue("it's"), "'it''s'");
  assert.equal(quoteConfValue('C:\\dir'), "'C:\\\\dir'");
  assert.equal(quoteConfValue('a\nb'), "'a\\nb'");
  for (const v of ["it's", 'back\\slash', "mix\\'ed''", 'line\nbreak', '', 'host=x password=\'p\\\'w\'']) {
    const text = `x = ${quoteConfValue(v)}\n`;
    assert.equal(parseConf(text).params.x, v, JSON.stringify(v));
  }
});

test('parseConf reads unquoted values, skips comments and includes', () => {
  const p = parseConf("# c\ninclude 'base.conf'\nport = 5432 # comment\nshared_buffers='16MB'\nFoo.Bar 'x'\n").params;
  assert.deepEqual(p, { port: '5432', shared_buffers: '16MB', 'foo.bar': 'x' });
});

test('conninfo quoting', () => {
  assert.equal(quoteConninfoValue('abc'), 'abc');
  assert.equal(quoteConninfoValue(''), "''");
  assert.equal(quoteConninfoValue('a b'), "'a b'");
  assert.equal(quoteConninfoValue("o'k\\"), "'o\\'k\\\\'");
  assert.equal(renderConninfo([['host', '10.0.0.1'], ['port', 5432], ['passfile', undefined], ['application_name', 'my node']]), "host=10.0.0.1 port=5432 application_name='my node'");
});

test('parseConnUrl and parseListen', () => {
  assert.deepEqual(parseConnUrl('postgres://10.0.0.1:5433/postgres'), { host: '10.0.0.1', port: 5433, dbname: 'postgres' });
  assert.deepEqual(parseConnUrl('postgresql://[::1]:5432/db'), { host: '::1', port: 5432, dbname: 'db' });
  assert.deepEqual(parseConnUrl('postgres://h'), { host: 'h', port: 5432 });
  assert.throws(() => parseConnUrl('http://h:1/x'), /scheme/);
  assert.throws(() => parseConnUrl('nonsense'), /invalid conn_url/);
  assert.deepEqual(parseListen('127.0.0.1:5432'), { addresses: '127.0.0.1', port: 5432, localHost: '127.0.0.1' });
  assert.deepEqual(parseListen('0.0.0.0,::1:6000'), { addresses: '0.0.0.0,::1', port: 6000, localHost: '127.0.0.1' });
  assert.deepEqual(parseListen('*:5432').localHost, '127.0.0.1');
  assert.throws(() => parseListen('5432'), /host:port/);
  assert.throws(() => parseListen('h:99999'), /bad port/);
});

test('renderPgpass escapes colons and backslashes', () => {
  assert.equal(
    renderPgpass([{ host: '127.0.0.1', port: 5432, database: '*', user: 'rep:l', password: 'p:w\\d' }]),
    '127.0.0.1:5432:*:rep\\:l:p\\:w\\\\d\n',
  );
  assert.equal(renderPgpass([]), '');
});

test('renderPgHba: configured lines first, scram with passwords, trust without', () => {
  const withPw = renderPgHba({
    lines: ['host all all 10.0.0.0/8 md5'],
    superuser: { username: 'postgres', password: 'x' },
    replication: { username: 'replicator', password: 'y' },
  });
  const lines = withPw.split('\n').filter((l) => !l.startsWith('#') && l !== '');
  assert.equal(lines[0], 'host all all 10.0.0.0/8 md5');
  assert.ok(lines.includes('host replication replicator 127.0.0.1/32 scram-sha-256'));
  assert.ok(!withPw.includes('trust'));
  const noPw = renderPgHba({ lines: [], superuser: { username: 'postgres' }, replication: { username: 'rep user' } });
  assert.ok(noPw.includes('host replication "rep user" 127.0.0.1/32 trust'));
  assert.ok(!noPw.includes('scram'));
});

test('parseBool accepts PostgreSQL spellings', () => {
  for (const t of [true, 'on', 'ON', 'true', 't', 'yes', 'y', '1', 1]) assert.equal(parseBool(t), true, String(t));
  for (const f of [false, 'off', 'of', 'false', 'f', 'no', 'n', '0', 0]) assert.equal(parseBool(f), false, String(f));
  for (const u of ['o', 'maybe', '', 2, null]) assert.equal(parseBool(u), undefined, String(u));
});

const settings: BuildParamsInput['settings'] = {
  listen: '127.0.0.1:5432',
  parameters: { shared_buffers: '16MB', max_connections: 500, "bad name'": 1, log_line_prefix: "%m '%p' " },
  pgpass: '/var/lib/pg/pgpass',
  database: 'postgres',
  useSlots: true,
  authentication: { superuser: { username: 'postgres', password: 's' }, replication: { username: 'replicator', password: 'r:p' } },
};

test('buildParameters: controlled GUCs from dynamic config, validated', () => {
  const b = buildParameters({
    settings,
    memberName: 'node-1',
    scope: 'demo',
    role: 'primary',
    dynamic: { max_connections: 10, max_wal_senders: 20, wal_level: 'hot_standby', wal_log_hints: 'off', wal_keep_segments: 4, work_mem: '8MB', shared_buffers: '1GB' },
  });
  const conf = Object.fromEntries(b.conf);
  assert.equal(conf.max_connections, '100'); // 10 < 25: default; the local 500 is ignored
  assert.equal(conf.max_wal_senders, '20');
  assert.equal(conf.wal_level, 'replica');
  assert.equal(conf.wal_log_hints, 'off');
  assert.equal(conf.hot_standby, 'on');
  assert.equal(conf.wal_keep_size, '64MB');
  assert.equal(conf.cluster_name, 'demo');
  assert.equal(conf.shared_buffers, '16MB'); // local wins over dynamic
  assert.equal(conf.work_mem, '8MB');
  assert.equal(conf.log_line_prefix, "%m '%p' ");
  assert.equal(conf.listen_addresses, '127.0.0.1');
  assert.equal(conf.port, '5432');
  assert.equal(conf.primary_conninfo, '');
  assert.equal(b.standby, false);
  assert.equal(b.pgpass, undefined);
  assert.equal(b.commandLine.max_wal_senders, '20');
  assert.equal(b.commandLine.wal_keep_size, undefined);
  assert.ok(b.ignored.some((m) => m.startsWith('max_connections=10')));
  assert.ok(b.ignored.some((m) => m.startsWith('max_connections:')));
  assert.ok(b.ignored.some((m) => m.includes('invalid parameter name')));
});

test('buildParameters: replica with and without upstream', () => {
  const b = buildParameters({ settings, memberName: 'Node-1', role: 'replica', upstream: { connUrl: 'postgres://10.0.0.2:5433/appdb', name: 'leader' } });
  const conf = Object.fromEntries(b.conf);
  assert.equal(
    conf.primary_conninfo,
    'host=10.0.0.2 port=5433 user=replicator passfile=/var/lib/pg/pgpass dbname=appdb application_name=Node-1 sslmode=prefer gssencmode=prefer channel_binding=prefer',
  );
  assert.ok(!conf.primary_conninfo!.includes('r:p'));
  assert.equal(conf.primary_slot_name, 'node_1');
  assert.equal(conf.recovery_target_timeline, 'latest');
  assert.equal(b.standby, true);
  assert.equal(b.upstreamName, 'leader');
  assert.deepEqual(b.pgpass, { host: '10.0.0.2', port: 5433, database: '*', user: 'replicator', password: 'r:p' });

  const noSlots = buildParameters({ settings: { ...settings, useSlots: false }, memberName: 'n', role: 'replica', upstream: { connUrl: 'postgres://h:1/x', name: 'l' } });
  assert.equal(Object.fromEntries(noSlots.conf).primary_slot_name, '');
  // The dynamic use_slots (as given by the agent) decides over the settings' bootstrap value.
  const dynOff = buildParameters({ settings, memberName: 'n', role: 'replica', upstream: { connUrl: 'postgres://h:1/x', name: 'l' }, useSlots: false });
  assert.equal(Object.fromEntries(dynOff.conf).primary_slot_name, '');
  const dynOn = buildParameters({ settings: { ...settings, useSlots: false }, memberName: 'n', role: 'replica', upstream: { connUrl: 'postgres://h:1/x', name: 'l' }, useSlots: true });
  assert.equal(Object.fromEntries(dynOn.conf).primary_slot_name, 'n');

  // tags.nostream: no streaming connection, no slot, the upstream still recorded as followed.
  const nostream = buildParameters({ settings, memberName: 'n', role: 'replica', upstream: { connUrl: 'postgres://h:1/x', name: 'l' }, nostream: true });
  assert.equal(Object.fromEntries(nostream.conf).primary_conninfo, '');
  assert.equal(Object.fromEntries(nostream.conf).primary_slot_name, '');
  assert.equal(nostream.upstreamName, 'l');
  assert.equal(nostream.standby, true);

  const none = buildParameters({ settings, memberName: 'n', role: 'replica', upstream: null });
  assert.equal(Object.fromEntries(none.conf).primary_conninfo, '');
  assert.equal(none.standby, true);
  assert.equal(none.upstreamName, null);
});

test('rendered postgresql.conf round-trips and diffs into restart vs reload', () => {
  const p1 = buildParameters({ settings, memberName: 'n', role: 'replica', upstream: { connUrl: 'postgres://h:1/x', name: 'a' } });
  const text = renderPostgresqlConf({ conf: p1.conf, includeBase: true, upstreamName: 'a' });
  assert.ok(isGeneratedConf(text));
  assert.match(text, /^# Do not edit this file manually!/);
  assert.ok(text.includes("include 'postgresql.base.conf'\n"));
  const parsed = parseConf(text);
  assert.deepEqual(parsed.params, Object.fromEntries(p1.conf));
  assert.equal(parsed.upstreamName, 'a');

  const p2 = buildParameters({ settings, memberName: 'n', role: 'replica', upstream: { connUrl: 'postgres://h2:1/x', name: 'b' } });
  assert.deepEqual(diffParams(parsed.params, Object.fromEntries(p2.conf)), { restart: [], reload: ['primary_conninfo'] });
  const p3 = buildParameters({ settings, memberName: 'n', role: 'primary', dynamic: { max_connections: 200, work_mem: '1MB' } });
  const d = diffParams(parsed.params, Object.fromEntries(p3.conf));
  assert.deepEqual(d.restart, ['max_connections']);
  assert.deepEqual(d.reload.sort(), ['primary_conninfo', 'primary_slot_name', 'work_mem']);
});

test('SQL quoting', () => {
  assert.equal(quoteIdent('re"p'), '"re""p"');
  assert.equal(quoteLiteral("it's\\"), "'it''s\\'");
  assert.throws(() => quoteLiteral('a\0b'));
});

test('synchronous_standby_names override block: last setting wins, round-trips, removable', () => {
  const p = buildParameters({ settings, memberName: 'n', role: 'primary', dynamic: { synchronous_standby_names: 'user1' } });
  const plain = renderPostgresqlConf({ conf: p.conf, includeBase: true, upstreamName: null });
  const managed = renderPostgresqlConf({ conf: p.conf, includeBase: true, upstreamName: null, syncOverride: 'ANY 1 ("pg-b", r1)' });
  assert.equal(parseConf(plain).params.synchronous_standby_names, 'user1');
  assert.equal(parseConf(plain).syncOverride, undefined);
  const parsed = parseConf(managed);
  // PostgreSQL reads the file top to bottom: the override is the last occurrence.
  assert.equal(parsed.params.synchronous_standby_names, 'ANY 1 ("pg-b", r1)');
  assert.equal(parsed.syncOverride, 'ANY 1 ("pg-b", r1)');
  assert.equal(managed.trimEnd().split('\n').at(-1), `synchronous_standby_names = 'ANY 1 ("pg-b", r1)'`);
  // Patching a file gives exactly what rendering gives, in both directions, idempotently.
  assert.equal(withSyncOverride(plain, 'ANY 1 ("pg-b", r1)'), managed);
  assert.equal(withSyncOverride(managed, 'ANY 1 ("pg-b", r1)'), managed);
  assert.equal(withSyncOverride(managed, null), plain);
  assert.equal(withSyncOverride(plain, null), plain);
  const empty = withSyncOverride(managed, '');
  assert.equal(parseConf(empty).syncOverride, '');
  assert.equal(parseConf(empty).params.synchronous_standby_names, '');
  // Quotes in the value survive the conf quoting.
  const q = withSyncOverride(plain, `"it's"`);
  assert.equal(parseConf(q).syncOverride, `"it's"`);
  assert.equal(parseConf(q).params.synchronous_standby_names, `"it's"`);
  // A damaged marker is tolerated (the setting line still parses).
  const damaged = managed.replace(/(# vigil-synchronous-standby-names[^:]*: ).*/, '$1{not json');
  assert.equal(parseConf(damaged).syncOverride, undefined);
  assert.equal(parseConf(damaged).params.synchronous_standby_names, 'ANY 1 ("pg-b", r1)');
});

test('recovery_conf: a replica gets the local settings, else the dynamic ones; a primary gets neither', () => {
  const up = { connUrl: 'postgres://h:1/x', name: 'l' };
  const get = (b: ReturnType<typeof buildParameters>, k: string): string | undefined => b.conf.find(([n]) => n === k)?.[1];
  const local = { ...settings, parameters: { ...settings.parameters, restore_command: 'from-parameters' }, recoveryConf: { restore_command: 'local-cmd', port: 1, primary_slot_name: 'x' } };
  const dynamicRc = { restore_command: 'dyn-cmd', recovery_min_apply_delay: '5s' };
  const r = buildParameters({ settings: local, memberName: 'n', role: 'replica', upstream: up, dynamicRecoveryConf: dynamicRc });
  assert.equal(get(r, 'restore_command'), 'local-cmd');
  assert.equal(r.conf.filter(([n]) => n === 'restore_command').length, 1);
  assert.equal(get(r, 'recovery_min_apply_delay'), undefined); // the local section replaces the dynamic one whole
  assert.equal(get(r, 'primary_slot_name'), 'n');
  assert.equal(get(r, 'port'), String(parseListen(settings.listen).port));
  assert.ok(r.ignored.some((m) => m.startsWith('recovery_conf.port')) && r.ignored.some((m) => m.startsWith('recovery_conf.primary_slot_name')));
  const d = buildParameters({ settings, memberName: 'n', role: 'replica', upstream: up, dynamicRecoveryConf: dynamicRc });
  assert.deepEqual([get(d, 'restore_command'), get(d, 'recovery_min_apply_delay')], ['dyn-cmd', '5s']);
  const p = buildParameters({ settings: local, memberName: 'n', role: 'primary', dynamicRecoveryConf: dynamicRc });
  assert.deepEqual([get(p, 'restore_command'), get(p, 'recovery_min_apply_delay')], ['from-parameters', undefined]);
});
