// TLS material (tls.ts): reading restapi's files, and refusing material node:tls cannot use. Real
// certificates are exercised by test/api/reload.test.ts and test/api/operations.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { checkTlsMaterial, readTlsFiles, sameTlsMaterial, secureContextOptions } from './tls.ts';

test('readTlsFiles: keyfile defaults to certfile; optional settings only when given; unreadable files named', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-tls-'));
  try {
    await writeFile(join(dir, 'both.pem'), 'CERT+KEY');
    await writeFile(join(dir, 'key.pem'), 'KEY');
    await writeFile(join(dir, 'ca.pem'), 'CA');
    assert.deepEqual(await readTlsFiles({ certfile: join(dir, 'both.pem') }), { cert: 'CERT+KEY', key: 'CERT+KEY', verifyClient: 'none' });
    assert.deepEqual(
      await readTlsFiles({
        certfile: join(dir, 'both.pem'),
        keyfile: join(dir, 'key.pem'),
        keyfilePassword: 'pw',
        cafile: join(dir, 'ca.pem'),
        verifyClient: 'optional',
      }),
      { cert: 'CERT+KEY', key: 'KEY', passphrase: 'pw', ca: 'CA', verifyClient: 'optional' },
    );
    const missing = join(dir, 'missing.pem');
    await assert.rejects(readTlsFiles({ certfile: missing }), new RegExp(`restapi\\.certfile "${missing}" cannot be read: .*ENOENT`));
    await assert.rejects(readTlsFiles({ certfile: join(dir, 'both.pem'), keyfile: missing }), /restapi\.keyfile .* cannot be read/);
    await assert.rejects(readTlsFiles({ certfile: join(dir, 'both.pem'), cafile: missing }), /restapi\.cafile .* cannot be read/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('secureContextOptions and sameTlsMaterial leave verify_client out', () => {
  assert.deepEqual(secureContextOptions({ cert: 'C', key: 'K', verifyClient: 'required' }), { cert: 'C', key: 'K' });
  assert.deepEqual(secureContextOptions({ cert: 'C', key: 'K', passphrase: 'P', ca: 'A' }), { cert: 'C', key: 'K', passphrase: 'P', ca: 'A' });
  assert.equal(sameTlsMaterial({ cert: 'C', key: 'K', verifyClient: 'none' }, { cert: 'C', key: 'K', verifyClient: 'required' }), true);
  for (const other of [{ cert: 'C2' }, { key: 'K2' }, { passphrase: 'P' }, { ca: 'A' }]) {
    assert.equal(sameTlsMaterial({ cert: 'C', key: 'K' }, { cert: 'C', key: 'K', ...other }), false, JSON.stringify(other));
  }
});

test('checkTlsMaterial: material node:tls refuses gives the restapi setup error', () => {
  assert.throws(() => checkTlsMaterial({ cert: 'not a pem', key: 'not a pem' }), (err: Error) => {
    assert.match(err.message, /^REST API TLS setup failed \(certfile\/keyfile\/keyfile_password\/cafile\): /);
    assert.ok(err.cause instanceof Error);
    return true;
  });
});
