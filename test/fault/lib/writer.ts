// The checker's clients. A FaultWriter inserts rows with unique ids, one at a time, through
// whichever endpoint is a primary right now (bench/lib/workload.ts's connectPrimary: every endpoint
// is probed in parallel with `SELECT pg_is_in_recovery()`, 1 s connect timeout), reconnecting after
// any error. Unlike the benchmark's Writer it records, for every acknowledged INSERT, the server's
// clock (now(), the statement's start: all servers share this machine's clock) and the WAL
// position, which the split-brain and loss-bound checks need; and it can be pinned to one node
// (a "sentinel"), writing there whenever that node is out of recovery, so two nodes accepting
// writes at once cannot hide behind a client that happens to stick to one of them.
//
// An epoch is one connection: it ends when the connection fails (demotion, crash, partition).

import { performance } from 'node:perf_hooks';
import pg from 'pg';

import { connectPrimary, type Credentials, type Endpoint } from '../../../bench/lib/workload.ts';
import { lsnToNumber } from '../../../src/postgres/lsn.ts';
import type { Ack } from './checker.ts';

export type { Credentials, Endpoint };

export const TABLE = 'fault_writes';

/** One acknowledged INSERT (fields documented on the checker's Ack). */
export type FaultAck = Ack;

let epochs = 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface FaultWriterOptions {
  /** First id; ids increase by one per attempted INSERT and are never reused. */
  firstId: number;
  /** Pause after each acknowledged INSERT (0 = as fast as possible). */
  pauseMs?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

export class FaultWriter {
  /** Every INSERT that completed, including syncCancelled ones (flagged; see Ack.syncCancelled). */
  readonly acks: FaultAck[] = [];
  /** INSERTs that failed after being sent: they may or may not have committed (never "lost"). */
  readonly uncertain: number[] = [];
  /**
   * INSERTs that PostgreSQL reported as committed but with the warning "canceling wait for
   * synchronous replication" (the commit's wait for a standby was cancelled, e.g. by
   * pg_cancel_backend; PostgreSQL 15 disarms statement_timeout before the commit, so the writer's
   * own timeout ends such a wait client-side, as an error): the row is committed locally but may
   * exist nowhere else. Synchronous modes promise nothing for such a write, so it counts as
   * uncertain, never as acknowledged (patroni-behavior.md §11, caveat).
   */
  readonly syncCancelled: number[] = [];
  errors = 0;
  /** Message of the latest failed INSERT (diagnostics). */
  lastError: string | undefined;
  private nextId: number;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly endpoints: readonly Endpoint[],
    private readonly cred: Credentials,
    private readonly o: FaultWriterOptions,
  ) {
    this.nextId = o.firstId;
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
    const timeouts = { connectTimeoutMs: this.o.connectTimeoutMs ?? 1000, statementTimeoutMs: this.o.statementTimeoutMs ?? 1000 };
    let client: pg.Client | undefined;
    let node = '';
    let epoch = 0;
    // Set by the connection's notice listener while the current INSERT runs; notices arrive before
    // the statement's completion, so it is settled when the query resolves.
    let warned: boolean;
    const onNotice = (msg: { message?: string; detail?: string }): void => {
      if (/synchronous replication|not have been replicated/i.test(`${msg.message ?? ''} ${msg.detail ?? ''}`)) warned = true;
    };
    while (this.running) {
      if (client === undefined) {
        const p = await connectPrimary(this.endpoints, this.cred, timeouts);
        if (p === undefined) {
          await sleep(100);
          continue;
        }
        client = p.client;
        client.on('notice', onNotice);
        node = p.node.name;
        epoch = ++epochs;
      }
      const id = this.nextId++;
      warned = false;
      try {
        const r = await client.query<{ us: string; lsn: string }>(
          `INSERT INTO ${TABLE} (id, writer) VALUES ($1, $2) RETURNING (extract(epoch FROM now()) * 1000000)::int8::text AS us, pg_current_wal_lsn()::text AS lsn`,
          [id, this.name],
        );
        const row = r.rows[0];
        if (row === undefined) throw new Error('INSERT returned no row');
        const ack: FaultAck = { id, writer: this.name, node, at: performance.now(), serverUs: Number(row.us), lsn: lsnToNumber(row.lsn), epoch };
        if (warned) {
          // Not acknowledged for the loss check, but the node did accept it: split-brain evidence.
          ack.syncCancelled = true;
          this.syncCancelled.push(id);
          this.uncertain.push(id);
        }
        this.acks.push(ack);
        if (this.o.pauseMs) await sleep(this.o.pauseMs);
      } catch (err) {
        this.errors++;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.uncertain.push(id);
        await client.end().catch(() => undefined);
        client = undefined;
      }
    }
    await client?.end().catch(() => undefined);
  }
}

/** Creates the checker's table on the current primary (idempotent). */
export async function ensureTable(endpoints: readonly Endpoint[], cred: Credentials, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    const p = await connectPrimary(endpoints, cred);
    if (p !== undefined) {
      try {
        await p.client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigint PRIMARY KEY, writer text NOT NULL)`);
        return;
      } catch (err) {
        last = err;
      } finally {
        await p.client.end().catch(() => undefined);
      }
    }
    await sleep(200);
  }
  throw new Error(`no primary accepted CREATE TABLE within ${timeoutMs} ms: ${String(last ?? 'no primary')}`);
}

/** Every id in the table on the node reached at ep (which must be the final primary). */
export async function readIds(ep: Endpoint, cred: Credentials): Promise<Set<number>> {
  const c = new pg.Client({ host: ep.host, port: ep.port, ...cred, connectionTimeoutMillis: 5000, statement_timeout: 60_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const rec = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
    if (rec.rows[0]?.rec !== false) throw new Error(`${ep.name} is in recovery: not the final primary`);
    const r = await c.query<{ id: string }>(`SELECT id::text FROM ${TABLE}`);
    return new Set(r.rows.map((row) => Number(row.id)));
  } finally {
    await c.end().catch(() => undefined);
  }
}
