// bootstrap.post_bootstrap on real single-node clusters (PostgreSQL 15, etcd, a `vigil agent`
// process), with real scripts. A succeeding script runs once after initdb, with the local
// superuser's connection string as its last argument (the password through a PGPASSFILE, never on
// the command line) and synchronous_commit=local in PGOPTIONS; what it creates is in the new
// cluster. A failing script aborts the bootstrap: no leader is ever taken, and the node's next
// race starts from an empty data directory again (the script runs again).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LocalCluster } from '../../src/local/cluster.ts';
import { ctlDcs, onePrimary, stopCluster } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

// post.sh DIR CODE CONNSTRING: logs its arguments and PGOPTIONS, creates a table through the
// connection string (CODE 0 only), exits CODE.
const SCRIPT = `#!/bin/sh
dir=$1 code=$2 conn=$3
echo "args=$# conn=$conn pgoptions=$PGOPTIONS passfile=\${PGPASSFILE:+set}" >> "$dir/runs"
if [ "$code" = 0 ]; then
  ${PSQL} "$conn" -v ON_ERROR_STOP=1 -c 'CREATE TABLE made_by_post_bootstrap (x int)' >> "$dir/out" 2>&1 || exit 9
fi
exit "$code"
`;

async function singleNode(prefix: string, code: number): Promise<{ base: string; hooks: string; cluster: LocalCluster }> {
  const base = await mkdtemp(join(tmpdir(), prefix));
  const cluster = new LocalCluster({ baseDir: base, nodes: 1, timing: TIMING });
  await cluster.prepare();
  const hooks = join(base, 'hooks');
  await mkdir(hooks);
  // The agent runs as root here, so the script runs as the PostgreSQL OS user: it writes here.
  await chmod(hooks, 0o777);
  await writeFile(join(hooks, 'post.sh'), SCRIPT);
  await chmod(join(hooks, 'post.sh'), 0o755);
  const n = cluster.nodes[0]!;
  const text = await readFile(n.configFile, 'utf8');
  await writeFile(n.configFile, text.replace('\nbootstrap:\n', `\nbootstrap:\n  post_bootstrap: ${JSON.stringify(`${join(hooks, 'post.sh')} ${hooks} ${code}`)}\n`));
  cluster.startAgent(n.name);
  return { base, hooks, cluster };
}

const runs = async (hooks: string): Promise<string[]> => (await readFile(join(hooks, 'runs'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');

describe('bootstrap.post_bootstrap', { timeout: 300_000 }, () => {
  const toStop: Array<{ base: string; cluster: LocalCluster }> = [];
  after(async () => {
    for (const c of toStop) await stopCluster(c.cluster, c.base);
  });

  test('a succeeding script runs once with the connection string; its table is in the new cluster', async () => {
    const c = await singleNode('vigil-postboot-ok-', 0);
    toStop.push(c);
    assert.equal(await waitFor('node0 to bootstrap', () => onePrimary(c.cluster), 120_000), 'node0');
    const lines = await runs(c.hooks);
    assert.equal(lines.length, 1, lines.join('\n'));
    const n = c.cluster.nodes[0]!;
    assert.equal(lines[0], `args=3 conn=dbname=postgres user=postgres host=${n.host} port=${n.pgPort} pgoptions=-c synchronous_commit=local passfile=set`);
    const rows = await query<{ n: string }>(c.cluster.connParams('node0'), "SELECT count(*) AS n FROM pg_class WHERE relname = 'made_by_post_bootstrap'");
    assert.equal(Number(rows[0]?.n), 1);
    // The roles Vigil creates after the script exist too.
    const repl = await query<{ n: string }>(c.cluster.connParams('node0'), 'SELECT count(*) AS n FROM pg_roles WHERE rolreplication AND NOT rolsuper');
    assert.equal(Number(repl[0]?.n), 1);
  });

  test('a failing script aborts the bootstrap: no leader, and the next race starts over from scratch', async () => {
    const c = await singleNode('vigil-postboot-fail-', 3);
    toStop.push(c);
    await waitFor('the script to run a second time', async () => ((await runs(c.hooks)).length >= 2 ? true : undefined), 180_000);
    const dcs = ctlDcs(c.cluster);
    try {
      assert.equal((await dcs.readCluster()).leader, undefined);
    } finally {
      await dcs.close();
    }
    assert.equal(await onePrimary(c.cluster), undefined);
  });
});
