// bootstrap.post_bootstrap / post_init: parsed into arguments (shlex rules), post_bootstrap first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';

function withBootstrap(lines: string): string {
  return `${MINIMAL_CONFIG}bootstrap:\n  dcs: {ttl: 30}\n${lines}`;
}

test('post_init and post_bootstrap are split into arguments; post_bootstrap wins when both are set', () => {
  const a = loadConfig(withBootstrap("  post_init: /usr/local/bin/setup_cluster.sh 'two words'\n"), {});
  assert.deepEqual(a.config?.bootstrap?.postBootstrap, ['/usr/local/bin/setup_cluster.sh', 'two words'], errors(a.issues).join('\n'));
  const b = loadConfig(withBootstrap('  post_init: /bin/false\n  post_bootstrap: /bin/true x\n'), {});
  assert.deepEqual(b.config?.bootstrap?.postBootstrap, ['/bin/true', 'x'], errors(b.issues).join('\n'));
  const none = loadConfig(withBootstrap(''), {});
  assert.equal(none.config?.bootstrap?.postBootstrap, undefined, errors(none.issues).join('\n'));
});

test('an unusable post_bootstrap is refused by name', () => {
  for (const [value, re] of [
    ['[a, b]', /^bootstrap\.post_bootstrap: expected a command \(a string\)/],
    ['"\'unterminated"', /^bootstrap\.post_bootstrap: cannot split the command into arguments/],
    ['"   "', /^bootstrap\.post_bootstrap: empty command/],
  ] as const) {
    const r = loadConfig(withBootstrap(`  post_bootstrap: ${value}\n`), {});
    assert.equal(r.config, undefined, value);
    assert.ok(hasIssue(errors(r.issues), re), `${value}: ${errors(r.issues).join('\n')}`);
  }
});

test('bootstrap.method with a command: a custom bootstrap; without one initdb (warned); recovery_conf taken', () => {
  const a = loadConfig(withBootstrap("  method: pitr\n  pitr: {command: '/usr/bin/restore --x 1', keep_existing_recovery_conf: true, no_params: true}\n"), {});
  assert.deepEqual(a.config?.bootstrap?.custom, { name: 'pitr', command: ['/usr/bin/restore', '--x', '1'], noParams: true, keepExistingRecoveryConf: true }, errors(a.issues).join('\n'));
  const b = loadConfig(withBootstrap('  method: pitr\n'), {});
  assert.equal(b.config?.bootstrap?.custom, undefined);
  assert.ok(hasIssue(warnings(b.issues), /^bootstrap\.method: "?pitr"? has no bootstrap\.pitr\.command: initdb/), warnings(b.issues).join('\n'));
  const c = loadConfig(withBootstrap("  method: pitr\n  pitr: {command: x, recovery_conf: {restore_command: 'cp %f %p', recovery_target_time: '2026-01-01 00:00:00+00', pause_at_recovery_target: false}}\n"), {});
  assert.deepEqual(c.config?.bootstrap?.custom?.recoveryConf, { restore_command: 'cp %f %p', recovery_target_time: '2026-01-01 00:00:00+00', pause_at_recovery_target: false }, errors(c.issues).join('\n'));
  const d = loadConfig(withBootstrap('  method: pitr\n  pitr: {command: x, recovery_conf: [a]}\n'), {});
  assert.equal(d.config, undefined);
  assert.ok(hasIssue(errors(d.issues), /^bootstrap\.pitr\.recovery_conf: expected a mapping/), errors(d.issues).join('\n'));
});
