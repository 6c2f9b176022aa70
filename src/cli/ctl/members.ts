// Per-member operations (spec §3.2, §2.13-2.15): `vigil restart`, `vigil reload`, `vigil reinit`
// and `vigil flush`. Members are chosen from the DCS by name and role, confirmed, then each gets
// its own REST call; one member's failure is printed and the others still run (exit code 1 then).

import type { ClusterView, Member } from '../../core/model.ts';
import { isPaused } from '../../core/values.ts';
import { CliError, UsageError } from '../args.ts';
import { CtlContext, loopWait, membersLeaderFirst, membersTable, membersWithRole, nextHourExample, optBool, optString, parseRole, parseScheduled, runCommand, timestamp, type RestResponse, type RoleChoice } from './common.ts';
import { confirm, prompt, type Io } from './io.ts';

const RESTART_USAGE = `usage: vigil restart [-c CONFIG] [-d DCS_URL] [-r ROLE] [--any] [--scheduled TS|now] [--pg-version X.Y[.Z]] [--pending] [--timeout T] [--force] CLUSTER [MEMBER...]

Restart PostgreSQL on the members (POST /restart).

  -r, --role ROLE        leader, primary, standby-leader, replica, standby or any (default)
      --any              restart one member chosen at random
      --scheduled TS     ISO-8601 time (local time when no zone is given), or now
      --pg-version V     only if the running version is older than V
      --pending          only members with a pending restart
      --timeout T        startup deadline (a primary that misses it may fail over)
      --force            do not ask anything; replaces an existing scheduled restart`;

const RELOAD_USAGE = `usage: vigil reload [-c CONFIG] [-d DCS_URL] [-r ROLE] [--force] CLUSTER [MEMBER...]

Make the members re-read their configuration (POST /reload).`;

const REINIT_USAGE = `usage: vigil reinit [-c CONFIG] [-d DCS_URL] [--from-leader] [--wait] [--force] CLUSTER [MEMBER...]

Wipe and re-clone replicas (POST /reinitialize).

  --from-leader   clone from the leader with pg_basebackup
  --wait          wait until the new replicas are up
  --force         do not ask; cancel a running task on the member`;

const FLUSH_USAGE = `usage: vigil flush [-c CONFIG] [-d DCS_URL] [-r ROLE] [--force] CLUSTER [MEMBER...] restart|switchover

Discard a scheduled restart (DELETE /restart) or a scheduled switchover (DELETE /switchover).`;

