// A server that asks for GSSAPI authentication: node-postgres's parser throws inside the socket's
// 'data' event; with pg-guard.ts the connection fails with an error saying what happened instead of
// the exception ending the process (this test's process included).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { PgServerError, isTransientError } from './errors.ts';
import { withClient } from './probe.ts';

test('a GSSAPI authentication request fails the connection with an authentication error naming GSSAPI', async () => {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    // After the startup packet: AuthenticationGSS ('R', length 8, code 7).
    sock.once('data', () => sock.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 7])));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const err = await withClient({ host: '127.0.0.1', port, user: 'u', database: 'd' }, 5000, (c) => c.query('SELECT 1'), 'probe').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof PgServerError, String(err));
    assert.match(err.message, /^probe: the server asked for GSSAPI \(Kerberos\) authentication/);
    assert.equal(isTransientError(err), false);
  } finally {
    server.close();
  }
});
