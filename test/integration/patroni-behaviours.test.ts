// Patroni's exact behaviour where a Patroni user would notice a difference (issue 11 item 7), on a
// real three-node cluster: the state published for a dead postmaster in pause and restart/reinit of
// it, switchovers in pause, a second agent with a running member's name, and Patroni's
// operator-visible log lines for HA decisions (docs/log-messages.md) with their words and levels.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import type { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { ctlDcs, healthy, processRuns, startCluster, stopCluster, streamingReplicas } from '../support/cluster.ts';
import { run, VIGIL } from '../support/cli.ts';
import { query, waitFor } from '../support/wait.ts';

const TIMING = { ttl: 10, loop_wait: 2, retry_timeout: 3 };
// Patroni's level names, as the agent's plain lines (Patroni's default format) print them.
const INFO = 'INFO';
const WARN = 'WARNING';
const FATAL = 'CRITICAL';
// node2's tags contradict each other: Patroni warns at start-up, and nofailover wins.
const NOFAILOVER = 'node2';

interface LogRecord {
  level: string;
  msg: string;
}

/** The log records of a text in Patroni's default format `%(asctime)s %(levelname)s: %(message)s` (other lines are skipped). */
function records(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL): (.*)$/.exec(line);
    if (m !== null) out.push({ level: m[1] as string, msg: m[2] as string });
  }
  return out;
}

