// POST /restart (patroni-interfaces.md 2.13): filters, immediate or scheduled restarts.

import type { ClusterView } from '../core/model.ts';
import type { OperationOptions } from './operation-common.ts';
import { checkSchedule, isPaused } from './operation-common.ts';
import type { OperationsPort, RestartRequest, ScheduledRestart } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { message, readJsonBody } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';

export async function postRestart(req: ApiRequest, snap: NodeSnapshot, port: OperationsPort, opts: OperationOptions): Promise<ApiResponse> {
  const body = readJsonBody(req, true);
  if (!body.ok) return body.response;
  const filters: RestartRequest = {};
  let schedule: string | undefined;
  // Checked in the body's key order; the first bad key decides the reply.
  for (const [k, v] of Object.entries(body.value)) {
    if (k === 'schedule') {
      const s = checkSchedule(v, 'restart', opts.now());
      if ('error' in s) return s.error;
      schedule = s.iso;
    } else if (k === 'role') {
      if (v !== 'primary' && v !== 'standby_leader' && v !== 'replica') {
        return message(400, 'PostgreSQL role should be either primary, standby_leader, or replica');
      }
      filters.role = v;
    } else if (k === 'postgres_version') {
      const problem = postgresVersionProblem(v);
      if (problem !== undefined) return message(400, problem);
      filters.postgres_version = String(v).trim();
    } else if (k === 'timeout') {
      const t = parseSecondsValue(v);
      if (t === undefined || t <= 0) return message(400, 'Timeout should be a positive number of seconds');
      filters.timeout = t;
    } else if (k === 'restart_pending') {
      // The key's presence enables the filter, whatever its value.
      filters.restart_pending = true;
    } else {
      return message(400, `Unknown filter for the scheduled restart: ${k}`);
    }
  }

  if (schedule === undefined) {
    let outcome;
    try {
      outcome = await port.restart(filters);
    } catch (err) {
      opts.onError?.('restart', err);
      return message(400, 'restart failed');
    }
    if (outcome.ok) return message(200, 'restarted successfully');
    return message(503, outcome.message !== '' ? outcome.message : defaultRestartMessage(outcome.reason));
  }

  let cluster: ClusterView | undefined;
  try {
    cluster = await port.readCluster();
  } catch {
    cluster = undefined; // decide from the snapshot alone
  }
  if (isPaused(snap, cluster)) return message(500, "Can't schedule restart in the paused state");
  const sr: ScheduledRestart = { schedule, ...filters };
  return port.scheduleRestart(sr) ? message(202, 'Restart scheduled') : message(409, 'Another restart is already scheduled');
}

function defaultRestartMessage(reason: 'conditions' | 'busy' | 'starting' | 'failed'): string {
  switch (reason) {
    case 'conditions':
      return 'restart conditions are not satisfied';
    case 'busy':
      return 'restart already in progress';
    case 'starting':
      return 'postgres is still starting';
    case 'failed':
      return 'restart failed';
  }
}

/** Patroni's version parser messages for `postgres_version`; undefined when acceptable. */
export function postgresVersionProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) {
    return `Invalid PostgreSQL major version format: ${JSON.stringify(v) ?? String(v)}`;
  }
  const text = String(v);
  const parts = text.trim().split('.');
  if (parts.some((p) => !/^\d+$/.test(p))) return `Invalid PostgreSQL major version format: ${text}`;
  const major = Number(parts[0]);
  if (parts.length < 2 || parts.length > 3 || (parts.length === 2 && major < 10)) {
    return `Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: ${text}`;
  }
  return undefined;
}

const SECOND_UNITS: Record<string, number> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };

/** Seconds from a number or a string with an optional unit (ms, s, min, h, d), rounded. */
export function parseSecondsValue(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const m = /^\s*([+-]?\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$/.exec(v);
    if (m === null) return undefined;
    n = Number(m[1]) * (SECOND_UNITS[m[2] ?? 's'] ?? 1);
  } else return undefined;
  return Number.isFinite(n) ? Math.round(n) : undefined;
}
