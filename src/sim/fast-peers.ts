// The fast failover's network facts and calls in the simulator (tests only; src/agent/fast-failover.ts
// FastPeers): a direct PostgreSQL connection and a REST call answer when the two hosts reach each
// other (and PostgreSQL runs, or the agent runs and is not frozen); POST /vigil/detach runs the
// target agent's own handler after a network delay, or times out.

import type { DetachAnswer } from '../core/fast-failover.ts';
import type { FastPeers } from '../agent/fast-failover.ts';
import type { SimAgent } from './agent.ts';
import type { SimNode, World } from './world.ts';

/** One way of a REST exchange between agents (ms). */
export const NET_DELAY_MS = 100;

export function simFastPeers(w: World, n: SimNode, self: SimAgent): FastPeers {
  const target = (name: string): SimNode | undefined => w.nodes.get(name);
  const apiUp = (t: SimNode | undefined): t is SimNode => t !== undefined && w.reachable(n, t) && t.agent !== undefined && !t.agent.frozen;
  return {
    pgReachable: async (t) => {
      const s = target(t.name);
      return s !== undefined && w.reachable(n, s) && s.pg.running;
    },
    apiReachable: async (t) => {
      await w.timer(w.now + NET_DELAY_MS, self);
      return apiUp(target(t.name));
    },
    detach: async (t, req, timeoutMs): Promise<DetachAnswer | undefined> => {
      await w.timer(w.now + NET_DELAY_MS, self);
      const s = target(t.name);
      if (!apiUp(s)) {
        await w.timer(w.now + timeoutMs - NET_DELAY_MS, self);
        return undefined;
      }
      const answer = await (s.agent as SimAgent).fast.detach(req);
      await w.timer(w.now + NET_DELAY_MS, self);
      return answer;
    },
  };
}
