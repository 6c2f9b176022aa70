// Role overrides (parameters_<role>, pg_hba_<role>, pg_ident_<role>), krbsrvname in connection
// strings and a custom bootstrap's recovery_conf, on the pure renderers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootstrapRecoveryConf } from './bootstrap-recovery.ts';
import { buildParameters, COMMAND_LINE_GUCS, type BuildParamsInput } from './conf.ts';
import { effectiveAuthFiles } from './configfiles.ts';
import { libpqPairs, renderConninfo } from './conninfo.ts';
import { configRole, dynamicRoleOverrides, hasRoleOverrides, roleAuthLists, roleParameters } from './roles.ts';

const settings: BuildParamsInput['settings'] = {
  listen: '127.0.0.1:5432',
  parameters: { work_mem: '4MB', shared_buffers: '16MB' },
  pgpass: '/var/lib/pg/pgpass',
  database: 'postgres',
  useSlots: true,
  authentication: { superuser: { username: 'postgres' }, replication: { username: 'replicator', password: 'r' } },
};

test('configRole: primary while primary (promoting too), replica while replica (demoted too), standby_leader on request', () => {
  assert.equal(configRole('primary'), 'primary');
  assert.equal(configRole('primary', true), 'primary');
  assert.equal(configRole('replica'), 'replica');
  assert.equal(configRole('replica', true), 'standby_leader');
});

test('roleParameters: dynamic then local, key by key, for the asked role only', () => {
  const local = { primary: { parameters: { work_mem: '64MB' } }, replica: { parameters: { work_mem: '1MB' } } };
  const dynamic = { primary: { parameters: { work_mem: '32MB', maintenance_work_mem: '1GB' } }, standby_leader: { parameters: { x: 1 } } };
  assert.deepEqual(roleParameters(local, dynamic, 'primary'), { work_mem: '64MB', maintenance_work_mem: '1GB' });
  assert.deepEqual(roleParameters(local, dynamic, 'replica'), { work_mem: '1MB' });
  assert.deepEqual(roleParameters(undefined, dynamic, 'standby_leader'), { x: 1 });
  assert.deepEqual(roleParameters(undefined, null, 'primary'), {});
});

test('roleAuthLists: the local role list, else the dynamic one; empty lists do not count', () => {
  const local = { replica: { pgHba: ['host all l 0/0 md5'] }, primary: { pgHba: [] } };
  const dynamic = { replica: { pgHba: ['host all d 0/0 md5'], pgIdent: ['m d d'] }, primary: { pgHba: ['host all p 0/0 md5'] } };
  assert.deepEqual(roleAuthLists(local, dynamic, 'replica'), { pgHba: ['host all l 0/0 md5'], pgIdent: ['m d d'] });
  assert.deepEqual(roleAuthLists(local, dynamic, 'primary'), { pgHba: ['host all p 0/0 md5'] });
  assert.deepEqual(roleAuthLists(local, dynamic, 'standby_leader'), {});
});

test('effectiveAuthFiles: a role list replaces the base lists, except where hba_file / ident_file relocate the file', () => {
  const local = { pgHba: ['host all base 0/0 md5'], pgIdent: ['m b b'] };
  assert.deepEqual(effectiveAuthFiles(local, { pgHba: ['host all dyn 0/0 md5'] }, {}, { pgHba: ['host all role 0/0 md5'] }), {
    pgHba: ['host all role 0/0 md5'],
    pgIdent: ['m b b'],
  });
  assert.deepEqual(effectiveAuthFiles(local, {}, { hba_file: '/x' }, { pgHba: ['r'], pgIdent: ['i'] }), { pgIdent: ['i'] });
  // Without role lists: unchanged behaviour.
  assert.deepEqual(effectiveAuthFiles(local, {}, {}), local);
});

test('dynamicRoleOverrides / hasRoleOverrides: only well-typed entries', () => {
  const pg = { parameters_primary: { work_mem: '8MB' }, pg_hba_replica: ['a'], pg_ident_replica: 'no', parameters_replica: ['no'], parameters: { x: 1 } };
  assert.deepEqual(dynamicRoleOverrides(pg), { primary: { parameters: { work_mem: '8MB' } }, replica: { pgHba: ['a'] } });
  assert.equal(hasRoleOverrides(undefined, dynamicRoleOverrides({ parameters: { x: 1 } })), false);
  assert.equal(hasRoleOverrides({ replica: { pgHba: ['x'] } }, null), true);
});

