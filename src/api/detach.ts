// POST /vigil/detach (issue 13; docs/guarantees.md 7.2 step 3), Vigil's own endpoint between its
// agents: a /sync standby about to take over a dead primary asks every /sync standby to stop
// streaming from it and to promise not to stream from it again while the leader key and /sync are
// still at the versions given. Authenticated as every unsafe endpoint (gate.ts); Patroni has no
// such path (a Patroni member answers 501, which stops the fast path: the lease rule applies).
//
// Body: {"leader": name, "leader_version": R, "leader_session": L, "sync_version": V}, all strings.
// Answer 200: {"name", "detached": bool, "flush_lsn": number, "timeline": number, "tags": {...}}.
// 400 on a malformed body; 503 when this agent does not offer the detachment.

import type { OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { errorPage, json, message, readJsonBody } from './request.ts';

export async function postDetach(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  if (req.path.replace(/\/+$/, '') !== '/vigil/detach') return errorPage(404, 'Not Found');
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const v = body.value;
  const fields = ['leader', 'leader_version', 'leader_session', 'sync_version'] as const;
  for (const f of fields) if (typeof v[f] !== 'string' || v[f] === '') return errorPage(400, `Bad request: ${f} must be a non-empty string`);
  if (port.detachFrom === undefined) return message(503, 'detachment not offered');
  const a = await port.detachFrom({ leader: v['leader'] as string, leader_version: v['leader_version'] as string, leader_session: v['leader_session'] as string, sync_version: v['sync_version'] as string });
  return json(200, { name: a.name, detached: a.detached, flush_lsn: a.flushLsn, timeline: a.timeline, tags: a.tags });
}
