// Values that pass the eye but not the DCS (issue 14 item 1), on a real one-node cluster
// (PostgreSQL 15, etcd, a `vigil agent` process, FAST timing):
// - PATCH /config {"ttl": 9000000001} (etcd refuses leases over 9e9 s) is refused with 400 and
//   /config is unchanged;
// - the same value, and a too-deep document, written into /config in etcd directly: the agent logs
//   a clear error, keeps the timings in force, and the cluster keeps its primary for several ttl.
// - a deeply nested REST body gets 400 "nested too deeply"; so does a too-deep /config in etcd for
//   GET /config (502) and `vigil show-config` (an error), instead of a stack overflow.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { FAST_TIMING, type LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { run, VIGIL } from '../support/cli.ts';
import { agentLog, ctlDcs, onePrimary, startCluster, stopCluster } from '../support/cluster.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('dynamic configuration bounds', { timeout: 300_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let dcs: Dcs;
  let primary: string;

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-it-bounds-', { nodes: 1, timing: FAST_TIMING }));
    dcs = ctlDcs(cluster);
    primary = await waitFor('a primary', () => onePrimary(cluster), 120_000);
    await waitFor('/config in the DCS', async () => (await dcs.readCluster()).config !== undefined, 30_000);
  });

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  const request = async (method: string, path: string, body: string): Promise<{ status: number; text: string }> => {
    const n = cluster.node(primary);
    const res = await fetch(`http://${n.host}:${n.apiPort}${path}`, { method, body: method === 'GET' ? undefined : body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, text: await res.text() };
  };

  test('PATCH /config with ttl 9000000001 is refused with 400 and /config is unchanged', async () => {
    const before = (await dcs.readCluster()).config;
    const res = await request('PATCH', '/config', JSON.stringify({ ttl: 9000000001 }));
    assert.equal(res.status, 400, res.text);
    assert.match(res.text, /ttl: must be between 1 and 86400, got 9000000001/);
    assert.deepEqual((await dcs.readCluster()).config, before);
  });

  test('a body nested 10,000 levels deep gets 400 saying so', async () => {
    const res = await request('PATCH', '/config', `{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
    assert.equal(res.status, 400, res.text);
    assert.match(res.text, /nested too deeply \(over 100 levels\)/);
  });

  test('an unusable /config written into etcd directly: the error is logged, the primary stays', async () => {
    const view = await dcs.readCluster();
    const config = { ...(view.config ?? {}), ttl: 9000000001, retry_timeout: 'soon' };
    assert.equal(await dcs.writeConfig(config, view.configVersion), true);
    const logged = await waitFor('the agent to log the unusable values', async () => {
      const log = readFileSync(cluster.node(primary).logFile, 'utf8');
      return /dynamic configuration in the DCS is unusable.*ttl: 9000000001 is above the maximum 86400/.test(log) ? log : undefined;
    }, 30_000);
    assert.match(logged, /retry_timeout: expected an integer, got \\*"soon\\*"/);
    // Three ttl periods (the leader lock would lapse within one without refreshes at the old ttl).
    await sleep(3 * FAST_TIMING.ttl * 1000);
    assert.equal(await onePrimary(cluster), primary, agentLog(cluster, primary));
    assert.equal((await dcs.readCluster()).leader?.name, primary);
    const status = await cluster.api(primary, '/patroni');
    assert.equal(status?.body?.role, 'primary');
  });

  test('a /config nested too deeply in etcd: GET /config says so, the primary stays', async () => {
    // Written through etcd's JSON gateway: no JSON.stringify can render it (it recurses per level).
    const view = await dcs.readCluster();
    const text = JSON.stringify(view.config ?? {}).replace(/}$/, `,"deep":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const put = await fetch(`http://${cluster.etcdEndpoint.replace(/^https?:\/\//, "")}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64('/service/demo/config'), value: b64(text) }) });
    assert.equal(put.status, 200, await put.text());
    const res = await waitFor('GET /config to refuse the deep document', async () => {
      const r = await request('GET', '/config', '');
      return r.status === 502 ? r : undefined;
    }, 30_000);
    assert.match(res.text, /nested too deeply/);
    const show = await run(VIGIL, ['show-config', '-c', cluster.node(primary).configFile], { timeoutMs: 30_000 });
    assert.notEqual(show.code, 0);
    assert.match(show.stderr, /the configuration in the DCS is nested too deeply \(over 100 levels\)/);
    await sleep(2 * FAST_TIMING.ttl * 1000);
    assert.equal(await onePrimary(cluster), primary, agentLog(cluster, primary));
    const fix = await request('PUT', '/config', JSON.stringify({ ttl: FAST_TIMING.ttl, loop_wait: FAST_TIMING.loop_wait, retry_timeout: FAST_TIMING.retry_timeout }));
    assert.equal(fix.status, 200, fix.text);
  });
});
