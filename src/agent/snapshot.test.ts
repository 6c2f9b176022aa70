import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clusterView } from '../core/model.ts';
import { defaultConfig } from '../core/testing.ts';
import { loadConfig } from '../config/load.ts';
import { MINIMAL_CONFIG } from '../config/testing.ts';
import type { Config } from '../config/types.ts';
import { answersAsLeader, buildSnapshot, type SnapshotFacts } from './snapshot.ts';

const config = loadConfig(MINIMAL_CONFIG, {}).config as Config;

function facts(over: Partial<SnapshotFacts> = {}): SnapshotFacts {
  return {
    config,
    dynamic: defaultConfig(),
    pgState: 'running',
    role: 'primary',
    lastPg: undefined,
    lockRefreshedAt: 100_000,
    cluster: clusterView({ leader: { name: config.name, version: '5', session: '1' }, revision: '9' }),
    clusterReadAt: 100_000,
    task: undefined,
    lastReason: 'no action. I am (n1), the leader with the lock',
    watchdogFailed: false,
    failsafeActive: false,
    pendingRestart: undefined,
    scheduledRestart: undefined,
    ...over,
  };
}

test('the leader rule: a refresh younger than ttl and the view shows us holding the lock', () => {
  assert.equal(answersAsLeader(facts(), 100_000 + 29_999), true);
  assert.equal(answersAsLeader(facts(), 100_000 + 30_000), false, 'ttl passed since the last refresh');
  assert.equal(answersAsLeader(facts({ lockRefreshedAt: undefined }), 100_000), false, 'no confirmed lock');
  assert.equal(answersAsLeader(facts({ cluster: clusterView({ leader: { name: 'other', version: '5', session: '1' } }) }), 100_000), false, 'another member holds the lock');
  assert.equal(answersAsLeader(facts({ cluster: undefined }), 100_000), false, 'no view');
});

test('the leader rule: not while a demotion runs, nor while a promotion has not made PostgreSQL writable', () => {
  assert.equal(answersAsLeader(facts({ task: { kind: 'demote', state: 'running' } }), 100_000), false);
  const inRecovery = { inRecovery: true } as SnapshotFacts['lastPg'];
  assert.equal(answersAsLeader(facts({ task: { kind: 'promote', state: 'running' }, lastPg: inRecovery }), 100_000), false);
  assert.equal(answersAsLeader(facts({ task: { kind: 'promote', state: 'running' }, lastPg: { ...inRecovery, inRecovery: false } as SnapshotFacts['lastPg'] }), 100_000), true);
  // A finished demotion no longer counts as running.
  assert.equal(answersAsLeader(facts({ task: { kind: 'demote', state: 'ok' } }), 100_000), true);
});

test('the snapshot: a running PostgreSQL that did not answer is "unknown"; dcs_last_seen from the read time', () => {
  const snap = buildSnapshot(facts({ lastPg: { ready: false } as SnapshotFacts['lastPg'] }), 105_000, Date.parse('2026-01-01T00:00:10Z'));
  assert.equal(snap.state, 'unknown');
  assert.equal(snap.isLeader, true);
  assert.equal(snap.leaderValidUntil, 130_000);
  assert.equal(snap.dcsLastSeen, Date.parse('2026-01-01T00:00:05Z') / 1000);
  assert.equal(snap.nextRunAt, 115_000);
});
