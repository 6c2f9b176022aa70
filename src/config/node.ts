// The node's own sections: tags and watchdog (the log section: ./log.ts).

import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { isNoFailover } from '../core/election.ts';
import type { Tags } from '../core/model.ts';
import { show } from './dynamic.ts';
import { bool, checkKeys, describe, int, isMap, section, str, type Issues, type Obj } from './fields.ts';
import type { WatchdogSettings } from './types.ts';

const BOOL_TAGS = ['nofailover', 'noloadbalance', 'clonefrom', 'nosync', 'nostream'] as const;

export function parseTags(issues: Issues, root: Obj): Tags {
  const sec = section(issues, root, 'tags', '');
  const tags: Tags = {};
  if (sec === undefined) return tags;
  for (const [key, value] of Object.entries(sec)) {
    if (value === null || value === undefined) continue;
    if ((BOOL_TAGS as readonly string[]).includes(key)) {
      const b = bool(issues, sec, key, 'tags');
      if (b !== undefined) tags[key] = b;
    } else if (key === 'failover_priority' || key === 'sync_priority') {
      const n = int(issues, sec, key, 'tags', 0);
      if (n !== undefined) tags[key] = n;
    } else if (key === 'replicatefrom') {
      const s = str(issues, sec, key, 'tags');
      if (s !== undefined) tags.replicatefrom = s;
    } else {
      tags[key] = value instanceof Date ? value.toISOString() : value;
    }
  }
  if (tags.nostream === true) {
    issues.error('tags.nostream', 'not implemented by Vigil yet (the member would still stream from its upstream and get a slot); remove it to start');
  }
  if (tags.replicatefrom !== undefined) {
    issues.error('tags.replicatefrom', 'not implemented by Vigil yet (the upstream replica would not create the replication slot, so the member could not stream); remove it to start');
  }
  if (tags.nofailover !== undefined && tags.failover_priority !== undefined) {
    // Patroni 4.1's rule, the one the core applies (core/election.ts isNoFailover): the explicit
    // nofailover decides whether the member may be promoted; failover_priority then only ranks it.
    const p = tags.failover_priority;
    const both = 'both nofailover and failover_priority are set';
    if (isNoFailover(tags)) issues.warn('tags', `${both}: nofailover: true wins, the member is never promoted (failover_priority ${p} is ignored)`);
    else if (p <= 0) {
      issues.warn('tags', `${both} and contradict each other: nofailover: false wins, so the member MAY be promoted (as in Patroni 4.1); failover_priority ${p} only ranks it last among equally advanced candidates. Remove nofailover to keep it from being promoted, or failover_priority to make it an ordinary candidate`);
    } else issues.warn('tags', `${both}: nofailover: false wins, the member may be promoted; failover_priority ${p} only ranks it among equally advanced candidates`);
  }
  if (tags.nosync !== undefined && tags.sync_priority !== undefined) {
    issues.warn('tags', 'both nosync and sync_priority are set: nosync wins');
  }
  return tags;
}

const WATCHDOG_DEFAULTS: WatchdogSettings = { mode: 'automatic', device: '/dev/watchdog', safetyMargin: 5 };

/**
 * The watchdog section (Patroni's default when absent: automatic, /dev/watchdog, margin 5). Whether
 * the device can really be used (its timeout against ttl) is decided at run time by
 * fence/watchdog.ts planWatchdog; here `required` is an error only when the device cannot work at
 * all (missing or not writable), and an explicit `automatic` with such a device warns.
 */
export function parseWatchdog(issues: Issues, root: Obj): WatchdogSettings {
  const wd = root.watchdog;
  if (wd === undefined || wd === null) return { ...WATCHDOG_DEFAULTS };
  if (!isMap(wd)) {
    issues.error('watchdog', `expected a mapping, got ${describe(wd)}`);
    return { ...WATCHDOG_DEFAULTS, mode: 'off' };
  }
  checkKeys(issues, wd, 'watchdog', ['mode', 'device', 'safety_margin']);
  let mode: WatchdogSettings['mode'];
  const raw = wd.mode === false ? 'off' : wd.mode === undefined || wd.mode === null ? 'automatic' : String(wd.mode).toLowerCase();
  if (['off', 'false', 'disable', 'disabled'].includes(raw)) mode = 'off';
  else if (raw === 'automatic' || raw === 'auto') mode = 'automatic';
  else if (raw === 'required' || raw === 'require') mode = 'required';
  else {
    // Patroni's reading: an unrecognised mode disables the watchdog.
    issues.warn('watchdog.mode', `expected off, automatic or required, got ${describe(wd.mode)}: the watchdog is off`);
    mode = 'off';
  }
  let device = str(issues, wd, 'device', 'watchdog') ?? WATCHDOG_DEFAULTS.device;
  if (!device.startsWith('/')) {
    issues.error('watchdog.device', `expected an absolute path, got ${show(device)}`);
    device = WATCHDOG_DEFAULTS.device;
  }
  const safetyMargin = int(issues, wd, 'safety_margin', 'watchdog', -1) ?? WATCHDOG_DEFAULTS.safetyMargin;
  if (mode !== 'off' && !issues.list.some((i) => i.path === 'watchdog.device')) {
    let why: string | undefined;
    if (!existsSync(device)) why = `device ${device} does not exist`;
    else {
      try {
        accessSync(device, fsConstants.W_OK);
      } catch (err) {
        why = `device ${device} is not writable (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
      }
    }
    if (why !== undefined && mode === 'required') issues.error('watchdog.mode', `required is not supported on this host: ${why}`);
    else if (why !== undefined) issues.warn('watchdog', `${why}: the node runs without a watchdog`);
  }
  return { mode, device, safetyMargin };
}
