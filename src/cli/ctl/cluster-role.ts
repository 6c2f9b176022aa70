// `vigil demote-cluster` and `vigil promote-cluster` (patronictl 4's verbs of the same names): turn a
// cluster into a standby cluster of another one by writing a `standby_cluster` section into its
// /config key, or make a standby cluster stand alone again by removing that section. The write is a
// compare-and-set on the version of /config that was read (a concurrent change aborts, nothing is
// lost); then the command waits, up to --timeout, until the leader publishes its new role.
//
// Where patronictl 4 differs: it sends the section to the leader with PATCH /config; here the
// command writes /config itself (as edit-config does), so a cluster without a reachable leader (a
// DR site that is down, a primary site being rebuilt) can be switched too: the member that takes the
// leader lock next starts in the new role.
//
// Contract of the state checks: a cluster "is a standby cluster" when its /config has a
// standby_cluster section with host, port or restore_command (core/election.ts
// isStandbyClusterConfig, the rule the agent, the REST API and `vigil list` use). demote-cluster
// refuses a standby cluster, promote-cluster refuses any other; the refusal starts with
// "Cluster is already in the required state", patronictl 4's words, which scripts look for.

import type { ClusterView } from '../../core/model.ts';
import { isStandbyClusterConfig } from '../../core/election.ts';
import { dynamicConfigProblems, unimplementedDynamicKeys } from '../../config/dynamic.ts';
import { CliError, UsageError } from '../args.ts';
import { type CtlContext, leaderMember, membersTable, optBool, optString, runCommand, timestamp } from './common.ts';
import { patchConfig } from './config.ts';
import { confirm, type Io } from './io.ts';

const TIMEOUT_HELP = `      --timeout SEC              how long to wait for the leader to report its new role
                                 (default 60; 0: do not wait)`;

const EXIT_HELP = `Exit status: 0 done (or not waited for), 1 refused, aborted, a concurrent change of /config, a
DCS error, or the leader did not report its new role within --timeout (the change stays
written), 2 bad command line.`;

const DEMOTE_USAGE = `usage: vigil demote-cluster [-c CONFIG] [-d DCS_URL] [--host HOST] [--port PORT] [--restore-command CMD] [--primary-slot-name NAME] [--timeout SEC] [--force] [CLUSTER]

Turn a cluster into a standby cluster of another one (a disaster-recovery copy). Its leader stops
accepting writes and follows the remote primary (streaming from HOST:PORT, or WAL from the archive
with CMD, or both) as standby leader; the other members follow the standby leader.

The options become the standby_cluster section of the cluster's /config key (merged into a
section that is there without host, port or restore_command), written with a compare-and-set;
edit-config and PATCH /config can change it later. At least one of --host, --port and
--restore-command is needed. Refused when the cluster already is a standby cluster. Shows the
members and asks for confirmation unless --force, then waits until the leader reports role
standby_leader. Where pg_rewind can do it, the old primary is rewound, not re-cloned.

      --host HOST                the remote primary (or a router in front of the other cluster)
      --port PORT                its PostgreSQL port (1-65535)
      --restore-command CMD      restore_command that fetches the other cluster's archived WAL
      --primary-slot-name NAME   replication slot to use on the remote primary
${TIMEOUT_HELP}
      --force                    do not ask for confirmation

${EXIT_HELP}`;

const PROMOTE_USAGE = `usage: vigil promote-cluster [-c CONFIG] [-d DCS_URL] [--timeout SEC] [--force] [CLUSTER]

Make a standby cluster stand alone: its standby leader is promoted to a read-write primary on a new
timeline and stops following the remote cluster; its replicas keep following it.

Removes the standby_cluster section from the cluster's /config key (a compare-and-set). Refused
when the cluster is not a standby cluster. Shows the members and asks for confirmation unless
--force, then waits until the leader reports role primary. Make sure the old primary cluster no
longer takes writes (demote it, or stop it) or the two clusters diverge.

${TIMEOUT_HELP}
      --force                    do not ask for confirmation

${EXIT_HELP}`;

/** What demote-cluster puts into standby_cluster: only the options given (non-empty). */
export interface StandbySource {
  host?: string;
  port?: number;
  restore_command?: string;
  primary_slot_name?: string;
}

