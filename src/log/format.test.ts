// Rendering of records: Patroni's plain default, Python %-format fields, strftime date formats, and
// JSON with renamed fields, static fields and the record's own fields.

import { test } from 'node:test';
import assert from 'node:assert/strict';

process.env.TZ = 'UTC';

const { asctime, DEFAULT_FORMAT, formatJson, formatPlain, formatter, jsonFields, strftime } = await import('./format.ts');
type LogRecord = import('./format.ts').LogRecord;

// 2026-12-06 19:40:05.042 UTC, a Sunday.
const T = Date.UTC(2026, 11, 6, 19, 40, 5, 42);
const rec = (over: Partial<LogRecord> = {}): LogRecord => ({ time: T, level: 'info', logger: 'vigil.ha', msg: 'no action. I am (n1), the leader with the lock', fields: {}, ...over });

test("Patroni's default plain line", () => {
  assert.equal(formatPlain(rec(), DEFAULT_FORMAT), '2026-12-06 19:40:05,042 INFO: no action. I am (n1), the leader with the lock');
  assert.equal(formatPlain(rec({ level: 'warn', msg: 'No standbys available!' }), DEFAULT_FORMAT), '2026-12-06 19:40:05,042 WARNING: No standbys available!');
  assert.equal(formatPlain(rec({ level: 'fatal', msg: 'x' }), DEFAULT_FORMAT), '2026-12-06 19:40:05,042 CRITICAL: x');
});

test('format fields, widths, precision and %%', () => {
  const line = formatPlain(rec({ level: 'error' }), '[%(levelname)-8s] %(name)s pid=%(process)d %(levelno)03d %(msecs)d 100%% %(message).9s|%(threadName)s');
  assert.equal(line, `[ERROR   ] vigil.ha pid=${process.pid} 040 42 100% no action|MainThread`);
  assert.equal(formatPlain(rec(), '%(created)f'), `${(T / 1000).toFixed(6)}`);
  assert.equal(formatPlain(rec(), '%(funcName)s|%(message)s'), '|no action. I am (n1), the leader with the lock', 'unknown fields print empty');
  assert.equal(formatPlain(rec({ msg: 'a %(name)s b %% c' }), '%(message)s'), 'a %(name)s b %% c', 'the message itself is not a format');
});

test('the structured fields follow the message in a plain line', () => {
  const r = rec({ level: 'warn', msg: 'etcd request failed', fields: { host: '10.0.0.1:2379', err: 'connect ECONNREFUSED', n: 3, gone: undefined, list: ['a'], none: [], nothing: {} } });
  assert.equal(formatPlain(r, '%(levelname)s: %(message)s'), 'WARNING: etcd request failed host=10.0.0.1:2379 err="connect ECONNREFUSED" n=3 list=["a"]');
});

test('dateformat: strftime directives, no milliseconds (as Python formatTime)', () => {
  assert.equal(asctime(T), '2026-12-06 19:40:05,042');
  assert.equal(asctime(T, '%Y-%m-%dT%H:%M:%S%z'), '2026-12-06T19:40:05+0000');
  assert.equal(strftime('%a %A %b %B %d %e %j %y %I %p %f %% %Q', T), 'Sun Sunday Dec December 06  6 340 26 07 PM 042000 % %Q');
  assert.equal(formatPlain(rec(), '%(asctime)s %(message)s', '%H:%M'), '19:40 no action. I am (n1), the leader with the lock');
});

test('JSON: the format string names the keys; static fields; the record fields after them', () => {
  const r = rec({ level: 'warn', msg: 'action failed: x', fields: { action: 'refresh_lock', message: 'clash', app: 'clash2' } });
  const line = formatter({ type: 'json', format: DEFAULT_FORMAT, staticFields: { app: 'vigil', dc: 'eu1' } })(r);
  assert.deepEqual(Object.entries(JSON.parse(line) as object), [
    ['asctime', '2026-12-06 19:40:05,042'],
    ['levelname', 'WARNING'],
    ['message', 'action failed: x'],
    ['app', 'vigil'],
    ['dc', 'eu1'],
    ['action', 'refresh_lock'],
    ['extra_message', 'clash'],
    ['extra_app', 'clash2'],
  ]);
});

test('JSON: the list form renames fields; values that JSON cannot hold are written safely', () => {
  const fields = jsonFields({ type: 'json', format: '', fields: [{ field: 'created', key: 'ts' }, { field: 'levelname', key: 'level' }, { field: 'message', key: 'msg' }, { field: 'lineno', key: 'lineno' }] });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const line = formatJson(rec({ fields: { err: new Error('boom'), big: 10n, cyclic } }), fields);
  assert.deepEqual(JSON.parse(line), { ts: T / 1000, level: 'INFO', msg: 'no action. I am (n1), the leader with the lock', lineno: null, err: 'boom', big: '10', cyclic: { a: 1, self: '[cycle]' } });
});
