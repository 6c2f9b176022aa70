// The fast failover's network facts and calls on real hosts (src/agent/fast-failover.ts FastPeers):
// a direct PostgreSQL connection (src/postgres/reach.ts), a REST
// call to the old primary (any HTTP answer counts), and POST /vigil/detach to a /sync standby.
// None rejects; each has its own deadline.

import type { Config } from '../config/types.ts';
import type { DetachAnswer } from '../core/fast-failover.ts';
import type { Tags } from '../core/model.ts';
import { peerRequest, peerTls } from '../api/peers.ts';
import { pgAddress, postmasterAnswers } from '../postgres/reach.ts';
import type { FastPeers } from './fast-failover.ts';

export function realFastPeers(config: () => Config): FastPeers {
  const opts = (): { auth?: { username: string; password: string }; tls: ReturnType<typeof peerTls> } => {
    const c = config();
    const auth = c.restapi.authentication;
    return { ...(auth !== undefined ? { auth } : {}), tls: peerTls(c.restapi) };
  };
  return {
    pgReachable: async (t, timeoutMs) => {
      const addr = pgAddress(t.connUrl);
      return addr === undefined ? false : postmasterAnswers(addr, timeoutMs);
    },
    apiReachable: async (t, timeoutMs) => {
      try {
        await peerRequest(t.apiUrl, { method: 'GET', timeoutMs, ...opts() });
        return true;
      } catch {
        return false;
      }
    },
    detach: async (t, req, timeoutMs): Promise<DetachAnswer | undefined> => {
      try {
        const url = new URL('/vigil/detach', t.apiUrl).toString();
        const res = await peerRequest(url, { method: 'POST', timeoutMs, jsonBody: JSON.stringify(req), accept: 'application/json', ...opts() });
        if (res.status !== 200) return undefined;
        const v = JSON.parse(res.body) as Record<string, unknown>;
        if (typeof v['detached'] !== 'boolean' || typeof v['flush_lsn'] !== 'number' || typeof v['timeline'] !== 'number') return undefined;
        const tags = typeof v['tags'] === 'object' && v['tags'] !== null ? (v['tags'] as Tags) : {};
        return { name: t.name, detached: v['detached'], flushLsn: v['flush_lsn'], timeline: v['timeline'], tags };
      } catch {
        return undefined;
      }
    },
  };
}
