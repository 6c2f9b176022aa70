// The shape checks of the dynamic configuration's standby_cluster section (docs/standby-cluster.md;
// core/standby.ts reads it). Wrong types are errors; the section is active only with host, port or
// restore_command, which the core decides.

/** Problems of `sc` (the raw standby_cluster value) as path/message pairs; [] when acceptable. */
export function standbyClusterProblems(sc: unknown, show: (v: unknown) => string): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  if (sc === undefined || sc === null) return out;
  if (typeof sc !== 'object' || Array.isArray(sc)) return [{ path: 'standby_cluster', message: `expected a mapping, got ${show(sc)}` }];
  const m = sc as Record<string, unknown>;
  if (m.port !== undefined && m.port !== null) {
    // An integer from a number or a numeric string (truncated), as the other integer keys.
    const p = typeof m.port === 'number' && Number.isFinite(m.port) ? Math.trunc(m.port) : typeof m.port === 'string' && /^\s*[-+]?\d+(\.\d+)?\s*$/.test(m.port) ? Math.trunc(Number(m.port)) : undefined;
    if (p === undefined || p < 1 || p > 65535) out.push({ path: 'standby_cluster.port', message: `expected a port 1-65535, got ${show(m.port)}` });
  }
  for (const key of ['host', 'primary_slot_name', 'restore_command', 'archive_cleanup_command']) {
    const v = m[key];
    if (v !== undefined && v !== null && typeof v !== 'string') out.push({ path: `standby_cluster.${key}`, message: `expected a string, got ${show(v)}` });
  }
  const delay = m.recovery_min_apply_delay;
  if (delay !== undefined && delay !== null && typeof delay !== 'string' && typeof delay !== 'number') {
    out.push({ path: 'standby_cluster.recovery_min_apply_delay', message: `expected a number or a string, got ${show(delay)}` });
  }
  const methods = m.create_replica_methods;
  if (methods !== undefined && methods !== null && (!Array.isArray(methods) || methods.some((x) => typeof x !== 'string' || x === ''))) {
    out.push({ path: 'standby_cluster.create_replica_methods', message: `expected a list of method names, got ${show(methods)}` });
  }
  return out;
}
