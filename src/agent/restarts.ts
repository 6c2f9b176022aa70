// Configuration and restarts: rendering postgresql.conf for the current role (and what then needs
// a restart), restarts requested now or scheduled through the REST API and their filters, and
// reinitialize.

import { cloneSource } from '../core/decide.ts';
import type { ClusterView, Observation } from '../core/model.ts';
import type { RestartOutcome, RestartRequest } from '../api/port.ts';
import type { NodeDriver } from './driver.ts';
import { fireCallback } from './hooks.ts';
import type { WriteConfigResult } from '../postgres/controller.ts';
import { hasRoleOverrides } from '../postgres/roles.ts';

/**
 * Why a restart request does not apply to this node now; undefined: it applies. The filters are
 * Patroni's: the role, a pending restart, a running server version lower than the given one.
 */
export function restartRefusal(
  req: RestartRequest,
  facts: { inRecovery: boolean; pendingRestart: boolean; serverVersionNum: number | undefined },
): string | undefined {
  const role = facts.inRecovery ? 'replica' : 'primary';
  if (req.role !== undefined && req.role !== role) return `role ${role} does not match ${req.role}`;
  if (req.restart_pending === true && !facts.pendingRestart) return 'no restart is pending';
  if (req.postgres_version !== undefined) {
    const running = facts.serverVersionNum;
    const [maj = 0, min = 0, patch = 0] = req.postgres_version.split('.').map(Number);
    const wanted = maj >= 10 ? maj * 10000 + min : maj * 10000 + min * 100 + patch;
    if (running === undefined || running >= wanted) return `running version is not lower than ${req.postgres_version}`;
  }
  return undefined;
}

function refusalFor(d: NodeDriver, req: RestartRequest, inRecovery: boolean): string | undefined {
  return restartRefusal(req, { inRecovery, pendingRestart: d.pendingRestart !== undefined, serverVersionNum: d.lastPg?.probe?.serverVersionNum });
}

/**
 * Render postgresql.conf for the current role from the local and dynamic configuration. When
 * it changed: reload (live) and record what still needs a restart as pending_restart.
 */
export async function applyLocalConfig(d: NodeDriver, cluster: ClusterView | undefined, live: boolean): Promise<void> {
  const pg = d.lastPg;
  if (pg === undefined || pg.dataDirEmpty) return;
  const inputs = d.pgInputs();
  const local = d.config.postgresql;
  // The role is part of the key: a role change re-renders (parameters_<role>, pg_hba_<role>).
  const key = JSON.stringify([pg.inRecovery, inputs, local.parameters, local.pgHba, local.pgIdent, local.recoveryConf, local.roleOverrides, local.krbsrvname]);
  if (live && key === d.appliedParams) return;
  let upstream: { connUrl: string; name: string } | null = null;
  if (pg.inRecovery && pg.upstream !== null) {
    const m = (cluster ?? d.cluster)?.members.find((x) => x.name === pg.upstream);
    if (m?.data.conn_url === undefined) return; // the upstream is unknown right now: try later
    upstream = { connUrl: m.data.conn_url, name: m.name };
  }
  const res = await d.ports.pg.writeConfig({ role: pg.inRecovery ? 'replica' : 'primary', upstream, ...inputs });
  d.appliedParams = key;
  if (!live || !res.changed) return;
  await d.ports.pg.reload();
  fireCallback(d, 'on_reload');
  d.log.info({ restart: res.restartReasons, reload: res.reloadParams }, 'PostgreSQL configuration changed; reloaded');
  await recordPendingRestart(d, res);
}

/**
 * After a reload: what PostgreSQL still needs a restart for, as pending_restart. PostgreSQL applies
 * a reload asynchronously: while a changed postmaster-context parameter is not reported yet, asks
 * again (every 200 ms, at most 10 times).
 */
