// Dynamic configuration (the /config key, or bootstrap.dcs before the cluster exists):
// defaults, bounds and the ttl rule (patroni-interfaces.md 4.3, patroni-behavior.md 1.1 and 15).
//
// Pure: no IO, no node: imports; src/core imports this module.
//
// Contract: effectiveDynamicConfig never throws and always returns a usable DynamicConfig, whatever
// the DCS holds (null, wrong types, garbage): bad values fall back to the default and produce a
// warning. validateDynamicConfig is the strict variant used to reject PATCH/PUT /config bodies.
//
// Vigil deviates from Patroni on purpose in one place: the minimums for the timings are lower
// (ttl >= 5, loop_wait >= 1, retry_timeout >= 1, against Patroni's 20/1/3) so that tests and demos
// can fail over quickly. Values below Patroni's minimums are accepted with a warning.
//
// Maximums (DYNAMIC_MAXIMUMS): every timing is bounded by what each DCS and the agent accept, so a
// value that passes validation cannot stop the cluster. ttl, loop_wait and retry_timeout are at most
// one day: Consul refuses session TTLs over 86400 s, etcd leases over 9e9 s, ZooKeeper clamps
// session timeouts to its server's maxSessionTimeout, and Node's timers overflow past 2^31-1 ms
// (24.8 days). The other timeouts in seconds get the same one-day bound; member_slots_ttl one year;
// synchronous_node_count PostgreSQL's max_wal_senders maximum. When the DCS holds a value outside
// the bounds (written there directly), effectiveDynamicConfig keeps the last good value it is given
// and reports an error instead of applying it.

import type { DynamicConfig } from '../core/model.ts';
import { parseBool } from '../core/values.ts';
import { nestedTooDeeply, tooDeepMessage } from './depth.ts';
import { standbyClusterProblems } from './standby-cluster.ts';

/** One problem or adjustment, addressed by a dotted path inside the dynamic configuration. */
export interface DynamicNote {
  path: string;
  message: string;
  /** The value is unusable (the last good value, or the default, is used instead). */
  error?: true;
}

export const DYNAMIC_DEFAULTS = Object.freeze({
  ttl: 30,
  loop_wait: 10,
  retry_timeout: 10,
  maximum_lag_on_failover: 1048576,
  primary_start_timeout: 300,
  primary_stop_timeout: 0,
  check_timeline: false,
  use_slots: true,
  use_pg_rewind: false,
});

/** Vigil's minimums (see the header comment). */
export const VIGIL_MINIMUMS = Object.freeze({ ttl: 5, loop_wait: 1, retry_timeout: 1 });
/** Patroni's minimums; values below them only warn. */
export const PATRONI_MINIMUMS = Object.freeze({ ttl: 20, loop_wait: 1, retry_timeout: 3 });

/** Vigil's maximums (see the header comment). */
export const DYNAMIC_MAXIMUMS: Readonly<Record<string, number>> = Object.freeze({
  ttl: 86400,
  loop_wait: 86400,
  retry_timeout: 86400,
  primary_start_timeout: 86400,
  master_start_timeout: 86400,
  primary_stop_timeout: 86400,
  master_stop_timeout: 86400,
  primary_race_backoff: 86400,
  synchronous_node_count: 262143,
  member_slots_ttl: 31536000,
});

/** PostgreSQL parameter ranges checked by Patroni's validator (patroni-interfaces.md 4.4). */
const PARAMETER_RANGES: Record<string, [number, number]> = {
  max_connections: [1, 262143],
  max_locks_per_transaction: [10, 2147483647],
  max_prepared_transactions: [0, 262143],
  max_replication_slots: [0, 262143],
  max_wal_senders: [0, 262143],
  max_worker_processes: [0, 262143],
};

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const SECRET_KEY = /password|passwd|passphrase|secret|token|auth_data|^pass$/i;
/**
 * Keys whose values are secrets (passwords, tokens, ZooKeeper auth_data, credentials): a message
 * never shows their value, only its type.
 */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}
/** user:password@ in a URL: the password is hidden. */
const URL_PASSWORD = /(\/\/[^/:@\s]*:)[^@/\s]*@/g;

/**
 * A short rendering of a value for messages: strings quoted, long values cut. Values under secret
 * keys (password, token, auth_data, ...) anywhere inside, and passwords in URLs, are hidden.
 */
