import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildParameters } from './conf.ts';
import { libpqPairs, localSocketDir, renderConninfo } from './conninfo.ts';
import { pgClientTls } from './tls.ts';
import type { PostgresqlSettings } from '../config/types.ts';

test('libpqPairs: Patroni order, defaults only for unset keywords', () => {
  const creds = { username: 'r', libpq: { sslkey: '/k', sslmode: 'verify-full', channel_binding: 'disable' } };
  assert.equal(renderConninfo(libpqPairs(creds, { sslmode: 'prefer', gssencmode: 'prefer', channel_binding: 'prefer' })),
    'sslmode=verify-full sslkey=/k gssencmode=prefer channel_binding=disable');
  assert.equal(renderConninfo(libpqPairs({ username: 'r' })), '');
});

test('primary_conninfo carries the replication user\'s TLS settings', () => {
  const settings = {
    listen: '127.0.0.1:5432', connectAddress: '127.0.0.1:5432', dataDir: '/d', binDir: '', pgpass: '/p', database: 'postgres',
    authentication: {
      superuser: { username: 's' },
      replication: { username: 'rep', libpq: { sslmode: 'verify-full', sslrootcert: '/ca dir/ca.crt', sslcert: '/c.crt', sslkey: '/c.key' } },
    },
    parameters: {}, pgHba: [], useSlots: false, removeDataDirectoryOnRewindFailure: false, removeDataDirectoryOnDivergedTimelines: false,
    pgCtlTimeout: 60, basebackup: [],
  } as PostgresqlSettings;
  const b = buildParameters({ settings, memberName: 'n1', role: 'replica', upstream: { connUrl: 'postgres://10.0.0.2:5433/postgres', name: 'n2' } });
  assert.equal(Object.fromEntries(b.conf).primary_conninfo,
    "host=10.0.0.2 port=5433 user=rep dbname=postgres application_name=n1 sslmode=verify-full sslcert=/c.crt sslkey=/c.key sslrootcert='/ca dir/ca.crt' gssencmode=prefer channel_binding=prefer");
});

test('localSocketDir: first absolute directory, Debian default when unset, none for relative only', () => {
  assert.equal(localSocketDir('.., /tmp/s, /x'), '/tmp/s');
  assert.equal(localSocketDir(undefined), '/var/run/postgresql');
  assert.equal(localSocketDir('@abstract, rel'), undefined);
});

test('pgClientTls: each sslmode', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-tls-'));
  try {
    const ca = join(dir, 'ca.crt');
    await writeFile(ca, 'CA');
    await writeFile(join(dir, 'c.crt'), 'CERT');
    await writeFile(join(dir, 'c.key'), 'KEY');
    const h = '127.0.0.1';
    assert.equal(pgClientTls(undefined, h).ssl, false);
    assert.equal(pgClientTls({ sslmode: 'disable' }, h).ssl, false);
    assert.equal(pgClientTls({ sslmode: 'allow' }, h).ssl, false);
    assert.equal(pgClientTls({ sslmode: 'verify-full', sslrootcert: ca }, '/var/run/postgresql').ssl, false); // Unix socket: never TLS
    const prefer = pgClientTls({ sslmode: 'prefer' }, h);
    assert.deepEqual(prefer.ssl, { rejectUnauthorized: false });
    assert.equal(prefer.plainFallback, true);
    const implicit = pgClientTls({ sslcert: join(dir, 'c.crt'), sslkey: join(dir, 'c.key'), sslpassword: 'pw' }, h);
    assert.equal(implicit.plainFallback, true);
    const ssl = implicit.ssl as { cert: Buffer; key: Buffer; passphrase: string };
    assert.equal(ssl.cert.toString(), 'CERT');
    assert.equal(ssl.key.toString(), 'KEY');
    assert.equal(ssl.passphrase, 'pw');
    assert.deepEqual(pgClientTls({ sslmode: 'require' }, h).ssl, { rejectUnauthorized: false });
    const requireCa = pgClientTls({ sslmode: 'require', sslrootcert: ca }, h).ssl as { rejectUnauthorized: boolean; checkServerIdentity?: unknown };
    assert.equal(requireCa.rejectUnauthorized, true);
    assert.equal(typeof requireCa.checkServerIdentity, 'function');
    const vca = pgClientTls({ sslmode: 'verify-ca', sslrootcert: ca, sslcrl: ca }, h);
    assert.equal(vca.plainFallback, false);
    assert.equal(typeof (vca.ssl as { checkServerIdentity?: unknown }).checkServerIdentity, 'function');
    assert.equal((vca.ssl as { crl: Buffer[] }).crl.length, 1);
    const vfull = pgClientTls({ sslmode: 'verify-full', sslrootcert: ca, channel_binding: 'disable' }, h);
    assert.equal((vfull.ssl as { checkServerIdentity?: unknown }).checkServerIdentity, undefined); // node checks the host
    assert.equal((vfull.ssl as { rejectUnauthorized: boolean }).rejectUnauthorized, true);
    assert.equal(vfull.enableChannelBinding, false);
    assert.throws(() => pgClientTls({ sslmode: 'verify-full', sslrootcert: join(dir, 'missing.crt') }, h), /cannot read sslrootcert .*missing\.crt/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