/** --port as an integer 1-65535; anything else is a usage error. */
export function parsePort(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const s = v.trim();
  const n = /^\+?\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 65535) throw new UsageError(`Invalid value for '--port': '${v}' is not a port number (1-65535)`);
  return n;
}

/** --timeout in seconds (>= 0); default 60. */
export function parseTimeout(v: string | undefined): number {
  if (v === undefined) return 60;
  const n = Number(v.trim());
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`Invalid value for '--timeout': '${v}' is not a number of seconds (0 or more)`);
  return n;
}

/** The section from the options; a CliError when none of host, port, restore_command is given. */
export function standbySection(o: { host?: string | undefined; port?: number | undefined; restoreCommand?: string | undefined; primarySlotName?: string | undefined }): StandbySource {
  const s: StandbySource = {};
  if (o.host) s.host = o.host;
  if (o.port !== undefined) s.port = o.port;
  if (o.restoreCommand) s.restore_command = o.restoreCommand;
  if (o.primarySlotName) s.primary_slot_name = o.primarySlotName;
  if (s.host === undefined && s.port === undefined && s.restore_command === undefined) {
    throw new CliError('demote-cluster needs --host, --port or --restore-command: where the standby leader is to get its WAL from');
  }
  return s;
}

/**
 * /config after demote-cluster: `section` merged (as PATCH /config merges) into the current
 * standby_cluster section, which holds no host/port/restore_command (else the cluster would already
 * be a standby cluster) but may hold e.g. create_replica_methods.
 */
export function demotedConfig(config: Record<string, unknown>, section: StandbySource): Record<string, unknown> {
  const out = structuredClone(config);
  patchConfig(out, { standby_cluster: { ...section } });
  return out;
}

/** /config after promote-cluster: without standby_cluster. */
export function promotedConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(config);
  delete out['standby_cluster'];
  return out;
}

/**
 * Problems of the standby_cluster section of `config` as "path: message" lines: the shape checks of
 * the dynamic configuration, and the refusal while Vigil does not implement standby clusters.
 */
export function standbySectionProblems(config: Record<string, unknown>): string[] {
  const ours = (path: string): boolean => path === 'standby_cluster' || path.startsWith('standby_cluster.');
  return [...dynamicConfigProblems(config), ...unimplementedDynamicKeys(config)].filter((p) => ours(p.path)).map((p) => `${p.path}: ${p.message}`);
}

/** The role a leader publishes once the change is in effect. */
type Target = 'standby_leader' | 'primary';

/**
 * Whether the cluster has reached `target`: a leader whose member key reports that role (`master`
 * counts as primary, from old versions) and state running. Returns the leader's name when done.
 */
export function reachedRole(view: ClusterView, target: Target): string | undefined {
  const l = leaderMember(view);
  if (l === undefined) return undefined;
  const role = l.data.role;
  const ok = target === 'primary' ? role === 'primary' || role === 'master' : role === 'standby_leader';
  return ok && l.data.state === 'running' ? l.name : undefined;
}

/** "host=a port=5 restore_command=... primary_slot_name=..." for the messages. */
function describe(s: StandbySource): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

