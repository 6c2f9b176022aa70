// The three-node story (test/support/dcs-story.ts) on the ZooKeeper backend, against a real
// ZooKeeper 3.8 (Debian's package, started by the test): real PostgreSQL 15 and real `vigil agent`
// processes. Checked besides the story: the leader znode where Patroni keeps it
// (/service/demo/leader, ephemeral, owned by the primary's session, as is its member znode), and
// Patroni 3.0.2's patronictl reading the same cluster through python3-kazoo and switching it over.
// Run: node --import tsx --test --test-concurrency=1 test/integration/dcs-zookeeper.test.ts

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { clusterStory } from '../support/dcs-story.ts';
import { run } from '../support/cli.ts';
import { healthy, onePrimary } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';
import { ZookeeperBackend } from '../../src/dcs/zookeeper.ts';

const PATRONICTL = '/usr/bin/patronictl';

clusterStory('zookeeper', {
  async afterBootstrap({ store }, primary) {
    const inspector = new ZookeeperBackend({ hosts: [store.zookeeper!.endpoint], prefix: '/service/demo/', name: 'inspector', ttl: 10, retryTimeout: 5 });
    try {
      const op = { signal: undefined, deadline: Date.now() + 5000, budgetMs: 5000 };
      const leader = await inspector.get('leader', op);
      assert.equal(leader?.value, primary, '/service/demo/leader holds the primary name');
      assert.notEqual(leader?.lease, '0', 'the leader znode is ephemeral');
      const member = await inspector.get(`members/${primary}`, op);
      assert.equal(member?.lease, leader?.lease, "the primary's member znode belongs to the same session");
    } finally {
      await inspector.close(undefined);
    }
  },

  async afterList({ cluster }, rows) {
    if (!existsSync(PATRONICTL) || !existsSync('/usr/lib/python3/dist-packages/kazoo')) return;
    const theirs = await run(PATRONICTL, ['-c', cluster.nodes[0]!.configFile, 'list', '-f', 'json'], { env: { LANG: 'C.UTF-8' }, timeoutMs: 60_000 });
    assert.equal(theirs.code, 0, theirs.stderr);
    const prow = JSON.parse(theirs.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      prow.map((r) => [r['Member'], r['Role'], r['TL']]),
      rows.map((r) => [r['Member'], r['Role'], r['TL']]),
      'patronictl sees the same members, roles and timelines in ZooKeeper',
    );
    // patronictl switches the Vigil cluster over (through the leader's REST API, as it does with Patroni).
    const leader = rows.find((r) => r['Role'] === 'Leader')?.['Member'] as string;
    const candidate = rows.find((r) => r['Role'] !== 'Leader')?.['Member'] as string;
    const sw = await run(PATRONICTL, ['-c', cluster.nodes[0]!.configFile, 'switchover', '--leader', leader, '--candidate', candidate, '--force'], { env: { LANG: 'C.UTF-8' }, timeoutMs: 90_000 });
    assert.equal(sw.code, 0, sw.stderr + sw.stdout);
    await waitFor(`${candidate} primary after patronictl switchover`, async () => (await onePrimary(cluster)) === candidate, 60_000);
    assert.equal(await waitFor('healthy cluster after patronictl switchover', () => healthy(cluster), 90_000), candidate);
  },
});
