// Role overrides (spec patroni-interfaces.md 4.1 point 5): postgresql.parameters_<role> merged over
// postgresql.parameters, pg_hba_<role> and pg_ident_<role> replacing the base lists, for the role
// the node is in now. Pure: no IO.
//
// Precedence, as for the base keys: the local postgresql section over the dynamic one, parameters
// merged key by key, lists taken whole (a non-empty local list wins). The effective role value then
// wins over the effective base value: a dynamic parameters_primary entry overrides a local
// parameters entry of the same name.

import type { ConfigRole, RoleOverrides } from '../config/types.ts';

export type RoleOverridesByRole<V = unknown> = Partial<Record<ConfigRole, RoleOverrides<V>>>;

/**
 * The role whose overrides apply: primary also while promoting (writeConfig as primary), replica
 * also while demoted; standby_leader for the leader of a standby cluster (it runs in recovery).
 */
export function configRole(role: 'primary' | 'replica', standbyLeader = false): ConfigRole {
  if (role === 'primary') return 'primary';
  return standbyLeader ? 'standby_leader' : 'replica';
}

/** The parameters_<role> to merge over the base parameters: the dynamic ones, then the local ones over them. */
export function roleParameters(local: RoleOverridesByRole | undefined, dynamic: RoleOverridesByRole | null | undefined, role: ConfigRole): Record<string, unknown> {
  return { ...(dynamic?.[role]?.parameters ?? {}), ...(local?.[role]?.parameters ?? {}) };
}

const nonEmpty = (l: string[] | undefined): string[] | undefined => (l !== undefined && l.length > 0 ? l : undefined);

/** pg_hba_<role> / pg_ident_<role>: the local list when non-empty, else the dynamic one; absent: the base lists apply. */
export function roleAuthLists(local: RoleOverridesByRole | undefined, dynamic: RoleOverridesByRole | null | undefined, role: ConfigRole): { pgHba?: string[]; pgIdent?: string[] } {
  const pgHba = nonEmpty(local?.[role]?.pgHba) ?? nonEmpty(dynamic?.[role]?.pgHba);
  const pgIdent = nonEmpty(local?.[role]?.pgIdent) ?? nonEmpty(dynamic?.[role]?.pgIdent);
  return { ...(pgHba !== undefined ? { pgHba } : {}), ...(pgIdent !== undefined ? { pgIdent } : {}) };
}

/** The role overrides of a dynamic configuration's postgresql section (entries of the wrong type are left out). */
export function dynamicRoleOverrides(pg: Record<string, unknown>): RoleOverridesByRole {
  const out: RoleOverridesByRole = {};
  const map = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const lines = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((l) => typeof l === 'string') ? (v as string[]) : undefined);
  for (const role of ['primary', 'replica', 'standby_leader'] as const) {
    const parameters = map(pg[`parameters_${role}`]);
    const pgHba = lines(pg[`pg_hba_${role}`]);
    const pgIdent = lines(pg[`pg_ident_${role}`]);
    if (parameters === undefined && pgHba === undefined && pgIdent === undefined) continue;
    out[role] = { ...(parameters !== undefined ? { parameters } : {}), ...(pgHba !== undefined ? { pgHba } : {}), ...(pgIdent !== undefined ? { pgIdent } : {}) };
  }
  return out;
}

/** Whether any role override is configured (locally or dynamically). */
export function hasRoleOverrides(local: RoleOverridesByRole | undefined, dynamic: RoleOverridesByRole | null | undefined): boolean {
  const any = (o: RoleOverridesByRole | null | undefined): boolean => o !== null && o !== undefined && Object.values(o).some((r) => r !== undefined);
  return any(local) || any(dynamic);
}
