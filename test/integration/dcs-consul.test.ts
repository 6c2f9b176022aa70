// The three-node story (test/support/dcs-story.ts) on the Consul backend, against the FAKE Consul
// agent of test/support/consul-fake.ts (no Consul server can be installed here): real PostgreSQL 15
// and real `vigil agent` processes. Checked besides the story: the leader key where Patroni keeps it
// (service/demo/leader, held by a session), the service registration (register_service), and
// Patroni 3.0.2's patronictl reading the same cluster through python3-consul.
// Run: node --import tsx --test --test-concurrency=1 test/integration/dcs-consul.test.ts

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { clusterStory } from '../support/dcs-story.ts';
import { run } from '../support/cli.ts';
import { waitFor } from '../support/wait.ts';

const PATRONICTL = '/usr/bin/patronictl';

clusterStory('consul', {
  async afterBootstrap({ store }, primary) {
    const consul = store.consul!;
    const res = await fetch(`http://${consul.address}/v1/kv/service/demo/leader`, { signal: AbortSignal.timeout(5000) });
    const [leader] = (await res.json()) as Array<{ Value: string; Session?: string }>;
    assert.equal(Buffer.from(leader!.Value, 'base64').toString(), primary, 'service/demo/leader holds the primary name');
    assert.match(leader!.Session ?? '', /^[0-9a-f-]{36}$/, 'the leader key is held by a session');
    // register_service: one instance per member, the primary tagged so.
    await waitFor('the three members registered, the primary tagged primary', async () => {
      const services = Object.values(consul.services());
      const mine = services.find((s) => s['ID'] === `demo/${primary}`);
      return services.length === 3 && (mine?.['Tags'] as string[] | undefined)?.includes('primary') === true;
    }, 30_000);
  },

  async afterList({ cluster }, rows) {
    if (!existsSync(PATRONICTL)) return;
    const theirs = await run(PATRONICTL, ['-c', cluster.nodes[0]!.configFile, 'list', '-f', 'json'], { env: { LANG: 'C.UTF-8' }, timeoutMs: 60_000 });
    assert.equal(theirs.code, 0, theirs.stderr);
    const prow = JSON.parse(theirs.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      prow.map((r) => [r['Member'], r['Role'], r['TL']]),
      rows.map((r) => [r['Member'], r['Role'], r['TL']]),
      'patronictl sees the same members, roles and timelines in Consul',
    );
  },
});
