// Facts about the local PostgreSQL for the agent's tick: the probe, observe() (LocalPg), the
// replication slots of a primary, and whether the local history diverged from the leader's.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalPg } from '../core/model.ts';
import { trackSilence, type SilenceState } from '../core/sync-stall.ts';
import type { ConfigFiles } from './configfiles.ts';
import { isValidSlotName } from './conf.ts';
import { parseConnUrl } from './conninfo.ts';
import { controlRewindable, controlSysid, positionFromControlData, type LocalPosition } from './controldata.ts';
import type { DataDir } from './datadir.ts';
import { decideDivergence, parseTimelineHistory, parseWaldumpRecordEnd } from './divergence.ts';
import { PgControlError } from './errors.ts';
import { run } from './exec.ts';
import { numberToLsn } from './lsn.ts';
import type { PgNode } from './node.ts';
import type { Postmaster } from './postmaster.ts';
import { PgSession, runProbe, withClient, type ProbeResult } from './probe.ts';
import { STATS_PRIVILEGE_SQL, statsPrivilegeWarning, type StatsPrivilegeRow } from './privileges.ts';
import type { SyncStandby } from './sync.ts';

export class Facts {
  /** wal_log_hints/checksums from the last pg_controldata run (undefined: not read yet). */
  private cachedRewindable: boolean | undefined;
  /** The connection of the probes and ensureSlots, kept open between calls (closed before a stop: closeSession). */
  private readonly session = new PgSession();
  /** The WAL senders' last reported values, for their silence (core/sync-stall.ts trackSilence). */
  private silence: SilenceState = new Map();
  /** The probe role's statistics privileges were read (./privileges.ts): once per agent process. */
  private privilegesChecked = false;
  /** Failed reads of those privileges (given up after 3, so a failing query does not run every probe). */
  private privilegeFailures = 0;

  constructor(
    private readonly node: PgNode,
    private readonly postmaster: Postmaster,
    private readonly dir: DataDir,
    private readonly files: ConfigFiles,
    private readonly sync: SyncStandby,
  ) {}

  /**
   * One probe query, bounded by timeoutMs (default 2 s). Rejects when PostgreSQL does not answer.
   * On a primary each WAL sender row gets silent_ms, tracked across every probe of this controller
   * (the tick's and the ones between loops, about once a second): core/sync-stall.ts.
   */
  async probe(opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
    const probe = await runProbe(this.node.localConn(), opts.timeoutMs ?? 2000, this.session);
    const { state, silentMs } = trackSilence(this.silence, probe.replication, probe.inRecovery ? undefined : probe.flushLsn, performance.now());
    this.silence = state;
    probe.replication.forEach((r, i) => {
      r.silent_ms = Math.round(silentMs[i] ?? 0);
    });
    if (!this.privilegesChecked) await this.checkPrivileges();
    return probe;
  }

  /**
   * Once, after the first probe that answered: warns when the probe's role cannot see other
   * roles' replication details and wait events (./privileges.ts). A failed read is retried at the
   * next probe (3 times at most) and never fails this one.
   */
  private async checkPrivileges(): Promise<void> {
    try {
      const rows = await this.session.run(this.node.localConn(), 2000, async (c) => (await c.query<StatsPrivilegeRow>(STATS_PRIVILEGE_SQL)).rows);
      this.privilegesChecked = true;
      const warning = statsPrivilegeWarning(rows[0]);
      if (warning !== undefined) this.node.log.warn(warning);
    } catch (e) {
      this.privilegeFailures += 1;
      if (this.privilegeFailures < 3) return;
      this.privilegesChecked = true;
      this.node.log.warn(`could not read the agent's PostgreSQL role privileges (superuser or pg_read_all_stats), not checked: ${(e as Error).message}`);
    }
  }

  /** Ends the probe's connection (the next probe opens a new one). */
  closeSession(): void {
    this.session.close();
  }

