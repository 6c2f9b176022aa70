// Replication slots, the IO side of src/core/slots.ts: reading pg_replication_slots, executing the
// planned SlotOps (create, drop, advance), and copying permanent logical slots from the primary to
// a replica on PostgreSQL < 17 (no built-in failover slots): the slot's state file is read from the
// primary with pg_read_binary_file and written into pg_replslot/<name>/ of the stopped replica,
// which loads it at the next start and from then on keeps the WAL and catalog rows it needs. The
// readiness of those copies (core/slots.ts readinessStep) is tracked here per node, as Patroni's
// slot handler does, and logged: when a copy becomes ready, and at a promotion with copies pending.

import { open, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readinessBegin, readinessCopied, readinessStep, type Readiness } from '../core/logical-failover.ts';
import type { LocalSlot, SlotOp } from '../core/slots.ts';
import { PgServerError } from './errors.ts';
import { ownForPg } from './exec.ts';
import { maybeLsn, numberToLsn } from './lsn.ts';
import type { PgNode } from './node.ts';
import { withClient } from './probe.ts';

const READ_SLOTS = `SELECT slot_name, slot_type, plugin, database, active, restart_lsn::text AS restart_lsn,
  confirmed_flush_lsn::text AS confirmed_flush_lsn, wal_status, xmin IS NOT NULL AS holds_xmin,
  catalog_xmin::text AS catalog_xmin
  FROM pg_catalog.pg_replication_slots WHERE NOT temporary`;

interface SlotRow {
  slot_name: string;
  slot_type: string;
  plugin: string | null;
  database: string | null;
  active: boolean;
  restart_lsn: string | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
  holds_xmin: boolean;
  catalog_xmin: string | null;
}