export function show(v: unknown): string {
  let s: string;
  if (v instanceof Date) s = v.toISOString();
  else if (typeof v === 'string') s = JSON.stringify(v);
  else if (v === undefined) s = 'undefined';
  else {
    try {
      s = JSON.stringify(v, (k, x: unknown) => (k !== '' && SECRET_KEY.test(k) ? '(hidden)' : x)) ?? String(v);
    } catch {
      s = Array.isArray(v) ? '[...]' : typeof v === 'object' && v !== null ? '{...}' : String(v);
    }
  }
  s = s.replace(URL_PASSWORD, '$1(hidden)@');
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** An integer from a number or a numeric string; undefined when it is not one. */
function toInt(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*[-+]?\d+(\.\d+)?\s*$/.test(v)) return Math.trunc(Number(v));
  return undefined;
}

/** synchronous_mode: true/false (with Patroni's spellings) or "quorum". */
function toSyncMode(v: unknown): boolean | 'quorum' | undefined {
  if (typeof v === 'string' && v.toLowerCase() === 'quorum') return 'quorum';
  return parseBool(v);
}

/** Seconds from a number or a string with an optional unit (s, min, h, d; e.g. "30min"). */
function toSeconds(v: unknown): number | undefined {
  const n = toInt(v);
  if (n !== undefined) return n;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+)\s*(ms|s|min|h|d)\s*$/.exec(v);
  if (!m) return undefined;
  const mult: Record<string, number> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };
  return Math.floor(Number(m[1]) * (mult[m[2] as string] as number));
}

