// The action executor: the actions of one decision, in order, each turned into port calls; it stops
// at the first failure and reports it to the next decide() (a lost compare-and-set is 'lost', a
// DCS that did not answer is 'unreachable', anything else 'error').

import type { Action, ActionFailure, Observation } from '../core/model.ts';
import { DcsError, type CallOptions } from '../dcs/dcs.ts';
import { readBudgetMs } from '../fence/deadline.ts';
import { slotName } from '../postgres/conf.ts';
import type { NodeDriver } from './driver.ts';
import { fireCallback, isRoleChange, started, stopPostgres } from './hooks.ts';
import { followRole } from './standby.ts';

/**
 * Run `actions` in order. failures: empty when all succeeded, else the one failure that stopped
 * them; attempted: how many actions ran (the failed one included).
 */
export async function execute(d: NodeDriver, actions: readonly Action[], obs: Observation): Promise<{ failures: ActionFailure[]; attempted: number }> {
  let attempted = 0;
  for (const action of actions) {
    attempted++;
    const failure = await executeOne(d, action, obs);
    if (failure !== undefined) return { failures: [failure], attempted };
  }
  return { failures: [], attempted };
}

/** One action; undefined when it succeeded. */
export async function executeOne(d: NodeDriver, action: Action, obs: Observation): Promise<ActionFailure | undefined> {
  try {
    const ok = await run(d, action, obs);
    if (ok === false) return { action: action.type, outcome: 'lost', message: `${action.type}: precondition no longer holds` };
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (action.type === 'refreshLeader' || action.type === 'acquireLeader' || action.type === 'takeLeader') d.lockRefreshedAt = undefined;
    return { action: action.type, outcome: err instanceof DcsError && err.code === 'DCS_UNAVAILABLE' ? 'unreachable' : 'error', message };
  }
}

/**
 * Options for a DCS call of a primary whose fencer is armed: give up in time for a clean demotion
 * before the fence deadline, as observe() does for the read (a refresh that hung for the whole
 * retry_timeout would otherwise let the fencer's SIGKILL win). Throws at once when no time is left.
 */
export function fenceBudget(d: NodeDriver): CallOptions | undefined {
  const { clock } = d.ports;
  const budget = readBudgetMs(d.fenceDeadline, clock.now(), d.dynamic.retry_timeout * 1000, d.dynamic.failsafe_mode === true);
  if (budget === undefined) return undefined;
  if (budget <= 0) throw new DcsError('DCS_UNAVAILABLE', 'no time left before the fence deadline for a DCS call', { retryable: false });
  return { signal: clock.timeout(budget) };
}

/** Execute one action. false: a compare-and-set precondition failed. */
async function run(d: NodeDriver, action: Action, obs: Observation): Promise<boolean | void> {
  const { dcs, pg, clock } = d.ports;
  const cluster = obs.cluster;
  switch (action.type) {
    case 'createInitialize':
      return dcs.attemptInitialize();
    case 'writeInitialize':
      return dcs.writeInitialize(action.sysid);
    case 'deleteInitialize':
      return dcs.deleteInitialize();
    case 'writeConfig':
      return dcs.writeConfig(action.config);
    case 'acquireLeader': {
      const t = clock.now();
      const ok = await dcs.acquireLeader();
      if (ok) d.tookLock(t);
      return ok;
    }
    case 'takeLeader': {
      const t = clock.now();
      await dcs.takeLeader();
      d.tookLock(t);
      return;
    }
    case 'refreshLeader': {
      const t = clock.now();
      const ok = await dcs.refreshLeader(fenceBudget(d));
      d.lockRefreshedAt = ok ? t : undefined;
      return ok;
    }
    case 'releaseLeader': {
      d.lockRefreshedAt = undefined;
      if (action.optime !== undefined) await dcs.writeStatus({ optime: action.optime });
      await dcs.releaseLeader();
      return;
    }
    case 'writeStatus':
      return dcs.writeStatus(action.status, fenceBudget(d));
    case 'writeHistory':
      return dcs.writeHistory(action.history, fenceBudget(d));
    case 'clearFailover':
      return dcs.writeFailover({}, cluster?.failover?.version, fenceBudget(d));
    case 'writeSync':
      return dcs.writeSync(
        { leader: action.leader, quorum: action.quorum, sync_standby: action.syncStandby.length > 0 ? [...action.syncStandby].sort().join(',') : null },
        action.version,
        fenceBudget(d),
      );
    case 'deleteSync':
      return dcs.deleteSync(action.version, fenceBudget(d));
    case 'writeFailsafe':
      await dcs.writeFailsafe(action.value, fenceBudget(d));
      // What we wrote is what the members will be asked if etcd goes away before the next read.
      d.failsafeTopology = action.value;
      return;
    case 'setSyncStandbyNames':
      return pg.setSyncStandbyNames(action.value);
    case 'followUpstream': {
      const res = await pg.writeConfig({ role: 'replica', upstream: d.upstreamTarget(action.upstream, cluster), ...d.pgInputs() });
      const role = followRole(d, action.upstream);
      if (res.needsRestart) {
        await stopPostgres(d, 'fast', undefined, false);
        await pg.start();
        started(d, role, true);
      } else if (res.changed) {
        await pg.reload();
        // Patroni's follow: a reload that turns a primary into a replica, or a replica into a
        // standby leader, reports the role change.
        if (isRoleChange(d, role)) fireCallback(d, 'on_role_change', role);
        else fireCallback(d, 'on_reload');
      }
      d.divergenceCache = undefined;
      return;
    }
    case 'ensureSlots':
      return pg.ensureSlots(action.members.map(slotName), { dropUnknown: action.dropUnknown });
    case 'syncSlots': {
      await pg.applySlotOps(action.ops);
      for (const op of action.ops) {
        if (op.op !== 'copyLogical') continue;
        // PostgreSQL < 17 cannot create a logical slot on a standby: the primary's slot state is
        // copied into the stopped replica, which loads it at start (src/postgres/slots.ts).
        const from = d.upstreamTarget(op.leader, cluster);
        const states = from === null ? [] : await pg.fetchLogicalSlots(from.connUrl, op.names);
        if (states.length === 0) continue;
        await stopPostgres(d, 'fast', undefined, false);
        try {
          await pg.writeLogicalSlots(states);
        } finally {
          await pg.start();
          started(d, 'replica', true);
        }
      }
      return;
    }
    case 'removeDataDir':
      return pg.removeDataDir();
    case 'cancelTask':
      return d.cancelTask();
    case 'startTask':
      return d.startTask(action.task, obs);
  }
}

/** One line per action for the log (and the simulator's transcripts). */
export function describeAction(a: Action): string {
  switch (a.type) {
    case 'followUpstream':
      return `followUpstream(${a.upstream ?? 'none'})`;
    case 'startTask': {
      const t = a.task;
      switch (t.kind) {
        case 'clone':
        case 'rewind':
        case 'reinitialize':
          return `startTask:${t.kind}(${t.from ?? 'without leader'})`;
        case 'start':
          return `startTask:start(${t.asPrimary ? 'primary' : `replica of ${t.upstream ?? 'none'}`})`;
        case 'demote':
          return `startTask:demote(${t.mode})`;
        case 'stop':
          return `startTask:stop(${t.mode}${t.releaseLeader ? ', release' : ''})`;
        default:
          return `startTask:${t.kind}`;
      }
    }
    default:
      return a.type;
  }
}
