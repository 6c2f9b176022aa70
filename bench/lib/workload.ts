// The benchmark's client: one writer that inserts one small row per iteration, each with a unique
// id, over a connection to whichever endpoint (a node, or a proxy such as HAProxy's primary port)
// currently leads to a primary. On any error it drops
// the connection and probes every node (in parallel, 1 s connect timeout) for one where
// `SELECT pg_is_in_recovery()` is false, pausing briefly between rounds. statement_timeout and a
// client-side query timeout keep it from hanging on a node that stopped answering.
//
// Every acknowledged write is recorded with the monotonic time of its acknowledgement and the time
// its connection was established, so the benchmark can tell writes on the pre-fault connection
// (possibly acknowledged a moment after the fault was injected) from writes on a connection made
// after it.

import { performance } from 'node:perf_hooks';
import pg from 'pg';

export interface Endpoint {
  name: string;
  host: string;
  port: number;
}

export interface Credentials {
  user: string;
  password: string;
  database: string;
}

export interface Ack {
  id: number;
  /** performance.now() when the INSERT's result arrived. */
  at: number;
  /** performance.now() when the connection it went over was established. */
  connectedAt: number;
  node: string;
  /** inet_server_port() of the backend that executed the INSERT (identifies the node behind a proxy). */
  serverPort: number;
}

export interface WriterOptions {
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** Pause between reconnection rounds that found no primary. */
  retryPauseMs?: number;
  table?: string;
  /** First id to use; ids increase by one per attempted INSERT. */
  firstId?: number;
  /** Pause after each acknowledged INSERT (0 = as fast as possible): a steady, lighter load. */
  pauseMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function newClient(ep: Endpoint, cred: Credentials, o: Required<WriterOptions>): pg.Client {
  const c = new pg.Client({
    host: ep.host,
    port: ep.port,
    user: cred.user,
    password: cred.password,
    database: cred.database,
    connectionTimeoutMillis: o.connectTimeoutMs,
    statement_timeout: o.statementTimeoutMs,
    query_timeout: o.statementTimeoutMs + 500,
    application_name: 'vigil-bench',
  });
  // A dropped connection emits 'error' on the client; without a listener that would crash us.
  c.on('error', () => undefined);
  return c;
}

/**
 * Probes every endpoint and returns a connected client to one that is not in recovery (the
 * others are closed), or undefined when none is a primary right now.
 */
export async function connectPrimary(
  endpoints: readonly Endpoint[],
  cred: Credentials,
  opts: WriterOptions = {},
): Promise<{ client: pg.Client; node: Endpoint } | undefined> {
  const o = withDefaults(opts);
  const results = await Promise.all(
    endpoints.map(async (ep) => {
      const c = newClient(ep, cred, o);
      try {
        await c.connect();
        const r = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        if (r.rows[0]?.rec === false) return { client: c, node: ep };
      } catch {
        // refused, starting up, in recovery, timed out: not usable
      }
      await c.end().catch(() => undefined);
      return undefined;
    }),
  );
  const primaries = results.filter((x): x is { client: pg.Client; node: Endpoint } => x !== undefined);
  // Two nodes out of recovery at once would be a split brain; take the first and let the lost-write
  // count reveal any damage.
  for (const extra of primaries.slice(1)) await extra.client.end().catch(() => undefined);
  return primaries[0];
}

function withDefaults(o: WriterOptions): Required<WriterOptions> {
  return {
    connectTimeoutMs: o.connectTimeoutMs ?? 1000,
    statementTimeoutMs: o.statementTimeoutMs ?? 1000,
    retryPauseMs: o.retryPauseMs ?? 50,
    table: o.table ?? 'bench_writes',
    firstId: o.firstId ?? 1,
    pauseMs: o.pauseMs ?? 0,
  };
}

export class Writer {
  readonly acks: Ack[] = [];
  /**
   * INSERTs PostgreSQL answered with the warning "canceling wait for synchronous replication": the
   * row is committed locally but may exist on no standby, so it is not an acknowledged write (no
   * HA manager promises anything for it) and is never counted as lost.
   */
  readonly syncCancelled: number[] = [];
  errors = 0;
  private nextId: number;
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly o: Required<WriterOptions>;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly cred: Credentials,
    opts: WriterOptions = {},
  ) {
    this.o = withDefaults(opts);
    this.nextId = this.o.firstId;
  }

