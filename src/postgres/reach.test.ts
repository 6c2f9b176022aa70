import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';

import { pgAddress, postmasterAnswers } from './reach.ts';

function listen(onConn: (s: import('node:net').Socket) => void): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer(onConn);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

test('pgAddress reads host and port of a conn_url', () => {
  assert.deepEqual(pgAddress('postgres://10.0.0.1:5433/postgres'), { host: '10.0.0.1', port: 5433 });
  assert.deepEqual(pgAddress('postgres://db/postgres'), { host: 'db', port: 5432 });
  assert.deepEqual(pgAddress('postgres://[::1]:6000/x'), { host: '::1', port: 6000 });
  assert.equal(pgAddress('not a url'), undefined);
});

test('a server that answers the SSLRequest counts; one that accepts and stays silent, or a closed port, does not', async () => {
  const answering = await listen((s) => s.once('data', () => s.write('N')));
  const silent = await listen(() => undefined);
  const closed = await listen(() => undefined);
  const closedPort = closed.port;
  await new Promise<void>((r) => closed.server.close(() => r()));
  try {
    assert.equal(await postmasterAnswers({ host: '127.0.0.1', port: answering.port }, 1000), true);
    assert.equal(await postmasterAnswers({ host: '127.0.0.1', port: silent.port }, 300), false);
    assert.equal(await postmasterAnswers({ host: '127.0.0.1', port: closedPort }, 1000), false);
  } finally {
    answering.server.close();
    silent.server.close();
  }
});
