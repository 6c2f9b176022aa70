// The log section: Patroni's defaults, every key read as Patroni reads it, the environment forms,
// and the problems each key can have.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './load.ts';
import { DEFAULT_LOG, vigilLogger } from './log.ts';
import { errors, hasIssue, MINIMAL_CONFIG, warnings } from './testing.ts';

test('no log section: plain lines at INFO to standard error, Patroni defaults for the rest', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG, {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(config?.log, { ...DEFAULT_LOG, staticFields: {}, loggers: {} });
  assert.equal(config?.log?.type, 'plain');
  assert.equal(config?.log?.format, '%(asctime)s %(levelname)s: %(message)s');
  assert.equal(config?.log?.dir, undefined);
  assert.equal(config?.log?.fileNum, 4);
  assert.equal(config?.log?.fileSize, 25_000_000);
});

test('every key of the section is read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-logcfg-'));
  try {
    const text = MINIMAL_CONFIG + `
log:
  type: json
  level: WARNING
  format: [asctime, {levelname: level}, message]
  dateformat: '%Y-%m-%dT%H:%M:%S'
  static_fields: {app: vigil, dc: eu1}
  loggers: {patroni.postgresql: DEBUG, vigil.dcs: ERROR, urllib3: DEBUG}
  dir: ${dir}
  mode: 0640
  file_num: 7
  file_size: 1000
  max_queue_size: 50
`;
    const { config, issues } = loadConfig(text, {});
    assert.deepEqual(errors(issues), []);
    assert.ok(hasIssue(warnings(issues), /^log\.loggers: urllib3: no such logger in Vigil/));
    assert.deepEqual(config?.log, {
      type: 'json',
      level: 'warn',
      format: '%(asctime)s %(levelname)s %(message)s',
      fields: [{ field: 'asctime', key: 'asctime' }, { field: 'levelname', key: 'level' }, { field: 'message', key: 'message' }],
      dateformat: '%Y-%m-%dT%H:%M:%S',
      staticFields: { app: 'vigil', dc: 'eu1' },
      loggers: { 'vigil.postgres': 'debug', 'vigil.dcs': 'error' },
      dir,
      mode: 0o640,
      fileNum: 7,
      fileSize: 1000,
      maxQueueSize: 50,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the environment: PATRONI_LOG_* with YAML mappings and a field list', () => {
  const { config, issues } = loadConfig(MINIMAL_CONFIG, {
    PATRONI_LOG_TYPE: 'json',
    PATRONI_LOG_FORMAT: '[message, {levelname: severity}]',
    PATRONI_LOG_STATIC_FIELDS: '{service: db}',
    PATRONI_LOG_LOGGERS: 'patroni.ha: DEBUG',
    PATRONI_LOG_FILE_NUM: '2',
    PATRONI_LOG_MODE: '0600',
    PATRONI_LOGLEVEL: 'ERROR',
  } as NodeJS.ProcessEnv);
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.log?.type, 'json');
  assert.equal(config?.log?.level, 'error');
  assert.deepEqual(config?.log?.fields, [{ field: 'message', key: 'message' }, { field: 'levelname', key: 'severity' }]);
  assert.deepEqual(config?.log?.staticFields, { service: 'db' });
  assert.deepEqual(config?.log?.loggers, { 'vigil.ha': 'debug' });
  assert.equal(config?.log?.fileNum, 2);
  assert.equal(config?.log?.mode, 0o600);
  const plain = loadConfig(MINIMAL_CONFIG, { PATRONI_LOG_FORMAT: '%(levelname)s %(message)s' } as NodeJS.ProcessEnv);
  assert.equal(plain.config?.log?.format, '%(levelname)s %(message)s');
});

test('bad values are errors naming the key; keys that cannot apply warn', () => {
  const text = MINIMAL_CONFIG + `
log:
  type: xml
  level: LOUD
  format: [message]
  dir: /nonexistent/logs
  mode: rw
  file_num: -1
  loggers: {vigil.ha: NOISY}
  traceback_level: DEBUG
  deduplicate_heartbeat_logs: true
`;
  const { config, issues } = loadConfig(text, {});
  assert.equal(config, undefined);
  const errs = errors(issues);
  for (const re of [
    /^log\.type: expected plain or json, got "xml"/,
    /^log\.level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL/,
    /^log\.format: expected a string \(a list of fields needs type: json\)/,
    /^log\.dir: \/nonexistent\/logs: ENOENT/,
    /^log\.mode: expected file permission bits/,
    /^log\.file_num: must be between 0 and 1000/,
    /^log\.loggers\.vigil\.ha: expected one of DEBUG/,
  ]) {
    assert.ok(hasIssue(errs, re), `no error matching ${re} in\n${errs.join('\n')}`);
  }
  const warns = warnings(issues);
  assert.ok(hasIssue(warns, /^log\.traceback_level: does not apply to Vigil/));
  assert.ok(hasIssue(warns, /^log\.deduplicate_heartbeat_logs: does not apply to Vigil/));
});

test('format fields Vigil does not have, static_fields with plain lines, and file keys without dir warn', () => {
  const text = MINIMAL_CONFIG + `
log:
  format: '%(asctime)s %(funcName)s:%(lineno)d %(message)s'
  static_fields: {a: 1}
  file_size: 10
`;
  const { config, issues } = loadConfig(text, {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.log?.format, '%(asctime)s %(funcName)s:%(lineno)d %(message)s');
  const warns = warnings(issues);
  assert.ok(hasIssue(warns, /^log\.format: Vigil has no %\(funcName\)s, %\(lineno\)s/));
  assert.ok(hasIssue(warns, /^log\.static_fields: used by type: json only/));
  assert.ok(hasIssue(warns, /^log\.file_size: used with log\.dir only/));
});

test("Patroni's module loggers map to Vigil's components", () => {
  assert.equal(vigilLogger('patroni'), 'vigil');
  assert.equal(vigilLogger('patroni.ha'), 'vigil.ha');
  assert.equal(vigilLogger('patroni.postgresql.bootstrap'), 'vigil.postgres');
  assert.equal(vigilLogger('patroni.dcs.etcd3'), 'vigil.dcs');
  assert.equal(vigilLogger('patroni.api'), 'vigil.api');
  assert.equal(vigilLogger('vigil.postgres'), 'vigil.postgres');
  assert.equal(vigilLogger('vigil.nothing'), undefined);
  assert.equal(vigilLogger('urllib3'), undefined);
  assert.equal(vigilLogger('patronix'), undefined);
});
