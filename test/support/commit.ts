// One statement on a fresh connection, judged as a client of synchronous replication must judge it:
// PostgreSQL reports a commit whose wait for the standbys was cancelled as a success with the
// warning "canceling wait for synchronous replication" (docs/guarantees.md 3): not acknowledged.

import pg from 'pg';
import type { ConnParams } from './wait.ts';

const SYNC_CANCEL = /canceling wait for synchronous replication/i;

/** Runs `sql`; ok: completed without the sync-cancel warning; ms: how long the statement took. */
export async function commit(params: ConnParams, sql: string): Promise<{ ok: boolean; notices: string[]; ms: number }> {
  const notices: string[] = [];
  const c = new pg.Client({ ...params, connectionTimeoutMillis: 3000, query_timeout: 180_000, application_name: 'vigil-test' });
  c.on('error', () => undefined);
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  const start = Date.now();
  try {
    await c.query(sql);
    return { ok: !notices.some((m) => SYNC_CANCEL.test(m)), notices, ms: Date.now() - start };
  } finally {
    await c.end().catch(() => undefined);
  }
}
