// Typed errors of src/postgres and isTransientError.
//
// The failures of src/postgres a caller must tell apart are PgErrors: a stable `code`, a
// `retryable` flag and, when they wrap something, a `cause` (design.md principle 7). Errors of
// the `pg` driver and of Node's sockets are wrapped where the connection is made (probe.ts
// withClient); failures of PostgreSQL's client programs where they run (exec.ts run, then
// libpqToolFailure for pg_basebackup and pg_rewind). Local file-system errors (EACCES, ENOSPC...)
// are passed through as they are: not transient.
//
// What counts as transient (retryable) and why: the failure was about *reaching* a PostgreSQL
// server that is expected to come back on its own, not about the work asked of it. A retry of
// the same request, unchanged, later, can succeed:
// - PG_UNAVAILABLE: the server could not be reached or dropped the connection: connection
//   refused/reset, host or network unreachable, the driver's connect timeout, SQLSTATE class 08
//   (connection exception), 57P01 admin_shutdown / 57P02 crash_shutdown ("terminating
//   connection"), 57P03 cannot_connect_now ("the database system is starting up / shutting down /
//   in recovery"), 53300 too_many_connections; a client program (pg_basebackup, pg_rewind) that
//   failed for one of these reasons;
// - PG_TIMEOUT: the server did not answer within our deadline (hung, overloaded, or cancelled by
//   our statement_timeout, SQLSTATE 57014);
// - PG_REWIND_NOT_READY: the rewind source is still in recovery or has no checkpoint on its new
//   timeline yet (a promotion in progress);
// - PG_CONTROL_TIMEOUT: start/promote/reload did not complete within its deadline while the
//   server kept working (e.g. crash recovery still replaying): asking again waits again;
// - PG_SERVER_ERROR with SQLSTATE 40001 / 40P01 (serialization failure, deadlock).
// Not transient: everything about the local work itself. A pg_rewind that exits non-zero because
// the histories diverged in a way it cannot repair, a failed initdb, authentication or permission
// errors (28xxx, 42501), a data directory in the wrong state, a refused option, a postmaster that
// exited during start-up: retrying the same thing fails the same way, the caller must change
// something (re-create the replica, fix the configuration).
//
// isTransientError decides from classes and codes only, never from message text. The one place
// that reads text is libpqUnavailable, which classifies a client program's stderr (run with
// LC_MESSAGES=C, exec.ts) at the source, because those programs report nothing else.

import pg from 'pg';

export type PgErrorCode =
  | 'PG_UNAVAILABLE'
  | 'PG_TIMEOUT'
  | 'PG_SERVER_ERROR'
  | 'EXEC_SPAWN'
  | 'EXEC_EXIT'
  | 'EXEC_TIMEOUT'
  | 'PG_OPTION_REFUSED'
  | PgControlCode;

/** Base class of the typed errors of src/postgres. */
export abstract class PgError extends Error {
  abstract readonly code: PgErrorCode;
  /** A later retry of the same request, unchanged, can succeed (see the header). */
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.retryable = retryable;
  }
}

/** PostgreSQL could not be reached, or the connection to it was lost or refused for now. */
export class PgUnavailableError extends PgError {
  readonly code = 'PG_UNAVAILABLE' as const;
  /** SQLSTATE, when the server said so (57P03 ...). */
  readonly sqlstate: string | undefined;
  /** Node's error code, when the socket failed (ECONNREFUSED ...). */
  readonly errno: string | undefined;
  constructor(message: string, opts: { cause?: unknown; sqlstate?: string; errno?: string } = {}) {
    super(message, true, opts.cause);
    this.name = 'PgUnavailableError';
    this.sqlstate = opts.sqlstate;
    this.errno = opts.errno;
  }
}

/** A PostgreSQL call did not finish within its deadline (the socket was destroyed). */
export class PgTimeoutError extends PgError {
  readonly code = 'PG_TIMEOUT' as const;
  /** `ms` undefined: the server cancelled the statement at its statement_timeout. */
  constructor(what: string, ms: number | undefined, cause?: unknown) {
    super(ms !== undefined ? `${what} did not answer within ${ms} ms` : `${what} ran past its statement_timeout`, true, cause);
    this.name = 'PgTimeoutError';
  }
}

