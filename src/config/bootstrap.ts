// The bootstrap section (dcs, initdb, pg_hba, users).

import { dynamicConfigProblems, effectiveDynamicConfigNotes, show, unimplementedDynamicKeys } from './dynamic.ts';
import { checkKeys, describe, isMap, section, str, stringList, sub, type Issues, type Obj } from './fields.ts';
import { command } from './hooks.ts';
import { renderOptions } from './options.ts';
import type { BootstrapSettings } from './types.ts';

const DCS_LOCAL_ONLY = ['connect_address', 'proxy_address', 'listen', 'config_dir', 'data_dir', 'pgpass', 'authentication'];

function parseBootstrapDcs(issues: Issues, boot: Obj): Obj {
  const path = 'bootstrap.dcs';
  const dcs = section(issues, boot, 'dcs', 'bootstrap');
  if (dcs === undefined) return {};
  const problems = dynamicConfigProblems(dcs);
  for (const p of problems) issues.error(p.path === '' ? path : sub(path, p.path), p.message);
  for (const u of unimplementedDynamicKeys(dcs)) issues.error(sub(path, u.path), u.message);
  if (isMap(dcs.postgresql)) {
    for (const k of DCS_LOCAL_ONLY) {
      if (k in dcs.postgresql) issues.warn(sub(path, `postgresql.${k}`), 'not allowed in the dynamic configuration (ignored); set it in the local postgresql section');
    }
  }
  const out: Obj = { ...dcs };
  if (problems.length > 0) return out;
  const { config, notes } = effectiveDynamicConfigNotes(dcs);
  for (const n of notes) issues.warn(n.path === '' ? path : sub(path, n.path), n.message);
  const timings = ['ttl', 'loop_wait', 'retry_timeout'] as const;
  const adjusted = timings.some((k) => dcs[k] !== undefined && dcs[k] !== null && Number(dcs[k]) !== config[k])
    || notes.some((n) => n.path === 'loop_wait' && n.message.includes('must not exceed ttl'));
  if (adjusted) for (const k of timings) out[k] = config[k];
  return out;
}

export function parseBootstrap(issues: Issues, root: Obj): BootstrapSettings | undefined {
  if (root.bootstrap === undefined || root.bootstrap === null) return undefined;
  const boot = section(issues, root, 'bootstrap', '');
  if (boot === undefined) return undefined;
  const path = 'bootstrap';
  const method = str(issues, boot, 'method', path) ?? 'initdb';
  const custom = method !== 'initdb' ? parseCustomMethod(issues, boot, method, path) : undefined;
  checkKeys(issues, boot, path, ['dcs', 'method', 'initdb', 'pg_hba', 'users', 'post_bootstrap', 'post_init', ...(method !== 'initdb' ? [method] : [])]);
  const postBootstrap = parsePostBootstrap(issues, boot, path);
  const dcs = parseBootstrapDcs(issues, boot);
  const initdb = renderOptions(issues, boot, 'initdb', path, 'initdb');
  const pgHba = stringList(issues, boot, 'pg_hba', path) ?? [];
  const users: BootstrapSettings['users'] = {};
  const usersSec = section(issues, boot, 'users', path);
  if (usersSec !== undefined) {
    for (const [user, spec] of Object.entries(usersSec)) {
      const up = sub(sub(path, 'users'), user);
      if (!isMap(spec)) {
        issues.error(up, `expected a mapping with password and options, got ${describe(spec, true)}`);
        continue;
      }
      checkKeys(issues, spec, up, ['password', 'options']);
      const password = str(issues, spec, 'password', up, true);
      const options = typeof spec.options === 'string'
        ? spec.options.split(',').map((s) => s.trim()).filter((s) => s !== '')
        : (stringList(issues, spec, 'options', up) ?? []);
      if (password !== undefined) users[user] = { password, options };
    }
  }
  return { dcs, initdb, pgHba, users, ...(postBootstrap !== undefined ? { postBootstrap } : {}), ...(custom !== undefined ? { custom } : {}) };
}

/**
 * post_bootstrap, else post_init (Patroni takes the first one set): a command run once after the
 * new cluster is up, with the local superuser's connection string appended as its last argument.
 */
function parsePostBootstrap(issues: Issues, boot: Obj, path: string): string[] | undefined {
  const key = boot.post_bootstrap !== undefined && boot.post_bootstrap !== null && boot.post_bootstrap !== '' ? 'post_bootstrap' : 'post_init';
  const value = boot[key];
  if (value === undefined || value === null || value === '') return undefined;
  return command(issues, value, sub(path, key));
}

const FLAG_TRUE = new Set([true, 1, 'true', 'yes', 'on', '1', 'True']);

/**
 * bootstrap.<method> of a custom bootstrap: command (required: without one Patroni runs initdb,
 * which is said with a warning), no_params, keep_existing_recovery_conf, recovery_conf.
 */
function parseCustomMethod(issues: Issues, boot: Obj, method: string, path: string): BootstrapSettings['custom'] {
  const mp = sub(path, method);
  const sec = boot[method];
  if (!isMap(sec) || sec.command === undefined || sec.command === null) {
    issues.warn(sub(path, 'method'), `${show(method)} has no ${mp}.command: initdb bootstraps the cluster (as in Patroni)`);
    return undefined;
  }
  checkKeys(issues, sec, mp, ['command', 'no_params', 'keep_existing_recovery_conf', 'recovery_conf']);
  const recoveryConf = parseBootstrapRecoveryConf(issues, sec, mp);
  const argv = command(issues, sec.command, sub(mp, 'command'));
  if (argv === undefined) return undefined;
  return {
    name: method,
    command: argv,
    noParams: FLAG_TRUE.has(sec.no_params as never),
    keepExistingRecoveryConf: FLAG_TRUE.has(sec.keep_existing_recovery_conf as never),
    ...(recoveryConf !== undefined ? { recoveryConf } : {}),
  };
}

/**
 * bootstrap.<method>.recovery_conf: recovery settings for the restored cluster (restore_command,
 * recovery_target*, recovery_target_action, standby_mode, ...), every one written as given (no
 * setting is reserved here, unlike postgresql.recovery_conf). An empty mapping still counts as
 * given (recovery.signal is written), as in Patroni.
 */
function parseBootstrapRecoveryConf(issues: Issues, sec: Obj, mp: string): Record<string, string | number | boolean> | undefined {
  if (sec.recovery_conf === undefined || sec.recovery_conf === null) return undefined;
  const rc = section(issues, sec, 'recovery_conf', mp);
  if (rc === undefined) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(rc)) {
    const p = sub(sub(mp, 'recovery_conf'), name);
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      issues.error(p, `expected a string, number or boolean, got ${describe(value, name)}`);
    } else if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) {
      issues.error(p, 'invalid parameter name');
    } else out[name] = value;
  }
  return out;
}
