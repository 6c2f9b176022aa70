// The REST API's unsafe endpoints (patroni-interfaces.md 2.9, 2.12 - 2.15; patroni-behavior.md 6.1;
// POST /failsafe, 2.10, is dispatched from here to failsafe.ts): request validation, Patroni's
// rules, status codes and messages. All IO goes through the OperationsPort; nothing here touches
// the DCS, PostgreSQL or the network directly.
//
// Authentication and client-certificate checks happen before this module (gate.ts).
//
// Failure modes: a DCS read or write that rejects gives a 503 with a plain message; a port method
// that throws never escapes as an exception (the caller gets an ApiResponse in every case).
//
// This module dispatches; the families live in switchover.ts, restart.ts, config-endpoints.ts and
// failsafe.ts, with what they share in operation-common.ts.

import { parseBool } from '../core/values.ts';
import { patchConfig, putConfig } from './config-endpoints.ts';
import { postDetach } from './detach.ts';
import { postFailsafe } from './failsafe.ts';
import type { OperationOptions } from './operation-common.ts';
import { DcsReadError, readCluster } from './operation-common.ts';
import type { OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { errorPage, message, readJsonBody } from './request.ts';
import { postRestart } from './restart.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { deleteSwitchover, postFailover } from './switchover.ts';

/** The "METHOD segment" keys handled here (the other gated keys are answered by handlers.ts). */
export const OPERATION_KEYS: ReadonlySet<string> = new Set([
  'POST switchover',
  'POST failover',
  'DELETE switchover',
  'POST restart',
  'DELETE restart',
  'POST reload',
  'POST reinitialize',
  'PATCH config',
  'PUT config',
  'POST failsafe',
  'POST vigil',
]);

export async function handleOperation(
  req: ApiRequest,
  snap: NodeSnapshot,
  port: OperationsPort,
  opts: OperationOptions,
): Promise<ApiResponse> {
  const segment = req.path.split('/')[1] ?? '';
  try {
    switch (`${req.method} ${segment}`) {
      case 'POST switchover':
        return await postFailover(req, snap, port, opts, 'switchover');
      case 'POST failover':
        return await postFailover(req, snap, port, opts, 'failover');
      case 'DELETE switchover':
        return await deleteSwitchover(port);
      case 'POST restart':
        return await postRestart(req, snap, port, opts);
      case 'DELETE restart':
        return port.cancelScheduledRestart() ? message(200, 'scheduled restart deleted') : message(404, 'no restarts are scheduled');
      case 'POST reload':
        // SIGHUP semantics: the reload runs on its own; the reply does not wait for it.
        void Promise.resolve()
          .then(() => port.reload())
          .catch((err: unknown) => opts.onError?.('reload', err));
        return message(202, 'reload scheduled');
      case 'POST reinitialize':
        return await postReinitialize(req, port);
      case 'PATCH config':
        return await patchConfig(req, port);
      case 'PUT config':
        return await putConfig(req, port);
      case 'POST failsafe':
        return postFailsafe(req, snap, port);
      case 'POST vigil':
        return await postDetach(req, port);
      default:
        return errorPage(501, `Unsupported method (${JSON.stringify(req.method)})`);
    }
  } catch (err) {
    if (err instanceof DcsReadError) return message(503, `failed to read the cluster state from DCS: ${err.message}`);
    opts.onError?.(`${req.method} ${req.path}`, err);
    return errorPage(500, 'internal error');
  }
}

// ---------------------------------------------------------------------------------------------
// POST /reinitialize (2.15).

async function postReinitialize(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  const body = readJsonBody(req, true);
  if (!body.ok) return body.response;
  const force = parseBool(body.value['force']) ?? false;
  const fromLeader = parseBool(body.value['from_leader']) ?? false;
  const cluster = await readCluster(port);
  const leader = cluster.leader?.name;
  if (leader === undefined || leader === '') return message(503, 'Cluster has no leader, can not reinitialize');
  if (leader === port.name) return message(503, 'I am the leader, can not reinitialize');
  let res;
  try {
    res = await port.reinitialize({ force, fromLeader });
  } catch {
    return message(503, 'reinitialize failed');
  }
  return res.ok ? message(200, 'reinitialize started') : message(503, res.message);
}
