import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterView, type ClusterView, type LocalPg } from '../core/model.ts';
import { remoteName } from '../core/standby.ts';
import { cloneWithoutLeader, divergenceQuestion } from './observe.ts';
import { loadConfig } from '../config/load.ts';
import { MINIMAL_CONFIG } from '../config/testing.ts';
import { fencedAsLeader, followRole, memberRecovery, remoteTarget } from './standby.ts';
import { defaultConfig } from '../core/testing.ts';
import type { DynamicConfig } from '../core/model.ts';

const REMOTE = remoteName({ host: '10.0.0.9', port: 5433, restore_command: 'cp /a/%f %p', recovery_min_apply_delay: '2s' });

const pg = (over: Partial<LocalPg> = {}): LocalPg => ({
  dataDirEmpty: false, sysid: '7300000000000000001', running: false, ready: false, inRecovery: false, walLsn: undefined, receiveLsn: undefined,
  replayLsn: undefined, timeline: 2, streaming: false, upstream: null, controlState: 'shut down', rewindable: true, crashed: false, ...over,
});

const view = (leader: string | undefined, leaderRole = 'standby_leader', leaderTl = 2): ClusterView =>
  clusterView({
    ...(leader !== undefined ? { leader: { name: leader, version: '5', session: '1' } } : {}),
    members: ['n1', 'n2'].map((name) => ({ name, version: '1', session: '1', data: { conn_url: `postgres://${name}:5432/postgres`, role: name === leader ? leaderRole : 'replica', timeline: leaderTl } })),
    revision: '9',
  });

test('the remote member resolves to its host, no slot unless given, and its recovery settings', () => {
  assert.deepEqual(remoteTarget(REMOTE), { connUrl: 'postgres://10.0.0.9:5433', name: REMOTE, slot: null, recovery: { restore_command: 'cp /a/%f %p', recovery_min_apply_delay: '2s' } });
  assert.equal(remoteTarget('n1'), undefined);
  assert.equal(remoteTarget(remoteName({ restore_command: 'x' }))?.connUrl, '');
  // Members following the standby leader: restore_command and archive_cleanup_command, no apply delay.
  assert.deepEqual(memberRecovery({ standby_cluster: { host: 'h', restore_command: 'r', recovery_min_apply_delay: 5 } }), { recovery: { restore_command: 'r' } });
  assert.deepEqual(memberRecovery({}), {});
  assert.equal(followRole({ role: 'standby_leader' }, REMOTE), 'standby_leader');
  assert.equal(followRole({ role: 'replica' }, REMOTE), 'replica');
  assert.equal(followRole({ role: 'standby_leader' }, 'n1'), 'replica');
});

test('standby cluster divergence: a former primary is compared with the remote; a member ahead of its standby leader\'s timeline has diverged', () => {
  const q = divergenceQuestion('n1', view('n1'), pg(), REMOTE);
  assert.ok(typeof q === 'object' && q.connUrl === 'postgres://10.0.0.9:5433');
  assert.equal(typeof divergenceQuestion('n1', view(undefined), pg(), REMOTE), 'object');
  assert.equal(typeof divergenceQuestion('n1', view('n1'), pg({ inRecovery: true, controlState: 'shut down in recovery' }), REMOTE), 'object');
  // A running standby leader: asked only while it cannot stream from the remote.
  assert.equal(typeof divergenceQuestion('n1', view('n1'), pg({ running: true, ready: true, inRecovery: true, streaming: false }), REMOTE), 'object');
  assert.equal(divergenceQuestion('n1', view('n1'), pg({ running: true, ready: true, inRecovery: true, streaming: true }), REMOTE), 'irrelevant');
  // Archive only: nobody to ask.
  assert.equal(divergenceQuestion('n1', view('n1'), pg(), remoteName({ restore_command: 'r' })), 'irrelevant');
  assert.equal(divergenceQuestion('n1', view('n1'), pg({ controlState: 'in production' }), REMOTE), 'not_asked');
  assert.equal(divergenceQuestion('n1', view('n2', 'standby_leader', 2), pg({ running: true, ready: true, inRecovery: true, timeline: 3 }), REMOTE), 'ahead');
  assert.equal(divergenceQuestion('n1', view('n2', 'standby_leader', 3), pg({ running: true, ready: true, inRecovery: true, timeline: 3, streaming: true }), REMOTE), 'irrelevant');
});