const byName = (a: Member, b: Member): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The members an operation applies to (patronictl's get_members): the named ones that have the
 * role, else all with the role (reinit asks instead). Prints the table first, asks for a member
 * when none was named and none qualifies, and confirms unless `force` or `ask` is false.
 */
export async function selectMembers(
  ctx: CtlContext,
  view: ClusterView,
  cluster: string,
  names: string[],
  role: RoleChoice,
  force: boolean,
  action: string,
  ask = true,
): Promise<Member[]> {
  const withRole = membersWithRole(view, role).sort(byName);
  const candidates = withRole.map((m) => m.name);
  if (names.length === 0 && candidates.length === 0) throw new CliError(`${cluster} cluster doesn't have any members`);
  ctx.io.out(membersTable(cluster, view));
  let chosen: string[];
  if (names.length > 0) {
    const unknown = names.filter((n) => !view.members.some((m) => m.name === n) && view.leader?.name !== n);
    if (unknown.length > 0) throw new CliError(`${unknown[0]} is not a member of cluster`);
    chosen = candidates.filter((c) => names.includes(c));
    if (chosen.length === 0) throw new CliError(`No ${role} among provided members`);
  } else {
    chosen = action === 'reinitialize' ? [] : candidates;
  }
  if (chosen.length === 0 && !force) {
    chosen = [await prompt(ctx.io, `Which member do you want to ${action} [${candidates.join(', ')}]?`, { default: '' })];
  }
  for (const n of chosen) if (!candidates.includes(n)) throw new CliError(`${n} is not a member of cluster`);
  const members = withRole.filter((m) => chosen.includes(m.name));
  if (members.length === 0) throw new CliError(`no member to ${action}`);
  if (ask) await confirmMembersAction(ctx.io, members, force, action);
  return members;
}

export async function confirmMembersAction(io: Io, members: Member[], force: boolean, action: string, scheduledAt?: string): Promise<void> {
  if (force) return;
  const names = members.map((m) => m.name).join(', ');
  if (scheduledAt) {
    if (!(await confirm(io, `Are you sure you want to schedule ${action} of members ${names} at ${scheduledAt}?`))) {
      throw new CliError(`Aborted scheduled ${action}`);
    }
  } else if (!(await confirm(io, `Are you sure you want to ${action} members ${names}?`))) {
    throw new CliError(`Aborted ${action}`);
  }
}

/** `Failed: <action> for member X, status code=N, (body)` for >= 400, else `Success: ...` (unless silent). */
export function checkResponseLine(r: RestResponse, member: string, action: string): { ok: boolean; line: string } {
  if (r.status >= 400) return { ok: false, line: `Failed: ${action} for member ${member}, status code=${r.status}, (${r.body})` };
  return { ok: true, line: `Success: ${action} for member ${member}` };
}

export function restartLine(r: RestResponse, member: string): string {
  if (r.status === 200) return `Success: restart on member ${member}`;
  if (r.status === 202) return `Success: restart scheduled on member ${member}`;
  if (r.status === 409) return `Failed: another restart is already scheduled on member ${member}`;
  return `Failed: restart for member ${member}, status code=${r.status}, (${r.body})`;
}

export function reloadLine(r: RestResponse, member: string, loopWaitS: number): string {
  if (r.status === 200) return `No changes to apply on member ${member}`;
  if (r.status === 202) return `Reload request received for member ${member} and will be processed within ${loopWaitS} seconds`;
  return `Failed: reload for member ${member}, status code=${r.status}, (${r.body})`;
}

/** `X.Y` or `X.Y.Z` (also a bare major from 10 on); the error text of Patroni's parser otherwise. */
export function checkPgVersion(v: string): void {
  if (!/^\d+(\.\d+){0,2}$/.test(v.trim())) throw new CliError(`${v} is not a valid PostgreSQL version string`);
}

/** The POST /restart body from the flags. */
export function restartBody(o: { pending: boolean; version?: string; scheduledAt?: string; timeout?: string }): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (o.pending) body['restart_pending'] = true;
  if (o.version) body['postgres_version'] = o.version;
  if (o.scheduledAt) body['schedule'] = o.scheduledAt;
  if (o.timeout !== undefined) body['timeout'] = o.timeout;
  return body;
}

