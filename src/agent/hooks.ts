// The user's scripts around PostgreSQL operations, when and with what arguments Patroni runs them
// (patroni-behavior.md 12.3, 7, 10.5; docs/hooks.md):
// - callbacks (postgresql.callbacks): `<command...> <action> <role> <scope>`, in the background
//   through the hooks port; a newer one kills the one still running (on_reload has a slot of its
//   own). The role is the one PostgreSQL runs (or last ran) as. None fires inside a bootstrap (the
//   bootstrap task fires on_start once it is done).
// - pre_promote: inside the promote task, before pg_ctl promote; it must exit 0 for the promotion
//   to go on. A failure cancels the promotion, releases the lock and keeps this node out of leader
//   races for ttl.
// - before_stop: before PostgreSQL is stopped (when it runs); its exit code is ignored.
// Nothing here decides anything about the cluster: the task scripts (./tasks.ts) and the driver
// call these at the PostgreSQL operations.

import type { CallbackAction } from '../config/types.ts';
import { syncModeOf } from '../core/election.ts';
import type { LocalPg } from '../core/model.ts';
import type { NodeDriver } from './driver.ts';

/** The role argument of a callback (Patroni reports its internal `promoted` as primary). */
export type CallbackRole = 'primary' | 'replica' | 'standby_leader' | 'demoted' | 'uninitialized';

/** What the driver remembers for the scripts. */
export interface HookState {
  /**
   * An on_start, on_stop, on_restart or on_role_change happened since the agent started, whether a
   * script is configured for it or not (Patroni's cb_called): until then a start is an on_start,
   * never a role change.
   */
  called: boolean;
  /** The role PostgreSQL runs (or last ran) as; undefined until the first observation. */
  role: CallbackRole | undefined;
  /** When (clock.now()) a failed pre_promote gave the lock up: this node does not race for ttl after it. */
  prePromoteFailedAt: number | undefined;
}

export function newHookState(): HookState {
  return { called: false, role: undefined, prePromoteFailedAt: undefined };
}

/** The role as far as the data directory tells, before this agent has started or seen PostgreSQL. */
export function roleFromPg(pg: LocalPg): CallbackRole {
  if (pg.dataDirEmpty) return 'uninitialized';
  if (pg.running) return pg.inRecovery ? 'replica' : 'primary';
  return /recovery/.test(pg.controlState ?? '') ? 'replica' : 'primary';
}

/** Fire `action` in the background (when a command is configured) with `role` (default: the current one). */
export function fireCallback(d: NodeDriver, action: CallbackAction, role?: CallbackRole): void {
  if (role !== undefined) d.hookState.role = role;
  if (action !== 'on_reload') d.hookState.called = true;
  const cmd = d.config.postgresql.callbacks?.[action];
  if (cmd === undefined) return;
  const argv = [...cmd, action, d.hookState.role ?? 'uninitialized', d.config.scope];
  void d.ports.hooks.spawn(action === 'on_reload' ? 'reload' : 'callback', argv, action);
}

/**
 * Is going from `prev` to `next` a role change that on_role_change reports instead of on_start or
 * on_restart? Patroni's rule: a callback already happened since the agent started, and PostgreSQL
 * was a primary (or a demoted one), or it moves between replica and standby_leader.
 */
export function isRoleChange(d: NodeDriver, next: CallbackRole): boolean {
  const prev = d.hookState.role;
  if (!d.hookState.called || prev === undefined || prev === next) return false;
  return prev === 'primary' || prev === 'demoted' || (prev === 'replica' && next === 'standby_leader') || (prev === 'standby_leader' && next === 'replica');
}

/** PostgreSQL accepts connections after a start (`restart`: after a restart) as `role`: the matching callback. */
export function started(d: NodeDriver, role: CallbackRole, restart = false): void {
  if (isRoleChange(d, role)) fireCallback(d, 'on_role_change', role);
  else fireCallback(d, restart ? 'on_restart' : 'on_start', role);
}

/** How long pre_promote and before_stop may run before they are killed: pg_ctl_timeout. */
export function scriptTimeoutMs(d: NodeDriver): number {
  return d.config.postgresql.pgCtlTimeout * 1000;
}

/**
 * pre_promote, when configured: undefined when it exited 0 (or is not configured), else why the
 * promotion must not happen (a non-zero exit, killed at the deadline or by `signal`).
 */
export async function runPrePromote(d: NodeDriver, signal: AbortSignal): Promise<string | undefined> {
  const cmd = d.config.postgresql.prePromote;
  if (cmd === undefined) return undefined;
  const res = await d.ports.hooks.run(cmd, 'pre_promote', { timeoutMs: scriptTimeoutMs(d), signal });
  if (res.code === 0) return undefined;
  return res.code !== null ? `the pre_promote script exited with code ${res.code}` : `the pre_promote script did not finish (${res.why ?? 'unknown'})`;
}

/** Is this node still backing off after a failed pre_promote (ttl seconds)? */
export function prePromoteBackoff(d: NodeDriver): boolean {
  const at = d.hookState.prePromoteFailedAt;
  return at !== undefined && d.ports.clock.now() - at < d.dynamic.ttl * 1000;
}

/**
 * The stop timeout of a demotion or the agent's shutdown (Patroni's rule): primary_stop_timeout
 * seconds when it is above 0 and synchronous mode is on; undefined otherwise (the caller's default).
 * When it runs out the stop goes on with SIGQUIT, then SIGKILL.
 */
export function primaryStopTimeoutMs(dynamic: Record<string, unknown>): number | undefined {
  const t = dynamic['primary_stop_timeout'];
  return typeof t === 'number' && t > 0 && syncModeOf(dynamic) !== 'off' ? t * 1000 : undefined;
}

/**
 * Stop PostgreSQL as every stop does: before_stop first (when PostgreSQL runs), then the stop,
 * then on_stop (when it ran and `onStop`; a restart does not report one). `running`: whether
 * PostgreSQL runs, when the caller knows; else it is asked when a script depends on it.
 */
export async function stopPostgres(
  d: NodeDriver,
  mode: 'smart' | 'fast' | 'immediate',
  opts: { timeoutMs?: number; checkpoint?: boolean } | undefined,
  onStop: boolean,
): Promise<void> {
  const { pg, hooks } = d.ports;
  const before = d.config.postgresql.beforeStop;
  const watched = before !== undefined || (onStop && d.config.postgresql.callbacks?.on_stop !== undefined);
  const running = watched ? (await pg.isRunning()).running : d.lastPg?.running === true;
  if (running && before !== undefined) await hooks.run(before, 'before_stop', { timeoutMs: scriptTimeoutMs(d) });
  if (opts === undefined) await pg.stop(mode);
  else await pg.stop(mode, opts);
  if (running && onStop) fireCallback(d, 'on_stop');
}