  /** The id the next INSERT will use (ids are never reused by this writer). */
  get next(): number {
    return this.nextId;
  }

  /** Creates the table on the current primary (idempotent). Throws if no primary answers in time. */
  async ensureTable(timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const p = await connectPrimary(this.endpoints, this.cred, this.o);
      if (p !== undefined) {
        try {
          await p.client.query(`CREATE TABLE IF NOT EXISTS ${this.o.table} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`);
          return;
        } catch {
          // retry below
        } finally {
          await p.client.end().catch(() => undefined);
        }
      }
      await sleep(200);
    }
    throw new Error(`no primary accepted CREATE TABLE within ${timeoutMs} ms`);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.loop = undefined;
  }

  private async run(): Promise<void> {
    let client: pg.Client | undefined;
    let node: Endpoint | undefined;
    let connectedAt = 0;
    // Set by the connection's notice listener while the current INSERT runs (notices arrive before
    // the statement completes).
    let warned: boolean;
    const onNotice = (msg: { message?: string; detail?: string }): void => {
      if (/synchronous replication|not have been replicated/i.test(`${msg.message ?? ''} ${msg.detail ?? ''}`)) warned = true;
    };
    while (this.running) {
      if (client === undefined) {
        const p = await connectPrimary(this.endpoints, this.cred, this.o);
        if (p === undefined) {
          await sleep(this.o.retryPauseMs);
          continue;
        }
        client = p.client;
        client.on('notice', onNotice);
        node = p.node;
        connectedAt = performance.now();
      }
      const id = this.nextId++;
      warned = false;
      try {
        // RETURNING runs in the INSERT's own transaction, so the port names the node that committed it.
        const r = await client.query<{ port: number | null }>(`INSERT INTO ${this.o.table} (id) VALUES ($1) RETURNING inet_server_port() AS port`, [id]);
        if (warned) this.syncCancelled.push(id);
        else this.acks.push({ id, at: performance.now(), connectedAt, node: node?.name ?? '?', serverPort: r.rows[0]?.port ?? 0 });
        if (this.o.pauseMs > 0) await sleep(this.o.pauseMs);
      } catch {
        this.errors++;
        await client.end().catch(() => undefined);
        client = undefined;
      }
    }
    await client?.end().catch(() => undefined);
  }
}

/**
 * Of the given acknowledged ids, those absent on the current primary. Throws when no primary
 * answers within the timeout.
 */
export async function missingIds(
  endpoints: readonly Endpoint[],
  cred: Credentials,
  ids: readonly number[],
  opts: WriterOptions & { timeoutMs?: number } = {},
): Promise<number[]> {
  const o = withDefaults(opts);
  const deadline = performance.now() + (opts.timeoutMs ?? 60_000);
  let lastErr: unknown;
  while (performance.now() < deadline) {
    const p = await connectPrimary(endpoints, cred, { ...o, statementTimeoutMs: 30_000 });
    if (p !== undefined) {
      try {
        const r = await p.client.query<{ id: string }>(`SELECT id FROM ${o.table} WHERE id = ANY($1::bigint[])`, [ids]);
        const present = new Set(r.rows.map((row) => Number(row.id)));
        return ids.filter((id) => !present.has(id));
      } catch (err) {
        lastErr = err;
      } finally {
        await p.client.end().catch(() => undefined);
      }
    }
    await sleep(200);
  }
  throw new Error(`could not read back acknowledged writes from a primary: ${lastErr instanceof Error ? lastErr.message : String(lastErr ?? 'no primary')}`);
}
