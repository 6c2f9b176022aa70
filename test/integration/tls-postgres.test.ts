// TLS to PostgreSQL 15 whose pg_hba.conf refuses every TCP connection without TLS and
// authenticates only by client certificate (hostssl ... cert): the agent's own connections
// (sslmode verify-full), pg_basebackup and the walreceiver (primary_conninfo) of a replica, and
// pg_rewind each present their user's certificate (postgresql.authentication.*.sslcert/sslkey).
// No user has a password. The steps share two nodes and run in order.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PostgresController } from '../../src/postgres/controller.ts';
import { slotName } from '../../src/postgres/conf.ts';
import { ownForPg } from '../../src/postgres/exec.ts';
import { PgNode } from '../../src/postgres/node.ts';
import { PgSession, withClient, type ConnParams } from '../../src/postgres/probe.ts';
import type { Credentials, PostgresqlSettings } from '../../src/config/types.ts';
import { makePki, type Pki } from '../support/pki.ts';
import { connUrlOf, eventually, makeTempBase, pgSettings, removeTempBase, testBootstrap } from '../support/pg.ts';

const run = promisify(execFile);

const HBA = [
  'hostnossl all all 0.0.0.0/0 reject',
  'hostnossl replication all 0.0.0.0/0 reject',
  'hostssl all all 127.0.0.1/32 cert',
  'hostssl replication all 127.0.0.1/32 cert',
];

