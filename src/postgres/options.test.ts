import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PgOptionError } from './errors.ts';
import {
  basebackupExtraArgs,
  BASEBACKUP_REFUSED,
  canonicalOption,
  checkRenderedOptions,
  INITDB_REFUSED,
  optionRefusal,
  parseRenderedOption,
  renderOption,
} from './options.ts';

test("Patroni's refused initdb and pg_basebackup options are refused, with a reason", () => {
  for (const o of ['pgdata', 'nosync', 'pwfile', 'sync-only', 'version', 'username']) {
    assert.ok((optionRefusal('initdb', o) ?? '').length > 0, o);
  }
  for (const o of ['pgdata', 'format', 'wal-method', 'xlog-method', 'gzip', 'version', 'dbname', 'host', 'port', 'username', 'password']) {
    assert.ok((optionRefusal('pg_basebackup', o) ?? '').length > 0, o);
  }
  assert.equal(INITDB_REFUSED.size, 6);
  assert.equal(BASEBACKUP_REFUSED.size, 11);
});

test('allowed options are not refused; short letters map to the long names', () => {
  assert.equal(optionRefusal('initdb', 'data-checksums'), undefined);
  assert.equal(optionRefusal('initdb', 'encoding', 'UTF8'), undefined);
  assert.equal(optionRefusal('pg_basebackup', 'max-rate', '10M'), undefined);
  assert.equal(optionRefusal('pg_basebackup', 'checkpoint', 'spread'), undefined);
  assert.equal(canonicalOption('initdb', 'D'), 'pgdata');
  assert.equal(canonicalOption('pg_basebackup', '-U'), 'username');
  assert.equal(canonicalOption('pg_basebackup', '--Host'), 'host');
  assert.ok(optionRefusal('initdb', 'U') !== undefined);
  assert.ok(optionRefusal('pg_basebackup', 'X', 'fetch') !== undefined);
  // Short letters are case-sensitive: -w (no-password) is not -W (password).
  assert.equal(optionRefusal('pg_basebackup', 'w'), undefined);
});

test('pg_basebackup compress: server-side methods and none only', () => {
  assert.equal(optionRefusal('pg_basebackup', 'compress', 'server-gzip'), undefined);
  assert.equal(optionRefusal('pg_basebackup', 'compress', 'server-lz4:5'), undefined);
  assert.equal(optionRefusal('pg_basebackup', 'compress', 'none'), undefined);
  assert.ok(optionRefusal('pg_basebackup', 'compress', 'gzip') !== undefined);
  assert.ok(optionRefusal('pg_basebackup', 'compress', 9) !== undefined);
  assert.ok(optionRefusal('pg_basebackup', 'compress') !== undefined);
  assert.ok(optionRefusal('pg_basebackup', 'Z', 'client-gzip') !== undefined);
});

test('rendering and parsing rendered arguments round-trip', () => {
  assert.equal(renderOption('data-checksums'), '--data-checksums');
  assert.equal(renderOption('--encoding', 'UTF8'), '--encoding=UTF8');
  assert.equal(renderOption('max-rate', 100), '--max-rate=100');
  assert.deepEqual(parseRenderedOption('--encoding=UTF8'), { name: 'encoding', value: 'UTF8' });
  assert.deepEqual(parseRenderedOption('--data-checksums'), { name: 'data-checksums' });
  assert.deepEqual(parseRenderedOption('-Xfetch'), { name: 'X', value: 'fetch' });
  assert.deepEqual(parseRenderedOption('-c'), { name: 'c' });
  assert.deepEqual(parseRenderedOption('--waldir=/a=b'), { name: 'waldir', value: '/a=b' });
});

test('checkRenderedOptions throws a PgOptionError naming the refused option', () => {
  assert.deepEqual(checkRenderedOptions('initdb', ['--data-checksums', '--encoding=UTF8']), ['--data-checksums', '--encoding=UTF8']);
  assert.throws(
    () => checkRenderedOptions('initdb', ['--data-checksums', '-Dsomewhere']),
    (e: unknown) => e instanceof PgOptionError && e.option === 'pgdata' && e.tool === 'initdb' && e.code === 'PG_OPTION_REFUSED' && !e.retryable,
  );
  assert.throws(
    () => checkRenderedOptions('pg_basebackup', ['--username=other']),
    (e: unknown) => e instanceof PgOptionError && e.option === 'username' && /pg_basebackup option "username" is not allowed/.test(e.message),
  );
  assert.throws(() => checkRenderedOptions('pg_basebackup', ['--compress=gzip']), (e: unknown) => e instanceof PgOptionError && e.option === 'compress');
});

test('basebackupExtraArgs adds --checkpoint=fast unless a checkpoint mode is configured', () => {
  assert.deepEqual(basebackupExtraArgs([]), ['--checkpoint=fast']);
  assert.deepEqual(basebackupExtraArgs(['--max-rate=10M']), ['--max-rate=10M', '--checkpoint=fast']);
  assert.deepEqual(basebackupExtraArgs(['--checkpoint=spread']), ['--checkpoint=spread']);
  assert.deepEqual(basebackupExtraArgs(['-cspread']), ['-cspread']);
  assert.deepEqual(basebackupExtraArgs(['--compress=server-gzip']), ['--compress=server-gzip', '--checkpoint=fast']);
  assert.throws(() => basebackupExtraArgs(['--format=tar']), PgOptionError);
});
