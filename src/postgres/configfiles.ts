// The configuration files of the local node and what a change of them needs: postgresql.conf
// (rendered by conf.ts, including the recovery settings of a replica and the managed
// synchronous_standby_names), standby.signal, the pgpass file of primary_conninfo, and the GUCs
// passed on the postmaster's command line.
//
//   <conf>/<base>.conf               generated (includes <base>.base.conf)
//   <conf>/<base>.base.conf          initdb's postgresql.conf, renamed on the first write (included
//                                    unless postgresql.custom_conf names another file)
//   <data_dir>/standby.signal        present iff the node is configured as a replica
//   <conf>/pg_hba.conf               the effective pg_hba lines (then Vigil's loopback defaults), when configured
//   <conf>/pg_ident.conf             the effective pg_ident lines, when configured
//   <conf>/pg_hba.conf.vigil-base    (and pg_ident.conf.vigil-base) the file as it was before a
//                                    role's list (pg_hba_<role>) first replaced it; restored for a
//                                    role without a list when no base list is configured
//
// <conf> is postgresql.config_dir (default: the data directory), <base> postgresql.config_base_name
// (default: postgresql). With a config_dir outside the data directory, as in Patroni, the generated
// file sets hba_file and ident_file to <conf>/pg_hba.conf and <conf>/pg_ident.conf (unless
// postgresql.parameters sets them); the first write copies initdb's postgresql.conf, pg_hba.conf
// and pg_ident.conf from the data directory when <conf> has none (a Debian-style directory that
// already holds them keeps its own).
//   settings.pgpass                  the upstream's replication credentials (primary_conninfo passfile)

import { existsSync } from 'node:fs';
import { readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildParameters, COMMAND_LINE_GUCS, diffParams, isGeneratedConf, parseConf, renderPostgresqlConf, type Upstream } from './conf.ts';
import { renderPgHba, renderPgpass } from './conninfo.ts';
import { CONTROL_MINIMUMS } from './controldata.ts';
import { PgControlError } from './errors.ts';
import { mkdirOwned, type PgNode } from './node.ts';
import { configRole, roleAuthLists, roleParameters, type RoleOverridesByRole } from './roles.ts';
import { withClient } from './probe.ts';
import type { SyncStandby } from './sync.ts';

export interface WriteConfigResult {
  /** Some file changed (postgresql.conf, standby.signal or pgpass). */
  changed: boolean;
  /** A running PostgreSQL must restart to apply it (else a reload is enough). */
  needsRestart: boolean;
  restartReasons: string[];
  reloadParams: string[];
  /** Parameters that were dropped and why. */
  ignored: string[];
}

export interface WriteConfigOptions {
  role: 'primary' | 'replica';
  upstream?: Upstream | null;
  parameters?: Record<string, unknown> | null;
  /** The dynamic configuration's postgresql.pg_hba (used when the local section sets none). */
  pgHba?: string[] | null;
  /** The dynamic configuration's postgresql.pg_ident (used when the local section sets none). */
  pgIdent?: string[] | null;
  /** The dynamic configuration's postgresql.use_slots (default: the settings' value). */
  useSlots?: boolean;
  /** The dynamic configuration's postgresql.recovery_conf (used when the local section sets none). */
  recoveryConf?: Record<string, unknown> | null;
  /** The dynamic configuration's parameters_<role>, pg_hba_<role>, pg_ident_<role> (roles.ts dynamicRoleOverrides). */
  roleOverrides?: RoleOverridesByRole | null;
  /** The node leads a standby cluster (role replica): the standby_leader overrides apply instead of the replica ones. */
  standbyLeader?: boolean;
  /**
   * Right after a custom bootstrap's script (role primary): its recovery_conf and
   * keep_existing_recovery_conf (bootstrap-recovery.ts). With recovery_conf, recovery.signal
   * (or standby.signal) is written; with keep_existing_recovery_conf alone the signal files the
   * script left are kept.
   */
  bootstrapRecovery?: { recoveryConf?: Record<string, unknown>; keepExisting: boolean };
  /** Force hot_standby_feedback on (core/slots.ts enforceHotStandbyFeedback). */
  hotStandbyFeedback?: boolean;
}

/**
 * The pg_hba and pg_ident lines to write, Patroni's precedence: the role's list (`role`) when there
 * is one, else the local postgresql section's list when it has one (non-empty), else the dynamic
 * configuration's; undefined: leave the file
 * as it is (initdb's, or what bootstrap wrote). Nothing is written for a file that
 * postgresql.parameters relocates (hba_file / ident_file).
 */
