// `vigil switchover [CLUSTER]` and `vigil failover [CLUSTER]` (spec §3.2, §2.12): checks the
// names against the DCS, asks what was not given (unless --force), sends POST /switchover or
// /failover to the leader (the candidate when there is no leader) and prints the answer; when the
// REST call fails to connect or times out, writes the /failover key directly, as patronictl does.

import type { ClusterView } from '../../core/model.ts';
import { isNoFailover, syncModeOf } from '../../core/election.ts';
import { isPaused } from '../../core/values.ts';
import { CliError, UsageError } from '../args.ts';
import { leaderMember, loopWait, membersTable, nextHourExample, optBool, optString, parseScheduled, runCommand, timestamp, type OptionSpec } from './common.ts';
import { confirm, prompt, type Io } from './io.ts';

const SWITCHOVER_USAGE = `usage: vigil switchover [-c CONFIG] [-d DCS_URL] [--leader NAME] [--candidate NAME] [--scheduled TS|now] [--force] [CLUSTER]

Hand the leader role over to a healthy replica (POST /switchover to the leader).

  --leader, --primary NAME   the current leader (checked)
  --candidate NAME           the member to promote (default: the best one)
  --scheduled TS|now         ISO-8601 time (local time when no zone is given)
  --force                    do not ask anything`;

const FAILOVER_USAGE = `usage: vigil failover [-c CONFIG] [-d DCS_URL] --candidate NAME [--force] [CLUSTER]

Promote a specific member, even when the cluster has no healthy leader (POST /failover).

  --candidate NAME   the member to promote (mandatory with --force)
  --force            do not ask anything`;

export type Action = 'switchover' | 'failover';

const title = (a: Action): string => a[0]!.toUpperCase() + a.slice(1);

/** Members that may be named as candidate: not the leader, not nofailover (core/election.ts isNoFailover); sorted. */
export function candidateNames(view: ClusterView, leader: string | undefined): string[] {
  return view.members
    .filter((m) => m.name !== leader && !isNoFailover(m.data.tags))
    .map((m) => m.name)
    .sort();
}

/** POST body: `{"candidate"?, "leader"?, "scheduled_at"?}` with only the set fields. */
export function requestBody(action: Action, leader: string | undefined, candidate: string | undefined, scheduledAt: string | undefined): Record<string, string> {
  const body: Record<string, string> = {};
  if (candidate) body['candidate'] = candidate;
  if (action === 'switchover' && leader) body['leader'] = leader;
  if (scheduledAt) body['scheduled_at'] = scheduledAt;
  return body;
}

/** The line printed for the REST answer (200/202: `<ts> <body>`). */
export function resultLine(action: Action, status: number, body: string, ts: string): string {
  if (status === 200 || status === 202) return `${ts} ${body}`;
  if (body.includes('status unknown')) return `${title(action)} result unknown, details: ${status}, ${body}`;
  return `${title(action)} failed, details: ${status}, ${body}`;
}

function syncMembers(view: ClusterView): string[] {
  const s = view.sync?.sync_standby;
  return typeof s === 'string' ? s.split(',').map((x) => x.trim()).filter(Boolean) : [];
}

function syncModeOn(view: ClusterView): boolean {
  return syncModeOf(view.config) !== 'off';
}

function isStandbyCluster(view: ClusterView): boolean {
  const sc = view.config?.['standby_cluster'];
  return typeof sc === 'object' && sc !== null && Object.keys(sc).length > 0;
}

