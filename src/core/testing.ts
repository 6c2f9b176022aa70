// Fixtures shared by the tests of the core, the simulation (./sim) and the REST API (tests only).

import type { DynamicConfig } from './model.ts';

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
