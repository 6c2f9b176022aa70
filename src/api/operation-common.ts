// What the unsafe endpoints' families (operations.ts, switchover.ts, restart.ts,
// config-endpoints.ts) share: their options, the fresh DCS read whose failure becomes a 503, and
// Patroni's reading of pause and of scheduled timestamps.

import type { ClusterView } from '../core/model.ts';
import { isPaused as isPausedConfig } from '../core/values.ts';
import type { OperationsPort } from './port.ts';
import type { ApiResponse } from './request.ts';
import { message } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';

export interface OperationOptions {
  /** Wall clock (scheduled_at / schedule are compared with it). */
  now: () => Date;
  /** Interval between DCS reads while waiting for a switchover's result. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How long to wait for a switchover's result. Default 2 * max(10, loop_wait) seconds. */
  switchoverTimeoutMs?: number;
  /** Aborts the wait for a switchover's result (client gone, server closing). */
  signal?: AbortSignal;
  /** Told about failures that do not change the reply (e.g. a failed reload). */
  onError?: (what: string, err: unknown) => void;
}

/** A fresh DCS read failed: handleOperation answers 503 with its message. */
export class DcsReadError extends Error {}

export async function readCluster(port: OperationsPort): Promise<ClusterView> {
  try {
    return await port.readCluster();
  } catch (err) {
    throw new DcsReadError(err instanceof Error ? err.message : String(err));
  }
}

/** Paused for an operation: the agent's view, its /config, or the /config just read (core/values.ts isPaused). */
export function isPaused(snap: NodeSnapshot, cluster: ClusterView | undefined): boolean {
  return snap.pause === true || isPausedConfig(snap.config) || isPausedConfig(cluster?.config);
}

export function nonEmpty(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Timestamps: scheduled_at (switchover) and schedule (restart).

export type ParsedTimestamp =
  | { ok: true; epochMs: number; iso: string }
  | { ok: false; reason: 'no-timezone' | 'unparsable' };

const TIMESTAMP_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/**
 * A strict ISO-8601 timestamp: `YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|±HH[[:]MM]]`, every field
 * range-checked (days per month, leap years). A valid timestamp without an offset is reported as
 * 'no-timezone' (Patroni answers 400 for that, 422 for anything unparsable). `iso` is the
 * normalised form with the original offset, as Python's isoformat() writes it, e.g.
 * "2024-05-01T10:00:00+02:00" or "2024-05-01T10:00:00.250000+00:00".
 */
export function parseTimestamp(input: unknown): ParsedTimestamp {
  if (typeof input !== 'string') return { ok: false, reason: 'unparsable' };
  const m = TIMESTAMP_RE.exec(input.trim());
  if (m === null) return { ok: false, reason: 'unparsable' };
  const [, ys, mos, ds, hs, mis, ss, frac, zulu, sign, ohs, oms] = m;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs ?? '0');
  const minute = Number(mis ?? '0');
  const second = Number(ss ?? '0');
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return { ok: false, reason: 'unparsable' };
  if (hour > 23 || minute > 59 || second > 59) return { ok: false, reason: 'unparsable' };
  let offsetMin: number;
  if (zulu !== undefined) offsetMin = 0;
  else if (sign !== undefined) {
    const oh = Number(ohs);
    const om = Number(oms ?? '0');
    if (oh > 23 || om > 59) return { ok: false, reason: 'unparsable' };
    offsetMin = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  } else {
    return { ok: false, reason: 'no-timezone' };
  }
  const micros = frac === undefined ? 0 : Number(frac.padEnd(6, '0').slice(0, 6));
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  d.setUTCFullYear(year);
  const epochMs = d.getTime() - offsetMin * 60_000 + Math.floor(micros / 1000);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const off = `${offsetMin < 0 ? '-' : '+'}${p2(Math.floor(Math.abs(offsetMin) / 60))}:${p2(Math.abs(offsetMin) % 60)}`;
  const iso =
    `${String(year).padStart(4, '0')}-${p2(month)}-${p2(day)}T${p2(hour)}:${p2(minute)}:${p2(second)}` +
    (micros !== 0 ? `.${String(micros).padStart(6, '0')}` : '') +
    off;
  return { ok: true, epochMs, iso };
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Patroni's schedule check: the error reply, or the normalised timestamp. */
export function checkSchedule(value: unknown, action: 'switchover' | 'restart', now: Date): { error: ApiResponse } | { iso: string } {
  const t = parseTimestamp(value);
  if (!t.ok) {
    return t.reason === 'no-timezone'
      ? { error: message(400, `Timezone information is mandatory for the scheduled ${action}`) }
      : { error: message(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601') };
  }
  if (t.epochMs < now.getTime()) return { error: message(422, `Cannot schedule ${action} in the past`) };
  return { iso: t.iso };
}
