// A planned switchover seen through HAProxy: a real three-node Vigil cluster (ttl 10, loop_wait 2,
// retry_timeout 3) behind a real HAProxy configured like examples/haproxy.cfg (low-latency checks),
// a client writing continuously through HAProxy's primary port, and POST /switchover on the
// leader's REST API. Checks that nothing acknowledged is lost, that writes acknowledged after the
// switchover completed were committed by the new primary (inet_server_port() returned by the INSERT
// itself), and that the replicas port leads only to replicas. The client's write gap is printed,
// never asserted. Skipped when haproxy is not installed.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import { LocalCluster, SUPERUSER } from '../../src/local/cluster.ts';
import { requestSwitchover, waitHealthy } from '../../bench/lib/cluster-ops.ts';
import { missingIds, Writer, type Credentials, type Endpoint } from '../../bench/lib/workload.ts';
import { backendsOf, Haproxy, HAPROXY_BIN, haproxyUnavailableReason, LOW_LATENCY_CHECKS } from '../support/haproxy.ts';
import { query, waitFor } from '../support/wait.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
const CRED: Credentials = { user: SUPERUSER.username, password: SUPERUSER.password, database: 'postgres' };
const skip = haproxyUnavailableReason() ?? false;

test('examples/haproxy.cfg is a valid HAProxy configuration', { skip, timeout: 15_000 }, async () => {
  const file = resolve(import.meta.dirname, '..', '..', 'examples', 'haproxy.cfg');
  const out = await new Promise<{ code: number; text: string }>((res) => {
    execFile(HAPROXY_BIN, ['-c', '-f', file], { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, text: stdout + stderr });
    });
  });
  assert.equal(out.code, 0, out.text);
  assert.doesNotMatch(out.text, /\[WARNING\]|\[ALERT\]/, out.text);
});

