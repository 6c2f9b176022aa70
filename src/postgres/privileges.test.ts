import { test } from 'node:test';
import assert from 'node:assert/strict';

import { STATS_PRIVILEGE_SQL, statsPrivilegeWarning } from './privileges.ts';

test('statsPrivilegeWarning: only a role that is neither superuser nor has pg_read_all_stats is warned about, naming the fix and the loss', () => {
  assert.equal(statsPrivilegeWarning({ role: 'postgres', superuser: true, read_all_stats: true }), undefined);
  assert.equal(statsPrivilegeWarning({ role: 'vigil', superuser: false, read_all_stats: true }), undefined, 'pg_read_all_stats (or pg_monitor) is enough');
  assert.equal(statsPrivilegeWarning({ role: 'vigil', superuser: true, read_all_stats: false }), undefined);
  const w = statsPrivilegeWarning({ role: 'app"x', superuser: false, read_all_stats: false });
  assert.ok(w !== undefined);
  assert.match(w, /"app\\"x"/, 'the role, quoted');
  assert.match(w, /postgresql\.authentication\.superuser/);
  assert.match(w, /pg_read_all_stats/);
  assert.match(w, /pg_stat_replication/);
  assert.match(w, /wait events/);
  assert.match(w, /counts no standby as streaming/);
  assert.match(w, /never detects a synchronous standby that stops answering/);
  assert.match(w, /GRANT pg_read_all_stats TO/);
  // Nothing read, or values of unexpected types: no claim either way.
  assert.equal(statsPrivilegeWarning(undefined), undefined);
  assert.equal(statsPrivilegeWarning({}), undefined);
  assert.equal(statsPrivilegeWarning({ role: 'vigil', superuser: false }), undefined);
  assert.equal(statsPrivilegeWarning({ role: 'vigil', superuser: 'f' as unknown as boolean, read_all_stats: false }), undefined);
});

test('STATS_PRIVILEGE_SQL asks for the privileges (USAGE), not the mere membership, of pg_read_all_stats', () => {
  // PostgreSQL checks has_privs_of_role: a NOINHERIT member does not see the details.
  assert.match(STATS_PRIVILEGE_SQL, /pg_has_role\('pg_read_all_stats', 'USAGE'\)/);
  assert.match(STATS_PRIVILEGE_SQL, /rolsuper AS superuser/);
  assert.match(STATS_PRIVILEGE_SQL, /current_user::text AS role/);
});
