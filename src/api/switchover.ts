// POST /switchover, POST /failover and DELETE /switchover (patroni-interfaces.md 2.12): checks,
// the /failover key write, and the wait for the new leader.

import type { ClusterView, SyncState } from '../core/model.ts';
import { syncModeOf } from '../core/election.ts';
import type { OperationOptions } from './operation-common.ts';
import { checkSchedule, isPaused, nonEmpty, readCluster } from './operation-common.ts';
import type { OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { errorPage, message, readJsonBody } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';

export async function postFailover(
  req: ApiRequest,
  snap: NodeSnapshot,
  port: OperationsPort,
  opts: OperationOptions,
  requested: 'switchover' | 'failover',
): Promise<ApiResponse> {
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const r = body.value;
  for (const k of ['leader', 'candidate', 'member'] as const) {
    if (r[k] !== undefined && r[k] !== null && typeof r[k] !== 'string') return message(400, `${k} must be a member name (a string)`);
  }
  const leader = nonEmpty(r['leader']);
  const candidate = nonEmpty(r['candidate']) ?? nonEmpty(r['member']);
  const scheduledRaw = r['scheduled_at'];
  const scheduled = scheduledRaw !== undefined && scheduledRaw !== null && scheduledRaw !== '';
  let action = requested;

  if (action === 'failover' && candidate === undefined) return message(400, 'Failover could be performed only to a specific candidate');
  if (action === 'switchover' && leader === undefined) return message(400, 'Switchover could be performed only from a specific leader');
  const cluster = await readCluster(port);
  const paused = isPaused(snap, cluster);
  let scheduledAt: string | undefined;
  if (scheduled) {
    if (action === 'failover') return message(400, "Failover can't be scheduled");
    if (paused) return message(400, "Can't schedule switchover in the paused state");
    const s = checkSchedule(scheduledRaw, 'switchover', opts.now());
    if ('error' in s) return s.error;
    scheduledAt = s.iso;
  }
  if (paused && candidate === undefined) return message(400, 'Switchover is possible only to a specific candidate in a paused state');
  // A failover that names the current leader is a switchover.
  if (action === 'failover' && leader !== undefined) action = 'switchover';
  if (leader === candidate) return message(400, 'Switchover target and source are the same');

  if (scheduledAt === undefined) {
    const blocker = await failoverBlocker(cluster, snap, port, leader, candidate, action);
    if (blocker !== undefined) return message(412, blocker);
  }

  const value: Record<string, unknown> = {};
  if (leader !== undefined) value['leader'] = leader;
  if (candidate !== undefined) value['member'] = candidate;
  if (scheduledAt !== undefined) value['scheduled_at'] = scheduledAt;
  let written: boolean;
  try {
    written = await port.writeFailover(value);
  } catch {
    written = false;
  }
  if (!written) return message(503, 'failed to write failover key into DCS');
  port.wakeup();
  if (scheduledAt !== undefined) return message(202, 'Switchover scheduled');
  return pollResult(port, snap, cluster, cluster.leader?.name, candidate, action, opts);
}

/** Patroni's pre-check for an immediate request: why it cannot succeed, or undefined. */
async function failoverBlocker(
  cluster: ClusterView,
  snap: NodeSnapshot,
  port: OperationsPort,
  leader: string | undefined,
  candidate: string | undefined,
  action: 'switchover' | 'failover',
): Promise<string | undefined> {
  const lockHolder = cluster.leader?.name;
  if (leader !== undefined && lockHolder !== leader) return 'leader name does not match';
  const config = (cluster.config ?? snap.config) as NodeSnapshot['config'];
  const strictSync = syncModeOf(config) === 'on';
  let names: string[];
  if (candidate !== undefined) {
    if (action === 'switchover' && strictSync && !syncMatches(cluster.sync, candidate)) {
      return 'candidate name does not match with sync_standby';
    }
    if (!cluster.members.some((m) => m.name === candidate)) return 'candidate does not exists';
    names = [candidate];
  } else if (strictSync) {
    names = cluster.members.filter((m) => syncMatches(cluster.sync, m.name)).map((m) => m.name);
    if (names.length === 0) return `${action} is not possible: can not find sync_standby`;
  } else {
    names = cluster.members
      .filter((m) => lockHolder === undefined || (m.name !== lockHolder && typeof m.data.api_url === 'string' && m.data.api_url !== ''))
      .map((m) => m.name);
    if (names.length === 0) return `${action} is not possible: cluster does not have members except leader`;
  }
  // A good candidate: a member other than the lock holder whose GET /patroni answers, without
  // nofailover and without a failed watchdog. Checked in parallel, 2 s each (fetchPeer's deadline).
  const checks = names
    .filter((n) => n !== lockHolder)
    .map(async (name) => {
      const apiUrl = cluster.members.find((m) => m.name === name)?.data.api_url;
      if (typeof apiUrl !== 'string' || apiUrl === '') return false;
      try {
        const st = await port.fetchPeer(name, apiUrl);
        return st.reachable && !st.nofailover && !st.watchdogFailed;
      } catch {
        return false;
      }
    });
  const good = await Promise.all(checks);
  return good.some(Boolean) ? undefined : `${action} is not possible: no good candidates have been found`;
}

/** Wait for the leader to change (or the request to vanish), as spec 2.12 step 7 says. */
async function pollResult(
  port: OperationsPort,
  snap: NodeSnapshot,
  cluster: ClusterView,
  oldLeader: string | undefined,
  candidate: string | undefined,
  action: 'switchover' | 'failover',
  opts: OperationOptions,
): Promise<ApiResponse> {
  const loopWait = positiveNumber(cluster.config?.['loop_wait']) ?? positiveNumber(snap.config.loop_wait) ?? 10;
  const timeoutMs = opts.switchoverTimeoutMs ?? 2 * Math.max(10, loopWait) * 1000;
  const interval = Math.max(1, opts.pollIntervalMs ?? 1000);
  const rounds = Math.max(1, Math.ceil(timeoutMs / interval));
  const Action = action === 'switchover' ? 'Switchover' : 'Failover';
  const verb = action === 'switchover' ? 'switched over' : 'failed over';
  for (let i = 0; i < rounds; i++) {
    if (!(await sleep(interval, opts.signal))) break;
    let view: ClusterView;
    try {
      view = await port.readCluster();
    } catch {
      continue; // a DCS hiccup while waiting: try again next round
    }
    const now = view.leader?.name;
    if (now !== undefined && now !== oldLeader) {
      if (candidate === undefined || candidate === now) return message(200, `Successfully ${verb} to "${now}"`);
      return message(200, `${verb[0]?.toUpperCase()}${verb.slice(1)} to "${now}" instead of "${candidate}"`);
    }
    if (!hasRequest(view)) return message(503, `${Action} failed`);
  }
  const seconds = Math.round(timeoutMs / 1000);
  return message(503, `${Action} status unknown after ${seconds} seconds; operation may still be in progress`);
}

export async function deleteSwitchover(port: OperationsPort): Promise<ApiResponse> {
  const cluster = await readCluster(port);
  const fo = cluster.failover;
  if (fo === undefined || typeof fo.scheduled_at !== 'string' || fo.scheduled_at === '') return message(404, 'no switchover is scheduled');
  let cleared: boolean;
  try {
    cleared = await port.writeFailover({}, fo.version);
  } catch {
    return message(503, 'failed to write failover key into DCS');
  }
  return cleared ? message(200, 'scheduled switchover deleted') : errorPage(409, 'the failover key changed meanwhile');
}

function hasRequest(view: ClusterView): boolean {
  const fo = view.failover;
  return fo !== undefined && (nonEmpty(fo.leader) !== undefined || nonEmpty(fo.member) !== undefined);
}

/** The name is listed in /sync's sync_standby (case-insensitive). */
function syncMatches(sync: SyncState | undefined, name: string): boolean {
  if (sync === undefined || typeof sync.sync_standby !== 'string') return false;
  const want = name.toLowerCase();
  return sync.sync_standby.split(',').some((n) => n.trim().toLowerCase() === want);
}

function positiveNumber(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Sleep; false when aborted. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