function clusterAndMembers(positionals: string[], what: string): { cluster: string; names: string[] } {
  const [cluster, ...names] = positionals;
  if (cluster === undefined) throw new UsageError(`${what} needs CLUSTER`);
  return { cluster, names };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function runRestart(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    RESTART_USAGE,
    {
      role: { type: 'string', short: 'r' },
      any: { type: 'boolean' },
      scheduled: { type: 'string' },
      'pg-version': { type: 'string' },
      pending: { type: 'boolean' },
      timeout: { type: 'string' },
      force: { type: 'boolean' },
    },
    async (p, _io, context) => {
      const { cluster, names } = clusterAndMembers(p.positionals, 'restart');
      const role = parseRole(optString(p, 'role'), 'any')!;
      const force = optBool(p, 'force');
      const pending = optBool(p, 'pending');
      let scheduled = optString(p, 'scheduled');
      let version = optString(p, 'pg-version');
      const timeout = optString(p, 'timeout');
      if (version !== undefined && version !== '') checkPgVersion(version);
      if (timeout !== undefined && !(Number(timeout) > 0) && !/^\s*\d+(\.\d+)?\s*(ms|s|min|h|d)\s*$/.test(timeout)) {
        throw new UsageError(`--timeout needs a positive number of seconds, got '${timeout}'`);
      }
      const ctx = await context();
      const view = await ctx.readCluster(cluster);
      let members = await selectMembers(ctx, view, cluster, names, role, force, 'restart', false);
      if (scheduled === undefined && !force) {
        scheduled = await prompt(ctx.io, `When should the restart take place (e.g. ${nextHourExample()}) `, { default: 'now' });
      }
      const scheduledAt = parseScheduled(scheduled);
      await confirmMembersAction(ctx.io, members, force, 'restart', scheduledAt);
      if (optBool(p, 'any')) members = [members[Math.floor(Math.random() * members.length)]!];
      if (version === undefined && !force) {
        version = await prompt(ctx.io, 'Restart if the PostgreSQL version is less than provided (e.g. 9.5.2) ', { default: '' });
        if (version !== '') checkPgVersion(version);
      }
      if (scheduledAt !== undefined && isPaused(view.config)) throw new CliError("Can't schedule restart in the paused state");
      // An immediate --pending restart only concerns members that report a pending restart.
      if (pending && scheduledAt === undefined) members = members.filter((m) => m.data.pending_restart === true);
      const body = restartBody({ pending, ...(version ? { version } : {}), ...(scheduledAt ? { scheduledAt } : {}), ...(timeout !== undefined ? { timeout } : {}) });
      const startTimeout = Number(timeout) > 0 ? Number(timeout) : Number(view.config?.['primary_start_timeout']) > 0 ? Number(view.config?.['primary_start_timeout']) : 300;
      let code = 0;
      for (const m of members) {
        try {
          if (scheduledAt !== undefined && force && m.data.scheduled_restart) {
            const d = await ctx.request(m, 'DELETE', 'restart');
            const c = checkResponseLine(d, m.name, 'flush scheduled restart');
            if (!c.ok) ctx.io.out(`${c.line}\n`);
          }
          const r = await ctx.request(m, 'POST', 'restart', body, (startTimeout + 60) * 1000);
          ctx.io.out(`${restartLine(r, m.name)}\n`);
          if (r.status !== 200 && r.status !== 202) code = 1;
        } catch (err) {
          ctx.io.out(`Failed: restart for member ${m.name}, ${errText(err)}\n`);
          code = 1;
        }
      }
      return code;
    },
    io,
  );
}

export function runReload(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    RELOAD_USAGE,
    { role: { type: 'string', short: 'r' }, force: { type: 'boolean' } },
    async (p, _io, context) => {
      const { cluster, names } = clusterAndMembers(p.positionals, 'reload');
      const role = parseRole(optString(p, 'role'), 'any')!;
      const ctx = await context();
      const view = await ctx.readCluster(cluster);
      const members = await selectMembers(ctx, view, cluster, names, role, optBool(p, 'force'), 'reload');
      let code = 0;
      for (const m of members) {
        try {
          const r = await ctx.request(m, 'POST', 'reload');
          ctx.io.out(`${reloadLine(r, m.name, loopWait(view))}\n`);
          if (r.status !== 200 && r.status !== 202) code = 1;
        } catch (err) {
          ctx.io.out(`Failed: reload for member ${m.name}, ${errText(err)}\n`);
          code = 1;
        }
      }
      return code;
    },
    io,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function runReinit(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    REINIT_USAGE,
    { 'from-leader': { type: 'boolean' }, wait: { type: 'boolean' }, force: { type: 'boolean' } },
    async (p, _io, context) => {
      const { cluster, names } = clusterAndMembers(p.positionals, 'reinit');
      const force = optBool(p, 'force');
      const ctx = await context();
      const view = await ctx.readCluster(cluster);
      const members = await selectMembers(ctx, view, cluster, names, 'replica', force, 'reinitialize');
      const waitOn: Member[] = [];
      let code = 0;
      for (const m of members) {
        const body = { force, from_leader: optBool(p, 'from-leader') };
        for (;;) {
          let r: RestResponse;
          try {
            r = await ctx.request(m, 'POST', 'reinitialize', body);
          } catch (err) {
            ctx.io.out(`Failed: reinitialize for member ${m.name}, ${errText(err)}\n`);
            code = 1;
            break;
          }
          const c = checkResponseLine(r, m.name, 'reinitialize');
          ctx.io.out(`${c.line}\n`);
          if (!c.ok && r.body.endsWith(' already in progress') && !body.force && (await confirm(ctx.io, 'Do you want to cancel it and reinitialize anyway?'))) {
            body.force = true;
            continue;
          }
          if (!c.ok) code = 1;
          else if (optBool(p, 'wait')) waitOn.push(m);
          break;
        }
      }
      let shown = '';
      while (waitOn.length > 0) {
        const list = waitOn.map((m) => m.name).join(', ');
        if (list !== shown) {
          ctx.io.out(`Waiting for reinitialize to complete on: ${list}\n`);
          shown = list;
        }
        await sleep(2000);
        for (const m of [...waitOn]) {
          let state: unknown;
          try {
            const r = await ctx.request(m, 'GET', 'patroni', undefined, 5000);
            state = (JSON.parse(r.body) as { state?: unknown }).state;
          } catch {
            continue; // busy or restarting: ask again next round
          }
          if (state !== 'creating replica') {
            ctx.io.out(`Reinitialize is completed on: ${m.name}\n`);
            waitOn.splice(waitOn.indexOf(m), 1);
          }
        }
      }
      return code;
    },
    io,
  );
}