describe('planned switchover through HAProxy', { skip, timeout: 240_000 }, () => {
  let base = '';
  let cluster: LocalCluster;
  let haproxy: Haproxy | undefined;
  let oldPrimary = '';
  let candidate = '';

  const direct = (): Endpoint[] => cluster.nodes.map((n) => ({ name: n.name, host: '127.0.0.1', port: n.pgPort }));
  const nodeOfPort = (port: number): string => cluster.nodes.find((n) => n.pgPort === port)?.name ?? `port ${port}`;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'vigil-haproxy-switchover-'));
    cluster = new LocalCluster({ baseDir: base, nodes: 3, timing: TIMING });
    await cluster.prepare();
    await cluster.startAll();
    oldPrimary = await waitHealthy(cluster, 120_000);
    haproxy = await Haproxy.start({ dir: join(base, 'haproxy'), backends: backendsOf(cluster), checks: LOW_LATENCY_CHECKS });
    await new Writer(direct(), CRED).ensureTable();
    await waitFor('HAProxy to route the primary port to the primary', async () => (await haproxy?.upServers('primary'))?.join() === oldPrimary, 30_000, 100);
  });

  after(async () => {
    await haproxy?.stop();
    await cluster?.stop();
    if (process.env.VIGIL_KEEP_TEST_DIRS === undefined && base !== '') await rm(base, { recursive: true, force: true });
  });

  test('a client writing through HAProxy loses nothing, and writes after the switchover go to the new primary', async () => {
    const h = haproxy as Haproxy;
    candidate = cluster.nodes.map((n) => n.name).find((n) => n !== oldPrimary) as string;
    const writer = new Writer([{ name: 'haproxy', host: '127.0.0.1', port: h.primaryPort }], CRED, { firstId: 1 });
    writer.start();
    try {
      await waitFor('writes through HAProxy for 1 s', async () => {
        const first = writer.acks[0];
        return first !== undefined && performance.now() - first.at >= 1000;
      }, 30_000, 100);
      const reply = await requestSwitchover(cluster, oldPrimary, candidate, 90_000);
      assert.equal(reply.status, 200, `POST /switchover answered ${reply.status}: ${reply.text}`);
      assert.match(reply.text, new RegExp(`Successfully switched over to "${candidate}"`));
      // Keep writing until a few writes were acknowledged after the switchover completed.
      await waitFor('writes acknowledged after the switchover', async () => writer.acks.filter((a) => a.at > reply.doneAt).length >= 20, 30_000, 100);

      await writer.stop();
      const acks = writer.acks;
      const before = acks.filter((a) => a.connectedAt <= reply.sentAt);
      const lastBefore = before[before.length - 1];
      const firstAfter = acks.find((a) => a.connectedAt > reply.sentAt);
      const gap = lastBefore !== undefined && firstAfter !== undefined ? ((firstAfter.at - lastBefore.at) / 1000).toFixed(3) : '?';
      process.stdout.write(
        `# switchover ${oldPrimary} -> ${candidate} through HAProxy (${h.checks.label}): client write gap ${gap} s, ` +
          `request took ${((reply.doneAt - reply.sentAt) / 1000).toFixed(3)} s, ${acks.length} writes acknowledged, ${writer.errors} failed attempts\n`,
      );

      // Before the request every write went to the old primary; after completion, only to the candidate.
      const oldPort = cluster.node(oldPrimary).pgPort;
      const newPort = cluster.node(candidate).pgPort;
      const early = acks.filter((a) => a.at < reply.sentAt && a.serverPort !== oldPort);
      assert.deepEqual(early.slice(0, 5).map((a) => nodeOfPort(a.serverPort)), [], 'writes before the switchover committed elsewhere than on the old primary');
      const late = acks.filter((a) => a.at > reply.doneAt);
      assert.ok(late.length >= 20);
      const strays = late.filter((a) => a.serverPort !== newPort);
      assert.deepEqual(strays.slice(0, 5).map((a) => ({ id: a.id, node: nodeOfPort(a.serverPort) })), [], 'writes acknowledged after the switchover were committed elsewhere than on the new primary');
      // Any write acknowledged between the request and its completion came from one of the two.
      for (const a of acks) assert.ok(a.serverPort === oldPort || a.serverPort === newPort, `write ${a.id} committed on ${nodeOfPort(a.serverPort)}`);
    } finally {
      await writer.stop();
    }

    // The old primary rejoins as a streaming replica; then every acknowledged id is on the new primary.
    const primary = await waitHealthy(cluster, 90_000);
    assert.equal(primary, candidate);
    const missing = await missingIds(direct(), CRED, writer.acks.map((a) => a.id));
    assert.deepEqual(missing, [], 'acknowledged writes missing after a planned switchover');
  });

  test('HAProxy routes the primary port to the new primary and the replicas port only to replicas', async () => {
    assert.notEqual(candidate, '', 'the switchover test ran first');
    const h = haproxy as Haproxy;
    const replicas = cluster.nodes.map((n) => n.name).filter((n) => n !== candidate).sort();
    await waitFor('HAProxy to see the new roles', async () => {
      const p = await h.upServers('primary');
      const r = await h.upServers('replicas');
      return p.join() === candidate && r.join() === replicas.join();
    }, 30_000, 100);
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const rows = await query<{ rec: boolean; port: number }>(
        { host: '127.0.0.1', port: h.replicaPort, ...CRED },
        'SELECT pg_is_in_recovery() AS rec, inet_server_port() AS port',
      );
      const row = rows[0];
      assert.ok(row !== undefined);
      assert.equal(row.rec, true, `the replicas port led to ${nodeOfPort(row.port)}, which is not in recovery`);
      assert.ok(replicas.includes(nodeOfPort(row.port)), `the replicas port led to ${nodeOfPort(row.port)}`);
      seen.add(nodeOfPort(row.port));
    }
    assert.deepEqual([...seen].sort(), replicas, 'round robin over both replicas, the old primary included');
    const rows = await query<{ rec: boolean; port: number }>({ host: '127.0.0.1', port: h.primaryPort, ...CRED }, 'SELECT pg_is_in_recovery() AS rec, inet_server_port() AS port');
    assert.equal(rows[0]?.rec, false);
    assert.equal(nodeOfPort(rows[0]?.port ?? 0), candidate);
  });
});
