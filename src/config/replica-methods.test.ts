// create_replica_methods: parsing (src/config/replica-methods.ts) and the argument list a method
// gets (src/postgres/replica-methods.ts), as Patroni builds it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';
import { replicaMethodArgv } from '../postgres/replica-methods.ts';
import { resolveReplicaMethods } from './replica-methods.ts';

function withMethods(lines: string): string {
  return MINIMAL_CONFIG.replace('postgresql:\n', `postgresql:\n${lines}`);
}

test('methods in order; basebackup is built in; a section gives command, flags and extra keys', () => {
  const r = loadConfig(withMethods("  create_replica_methods: [wal_e, pgbackrest, basebackup]\n  pgbackrest: {command: '/usr/bin/pgbackrest --stanza=x restore', keep_data: true, no_params: true, no_leader: true}\n  wal_e: {envdir: /etc/wal-e, threads: 4, no_leader: yes}\n"), {});
  const m = r.config?.postgresql.createReplicaMethods;
  assert.ok(m !== undefined, errors(r.issues).join('\n'));
  assert.deepEqual(m.map((x) => x.name), ['wal_e', 'pgbackrest', 'basebackup']);
  assert.deepEqual(m[1], { name: 'pgbackrest', command: ['/usr/bin/pgbackrest', '--stanza=x', 'restore'], keepData: true, noParams: true, noLeader: true, options: [] });
  assert.deepEqual(m[0]?.command, ['wal_e']);
  assert.equal(m[2]?.command, undefined);
  assert.ok(!hasIssue(warnings(r.issues), /no_leader/), 'no_leader is implemented: no warning');
  const argv = replicaMethodArgv({ ...m[0]!, command: m[0]!.command! }, { scope: 'demo', dataDir: '/d', connstring: 'host=h port=5' });
  assert.deepEqual(argv, ['wal_e', '--envdir=/etc/wal-e', '--threads=4', '--no_leader=True', '--scope=demo', '--role=replica', '--datadir=/d', '--connstring=host=h port=5']);
  assert.deepEqual(replicaMethodArgv({ ...m[1]!, command: m[1]!.command! }, { scope: 'demo', dataDir: '/d', connstring: '' }), ['/usr/bin/pgbackrest', '--stanza=x', 'restore']);
});

test('a same-named key is replaced in place by the argument Vigil passes', () => {
  assert.deepEqual(
    replicaMethodArgv({ name: 'x', command: ['x'], keepData: false, noParams: false, noLeader: false, options: [['datadir', '/old'], ['a', '1']] }, { scope: 's', dataDir: '/d', connstring: 'c' }),
    ['x', '--datadir=/d', '--a=1', '--scope=s', '--role=replica', '--connstring=c'],
  );
});

test('unusable method lists or sections are refused by name', () => {
  for (const [lines, re] of [
    ['  create_replica_methods: basebackup\n', /^postgresql\.create_replica_methods: expected a list of method names/],
    ['  create_replica_methods: [x]\n  x: 3\n', /^postgresql\.x: expected the settings of replica method x/],
    ["  create_replica_methods: [x]\n  x: {command: \"'open\"}\n", /^postgresql\.x\.command: cannot split/],
  ] as const) {
    const r = loadConfig(withMethods(lines), {});
    assert.equal(r.config, undefined, lines);
    assert.ok(hasIssue(errors(r.issues), re), `${lines}: ${errors(r.issues).join('\n')}`);
  }
});

test('standby_cluster.create_replica_methods resolve as in Patroni: a local section is enough, a name without one is its own command, [] is basebackup', () => {
  const r = loadConfig(withMethods("  archcopy: {command: 'cp -a /backup/. /d', no_params: true, no_leader: true}\n  wal_g: {envdir: /etc/wal-g}\n"), {});
  assert.ok(r.config !== undefined, errors(r.issues).join('\n'));
  assert.equal(r.config.postgresql.createReplicaMethods, undefined, 'the member lists no method of its own');
  const sections = r.config.postgresql.replicaMethodSections ?? {};
  const got = resolveReplicaMethods(['archcopy', 'wal_g', 'restore_it', 'basebackup'], sections);
  assert.deepEqual(got.problems, []);
  assert.deepEqual(got.methods, [
    { name: 'archcopy', command: ['cp', '-a', '/backup/.', '/d'], keepData: false, noParams: true, noLeader: true, options: [] },
    { name: 'wal_g', command: ['wal_g'], keepData: false, noParams: false, noLeader: false, options: [['envdir', '/etc/wal-g']] },
    { name: 'restore_it', command: ['restore_it'], keepData: false, noParams: false, noLeader: false, options: [] },
    { name: 'basebackup', keepData: false, noParams: false, noLeader: false, options: [] },
  ]);
  assert.deepEqual(resolveReplicaMethods([], sections).methods.map((m) => m.name), ['basebackup']);
  // Vigil's own keys are not sections: a method named like one is its own command.
  assert.deepEqual(resolveReplicaMethods(['listen'], sections).methods[0]?.command, ['listen']);
});

test('an unusable section of a standby method is skipped and described', () => {
  const got = resolveReplicaMethods(['x', 'y', 'basebackup'], { x: 3, y: { command: "'open" } });
  assert.deepEqual(got.methods.map((m) => m.name), ['basebackup']);
  assert.equal(got.problems.length, 2);
  assert.match(got.problems[0]!, /^postgresql\.x: expected the settings of replica method x/);
  assert.match(got.problems[1]!, /^postgresql\.y\.command: cannot split/);
});

test('an unlisted section: checked when bootstrap.dcs.standby_cluster names it, else warned about as read only for a standby cluster', () => {
  const plain = loadConfig(withMethods('  archcopy: {command: /bin/true}\n'), {});
  assert.ok(hasIssue(warnings(plain.issues), /^postgresql\.archcopy: unknown key \(read only as the settings of a replica method that standby_cluster\.create_replica_methods names\)/), warnings(plain.issues).join('\n'));
  const named = (sec: string): string => withMethods(`  archcopy: ${sec}\n`) + 'bootstrap:\n  dcs:\n    standby_cluster: {restore_command: /bin/false, create_replica_methods: [archcopy]}\n';
  const ok = loadConfig(named('{command: /bin/true, no_leader: true}'), {});
  assert.ok(ok.config !== undefined, errors(ok.issues).join('\n'));
  assert.ok(!hasIssue(warnings(ok.issues), /archcopy/), warnings(ok.issues).join('\n'));
  const bad = loadConfig(named("{command: \"'open\"}"), {});
  assert.equal(bad.config, undefined);
  assert.ok(hasIssue(errors(bad.issues), /^postgresql\.archcopy\.command: cannot split/), errors(bad.issues).join('\n'));
});
