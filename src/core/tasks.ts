// What a member publishes as its PostgreSQL state while a background task runs. Pure; shared by
// the agent and the simulator so both report the same states.

import type { PgState, TaskKind } from './model.ts';

/** The state to publish while `kind` runs; undefined: keep the current one (promote). */
export function taskPgState(kind: TaskKind): PgState | undefined {
  switch (kind) {
    case 'bootstrap':
      return 'initializing new cluster';
    case 'clone':
    case 'reinitialize':
      return 'creating replica';
    case 'start':
      return 'starting';
    case 'stop':
    case 'demote':
    case 'rewind':
      return 'stopping';
    case 'restart':
      return 'restarting';
    default:
      return undefined;
  }
}