async function waitForRole(ctx: CtlContext, name: string, target: Target, timeoutS: number, verb: 'demoted' | 'promoted'): Promise<number> {
  const deadline = Date.now() + timeoutS * 1000;
  let view: ClusterView | undefined;
  let readError: string | undefined;
  for (;;) {
    // The change is written: a failed read (etcd briefly unavailable) does not end the wait.
    try {
      view = await ctx.readCluster(name);
      readError = undefined;
    } catch (err) {
      readError = err instanceof Error ? err.message : String(err);
    }
    const leader = view === undefined || readError !== undefined ? undefined : reachedRole(view, target);
    if (view !== undefined && leader !== undefined) {
      ctx.io.out(`${timestamp()} Cluster ${name} successfully ${verb}: leader ${leader} runs as ${target === 'primary' ? 'primary' : 'standby leader'}\n`);
      ctx.io.out(membersTable(name, view));
      return 0;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
  }
  let now: string;
  if (readError !== undefined) now = `the last read of the DCS failed: ${readError}`;
  else {
    const l = view === undefined ? undefined : leaderMember(view);
    now = l === undefined ? 'the cluster has no leader' : `leader ${l.name} reports role ${String(l.data.role ?? 'none')}, state ${String(l.data.state ?? 'unknown')}`;
    if (view !== undefined) ctx.io.out(membersTable(name, view));
  }
  throw new CliError(
    `/config is changed, but the cluster did not reach role ${target} within ${timeoutS} s: ${now}. ` +
      `The agents apply it on their next cycles; watch with vigil list ${name}`,
  );
}

async function writeOrAbort(ctx: CtlContext, name: string, view: ClusterView, changed: Record<string, unknown>): Promise<void> {
  let ok: boolean;
  try {
    ok = await ctx.dcs(name).writeConfig(changed, view.configVersion);
  } catch (err) {
    throw ctx.dcsError(`cannot write the configuration of '${name}'`, err);
  }
  if (!ok) throw new CliError(`/config of cluster ${name} changed while this command ran (a concurrent change): nothing was written; run the command again`);
}

async function changeRole(ctx: CtlContext, name: string, section: StandbySource | undefined, force: boolean, timeoutS: number): Promise<number> {
  const demote = section !== undefined;
  const view = await ctx.readCluster(name);
  if (view.config === undefined) throw new CliError(`The config key does not exist in the cluster ${name}`);
  const standby = isStandbyClusterConfig(view.config);
  if (demote && standby) throw new CliError(`Cluster is already in the required state: ${name} is a standby cluster (standby_cluster in /config)`);
  if (!demote && !standby) throw new CliError(`Cluster is already in the required state: ${name} is not a standby cluster (no standby_cluster with host, port or restore_command in /config)`);

  const changed = demote ? demotedConfig(view.config, section) : promotedConfig(view.config);
  if (demote) {
    const problems = standbySectionProblems(changed);
    if (problems.length > 0) throw new CliError(problems.join('\n'));
  }

  ctx.io.out('Current cluster topology\n');
  ctx.io.out(membersTable(name, view));
  if (!force) {
    const question = demote
      ? `Are you sure you want to demote cluster ${name} to a standby cluster (${describe(section)})?`
      : `Are you sure you want to promote standby cluster ${name} to a read-write primary cluster?`;
    if (!(await confirm(ctx.io, question))) throw new CliError(`Aborted cluster ${demote ? 'demotion' : 'promotion'}`);
  }

  await writeOrAbort(ctx, name, view, changed);
  const what = demote ? `standby_cluster (${describe(section)}) written to /config` : 'standby_cluster removed from /config';
  if (leaderMember(view) === undefined) {
    ctx.io.out(`${timestamp()} ${what}; cluster ${name} has no leader: the member that takes the leader lock starts as ${demote ? 'standby leader' : 'primary'}\n`);
    return 0;
  }
  if (timeoutS === 0) {
    ctx.io.out(`${timestamp()} ${what}; not waiting for the leader (--timeout 0)\n`);
    return 0;
  }
  ctx.io.out(`${timestamp()} ${what}; waiting up to ${timeoutS} s for the leader to run as ${demote ? 'standby leader' : 'primary'}\n`);
  return waitForRole(ctx, name, demote ? 'standby_leader' : 'primary', timeoutS, demote ? 'demoted' : 'promoted');
}

export function runDemoteCluster(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    DEMOTE_USAGE,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      'restore-command': { type: 'string' },
      'primary-slot-name': { type: 'string' },
      timeout: { type: 'string' },
      force: { type: 'boolean' },
    },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`demote-cluster takes at most one CLUSTER, got ${p.positionals.length}`);
      const port = parsePort(optString(p, 'port'));
      const timeoutS = parseTimeout(optString(p, 'timeout'));
      const section = standbySection({ host: optString(p, 'host'), port, restoreCommand: optString(p, 'restore-command'), primarySlotName: optString(p, 'primary-slot-name') });
      const ctx = await context();
      return changeRole(ctx, ctx.clusterName(p.positionals[0]), section, optBool(p, 'force'), timeoutS);
    },
    io,
  );
}

export function runPromoteCluster(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    PROMOTE_USAGE,
    { timeout: { type: 'string' }, force: { type: 'boolean' } },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`promote-cluster takes at most one CLUSTER, got ${p.positionals.length}`);
      const timeoutS = parseTimeout(optString(p, 'timeout'));
      const ctx = await context();
      return changeRole(ctx, ctx.clusterName(p.positionals[0]), undefined, optBool(p, 'force'), timeoutS);
    },
    io,
  );
}
