// REST handlers as pure functions of (request, snapshot, time): no IO, no waiting. Status codes,
// paths and JSON follow Patroni 4.1.4 (shared/spec/patroni-interfaces.md section 2).
//
// Routing (2.1): the handler is picked by method and the first path segment. GET falls back to the
// generic health check for any path; HEAD and OPTIONS always use the health check and answer only
// the status line; POST/PATCH/PUT/DELETE go to operation(); anything else is 501.
//
// This module only dispatches; the endpoint families live in status.ts (status JSON), health.ts
// (health checks, liveness, readiness), cluster.ts (/cluster, /history, /config, /failsafe),
// metrics.ts; gate.ts checks the unsafe endpoints' auth; the server sends those it implements to
// operations.ts.

import { getCluster, getConfig, getFailsafe, getHistory } from './cluster.ts';
import { operationGate, unsupportedMethod } from './gate.ts';
import { healthCheckCode, livenessCode, readinessCode } from './health.ts';
import { METRICS_TYPE, metricsText } from './metrics.ts';
import type { ApiRequest, ApiResponse, HandlerOptions } from './request.ts';
import { firstSegment, json, text } from './request.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { statusJson } from './status.ts';

export function handle(req: ApiRequest, snap: NodeSnapshot, nowMs: number, opts: HandlerOptions = {}): ApiResponse {
  const segment = firstSegment(req.path);
  switch (req.method) {
    case 'GET':
      switch (segment) {
        case 'patroni':
          return json(200, statusJson(snap, nowMs, opts));
        case 'cluster':
          return getCluster(snap, nowMs);
        case 'history':
          return getHistory(snap);
        case 'config':
          return getConfig(snap);
        case 'failsafe':
          return getFailsafe(snap);
        case 'metrics':
          return { status: 200, body: metricsText(snap, nowMs), contentType: METRICS_TYPE };
        case 'liveness':
          return { status: livenessCode(snap, nowMs), statusLineOnly: true };
        case 'readiness':
          return { status: readinessCode(req.query, snap, nowMs), statusLineOnly: true };
        default:
          return json(healthCheckCode(req.path, req.query, snap, nowMs), statusJson(snap, nowMs, opts));
      }
    case 'HEAD':
    case 'OPTIONS':
      return { status: healthCheckCode(req.path, req.query, snap, nowMs), statusLineOnly: true };
    case 'POST':
    case 'PATCH':
    case 'PUT':
    case 'DELETE':
      return operation(req, segment, opts);
    default:
      return unsupportedMethod(req.method);
  }
}

function operation(req: ApiRequest, segment: string, opts: HandlerOptions): ApiResponse {
  const gate = operationGate(req, opts);
  if (gate.kind === 'answer') return gate.response;
  // Reached only without an OperationsPort: router.ts sends the implemented operations to
  // operations.ts itself.
  return text(503, `${req.method} /${segment} is not supported yet`);
}
