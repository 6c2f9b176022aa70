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
}

/**
 * The pg_hba and pg_ident lines to write, Patroni's precedence: the local postgresql section's
 * list when it has one (non-empty), else the dynamic configuration's; undefined: leave the file
 * as it is (initdb's, or what bootstrap wrote). Nothing is written for a file that
 * postgresql.parameters relocates (hba_file / ident_file).
 */
export function effectiveAuthFiles(
  local: { pgHba: string[]; pgIdent?: string[] },
  dynamic: { pgHba?: string[] | null; pgIdent?: string[] | null },
  params: ReadonlyMap<string, string> | Record<string, string>,
): { pgHba?: string[]; pgIdent?: string[] } {
  const has = (k: string): boolean => (params instanceof Map ? params.get(k) : (params as Record<string, string>)[k]) !== undefined;
  const pick = (l: string[] | undefined, d: string[] | null | undefined): string[] | undefined =>
    l !== undefined && l.length > 0 ? l : d !== undefined && d !== null && d.length > 0 ? d : undefined;
  const out: { pgHba?: string[]; pgIdent?: string[] } = {};
  const hba = has('hba_file') ? undefined : pick(local.pgHba, dynamic.pgHba);
  const ident = has('ident_file') ? undefined : pick(local.pgIdent, dynamic.pgIdent);
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
    const built = buildParameters({
      settings: this.node.settings,
      memberName: this.node.name,
      ...(this.node.scope !== undefined ? { scope: this.node.scope } : {}),
      role: opts.role,
      upstream: opts.upstream ?? null,
      dynamic: opts.parameters ?? null,
      ...(this.node.nostream ? { nostream: true } : {}),
      ...(opts.useSlots !== undefined ? { useSlots: opts.useSlots } : {}),
      ...(opts.recoveryConf !== undefined && opts.recoveryConf !== null ? { dynamicRecoveryConf: opts.recoveryConf } : {}),
    });
    for (const msg of built.ignored) this.node.log.warn(`parameter ignored: ${msg}`);

    const files = effectiveAuthFiles(this.node.settings, { pgHba: opts.pgHba ?? null, pgIdent: opts.pgIdent ?? null }, new Map(built.conf));
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
    if (built.standby && !hasSignal) {
      await this.node.writeOwned(signalPath, '', 0o600);
      restartReasons.push('standby.signal created');
      changed = true;
    } else if (!built.standby && hasSignal) {
      await unlink(signalPath);
      restartReasons.push('standby.signal removed');
      changed = true;
    }

    // pg_hba.conf / pg_ident.conf: a change needs only a reload.
    const auth = this.node.settings.authentication;
    const authTexts: Array<[string, string]> = [];
    if (files.pgHba !== undefined) {
      authTexts.push([
        join(confDir, 'pg_hba.conf'),
        renderPgHba({ lines: files.pgHba, superuser: auth.superuser, replication: auth.replication, ...(auth.rewind !== undefined ? { rewind: auth.rewind } : {}) }),
      ]);
    }
    if (files.pgIdent !== undefined) authTexts.push([join(confDir, 'pg_ident.conf'), renderPgIdent(files.pgIdent)]);
    for (const [path, wanted] of authTexts) {
      const old = existsSync(path) ? await readFile(path, 'utf8').catch(() => undefined) : undefined;
      if (old === wanted) continue;
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
