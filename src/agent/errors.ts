// Whether a failure of a background task is transient: about reaching another server (the clone
// source, the leader for pg_rewind, the DCS), worth a retry, rather than about the local work.
// Classified once, when the task fails, and kept on the task state as a boolean.

import { DcsError } from '../dcs/dcs.ts';

/** Messages of failures to reach another server (libpq, pg_basebackup, pg_rewind, node:net). */
const TRANSIENT = /could not connect|connection refused|ECONNREFUSED|ECONNRESET|timed? ?out|terminating connection|the database system is (starting up|shutting down|in recovery)|server closed the connection/i;

export function isTransientFailure(err: unknown): boolean {
  if (err instanceof DcsError) return err.retryable;
  const message = err instanceof Error ? err.message : String(err);
  return TRANSIENT.test(message);
}