function collectProblems(raw: unknown): DynamicNote[] {
  const out: DynamicNote[] = [];
  if (raw === undefined || raw === null) return out;
  if (!isMap(raw)) return [{ path: '', message: `expected a mapping, got ${show(raw)}` }];
  if (nestedTooDeeply(raw)) return [{ path: '', message: tooDeepMessage() }];

  const intKey = (key: string, min: number, max = DYNAMIC_MAXIMUMS[key] ?? Number.MAX_SAFE_INTEGER): void => {
    const v = raw[key];
    if (v === undefined || v === null) return;
    const n = toInt(v);
    if (n === undefined) out.push({ path: key, message: `expected an integer, got ${show(v)}` });
    else if (n < min || n > max) out.push({ path: key, message: `must be between ${min} and ${max}, got ${n}` });
  };
  const boolKey = (obj: Record<string, unknown>, key: string, prefix = ''): void => {
    const v = obj[key];
    if (v === undefined || v === null) return;
    if (parseBool(v) === undefined) out.push({ path: prefix + key, message: `expected a boolean, got ${show(v)}` });
  };

  intKey('ttl', 1);
  intKey('loop_wait', 1);
  intKey('retry_timeout', 1);
  intKey('maximum_lag_on_failover', 0);
  intKey('maximum_lag_on_syncnode', -1);
  intKey('max_timelines_history', 0);
  intKey('primary_start_timeout', 0);
  intKey('master_start_timeout', 0);
  intKey('primary_stop_timeout', 0);
  intKey('master_stop_timeout', 0);
  intKey('primary_race_backoff', 0);
  intKey('synchronous_node_count', 1);
  for (const k of ['check_timeline', 'synchronous_mode_strict', 'failsafe_mode', 'pause']) boolKey(raw, k);
  // Vigil's own dynamic settings (issue 13): a mapping Patroni does not know and leaves alone.
  if (raw.vigil !== undefined && raw.vigil !== null) {
    if (!isMap(raw.vigil)) out.push({ path: 'vigil', message: `expected a mapping, got ${show(raw.vigil)}` });
    else boolKey(raw.vigil, 'fast_failover', 'vigil.');
  }
  if (raw.synchronous_mode !== undefined && raw.synchronous_mode !== null && toSyncMode(raw.synchronous_mode) === undefined) {
    out.push({ path: 'synchronous_mode', message: `expected on, off or quorum, got ${show(raw.synchronous_mode)}` });
  }
  if (raw.member_slots_ttl !== undefined && raw.member_slots_ttl !== null) {
    const s = toSeconds(raw.member_slots_ttl);
    const max = DYNAMIC_MAXIMUMS.member_slots_ttl as number;
    if (s === undefined) out.push({ path: 'member_slots_ttl', message: `expected seconds or a duration like "30min", got ${show(raw.member_slots_ttl)}` });
    else if (s < 0 || s > max) out.push({ path: 'member_slots_ttl', message: `must be between 0 and ${max} seconds, got ${s}` });
  }

  for (const key of ['slots', 'permanent_slots', 'permanent_replication_slots']) {
    const v = raw[key];
    if (v === undefined || v === null) continue;
    if (!isMap(v)) {
      out.push({ path: key, message: `expected a mapping of slot name to settings, got ${show(v)}` });
      continue;
    }
    for (const [name, slot] of Object.entries(v)) {
      if (slot === null || slot === undefined) continue;
      if (!isMap(slot)) {
        out.push({ path: `${key}.${name}`, message: `expected a mapping, got ${show(slot)}` });
        continue;
      }
      const type = slot.type ?? 'physical';
      if (type !== 'physical' && type !== 'logical') {
        out.push({ path: `${key}.${name}.type`, message: `expected physical or logical, got ${show(type)}` });
      } else if (type === 'logical' && (typeof slot.database !== 'string' || typeof slot.plugin !== 'string')) {
        out.push({ path: `${key}.${name}`, message: 'a logical slot needs database and plugin' });
      }
    }
  }
  if (raw.ignore_slots !== undefined && raw.ignore_slots !== null && !Array.isArray(raw.ignore_slots)) {
    out.push({ path: 'ignore_slots', message: `expected a list, got ${show(raw.ignore_slots)}` });
  }

  out.push(...standbyClusterProblems(raw.standby_cluster, show));

  const pg = raw.postgresql;
  if (pg !== undefined && pg !== null) {
    if (!isMap(pg)) {
      out.push({ path: 'postgresql', message: `expected a mapping, got ${show(pg)}` });
    } else {
      boolKey(pg, 'use_slots', 'postgresql.');
      boolKey(pg, 'use_pg_rewind', 'postgresql.');
      boolKey(pg, 'remove_data_directory_on_rewind_failure', 'postgresql.');
      boolKey(pg, 'remove_data_directory_on_diverged_timelines', 'postgresql.');
      for (const key of ['parameters', 'parameters_primary', 'parameters_replica', 'parameters_standby_leader']) {
        const params = pg[key];
        if (params === undefined || params === null) continue;
        if (!isMap(params)) {
          out.push({ path: `postgresql.${key}`, message: `expected a mapping of parameter to value, got ${show(params)}` });
          continue;
        }
        for (const [name, value] of Object.entries(params)) {
          if (value !== null && (isMap(value) || Array.isArray(value))) {
            out.push({ path: `postgresql.${key}.${name}`, message: `expected a scalar value, got ${isSecretKey(name) ? '(hidden)' : show(value)}` });
            continue;
          }
          const range = PARAMETER_RANGES[name];
          if (range && value !== null) {
            const n = toInt(value);
            if (n === undefined || n < range[0] || n > range[1]) {
              out.push({ path: `postgresql.${key}.${name}`, message: `must be an integer between ${range[0]} and ${range[1]}, got ${show(value)}` });
            }
          }
        }
      }
      for (const key of ['pg_hba', 'pg_hba_primary', 'pg_hba_replica', 'pg_hba_standby_leader', 'pg_ident', 'pg_ident_primary', 'pg_ident_replica', 'pg_ident_standby_leader']) {
        const lines = pg[key];
        if (lines === undefined || lines === null) continue;
        if (!Array.isArray(lines) || lines.some((l) => typeof l !== 'string')) {
          out.push({ path: `postgresql.${key}`, message: `expected a list of strings, got ${show(lines)}` });
        }
      }
      const rc = pg.recovery_conf;
      if (rc !== undefined && rc !== null) {
        if (!isMap(rc)) out.push({ path: 'postgresql.recovery_conf', message: `expected a mapping of recovery settings, got ${show(rc)}` });
        else {
          for (const [name, value] of Object.entries(rc)) {
            if (value !== null && (isMap(value) || Array.isArray(value))) {
              out.push({ path: `postgresql.recovery_conf.${name}`, message: `expected a scalar value, got ${isSecretKey(name) ? '(hidden)' : show(value)}` });
            }
          }
        }
      }
    }
  }
  return out;
}

const NOT_IMPLEMENTED = 'not implemented by Vigil yet';

/**
 * postgresql keys Patroni also takes from the dynamic configuration (when the local section does not
 * set them) and Vigil reads from the local postgresql section only.
 */
