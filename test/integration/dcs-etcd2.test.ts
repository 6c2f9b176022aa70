// The three-node story (test/support/dcs-story.ts) on the etcd v2 backend (Patroni's `etcd:`
// section), against a real etcd started with --enable-v2: real PostgreSQL 15 and real `vigil agent`
// processes. Checked besides the story: the leader and member keys where Patroni keeps them
// (/service/demo/leader and /service/demo/members/<name>, both with a TTL, config without one), and
// Patroni 3.0.2's patronictl (python3-etcd) listing the same cluster from the same `etcd:` section.
// Run: node --import tsx --test --test-concurrency=1 test/integration/dcs-etcd2.test.ts

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { clusterStory, TIMING } from '../support/dcs-story.ts';
import { run } from '../support/cli.ts';

const PATRONICTL = '/usr/bin/patronictl';

interface V2Node { value?: string; ttl?: number; expiration?: string }

clusterStory('etcd2', {
  async afterBootstrap({ store }, primary) {
    const endpoint = store.etcd2!.endpoints[0]!;
    const get = async (key: string): Promise<V2Node | undefined> => {
      const res = await fetch(`http://${endpoint}/v2/keys${key}`, { signal: AbortSignal.timeout(5000) });
      if (res.status === 404) return undefined;
      assert.equal(res.status, 200, `GET ${key}`);
      return ((await res.json()) as { node: V2Node }).node;
    };
    const leader = await get('/service/demo/leader');
    assert.equal(leader?.value, primary, '/service/demo/leader holds the primary name');
    assert.ok(leader?.expiration !== undefined && (leader.ttl ?? 0) <= TIMING.ttl, 'the leader key carries the ttl');
    const member = await get(`/service/demo/members/${primary}`);
    assert.equal((JSON.parse(member?.value ?? '{}') as { role?: string }).role, 'primary');
    assert.ok(member?.expiration !== undefined, 'the member key carries the ttl');
    const config = await get('/service/demo/config');
    assert.equal((JSON.parse(config?.value ?? '{}') as { ttl?: number }).ttl, TIMING.ttl);
    assert.equal(config?.expiration, undefined, 'config has no TTL');
  },

  async afterList({ cluster }, rows) {
    if (!existsSync(PATRONICTL) || !existsSync('/usr/lib/python3/dist-packages/etcd')) return;
    const theirs = await run(PATRONICTL, ['-c', cluster.nodes[0]!.configFile, 'list', '-f', 'json'], { env: { LANG: 'C.UTF-8' }, timeoutMs: 60_000 });
    assert.equal(theirs.code, 0, theirs.stderr);
    const prow = JSON.parse(theirs.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      // (State is left out: Patroni 3.0.2 shows a streaming replica as "running".)
      prow.map((r) => [r['Member'], r['Role'], r['TL']]),
      rows.map((r) => [r['Member'], r['Role'], r['TL']]),
      'patronictl sees the same members, roles and timelines in etcd (v2 API)',
    );
  },
});
