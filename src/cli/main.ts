// Entry point of the `vigil` command. Each subcommand lives in its own module exporting
// `run(argv: string[]): Promise<number>` (the exit code); modules are loaded lazily so that
// `vigil list` does not pay for the agent's dependencies.

const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  agent: { summary: 'run the HA agent for one PostgreSQL node: vigil agent CONFIG', load: () => import('./agent.ts') },
  'validate-config': { summary: 'check a configuration file and report every problem: vigil validate-config FILE', load: () => import('./validate-config.ts') },
  list: { summary: 'print the cluster table: vigil list -c CONFIG [CLUSTER]', load: () => import('./list.ts') },
  demo: { summary: 'start etcd and a three-node cluster on this machine; Ctrl-C stops it', load: () => import('./demo.ts') },
};

function usage(): string {
  const lines = ['usage: vigil COMMAND [ARGS]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write('vigil 0.1.0\n');
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`Error: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
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
