// A custom bootstrap's recovery settings (bootstrap.<method>.recovery_conf and
// keep_existing_recovery_conf), as conf.ts buildParameters writes them. Pure: no IO.

import { confValueToString, parseBool } from './conf-values.ts';

const GUC_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/**
 * What a custom bootstrap's recovery writes (Patroni's rules): the recovery_conf settings but
 * standby_mode (a signal file instead: standby.signal when on, else recovery.signal) and
 * pause_at_recovery_target (turned into recovery_target_action when that is unset); hot_standby is
 * off when keep_existing_recovery_conf is set or the recovery ends with recovery_target_action
 * promote (PostgreSQL's default is pause), so that a restored backup with larger max_connections
 * and the like can be recovered. `commandLine`: the GUCs Vigil passes on the command line (conf.ts
 * COMMAND_LINE_GUCS), which are not settable here.
 */
export function bootstrapRecoveryConf(
  b: { recoveryConf?: Record<string, unknown>; keepExisting: boolean },
  commandLine: readonly string[],
): { params: Array<[string, string]>; standby: boolean; hotStandbyOff: boolean; ignored: string[] } {
  const params = new Map<string, string>();
  const ignored: string[] = [];
  let standby = false;
  let pauseAtTarget: boolean | undefined;
  for (const [name, raw] of Object.entries(b.recoveryConf ?? {})) {
    const lname = name.toLowerCase();
    if (lname === 'standby_mode') {
      standby = parseBool(raw) === true;
      continue;
    }
    if (lname === 'pause_at_recovery_target') {
      pauseAtTarget = parseBool(raw);
      continue;
    }
    const v = confValueToString(raw);
    if (v === undefined || !GUC_NAME_RE.test(name) || (commandLine.includes(lname) && lname !== 'hot_standby')) {
      ignored.push(`bootstrap recovery_conf.${name}: ${v === undefined ? 'unsupported value type' : 'not settable'}`);
      continue;
    }
    params.set(lname, v);
  }
  if (!params.has('recovery_target_action') && pauseAtTarget !== undefined) params.set('recovery_target_action', pauseAtTarget ? 'pause' : 'promote');
  const action = (params.get('recovery_target_action') ?? 'pause').toLowerCase();
  const hotStandbyOff = b.keepExisting || (b.recoveryConf !== undefined && action === 'promote');
  params.delete('hot_standby');
  return { params: [...params.entries()], standby, hotStandbyOff, ignored };
}
