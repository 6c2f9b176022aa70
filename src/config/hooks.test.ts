// postgresql.callbacks, pre_promote and before_stop: split as Patroni splits them (shlex), validated.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { loadConfig } from './load.ts';
import { MINIMAL_CONFIG } from './testing.ts';
import { splitCommand } from './hooks.ts';

const withPg = (extra: string) => loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', `postgresql:\n${extra}`), {});

test('commands are split as shlex.split does (POSIX quoting and escapes)', () => {
  assert.deepEqual(splitCommand('/usr/local/bin/vip.sh  10.0.0.5/24 eth0'), ['/usr/local/bin/vip.sh', '10.0.0.5/24', 'eth0']);
  assert.deepEqual(splitCommand(`sh -c 'echo "$1" >> /tmp/x' cb`), ['sh', '-c', 'echo "$1" >> /tmp/x', 'cb']);
  assert.deepEqual(splitCommand(String.raw`a "b \"c\" \$d \x" e\ f ''`), ['a', 'b "c" \\$d \\x', 'e f', '']);
  assert.deepEqual(splitCommand('x"y"z'), ['xyz']);
  assert.deepEqual(splitCommand('   '), []);
  assert.throws(() => splitCommand("echo 'open"), /no closing quotation/);
  assert.throws(() => splitCommand('echo "open'), /no closing quotation/);
  assert.throws(() => splitCommand('echo \\'), /no escaped character/);
});

test('callbacks, pre_promote and before_stop are read into argument lists', () => {
  const { config, issues } = withPg(`  callbacks: {on_role_change: "/opt/vip.sh 'eth0 x'", on_start: /bin/true, on_stop: null}\n  pre_promote: /opt/fence.sh --check\n  before_stop: /opt/drain.sh\n`);
  assert.deepEqual(issues.filter((i) => i.severity === 'error'), []);
  assert.deepEqual(config?.postgresql.callbacks, { on_role_change: ['/opt/vip.sh', 'eth0 x'], on_start: ['/bin/true'] });
  assert.deepEqual(config?.postgresql.prePromote, ['/opt/fence.sh', '--check']);
  assert.deepEqual(config?.postgresql.beforeStop, ['/opt/drain.sh']);
  const none = withPg('');
  assert.equal(none.config?.postgresql.callbacks, undefined);
  assert.equal(none.config?.postgresql.prePromote, undefined);
});

test('an unknown callback, a command that is not a string or cannot be split are errors naming the key', () => {
  const { config, issues } = withPg(`  callbacks: {on_role_chnage: /bin/true, on_start: [a, b], on_stop: "x 'y"}\n  pre_promote: 3\n  before_stop: '  '\n`);
  assert.equal(config, undefined);
  const errs = issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
  assert.ok(errs.some((e) => /^postgresql\.callbacks\.on_role_chnage: unknown callback "on_role_chnage": the callbacks are on_start, on_stop, on_restart, on_reload, on_role_change$/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /^postgresql\.callbacks\.on_start: expected a command \(a string\)/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /^postgresql\.callbacks\.on_stop: cannot split the command into arguments: no closing quotation$/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /^postgresql\.pre_promote: expected a command/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /^postgresql\.before_stop: empty command$/.test(e)), errs.join('\n'));
  const notMap = withPg('  callbacks: /bin/true\n');
  assert.ok(notMap.issues.some((i) => i.path === 'postgresql.callbacks' && /expected a mapping of on_start/.test(i.message)));
});