export const LOCAL_ONLY_IN_VIGIL = [
  'bin_dir', 'bin_name', 'config_base_name', 'custom_conf', 'database', 'callbacks', 'pre_promote', 'before_stop',
  'create_replica_methods', 'create_replica_method', 'basebackup', 'rewind', 'pg_ctl_timeout', 'use_unix_socket', 'use_unix_socket_repl', 'krbsrvname',
];
const localOnlyMessage = (key: string): string => `${key} in the dynamic configuration is ${NOT_IMPLEMENTED}: Vigil reads it from the local postgresql section only; set it there`;

/**
 * Keys of a dynamic configuration that Vigil does not implement yet and whose absence would change
 * what happens (a parameter, pg_hba or pg_ident line meant for one role would not be applied). They are
 * refused wherever a dynamic configuration enters: bootstrap.dcs, PATCH/PUT /config, edit-config.
 */
export function unimplementedDynamicKeys(raw: unknown): DynamicNote[] {
  const out: DynamicNote[] = [];
  if (!isMap(raw)) return out;
  const present = (obj: Record<string, unknown>, key: string): boolean => obj[key] !== undefined && obj[key] !== null;
  const pg = raw.postgresql;
  if (isMap(pg)) {
    for (const key of LOCAL_ONLY_IN_VIGIL) if (present(pg, key)) out.push({ path: `postgresql.${key}`, message: localOnlyMessage(key) });
  }
  return out;
}

/**
 * Errors in a dynamic configuration as "path: message" strings; [] when it is acceptable.
 * Keys Vigil does not implement yet (unimplementedDynamicKeys) are errors too.
 * Used to reject PATCH/PUT /config and to check bootstrap.dcs. Values below the timing minimums
 * are not errors (effectiveDynamicConfig raises them); wrong types and impossible values are.
 */