async function recordPendingRestart(d: NodeDriver, res: WriteConfigResult): Promise<void> {
  if (!res.needsRestart) return;
  // restartReasons holds parameter names and sentences about signal files.
  const waitForGuc = res.restartReasons.some((r) => !r.includes(' '));
  let pending: Record<string, { old_value: string; new_value: string }> = {};
  for (let i = 0; i < 10; i++) {
    await d.ports.clock.sleep(200);
    pending = await d.ports.pg.pendingRestart().catch(() => ({}));
    if (Object.keys(pending).length > 0 || !waitForGuc) break;
  }
  d.pendingRestart = Object.keys(pending).length > 0 ? pending : undefined;
}

/**
 * A running PostgreSQL whose configuration a role change (promotion) has just rewritten for the new
 * role: when role overrides (parameters_<role>, pg_hba_<role>, pg_ident_<role>) are configured,
 * reload so that they apply, and record what needs a restart (a postmaster-context parameter) as
 * pending_restart. Without role overrides nothing role-specific changed and nothing is done.
 * No on_reload callback: the role change fires on_role_change.
 */
export async function reloadForRole(d: NodeDriver, res: WriteConfigResult): Promise<void> {
  if (!res.changed || !hasRoleOverrides(d.config.postgresql.roleOverrides, d.pgInputs().roleOverrides)) return;
  await d.ports.pg.reload();
  d.log.info({ restart: res.restartReasons, reload: res.reloadParams }, 'PostgreSQL configuration changed for the new role; reloaded');
  await recordPendingRestart(d, res);
}

/** A scheduled restart whose time has come: run it (if its filters still match) or drop it. */
export function runDueRestart(d: NodeDriver, obs: Observation): void {
  const sr = d.scheduledRestart;
  if (sr === undefined || Date.parse(sr.schedule) > d.ports.clock.wallNow()) return;
  d.scheduledRestart = undefined;
  const refusal = refusalFor(d, sr, obs.pg.inRecovery);
  if (refusal !== undefined) {
    d.log.info({}, `scheduled restart skipped: ${refusal}`);
    return;
  }
  d.log.info({ schedule: sr.schedule }, 'running the scheduled restart');
  d.startTask({ kind: 'restart', ...(sr.timeout !== undefined ? { timeoutMs: sr.timeout * 1000 } : {}) }, obs);
}

/** POST /restart: restart now if idle and the filters match; resolves when done. */
export async function restartNow(d: NodeDriver, req: RestartRequest): Promise<RestartOutcome> {
  const pg = d.lastPg;
  const running = d.task?.state === 'running' ? d.task.kind : undefined;
  if (running !== undefined) {
    return { ok: false, reason: running === 'start' ? 'starting' : 'busy', message: running === 'start' ? 'postgres is still starting' : `${running} already in progress` };
  }
  const refusal = pg === undefined || pg.dataDirEmpty ? 'postgres has no data directory' : refusalFor(d, req, pg.inRecovery);
  if (refusal !== undefined) return { ok: false, reason: 'conditions', message: 'restart conditions are not satisfied' };
  d.startTask({ kind: 'restart', ...(req.timeout !== undefined ? { timeoutMs: req.timeout * 1000 } : {}) }, { cluster: d.cluster });
  const task = d.task;
  await task?.done;
  d.wake();
  return task?.state === 'ok' ? { ok: true } : { ok: false, reason: 'failed', message: 'restart failed' };
}

/** POST /reinitialize: wipe and re-clone from the leader (or the best clone source); refused on the leader. */
export async function reinitializeNow(d: NodeDriver, opts: { force: boolean; fromLeader: boolean }): Promise<{ ok: true } | { ok: false; message: string }> {
  const cluster = await d.ports.dcs.readCluster();
  const leader = cluster.leader?.name;
  const me = d.config.name;
  if (leader === undefined) return { ok: false, message: 'Cluster has no leader, can not reinitialize' };
  if (leader === me) return { ok: false, message: 'I am the leader, can not reinitialize' };
  if (d.task?.state === 'running') {
    if (!opts.force) return { ok: false, message: `${d.task.kind} already in progress` };
    await d.cancelTask();
  }
  const from = opts.fromLeader ? leader : (cloneSource(cluster, me, leader) ?? leader);
  d.startTask({ kind: 'reinitialize', from }, { cluster });
  d.wake();
  return { ok: true };
}