export function effectiveAuthFiles(
  local: { pgHba: string[]; pgIdent?: string[] },
  dynamic: { pgHba?: string[] | null; pgIdent?: string[] | null },
  params: ReadonlyMap<string, string> | Record<string, string>,
  role: { pgHba?: string[]; pgIdent?: string[] } = {},
): { pgHba?: string[]; pgIdent?: string[] } {
  const has = (k: string): boolean => (params instanceof Map ? params.get(k) : (params as Record<string, string>)[k]) !== undefined;
  const pick = (l: string[] | undefined, d: string[] | null | undefined): string[] | undefined =>
    l !== undefined && l.length > 0 ? l : d !== undefined && d !== null && d.length > 0 ? d : undefined;
  const out: { pgHba?: string[]; pgIdent?: string[] } = {};
  // The current role's pg_hba_<role> / pg_ident_<role> (roles.ts roleAuthLists) replace the base lists.
  const hba = has('hba_file') ? undefined : (role.pgHba ?? pick(local.pgHba, dynamic.pgHba));
  const ident = has('ident_file') ? undefined : (role.pgIdent ?? pick(local.pgIdent, dynamic.pgIdent));
  if (hba !== undefined) out.pgHba = hba;
  if (ident !== undefined) out.pgIdent = ident;
  return out;
}

/** pg_ident.conf for the given lines. */
export function renderPgIdent(lines: string[]): string {
  return ['# pg_ident.conf written by Vigil.', '# MAPNAME  SYSTEM-USERNAME  PG-USERNAME', ...lines.map((l) => l.replace(/\n/g, ' '))].join('\n') + '\n';
}

export class ConfigFiles {
  constructor(
    private readonly node: PgNode,
    private readonly sync: SyncStandby,
  ) {}

  /**
   * Renders postgresql.conf, standby.signal and the pgpass file for the given role. The first call
   * on a data directory renames initdb's postgresql.conf to postgresql.base.conf, which the
   * generated file includes. Returns what changed and whether a running PostgreSQL must restart.
   */
  async write(opts: WriteConfigOptions): Promise<WriteConfigResult> {
    return this.node.serialized(() => this.writeLocked(opts));
  }

