// A simulated PostgreSQL data directory and postmaster, for the simulator (tests only).
//
// What is modelled: the data directory (empty or not, system identifier, WAL history, standby
// signal, configured upstream, pg_controldata's cluster state) and whether a postmaster runs.
// Starting and stopping are instantaneous here; the simulated ports (./ports.ts) charge a task's
// duration.

import { walEnd, walTimeline, type Segment } from './wal.ts';

export interface DataDir {
  sysid: string;
  wal: Segment[];
  /** standby.signal present: starts (or runs) in recovery. */
  standby: boolean;
  /** Member name in primary_conninfo (null: none). */
  upstream: string | null;
  /** pg_controldata "Database cluster state". */
  controlState: string;
}

export class SimPg {
  data: DataDir | undefined;
  running = false;
  /** Streaming from `data.upstream` as of the last world step. */
  streaming = false;

  get writable(): boolean {
    return this.running && this.data !== undefined && !this.data.standby;
  }

  get lsn(): number | undefined {
    return this.data === undefined ? undefined : walEnd(this.data.wal);
  }

  get timeline(): number | undefined {
    return this.data === undefined ? undefined : walTimeline(this.data.wal);
  }

  start(): void {
    if (this.data === undefined) throw new Error('data directory is empty');
    this.running = true;
    this.data.controlState = this.data.standby ? 'in archive recovery' : 'in production';
  }

  /** fast: clean shutdown; immediate (or a crash): unclean, like SIGQUIT or a dead host. */
  stop(mode: 'fast' | 'immediate'): void {
    if (!this.running || this.data === undefined) {
      this.running = false;
      return;
    }
    this.running = false;
    this.streaming = false;
    if (mode === 'fast') this.data.controlState = this.data.standby ? 'shut down in recovery' : 'shut down';
    // immediate: the control file keeps saying "in production" / "in archive recovery".
  }

  describe(): string {
    const d = this.data;
    if (d === undefined) return 'empty';
    const role = d.standby ? `replica of ${d.upstream ?? 'none'}${this.running && !this.streaming ? ' (not streaming)' : ''}` : 'primary';
    return `${this.running ? 'running' : 'stopped'} ${role} tl${walTimeline(d.wal)}`;
  }
}