export function runFlush(argv: string[], io?: Io): Promise<number> {
  return runCommand(
    argv,
    FLUSH_USAGE,
    { role: { type: 'string', short: 'r' }, force: { type: 'boolean' } },
    async (p, _io, context) => {
      const pos = [...p.positionals];
      const target = pos.pop();
      if (target !== 'restart' && target !== 'switchover') {
        throw new UsageError(`flush needs CLUSTER [MEMBER...] restart|switchover, got '${target ?? ''}' as the target`);
      }
      const { cluster, names } = clusterAndMembers(pos, 'flush');
      const role = parseRole(optString(p, 'role'), 'any')!;
      const force = optBool(p, 'force');
      const ctx = await context();
      const view = await ctx.readCluster(cluster);
      if (target === 'restart') {
        let code = 0;
        for (const m of await selectMembers(ctx, view, cluster, names, role, force, 'flush')) {
          if (!m.data.scheduled_restart) {
            ctx.io.out(`No scheduled restart for member ${m.name}\n`);
            continue;
          }
          try {
            const c = checkResponseLine(await ctx.request(m, 'DELETE', 'restart'), m.name, 'flush scheduled restart');
            ctx.io.out(`${c.line}\n`);
            if (!c.ok) code = 1;
          } catch (err) {
            ctx.io.out(`Failed: flush scheduled restart for member ${m.name}, ${errText(err)}\n`);
            code = 1;
          }
        }
        return code;
      }
      const failover = view.failover;
      if (failover === undefined || !failover.scheduled_at) {
        ctx.io.out('No pending scheduled switchover\n');
        return 0;
      }
      for (const m of membersLeaderFirst(view)) {
        let r: RestResponse;
        try {
          r = await ctx.request(m, 'DELETE', 'switchover');
        } catch (err) {
          ctx.io.err(`Member ${m.name} is not accessible: ${errText(err)}\n`);
          continue;
        }
        if (r.status === 200 || r.status === 404) {
          ctx.io.out(`${r.status === 200 ? 'Success' : 'Failed'}: ${r.body}\n`);
          return r.status === 200 ? 0 : 1;
        }
        ctx.io.out(`Failed: member=${m.name}, status_code=${r.status}, (${r.body})\n`);
      }
      ctx.io.out(`${timestamp()} Could not find any accessible member of cluster ${cluster}\n`);
      let ok: boolean;
      try {
        ok = await ctx.dcs(cluster).writeFailover({}, failover.version);
      } catch (err) {
        throw ctx.dcsError(`cannot clear the failover key of '${cluster}'`, err);
      }
      if (!ok) throw new CliError('the failover key changed meanwhile; nothing was flushed');
      ctx.io.out('Success: scheduled switchover deleted\n');
      return 0;
    },
    io,
  );
}
