// `vigil pause [CLUSTER]` / `vigil resume [CLUSTER]` (spec §3.2): PATCH /config {"pause": true}
// or {"pause": null}, sent to the leader first, then to the other members until one answers.
// --wait then polls the DCS until every member that was there publishes the new pause flag.

import type { ClusterView } from '../../core/model.ts';
import { CliError, UsageError } from '../args.ts';
import { isPaused, isTrue } from '../../core/values.ts';
import { CtlContext, loopWait, membersLeaderFirst, optBool, runCommand } from './common.ts';
import { type Io } from './io.ts';

const usage = (verb: string): string => `usage: vigil ${verb} [-c CONFIG] [-d DCS_URL] [--wait] [CLUSTER]

${verb === 'pause' ? 'Put the cluster in maintenance mode: no automatic failover' : 'Leave maintenance mode'} (PATCH /config).

  --wait   wait until every member has noticed`;

/** Members (with an api_url in `before`) whose published pause flag still differs from `paused`. */
export function pauseLaggards(before: ClusterView, now: ClusterView, paused: boolean): string[] {
  const names = new Set(membersLeaderFirst(before).map((m) => m.name));
  return now.members.filter((m) => names.has(m.name) && isTrue(m.data.pause) !== paused).map((m) => m.name);
}

async function waitApplied(ctx: CtlContext, cluster: string, paused: boolean, before: ClusterView): Promise<number> {
  ctx.io.out(`'${paused ? 'pause' : 'resume'}' request sent, waiting until it is recognized by all nodes\n`);
  const wait = loopWait(before);
  const deadline = Date.now() + (wait + 1) * 1000;

  for (;;) {
    const now = await ctx.readCluster(cluster);
    const laggards = pauseLaggards(before, now, paused);
    if (laggards.length === 0) break;
    if (Date.now() >= deadline) {
      ctx.io.out(`${laggards.join(', ')} members didn't recognized pause state after ${wait} seconds\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  ctx.io.out(`Success: cluster management is ${paused ? 'paused' : 'resumed'}\n`);
  return 0;
}

function toggle(paused: boolean, argv: string[], io?: Io): Promise<number> {
  const verb = paused ? 'pause' : 'resume';
  return runCommand(
    argv,
    usage(verb),
    { wait: { type: 'boolean' } },
    async (p, _io, context) => {
      if (p.positionals.length > 1) throw new UsageError(`${verb} takes at most one CLUSTER, got ${p.positionals.length}`);
      const ctx = await context();
      const cluster = ctx.clusterName(p.positionals[0]);
      const view = await ctx.readCluster(cluster);
      if (isPaused(view.config) === paused) throw new CliError(`Cluster is ${paused ? 'already' : 'not'} paused`);
      for (const m of membersLeaderFirst(view)) {
        let r;
        try {
          r = await ctx.request(m, 'PATCH', 'config', { pause: paused ? true : null });
        } catch (err) {
          ctx.io.err(`Member ${m.name} is not accessible: ${err instanceof Error ? err.message : String(err)}\n`);
          continue;
        }
        if (r.status === 200) {
          if (optBool(p, 'wait')) return waitApplied(ctx, cluster, paused, view);
          ctx.io.out(`Success: cluster management is ${paused ? 'paused' : 'resumed'}\n`);
          return 0;
        }
        ctx.io.out(`Failed: ${verb} cluster management status code=${r.status}, (${r.body})\n`);
        return 1;
      }
      throw new CliError('Can not find accessible cluster member');
    },
    io,
  );
}

export function runPause(argv: string[], io?: Io): Promise<number> {
  return toggle(true, argv, io);
}

export function runResume(argv: string[], io?: Io): Promise<number> {
  return toggle(false, argv, io);
}
