import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveAuthFiles, renderPgIdent } from './configfiles.ts';

test('pg_hba / pg_ident: the local list wins over the dynamic one, which applies when the local one is empty', () => {
  const dyn = { pgHba: ['host all d 0.0.0.0/0 md5'], pgIdent: ['dm d d'] };
  assert.deepEqual(effectiveAuthFiles({ pgHba: ['host all l 0.0.0.0/0 md5'], pgIdent: ['lm l l'] }, dyn, {}), {
    pgHba: ['host all l 0.0.0.0/0 md5'],
    pgIdent: ['lm l l'],
  });
  assert.deepEqual(effectiveAuthFiles({ pgHba: [] }, dyn, {}), dyn);
  assert.deepEqual(effectiveAuthFiles({ pgHba: [] }, { pgHba: null, pgIdent: [] }, {}), {});
});

test('pg_hba / pg_ident: nothing is written for a file that hba_file / ident_file relocates', () => {
  const local = { pgHba: ['host all l 0.0.0.0/0 md5'], pgIdent: ['lm l l'] };
  assert.deepEqual(effectiveAuthFiles(local, {}, new Map([['hba_file', '/etc/x/hba']])), { pgIdent: ['lm l l'] });
  assert.deepEqual(effectiveAuthFiles(local, {}, { ident_file: '/etc/x/ident' }), { pgHba: local.pgHba });
});

test('renderPgIdent: one line per entry, newlines inside an entry flattened', () => {
  assert.equal(renderPgIdent(['m a\nb']).split('\n').slice(2).join('|'), 'm a b|');
});
