// The agent's Logging with real files: levels per logger, reconfiguration (reload) of the format,
// the levels and the destination, and the back-off of repeated errors counted under an injected
// clock (issue 14: a failure retried every 100 ms must not log eight lines a second).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LOG, type LogSettings } from '../config/log.ts';
import { Logging } from './logger.ts';
import { RepeatFilter } from './repeat.ts';
import { LOG_FILE_NAME } from './sink.ts';

const settings = (over: Partial<LogSettings> = {}): LogSettings => ({ ...DEFAULT_LOG, staticFields: {}, loggers: {}, format: '%(levelname)s %(name)s: %(message)s', ...over });

async function withFile(fn: (dir: string, fd: number, read: () => string[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-logger-'));
  const file = join(dir, 'stderr.log');
  const fd = openSync(file, 'a');
  try {
    await fn(dir, fd, () => readFileSync(file, 'utf8').split('\n').filter((l) => l !== ''));
  } finally {
    closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
}

test('log.level and loggers: the most specific configured logger decides', () =>
  withFile(async (_dir, fd, read) => {
    const logging = new Logging(settings({ level: 'warn', loggers: { 'vigil.postgres': 'debug', 'vigil.dcs': 'error' } }), { fd });
    const ha = logging.logger('ha');
    const pg = logging.logger('postgres');
    const dcs = logging.logger('dcs');
    ha.info({}, 'ha info');
    ha.warn({}, 'ha warn');
    pg.debug({}, 'pg debug');
    dcs.warn({}, 'dcs warn');
    dcs.error({}, 'dcs error');
    logging.logger().fatal({}, 'root critical');
    await logging.flush();
    assert.deepEqual(read(), ['WARNING vigil.ha: ha warn', 'DEBUG vigil.postgres: pg debug', 'ERROR vigil.dcs: dcs error', 'CRITICAL vigil: root critical']);
  }));

test('reconfigure: a reload switches format, levels and destination for the loggers already handed out', () =>
  withFile(async (dir, fd, read) => {
    const logging = new Logging(settings(), { fd });
    const ha = logging.logger('ha');
    ha.info({ n: 1 }, 'before');
    ha.debug({}, 'hidden');
    const what = logging.reconfigure(settings({ type: 'json', format: '%(levelname)s %(message)s', staticFields: { app: 'db' }, level: 'debug', dir, fileSize: 1000, fileNum: 2 }));
    assert.equal(what, `format, levels, destination: ${dir}/patroni.log (rotated at 1000 bytes, 2 kept)`);
    ha.debug({ n: 2 }, 'after');
    await logging.flush();
    assert.equal(logging.reconfigure(settings({ type: 'json', format: '%(levelname)s %(message)s', staticFields: { app: 'db' }, level: 'debug', dir, fileSize: 1000, fileNum: 2 })), '');
    await logging.close();
    assert.deepEqual(read(), ['INFO vigil.ha: before n=1']);
    const json = readFileSync(join(dir, LOG_FILE_NAME), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(json, [{ levelname: 'DEBUG', message: 'after', app: 'db', n: 2 }]);
  }));

test('repeated errors: 176 identical failures in 22 s (every 125 ms) log 5 lines, with counts', () =>
  withFile(async (_dir, fd, read) => {
    let now = 0;
    const logging = new Logging(settings(), { fd, monotonic: () => now });
    const ha = logging.logger('ha');
    for (; now < 22_000; now += 125) ha.warn({ action: 'refresh_lock' }, 'action failed: etcd refused the lease');
    await logging.flush();
    const lines = read();
    // Logged at 0 s, then after 1, 2, 4 and 8 s more (3, 7, 15 s): the interval doubles.
    assert.deepEqual(lines, [
      'WARNING vigil.ha: action failed: etcd refused the lease action=refresh_lock',
      'WARNING vigil.ha: action failed: etcd refused the lease (repeated 7 more times since last logged) action=refresh_lock',
      'WARNING vigil.ha: action failed: etcd refused the lease (repeated 15 more times since last logged) action=refresh_lock',
      'WARNING vigil.ha: action failed: etcd refused the lease (repeated 31 more times since last logged) action=refresh_lock',
      'WARNING vigil.ha: action failed: etcd refused the lease (repeated 63 more times since last logged) action=refresh_lock',
    ]);
    // Different messages are independent; info lines are never held back.
    ha.error({}, 'another error');
    for (let i = 0; i < 3; i++) ha.info({}, 'same info');
    // Quiet for over a minute: the occurrences never logged get one summary line, and the next
    // failure is logged at once, as a new run.
    now += 61_000;
    ha.warn({}, 'something else');
    now += 10;
    ha.warn({ action: 'refresh_lock' }, 'action failed: etcd refused the lease');
    await logging.flush();
    assert.deepEqual(read().slice(5), [
      'ERROR vigil.ha: another error',
      'INFO vigil.ha: same info',
      'INFO vigil.ha: same info',
      'INFO vigil.ha: same info',
      'WARNING vigil.ha: action failed: etcd refused the lease (repeated 55 more times since last logged; last 61 s ago)',
      'WARNING vigil.ha: something else',
      'WARNING vigil.ha: action failed: etcd refused the lease action=refresh_lock',
    ]);
  }));

test('RepeatFilter: the interval doubles up to maxMs; forget() ends a run; keys are bounded', () => {
  const f = new RepeatFilter({ firstMs: 100, maxMs: 400, quietMs: 1000, maxKeys: 2 });
  const logged: number[] = [];
  for (let t = 0; t <= 2000; t += 50) if (f.hit('k', t) !== undefined) logged.push(t);
  assert.deepEqual(logged, [0, 100, 300, 700, 1100, 1500, 1900]);
  assert.equal(f.hit('k', 2010), undefined);
  assert.equal(f.forget('k'), 3, 'seen at 1950, 2000 and 2010, not logged');
  assert.equal(f.hit('k', 2020), 0, 'a forgotten key is new again');
  f.hit('a', 2030);
  f.hit('b', 2040);
  assert.equal(f.size, 2, 'the oldest key made room');
});

test('a crash loop: the same error with a new pid each time is one repeat; the summary shows the latest words', () =>
  withFile(async (_dir, fd, read) => {
    let now = 0;
    const logging = new Logging(settings(), { fd, monotonic: () => now });
    const pg = logging.logger('postgres');
    for (let pid = 100; pid < 120; pid++, now += 300) pg.error({}, `start failed: postgres ${pid} exited during start-up`);
    now += 61_000;
    pg.info({}, 'later');
    await logging.flush();
    assert.deepEqual(read(), [
      'ERROR vigil.postgres: start failed: postgres 100 exited during start-up',
      'ERROR vigil.postgres: start failed: postgres 104 exited during start-up (repeated 3 more times since last logged)',
      'ERROR vigil.postgres: start failed: postgres 111 exited during start-up (repeated 6 more times since last logged)',
      'ERROR vigil.postgres: start failed: postgres 119 exited during start-up (repeated 8 more times since last logged; last 61 s ago)',
      'INFO vigil.postgres: later',
    ]);
  }));