  private async writeLocked(opts: WriteConfigOptions): Promise<WriteConfigResult> {
    const override = await this.sync.override();
    if (await this.node.dataDirEmpty()) throw new PgControlError('PG_DATA_DIR', `cannot write configuration: ${this.node.dataDir} is not initialised`);
    const role = configRole(opts.role, opts.standbyLeader === true);
    const roleParams = roleParameters(this.node.settings.roleOverrides, opts.roleOverrides, role);
    const built = buildParameters({
      settings: this.node.settings,
      ...(Object.keys(roleParams).length > 0 ? { roleParameters: roleParams } : {}),
      ...(this.node.settings.krbsrvname !== undefined ? { krbsrvname: this.node.settings.krbsrvname } : {}),
      ...(opts.bootstrapRecovery !== undefined ? { bootstrapRecovery: opts.bootstrapRecovery } : {}),
      memberName: this.node.name,
      ...(this.node.scope !== undefined ? { scope: this.node.scope } : {}),
      role: opts.role,
      upstream: opts.upstream ?? null,
      dynamic: opts.parameters ?? null,
      ...(this.node.nostream ? { nostream: true } : {}),
      ...(opts.useSlots !== undefined ? { useSlots: opts.useSlots } : {}),
      ...(opts.recoveryConf !== undefined && opts.recoveryConf !== null ? { dynamicRecoveryConf: opts.recoveryConf } : {}),
      ...(opts.hotStandbyFeedback === true ? { hotStandbyFeedback: true } : {}),
    });
    for (const msg of built.ignored) this.node.log.warn(`parameter ignored: ${msg}`);

    const userParams = new Map(built.conf);
    const roleLists = roleAuthLists(this.node.settings.roleOverrides, opts.roleOverrides, role);
    const files = effectiveAuthFiles(this.node.settings, { pgHba: opts.pgHba ?? null, pgIdent: opts.pgIdent ?? null }, userParams, roleLists);
    const confDir = this.node.confDir;
    const separate = confDir !== this.node.dataDir;
    if (separate || this.node.confBaseName !== 'postgresql') await this.prepareConfDir(built.conf, separate);

    const confPath = this.node.confPath;
    const baseName = `${this.node.confBaseName}.base.conf`;
    const basePath = join(confDir, baseName);
    const existing = existsSync(confPath) ? await readFile(confPath, 'utf8') : undefined;
    if (!existsSync(basePath) && existing !== undefined && !isGeneratedConf(existing)) {
      await rename(confPath, basePath);
    }
    const text = renderPostgresqlConf({
      conf: built.conf,
      includeBase: existsSync(basePath),
      baseName,
      ...(this.node.settings.customConf !== undefined ? { customConf: this.node.settings.customConf } : {}),
      upstreamName: built.upstreamName,
      syncOverride: override,
    });
    const before = existing !== undefined && isGeneratedConf(existing) ? parseConf(existing).params : {};
    const after = Object.fromEntries(built.conf);
    if (override !== null) after.synchronous_standby_names = override;
    const diff = diffParams(before, after);
    let changed = false;
    const restartReasons = [...diff.restart];
    if (text !== existing) {
      await this.node.writeOwned(confPath, text, 0o600);
      changed = true;
    }

    const signalPath = this.node.signalPath;
    const hasSignal = existsSync(signalPath);
    const br = opts.bootstrapRecovery;
    if (br !== undefined && br.recoveryConf !== undefined && !built.standby) {
      // A custom bootstrap's recovery to a target: recovery.signal (PostgreSQL removes it when it promotes).
      const recoverySignal = join(this.node.dataDir, 'recovery.signal');
      if (!existsSync(recoverySignal)) {
        await this.node.writeOwned(recoverySignal, '', 0o600);
        changed = true;
      }
    }
    if (br !== undefined && br.recoveryConf === undefined && br.keepExisting) {
      // keep_existing_recovery_conf: the signal files stay as the script left them.
    } else if (built.standby && !hasSignal) {
      await this.node.writeOwned(signalPath, '', 0o600);
      restartReasons.push('standby.signal created');
      changed = true;
    } else if (!built.standby && hasSignal) {
      await unlink(signalPath);
      restartReasons.push('standby.signal removed');
      changed = true;
    }

    // pg_hba.conf / pg_ident.conf: a change needs only a reload. Before a role's list first replaces
    // a file that no configured list wrote (initdb's or bootstrap.pg_hba's), the file is kept as
    // <file>.vigil-base; a role without a list, where no base list is configured either, gets it back.
    const auth = this.node.settings.authentication;
    const authFiles: Array<[string, string | undefined, boolean, boolean]> = [
      [
        'pg_hba.conf',
        files.pgHba !== undefined
          ? renderPgHba({ lines: files.pgHba, superuser: auth.superuser, replication: auth.replication, ...(auth.rewind !== undefined ? { rewind: auth.rewind } : {}) })
          : undefined,
        roleLists.pgHba !== undefined,
        userParams.has('hba_file'),
      ],
      ['pg_ident.conf', files.pgIdent !== undefined ? renderPgIdent(files.pgIdent) : undefined, roleLists.pgIdent !== undefined, userParams.has('ident_file')],
    ];
    for (const [file, rendered, fromRole, relocated] of authFiles) {
      if (relocated) continue;
      const path = join(confDir, file);
      const basePath = `${path}.vigil-base`;
      const read = async (p: string): Promise<string | undefined> => (existsSync(p) ? await readFile(p, 'utf8').catch(() => undefined) : undefined);
      const old = await read(path);
      let wanted = rendered;
      if (wanted === undefined) wanted = await read(basePath);
      else if (fromRole && old !== undefined && old !== wanted && !existsSync(basePath)) await this.node.writeOwned(basePath, old, 0o600);
      if (wanted === undefined || old === wanted) continue;
      await this.node.writeOwned(path, wanted, 0o600);
      changed = true;
    }

    const pgpassText = renderPgpass(built.pgpass !== undefined ? [built.pgpass] : []);
    const oldPgpass = existsSync(this.node.settings.pgpass) ? await readFile(this.node.settings.pgpass, 'utf8').catch(() => undefined) : undefined;
    if (pgpassText !== oldPgpass && (built.pgpass !== undefined || oldPgpass !== undefined)) {
      await mkdirOwned(dirname(this.node.settings.pgpass));
      await this.node.writeOwned(this.node.settings.pgpass, pgpassText, 0o600);
      changed = true;
    }
    return { changed, needsRestart: restartReasons.length > 0, restartReasons, reloadParams: diff.reload, ignored: built.ignored };
  }

