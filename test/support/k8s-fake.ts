// A FAKE Kubernetes API server, for tests only: no Kubernetes API server can be installed on this
// machine (design.md section 5), so the Kubernetes DCS (src/dcs/kubernetes.ts) is tested against
// this. It is not Kubernetes. It serves exactly the core/v1 paths the backend uses, over HTTPS with
// bearer-token auth, and reproduces these documented API semantics:
//   - objects: configmaps, endpoints, pods, services in namespaces:
//     /api/v1/namespaces/<ns>/<resource>[/<name>]
//   - metadata.resourceVersion: one cluster-wide counter, bumped by every write that changes an
//     object (a no-op patch changes nothing and bumps nothing); a LIST carries the counter in its
//     ListMeta.resourceVersion; clients must treat it as opaque (we hand out decimal strings).
//   - GET (404 NotFound), LIST with labelSelector (=, ==, !=, in, notin, key, !key; comma = AND;
//     a syntax error is 400) and fieldSelector metadata.name / metadata.namespace.
//   - POST (201; 409 AlreadyExists), PUT (200; 409 Conflict when metadata.resourceVersion is
//     given and stale), PATCH with application/merge-patch+json or
//     application/strategic-merge-patch+json (both applied as RFC 7386 JSON merge patch: the
//     objects served here have only maps and lists without a patch merge key, for which the two
//     agree; a null removes a map key), a metadata.resourceVersion in the patch being a
//     precondition (409 Conflict), DELETE (200; DeleteOptions.preconditions.resourceVersion: 409).
//     A resourceVersion that is not a version this server could have issued is 400 BadRequest.
//   - watch=1: a 200 stream of JSON lines {"type":ADDED|MODIFIED|DELETED|ERROR,"object":...} of the
//     changes after resourceVersion (unset or "0": ADDED for every current object first), filtered
//     by the selectors; an object that stops (starts) matching a label selector is DELETED (ADDED);
//     a resourceVersion older than the kept history gets an ERROR event with a 410 Gone Status;
//     timeoutSeconds ends the stream.
//   - errors are Status objects {kind:Status, status:Failure, reason, code, message}; a missing or
//     wrong bearer token is 401.
// Test controls: pause()/resume() (requests hang unanswered, as with an unreachable server),
// failNext() (the next requests answered with an error status, e.g. 503),
// objects()/object() to inspect the store, put() to seed objects (e.g. the pods of a StatefulSet).

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Obj = Record<string, unknown>;
const RESOURCES: Record<string, string> = { configmaps: 'ConfigMap', endpoints: 'Endpoints', pods: 'Pod', services: 'Service' };
const HISTORY = 1000;

interface Change {
  rv: number;
  key: string;
  old: Obj | undefined;
  now: Obj | undefined;
}

// ---- label selectors ----------------------------------------------------------------------------

type Requirement = { key: string; op: '=' | '!=' | 'in' | 'notin' | 'exists' | '!'; values: string[] };

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?$/;

/** Parse a label selector; throws on a syntax error. '' selects everything. */
export function parseLabelSelector(text: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new Error(`unbalanced ) in ${text}`);
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new Error(`unbalanced ( in ${text}`);
  parts.push(cur);
  if (parts.length === 1 && parts[0]?.trim() === '') return [];
  return parts.map((raw) => {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    const check = (key: string, values: string[]): void => {
      if (!KEY.test(key)) throw new Error(`invalid label key "${key}"`);
      for (const v of values) if (!VALUE.test(v)) throw new Error(`invalid label value "${v}"`);
    };
    if ((m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(p))) {
      const values = (m[3] as string).split(',').map((v) => v.trim());
      check(m[1] as string, values);
      return { key: m[1] as string, op: m[2] as 'in' | 'notin', values };
    }
    if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p))) {
      check(m[1] as string, [m[3] as string]);
      return { key: m[1] as string, op: m[2] === '!=' ? '!=' : '=', values: [m[3] as string] };
    }
    if ((m = /^!\s*(\S+)$/.exec(p))) {
      check(m[1] as string, []);
      return { key: m[1] as string, op: '!', values: [] };
    }
    check(p, []);
    return { key: p, op: 'exists', values: [] };
  });
}

export function matchesLabels(reqs: Requirement[], labels: Record<string, unknown>): boolean {
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? String(labels[r.key]) : undefined;
    switch (r.op) {
      case '=':
        return has && v === r.values[0];
      case '!=':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v as string);
      case 'notin':
        return !has || !r.values.includes(v as string);
      case 'exists':
        return has;
      case '!':
        return !has;
    }
    return false;
  });
}

// ---- merge patch ---------------------------------------------------------------------------------

