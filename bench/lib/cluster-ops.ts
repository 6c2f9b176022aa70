// System-neutral cluster observations for the benchmark: they work the same against Vigil and
// Patroni because they use only the Patroni REST API, PostgreSQL and etcd's v3 JSON gateway.

import { performance } from 'node:perf_hooks';
import pg from 'pg';

import type { LocalCluster } from '../../src/local/cluster.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Health {
  primary: string | undefined;
  streaming: number;
  states: Record<string, string>;
}

/** One look at the cluster: who answers /primary, each node's /patroni state, streaming replicas. */
export async function observe(cluster: LocalCluster): Promise<Health> {
  const prims = await cluster.primaries();
  const states: Record<string, string> = {};
  await Promise.all(
    cluster.nodes.map(async (n) => {
      const r = await cluster.api(n.name, '/patroni');
      const s = r?.body?.['state'];
      states[n.name] = r === undefined ? 'unreachable' : typeof s === 'string' ? s : 'unknown';
    }),
  );
  let streaming = 0;
  const primary = prims.length === 1 ? prims[0] : undefined;
  if (primary !== undefined) {
    const c = new pg.Client({ ...cluster.connParams(primary), connectionTimeoutMillis: 1000, statement_timeout: 2000, query_timeout: 3000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'`);
      streaming = Number(r.rows[0]?.n ?? 0);
    } catch {
      streaming = 0;
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return { primary, streaming, states };
}

/**
 * Waits until exactly one node answers /primary, every node's /patroni says "running" and the
 * primary has nodes-1 streaming replicas; returns the primary's name. Throws with the last
 * observation when that does not happen within the timeout.
 */
export async function waitHealthy(cluster: LocalCluster, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: Health | undefined;
  while (Date.now() < deadline) {
    last = await observe(cluster);
    const allRunning = Object.values(last.states).every((s) => s === 'running');
    if (last.primary !== undefined && allRunning && last.streaming === cluster.nodes.length - 1) return last.primary;
    await sleep(500);
  }
  throw new Error(`cluster not healthy within ${Math.round(timeoutMs / 1000)} s; last seen: ${JSON.stringify(last)}`);
}

/**
 * The TTL etcd granted to the lease attached to the cluster's leader key (what the leader
 * actually asked for, after any adjustment the HA manager made), or undefined when unreadable.
 */
export async function leaderLeaseTtl(etcdEndpoint: string, namespace: string, scope: string): Promise<number | undefined> {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const ns = namespace.endsWith('/') ? namespace : `${namespace}/`;
  try {
    const kv = await fetch(`http://${etcdEndpoint}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(`${ns}${scope}/leader`) }),
      signal: AbortSignal.timeout(2000),
    });
    const body = (await kv.json()) as { kvs?: { lease?: string }[] };
    const lease = body.kvs?.[0]?.lease;
    if (lease === undefined || lease === '0') return undefined;
    const ttl = await fetch(`http://${etcdEndpoint}/v3/lease/timetolive`, {
      method: 'POST',
      body: JSON.stringify({ ID: lease }),
      signal: AbortSignal.timeout(2000),
    });
    const t = (await ttl.json()) as { grantedTTL?: string };
    const n = Number(t.grantedTTL);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seconds the leader key's lease has left right now (etcd's LeaseTimeToLive `TTL`, whole seconds,
 * rounded by etcd), or undefined when there is no leader key or it cannot be read.
 */
export async function leaderLeaseRemaining(etcdEndpoint: string, namespace: string, scope: string): Promise<number | undefined> {
  const ns = namespace.endsWith('/') ? namespace : `${namespace}/`;
  try {
    const kv = await fetch(`http://${etcdEndpoint}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from(`${ns}${scope}/leader`).toString('base64') }),
      signal: AbortSignal.timeout(2000),
    });
    const lease = ((await kv.json()) as { kvs?: { lease?: string }[] }).kvs?.[0]?.lease;
    if (lease === undefined || lease === '0') return undefined;
    const ttl = await fetch(`http://${etcdEndpoint}/v3/lease/timetolive`, { method: 'POST', body: JSON.stringify({ ID: lease }), signal: AbortSignal.timeout(2000) });
    const n = Number(((await ttl.json()) as { TTL?: string }).TTL);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface SwitchoverReply {
  status: number;
  text: string;
  /** performance.now() when the request was sent and when its reply arrived. */
  sentAt: number;
  doneAt: number;
}

/**
 * POST /switchover {"leader","candidate"} to the leader's REST API (Patroni's body; Patroni 3.0.2
 * and Vigil both answer 200 once the candidate leads). Network failures and timeouts are returned
 * as status 0 with the error text rather than thrown.
 */
export async function requestSwitchover(cluster: LocalCluster, leader: string, candidate: string, timeoutMs = 90_000): Promise<SwitchoverReply> {
  const url = `http://127.0.0.1:${cluster.node(leader).apiPort}/switchover`;
  const sentAt = performance.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ leader, candidate }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, text: text.trim(), sentAt, doneAt: performance.now() };
  } catch (err) {
    return { status: 0, text: err instanceof Error ? err.message : String(err), sentAt, doneAt: performance.now() };
  }
}

export interface LeaderKey {
  /** The member named in the leader key. */
  holder: string;
  /** etcd revision that created the key: a new one means the key was taken anew (expired, released). */
  createRevision: string;
}

/** The cluster's leader key as etcd (v3 JSON gateway) holds it now; undefined when absent or unreadable. */
export async function readLeaderKey(etcdEndpoint: string, namespace: string, scope: string): Promise<LeaderKey | undefined> {
  const ns = namespace.endsWith('/') ? namespace : `${namespace}/`;
  try {
    const res = await fetch(`http://${etcdEndpoint}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from(`${ns}${scope}/leader`).toString('base64') }),
      signal: AbortSignal.timeout(2000),
    });
    const body = (await res.json()) as { kvs?: { value?: string; create_revision?: string }[] };
    const kv = body.kvs?.[0];
    if (kv?.value === undefined) return undefined;
    return { holder: Buffer.from(kv.value, 'base64').toString('utf8'), createRevision: kv.create_revision ?? '?' };
  } catch {
    return undefined;
  }
}
