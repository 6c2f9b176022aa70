// Consul service registration (consul.register_service: true), as Patroni does it
// (patroni-interfaces.md §1.7.3, §5.5): one service per cluster, named after the scope, one instance
// per member (ID <scope>/<name>) at the address and port of its conn_url, tagged with
// consul.service_tags plus its role ('_' -> '-': primary, replica, standby-leader; the primary
// also 'master'), health-checked over HTTP on its REST API role endpoint (<api_url base>/<role>)
// every service_check_interval, deregistered by Consul after 10 x the session TTL critical.
//
// Registered while the member's state is 'running', deregistered when it becomes 'stopped';
// re-sent only when role, state, api_url or conn_url changed, or the previous attempt failed.
// A failed registration is logged and never fails the member write (as in Patroni).

import type { ConsulAnswer } from './consul-http.ts';
import type { Op } from './backend.ts';
import type { MemberData } from '../core/model.ts';

export interface ConsulServiceOptions {
  scope: string;
  name: string;
  tags: string[];
  /** Check interval as Consul takes it ("5s"). */
  interval: string;
  tlsServerName?: string | undefined;
  /** Patroni's ttl, seconds (the session TTL is half of it). */
  ttl: number;
  call(method: 'GET' | 'PUT' | 'DELETE', path: string, body: string | undefined, op: Op): Promise<ConsulAnswer>;
  logger?: { warn(obj: object, msg?: string): void; info?(obj: object, msg?: string): void };
}

/**
 * The Consul service name of a scope: lower-cased; '.', ' ' and '_' become '-'; any other
 * character outside [a-z0-9-] becomes 'u' + its code point (4 digits at least); at most 230 chars.
 */
export function consulServiceName(scope: string): string {
  let out = '';
  for (const ch of scope.toLowerCase()) {
    if (/[a-z0-9-]/.test(ch)) out += ch;
    else if (ch === '.' || ch === ' ' || ch === '_') out += '-';
    else out += `u${String(ch.codePointAt(0) ?? 0).padStart(4, '0')}`;
  }
  return out.slice(0, 230);
}

/** Python's str(float) of a number of seconds, as Patroni formats durations ("15.0", "7.5"). */
export function pySeconds(s: number): string {
  return Number.isInteger(s) ? `${s}.0` : String(s);
}

const FIELDS = ['role', 'state', 'api_url', 'conn_url'] as const;

export class ConsulService {
  readonly #o: ConsulServiceOptions;
  #ttl: number;
  /** What was last sent successfully (undefined: nothing yet, or the last attempt failed). */
  #last: Record<(typeof FIELDS)[number], string> | undefined;

  constructor(opts: ConsulServiceOptions) {
    this.#o = opts;
    this.#ttl = opts.ttl;
  }

  get serviceId(): string {
    return `${this.#o.scope}/${this.#o.name}`;
  }

  setTtl(ttl: number): void {
    if (ttl !== this.#ttl) this.#last = undefined;
    this.#ttl = ttl;
  }

  /** Register or deregister after a member write; never rejects. */
  async update(data: MemberData, op: Op): Promise<void> {
    const now = {} as Record<(typeof FIELDS)[number], string>;
    for (const f of FIELDS) {
      const v = data[f];
      if (typeof v !== 'string' || v === '') {
        this.#o.logger?.warn({ missing: f }, 'consul: service not registered: the member data has no ' + f);
        return;
      }
      now[f] = v;
    }
    if (this.#last !== undefined && FIELDS.every((f) => this.#last?.[f] === now[f])) return;
    try {
      if (now.state === 'stopped') await this.#deregister(op);
      else if (now.state === 'running') await this.#register(now, op);
      this.#last = now;
    } catch (err) {
      this.#last = undefined;
      this.#o.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'consul: service registration failed; retried on the next member write');
    }
  }

  /** The registration body sent to PUT /v1/agent/service/register. */
  registration(m: { role: string; api_url: string; conn_url: string }): Record<string, unknown> {
    const role = m.role.replace(/_/g, '-');
    const api = new URL(m.api_url);
    const conn = new URL(m.conn_url);
    const check: Record<string, unknown> = {
      HTTP: `${api.protocol}//${api.host}/${role}`,
      Interval: this.#o.interval,
      DeregisterCriticalServiceAfter: `${pySeconds((this.#ttl / 2) * 10)}s`,
    };
    if (this.#o.tlsServerName !== undefined) check.TLSServerName = this.#o.tlsServerName;
    const tags = [...this.#o.tags, role];
    if (role === 'primary') tags.push('master');
    return {
      Name: consulServiceName(this.#o.scope),
      ID: this.serviceId,
      Address: conn.hostname.replace(/^\[|\]$/g, ''),
      Port: conn.port === '' ? 5432 : Number(conn.port),
      Check: check,
      Tags: tags,
      EnableTagOverride: true,
    };
  }

  async #register(m: Record<(typeof FIELDS)[number], string>, op: Op): Promise<void> {
    const body = this.registration(m);
    this.#o.logger?.info?.({ service: body.Name, id: body.ID, tags: body.Tags }, 'consul: registering the service');
    const res = await this.#o.call('PUT', '/v1/agent/service/register', JSON.stringify(body), op);
    if (res.status !== 200) throw new Error(`register answered ${res.status}: ${res.text.slice(0, 200)}`);
  }

  async #deregister(op: Op): Promise<void> {
    this.#o.logger?.info?.({ id: this.serviceId }, 'consul: deregistering the service');
    // The ID keeps its '/' (Consul takes the rest of the path as the ID).
    const id = this.serviceId.split('/').map(encodeURIComponent).join('/');
    const res = await this.#o.call('PUT', `/v1/agent/service/deregister/${id}`, undefined, op);
    // 404: not registered (already gone): nothing to do.
    if (res.status !== 200 && res.status !== 404) throw new Error(`deregister answered ${res.status}: ${res.text.slice(0, 200)}`);
  }
}
