// Replication slots, the IO side of src/core/slots.ts: reading pg_replication_slots, executing the
// planned SlotOps (create, drop, advance), and copying permanent logical slots from the primary to
// a replica on PostgreSQL < 17 (no built-in failover slots): the slot's state file is read from the
// primary with pg_read_binary_file and written into pg_replslot/<name>/ of the stopped replica,
// which loads it at the next start and from then on keeps the WAL and catalog rows it needs.

import { open, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalSlot, SlotOp } from '../core/slots.ts';
import { ownForPg } from './exec.ts';
import { maybeLsn, numberToLsn } from './lsn.ts';
import type { PgNode } from './node.ts';
import { withClient } from './probe.ts';

const READ_SLOTS = `SELECT slot_name, slot_type, plugin, database, active, restart_lsn::text AS restart_lsn,
  confirmed_flush_lsn::text AS confirmed_flush_lsn, wal_status, xmin IS NOT NULL AS holds_xmin
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
      }));
    },
    'readSlots',
  );
}

/**
 * Executes the ops (except copyLogical) in order. One failing op is logged and the others still
 * run (a slot busy being dropped, a database gone); the read of the next tick sees the outcome.
 */
export async function applySlotOps(node: PgNode, ops: readonly SlotOp[], timeoutMs = 10000): Promise<void> {
  const one = async (database: string | undefined, sql: string, params: unknown[], what: string) => {
    try {
      await withClient(node.localConn(undefined, database ?? node.settings.database), timeoutMs, (c) => c.query(sql, params), what);
    } catch (e) {
      node.log.warn(`${what} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  for (const op of ops) {
    switch (op.op) {
      case 'drop':
        node.log.info(`dropping replication slot ${op.name} (${op.why})`);
        await one(undefined, 'SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active', [op.name], `drop slot ${op.name}`);
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
      case 'advance':
        await one(op.database, 'SELECT pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)', [op.name, numberToLsn(op.lsn)], `advance slot ${op.name} to ${numberToLsn(op.lsn)}`);
        break;
      case 'copyLogical':
        break; // needs a restart: the agent calls fetchLogicalSlots / writeLogicalSlots
    }
  }
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
}