function xid(v: string | null | undefined): number | undefined {
  if (v === null || v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** The local non-temporary slots. Rejects when PostgreSQL does not answer. */
export async function readSlots(node: PgNode, timeoutMs = 2000): Promise<LocalSlot[]> {
  return withClient(
    node.localConn(),
    timeoutMs,
    async (c) => {
      const r = await c.query<SlotRow>(READ_SLOTS);
      return r.rows.map((row) => ({
        name: row.slot_name,
        type: row.slot_type === 'logical' ? 'logical' : 'physical',
        plugin: row.plugin,
        database: row.database,
        active: row.active,
        restartLsn: maybeLsn(row.restart_lsn),
        confirmedFlushLsn: maybeLsn(row.confirmed_flush_lsn),
        walStatus: row.wal_status,
        holdsXmin: row.holds_xmin,
        ...(xid(row.catalog_xmin) !== undefined ? { catalogXmin: xid(row.catalog_xmin) } : {}),
      }));
    },
    'readSlots',
  );
}

/**
 * Executes the ops (except copyLogical) in order. One failing op is logged and the others still
 * run (a slot busy being dropped, a database gone); the read of the next tick sees the outcome. A
 * replica's logical copy that cannot be advanced because the WAL it needs is gone (58P01) or it
 * was invalidated (55000) is dropped, so that the next tick copies it again from the primary (as
 * Patroni copies it again).
 */
export async function applySlotOps(node: PgNode, ops: readonly SlotOp[], timeoutMs = 10000): Promise<void> {
  const one = async (database: string | undefined, sql: string, params: unknown[], what: string): Promise<string | undefined> => {
    try {
      await withClient(node.localConn(undefined, database ?? node.settings.database), timeoutMs, (c) => c.query(sql, params), what);
      return undefined;
    } catch (e) {
      node.log.warn(`${what} failed: ${e instanceof Error ? e.message : String(e)}`);
      return e instanceof PgServerError ? e.sqlstate : 'error';
    }
  };
  const drop = (name: string) =>
    one(undefined, 'SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active', [name], `drop slot ${name}`);
  for (const op of ops) {
    switch (op.op) {
      case 'drop':
        node.log.info(`dropping replication slot ${op.name} (${op.why})`);
        await drop(op.name);
        break;
      case 'createPhysical':
        node.log.info(`creating physical replication slot ${op.name}`);
        await one(
          undefined,
          "SELECT pg_catalog.pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)",
          [op.name],
          `create physical slot ${op.name}`,
        );
        break;
      case 'createLogical':
        node.log.info(`creating logical replication slot ${op.name} (database ${op.database}, plugin ${op.plugin})`);
        await one(
          op.database,
          'SELECT pg_catalog.pg_create_logical_replication_slot($1, $2) WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)',
          [op.name, op.plugin],
          `create logical slot ${op.name}`,
        );
        break;
      case 'advance': {
        const code = await one(op.database, 'SELECT pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)', [op.name, numberToLsn(op.lsn)], `advance slot ${op.name} to ${numberToLsn(op.lsn)}`);
        if (op.database !== undefined && (code === '58P01' || code === '55000') && (await inRecovery(node))) {
          node.log.warn(`logical replication slot ${op.name} cannot be advanced (${code}): dropping the copy, to copy it again from the primary`);
          await drop(op.name);
        }
        break;
      }
      case 'checkReady':
        await checkReadiness(node, op).catch((e: unknown) => node.log.warn(`checking the readiness of the logical slot copies failed: ${e instanceof Error ? e.message : String(e)}`));
        break;
      case 'copyLogical':
        break; // needs a restart: the agent calls fetchLogicalSlots / writeLogicalSlots
    }
  }
}

async function inRecovery(node: PgNode): Promise<boolean> {
  return withClient(node.localConn(), 2000, async (c) => (await c.query<{ r: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS r')).rows[0]?.r === true, 'pg_is_in_recovery').catch(() => false);
}

/** The readiness of each node's logical copies (core/slots.ts Readiness), for this process's life. */
const readiness = new WeakMap<PgNode, Readiness>();

function readinessOf(node: PgNode): Readiness {
  return readiness.get(node) ?? { started: false, pending: {} };
}

/**
 * One readiness check (op checkReady): reads from the primary the catalog_xmin of this replica's
 * physical slot and of the primary's logical slots still unknown, and logs the copies that became
 * ready. When the physical slot holds no catalog_xmin, says whether hot_standby_feedback is off.
 */
async function checkReadiness(node: PgNode, op: Extract<SlotOp, { op: 'checkReady' }>): Promise<void> {
  const { state, ask } = readinessBegin(readinessOf(node), op.copies);
  readiness.set(node, state);
  if (Object.keys(state.pending).length === 0) return;
  const rows = await withClient(
    node.remoteConn(op.connUrl, node.rewindCreds(), node.settings.database),
    3000,
    async (c) =>
      (
        await c.query<{ slot_name: string; catalog_xmin: string | null }>(
          'SELECT slot_name, catalog_xmin::text AS catalog_xmin FROM pg_catalog.pg_get_replication_slots() WHERE NOT pg_catalog.pg_is_in_recovery() AND slot_name = ANY($1)',
          [[...ask, op.physical]],
        )
      ).rows,
    'checkReady',
  );
  const phys = rows.find((r) => r.slot_name === op.physical);
  if (phys === undefined) {
    node.log.warn(`physical slot ${op.physical} does not exist on the primary: the logical slot copies ${Object.keys(state.pending).sort().join(', ')} are not ready`);
    return;
  }
  const physical = xid(phys.catalog_xmin) ?? null;
  if (physical === null) {
    const hsf = await withClient(node.localConn(), 2000, async (c) => (await c.query<{ on: boolean }>("SELECT pg_catalog.current_setting('hot_standby_feedback')::boolean AS on")).rows[0]?.on, 'hot_standby_feedback').catch(() => undefined);
    if (hsf === false) node.log.error('logical slot failover needs hot_standby_feedback on this replica; it is off');
    return;
  }
  const primary: Record<string, number | null> = {};
  for (const r of rows) if (r.slot_name !== op.physical) primary[r.slot_name] = xid(r.catalog_xmin) ?? null;
  const res = readinessStep(state, physical, primary, op.copies);
  readiness.set(node, res.state);
  for (const n of res.ready) node.log.info(`logical replication slot ${n} is ready: safe to use after a failover`);
}

/**
 * At a promotion: logs the logical copies that are not ready (they may lack catalog rows a
 * consumer's decoding needs), as Patroni does, and forgets the readiness state. Returns them.
 */
export function unreadyAtPromotion(node: PgNode): string[] {
  const names = Object.keys(readinessOf(node).pending).sort();
  readiness.delete(node);
  if (names.length > 0) node.log.warn(`logical replication slots that might be unsafe to use after the promotion (not ready): ${names.join(', ')}`);
  return names;
}

/** A logical slot's on-disk state as read from the primary. */
export interface SlotState {
  name: string;
  data: Buffer;
}

/**
 * Reads the state files of the logical slots `names` from the primary at `connUrl` (the rewind
 * user, else the superuser: pg_read_binary_file needs that right). Slots the primary does not
 * have, or a server in recovery, give nothing.
 */
export async function fetchLogicalSlots(node: PgNode, connUrl: string, names: readonly string[], timeoutMs = 5000): Promise<SlotState[]> {
  return withClient(
    node.remoteConn(connUrl, node.rewindCreds(), node.settings.database),
    timeoutMs,
    async (c) => {
      const r = await c.query<{ slot_name: string; data: Buffer }>(
        `SELECT slot_name, pg_catalog.pg_read_binary_file('pg_replslot/' || slot_name || '/state') AS data
           FROM pg_catalog.pg_replication_slots WHERE slot_type = 'logical' AND NOT pg_catalog.pg_is_in_recovery() AND slot_name = ANY($1)`,
        [names],
      );
      return r.rows.map((row) => ({ name: row.slot_name, data: row.data }));
    },
    'fetchLogicalSlots',
  );
}

async function fsyncPath(path: string): Promise<void> {
  const f = await open(path, 'r');
  try {
    await f.sync();
  } finally {
    await f.close();
  }
}

/**
 * Writes the slot states into pg_replslot of the STOPPED local server: each through a temporary
 * directory, fsynced, renamed over any old copy, the directories fsynced.
 */
export async function writeLogicalSlots(node: PgNode, states: readonly SlotState[]): Promise<void> {
  const base = join(node.dataDir, 'pg_replslot');
  for (const s of states) {
    const dir = join(base, s.name);
    const tmp = `${dir}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    await writeFile(join(tmp, 'state'), s.data, { mode: 0o600 });
    await fsyncPath(join(tmp, 'state'));
    await ownForPg(join(tmp, 'state'), 0o600);
    await ownForPg(tmp, 0o700);
    await fsyncPath(tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    await fsyncPath(dir);
    node.log.info(`copied logical replication slot ${s.name} from the primary`);
  }
  await fsyncPath(base);
  readiness.set(node, readinessCopied(readinessOf(node), states.map((s) => s.name)));
}
