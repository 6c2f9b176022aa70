// isTransientError and the wrapping of driver / client-program failures, with errors produced by
// the real code paths: the `pg` driver against a closed loopback port, a loopback server that
// answers the startup packet with a PostgreSQL ErrorResponse, real pg_basebackup runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import pg from 'pg';
import {
  ExecError,
  isTransientError,
  libpqToolFailure,
  PgControlError,
  PgError,
  PgOptionError,
  PgServerError,
  PgTimeoutError,
  PgUnavailableError,
} from './errors.ts';
import { withClient } from './probe.ts';
import { run } from './exec.ts';

const PG_BIN = process.env.VIGIL_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A PostgreSQL ErrorResponse message ('E') with severity FATAL. */
function errorResponse(sqlstate: string, message: string): Buffer {
  const fields = Buffer.concat(
    [
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', sqlstate],
      ['M', message],
    ].map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')),
  );
  const body = Buffer.concat([fields, Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** A loopback server that answers any startup packet with `reply` and closes (or stays silent). */
async function fakeServer(reply: Buffer | undefined): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => {
      if (reply !== undefined) sock.end(reply);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

const conn = (port: number) => ({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });

test('withClient to a closed port: PgUnavailableError (ECONNREFUSED), transient', async () => {
  const port = await closedPort();
  const err = await withClient(conn(port), 5000, (c) => c.query('SELECT 1'), 'probe').then(
    () => assert.fail('connected to a closed port'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof PgUnavailableError, String(err));
  assert.equal(err.code, 'PG_UNAVAILABLE');
  assert.equal(err.errno, 'ECONNREFUSED');
  assert.equal(err.retryable, true);
  assert.equal(isTransientError(err), true);
});

test('a raw pg driver error (not wrapped) is classified by its errno', async () => {
  const port = await closedPort();
  const client = new pg.Client(conn(port));
  client.on('error', () => undefined);
  const err = await client.connect().then(
    () => assert.fail('connected'),
    (e: unknown) => e,
  );
  await client.end().catch(() => undefined);
  assert.equal((err as { code?: string }).code, 'ECONNREFUSED');
  assert.equal(isTransientError(err), true);
  // ... also when it is the cause of something that carries no verdict itself
  assert.equal(isTransientError(new Error('clone failed', { cause: err })), true);
});

for (const [sqlstate, text] of [
  ['57P03', 'the database system is starting up'],
  ['57P01', 'terminating connection due to administrator command'],
  ['08006', 'connection failure'],
  ['53300', 'sorry, too many clients already'],
] as const) {
  test(`server answers ${sqlstate} (${text}): PgUnavailableError, transient`, async () => {
    const { server, port } = await fakeServer(errorResponse(sqlstate, text));
    try {
      const err = await withClient(conn(port), 5000, (c) => c.query('SELECT 1')).then(
        () => assert.fail('connected'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof PgUnavailableError, String(err));
      assert.equal(err.sqlstate, sqlstate);
      assert.ok(err.cause instanceof pg.DatabaseError);
      assert.equal(isTransientError(err), true);
      assert.equal(isTransientError(err.cause), true, 'the raw DatabaseError too');
    } finally {
      server.close();
    }
  });
}

test('server answers 28P01 (authentication failed): PgServerError, not transient', async () => {
  const { server, port } = await fakeServer(errorResponse('28P01', 'password authentication failed for user "postgres"'));
  try {
    const err = await withClient(conn(port), 5000, (c) => c.query('SELECT 1')).then(
      () => assert.fail('connected'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PgServerError, String(err));
    assert.equal(err.code, 'PG_SERVER_ERROR');
    assert.equal(err.sqlstate, '28P01');
    assert.equal(isTransientError(err), false);
    assert.equal(isTransientError(err.cause), false);
  } finally {
    server.close();
  }
});

test('a server that never answers: the call rejects with a transient PgError', async () => {
  const { server, port } = await fakeServer(undefined);
  try {
    const err = await withClient(conn(port), 300, (c) => c.query('SELECT 1'), 'probe').then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    // Our deadline or the driver's connect timeout (both set to 300 ms) fires first.
    assert.ok(err instanceof PgTimeoutError || err instanceof PgUnavailableError, String(err));
    assert.equal(isTransientError(err), true);
  } finally {
    server.close();
  }
});

test('pg_basebackup against a closed port: PgUnavailableError wrapping its ExecError', { skip: !existsSync(`${PG_BIN}/pg_basebackup`) }, async () => {
  const port = await closedPort();
  const err = await run(`${PG_BIN}/pg_basebackup`, ['-D', '/nonexistent/vigil-errors-test', '-X', 'stream', `--dbname=host=127.0.0.1 port=${port} user=x`], {
    timeoutMs: 30_000,
  }).then(
    () => assert.fail('pg_basebackup succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ExecError, String(err));
  assert.equal(err.code, 'EXEC_EXIT');
  assert.equal(isTransientError(err), false, 'an ExecError alone carries no reachability verdict');
  const wrapped = libpqToolFailure('pg_basebackup', err);
  assert.ok(wrapped instanceof PgUnavailableError, String(wrapped));
  assert.equal(wrapped.cause, err);
  assert.equal(isTransientError(wrapped), true);
});

test('a client program failing on its own work is not transient', { skip: !existsSync(`${PG_BIN}/pg_basebackup`) }, async () => {
  // Bad option: pg_basebackup exits 1 before connecting anywhere.
  const err = await run(`${PG_BIN}/pg_basebackup`, ['--no-such-option'], { timeoutMs: 30_000 }).then(
    () => assert.fail('succeeded'),
    (e: unknown) => e,
  );
  const wrapped = libpqToolFailure('pg_basebackup', err);
  assert.ok(wrapped instanceof PgControlError, String(wrapped));
  assert.equal(wrapped.code, 'PG_FAILED');
  assert.equal(wrapped.cause, err);
  assert.equal(isTransientError(wrapped), false);
});

test('PgControlError: codes with a fixed verdict; PG_FAILED follows its cause', async () => {
  assert.equal(isTransientError(new PgControlError('PG_REWIND_NOT_READY', 'x')), true);
  assert.equal(isTransientError(new PgControlError('PG_CONTROL_TIMEOUT', 'x')), true);
  assert.equal(isTransientError(new PgControlError('PG_CONTROL_TIMEOUT', 'x', { retryable: false })), false);
  for (const code of ['PG_RUNNING', 'PG_DATA_DIR', 'PG_START_FAILED', 'PG_FAILED'] as const) {
    assert.equal(isTransientError(new PgControlError(code, 'x')), false, code);
  }
  const port = await closedPort();
  const unavailable = await withClient(conn(port), 5000, async () => undefined).catch((e: unknown) => e);
  assert.ok(unavailable instanceof PgUnavailableError);
  assert.equal(isTransientError(new PgControlError('PG_FAILED', 'clone failed', { cause: unavailable })), true);
  // The outermost verdict wins: a start failure caused by a refused connection stays fatal.
  assert.equal(isTransientError(new PgControlError('PG_START_FAILED', 'x', { cause: unavailable })), false);
  assert.equal(isTransientError(new PgOptionError('initdb', 'pgdata', 'managed by Vigil')), false);
  assert.ok(new PgOptionError('initdb', 'pgdata', 'managed by Vigil') instanceof PgError);
});

test('isTransientError: other typed errors, plain errors, non-errors, cycles', () => {
  const dcsLike = Object.assign(new Error('etcd unreachable'), { code: 'DCS_UNAVAILABLE', retryable: true });
  assert.equal(isTransientError(dcsLike), true);
  // Message text alone never makes an error transient.
  assert.equal(isTransientError(new Error('could not connect to server: Connection refused')), false);
  assert.equal(isTransientError('ECONNREFUSED'), false);
  assert.equal(isTransientError(undefined), false);
  const a = new Error('a') as Error & { cause?: unknown };
  const b = new Error('b', { cause: a });
  a.cause = b;
  assert.equal(isTransientError(a), false);
});
