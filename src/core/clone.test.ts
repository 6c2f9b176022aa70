import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.ts';
import { clusterView } from './model.ts';
import { defaultConfig } from './testing.ts';
import type { ClusterView, DynamicConfig, LocalPg, Observation, Tags } from './model.ts';
import { remoteName } from './standby.ts';

const SYSID = '7268616322854375442';

const emptyPg: LocalPg = {
  dataDirEmpty: true, sysid: undefined, running: false, ready: false, inRecovery: false, walLsn: undefined, receiveLsn: undefined, replayLsn: undefined,
  timeline: undefined, streaming: false, upstream: null, controlState: undefined, rewindable: false, crashed: false,
};

function view(over: Partial<ClusterView>): ClusterView {
  const n0 = { name: 'n0', version: '1', session: '1', data: { conn_url: 'postgres://127.0.0.1:5432/postgres', api_url: 'http://127.0.0.1:8008/patroni', state: 'running', role: 'primary' } };
  return clusterView({ config: {}, configVersion: '1', members: [n0], history: [], revision: '10', ...over });
}

function obs(cluster: ClusterView, self: { canBootstrap: boolean; cloneWithoutLeader?: boolean; tags?: Tags }): Observation {
  return {
    now: 100_000,
    wallClock: '2026-11-22T00:00:00+00:00',
    self: { name: 'n1', tags: self.tags ?? {}, canBootstrap: self.canBootstrap, ...(self.cloneWithoutLeader !== undefined ? { cloneWithoutLeader: self.cloneWithoutLeader } : {}), bootstrapDcs: {}, remove_data_directory_on_rewind_failure: false, remove_data_directory_on_diverged_timelines: false },
    config: defaultConfig(),
    cluster,
    pg: emptyPg,
    task: undefined,
    failures: [],
    memory: { started: true },
  };
}

const leader = { name: 'n0', version: '5', session: 'abc' };

test('an empty data directory: when a no_leader replica method lets a member restore without a leader (Patroni\'s rule)', () => {
  // [/initialize, leader?, canBootstrap, cloneWithoutLeader, nofailover, expected task (or none), note]
  const table: [string | undefined, boolean, boolean, boolean, boolean, string | undefined, string][] = [
    [SYSID, false, false, true, false, 'clone:null', 'initialized cluster without a leader: restore from the backup'],
    [SYSID, false, true, true, false, 'clone:null', 'a bootstrap section does not matter once the cluster is initialized'],
    [SYSID, false, false, false, false, undefined, 'no no_leader method: wait for a leader'],
    ['', false, false, true, false, undefined, 'a bootstrap is in progress (/initialize empty): wait for it'],
    [undefined, false, true, true, false, 'bootstrap', 'no /initialize and this node may bootstrap: the bootstrap race comes first'],
    [undefined, false, false, true, false, 'clone:null', 'no /initialize, no bootstrap section: restore'],
    [undefined, false, true, true, true, 'clone:null', 'no /initialize, nofailover may not bootstrap: restore'],
    [SYSID, true, false, true, false, 'clone:n0', 'a leader exists: clone from it as always'],
  ];
  for (const [initialize, hasLeader, canBootstrap, cloneWithoutLeader, nofailover, want, note] of table) {
    const cluster = view({ ...(initialize !== undefined ? { initialize } : {}), ...(hasLeader ? { leader } : {}) });
    const d = decide(obs(cluster, { canBootstrap, cloneWithoutLeader, tags: nofailover ? { nofailover: true } : {} }));
    const tasks = d.actions.flatMap((a) => (a.type === 'startTask' ? [a.task.kind === 'clone' ? `clone:${a.task.from}` : a.task.kind] : []));
    assert.deepEqual(tasks, want === undefined ? [] : [want], note);
    if (want === 'clone:null') assert.equal(d.reason, 'bootstrap (without leader)', note);
  }
});

test('a standby cluster without a lock holder restores from its remote member (Patroni clones a remote member then)', () => {
  const sc = { host: '10.0.0.9', port: 5433, create_replica_methods: ['pgbackrest', 'basebackup'] };
  for (const initialize of [SYSID, undefined]) {
    const o = obs(view(initialize !== undefined ? { initialize } : {}), { canBootstrap: false, cloneWithoutLeader: true });
    o.config = defaultConfig({ standby_cluster: sc } as Partial<DynamicConfig>);
    const d = decide(o);
    const clones = d.actions.flatMap((a) => (a.type === 'startTask' && a.task.kind === 'clone' ? [a.task.from] : []));
    assert.deepEqual(clones, [remoteName(sc)], `initialize ${String(initialize)}`);
    assert.equal(d.reason, 'bootstrap (without leader)');
  }
  const waiting = obs(view({ initialize: SYSID }), { canBootstrap: false, cloneWithoutLeader: false });
  waiting.config = defaultConfig({ standby_cluster: sc } as Partial<DynamicConfig>);
  const d = decide(waiting);
  assert.deepEqual(d.actions.filter((a) => a.type === 'startTask'), []);
  assert.equal(d.reason, 'waiting for standby_leader to bootstrap');
});