test('buildParameters: role parameters win over local and dynamic ones; Patroni-controlled GUCs in them are ignored', () => {
  const b = buildParameters({
    settings,
    memberName: 'n1',
    role: 'primary',
    dynamic: { work_mem: '2MB', temp_buffers: '8MB', max_connections: 200 },
    roleParameters: { work_mem: '64MB', max_connections: 5, port: 1, primary_conninfo: 'host=x', wal_keep_size: '1GB', statement_timeout: '5s' },
  });
  const conf = Object.fromEntries(b.conf);
  assert.equal(conf.work_mem, '64MB');
  assert.equal(conf.temp_buffers, '8MB');
  assert.equal(conf.statement_timeout, '5s');
  assert.equal(conf.max_connections, '200');
  assert.equal(conf.port, '5432');
  assert.equal(conf.primary_conninfo, '');
  assert.equal(conf.wal_keep_size, '128MB');
  for (const n of ['max_connections', 'port', 'primary_conninfo', 'wal_keep_size']) {
    assert.ok(b.ignored.some((m) => m.startsWith(`${n}: set by Vigil`)), `${n}: ${b.ignored.join('; ')}`);
  }
});

test('buildParameters property: a role parameter that is not Patroni-controlled always ends up with its value', () => {
  const name = fc.constantFrom('work_mem', 'temp_buffers', 'statement_timeout', 'log_min_duration_statement', 'app.setting');
  fc.assert(
    fc.property(name, fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), (n, dyn, loc, role) => {
      const b = buildParameters({ settings: { ...settings, parameters: { [n]: loc } }, memberName: 'n1', role: 'replica', dynamic: { [n]: dyn }, roleParameters: { [n]: role } });
      return Object.fromEntries(b.conf)[n] === role;
    }),
  );
});

test('krbsrvname: in primary_conninfo (after the TLS keywords, as Patroni orders them) and in libpqPairs', () => {
  const b = buildParameters({ settings, memberName: 'n2', role: 'replica', upstream: { connUrl: 'postgres://10.0.0.1:5432/postgres', name: 'n1' }, krbsrvname: 'pgsvc' });
  const ci = Object.fromEntries(b.conf).primary_conninfo!;
  assert.match(ci, /sslmode=prefer krbsrvname=pgsvc gssencmode=prefer channel_binding=prefer$/);
  assert.equal(renderConninfo(libpqPairs({ username: 'u' }, {}, 'k')), 'krbsrvname=k');
  assert.equal(renderConninfo(libpqPairs({ username: 'u' })), '');
});

const recoveryOf = (b: Parameters<typeof bootstrapRecoveryConf>[0]): ReturnType<typeof bootstrapRecoveryConf> => bootstrapRecoveryConf(b, COMMAND_LINE_GUCS);

test('bootstrapRecoveryConf: settings written as given, standby_mode as a signal, pause_at_recovery_target translated, hot_standby off as Patroni decides', () => {
  const a = recoveryOf({ recoveryConf: { restore_command: 'cp /a/%f %p', recovery_target_time: '2026-01-01 00:00:00+00', recovery_target_action: 'promote' }, keepExisting: false });
  assert.deepEqual(a.params, [['restore_command', 'cp /a/%f %p'], ['recovery_target_time', '2026-01-01 00:00:00+00'], ['recovery_target_action', 'promote']]);
  assert.equal(a.standby, false);
  assert.equal(a.hotStandbyOff, true);
  const b = recoveryOf({ recoveryConf: { restore_command: 'x', pause_at_recovery_target: false, standby_mode: 'on' }, keepExisting: false });
  assert.deepEqual(b.params, [['restore_command', 'x'], ['recovery_target_action', 'promote']]);
  assert.equal(b.standby, true);
  assert.equal(b.hotStandbyOff, true);
  // PostgreSQL's default action is pause: hot_standby stays on so that the pause can happen.
  assert.equal(recoveryOf({ recoveryConf: { restore_command: 'x' }, keepExisting: false }).hotStandbyOff, false);
  // keep_existing_recovery_conf: off whatever the action (Patroni trusts the tool's own settings).
  assert.equal(recoveryOf({ keepExisting: true }).hotStandbyOff, true);
  const bad = recoveryOf({ recoveryConf: { port: 1, "x'y": 1, hot_standby: 'on' }, keepExisting: false });
  assert.deepEqual(bad.params, []);
  assert.equal(bad.ignored.length, 2);
});

test('buildParameters with a bootstrap recovery: the targets replace the blank ones, hot_standby off on the command line', () => {
  const b = buildParameters({
    settings,
    memberName: 'n1',
    role: 'primary',
    bootstrapRecovery: { recoveryConf: { restore_command: 'cp /a/%f %p', recovery_target_time: '2026-01-01', recovery_target_action: 'promote' }, keepExisting: false },
  });
  const conf = Object.fromEntries(b.conf);
  assert.equal(conf.recovery_target_time, '2026-01-01');
  assert.equal(conf.recovery_target_action, 'promote');
  assert.equal(conf.restore_command, 'cp /a/%f %p');
  assert.equal(conf.recovery_target_lsn, '');
  assert.equal(b.commandLine.hot_standby, 'off');
  assert.equal(b.standby, false);
  assert.equal(b.conf.filter(([k]) => k === 'recovery_target_time').length, 1);
  // Without it: the blanks and hot_standby on, as before.
  const plain = buildParameters({ settings, memberName: 'n1', role: 'primary' });
  assert.equal(Object.fromEntries(plain.conf).recovery_target_time, '');
  assert.equal(plain.commandLine.hot_standby, 'on');
});
