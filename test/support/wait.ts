// Polling helpers for tests against real servers. Timeouts here are generous upper bounds that
// only turn a hang into a failure with a message; no test asserts how fast something happened.

import pg from 'pg';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a value other than undefined/false; throw after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
}

export interface ConnParams {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** Run one query on a fresh connection with short deadlines. */
export async function query<R extends Record<string, unknown> = Record<string, unknown>>(params: ConnParams, sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ ...params, connectionTimeoutMillis: 3000, statement_timeout: 5000, query_timeout: 6000, application_name: 'vigil-test' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const res = await client.query<R>(sql, values);
    return res.rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}
