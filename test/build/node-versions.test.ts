// The built package (scripts/build.sh: plain JavaScript, no TypeScript loader) on every Node.js
// version Vigil claims to support: `vigil --version`, then a one-node cluster whose agent runs
// the built dist/cli/main.js under that node: it bootstraps PostgreSQL, its REST API answers as the
// leader's, and its fencer is the native one built beside it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { stopCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';
import { LocalCluster, FAST_TIMING } from '../../src/local/cluster.ts';
import { SUPPORTED_NODE_VERSIONS, nodeBinary } from './versions.ts';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
let out = '';

before(async () => {
  // Inside the checkout (tmp/ is ignored by git) so that the built modules find node_modules.
  const tmp = join(ROOT, 'tmp');
  await import('node:fs/promises').then((fs) => fs.mkdir(tmp, { recursive: true }));
  out = await mkdtemp(join(tmp, 'build-'));
  await run('bash', [join(ROOT, 'scripts/build.sh'), out], { cwd: ROOT });
});

after(async () => {
  if (out !== '') await rm(out, { recursive: true, force: true });
});

for (const version of SUPPORTED_NODE_VERSIONS) {
  test(`Node.js ${version}: the built vigil runs, and an agent bootstraps and serves its REST API`, async () => {
    const node = nodeBinary(version);
    assert.ok(existsSync(node), `${node} is missing: run scripts/setup.sh`);
    assert.equal((await run(node, ['--version'])).stdout.trim(), `v${version}`);
    assert.equal((await run(node, [join(out, 'cli/main.js'), '--version'])).stdout.trim(), 'vigil 0.1.0');

    const base = await mkdtemp(join(ROOT, 'tmp', `node${version.split('.')[0]}-`));
    const cluster = new LocalCluster({ baseDir: base, nodes: 1, timing: FAST_TIMING, vigil: [node, join(out, 'cli/main.js')] });
    try {
      await cluster.prepare();
      await cluster.startAll();
      const name = cluster.nodes[0]!.name;
      await waitFor('the node to lead', async () => (await cluster.api(name, '/primary'))?.status === 200, 120_000);
      const st = await cluster.api(name, '/patroni');
      assert.equal(st?.body?.state, 'running');
      assert.equal(st?.body?.role, 'primary');
      // The agent runs under the claimed node, from the build (no tsx).
      const agentPid = cluster.nodes[0]!.process!.pid!;
      const cmd = readFileSync(`/proc/${agentPid}/cmdline`, 'utf8').split('\0');
      assert.deepEqual(cmd.slice(0, 2), [node, join(out, 'cli/main.js')]);
      // Its fencer is the native one built beside the build's fence.js.
      const fencerPid = await waitFor('the fencer pid file', async () => {
        const f = `${cluster.nodes[0]!.dataDir}.fencer.pid`;
        return existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : undefined;
      }, 60_000);
      assert.equal(readFileSync(`/proc/${fencerPid}/cmdline`, 'utf8').split('\0')[0], join(out, 'fence/fencer'));
    } finally {
      await stopCluster(cluster, base);
    }
  });
}
