// Fixtures of the unsafe-endpoint tests (operations.test.ts, switchover.test.ts; tests only):
// MemPort, an in-memory OperationsPort, and request helpers.

import assert from 'node:assert/strict';

import { clusterView } from '../core/model.ts';
import type { ClusterView, Member, PeerStatus } from '../core/model.ts';
import type { OperationOptions } from './operation-common.ts';
import { handleOperation } from './operations.ts';
import type { FailsafeSender, OperationsPort, RestartOutcome, RestartRequest, ScheduledRestart } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { snapshot } from './testing.ts';

// 2024-05-01T12:00:00Z
export const NOW = new Date(Date.UTC(2024, 4, 1, 12, 0, 0));

/** pg<N> with api_url http://127.0.0.1:80<N>/patroni; pg1 is the primary. */
export function member(name: string, extra: Member['data'] = {}): Member {
  return {
    name,
    data: { api_url: `http://127.0.0.1:80${name.slice(2)}/patroni`, state: 'running', role: name === 'pg1' ? 'primary' : 'replica', ...extra },
    version: '1',
    session: '',
  };
}

/** pg1 (leader), pg2, pg3; a stored config with version 5. */
export function view(extra: Partial<ClusterView> = {}): ClusterView {
  return clusterView({
    initialize: '7268616322854375442',
    config: { ttl: 30, loop_wait: 10, postgresql: { parameters: { max_connections: 100 } } },
    configVersion: '5',
    leader: { name: 'pg1', version: '9', session: 'abc' },
    members: [member('pg1'), member('pg2'), member('pg3')],
    history: [],
    revision: '100',
    ...extra,
  });
}

/** A reachable, healthy replica as GET /patroni reported it. */
export function peer(name: string, extra: Partial<PeerStatus> = {}): PeerStatus {
  return { name, reachable: true, inRecovery: true, walPosition: 0, timeline: 1, nofailover: false, failoverPriority: 1, watchdogFailed: false, ...extra };
}

/** An in-memory stand-in for the agent: a DCS held in one ClusterView with CAS versions. */
export class MemPort implements OperationsPort {
  readonly name: string;
  cluster: ClusterView;
  rev = 100;
  reads = 0;
  readFails = false;
  writeFails = false;
  /** Called on each readCluster, after the count is bumped: lets a test play the HA loop. */
  onRead?: (p: MemPort) => void;
  /** POST /vigil/detach (absent: not offered). */
  detachFrom?: OperationsPort['detachFrom'];
  peers = new Map<string, PeerStatus>();
  fetched: string[] = [];
  failoverWrites: { value: Record<string, unknown>; version: string | undefined }[] = [];
  configWrites: { config: Record<string, unknown>; version: string | undefined }[] = [];
  wakeups = 0;
  restarts: RestartRequest[] = [];
  restartOutcome: RestartOutcome = { ok: true };
  restartThrows = false;
  scheduled: ScheduledRestart | undefined;
  reloads = 0;
  reinits: { force: boolean; fromLeader: boolean }[] = [];
  reinitResult: { ok: true } | { ok: false; message: string } = { ok: true };
  failsafeSenders: FailsafeSender[] = [];
  failsafeLsn: number | undefined;

  constructor(cluster: ClusterView = view(), name = 'pg1') {
    this.cluster = cluster;
    this.name = name;
  }

  readCluster(): Promise<ClusterView> {
    this.reads++;
    if (this.readFails) return Promise.reject(new Error('etcd is down'));
    this.onRead?.(this);
    return Promise.resolve(structuredClone(this.cluster));
  }

  writeFailover(value: Record<string, unknown>, version?: string): Promise<boolean> {
    if (this.writeFails) return Promise.reject(new Error('etcd is down'));
    this.failoverWrites.push({ value, version });
    if (version !== undefined && version !== this.cluster.failover?.version) return Promise.resolve(false);
    this.cluster.failover = { ...(value as Record<string, string>), version: String(++this.rev) };
    return Promise.resolve(true);
  }

  writeConfig(cfg: Record<string, unknown>, version?: string): Promise<boolean> {
    if (this.writeFails) return Promise.resolve(false);
    this.configWrites.push({ config: cfg, version });
    if (version !== undefined && version !== this.cluster.configVersion) return Promise.resolve(false);
    this.cluster.config = structuredClone(cfg);
    this.cluster.configVersion = String(++this.rev);
    return Promise.resolve(true);
  }

  fetchPeer(name: string, _apiUrl: string): Promise<PeerStatus> {
    this.fetched.push(name);
    return Promise.resolve(this.peers.get(name) ?? { ...peer(name), reachable: false });
  }

  wakeup(): void {
    this.wakeups++;
  }

  restart(req: RestartRequest): Promise<RestartOutcome> {
    this.restarts.push(req);
    if (this.restartThrows) return Promise.reject(new Error('boom'));
    return Promise.resolve(this.restartOutcome);
  }

  scheduleRestart(sr: ScheduledRestart): boolean {
    if (this.scheduled !== undefined) return false;
    this.scheduled = sr;
    return true;
  }

  cancelScheduledRestart(): boolean {
    if (this.scheduled === undefined) return false;
    this.scheduled = undefined;
    return true;
  }

  reload(): Promise<void> {
    this.reloads++;
    return Promise.resolve();
  }

  reinitialize(opts: { force: boolean; fromLeader: boolean }): Promise<{ ok: true } | { ok: false; message: string }> {
    this.reinits.push(opts);
    return Promise.resolve(this.reinitResult);
  }

  failsafeReceived(sender: FailsafeSender): { lsn: number | undefined } {
    this.failsafeSenders.push(sender);
    return { lsn: this.failsafeLsn };
  }
}

/** Switchover waits polled every 2 ms, given up after 40 ms. */
export const OPTS: OperationOptions = { now: () => NOW, pollIntervalMs: 2, switchoverTimeoutMs: 40 };

/** A request with `body` (JSON unless a string) and its Content-Length. */
export function req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): ApiRequest {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const h: Record<string, string | undefined> = { ...headers };
  if (text !== undefined && h['content-length'] === undefined) h['content-length'] = String(Buffer.byteLength(text));
  return { method, path, query: new URLSearchParams(), headers: h, ...(text !== undefined ? { body: text } : {}) };
}

/** handleOperation with OPTS and a default snapshot. */
export async function run(port: MemPort, r: ApiRequest, snap: NodeSnapshot = snapshot(), opts: OperationOptions = OPTS): Promise<ApiResponse> {
  return handleOperation(r, snap, port, opts);
}

/** A plain-message reply with this status and text. */
export function expectMessage(res: ApiResponse, status: number, body: string): void {
  assert.equal(res.status, status, `status (body: ${res.body})`);
  assert.equal(res.body, body);
  assert.match(res.contentType ?? '', /^text\/html/);
}

/** Peers pg2, pg3 reachable and healthy. */
export function healthyPort(cluster: ClusterView = view()): MemPort {
  const p = new MemPort(cluster);
  p.peers.set('pg2', peer('pg2'));
  p.peers.set('pg3', peer('pg3'));
  return p;
}
