// Fixtures shared by the tests of the core, the simulation (./sim) and the REST API (tests only).

import type { DynamicConfig, LocalPg, PeerStatus } from './model.ts';

/** The system identifier the core's tests use. */
export const SYSID = '7268616322854375442';

/** A complete dynamic configuration with Patroni's default timings; `over` replaces top-level keys. */
export function defaultConfig(over: Partial<DynamicConfig> = {}): DynamicConfig {
  return {
    ttl: 30,
    loop_wait: 10,
    retry_timeout: 10,
    maximum_lag_on_failover: 1048576,
    primary_start_timeout: 300,
    check_timeline: false,
    postgresql: { use_pg_rewind: true, use_slots: true },
    ...over,
  };
}

/** A running replica streaming from n0, caught up at LSN 1000 on timeline 1; `over` replaces fields. */
export function streamingReplica(over: Partial<LocalPg> = {}): LocalPg {
  return {
    dataDirEmpty: false,
    sysid: SYSID,
    running: true,
    ready: true,
    inRecovery: true,
    walLsn: 1000,
    receiveLsn: 1000,
    replayLsn: 1000,
    timeline: 1,
    streaming: true,
    upstream: 'n0',
    controlState: 'in archive recovery',
    rewindable: true,
    crashed: false,
    ...over,
  };
}

/** A reachable replica peer at LSN 1000 on timeline 1; `over` replaces fields. */
export function replicaPeer(name: string, over: Partial<PeerStatus> = {}): PeerStatus {
  return { name, reachable: true, inRecovery: true, walPosition: 1000, timeline: 1, nofailover: false, failoverPriority: 1, watchdogFailed: false, ...over };
}