  /** The member we are configured to follow (from the generated postgresql.conf), null if none. */
  /**
   * A config_dir outside the data directory or another config_base_name: copies initdb's
   * postgresql.conf from the data directory as <base>.conf when the config directory has neither
   * it nor <base>.base.conf (it then becomes the base file). Outside the data directory also
   * creates the directory, copies pg_hba.conf and pg_ident.conf it lacks, and points hba_file and
   * ident_file at it (unless postgresql.parameters sets them).
   */
  private async prepareConfDir(conf: Array<[string, string]>, separate: boolean): Promise<void> {
    const confDir = this.node.confDir;
    if (separate) await mkdirOwned(confDir);
    const copies: Array<[string, string]> = separate ? [['pg_hba.conf', 'pg_hba.conf'], ['pg_ident.conf', 'pg_ident.conf']] : [];
    if (!existsSync(this.node.confPath) && !existsSync(join(confDir, `${this.node.confBaseName}.base.conf`))) {
      copies.push(['postgresql.conf', `${this.node.confBaseName}.conf`]);
    }
    for (const [from, to] of copies) {
      const target = join(confDir, to);
      if (existsSync(target)) continue;
      const text = await readFile(join(this.node.dataDir, from), 'utf8').catch(() => undefined);
      if (text !== undefined && !isGeneratedConf(text)) await this.node.writeOwned(target, text, 0o600);
    }
    if (!separate) return;
    for (const [k, f] of [['hba_file', 'pg_hba.conf'], ['ident_file', 'pg_ident.conf']] as const) {
      if (!conf.some(([name]) => name === k)) conf.push([k, join(confDir, f)]);
    }
  }

  async upstream(): Promise<string | null> {
    try {
      const text = await readFile(this.node.confPath, 'utf8');
      return isGeneratedConf(text) ? (parseConf(text).upstreamName ?? null) : null;
    } catch {
      return null;
    }
  }

  /** Command-line GUCs: from the generated postgresql.conf, raised to pg_control's minimums. */
  async commandLine(): Promise<Record<string, string>> {
    let params: Record<string, string> = {};
    try {
      const text = await readFile(this.node.confPath, 'utf8');
      if (isGeneratedConf(text)) params = parseConf(text).params;
    } catch {
      // fall back to the defaults below
    }
    const fallback = buildParameters({ settings: this.node.settings, memberName: this.node.name, role: 'primary' }).commandLine;
    const out: Record<string, string> = {};
    for (const name of COMMAND_LINE_GUCS) {
      const v = params[name] ?? fallback[name];
      if (v !== undefined) out[name] = v;
    }
    try {
      const cd = await this.node.controlData();
      for (const [guc, key] of Object.entries(CONTROL_MINIMUMS)) {
        const min = Number(cd[key]);
        if (Number.isInteger(min) && out[guc] !== undefined && Number(out[guc]) < min) {
          this.node.log.warn(`${guc} raised from ${out[guc]} to ${min}: pg_control requires it`);
          out[guc] = String(min);
        }
      }
    } catch (e) {
      this.node.log.warn(`pg_controldata failed before start: ${(e as Error).message}`);
    }
    return out;
  }

  /**
   * Parameters PostgreSQL reports as pending a restart (pg_settings.pending_restart), with the
   * running value and the value the generated postgresql.conf asks for.
   */
  async pendingRestart(opts: { timeoutMs?: number } = {}): Promise<Record<string, { old_value: string; new_value: string }>> {
    const rows = await withClient(
      this.node.localConn(),
      opts.timeoutMs ?? 3000,
      async (c) => (await c.query<{ name: string; setting: string; unit: string | null }>('SELECT name, setting, unit FROM pg_settings WHERE pending_restart')).rows,
      'pending_restart',
    );
    let wanted: Record<string, string> = {};
    try {
      wanted = parseConf(await readFile(this.node.confPath, 'utf8')).params;
    } catch {
      // no generated file: new values unknown
    }
    const out: Record<string, { old_value: string; new_value: string }> = {};
    for (const r of rows) out[r.name] = { old_value: r.unit ? `${r.setting}${r.unit}` : r.setting, new_value: wanted[r.name] ?? '' };
    return out;
  }

}