  /**
   * Everything the agent needs about local PostgreSQL for one tick (LocalPg). Never rejects for
   * PostgreSQL being down or hung: those show as running/ready false.
   */
  async observe(opts: { probeTimeoutMs?: number } = {}): Promise<LocalPg & { probe?: ProbeResult }> {
    const empty = await this.node.dataDirEmpty();
    await this.sync.load();
    const { running } = await this.postmaster.isRunning();
    const probe = running ? await this.probe({ timeoutMs: opts.probeTimeoutMs ?? 2000 }).catch(() => undefined) : undefined;
    // pg_controldata only when the server did not answer: a running server tells us its system
    // identifier and timeline itself, and the control state matters only while it is down (read
    // once while running, for the rewindable flag).
    const cd = empty || (probe !== undefined && this.cachedRewindable !== undefined) ? undefined : await this.node.controlData().catch(() => undefined);
    if (cd !== undefined) this.cachedRewindable = controlRewindable(cd);
    if (empty) this.cachedRewindable = undefined;
    const upstream = empty ? null : await this.files.upstream();
    // A pg_controldata run that failed this once (a loaded host) must not make the data directory
    // look unidentified: the identifier read before from this same directory still holds.
    const sysid = probe?.sysid ?? (cd !== undefined ? controlSysid(cd) : undefined) ?? (empty ? undefined : this.dir.knownSysid());
    if (sysid !== undefined) this.dir.rememberSysid(sysid);
    if (empty) this.dir.rememberSysid(undefined);
    const inRecovery = probe !== undefined ? probe.inRecovery : !empty && existsSync(this.node.signalPath);
    const receive = probe?.receiveLsn;
    const replay = probe?.replayLsn;
    const walLsn =
      probe === undefined ? undefined : probe.inRecovery ? Math.max(receive ?? 0, replay ?? 0) || undefined : probe.flushLsn;
    let timeline = probe?.timeline;
    if (probe !== undefined && probe.inRecovery && probe.walReceiver?.status !== 'streaming') {
      // Not streaming: pg_control's checkpoint timeline can lag behind the timeline the standby
      // replays on (no restartpoint yet after a timeline switch). IDENTIFY_SYSTEM on a standby
      // answers its replay timeline, which is what the leader race must compare.
      const replay = await this.replayTimeline().catch(() => undefined);
      if (replay !== undefined && (timeline === undefined || replay > timeline)) timeline = replay;
    }
    if (timeline === undefined && cd !== undefined) {
      const t = Number(cd["Latest checkpoint's TimeLineID"]);
      if (Number.isInteger(t) && t > 0) timeline = t;
    }
    const sync = probe !== undefined ? this.sync.facts(probe) : undefined;
    return {
      dataDirEmpty: empty,
      sysid,
      running,
      ready: probe !== undefined,
      inRecovery,
      walLsn,
      receiveLsn: receive,
      replayLsn: replay,
      timeline,
      streaming: probe?.walReceiver?.status === 'streaming',
      upstream,
      controlState: cd?.['Database cluster state'],
      rewindable: cd !== undefined ? controlRewindable(cd) : this.cachedRewindable === true,
      crashed: this.postmaster.crashed,
      ...(sync !== undefined ? { sync } : {}),
      ...(probe !== undefined ? { probe } : {}),
    };
  }

  /**
   * On a primary: creates missing physical slots (reserving WAL now) and drops inactive physical
   * slots not in `names`. Invalid names are skipped with a warning.
   */
  /**
   * Creates the physical slots in `names`; with dropUnknown (the default) also drops the other
   * inactive physical slots. The core passes dropUnknown false while paused (Patroni leaves slots
   * alone then) and when /config declares slots or ignore_slots.
   */
  async ensureSlots(names: string[], opts: { timeoutMs?: number; dropUnknown?: boolean } = {}): Promise<void> {
    const want = new Set<string>();
    for (const n of names) {
      if (isValidSlotName(n)) want.add(n);
      else this.node.log.warn(`slot name ${JSON.stringify(n)} is invalid, skipped`);
    }
    // On the probes' connection: a primary runs this every tick.
    await this.session.run(
      this.node.localConn(),
      opts.timeoutMs ?? 5000,
      async (c) => {
        const rec = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (rec.rows[0]?.r) throw new PgControlError('PG_FAILED', 'ensureSlots runs on a primary only');
        const r = await c.query<{ slot_name: string; active: boolean }>(
          "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical'",
        );
        const have = new Map(r.rows.map((row) => [row.slot_name, row.active]));
        for (const [slot, active] of have) {
          if (opts.dropUnknown !== false && !want.has(slot) && !active) {
            this.node.log.info(`dropping physical replication slot ${slot}`);
            await c.query('SELECT pg_drop_replication_slot($1)', [slot]).catch((e: Error) => this.node.log.warn(`could not drop slot ${slot}: ${e.message}`));
          }
        }
        for (const slot of want) {
          if (have.has(slot)) continue;
          this.node.log.info(`creating physical replication slot ${slot}`);
          await c.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
        }
      },
      'ensureSlots',
    );
  }