/** The server refused a connection or a statement with an error not covered above (SQLSTATE in `sqlstate`). */
export class PgServerError extends PgError {
  readonly code = 'PG_SERVER_ERROR' as const;
  readonly sqlstate: string;
  constructor(message: string, sqlstate: string, cause?: unknown) {
    super(message, RETRYABLE_SQLSTATES.has(sqlstate), cause);
    this.name = 'PgServerError';
    this.sqlstate = sqlstate;
  }
}

export type ExecFailure = 'timeout' | 'exit' | 'spawn';

const EXEC_CODES = { spawn: 'EXEC_SPAWN', exit: 'EXEC_EXIT', timeout: 'EXEC_TIMEOUT' } as const;

/**
 * A subprocess that failed: did not start, exited non-zero/by signal, or passed its deadline.
 * Not retryable by itself: callers that know the program is a libpq client wrap it in a
 * PgUnavailableError when libpqUnavailable(stderr) says so.
 */
export class ExecError extends PgError {
  readonly code: (typeof EXEC_CODES)[ExecFailure];
  readonly failure: ExecFailure;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(failure: ExecFailure, message: string, exitCode: number | null, stderr: string, cause?: unknown) {
    super(message, false, cause);
    this.name = 'ExecError';
    this.code = EXEC_CODES[failure];
    this.failure = failure;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export type PgControlCode =
  /** Refused: PostgreSQL runs (rewind, base backup, removing the data directory). */
  | 'PG_RUNNING'
  /** The data directory is not in the state the operation needs (empty / initialised). */
  | 'PG_DATA_DIR'
  /** The postmaster exited during start-up or could not be spawned. */
  | 'PG_START_FAILED'
  /** start/stop/promote/reload did not complete within its deadline. */
  | 'PG_CONTROL_TIMEOUT'
  /** pg_rewind's source is not usable yet (in recovery, no checkpoint on its timeline). */
  | 'PG_REWIND_NOT_READY'
  /** Any other failure of the operation; retryable when its cause is. */
  | 'PG_FAILED';

const CONTROL_RETRYABLE: Record<PgControlCode, boolean | undefined> = {
  PG_RUNNING: false,
  PG_DATA_DIR: false,
  PG_START_FAILED: false,
  PG_CONTROL_TIMEOUT: true,
  PG_REWIND_NOT_READY: true,
  PG_FAILED: undefined, // from the cause
};

/** An operation of PostgresController failed (see PgControlCode). */
export class PgControlError extends PgError {
  readonly code: PgControlCode;
  /** `retryable` overrides the code's default (PG_FAILED: the cause's). */
  constructor(code: PgControlCode, message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, opts.retryable ?? CONTROL_RETRYABLE[code] ?? isTransientError(opts.cause), opts.cause);
    this.name = 'PgControlError';
    this.code = code;
  }
}

/** A configured initdb / pg_basebackup option Vigil refuses (it manages it itself, or it breaks replicas). */
export class PgOptionError extends PgError {
  readonly code = 'PG_OPTION_REFUSED' as const;
  readonly tool: string;
  readonly option: string;
  readonly reason: string;
  constructor(tool: string, option: string, reason: string) {
    super(`${tool} option "${option}" is not allowed: ${reason}`, false);
    this.name = 'PgOptionError';
    this.tool = tool;
    this.option = option;
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------
// Classification of foreign errors

/** Server-side SQLSTATEs meaning "not reachable for now" (see the header). */
export function isUnavailableSqlstate(sqlstate: string): boolean {
  return sqlstate.startsWith('08') || sqlstate === '57P01' || sqlstate === '57P02' || sqlstate === '57P03' || sqlstate === '53300';
}

/** query_canceled: with our statement_timeout set, the statement ran past its deadline. */
const TIMEOUT_SQLSTATE = '57014';
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);

/** Node socket/DNS error codes that mean the server could not be reached or the link broke. */
const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ETIMEDOUT', 'EPIPE',
  'EAI_AGAIN', 'ENOTFOUND', 'ENOENT', // ENOENT: a unix socket that does not exist (server down)
]);

function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NETWORK_ERRNOS.has(code) ? code : undefined;
}

function sqlstateOf(e: unknown): string | undefined {
  if (!(e instanceof pg.DatabaseError)) return undefined;
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
}