test('standby cluster divergence: a streaming member is never "ahead" (its leader\'s published timeline may lag a switch)', () => {
  assert.notEqual(divergenceQuestion('n1', view('n2', 'standby_leader', 2), pg({ running: true, ready: true, inRecovery: true, timeline: 3, streaming: true }), REMOTE), 'ahead');
});

test('the fencer guards a standby cluster\'s lock holder only while it is writable', () => {
  const standby = defaultConfig({ standby_cluster: { host: 'h' } } as Partial<DynamicConfig>);
  const running = pg({ running: true, ready: true, inRecovery: true });
  assert.equal(fencedAsLeader({ isLeader: true }, { pg: running, config: standby }), false);
  assert.equal(fencedAsLeader({ isLeader: true }, { pg: { ...running, inRecovery: false }, config: standby }), true, 'a primary before demote-cluster');
  assert.equal(fencedAsLeader({ isLeader: true }, { pg: running, config: defaultConfig() }), true, 'a replica about to be promoted');
  assert.equal(fencedAsLeader({ isLeader: false }, { pg: running, config: defaultConfig() }), false);
});

test('standby cluster divergence of a member following the standby leader: the remote is asked', () => {
  const member = pg({ inRecovery: true, controlState: 'shut down in recovery' });
  const stopped = divergenceQuestion('n1', view('n2', 'standby_leader', 3), member, REMOTE);
  assert.ok(typeof stopped === 'object' && stopped.connUrl === 'postgres://10.0.0.9:5433');
  const stuck = pg({ running: true, ready: true, inRecovery: true, streaming: false, timeline: 2 });
  assert.equal(typeof divergenceQuestion('n1', view('n2', 'standby_leader', 3), stuck, REMOTE), 'object');
  assert.equal(divergenceQuestion('n1', view('n2', 'standby_leader', 2), stuck, REMOTE), 'irrelevant');
  assert.equal(divergenceQuestion('n1', view('n2', 'standby_leader', 3), { ...stuck, streaming: true }, REMOTE), 'irrelevant');
  assert.equal(divergenceQuestion('n1', view('n2', 'standby_leader', 3), pg({ controlState: 'in production' }), REMOTE), 'not_asked');
});

test('without a lock holder a standby cluster\'s member judges standby_cluster.create_replica_methods, not its own list', () => {
  const local = (lines: string) => {
    const r = loadConfig(MINIMAL_CONFIG.replace('postgresql:\n', `postgresql:\n${lines}`), {});
    assert.ok(r.config !== undefined);
    return r.config.postgresql;
  };
  // Its own list has a no_leader method; the archcopy section (not listed) is no_leader too.
  const pg = local('  create_replica_methods: [restore]\n  restore: {command: /bin/true, no_leader: true}\n  archcopy: {command: /bin/true, no_master: true}\n  plain: {command: /bin/true}\n');
  const standby = (methods?: string[]) => ({ standby_cluster: { host: 'h', ...(methods !== undefined ? { create_replica_methods: methods } : {}) } });
  assert.equal(cloneWithoutLeader(pg, {}), true, 'not a standby cluster: its own list');
  assert.equal(cloneWithoutLeader(pg, standby(['archcopy'])), true, 'a section alone is enough');
  assert.equal(cloneWithoutLeader(pg, standby(['basebackup', 'plain', 'undefined_one'])), false, 'none works without a connection');
  assert.equal(cloneWithoutLeader(pg, standby()), false, 'no standby list: basebackup, whatever its own list says');
  assert.equal(cloneWithoutLeader(pg, standby([])), false);
  assert.equal(cloneWithoutLeader(local(''), standby(['restore'])), false, 'a name without a section is a command without no_leader');
});