  /** The running server's current timeline (a standby: the one it replays on), via IDENTIFY_SYSTEM. */
  async replayTimeline(opts: { timeoutMs?: number } = {}): Promise<number | undefined> {
    const tli = await withClient(
      this.node.localReplicationConn(),
      opts.timeoutMs ?? 2000,
      async (c) => Number((await c.query<{ timeline: string | number }>('IDENTIFY_SYSTEM')).rows[0]?.timeline),
      'local IDENTIFY_SYSTEM',
    );
    return Number.isInteger(tli) && tli > 0 ? tli : undefined;
  }

  /** Our WAL position for the divergence check (spec 10.3 step 1). */
  private async localPosition(): Promise<LocalPosition & { checkpointEnd?: number }> {
    const { running } = await this.postmaster.isRunning();
    if (running) {
      try {
        const tli = await this.replayTimeline({ timeoutMs: 5000 });
        const p = await this.probe({ timeoutMs: 5000 });
        const lsn = p.inRecovery ? p.replayLsn : p.flushLsn;
        if (tli !== undefined && lsn !== undefined) return { timeline: tli, lsn, inRecovery: p.inRecovery };
      } catch (e) {
        this.node.log.warn(`local position from the running server failed, using pg_controldata: ${(e as Error).message}`);
      }
    }
    const cd = await this.node.controlData();
    const pos = positionFromControlData(cd);
    if (pos === undefined) throw new PgControlError('PG_FAILED', 'pg_controldata has no usable checkpoint position');
    if (!pos.inRecovery && pos.checkpointLsn !== undefined) {
      const end = await this.checkpointRecordEnd(pos.checkpointLsn, pos.timeline);
      if (end !== undefined) return { ...pos, checkpointEnd: end };
    }
    return pos;
  }

  private async checkpointRecordEnd(lsn: number, timeline: number): Promise<number | undefined> {
    try {
      const r = await run(
        this.node.bin('pg_waldump'),
        ['-p', join(this.node.dataDir, 'pg_wal'), '-t', String(timeline), '-s', numberToLsn(lsn), '-n', '2'],
        { timeoutMs: 10_000, okCodes: [0, 1] },
      );
      return parseWaldumpRecordEnd(r.stdout + '\n' + r.stderr, lsn);
    } catch (e) {
      this.node.log.warn(`pg_waldump failed: ${(e as Error).message}`);
      return undefined;
    }
  }

  /**
   * Whether the local data diverged from the leader's timeline (spec 10.3): local position, the
   * leader must not be in recovery, then IDENTIFY_SYSTEM and TIMELINE_HISTORY on a replication
   * connection to the leader. `leader` is the source compared with: the leader, or a standby
   * cluster's remote primary; the log line and errors name it by host:port. Rejects when something
   * cannot be determined (caller retries).
   */
  async checkDivergence(leader: { connUrl: string }, opts: { timeoutMs?: number } = {}): Promise<'need' | 'not_needed'> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const t = parseConnUrl(leader.connUrl);
    const where = `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
    const local = await this.localPosition();
    const leaderRec = await withClient(
      this.node.remoteConn(leader.connUrl, this.node.rewindCreds(), 'postgres'),
      timeoutMs,
      async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r,
      `recovery check of ${where}`,
    );
    if (leaderRec !== false) throw new PgControlError('PG_REWIND_NOT_READY', `${where}, the source compared with, is still in recovery`);
    const repl = this.node.settings.authentication.replication;
    const { leaderTimeline, history } = await withClient(
      { ...this.node.remoteConn(leader.connUrl, repl, this.node.settings.database), replication: true },
      timeoutMs,
      async (c) => {
        const id = await c.query<{ timeline: string | number }>('IDENTIFY_SYSTEM');
        const tli = Number(id.rows[0]?.timeline);
        if (!Number.isInteger(tli) || tli <= 0) throw new PgControlError('PG_FAILED', 'IDENTIFY_SYSTEM returned no timeline');
        if (tli <= 1 || tli <= local.timeline) return { leaderTimeline: tli, history: [] };
        const h = await c.query<{ content: string | Buffer }>(`TIMELINE_HISTORY ${tli}`);
        const content = h.rows[0]?.content;
        const text = Buffer.isBuffer(content) ? content.toString('utf8') : String(content ?? '');
        return { leaderTimeline: tli, history: parseTimelineHistory(text) };
      },
      `IDENTIFY_SYSTEM on ${where}`,
    );
    const result = decideDivergence({
      local,
      leaderTimeline,
      history,
      ...(local.checkpointEnd !== undefined ? { checkpointEnd: local.checkpointEnd } : {}),
    });
    this.node.log.info(
      `divergence check against ${where}: local timeline ${local.timeline} lsn ${local.lsn} (recovery ${local.inRecovery}), its timeline ${leaderTimeline}: ${result}`,
    );
    return result;
  }
}