function isMap(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Obj = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---- the server ----------------------------------------------------------------------------------

export interface K8sFakeOptions {
  cert: string;
  key: string;
  token: string;
  /** How many changes are kept for watches (older resourceVersions get 410 Gone); default 1000. */
  history?: number;
}

export class K8sFake {
  readonly #opts: K8sFakeOptions;
  readonly #server: Server;
  readonly #store = new Map<string, Obj>();
  readonly #history: Change[] = [];
  readonly #watchers = new Set<(c: Change) => void>();
  readonly #held: ServerResponse[] = [];
  #rv = 100;
  #paused = false;
  #failures = { count: 0, status: 0 };
  #uid = 0;
  port = 0;

  constructor(opts: K8sFakeOptions) {
    this.#opts = opts;
    this.#server = createServer({ cert: opts.cert, key: opts.key }, (req, res) => {
      void this.#handle(req, res);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Requests hang unanswered until resume() (which drops them). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const res of this.#held.splice(0)) res.destroy();
  }

  /** Answer the next `count` authenticated requests with `status` (a Status object), e.g. 503. */
  failNext(count: number, status: number): void {
    this.#failures = { count, status };
  }

  /** The current resourceVersion counter. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  object(ns: string, resource: string, name: string): Obj | undefined {
    const o = this.#store.get(`${resource}/${ns}/${name}`);
    return o === undefined ? undefined : structuredClone(o);
  }

  objects(ns: string, resource: string, labelSelector = ''): Obj[] {
    const reqs = parseLabelSelector(labelSelector);
    return [...this.#store.entries()]
      .filter(([k, o]) => k.startsWith(`${resource}/${ns}/`) && matchesLabels(reqs, labelsOf(o)))
      .map(([, o]) => structuredClone(o));
  }

  /** Create or replace an object (a test's seed, e.g. a pod a StatefulSet made). */
  put(ns: string, resource: string, obj: Obj): Obj {
    const name = String((obj.metadata as Obj | undefined)?.name ?? '');
    return this.#write(`${resource}/${ns}/${name}`, resource, ns, obj);
  }

  #write(key: string, resource: string, ns: string, obj: Obj | undefined): Obj {
    const old = this.#store.get(key);
    const rv = ++this.#rv;
    let now: Obj | undefined;
    if (obj !== undefined) {
      const meta: Obj = { ...(obj.metadata as Obj) };
      meta.namespace = ns;
      meta.uid = (old?.metadata as Obj | undefined)?.uid ?? `uid-${++this.#uid}`;
      meta.resourceVersion = String(rv);
      now = { ...obj, apiVersion: 'v1', kind: RESOURCES[resource], metadata: meta };
      this.#store.set(key, now);
    } else {
      this.#store.delete(key);
    }
    const change: Change = { rv, key, old, now };
    this.#history.push(change);
    if (this.#history.length > (this.#opts.history ?? HISTORY)) this.#history.shift();
    for (const w of this.#watchers) w(change);
    return structuredClone(now ?? old ?? {});
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (this.#paused) {
      this.#held.push(res);
      return;
    }
    const url = new URL(req.url ?? '/', 'https://fake');
    const fail = (code: number, reason: string, message: string): void => {
      send(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
    };
    if (req.headers.authorization !== `Bearer ${this.#opts.token}`) return fail(401, 'Unauthorized', 'Unauthorized');
    if (this.#failures.count > 0) {
      this.#failures.count -= 1;
      return fail(this.#failures.status, 'InternalError', `injected failure (${this.#failures.status})`);
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
    const resource = m?.[2] ?? '';
    if (!m || RESOURCES[resource] === undefined) return fail(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const ns = decodeURIComponent(m[1] as string);
    const name = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
    const key = `${resource}/${ns}/${name ?? ''}`;
    const cur = this.#store.get(key);
    let body: unknown;
    try {
      body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    } catch {
      return fail(400, 'BadRequest', 'the request body is not JSON');
    }
    const notFound = (): void => fail(404, 'NotFound', `${resource} "${name}" not found`);
    const badRv = (rv: unknown): boolean => rv !== undefined && rv !== null && !/^\d+$/.test(String(rv));
    const conflict = (): void =>
      fail(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`);

    if (req.method === 'GET' && name === undefined) {
      let reqs: Requirement[];
      try {
        reqs = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
      } catch (err) {
        return fail(400, 'BadRequest', `unable to parse requirement: ${(err as Error).message}`);
      }
      const fields = (url.searchParams.get('fieldSelector') ?? '').split(',').filter((s) => s !== '').map((s) => s.split('='));
      for (const [f] of fields) if (f !== 'metadata.name' && f !== 'metadata.namespace') return fail(400, 'BadRequest', `field label not supported: ${f}`);
      const match = (o: Obj | undefined): boolean =>
        o !== undefined && matchesLabels(reqs, labelsOf(o)) && fields.every(([f, v]) => String((o.metadata as Obj)[f === 'metadata.name' ? 'name' : 'namespace']) === v);
      const mine = (k: string): boolean => k.startsWith(`${resource}/${ns}/`);
      const watch = url.searchParams.get('watch');
      if (watch === '1' || watch === 'true') return this.#watch(req, res, url, mine, match);
      const items = [...this.#store.entries()].filter(([k, o]) => mine(k) && match(o)).map(([, o]) => o);
      return send(res, 200, { kind: `${RESOURCES[resource]}List`, apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) }, items });
    }
    if (name === undefined && req.method === 'POST') {
      const obj = body as Obj;
      const n = String((obj?.metadata as Obj | undefined)?.name ?? '');
      if (n === '') return fail(422, 'Invalid', 'metadata.name: Required value');
      const k = `${resource}/${ns}/${n}`;
      if (this.#store.has(k)) return fail(409, 'AlreadyExists', `${resource} "${n}" already exists`);
      const meta = { ...(obj.metadata as Obj) };
      delete meta.resourceVersion;
      return send(res, 201, this.#write(k, resource, ns, { ...obj, metadata: meta }));
    }
    if (name === undefined) return fail(405, 'MethodNotAllowed', `${req.method} is not supported on a collection here`);
    if (req.method === 'GET') return cur === undefined ? notFound() : send(res, 200, cur);
    if (req.method === 'PUT') {
      const obj = body as Obj;
      const rv = (obj?.metadata as Obj | undefined)?.resourceVersion;
      if (badRv(rv)) return fail(400, 'BadRequest', `invalid resourceVersion "${String(rv)}"`);
      if (cur === undefined) return notFound();
      if (rv !== undefined && rv !== '' && String(rv) !== (cur.metadata as Obj).resourceVersion) return conflict();
      return send(res, 200, this.#write(key, resource, ns, { ...obj, metadata: { ...(obj.metadata as Obj), name } }));
    }
    if (req.method === 'PATCH') {
      const type = String(req.headers['content-type'] ?? '').split(';')[0];
      if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
        return fail(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (this fake)`);
      }
      if (!isMap(body)) return fail(400, 'BadRequest', 'the patch is not a JSON object');
      const rv = isMap(body.metadata) ? body.metadata.resourceVersion : undefined;
      if (badRv(rv)) return fail(400, 'BadRequest', `invalid resourceVersion "${String(rv)}"`);
      if (cur === undefined) return notFound();
      if (rv !== undefined && rv !== null && String(rv) !== (cur.metadata as Obj).resourceVersion) return conflict();
      const next = mergePatch(cur, body) as Obj;
      const meta = next.metadata as Obj;
      for (const f of ['name', 'namespace', 'uid', 'resourceVersion']) meta[f] = (cur.metadata as Obj)[f];
      if (JSON.stringify(next) === JSON.stringify(cur)) return send(res, 200, cur);
      return send(res, 200, this.#write(key, resource, ns, next));
    }
    if (req.method === 'DELETE') {
      const pre = isMap(body) && isMap(body.preconditions) ? body.preconditions : {};
      if (badRv(pre.resourceVersion)) return fail(400, 'BadRequest', `invalid resourceVersion "${String(pre.resourceVersion)}"`);
      if (cur === undefined) return notFound();
      if (pre.resourceVersion !== undefined && String(pre.resourceVersion) !== (cur.metadata as Obj).resourceVersion) return conflict();
      this.#write(key, resource, ns, undefined);
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: resource } });
    }
    return fail(405, 'MethodNotAllowed', `${req.method} is not supported`);
  }

  #watch(req: IncomingMessage, res: ServerResponse, url: URL, mine: (k: string) => boolean, match: (o: Obj | undefined) => boolean): void {
    const from = url.searchParams.get('resourceVersion') ?? '';
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const line = (type: string, object: Obj): void => {
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const emit = (c: Change): void => {
      if (!mine(c.key)) return;
      const was = match(c.old);
      const is = match(c.now);
      if (was && is) line('MODIFIED', c.now as Obj);
      else if (is) line('ADDED', c.now as Obj);
      else if (was) line('DELETED', c.now ?? { ...(c.old as Obj), metadata: { ...((c.old as Obj).metadata as Obj), resourceVersion: String(c.rv) } });
    };
    if (from === '' || from === '0') {
      for (const [k, o] of this.#store.entries()) if (mine(k) && match(o)) line('ADDED', o);
    } else if (!/^\d+$/.test(from)) {
      line('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'BadRequest', code: 400, message: `invalid resourceVersion "${from}"` });
      res.end();
      return;
    } else {
      const since = Number(from);
      const oldest = this.#history[0]?.rv ?? this.#rv + 1;
      if (since < oldest - 1 && since < this.#rv) {
        line('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${since} (${oldest - 1})` });
        res.end();
        return;
      }
      for (const c of this.#history) if (c.rv > since) emit(c);
    }
    this.#watchers.add(emit);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '300');
    const timer = setTimeout(() => res.end(), Math.max(1, timeout) * 1000);
    const end = (): void => {
      clearTimeout(timer);
      this.#watchers.delete(emit);
    };
    res.on('close', end);
    req.on('close', end);
  }
}

function labelsOf(o: Obj): Record<string, unknown> {
  const l = (o.metadata as Obj | undefined)?.labels;
  return isMap(l) ? l : {};
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