describe("Patroni's exact behaviours on a three-node cluster", { timeout: 600_000 }, () => {
  let base: string;
  let cluster: LocalCluster;
  let dcs: Dcs;

  const logOf = (name: string): LogRecord[] => records(readFileSync(cluster.node(name).logFile, 'utf8'));
  const logged = (name: string, level: string, msg: string | RegExp): boolean =>
    logOf(name).some((r) => r.level === level && (typeof msg === 'string' ? r.msg === msg : msg.test(r.msg)));
  const leaderKey = async (): Promise<string | undefined> => (await dcs.readCluster()).leader?.name;
  const memberState = async (name: string): Promise<string | undefined> => (await dcs.readCluster()).members.find((m) => m.name === name)?.data.state;
  const call = async (name: string, path: string, body?: unknown, method = 'POST'): Promise<{ status: number; text: string }> => {
    const res = await fetch(`http://127.0.0.1:${cluster.node(name).apiPort}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: res.status, text: await res.text() };
  };
  const setPause = async (on: boolean): Promise<void> => {
    const r = await call(cluster.nodes[0]!.name, '/config', { pause: on ? true : null }, 'PATCH');
    assert.equal(r.status, 200, r.text);
    await waitFor(`every member to report pause=${on}`, async () => (await dcs.readCluster()).members.every((m) => (m.data.pause === true) === on), 30_000);
  };

  before(async () => {
    ({ base, cluster } = await startCluster('vigil-exact-', {
      nodes: 3,
      timing: TIMING,
      logLevel: 'debug',
      tags: { [NOFAILOVER]: { nofailover: true, failover_priority: 1 } },
    }));
    dcs = ctlDcs(cluster);
    await waitFor('healthy cluster with two streaming replicas', async () => (await healthy(cluster)) !== undefined && (await streamingReplicas(cluster)).length === 2, 120_000);
  });

  after(async () => {
    await dcs?.close();
    await stopCluster(cluster, base);
  });

  test('conflicting nofailover and failover_priority tags: Patroni\'s warning at start-up, nofailover wins', async () => {
    assert.ok(
      logged(NOFAILOVER, WARN, 'Conflicting configuration between nofailover: True and failover_priority: 1. Defaulting to nofailover: True'),
      'the warning is in the agent log at WARN',
    );
    for (const n of cluster.nodes.filter((x) => x.name !== NOFAILOVER)) {
      assert.ok(!logged(n.name, WARN, /^Conflicting configuration/), `${n.name} has no conflicting tags`);
    }
  });

  test("a second agent with a running member's name stops with Patroni's critical message", async () => {
    const name = cluster.nodes[1]!.name;
    const r = await run(VIGIL, ['agent', cluster.node(name).configFile], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const fatal = records(r.stderr).filter((x) => x.level === FATAL);
    assert.deepEqual(fatal.map((x) => x.msg), [`Can't start; there is already a node named '${name}' running`]);
    assert.ok((await dcs.readCluster()).members.some((m) => m.name === name), 'the running member is untouched');
  });

  test('a switchover to a member not allowed to promote: "Member <name> is not allowed to promote" at INFO, the request is cleaned up', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    assert.notEqual(leader, NOFAILOVER);
    // Written straight into /failover (the REST API refuses it before the leader sees it).
    assert.equal(await dcs.writeFailover({ leader, member: NOFAILOVER }), true);
    await waitFor('/failover cleared', async () => {
      const fo = (await dcs.readCluster()).failover;
      return fo === undefined || (fo.leader === undefined && fo.member === undefined);
    }, 30_000);
    assert.equal(await leaderKey(), leader, 'the leader did not move');
    assert.ok(logged(leader, INFO, `Member ${NOFAILOVER} is not allowed to promote`));
    assert.ok(logged(leader, WARN, 'manual failover: no healthy members found, failover is not possible'));
    assert.ok(logged(leader, INFO, 'Cleaning up failover key'));
  });

  test('pause: a scheduled switchover is refused with Patroni\'s message; an immediate one to a healthy replica succeeds', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const cand = cluster.nodes.map((n) => n.name).find((n) => n !== leader && n !== NOFAILOVER) as string;
    await setPause(true);
    const at = new Date(Date.now() + 3600_000).toISOString();
    const scheduled = await call(leader, '/switchover', { leader, candidate: cand, scheduled_at: at });
    assert.equal(scheduled.status, 400, scheduled.text);
    assert.equal(scheduled.text, "Can't schedule switchover in the paused state");
    assert.equal((await dcs.readCluster()).failover?.scheduled_at, undefined, 'nothing was scheduled');

    const now = await call(leader, '/switchover', { leader, candidate: cand });
    assert.equal(now.status, 200, now.text);
    assert.match(now.text, new RegExp(`Successfully switched over to "${cand}"`));
    await waitFor(`${cand} primary, ${leader} streaming from it, still paused`, async () => {
      if ((await leaderKey()) !== cand || (await cluster.primaries()).join() !== cand) return false;
      return (await streamingReplicas(cluster)).includes(leader);
    }, 90_000);
    assert.equal((await dcs.readCluster()).config?.['pause'], true);
    await setPause(false);
  });

  test('pause: a replica whose postmaster died is published as stopped and not restarted; restart and reinit then work', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    const replica = cluster.nodes.map((n) => n.name).find((n) => n !== leader) as string;
    await setPause(true);
    const notRunning = 'postgres is not running (paused: not starting it)';
    const kill = async (): Promise<void> => {
      const seen = logOf(replica).filter((r) => r.msg === notRunning).length;
      const pid = cluster.postmasterPid(replica);
      assert.ok(processRuns(pid), 'postgres runs before the kill');
      cluster.killPostgres(replica, 'SIGKILL');
      await waitFor(`${replica} published as stopped`, async () => (await memberState(replica)) === 'stopped', 30_000);
      // Three more ticks that decided to leave it down: it was not restarted meanwhile.
      await waitFor('three ticks leaving postgres down', async () => logOf(replica).filter((r) => r.msg === notRunning).length >= seen + 3, 60_000);
      // A start would have written a new postmaster.pid: the file still names the dead postmaster.
      assert.equal(cluster.postmasterPid(replica), pid, 'not restarted in pause');
      assert.ok(!processRuns(pid));
      assert.equal(await memberState(replica), 'stopped', 'never published as crashed');
      const api = await cluster.api(replica);
      assert.equal(api?.body?.['state'], 'stopped', 'GET /patroni says stopped');
    };

    await kill();
    const restart = await call(replica, '/restart', {});
    assert.equal(restart.status, 200, restart.text);
    await waitFor(`${replica} streaming again after restart`, async () => (await memberState(replica)) === 'running' && (await streamingReplicas(cluster)).includes(replica), 90_000);

    await kill();
    const reinit = await call(replica, '/reinitialize', { force: true });
    assert.equal(reinit.status, 200, reinit.text);
    await waitFor(`${replica} re-cloned and streaming after reinit`, async () => (await memberState(replica)) === 'running' && (await streamingReplicas(cluster)).includes(replica), 120_000);
    assert.equal(await leaderKey(), leader, 'the leader kept its lock throughout');
    await setPause(false);
  });

  test('strict synchronous mode with no replica connected: "No standbys available!" at WARNING', async () => {
    const leader = await waitFor('healthy cluster', () => healthy(cluster), 60_000);
    // Both replicas down for good: their agents and PostgreSQL are killed.
    for (const n of cluster.nodes.filter((x) => x.name !== leader)) cluster.killAgent(n.name, 'SIGKILL', { withPostgres: true });
    await waitFor('no replication connection left', async () => (await query(cluster.connParams(leader), 'SELECT 1 FROM pg_stat_replication')).length === 0, 30_000);
    const r = await call(leader, '/config', { synchronous_mode: true, synchronous_mode_strict: true }, 'PATCH');
    assert.equal(r.status, 200, r.text);
    await waitFor('the warning in the leader log', async () => logged(leader, WARN, 'No standbys available!'), 30_000);
  });
});
