// A data directory whose history diverged from the one it must follow (pg_rewind's question answered
// "need"): stop it, then repair it with pg_rewind or a new copy when the configuration allows, else
// leave it stopped and say so. Shared by the followers (decide.ts) and the standby cluster's
// members, whose repair source is the remote member (standby.ts). Pure.

import type { Observation } from './model.ts';
import type { DecisionBuilder } from './builder.ts';
import { describeRemote, remoteFromName } from './standby.ts';

/**
 * What a history judged diverged was compared with, for the reason lines: the leader `source`, or,
 * for the remote member's reserved name, the standby cluster's remote primary (host:port of
 * standby_cluster), or the remote cluster's history when the standby cluster has only the archive
 * (its members are then judged against the timeline their standby leader publishes).
 */
export function divergedFrom(source: string): string {
  const r = remoteFromName(source);
  if (r === undefined) return `the leader ${source}`;
  return r.connUrl !== undefined
    ? `the remote primary ${describeRemote(source)} of standby_cluster`
    : "the remote cluster's history (standby_cluster, fed from the archive by restore_command)";
}

/** `source`: the member (or the remote member's reserved name) the repair copies from. */
export function handleDiverged(obs: Observation, d: DecisionBuilder, source: string): string {
  const { pg, config, self } = obs;
  const shown = describeRemote(source);
  const from = divergedFrom(source);
  if (pg.running) {
    d.memory.rewindCheck = 'need';
    d.add({ type: 'startTask', task: { kind: 'stop', mode: 'fast', releaseLeader: false } });
    return `timeline diverged from ${from}: stopping to repair`;
  }
  if (obs.memory.rewindCheck === 'failed' && obs.memory.rewindFailedFrom === source) {
    return `timeline diverged from ${from} and pg_rewind failed before: manual action needed (reinitialize this member)`;
  }
  d.memory.rewindCheck = undefined;
  d.memory.rewindFailedFrom = undefined;
  if (config.postgresql.use_pg_rewind === true && pg.rewindable) {
    d.add({ type: 'startTask', task: { kind: 'rewind', from: source } });
    return `running pg_rewind from ${shown}`;
  }
  if (self.remove_data_directory_on_diverged_timelines) {
    d.add({ type: 'startTask', task: { kind: 'reinitialize', from: source } });
    return `reinitializing due to diverged timelines (from ${shown})`;
  }
  // Patroni starts such a node anyway and lets streaming fail; a diverged replica would serve
  // reads of transactions the cluster never committed, so we leave it stopped and say so.
  d.memory.rewindCheck = 'need';
  d.wake(config.loop_wait * 1000);
  return `timeline diverged from ${from} and neither use_pg_rewind (with wal_log_hints or checksums) nor remove_data_directory_on_diverged_timelines allows a repair: manual action needed (vigil reinit)`;
}
