// PATCH /config and PUT /config (patroni-interfaces.md 2.9): the dynamic configuration in the DCS.

import { nestedTooDeeply, tooDeepMessage } from '../config/depth.ts';
import { validateDynamicConfig } from '../config/dynamic.ts';
import { readCluster } from './operation-common.ts';
import type { OperationsPort } from './port.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { errorPage, isMap, JSON_TYPE, message, readJsonBody } from './request.ts';

export async function patchConfig(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const cluster = await readCluster(port);
  const stored = cluster.config;
  if (stored === undefined || !isMap(stored) || cluster.configVersion === undefined || cluster.configVersion === '' || cluster.configVersion === '0') {
    return errorPage(503, 'the cluster has no valid configuration in the DCS');
  }
  if (nestedTooDeeply(stored)) return errorPage(503, `the configuration in the DCS is ${tooDeepMessage()}; replace it with PUT /config`);
  const merged = structuredClone(stored);
  const changed = patchConfigValue(merged, body.value);
  if (changed) {
    // Reject only what this patch breaks: a problem already present in the stored configuration
    // must not block an unrelated change (or the change that fixes it).
    const before = new Set(validateDynamicConfig(stored));
    const problems = validateDynamicConfig(merged).filter((p) => !before.has(p));
    if (problems.length > 0) return message(400, `Invalid dynamic configuration: ${problems.join('; ')}`);
    let ok: boolean;
    try {
      ok = await port.writeConfig(merged, cluster.configVersion);
    } catch {
      return message(503, 'failed to write config into DCS');
    }
    if (!ok) return errorPage(409, 'the configuration changed meanwhile');
  }
  port.wakeup();
  return { status: 200, body: JSON.stringify(merged), contentType: JSON_TYPE };
}

export async function putConfig(req: ApiRequest, port: OperationsPort): Promise<ApiResponse> {
  const body = readJsonBody(req, false);
  if (!body.ok) return body.response;
  const problems = validateDynamicConfig(body.value);
  if (problems.length > 0) return message(400, `Invalid dynamic configuration: ${problems.join('; ')}`);
  const cluster = await readCluster(port);
  if (cluster.config === undefined || !sameConfig(body.value, cluster.config)) {
    let ok: boolean;
    try {
      ok = await port.writeConfig(body.value);
    } catch {
      ok = false;
    }
    if (!ok) return errorPage(502, 'failed to write config into DCS');
    port.wakeup();
  }
  return { status: 200, body: JSON.stringify(body.value), contentType: JSON_TYPE };
}

/**
 * Merge `patch` into `config` in place, Patroni's way: null deletes a key, objects merge into
 * objects, anything else replaces the value when its Python string form differs (so "5" over 5 is
 * no change). A new key is stored as given (nulls inside a new object stay). true when changed.
 */
export function patchConfigValue(config: Record<string, unknown>, patch: Record<string, unknown>): boolean {
  let changed = false;
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      if (Object.prototype.hasOwnProperty.call(config, k)) {
        if (config[k] !== null) changed = true;
        delete config[k];
      }
    } else if (Object.prototype.hasOwnProperty.call(config, k)) {
      const cur = config[k];
      if (isMap(v)) {
        if (isMap(cur)) {
          if (patchConfigValue(cur, v)) changed = true;
        } else {
          config[k] = v;
          changed = true;
        }
      } else if (pyStr(cur) !== pyStr(v)) {
        config[k] = v;
        changed = true;
      }
    } else {
      config[k] = v;
      changed = true;
    }
  }
  return changed;
}

/** Deep equality with scalars compared by their Python string form (Patroni's deep_compare). */
function sameConfig(a: unknown, b: unknown): boolean {
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameConfig(a[k], b[k]));
  }
  if (isMap(a) || isMap(b)) return false;
  return pyStr(a) === pyStr(b);
}

/** Python's str() of a JSON value (repr for containers). */
export function pyStr(v: unknown): string {
  if (typeof v === 'string') return v;
  return pyRepr(v);
}

function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (isMap(v)) return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}
