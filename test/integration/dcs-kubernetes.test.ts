// The three-node story (test/support/dcs-story.ts) on the Kubernetes backend (ConfigMaps, Patroni's
// default), against the FAKE API server of test/support/k8s-fake.ts (no Kubernetes API server can
// be installed here): real PostgreSQL 15 and real `vigil agent` processes, each acting as the pod
// named after its member (the pods are created first, as a StatefulSet would). Checked besides the
// story: the leader ConfigMap and the pods' role labels, where Patroni keeps them, and that the
// primary cut from the API server is demoted by its own agent, not by its fencer.
// Run: node --import tsx --test --test-concurrency=1 test/integration/dcs-kubernetes.test.ts

import assert from 'node:assert/strict';

import { clusterStory } from '../support/dcs-story.ts';
import { K8S_NAMESPACE } from '../support/dcs-stores.ts';
import { waitFor } from '../support/wait.ts';

clusterStory('kubernetes', {
  async afterBootstrap({ store, cluster }, primary) {
    const fake = store.k8s!.fake;
    const leader = fake.object(K8S_NAMESPACE, 'configmaps', 'demo-leader');
    const annotations = (leader?.['metadata'] as { annotations?: Record<string, string> } | undefined)?.annotations;
    assert.equal(annotations?.['leader'], primary, 'ConfigMap demo-leader names the primary');
    assert.equal(annotations?.['ttl'], '10');
    // Role labels follow the members' roles (written with the member data every loop).
    const roleOf = (name: string): unknown => ((fake.object(K8S_NAMESPACE, 'pods', name)?.['metadata'] as { labels?: Record<string, string> }).labels ?? {})['role'];
    await waitFor('pod role labels', async () => cluster.nodes.every((n) => roleOf(n.name) === (n.name === primary ? 'primary' : 'replica')), 30_000);
  },

  // The API server unreachable: the primary's own agent must demote it (its reads give up within
  // the time the fence deadline leaves), as on etcd; the fencer's SIGKILL is the backstop, and a
  // demotion it had to do is a failure here.
  async afterDcsLoss(_ctx, old, log) {
    assert.match(log, /demoting self because DCS is not accessible and I was a leader/, `${old}'s agent did not demote it itself:\n${log.slice(-3000)}`);
    assert.doesNotMatch(log, /the fencer (killed|fenced) PostgreSQL/, `${old} was stopped by its fencer, not demoted by its agent`);
  },
});
