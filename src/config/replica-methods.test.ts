// create_replica_methods: parsing (src/config/replica-methods.ts) and the argument list a method
// gets (src/postgres/replica-methods.ts), as Patroni builds it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';
import { replicaMethodArgv } from '../postgres/replica-methods.ts';

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
