// The loader's side of parameters_<role>, pg_hba_<role>, pg_ident_<role>, krbsrvname and the
// legacy create_replica_method.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig, validateDynamicConfig } from './dynamic.ts';
import { loadConfig } from './load.ts';
import { removeDataDirectoryFlags } from '../agent/observe.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';

const withPg = (extra: string): string => MINIMAL_CONFIG.replace('postgresql:\n  listen', `postgresql:\n${extra}  listen`);

test('local role keys: parsed per role; the Patroni-controlled GUCs in a role\'s parameters are warned and dropped', () => {
  const r = loadConfig(
    withPg(
      '  parameters_primary: {work_mem: 64MB, max_connections: 10, port: 1}\n' +
        '  parameters_replica: {work_mem: 1MB}\n' +
        "  pg_hba_replica: ['host all all 10.0.0.0/8 scram-sha-256']\n" +
        "  pg_ident_standby_leader: ['m a b']\n" +
        '  pg_hba_primary: []\n' +
        '  krbsrvname: pgsvc\n',
    ),
    {},
  );
  assert.deepEqual(errors(r.issues), []);
  assert.deepEqual(r.config?.postgresql.roleOverrides, {
    primary: { parameters: { work_mem: '64MB' } },
    replica: { parameters: { work_mem: '1MB' }, pgHba: ['host all all 10.0.0.0/8 scram-sha-256'] },
    standby_leader: { pgIdent: ['m a b'] },
  });
  assert.equal(r.config?.postgresql.krbsrvname, 'pgsvc');
  const w = warnings(r.issues);
  assert.ok(hasIssue(w, /^postgresql\.parameters_primary\.max_connections: ignored: a role's parameters cannot set it/), w.join('\n'));
  assert.ok(hasIssue(w, /^postgresql\.parameters_primary\.port: ignored: set from postgresql\.listen/), w.join('\n'));
});

test('local role keys of the wrong type are errors', () => {
  const r = loadConfig(withPg("  parameters_replica: [a]\n  pg_hba_primary: 'host all all 0/0 trust'\n"), {});
  assert.equal(r.config, undefined);
  const e = errors(r.issues);
  assert.ok(hasIssue(e, /^postgresql\.parameters_replica: expected a mapping/), e.join('\n'));
  assert.ok(hasIssue(e, /^postgresql\.pg_hba_primary: expected a list of strings/), e.join('\n'));
});

test('create_replica_method (legacy) is read when create_replica_methods is absent or empty, ignored otherwise (Patroni)', () => {
  const legacy = loadConfig(withPg('  create_replica_method: [wal_e, basebackup]\n  wal_e: {command: /bin/restore}\n'), {});
  assert.deepEqual(errors(legacy.issues), []);
  assert.deepEqual(legacy.config?.postgresql.createReplicaMethods?.map((m) => m.name), ['wal_e', 'basebackup']);
  const empty = loadConfig(withPg('  create_replica_methods: []\n  create_replica_method: [basebackup]\n'), {});
  assert.deepEqual(empty.config?.postgresql.createReplicaMethods?.map((m) => m.name), ['basebackup']);
  const both = loadConfig(withPg('  create_replica_methods: [basebackup]\n  create_replica_method: [x]\n'), {});
  assert.deepEqual(errors(both.issues), []);
  assert.deepEqual(both.config?.postgresql.createReplicaMethods?.map((m) => m.name), ['basebackup']);
});

test('dynamic role keys: accepted when well typed, errors otherwise; effectiveDynamicConfig drops the bad ones', () => {
  assert.deepEqual(validateDynamicConfig({ postgresql: { parameters_primary: { work_mem: '8MB' }, pg_hba_replica: ['a'], pg_ident_primary: ['m a b'] } }), []);
  assert.deepEqual(validateDynamicConfig({ postgresql: { parameters_replica: 'x', pg_ident_replica: [1], parameters_primary: { max_connections: 0 } } }), [
    'postgresql.parameters_primary.max_connections: must be an integer between 1 and 262143, got 0',
    'postgresql.parameters_replica: expected a mapping of parameter to value, got "x"',
    'postgresql.pg_ident_replica: expected a list of strings, got [1]',
  ]);
  const { config, warnings: w } = effectiveDynamicConfig({ postgresql: { parameters_replica: 'x', pg_hba_primary: 'y', pg_hba_replica: ['ok'] } });
  assert.equal(config.postgresql.parameters_replica, undefined);
  assert.equal(config.postgresql.pg_hba_primary, undefined);
  assert.deepEqual(config.postgresql.pg_hba_replica, ['ok']);
  assert.equal(w.length, 2);
});

test('remove_data_directory_on_*: the local keys win when set, else the dynamic configuration applies (it was read but not used)', () => {
  const unset = { removeDataDirectoryOnRewindFailure: false, removeDataDirectoryOnDivergedTimelines: false };
  assert.deepEqual(removeDataDirectoryFlags(unset, { remove_data_directory_on_rewind_failure: true, remove_data_directory_on_diverged_timelines: 'on' }), {
    remove_data_directory_on_rewind_failure: true,
    remove_data_directory_on_diverged_timelines: true,
  });
  const localOff = { ...unset, removeDataDirectoryLocal: { onRewindFailure: false } };
  assert.equal(removeDataDirectoryFlags(localOff, { remove_data_directory_on_rewind_failure: true }).remove_data_directory_on_rewind_failure, false);
  const r = loadConfig(withPg('  remove_data_directory_on_diverged_timelines: true\n'), {});
  assert.deepEqual(removeDataDirectoryFlags(r.config!.postgresql, { remove_data_directory_on_diverged_timelines: false }), {
    remove_data_directory_on_rewind_failure: false,
    remove_data_directory_on_diverged_timelines: true,
  });
});

test('dynamic postgresql keys Vigil reads only locally: refused where a dynamic configuration enters, warned when already in /config', () => {
  assert.deepEqual(validateDynamicConfig({ postgresql: { basebackup: ['checkpoint=fast'], callbacks: { on_start: '/x' } } }), [
    'postgresql.callbacks: callbacks in the dynamic configuration is not implemented by Vigil yet: Vigil reads it from the local postgresql section only; set it there',
    'postgresql.basebackup: basebackup in the dynamic configuration is not implemented by Vigil yet: Vigil reads it from the local postgresql section only; set it there',
  ]);
  const { warnings: w } = effectiveDynamicConfig({ postgresql: { create_replica_methods: ['x'] } });
  assert.ok(hasIssue(w, /^postgresql\.create_replica_methods: ignored: create_replica_methods in the dynamic configuration is not implemented/), w.join('\n'));
  const r = loadConfig(MINIMAL_CONFIG + 'bootstrap:\n  dcs:\n    postgresql:\n      pg_ctl_timeout: 30\n', {});
  assert.equal(r.config, undefined);
  assert.ok(hasIssue(errors(r.issues), /^bootstrap\.dcs\.postgresql\.pg_ctl_timeout: pg_ctl_timeout in the dynamic configuration is not implemented/), errors(r.issues).join('\n'));
});