describe('TLS with client certificates to PostgreSQL 15 (hostssl ... cert only)', { timeout: 180_000 }, () => {
  let base: string;
  let pki: Pki;
  let sa: PostgresqlSettings;
  let sb: PostgresqlSettings;
  let a: PostgresController;
  let b: PostgresController;
  /** Files PostgreSQL's OS user can read (the libpq tools run as that user): <base>/tls/<name>. */
  let files: Record<string, string>;

  /** A client certificate with CN `user`, signed by the PKI's CA, and its key (copied into <base>/tls). */
  async function clientCert(user: string): Promise<void> {
    const d = pki.dir;
    await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${user}.key`, '-out', `${user}.csr`, '-subj', `/CN=${user}`], { cwd: d });
    await run('openssl', ['x509', '-req', '-in', `${user}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${user}.crt`, '-days', '2'], { cwd: d });
  }

  async function place(name: string, from: string): Promise<string> {
    const to = join(base, name);
    await copyFile(from, to);
    await ownForPg(to, 0o600);
    return to;
  }

  const creds = (user: string, extra: Record<string, string> = {}): Credentials => ({
    username: user,
    libpq: { sslmode: 'verify-full', sslrootcert: files.ca!, sslcert: files[`${user}.crt`]!, sslkey: files[`${user}.key`]!, ...extra },
  });

  const settings = async (name: string): Promise<PostgresqlSettings> => {
    const s = await pgSettings({ baseDir: base, name, passwords: false });
    s.authentication = { superuser: creds('postgres'), replication: creds('replicator'), rewind: creds('rewind_user') };
    s.parameters = { ...s.parameters, ssl: 'on', ssl_cert_file: files['server.crt']!, ssl_key_file: files['server.key']!, ssl_ca_file: files.ca! };
    return s;
  };

  /** The superuser's connection to `s` with libpq settings `libpq`. */
  const conn = (s: PostgresqlSettings, libpq: Record<string, string>): ConnParams => ({
    host: '127.0.0.1', port: Number(s.listen.split(':')[1]), user: 'postgres', database: 'postgres', libpq,
  });
  const query = async <T>(s: PostgresqlSettings, text: string): Promise<T[]> =>
    withClient(conn(s, s.authentication.superuser.libpq!), 10_000, async (c) => (await c.query(text)).rows as T[]);

  before(async () => {
    base = await makeTempBase('vigil-tls-pg-');
    pki = await makePki({ clientName: 'postgres' });
    for (const u of ['replicator', 'rewind_user']) await clientCert(u);
    files = {
      ca: await place('ca.crt', pki.ca),
      'server.crt': await place('server.crt', pki.serverCert),
      'server.key': await place('server.key', pki.serverKey),
      'postgres.crt': await place('postgres.crt', pki.clientCert),
      'postgres.key': await place('postgres.key', pki.clientKey),
    };
    for (const u of ['replicator', 'rewind_user']) {
      files[`${u}.crt`] = await place(`${u}.crt`, join(pki.dir, `${u}.crt`));
      files[`${u}.key`] = await place(`${u}.key`, join(pki.dir, `${u}.key`));
    }
    sa = await settings('tls-a');
    sb = await settings('tls-b');
    a = new PostgresController({ settings: sa, name: 'tls-a', scope: 'tls' });
    b = new PostgresController({ settings: sb, name: 'tls-b', scope: 'tls' });
  });

  after(async () => {
    for (const c of [a, b]) await c?.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    if (base) await removeTempBase(base);
    await pki?.remove();
  });

  test('the agent bootstraps and probes a primary over verify-full with the superuser\'s certificate', async () => {
    await a.initdb(testBootstrap({ pgHba: HBA }));
    await a.start();
    await a.postBootstrap();
    const p = await a.probe();
    assert.equal(p.inRecovery, false);
    const [own] = await query<{ ssl: boolean; client_dn: string }>(sa, 'SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    assert.deepEqual(own, { ssl: true, client_dn: '/CN=postgres' });
  });

  test('without TLS, with an untrusted CA or without a certificate the server or the agent refuses', async () => {
    const su = sa.authentication.superuser.libpq!;
    await assert.rejects(withClient(conn(sa, { sslmode: 'disable' }), 10_000, (c) => c.query('SELECT 1')), /pg_hba\.conf rejects connection|no encryption/);
    // verify-full against another CA: the server's certificate is not trusted.
    await assert.rejects(withClient(conn(sa, { ...su, sslrootcert: pki.otherCa }), 10_000, (c) => c.query('SELECT 1')), /self[- ]signed|unable to verify|certificate/i);
    // TLS without a client certificate: cert authentication fails.
    await assert.rejects(withClient(conn(sa, { sslmode: 'verify-full', sslrootcert: files.ca! }), 10_000, (c) => c.query('SELECT 1')), /certificate authentication failed|connection requires a valid client certificate/);
  });

  test('a replica clones with pg_basebackup and streams with the replication user\'s certificate', async () => {
    await a.ensureSlots([slotName('tls-b')]);
    await b.basebackup({ connUrl: connUrlOf(sa) }, { attempts: 1 });
    await b.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sa), name: 'tls-a' } });
    await b.start();
    await eventually('tls-b streaming', async () => (await b.probe()).walReceiver?.status === 'streaming');
    const rows = await query<{ usename: string; ssl: boolean; client_dn: string }>(sa,
      'SELECT r.usename, s.ssl, s.client_dn FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)');
    assert.deepEqual(rows, [{ usename: 'replicator', ssl: true, client_dn: '/CN=replicator' }]);
    const [ci] = await query<{ v: string }>(sb, "SELECT current_setting('primary_conninfo') AS v");
    assert.match(ci!.v, /sslmode=verify-full .*sslcert=\S+replicator\.crt sslkey=\S+replicator\.key sslrootcert=\S+ca\.crt/);
  });

  test('pg_rewind of the old primary connects with the rewind user\'s certificate', async () => {
    await b.promote();
    await query(sa, 'CREATE TABLE diverge (v int); INSERT INTO diverge VALUES (1)');
    await a.stop('fast');
    await query(sb, 'CREATE TABLE after_promote (v int)');
    assert.equal(await a.checkDivergence({ connUrl: connUrlOf(sb) }), 'need');
    await a.rewind({ connUrl: connUrlOf(sb) });
    await a.writeConfig({ role: 'replica', upstream: { connUrl: connUrlOf(sb), name: 'tls-b' } });
    await b.ensureSlots([slotName('tls-a')]);
    await a.start();
    await eventually('tls-a streams from tls-b', async () => (await a.probe()).walReceiver?.status === 'streaming');
    assert.deepEqual(await query(sa, "SELECT to_regclass('after_promote') IS NOT NULL AS ok, to_regclass('diverge') IS NULL AS gone"), [{ ok: true, gone: true }]);
  });

  test('use_unix_socket: the agent connects over the socket of unix_socket_directories (no TLS there, as libpq)', async () => {
    const node = new PgNode({ settings: { ...sa, useUnixSocket: true }, name: 'tls-a' });
    const c = node.localConn();
    assert.equal(c.host, join(base, 'tls-a'));
    const rows = await withClient(c, 10_000, async (cl) => (await cl.query('SELECT inet_client_addr() IS NULL AS unix, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows);
    assert.deepEqual(rows, [{ unix: true, ssl: false }]);
    const probe = await new PostgresController({ settings: { ...sa, useUnixSocket: true }, name: 'tls-a', scope: 'tls' }).probe();
    assert.equal(probe.inRecovery, true);
    assert.equal(new PgNode({ settings: sa, name: 'tls-a' }).localConn().host, '127.0.0.1');
  });

  test('sslmode=prefer connects plain to a server without TLS; require does not', async () => {
    const sp = await pgSettings({ baseDir: base, name: 'tls-plain', passwords: false });
    const p = new PostgresController({ settings: sp, name: 'tls-plain', scope: 'plain' });
    try {
      await p.initdb(testBootstrap());
      await p.start();
      const q = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';
      const prefer = conn(sp, { sslmode: 'prefer' });
      assert.deepEqual(await withClient(prefer, 10_000, async (c) => (await c.query(q)).rows), [{ ssl: false }]);
      const session = new PgSession();
      try {
        assert.deepEqual(await session.run(prefer, 10_000, async (c) => (await c.query(q)).rows), [{ ssl: false }]);
      } finally {
        session.close();
      }
      await assert.rejects(withClient(conn(sp, { sslmode: 'require' }), 10_000, (c) => c.query('SELECT 1')), /does not support SSL/);
    } finally {
      await p.stop('immediate', { timeoutMs: 5000 }).catch(() => undefined);
    }
  });
});