/**
 * Wraps an error raised by the `pg` driver during `what` into a PgError. `connectionLost`: the
 * connection was not established yet or had ended when the error surfaced (the driver then
 * reports plain Errors such as "Connection terminated unexpectedly", which carry no code).
 * PgErrors and errors that are none of the driver's (a bug in a callback) are returned unchanged.
 */
export function wrapPgError(e: unknown, what: string, connectionLost: boolean): unknown {
  if (e instanceof PgError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  // Authentication request 7 (GSSAPI) or 9 (SSPI): node-postgres cannot answer it (postgresql.krbsrvname
  // reaches libpq's programs only). Said plainly, as an authentication failure (SQLSTATE 28000: not transient).
  if (/^Unknown authenticationOk message type [79]$/.test(msg)) {
    return new PgServerError(
      `${what}: the server asked for GSSAPI (Kerberos) authentication, which the agent's own connections (node-postgres) cannot do: give the agent's users (postgresql.authentication) a password or certificate method in pg_hba.conf (${msg})`,
      '28000',
      e,
    );
  }
  const sqlstate = sqlstateOf(e);
  if (sqlstate !== undefined) {
    if (isUnavailableSqlstate(sqlstate)) return new PgUnavailableError(`${what}: ${msg}`, { cause: e, sqlstate });
    if (sqlstate === TIMEOUT_SQLSTATE) return new PgTimeoutError(what, undefined, e);
    return new PgServerError(`${what}: ${msg}`, sqlstate, e);
  }
  const errno = errnoOf(e);
  if (errno !== undefined) return new PgUnavailableError(`${what}: ${msg}`, { cause: e, errno });
  if (connectionLost && e instanceof Error) return new PgUnavailableError(`${what}: ${msg}`, { cause: e });
  return e;
}

/**
 * Whether a libpq client program (pg_basebackup, pg_rewind, run with LC_MESSAGES=C) failed
 * because its server was unreachable or not accepting connections yet, judged from its stderr:
 * those programs exit 1 for every failure and say why only in text. Authentication and other
 * "connection to server ... failed: FATAL: ..." errors do not count.
 */
export function libpqUnavailable(stderr: string): boolean {
  return LIBPQ_UNAVAILABLE.some((re) => re.test(stderr));
}

/**
 * The error for a failed libpq client program `tool`: PgUnavailableError when its server was
 * unreachable or not accepting connections (transient), else PgControlError PG_FAILED with the
 * original error as cause (retryable only if that is).
 */
export function libpqToolFailure(tool: string, e: unknown): PgError {
  if (e instanceof ExecError && e.failure === 'exit' && libpqUnavailable(e.stderr)) {
    return new PgUnavailableError(`${tool} could not reach its server: ${e.message}`, { cause: e });
  }
  return new PgControlError('PG_FAILED', e instanceof Error ? e.message : String(e), { cause: e });
}

const LIBPQ_UNAVAILABLE = [
  /failed: (Connection refused|Connection timed out|No route to host|Network is unreachable|No such file or directory|timeout expired)/,
  /could not connect to server/,
  /could not translate host name/,
  /server closed the connection unexpectedly/,
  /the database system is (starting up|shutting down|in recovery mode|not yet accepting connections|not accepting connections)/,
  /terminating connection due to (administrator command|crash of another server process)/,
  /sorry, too many clients already/,
  /could not receive data from (WAL stream|server)/,
];

/**
 * Whether `err` is a transient failure (see the header): the first error in its `cause` chain
 * that carries a verdict decides. PgErrors (and any error with a string `code` and a boolean
 * `retryable`, such as DcsError) carry one; raw `pg` driver errors and Node socket errors are
 * classified by SQLSTATE / errno. Anything else (including plain Errors) is not transient.
 */
export function isTransientError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e !== null && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    if (e instanceof PgError) return e.retryable;
    const r = e as { code?: unknown; retryable?: unknown; cause?: unknown };
    if (typeof r.code === 'string' && typeof r.retryable === 'boolean') return r.retryable;
    const sqlstate = sqlstateOf(e);
    if (sqlstate !== undefined) return isUnavailableSqlstate(sqlstate) || sqlstate === TIMEOUT_SQLSTATE || RETRYABLE_SQLSTATES.has(sqlstate);
    if (errnoOf(e) !== undefined) return true;
    e = r.cause;
  }
  return false;
}