export function validateDynamicConfig(raw: unknown): string[] {
  return [...dynamicConfigProblems(raw), ...unimplementedDynamicKeys(raw)].map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`));
}

/** validateDynamicConfig with paths and messages apart (for config/load.ts). */
export function dynamicConfigProblems(raw: unknown): DynamicNote[] {
  return collectProblems(raw);
}

/**
 * The ttl rule of patroni-behavior.md 1.1: loop_wait + 2*retry_timeout <= ttl. Prefers shrinking
 * loop_wait; shrinks retry_timeout only when loop_wait is already at its minimum (1).
 */
export function enforceTtlRule(ttl: number, loopWait: number, retryTimeout: number): { loop_wait: number; retry_timeout: number } {
  if (loopWait + 2 * retryTimeout <= ttl) return { loop_wait: loopWait, retry_timeout: retryTimeout };
  if (1 + 2 * retryTimeout > ttl) return { loop_wait: 1, retry_timeout: Math.floor((ttl - 1) / 2) };
  return { loop_wait: ttl - 2 * retryTimeout, retry_timeout: retryTimeout };
}

/**
 * The effective dynamic configuration with defaults, bounds and the ttl rule applied, plus the
 * adjustments made (path and message). Unknown keys are kept verbatim. A null value counts as
 * absent (it is how a PATCH deletes a key) and gives no warning.
 *
 * `last` is the configuration in force (the agent's last good one): an unusable value (wrong type,
 * above its maximum) keeps last's value instead of the default and is noted with `error`; an
 * unusable whole (not a mapping, nested too deeply) keeps `last` entirely.
 */
export function effectiveDynamicConfigNotes(raw: Record<string, unknown> | undefined, last?: DynamicConfig): { config: DynamicConfig; notes: DynamicNote[] } {
  const notes: DynamicNote[] = [];
  let src: Record<string, unknown> = {};
  if (raw !== undefined && raw !== null) {
    const bad = !isMap(raw) ? `expected a mapping, got ${show(raw)}` : nestedTooDeeply(raw) ? tooDeepMessage() : undefined;
    if (bad !== undefined) {
      if (last !== undefined) return { config: last, notes: [{ path: '', message: `${bad}; keeping the configuration in force`, error: true }] };
      notes.push({ path: '', message: `${bad}; using the defaults`, error: true });
    } else src = raw;
  }
  const lastValue = (key: string): number | undefined => {
    const v = last?.[key === 'master_start_timeout' ? 'primary_start_timeout' : key === 'master_stop_timeout' ? 'primary_stop_timeout' : key];
    return typeof v === 'number' ? v : undefined;
  };

  const present = (v: unknown): boolean => v !== undefined && v !== null;
  const int = (key: string, def: number, min: number, v: unknown = src[key]): number => {
    if (!present(v)) return def;
    const n = toInt(v);
    const keep = lastValue(key) ?? def;
    const keepText = lastValue(key) === undefined ? `the default ${def}` : `${keep}, the value in force`;
    if (n === undefined) {
      notes.push({ path: key, message: `expected an integer, got ${show(v)}; using ${keepText}`, error: true });
      return keep;
    }
    if (n < min) {
      notes.push({ path: key, message: `${n} is below the minimum ${min}; using ${min}` });
      return min;
    }
    const max = DYNAMIC_MAXIMUMS[key];
    if (max !== undefined && n > max) {
      notes.push({ path: key, message: `${n} is above the maximum ${max}; using ${keepText}`, error: true });
      return keep;
    }
    return n;
  };
  const bool = (obj: Record<string, unknown>, key: string, def: boolean, prefix = ''): boolean => {
    const v = obj[key];
    if (!present(v)) return def;
    const b = parseBool(v);
    if (b === undefined) {
      notes.push({ path: prefix + key, message: `expected a boolean, got ${show(v)}; using the default ${def}` });
      return def;
    }
    return b;
  };

  // Timings: Vigil's minimums, warnings below Patroni's, then the ttl rule.
  const ttl = int('ttl', DYNAMIC_DEFAULTS.ttl, VIGIL_MINIMUMS.ttl);
  let loopWait = int('loop_wait', DYNAMIC_DEFAULTS.loop_wait, VIGIL_MINIMUMS.loop_wait);
  let retryTimeout = int('retry_timeout', DYNAMIC_DEFAULTS.retry_timeout, VIGIL_MINIMUMS.retry_timeout);
  for (const [key, value] of [['ttl', ttl], ['retry_timeout', retryTimeout]] as const) {
    const pmin = PATRONI_MINIMUMS[key];
    if (value < pmin) notes.push({ path: key, message: `${value} is below Patroni's documented minimum ${pmin} (accepted by Vigil; Patroni's validator may refuse it)` });
  }
  const fixed = enforceTtlRule(ttl, loopWait, retryTimeout);
  if (fixed.loop_wait !== loopWait || fixed.retry_timeout !== retryTimeout) {
    notes.push({
      path: 'loop_wait',
      message:
        `loop_wait + 2*retry_timeout must not exceed ttl (${loopWait} + 2*${retryTimeout} > ${ttl}); ` +
        `using loop_wait ${fixed.loop_wait} and retry_timeout ${fixed.retry_timeout}`,
    });
    loopWait = fixed.loop_wait;
    retryTimeout = fixed.retry_timeout;
  }

  // Legacy names: the new name wins when both are present.
  const startRaw = present(src.primary_start_timeout) ? src.primary_start_timeout : src.master_start_timeout;
  const startKey = present(src.primary_start_timeout) || !present(src.master_start_timeout) ? 'primary_start_timeout' : 'master_start_timeout';
  const stopRaw = present(src.primary_stop_timeout) ? src.primary_stop_timeout : src.master_stop_timeout;
  const stopKey = present(src.primary_stop_timeout) || !present(src.master_stop_timeout) ? 'primary_stop_timeout' : 'master_stop_timeout';

  let syncMode: boolean | 'quorum' = false;
  if (present(src.synchronous_mode)) {
    const s = toSyncMode(src.synchronous_mode);
    if (s === undefined) notes.push({ path: 'synchronous_mode', message: `expected on, off or quorum, got ${show(src.synchronous_mode)}; using off` });
    else syncMode = s;
  }

  let memberSlotsTtl = 1800;
  if (present(src.member_slots_ttl)) {
    const s = toSeconds(src.member_slots_ttl);
    const keep = lastValue('member_slots_ttl') ?? 1800;
    if (s === undefined || s < 0 || s > (DYNAMIC_MAXIMUMS.member_slots_ttl as number)) {
      notes.push({ path: 'member_slots_ttl', message: `expected seconds (0 to ${DYNAMIC_MAXIMUMS.member_slots_ttl}) or a duration like "30min", got ${show(src.member_slots_ttl)}; using ${keep}`, error: true });
      memberSlotsTtl = keep;
    } else memberSlotsTtl = s;
  }

  // postgresql subsection.
  let pgSrc: Record<string, unknown> = {};
  if (present(src.postgresql)) {
    if (isMap(src.postgresql)) pgSrc = src.postgresql;
    else notes.push({ path: 'postgresql', message: `expected a mapping, got ${show(src.postgresql)}; ignored` });
  }
  const postgresql: DynamicConfig['postgresql'] = { ...pgSrc };
  postgresql.use_slots = bool(pgSrc, 'use_slots', DYNAMIC_DEFAULTS.use_slots, 'postgresql.');
  postgresql.use_pg_rewind = bool(pgSrc, 'use_pg_rewind', DYNAMIC_DEFAULTS.use_pg_rewind, 'postgresql.');
  if (pgSrc.parameters === undefined) {
    delete postgresql.parameters;
  } else if (pgSrc.parameters !== null && !isMap(pgSrc.parameters)) {
    notes.push({ path: 'postgresql.parameters', message: `expected a mapping, got ${show(pgSrc.parameters)}; ignored` });
    postgresql.parameters = null;
  }
  for (const key of LOCAL_ONLY_IN_VIGIL) {
    if (present(pgSrc[key])) notes.push({ path: `postgresql.${key}`, message: `ignored: ${localOnlyMessage(key)}` });
  }
  for (const key of ['parameters_primary', 'parameters_replica', 'parameters_standby_leader']) {
    const v = pgSrc[key];
    if (v === undefined || v === null) delete postgresql[key];
    else if (!isMap(v)) {
      notes.push({ path: `postgresql.${key}`, message: `expected a mapping, got ${show(v)}; ignored` });
      delete postgresql[key];
    }
  }
  for (const key of ['pg_hba', 'pg_ident', 'pg_hba_primary', 'pg_hba_replica', 'pg_hba_standby_leader', 'pg_ident_primary', 'pg_ident_replica', 'pg_ident_standby_leader']) {
    const lines = pgSrc[key];
    if (lines === undefined || lines === null) {
      delete postgresql[key];
    } else if (!Array.isArray(lines) || lines.some((l) => typeof l !== 'string')) {
      notes.push({ path: `postgresql.${key}`, message: `expected a list of strings, got ${show(lines)}; ignored` });
      delete postgresql[key];
    }
  }

  const config: DynamicConfig = {
    ...src,
    ttl,
    loop_wait: loopWait,
    retry_timeout: retryTimeout,
    maximum_lag_on_failover: int('maximum_lag_on_failover', DYNAMIC_DEFAULTS.maximum_lag_on_failover, 0),
    maximum_lag_on_syncnode: int('maximum_lag_on_syncnode', -1, -1),
    max_timelines_history: int('max_timelines_history', 0, 0),
    primary_start_timeout: int(startKey, DYNAMIC_DEFAULTS.primary_start_timeout, 0, startRaw),
    primary_stop_timeout: int(stopKey, DYNAMIC_DEFAULTS.primary_stop_timeout, 0, stopRaw),
    primary_race_backoff: int('primary_race_backoff', 0, 0),
    check_timeline: bool(src, 'check_timeline', DYNAMIC_DEFAULTS.check_timeline),
    synchronous_mode: syncMode,
    synchronous_mode_strict: bool(src, 'synchronous_mode_strict', false),
    synchronous_node_count: int('synchronous_node_count', 1, 1),
    failsafe_mode: bool(src, 'failsafe_mode', false),
    member_slots_ttl: memberSlotsTtl,
    postgresql,
  };
  delete config.master_start_timeout;
  delete config.master_stop_timeout;
  if (present(src.pause)) config.pause = bool(src, 'pause', false);
  else delete config.pause;
  return { config, notes };
}

/**
 * The effective dynamic configuration (Patroni's defaults filled, Vigil's bounds and the ttl rule
 * applied) and human-readable warnings "path: message" for every adjustment. Never throws.
 */
export function effectiveDynamicConfig(raw: Record<string, unknown> | undefined, last?: DynamicConfig): { config: DynamicConfig; warnings: string[]; errors: string[] } {
  const { config, notes } = effectiveDynamicConfigNotes(raw, last);
  const text = (n: DynamicNote): string => (n.path === '' ? n.message : `${n.path}: ${n.message}`);
  return { config, warnings: notes.filter((n) => n.error !== true).map(text), errors: notes.filter((n) => n.error === true).map(text) };
}

/**
 * The dynamic configuration with the local postgresql keys that override it (Patroni: local
 * `postgresql.*` keys win over dynamic ones, except use_slots). Only use_pg_rewind is such a key
 * in Vigil today; the input is not modified.
 */
export function withLocalOverrides(config: DynamicConfig, local: { usePgRewind?: boolean }): DynamicConfig {
  if (local.usePgRewind === undefined) return config;
  return { ...config, postgresql: { ...config.postgresql, use_pg_rewind: local.usePgRewind } };
}
