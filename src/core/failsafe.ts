// Failsafe mode (failsafe_mode: true in /config): the rules, as pure functions of an Observation.
// See ../shared/spec/patroni-behavior.md sections 4 and 8.4, and docs/guarantees.md.
//
// The exact rule we implement:
// - While the DCS works, the leader publishes /failsafe = {member name: api_url} for every member
//   that has an api_url, itself included. Every node keeps the last value it read.
// - When the DCS cannot be read, a running primary stays primary only if every OTHER member of that
//   last /failsafe value accepted its POST /failsafe in this cycle (the agent gathers that answer
//   into obs.failsafe.check). A member that accepts promises not to race for ttl seconds. One
//   refusal, timeout or unreachable member, and the primary demotes (offline) as without failsafe.
// - A replica that accepted such a POST less than ttl ago does not race while the DCS shows no
//   leader, and a member missing from a non-empty /failsafe never wins a race.

import type { Observation } from './model.ts';

/** failsafe_mode is on (it has no effect in pause: nothing is demoted or promoted then anyway). */
export function failsafeEnabled(obs: Observation): boolean {
  return obs.config.failsafe_mode === true && obs.config.pause !== true;
}

/**
 * The /failsafe value the leader should publish: every member with an api_url (sorted by name).
 * undefined when the leader itself has no api_url published yet (a topology without us would make
 * every other member refuse us later).
 */
export function failsafeTopology(obs: Observation): Record<string, string> | undefined {
  const cluster = obs.cluster;
  if (cluster === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const m of [...cluster.members].sort((a, b) => a.name.localeCompare(b.name))) {
    if (typeof m.data.api_url === 'string' && m.data.api_url !== '') out[m.name] = m.data.api_url;
  }
  return out[obs.self.name] === undefined ? undefined : out;
}

/** Same keys and values, whatever the order. */
export function sameTopology(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => b[k] === a[k]);
}

/** A running primary that cannot read the DCS: may it stay primary this cycle? */
export function primaryMayStay(obs: Observation): { stay: boolean; reason: string } {
  if (!failsafeEnabled(obs)) return { stay: false, reason: 'failsafe_mode is off' };
  const check = obs.failsafe?.check;
  if (check === undefined) return { stay: false, reason: 'failsafe check was not run' };
  return check.ok ? { stay: true, reason: check.reason } : { stay: false, reason: check.reason };
}

/** Race gate (behavior 5.2 step 9): a member missing from a non-empty /failsafe may not take the lock. */
export function failsafeRaceRefusal(obs: Observation): string | undefined {
  if (obs.config.failsafe_mode !== true) return undefined;
  const topo = obs.cluster?.failsafe ?? obs.failsafe?.topology;
  if (topo === undefined || Object.keys(topo).length === 0) return undefined;
  return topo[obs.self.name] === undefined ? 'I am not a member of /failsafe' : undefined;
}

/**
 * Replica side: a primary that confirmed itself through POST /failsafe less than ttl ago. While the
 * DCS shows no leader, we do not race against it.
 */
export function failsafeLeader(obs: Observation): string | undefined {
  if (obs.config.failsafe_mode !== true) return undefined;
  const l = obs.failsafe?.leader;
  if (l === undefined || l.name === obs.self.name) return undefined;
  return obs.now - l.at < obs.config.ttl * 1000 ? l.name : undefined;
}
