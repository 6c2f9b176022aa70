// What a replica's recovery settings follow (conf.ts buildParameters; the agent resolves member
// names and a standby cluster's remote member to it: agent/driver.ts upstreamTarget).

/**
 * connUrl '' : no streaming connection (WAL from restore_command only).
 * slot: the slot to use on the upstream (null: none; absent: the one derived from the member name).
 * recovery: settings that come with the upstream (a standby cluster's restore_command,
 * archive_cleanup_command, recovery_min_apply_delay); they win over recovery_conf.
 */
export interface Upstream {
  connUrl: string;
  name: string;
  slot?: string | null;
  recovery?: Record<string, string>;
}
