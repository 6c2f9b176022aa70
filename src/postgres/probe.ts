// SQL access to PostgreSQL with hard deadlines, and the one-query probe.
//
// withClient: a short-lived connection per call. PgSession: one connection kept open for the
// agent's frequent observations (the probe, about once a second), so that an idle agent does not
// pay a connection start-up (SCRAM handshake, a new backend) every second. Both have a connect
// timeout, a server-side statement_timeout and a client-side overall deadline after which the
// socket is destroyed: a hung (e.g. SIGSTOPped) PostgreSQL makes these calls reject, never hang.

import pg from 'pg';
import './pg-guard.ts';
import { maybeLsn } from './lsn.ts';
import { PgTimeoutError, wrapPgError } from './errors.ts';
import { isNoTlsAnswer, pgClientTls, type PgClientTls } from './tls.ts';

export interface ConnParams {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** Physical replication connection (walsender): simple-query replication commands only. */
  replication?: boolean;
  /** Extra `-c name=value` options sent in the startup packet. */
  options?: string;
  /** The user's libpq settings (sslmode, sslcert, ...): TLS as tls.ts pgClientTls maps them. */
  libpq?: Record<string, string>;
}

function destroy(client: pg.Client): void {
  const c = client as unknown as { connection?: { stream?: { destroy?: () => void } } };
  try {
    c.connection?.stream?.destroy?.();
  } catch {
    // ignore
  }
  client.end().catch(() => undefined);
}

/**
 * Opens a connection, runs `fn`, closes it. The whole thing is bounded by `timeoutMs`: on expiry
 * the socket is destroyed and the promise rejects with PgTimeoutError. Errors of the driver are
 * wrapped (errors.ts wrapPgError): PgUnavailableError when the server could not be reached, was
 * not accepting connections or dropped the connection, PgQueryError for a statement's SQLSTATE.
 * Errors `fn` throws itself pass through unchanged.
 */
function newClient(params: ConnParams, connectMs: number, stmtMs: number, tls: PgClientTls = pgClientTls(params.libpq, params.host), ssl: PgClientTls['ssl'] = tls.ssl): pg.Client {
  return new pg.Client({
    host: params.host,
    port: params.port,
    user: params.user,
    password: params.password ?? '',
    database: params.database,
    application_name: 'vigil',
    connectionTimeoutMillis: Math.max(1, Math.floor(connectMs)),
    ssl,
    enableChannelBinding: tls.enableChannelBinding,
    ...(params.replication ? { replication: true } : { statement_timeout: Math.max(1, Math.floor(stmtMs)) }),
    ...(params.options !== undefined ? { options: params.options } : {}),
  } as pg.ClientConfig);
}

export async function withClient<T>(
  params: ConnParams,
  timeoutMs: number,
  fn: (client: pg.Client) => Promise<T>,
  what = 'PostgreSQL',
): Promise<T> {
  const tls = pgClientTls(params.libpq, params.host);
  let connected = false;
  let ended = false;
  const open = (ssl: typeof tls.ssl): pg.Client => {
    const c = newClient(params, timeoutMs, timeoutMs, tls, ssl);
    c.on('error', () => undefined); // errors surface through the awaited calls
    c.on('end', () => {
      if (c === client) ended = true;
    });
    return c;
  };
  let client = open(tls.ssl);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      destroy(client);
      reject(new PgTimeoutError(what, timeoutMs));
    }, timeoutMs);
  });
  try {
    const work = (async () => {
      try {
        await client.connect();
      } catch (e) {
        if (!tls.plainFallback || !isNoTlsAnswer(e)) throw e;
        client.end().catch(() => undefined);
        client = open(false); // sslmode=prefer and a server without TLS
        await client.connect();
      }
      connected = true;
      return await fn(client);
    })().catch((e: unknown) => {
      throw wrapPgError(e, what, !connected || ended);
    });
    work.catch(() => undefined);
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    client.end().catch(() => undefined);
  }
}

/** Server-side statement_timeout of a PgSession's connection (each call also has its own
 *  client-side deadline, usually shorter). */
const SESSION_STATEMENT_TIMEOUT_MS = 10_000;

/**
 * One connection, opened on first use and kept open between calls. Same contract as withClient
 * (a deadline per call, the same error wrapping), except that the connection outlives the call:
 * - any failure of a call (timeout, driver or server error, an error `fn` throws) closes the
 *   connection; the next call opens a new one. So does a connection the server ended (a stop or
 *   restart of PostgreSQL): it is noticed when it happens, and the next call reconnects;
 * - a call with other connection parameters (a reload changed them) replaces the connection;
 * - close() ends it (before a stop of PostgreSQL: a smart shutdown waits for every client);
 * - the socket never keeps the process alive on its own (unref'd while no call runs).
 * Calls may overlap: they share the connection (the driver runs their queries in turn).
 */
