#!/usr/bin/env -S node --max-semi-space-size=1
// (The shebang's --max-semi-space-size=1 keeps V8's young generation small: about 5 MiB less
// resident memory for the agent at no measurable cost in REST throughput; docs/benchmarks.md.
// `env -S` splits the line: GNU coreutils 8.30+.)
// Entry point of the `vigil` command. Each subcommand lives in its own module exporting
// `run(argv: string[]): Promise<number>` (the exit code); modules are loaded lazily so that
// `vigil list` does not pay for the agent's dependencies. patronictl's global options (-c, -d, -k)
// may come before the verb (global-options.ts).

import * as nodeModule from 'node:module';
import { GLOBAL_OPTIONS_HELP, splitGlobalOptions } from './global-options.ts';

// Node 22.1+: keep the compiled code of the modules loaded below on disk (in the OS temporary
// directory, per user), so that later starts skip most of the parsing and compiling (start-up of
// the agent to an answering REST API). Absent on older Node; a failure only costs speed.
try {
  (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  // no cache: slower start only
}

const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  agent: { summary: 'run the HA agent for one PostgreSQL node: vigil agent [CONFIG]', load: () => import('./agent.ts') },
  'validate-config': { summary: 'check a configuration file and report every problem: vigil validate-config FILE', load: () => import('./validate-config.ts') },
  list: { summary: 'print the cluster table: vigil list -c CONFIG [CLUSTER]', load: () => import('./list.ts') },
  demo: { summary: 'start etcd and a three-node cluster on this machine; Ctrl-C stops it', load: () => import('./demo.ts') },
  topology: { summary: 'print the members as a replication tree: vigil topology [CLUSTER...]', load: () => import('./ctl/info.ts').then((m) => ({ run: m.runTopology })) },
  switchover: { summary: 'hand the leader role to a replica: vigil switchover [--candidate NAME] [CLUSTER]', load: () => import('./ctl/switchover.ts').then((m) => ({ run: m.runSwitchover })) },
  failover: { summary: 'promote a specific member: vigil failover --candidate NAME [CLUSTER]', load: () => import('./ctl/switchover.ts').then((m) => ({ run: m.runFailover })) },
  'demote-cluster': { summary: 'make the cluster a standby cluster of another: vigil demote-cluster --host H [--port P] [CLUSTER]', load: () => import('./ctl/cluster-role.ts').then((m) => ({ run: m.runDemoteCluster })) },
  'promote-cluster': { summary: 'make a standby cluster stand alone (read-write): vigil promote-cluster [CLUSTER]', load: () => import('./ctl/cluster-role.ts').then((m) => ({ run: m.runPromoteCluster })) },
  restart: { summary: 'restart PostgreSQL on members: vigil restart CLUSTER [MEMBER...]', load: () => import('./ctl/members.ts').then((m) => ({ run: m.runRestart })) },
  reload: { summary: 'reload members\' configuration: vigil reload CLUSTER [MEMBER...]', load: () => import('./ctl/members.ts').then((m) => ({ run: m.runReload })) },
  reinit: { summary: 'wipe and re-clone replicas: vigil reinit CLUSTER [MEMBER...]', load: () => import('./ctl/members.ts').then((m) => ({ run: m.runReinit })) },
  flush: { summary: 'discard scheduled events: vigil flush CLUSTER [MEMBER...] restart|switchover', load: () => import('./ctl/members.ts').then((m) => ({ run: m.runFlush })) },
  pause: { summary: 'maintenance mode on: vigil pause [--wait] [CLUSTER]', load: () => import('./ctl/pause.ts').then((m) => ({ run: m.runPause })) },
  resume: { summary: 'maintenance mode off: vigil resume [--wait] [CLUSTER]', load: () => import('./ctl/pause.ts').then((m) => ({ run: m.runResume })) },
  'show-config': { summary: 'print the dynamic configuration: vigil show-config [CLUSTER]', load: () => import('./ctl/config.ts').then((m) => ({ run: m.runShowConfig })) },
  'edit-config': { summary: 'change the dynamic configuration: vigil edit-config [-s K=V] [-p GUC=V] [CLUSTER]', load: () => import('./ctl/config.ts').then((m) => ({ run: m.runEditConfig })) },
  history: { summary: 'print the failover/switchover history: vigil history [CLUSTER]', load: () => import('./ctl/info.ts').then((m) => ({ run: m.runHistory })) },
  dsn: { summary: 'print host/port of the leader or a member: vigil dsn [-r ROLE|-m MEMBER] [CLUSTER]', load: () => import('./ctl/info.ts').then((m) => ({ run: m.runDsn })) },
  query: { summary: 'run SQL on a member: vigil query -c SQL [-r ROLE|-m MEMBER] [CLUSTER]', load: () => import('./ctl/query.ts').then((m) => ({ run: m.runQuery })) },
  remove: { summary: 'delete a cluster from the DCS: vigil remove CLUSTER', load: () => import('./ctl/info.ts').then((m) => ({ run: m.runRemove })) },
  version: { summary: "print vigil's and the members' versions: vigil version [CLUSTER [MEMBER...]]", load: () => import('./ctl/info.ts').then((m) => ({ run: m.runVersion })) },
};

/** Verbs that are not control commands: the global options do not apply to them. */
const NOT_CTL = new Set(['agent', 'validate-config', 'demo']);

function usage(): string {
  const lines = ['usage: vigil [GLOBAL OPTIONS] COMMAND [ARGS]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
  lines.push('', GLOBAL_OPTIONS_HELP, '(the control commands: all but agent, validate-config and demo)');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let globals;
  try {
    globals = splitGlobalOptions(argv);
  } catch (err) {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n\n${usage()}\n`);
    return 2;
  }
  const [name, ...rest] = globals.rest;
  if (globals.version && name === undefined) {
    process.stdout.write('vigil 0.1.0\n');
    return 0;
  }
  if (name === undefined || name === 'help' || globals.help) {
    process.stdout.write(usage() + '\n');
    return name === undefined && !globals.help ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`Error: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  if (globals.args.length > 0 && NOT_CTL.has(name)) {
    process.stderr.write(`Error: ${globals.args.map((a) => a.replace(/=.*$/, '')).join(', ')} before '${name}': the global options apply to the control commands only\n`);
    return 2;
  }
  const mod = await command.load();
  return mod.run([...globals.args, ...rest]);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
