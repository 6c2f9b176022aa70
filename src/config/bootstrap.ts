// The bootstrap section (dcs, initdb, pg_hba, users).

import { dynamicConfigProblems, effectiveDynamicConfigNotes, show, unimplementedDynamicKeys } from './dynamic.ts';
import { checkKeys, describe, isMap, refused, section, str, stringList, sub, type Issues, type Obj } from './fields.ts';
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
  if (method !== 'initdb') issues.error(sub(path, 'method'), `only initdb is supported by Vigil, got ${show(method)}`);
  checkKeys(issues, boot, path, ['dcs', 'method', 'initdb', 'pg_hba', 'users', ...(method !== 'initdb' ? [method] : [])], {
    post_bootstrap: refused('the script would not run after the cluster is initialized'),
    post_init: refused('the script would not run after the cluster is initialized'),
  });
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
  return { dcs, initdb, pgHba, users };
}