export class PgSession {
  #client: pg.Client | undefined;
  #key: string | undefined;
  #connecting: Promise<pg.Client> | undefined;
  /** Connections the server (or the network) ended. */
  readonly #ended = new WeakSet<pg.Client>();

  /** Runs `fn` on the session's connection (opened if needed) within `timeoutMs`. */
  async run<T>(params: ConnParams, timeoutMs: number, fn: (client: pg.Client) => Promise<T>, what = 'PostgreSQL'): Promise<T> {
    const key = JSON.stringify(params);
    if (this.#key !== key) this.close();
    let client: pg.Client | undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (client !== undefined) this.#drop(client);
        else this.close();
        reject(new PgTimeoutError(what, timeoutMs));
      }, timeoutMs);
    });
    let connected = false;
    try {
      const work = (async () => {
        client = await this.#connect(params, key, timeoutMs);
        connected = true;
        return await fn(client);
      })().catch((e: unknown) => {
        const ended = client !== undefined && this.#ended.has(client);
        if (client !== undefined) this.#drop(client);
        throw wrapPgError(e, what, !connected || ended);
      });
      work.catch(() => undefined);
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the connection (if any); the next run() opens a new one. */
  close(): void {
    const c = this.#client;
    this.#client = undefined;
    this.#connecting = undefined;
    this.#key = undefined;
    if (c !== undefined) destroy(c);
  }

  #drop(client: pg.Client): void {
    if (this.#client === client) this.close();
    else destroy(client);
  }

  #connect(params: ConnParams, key: string, timeoutMs: number): Promise<pg.Client> {
    if (this.#client !== undefined) return Promise.resolve(this.#client);
    if (this.#connecting !== undefined) return this.#connecting;
    const tls = pgClientTls(params.libpq, params.host);
    const open = (ssl: PgClientTls['ssl']): pg.Client => {
      const c = newClient(params, timeoutMs, SESSION_STATEMENT_TIMEOUT_MS, tls, ssl);
      // A connection lost while idle (or during a call: the call fails as well).
      const lost = (): void => {
        this.#ended.add(c);
        if (this.#client === c) this.close();
      };
      c.on('error', lost);
      c.on('end', lost);
      return c;
    };
    let client = open(tls.ssl);
    const connected = client.connect().catch((e: unknown) => {
      if (!tls.plainFallback || !isNoTlsAnswer(e)) throw e;
      destroy(client);
      client = open(false); // sslmode=prefer and a server without TLS
      return client.connect();
    });
    const p = connected.then(
      () => {
        if (this.#connecting !== p) {
          // closed (or replaced) while connecting
          destroy(client);
          throw new Error('session closed while connecting');
        }
        this.#connecting = undefined;
        this.#client = client;
        this.#key = key;
        unrefSocket(client);
        return client;
      },
      (e: unknown) => {
        if (this.#connecting === p) this.#connecting = undefined;
        destroy(client);
        throw e;
      },
    );
    this.#connecting = p;
    this.#key = key;
    return p;
  }
}

function unrefSocket(client: pg.Client): void {
  const c = client as unknown as { connection?: { stream?: { unref?: () => void } } };
  c.connection?.stream?.unref?.();
}

export interface ReplicationRow {
  /** The WAL sender's pid (null only if PostgreSQL hides it). */
  pid: number | null;
  usename: string | null;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  sync_state: string | null;
  sync_priority: number | null;
  write_lsn: number | undefined;
  flush_lsn: number | undefined;
  replay_lsn: number | undefined;
  /** reply_time as text (an opaque token: the standby's clock); null before the first reply or on PostgreSQL < 12. */
  reply_time?: string | null;
  /**
   * Set by the controller (Facts.probe), not by the query: ms this standby has been behind without
   * answering, on this agent's monotonic clock (core/sync-stall.ts trackSilence).
   */
  silent_ms?: number;
}

export interface ProbeResult {
  inRecovery: boolean;
  /** Primary: pg_current_wal_flush_lsn(). */
  flushLsn: number | undefined;
  receiveLsn: number | undefined;
  replayLsn: number | undefined;
  /** Primary: from the current WAL file name; replica: received_tli, else the checkpoint's. */
  timeline: number | undefined;
  walReceiver:
    | { status: string; receivedTli: number | undefined; senderHost: string | null; senderPort: number | null; slotName: string | null }
    | undefined;
  replayPaused: boolean;
  postmasterStartTime: string;
  serverVersionNum: number;
  replication: ReplicationRow[];
  sysid: string;
  /** Running synchronous_standby_names ('' when empty). */
  synchronousStandbyNames: string;
  /** Running synchronous_commit (on, remote_write, remote_apply, local, off). */
  synchronousCommit: string;
  /** Backends waiting for synchronous standbys to confirm their commit (pg_stat_activity wait_event SyncRep). */
  syncRepWaiters?: number;
}

/** The probe: one statement, no side effects, safe on primaries and hot standbys (PG >= 10). */
export const PROBE_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END AS flush_lsn,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS replay_paused,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
  (SELECT row_to_json(r) FROM (SELECT status, received_tli, sender_host, sender_port, slot_name
     FROM pg_stat_wal_receiver) r) AS wal_receiver,
  to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS postmaster_start,
  current_setting('server_version_num')::int AS server_version_num,
  (SELECT coalesce(json_agg(r), '[]'::json) FROM (SELECT pid, usename, application_name, client_addr::text AS client_addr,
     state, sync_state, sync_priority, write_lsn::text AS write_lsn, flush_lsn::text AS flush_lsn,
     replay_lsn::text AS replay_lsn, row_to_json(s)->>'reply_time' AS reply_time FROM pg_stat_replication s) r) AS replication,
  (SELECT count(*)::int FROM pg_stat_activity WHERE wait_event = 'SyncRep') AS sync_rep_waiters,
  (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
  current_setting('synchronous_standby_names') AS ssn,
  current_setting('synchronous_commit') AS synchronous_commit`;

export interface RawProbeRow {
  in_recovery: boolean;
  flush_lsn: string | null;
  walfile: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  replay_paused: boolean;
  checkpoint_tli: number | null;
  wal_receiver: { status: string; received_tli: number | null; sender_host: string | null; sender_port: number | null; slot_name: string | null } | null;
  postmaster_start: string;
  server_version_num: number;
  replication: Array<Record<string, unknown>>;
  sysid: string;
  ssn: string | null;
  synchronous_commit: string | null;
  sync_rep_waiters?: number | null;
}

/** Maps the probe row to ProbeResult. Pure (exported for tests). */
export function toProbeResult(row: RawProbeRow): ProbeResult {
  let timeline: number | undefined;
  if (!row.in_recovery && row.walfile !== null && /^[0-9A-F]{24}$/i.test(row.walfile)) {
    timeline = parseInt(row.walfile.slice(0, 8), 16);
  } else if (row.wal_receiver !== null && row.wal_receiver.received_tli !== null && row.wal_receiver.received_tli > 0) {
    timeline = row.wal_receiver.received_tli;
  } else if (row.checkpoint_tli !== null) {
    timeline = row.checkpoint_tli;
  }
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    inRecovery: row.in_recovery,
    flushLsn: maybeLsn(row.flush_lsn),
    receiveLsn: maybeLsn(row.receive_lsn),
    replayLsn: maybeLsn(row.replay_lsn),
    timeline,
    walReceiver:
      row.wal_receiver === null
        ? undefined
        : {
            status: row.wal_receiver.status,
            receivedTli: row.wal_receiver.received_tli ?? undefined,
            senderHost: row.wal_receiver.sender_host,
            senderPort: row.wal_receiver.sender_port,
            slotName: row.wal_receiver.slot_name,
          },
    replayPaused: row.replay_paused,
    postmasterStartTime: row.postmaster_start,
    serverVersionNum: row.server_version_num,
    replication: (Array.isArray(row.replication) ? row.replication : []).map((r) => ({
      pid: typeof r.pid === 'number' && Number.isInteger(r.pid) ? r.pid : null,
      usename: str(r.usename),
      application_name: str(r.application_name),
      client_addr: str(r.client_addr),
      state: str(r.state),
      sync_state: str(r.sync_state),
      sync_priority: typeof r.sync_priority === 'number' ? r.sync_priority : null,
      write_lsn: maybeLsn(str(r.write_lsn)),
      flush_lsn: maybeLsn(str(r.flush_lsn)),
      replay_lsn: maybeLsn(str(r.replay_lsn)),
      reply_time: str(r.reply_time),
    })),
    sysid: row.sysid,
    synchronousStandbyNames: row.ssn ?? '',
    synchronousCommit: row.synchronous_commit ?? '',
    syncRepWaiters: typeof row.sync_rep_waiters === 'number' ? row.sync_rep_waiters : 0,
  };
}

/** Runs the probe, bounded by timeoutMs: on the session's connection if given, else on a short-lived one. */
export async function runProbe(params: ConnParams, timeoutMs: number, session?: PgSession): Promise<ProbeResult> {
  // On the session's connection the probe is a named prepared statement: parsed and planned once
  // per connection, then only bound and executed.
  const fn = async (c: pg.Client): Promise<ProbeResult> => {
    const r = await c.query<RawProbeRow>(session !== undefined ? { name: 'vigil_probe', text: PROBE_SQL } : PROBE_SQL);
    const row = r.rows[0];
    if (row === undefined) throw new Error('probe returned no row');
    return toProbeResult(row);
  };
  return session !== undefined ? session.run(params, timeoutMs, fn, 'probe') : withClient(params, timeoutMs, fn, 'probe');
}
