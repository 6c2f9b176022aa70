// Whether the agent's own PostgreSQL role (postgresql.authentication.superuser, the probe's
// connection) can read what the synchronous replication decisions need about other roles'
// sessions. PostgreSQL shows the details of pg_stat_replication (state, sync_state, positions,
// reply_time) only to superusers and roles with the privileges of pg_read_all_stats, and
// pg_stat_activity's wait_event of another role's backend only to those or to members of that
// role. Without them the probe reads every WAL sender without a state (no standby counts as
// streaming) and no backend waiting in SyncRep (a silent synchronous standby, core/sync-stall.ts,
// is never detected): nothing fails, the decisions are just blind. Vigil creates that role as a
// superuser when it bootstraps the cluster; it can still lack the right when the data directory
// came from elsewhere (custom bootstrap, a cluster taken over) or the role was altered.

/** One row: the role's name, whether it is a superuser, whether it has pg_read_all_stats's privileges. */
export const STATS_PRIVILEGE_SQL =
  "SELECT current_user::text AS role, r.rolsuper AS superuser, pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats FROM pg_roles r WHERE r.rolname = current_user";

export interface StatsPrivilegeRow {
  role: string;
  superuser: boolean;
  read_all_stats: boolean;
}

/**
 * The warning to log once when the role can see neither (undefined: it can, or the row is
 * missing or malformed, which says nothing either way).
 */
export function statsPrivilegeWarning(row: Partial<StatsPrivilegeRow> | undefined): string | undefined {
  if (row === undefined || typeof row.role !== 'string') return undefined;
  if (row.superuser === true || row.read_all_stats === true) return undefined;
  if (row.superuser !== false || row.read_all_stats !== false) return undefined;
  return (
    `the agent's PostgreSQL role ${JSON.stringify(row.role)} (postgresql.authentication.superuser) is not a superuser and lacks the privileges of pg_read_all_stats: ` +
    "PostgreSQL hides the standbys' state and positions in pg_stat_replication and other roles' wait events in pg_stat_activity from it, " +
    'so synchronous_mode counts no standby as streaming (none is made synchronous) and never detects a synchronous standby that stops answering; ' +
    `make the role a superuser (as Vigil expects), or GRANT pg_read_all_stats TO ${JSON.stringify(row.role)}`
  );
}
