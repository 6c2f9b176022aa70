// Fixtures shared by the REST API tests in src/api and test/api (tests only).

import type { ClusterView, PeerStatus } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import type { FailsafeSender, OperationsPort, RestartOutcome } from './port.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { PATRONI_COMPAT_VERSION } from './version.ts';

/** The fields every snapshot needs: pg1 of scope demo, a running primary holding the lock; `extra` replaces any. */
export function snapshot(extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    patroni: { version: PATRONI_COMPAT_VERSION, scope: 'demo', name: 'pg1' },
    state: 'running',
    role: 'primary',
    isLeader: true,
    config: defaultConfig(),
    tags: {},
    lastReason: 'no action',
    takenAt: 0,
    ...extra,
  };
}

/**
 * An OperationsPort for the tests of POST /failsafe: every method a test does not override throws,
 * so a request that reaches the wrong part of the agent fails the test.
 */
export abstract class FailsafeOnlyPort implements OperationsPort {
  abstract readonly name: string;
  abstract failsafeReceived(sender: FailsafeSender): { lsn: number | undefined };
  protected unused(): never {
    throw new Error('not used by POST /failsafe');
  }
  readCluster(): Promise<ClusterView> {
    return this.unused();
  }
  writeFailover(): Promise<boolean> {
    return this.unused();
  }
  writeConfig(): Promise<boolean> {
    return this.unused();
  }
  fetchPeer(): Promise<PeerStatus> {
    return this.unused();
  }
  wakeup(): void {
    this.unused();
  }
  restart(): Promise<RestartOutcome> {
    return this.unused();
  }
  scheduleRestart(): boolean {
    return this.unused();
  }
  cancelScheduledRestart(): boolean {
    return this.unused();
  }
  reload(): Promise<void> {
    return this.unused();
  }
  reinitialize(): Promise<{ ok: true }> {
    return this.unused();
  }
}
