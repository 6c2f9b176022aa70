// Day-2 operations on a real three-node cluster: planned switchover, manual failover, pause and
// resume, live configuration, restart and reinitialize, through the REST API and through
// Patroni 3.0.2's own patronictl.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { ctlDcs, healthy, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { query, sleep, waitFor } from '../support/wait.ts';

const PATRONICTL = '/usr/bin/patronictl';
const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = execFile(cmd, args, { timeout: 90_000, env: { ...process.env, LANG: 'C.UTF-8' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      res({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

describe('operations on a three-node cluster', { timeout: 900_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let dcs: Dcs;

  const leaderKey = async (): Promise<string | undefined> => (await dcs.readCluster()).leader?.name;
  const post = async (name: string, path: string, body?: unknown, method = 'POST'): Promise<{ status: number; text: string }> => {
    const res = await fetch(`http://127.0.0.1:${cluster.node(name).apiPort}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: res.status, text: await res.text() };
  };

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-ops-', { nodes: 3, timing: TIMING, logLevel: 'debug' }));
    dcs = ctlDcs(cluster);
    const p = await waitFor('healthy cluster', () => healthy(cluster), 120_000);
    await query(cluster.connParams(p), 'CREATE TABLE ops (id serial PRIMARY KEY, note text)');
  });

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  test('switchover written to /failover (patronictl fallback path): the candidate becomes primary, the old leader follows', async () => {
    const old = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const cand = cluster.nodes.map((n) => n.name).find((n) => n !== old) as string;
    await query(cluster.connParams(old), "INSERT INTO ops (note) VALUES ('before switchover')");
    assert.equal(await dcs.writeFailover({ leader: old, member: cand }), true);
    await waitFor(`${cand} to hold the lock`, async () => (await leaderKey()) === cand, 60_000);
    await waitFor(`${cand} primary`, async () => (await cluster.primaries()).join() === cand, 30_000);
    await waitFor(`${old} streaming from ${cand}`, async () => (await streamingReplicas(cluster)).includes(old), 60_000);
    const fo = (await dcs.readCluster()).failover;
    assert.ok(fo === undefined || (fo.leader === undefined && fo.member === undefined), '/failover cleared by the new leader');
    const rows = await query<{ note: string }>(cluster.connParams(cand), 'SELECT note FROM ops');
    assert.ok(rows.some((r) => r.note === 'before switchover'), 'nothing lost in a planned switchover');
  });

  test('switchover to an unknown member or from the wrong leader is refused and cleared', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const other = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    await dcs.writeFailover({ leader: other, member: leader });
    await waitFor('/failover cleared', async () => {
      const fo = (await dcs.readCluster()).failover;
      return fo === undefined || (fo.leader === undefined && fo.member === undefined);
    }, 30_000);
    assert.equal(await leaderKey(), leader, 'the leader did not move');
  });

  test('pause: a dead primary is not replaced; resume: it is', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const cfg = (await dcs.readCluster()).config ?? {};
    assert.equal(await dcs.writeConfig({ ...cfg, pause: true }), true);
    await waitFor('every member to report pause', async () => (await dcs.readCluster()).members.every((m) => m.data.pause === true), 30_000);
    // Stop the leader's agent abruptly but leave PostgreSQL running: in pause, nobody takes over.
    cluster.killAgent(leader, 'SIGKILL');
    await sleep((TIMING.ttl + 2 * TIMING.loop_wait) * 1000);
    assert.equal(await leaderKey(), undefined, 'the lock expired');
    for (const n of cluster.nodes.filter((x) => x.name !== leader)) {
      const rows = await query<{ r: boolean }>(cluster.connParams(n.name), 'SELECT pg_is_in_recovery() AS r');
      assert.equal(rows[0]?.r, true, `${n.name} was not promoted while paused`);
    }
    // Its agent comes back while paused: the running primary takes its lock back.
    cluster.startAgent(leader);
    await waitFor(`${leader} to retake the lock`, async () => (await leaderKey()) === leader, 60_000);
    const cfg2 = { ...((await dcs.readCluster()).config ?? {}) };
    delete cfg2['pause'];
    assert.equal(await dcs.writeConfig(cfg2), true);
    await waitFor('healthy again with the same leader', async () => (await healthy(cluster)) === leader, 90_000);
  });

  test('REST: POST /switchover with Patroni\'s body moves the primary; bad requests get 4xx', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const cand = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    const bad = await post(leader, '/switchover', { candidate: cand });
    assert.equal(bad.status, 400, bad.text);
    const same = await post(leader, '/switchover', { leader, candidate: leader });
    assert.equal(same.status, 400, same.text);
    const unknown = await post(leader, '/switchover', { leader, candidate: 'nobody' });
    assert.equal(unknown.status, 412, unknown.text);
    const ok = await post(leader, '/switchover', { leader, candidate: cand });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.text, new RegExp(`Successfully switched over to "${cand}"`));
    await waitFor('healthy after REST switchover', async () => (await healthy(cluster)) === cand, 90_000);
  });

  test('REST: PATCH /config changes a parameter on every member; a restart-only one becomes pending_restart', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const res = await post(leader, '/config', { postgresql: { parameters: { work_mem: '7MB', max_connections: 120 } } }, 'PATCH');
    assert.equal(res.status, 200, res.text);
    for (const n of cluster.nodes) {
      await waitFor(`work_mem on ${n.name}`, async () => (await query<{ w: string }>(cluster.connParams(n.name), "SELECT current_setting('work_mem') AS w"))[0]?.w === '7MB', 60_000);
    }
    await waitFor('pending_restart on every member', async () => (await dcs.readCluster()).members.every((m) => m.data.pending_restart === true), 60_000);
    // Restart only the members that need it, through the REST API of each.
    for (const n of cluster.nodes) {
      const r = await post(n.name, '/restart', { restart_pending: true });
      assert.equal(r.status, 200, `${n.name}: ${r.text}`);
    }
    for (const n of cluster.nodes) {
      await waitFor(`max_connections on ${n.name}`, async () => (await query<{ m: string }>(cluster.connParams(n.name), "SELECT current_setting('max_connections') AS m"))[0]?.m === '120', 60_000);
    }
    await waitFor('pending_restart cleared', async () => (await dcs.readCluster()).members.every((m) => m.data.pending_restart !== true), 60_000);
    await waitFor('healthy after restarts', () => healthy(cluster), 90_000);
  });

  test('REST: POST /reinitialize re-clones a replica; refused on the leader', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const replica = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    const refused = await post(leader, '/reinitialize', {});
    assert.equal(refused.status, 503);
    assert.match(refused.text, /I am the leader, can not reinitialize/);
    const pidBefore = cluster.postmasterPid(replica);
    const ok = await post(replica, '/reinitialize', { force: true });
    assert.equal(ok.status, 200, ok.text);
    await waitFor(`${replica} re-cloned and streaming`, async () => cluster.postmasterPid(replica) !== pidBefore && (await streamingReplicas(cluster)).includes(replica), 120_000);
  });

  test('patronictl 3.0.2 drives a Vigil cluster: list, switchover --force, failover, edit-config, pause/resume, restart, reinit', { skip: !existsSync(PATRONICTL) }, async () => {
    const cfg = cluster.nodes[0]!.configFile;
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const cand = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;

    const sw = await run(PATRONICTL, ['-c', cfg, 'switchover', '--leader', leader, '--candidate', cand, '--force']);
    assert.equal(sw.code, 0, sw.stderr + sw.stdout);
    await waitFor('patronictl switchover done', async () => (await healthy(cluster)) === cand, 90_000);

    const target = cluster.nodes.map((n) => n.name).find((n) => n !== cand) as string;
    const fo = await run(PATRONICTL, ['-c', cfg, 'failover', '--candidate', target, '--force']);
    assert.equal(fo.code, 0, fo.stderr + fo.stdout);
    await waitFor('patronictl failover done', async () => (await healthy(cluster)) === target, 90_000);

    const ec = await run(PATRONICTL, ['-c', cfg, 'edit-config', '--set', 'postgresql.parameters.work_mem=9MB', '--force']);
    assert.equal(ec.code, 0, ec.stderr + ec.stdout);
    for (const n of cluster.nodes) {
      await waitFor(`work_mem 9MB on ${n.name}`, async () => (await query<{ w: string }>(cluster.connParams(n.name), "SELECT current_setting('work_mem') AS w"))[0]?.w === '9MB', 60_000);
    }

    const pause = await run(PATRONICTL, ['-c', cfg, 'pause', '--wait']);
    assert.equal(pause.code, 0, pause.stderr + pause.stdout);
    assert.equal((await dcs.readCluster()).config?.['pause'], true);
    const resume = await run(PATRONICTL, ['-c', cfg, 'resume', '--wait']);
    assert.equal(resume.code, 0, resume.stderr + resume.stdout);
    assert.notEqual((await dcs.readCluster()).config?.['pause'], true);

    const replica = cluster.nodes.map((n) => n.name).find((n) => n !== target) as string;
    const rs = await run(PATRONICTL, ['-c', cfg, 'restart', 'demo', replica, '--force']);
    assert.equal(rs.code, 0, rs.stderr + rs.stdout);
    assert.match(rs.stdout, new RegExp(`Success: restart on member ${replica}`));

    const ri = await run(PATRONICTL, ['-c', cfg, 'reinit', 'demo', replica, '--force']);
    assert.equal(ri.code, 0, ri.stderr + ri.stdout);
    assert.match(ri.stdout, new RegExp(`Success: reinitialize for member ${replica}`));
    await waitFor('healthy after reinit', async () => (await healthy(cluster)) === target, 120_000);

    const list = await run(PATRONICTL, ['-c', cfg, 'list', '-f', 'json']);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(rows.filter((r) => r['Role'] === 'Leader').map((r) => r['Member']), [target]);
  });
});
