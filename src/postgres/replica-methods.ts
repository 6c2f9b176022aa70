// User commands that make the data directory: one replica method of
// postgresql.create_replica_methods (see src/config/replica-methods.ts; DataDir.createReplica
// tries them in order), and the script of a custom bootstrap.method.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BootstrapSettings } from '../config/types.ts';
import type { ReplicaMethod } from '../config/replica-methods.ts';
import { parseConnUrl, renderConninfo } from './conninfo.ts';
import { krbEnv, lastLines, ownForPg, run } from './exec.ts';
import type { PgNode } from './node.ts';

/**
 * The argument list Patroni passes a method: its command, then (without no_params) the section's
 * keys with scope, role=replica, datadir and connstring set (a same-named key is replaced in
 * place), each as --key=value. Pure.
 */
export function replicaMethodArgv(m: ReplicaMethod & { command: string[] }, ctx: { scope: string; dataDir: string; connstring: string }): string[] {
  const pairs = m.options.map(([k, v]): [string, string] => [k, v]);
  if (!m.noParams) {
    for (const [k, v] of [['scope', ctx.scope], ['role', 'replica'], ['datadir', ctx.dataDir], ['connstring', ctx.connstring]] as const) {
      const at = pairs.findIndex(([pk]) => pk === k);
      if (at >= 0) pairs[at] = [k, v];
      else pairs.push([k, v]);
    }
  }
  return [...m.command, ...pairs.map(([k, v]) => `--${k}=${v}`)];
}

/**
 * Runs method `m` into the (already emptied unless keep_data) data directory, with no deadline
 * (`signal` kills it). `from` is the clone source (its replication connection string is passed as
 * --connstring, the password through a temporary PGPASSFILE). Resolves when it exited 0; rejects
 * with the command's failure otherwise.
 */
export async function runReplicaMethod(node: PgNode, m: ReplicaMethod & { command: string[] }, from: { connUrl: string } | undefined, signal: AbortSignal | undefined): Promise<void> {
  const repl = node.settings.authentication.replication;
  let connstring = '';
  let pgpass: string | undefined;
  if (from !== undefined) {
    const t = parseConnUrl(from.connUrl);
    connstring = renderConninfo([
      ['dbname', t.dbname ?? node.settings.database],
      ['user', repl.username],
      ['host', t.host],
      ['port', t.port],
    ]);
    if (repl.password !== undefined && repl.password !== '') {
      pgpass = await node.tempPgpass('replica-method', [{ host: t.host, port: t.port, database: '*', user: repl.username, password: repl.password }]);
    }
  }
  const argv = replicaMethodArgv(m, { scope: node.scope ?? '', dataDir: node.dataDir, connstring });
  try {
    node.log.info(`creating the replica with method ${m.name}: ${argv.join(' ')}`);
    const r = await run(argv[0]!, argv.slice(1), { signal, env: { ...(pgpass !== undefined ? { PGPASSFILE: pgpass } : {}), ...krbEnv(node.settings.krbsrvname) } });
    const out = lastLines(r.stdout + r.stderr, 5);
    node.log.info(`replica created with method ${m.name}${out !== '' ? `: ${out}` : ''}`);
    await ownForPg(node.dataDir, 0o700);
  } finally {
    if (pgpass !== undefined) await rm(pgpass, { force: true });
  }
}

/**
 * Runs a custom bootstrap's command (with --scope and --datadir unless no_params) into the empty
 * data directory, with no deadline (`signal` kills it); unless keep_existing_recovery_conf,
 * removes the recovery.signal and standby.signal it may have left. Rejects when it exits non-zero.
 */
export async function runCustomBootstrap(node: PgNode, custom: NonNullable<BootstrapSettings['custom']>, signal: AbortSignal | undefined): Promise<void> {
  const argv = [...custom.command, ...(custom.noParams ? [] : [`--scope=${node.scope ?? ''}`, `--datadir=${node.dataDir}`])];
  node.log.info(`running custom bootstrap script: ${argv.join(' ')}`);
  const r = await run(argv[0]!, argv.slice(1), { signal });
  const out = lastLines(r.stdout + r.stderr, 5);
  node.log.info(`custom bootstrap script finished${out !== '' ? `: ${out}` : ''}`);
  await ownForPg(node.dataDir, 0o700);
  if (!custom.keepExistingRecoveryConf) {
    for (const f of ['recovery.signal', 'standby.signal']) await rm(join(node.dataDir, f), { force: true });
  }
}
