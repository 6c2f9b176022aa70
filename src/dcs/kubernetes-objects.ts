// The object primitives of the Kubernetes DCS (kubernetes.ts): GET, LIST by the cluster's label
// selector, merge-patch of annotations (and labels, Endpoints subsets) with an optional
// resourceVersion precondition, create, delete, on the namespace's ConfigMaps or Endpoints (and
// Pods). Outcomes: 404 and 409 are results ('absent', 'conflict', 'exists'); other non-2xx answers
// reject with DcsError DCS_PROTOCOL naming the call; transport failures are K8sApi's (DCS_UNAVAILABLE).

import { DcsError } from './dcs.ts';
import type { Op } from './backend.ts';
import { apiPath, type K8sApi } from './kubernetes-api.ts';

export type Obj = Record<string, unknown>;
export type Ann = Record<string, string>;
/** Annotations to set; null removes one. */
export type Patch = Record<string, string | null>;

const MERGE = 'application/merge-patch+json';

export function metaOf(o: Obj | undefined): Obj {
  const m = o?.metadata;
  return typeof m === 'object' && m !== null ? (m as Obj) : {};
}
export function stringMap(v: unknown): Ann {
  const out: Ann = {};
  if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
export const annotationsOf = (o: Obj | undefined): Ann => stringMap(metaOf(o).annotations);
export const labelsOf = (o: Obj | undefined): Ann => stringMap(metaOf(o).labels);
export const rvOf = (o: Obj | undefined): string => String(metaOf(o).resourceVersion ?? '');
export const nameOf = (o: Obj | undefined): string => String(metaOf(o).name ?? '');

function refuse(what: string, status: number, body: Obj): never {
  const msg = typeof body.message === 'string' ? body.message : `HTTP ${status}`;
  throw new DcsError('DCS_PROTOCOL', `kubernetes: ${what} refused (${status}): ${msg}`, { retryable: false });
}

export interface K8sObjectsOptions {
  namespace: string;
  labels: Record<string, string>;
  scopeLabel: string;
  scope: string;
  useEndpoints: boolean;
  /** Name of the config object (Endpoints mode: its headless Service is created with it). */
  configName: string;
  logger?: { warn(obj: object, msg?: string): void } | undefined;
}

export class K8sObjects {
  readonly #api: K8sApi;
  readonly #o: K8sObjectsOptions;
  /** Where the cluster's objects live: ConfigMaps, or Endpoints with use_endpoints. */
  readonly resource: 'endpoints' | 'configmaps';

  constructor(api: K8sApi, opts: K8sObjectsOptions) {
    this.#api = api;
    this.#o = opts;
    this.resource = opts.useEndpoints ? 'endpoints' : 'configmaps';
  }

  #selector(): string {
    const all = { ...this.#o.labels, [this.#o.scopeLabel]: this.#o.scope };
    return Object.entries(all).map(([k, v]) => `${k}=${v}`).join(',');
  }

  async get(resource: string, name: string, op: Op): Promise<Obj | undefined> {
    const r = await this.#api.request('GET', apiPath(this.#o.namespace, resource, name), op);
    if (r.status === 404) return undefined;
    if (r.status !== 200) refuse(`GET ${resource}/${name}`, r.status, r.body);
    return r.body;
  }

  async list(resource: string, op: Op): Promise<{ items: Obj[]; rv: string }> {
    const r = await this.#api.request('GET', apiPath(this.#o.namespace, resource, undefined, { labelSelector: this.#selector() }), op);
    if (r.status !== 200) refuse(`LIST ${resource}`, r.status, r.body);
    const items = Array.isArray(r.body.items) ? (r.body.items as Obj[]) : [];
    return { items, rv: rvOf(r.body) };
  }

  /** Merge-patch annotations (null removes one), with a resourceVersion precondition when given. */
  async patch(resource: string, name: string, annotations: Patch, rv: string | undefined, op: Op, extra: Obj = {}): Promise<Obj | 'conflict' | 'absent'> {
    const metadata: Obj = { annotations, ...(rv !== undefined ? { resourceVersion: rv } : {}) };
    if (extra.labels !== undefined) metadata.labels = extra.labels;
    const body: Obj = { metadata, ...(extra.subsets !== undefined ? { subsets: extra.subsets } : {}) };
    const r = await this.#api.request('PATCH', apiPath(this.#o.namespace, resource, name), op, body, MERGE);
    if (r.status === 404) return 'absent';
    if (r.status === 409) return 'conflict';
    if (r.status !== 200) refuse(`PATCH ${resource}/${name}`, r.status, r.body);
    return r.body;
  }

  async create(name: string, annotations: Patch, op: Op, extra: Obj = {}): Promise<Obj | 'exists'> {
    const ann: Ann = {};
    for (const [k, v] of Object.entries(annotations)) if (v !== null) ann[k] = v;
    const labels = { ...this.#o.labels, [this.#o.scopeLabel]: this.#o.scope };
    const body: Obj = { apiVersion: 'v1', kind: this.#o.useEndpoints ? 'Endpoints' : 'ConfigMap', metadata: { name, namespace: this.#o.namespace, labels, annotations: ann }, ...extra };
    const r = await this.#api.request('POST', apiPath(this.#o.namespace, this.resource), op, body);
    if (r.status === 409) return 'exists';
    if (r.status !== 201 && r.status !== 200) refuse(`POST ${this.resource}/${name}`, r.status, r.body);
    if (this.#o.useEndpoints && name === this.#o.configName) await this.configService(op);
    return r.body;
  }

  /** Endpoints mode: the headless Service <scope>-config that keeps the config Endpoints alive. */
  async configService(op: Op): Promise<void> {
    const labels = { ...this.#o.labels, [this.#o.scopeLabel]: this.#o.scope };
    const body = { apiVersion: 'v1', kind: 'Service', metadata: { name: this.#o.configName, namespace: this.#o.namespace, labels }, spec: { clusterIP: 'None' } };
    const r = await this.#api.request('POST', apiPath(this.#o.namespace, 'services'), op, body);
    if (r.status !== 201 && r.status !== 200 && r.status !== 409) this.#o.logger?.warn({ status: r.status }, 'kubernetes: could not create the config Service');
  }

  /** Patch, or create when absent. With `rv`: compare-and-set, an absent object loses. */
  async patchOrCreate(name: string, annotations: Patch, rv: string | undefined, op: Op, extra: Obj = {}): Promise<Obj | undefined> {
    for (let i = 0; i < 3; i++) {
      const r = await this.patch(this.resource, name, annotations, rv, op, extra);
      if (r === 'conflict') return undefined;
      if (r !== 'absent') return r;
      if (rv !== undefined) return undefined;
      const c = await this.create(name, annotations, op, extra);
      if (c !== 'exists') return c;
    }
    return undefined;
  }

  async delete(resource: string, name: string, op: Op): Promise<void> {
    const r = await this.#api.request('DELETE', apiPath(this.#o.namespace, resource, name), op);
    if (r.status !== 200 && r.status !== 202 && r.status !== 404) refuse(`DELETE ${resource}/${name}`, r.status, r.body);
  }
}
