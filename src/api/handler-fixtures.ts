// Fixtures of the read-only handler tests (handlers.test.ts, status.test.ts; tests only).

import assert from 'node:assert/strict';

import { clusterView as emptyView } from '../core/model.ts';
import type { ClusterView, Member } from '../core/model.ts';
import { handle } from './handlers.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { snapshot } from './testing.ts';
import { PATRONI_COMPAT_VERSION } from './version.ts';

/** The handlers' clock in these tests (ms). */
export const NOW = 1_700_000_000_000;

export function member(name: string, data: Member['data']): Member {
  return { name, data, version: '1', session: '' };
}

/** A DCS view of scope demo: pg1 the leader (lsn 1000), pg2 a streaming replica. */
export function clusterView(extra: Partial<ClusterView> = {}): ClusterView {
  return emptyView({
    initialize: '7268616322854375442',
    config: { ttl: 30 },
    configVersion: '5',
    leader: { name: 'pg1', version: '9', session: 'abc' },
    members: [
      member('pg2', {
        conn_url: 'postgres://10.0.0.2:5433/postgres',
        api_url: 'http://10.0.0.2:8008/patroni',
        state: 'running',
        role: 'replica',
        replication_state: 'streaming',
        xlog_location: 900,
        replay_lsn: 900,
        receive_lsn: 950,
        timeline: 1,
      }),
      member('pg1', {
        conn_url: 'postgres://10.0.0.1:5432/postgres',
        api_url: 'http://10.0.0.1:8008/patroni',
        state: 'running',
        role: 'primary',
        xlog_location: 1000,
        timeline: 1,
        tags: { clonefrom: true },
      }),
    ],
    history: [],
    status: { optime: 1000 },
    revision: '42',
    ...extra,
  });
}

/** pg1, the running primary holding the lock, with a fresh DCS view at NOW. */
export function primary(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return snapshot({
    postmasterStartTime: '2024-08-28 19:39:26.352526+00:00',
    serverVersion: 150004,
    xlog: { location: 1000 },
    timeline: 1,
    leaderValidUntil: NOW + 30_000,
    cluster: clusterView(),
    clusterReadAt: NOW - 1000,
    dcsLastSeen: 1_699_999_999,
    sysid: '7268616322854375442',
    lastReason: 'no action. I am (pg1), the leader with the lock',
    takenAt: NOW - 1000,
    ...extra,
  });
}

/** pg2, a streaming replica of primary(). */
export function replica(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return primary({
    patroni: { version: PATRONI_COMPAT_VERSION, scope: 'demo', name: 'pg2' },
    role: 'replica',
    xlog: { received_location: 950, replayed_location: 900, replayed_timestamp: '2024-08-28 19:40:00.5+00', paused: false },
    replicationState: 'streaming',
    isLeader: false,
    leaderValidUntil: undefined,
    lastReason: 'no action. I am (pg2), a secondary, and following a leader (pg1)',
    ...extra,
  });
}

/** A request for `target` (path and query). */
export function req(method: string, target: string, headers: Record<string, string> = {}): ApiRequest {
  const q = target.indexOf('?');
  return {
    method,
    path: q < 0 ? target : target.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
    headers,
  };
}

/** GET `target` through handle() at NOW. */
export function get(snap: NodeSnapshot, target: string, opts?: HandlerOptions): ApiResponse {
  return handle(req('GET', target), snap, NOW, opts);
}

export function code(snap: NodeSnapshot, target: string): number {
  return get(snap, target).status;
}

/** The JSON body of a reply (asserts the content type). */
export function bodyOf(r: ApiResponse): Record<string, unknown> {
  assert.equal(r.contentType, 'application/json');
  return JSON.parse(r.body ?? '') as Record<string, unknown>;
}

// ---- Dispatch table (2.3) -----------------------------------------------------------------------
