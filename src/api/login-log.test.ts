import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LoginFailureLog } from './login-log.ts';
import type { LoginFailure } from './login-log.ts';

function logged(): { lines: { obj: Record<string, unknown>; msg: string }[]; log: { warn(obj: object, msg?: string): void } } {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  return { lines, log: { warn: (obj, msg) => void lines.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }) } };
}

const fail = (client: string, path = '/reload'): LoginFailure => ({ client, method: 'POST', path, reason: 'wrong username or password' });

test('one line per client address per window, with the count of those not logged on the next line', () => {
  let now = 0;
  const { lines, log } = logged();
  const l = new LoginFailureLog(log, () => now, 10_000);
  l.failed(fail('10.0.0.1'));
  for (let i = 0; i < 5; i++) {
    now += 1000;
    l.failed(fail('10.0.0.1'));
  }
  l.failed(fail('10.0.0.2', '/config'));
  assert.equal(lines.length, 2);
  assert.deepEqual(lines[0]!.obj, { client: '10.0.0.1', method: 'POST', path: '/reload', reason: 'wrong username or password', suppressed: 0 });
  assert.equal(lines[0]!.msg, 'REST API: failed login from 10.0.0.1: wrong username or password');
  assert.equal(lines[1]!.obj['client'], '10.0.0.2');
  now = 10_000;
  l.failed(fail('10.0.0.1'));
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.obj['suppressed'], 5);
  assert.match(lines[2]!.msg, /\(5 more from this address not logged\)$/);
  now = 10_001;
  l.failed(fail('10.0.0.1'));
  assert.equal(lines.length, 3, 'a new window started at the last line');
});

test('a long path is cut; many addresses share one entry once the table is full', () => {
  const now = 0;
  const { lines, log } = logged();
  const l = new LoginFailureLog(log, () => now, 10_000);
  l.failed(fail('10.0.0.1', '/' + 'x'.repeat(5000)));
  assert.ok((lines[0]!.obj['path'] as string).length <= 204);
  for (let i = 2; i < 3000; i++) l.failed(fail(`10.0.${i >> 8}.${i & 255}`));
  // 1000 addresses, then one line for the first of the others, then nothing in this window.
  assert.equal(lines.length, 1001);
  assert.equal(lines[1000]!.obj['client'], `10.0.${1001 >> 8}.${1001 & 255} (other clients)`);
});
