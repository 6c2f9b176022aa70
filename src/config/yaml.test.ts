// YAML 1.1 as PyYAML (Patroni) reads it, and YAML problems as issues.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';

test('YAML 1.1 booleans: on/off/yes/no', () => {
  const text = MINIMAL_CONFIG.replace('  data_dir:', '  use_pg_rewind: on\n  remove_data_directory_on_rewind_failure: yes\n  data_dir:') +
    'tags:\n  nofailover: yes\n  noloadbalance: off\n  nosync: "true"\n';
  const { config, issues } = loadConfig(text, {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.postgresql.usePgRewind, true);
  assert.equal(config?.postgresql.removeDataDirectoryOnRewindFailure, true);
  assert.deepEqual(config?.tags, { nofailover: true, noloadbalance: false, nosync: true });
});

test('a password read as a YAML 1.1 boolean is an error with a hint', () => {
  const text = MINIMAL_CONFIG.replace('superuser: {username: postgres}', 'superuser: {username: postgres, password: on}');
  const { config, issues } = loadConfig(text, {});
  assert.equal(config, undefined);
  assert.ok(hasIssue(errors(issues), /^postgresql\.authentication\.superuser\.password: expected a string, got a boolean \(value hidden; YAML 1\.1/));
});

test('YAML problems: syntax errors, empty text, top-level list, duplicate keys', () => {
  const syntax = loadConfig('scope: [\nname: x\n', {}, { fileName: 'x.yml' });
  assert.equal(syntax.config, undefined);
  assert.equal(syntax.issues.length, 1);
  assert.match(syntax.issues[0]!.message, /^YAML syntax error: x\.yml: .* at line 2, column 1$/);
  assert.deepEqual(errors(loadConfig('', {}).issues), [': the configuration is empty']);
  assert.deepEqual(errors(loadConfig('- a\n- b\n', {}).issues), [': expected a mapping at the top level, got a list ["a","b"]']);
  const dup = loadConfig(MINIMAL_CONFIG + 'scope: other\n', {});
  assert.deepEqual(errors(dup.issues), []);
  assert.equal(dup.config?.scope, 'other');
  assert.ok(hasIssue(warnings(dup.issues), /Map keys must be unique.*the last value wins/));
});

test('YAML 1.1 as PyYAML reads it: y and n stay strings', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG.replace('name: n1', 'name: n') + 'tags:\n  zone: y\n  nofailover: no\n', {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.name, 'n');
  assert.deepEqual(config?.tags, { zone: 'y', nofailover: false });
});