async function switchoverOrFailover(action: Action, argv: string[], io?: Io): Promise<number> {
  const usage = action === 'switchover' ? SWITCHOVER_USAGE : FAILOVER_USAGE;
  const options: OptionSpec =
    action === 'switchover'
      ? {
          leader: { type: 'string' },
          primary: { type: 'string' },
          master: { type: 'string' },
          candidate: { type: 'string' },
          scheduled: { type: 'string' },
          force: { type: 'boolean' },
        } as const
      : { candidate: { type: 'string' }, force: { type: 'boolean' } } as const;
  return runCommand(
    argv,
    usage,
    options,
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`${action} takes at most one CLUSTER, got ${p.positionals.length}`);
      const force = optBool(p, 'force');
      let leader = optString(p, 'leader') ?? optString(p, 'primary') ?? optString(p, 'master');
      let candidate = optString(p, 'candidate');
      let scheduled = optString(p, 'scheduled');
      const ctx = await context();
      const out = ctx.io;
      const name = ctx.clusterName(p.positionals[0]);
      const view = await ctx.readCluster(name);
      out.out('Current cluster topology\n');
      out.out(membersTable(name, view));

      const current = leaderMember(view);
      if (action === 'switchover' && current === undefined) throw new CliError('This cluster has no leader');
      if (leader === undefined) {
        if (force || action === 'failover') leader = current?.name;
        else leader = await prompt(out, isStandbyCluster(view) ? 'Standby Leader' : 'Primary', { default: current!.name });
      }
      if (leader !== undefined && current !== undefined && current.name !== leader) {
        throw new CliError(`Member ${leader} is not the leader of cluster ${name}`);
      }
      const names = candidateNames(view, leader);
      if (names.length === 0) throw new CliError(`No candidates found to ${action} to`);
      if (candidate === undefined && !force) {
        candidate = await prompt(out, `Candidate [${names.map((n) => `'${n}'`).join(', ')}]`, { default: '' });
      }
      if (action === 'failover' && !candidate) throw new CliError('Failover could be performed only to a specific candidate');
      if (candidate && candidate === leader) throw new CliError(`${title(action)} target and source are the same.`);
      if (candidate && !names.includes(candidate)) throw new CliError(`Member ${candidate} does not exist in cluster ${name} or is tagged as nofailover`);

      let scheduledAt: string | undefined;
      if (action === 'switchover') {
        if (scheduled === undefined && !force) {
          scheduled = await prompt(out, `When should the switchover take place (e.g. ${nextHourExample()} ) `, { default: 'now' });
        }
        scheduledAt = parseScheduled(scheduled);
        if (scheduledAt !== undefined && isPaused(view.config)) throw new CliError("Can't schedule switchover in the paused state");
      }

      if (action === 'failover' && candidate && syncModeOn(view) && !syncMembers(view).includes(candidate) && !force) {
        if (!(await confirm(out, `Are you sure you want to failover to the asynchronous node ${candidate}?`))) {
          throw new CliError('Aborting failover');
        }
      }
      if (!force) {
        const demote = leader ? `, demoting current leader ${leader}` : '';
        const question = scheduledAt
          ? `Are you sure you want to schedule ${action} of cluster ${name} at ${scheduledAt}${demote}?`
          : `Are you sure you want to ${action} cluster ${name}${demote}?`;
        if (!(await confirm(out, question))) throw new CliError(`Aborting ${scheduledAt ? 'scheduled ' : ''}${action}`);
      }

      const body = requestBody(action, leader, candidate, scheduledAt);
      const target = current ?? view.members.find((m) => m.name === candidate);
      // The server polls for up to 2*max(10, loop_wait) seconds before answering.
      const deadline = (2 * Math.max(10, loopWait(view)) + 30) * 1000;
      let failed = false;
      try {
        if (target === undefined) throw new Error('no member to send the request to');
        const r = await ctx.request(target, 'POST', action, body, deadline);
        out.out(`${resultLine(action, r.status, r.body, timestamp())}\n`);
        failed = r.status !== 200 && r.status !== 202;
      } catch (err) {
        out.err(`${action} through ${target?.name ?? 'the REST API'} failed: ${err instanceof Error ? err.message : String(err)}\n`);
        out.out(`${timestamp()} Could not ${action} using Patroni api, falling back to DCS\n`);
        const value: Record<string, unknown> = { leader: leader ?? '', member: candidate ?? '' };
        if (scheduledAt) value['scheduled_at'] = scheduledAt;
        try {
          await ctx.dcs(name).writeFailover(value);
        } catch (e) {
          throw ctx.dcsError(`cannot write the failover key of '${name}'`, e);
        }
      }
      if (failed) return 1;
      out.out(membersTable(name, await ctx.readCluster(name)));
      return 0;
    },
    io,
  );
}

export function runSwitchover(argv: string[], io?: Io): Promise<number> {
  return switchoverOrFailover('switchover', argv, io);
}

export function runFailover(argv: string[], io?: Io): Promise<number> {
  return switchoverOrFailover('failover', argv, io);
}
