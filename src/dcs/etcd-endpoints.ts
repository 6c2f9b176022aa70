// Which etcd member a client talks to, shared by the v3 (etcd3.ts) and v2 (etcd2.ts) backends.
//
// Seeds come from DNS SRV records of the `srv` domain when it is set (falling back to `hosts` when
// the lookup finds nothing), else from `hosts`. The records are looked up in Patroni's order: _etcd-client-ssl, _etcd-client, _etcd-ssl, _etcd,
// _etcd-server-ssl, _etcd-server (each with "-<srv_suffix>" when set), under "._tcp.<srv>". The
// first name that has records wins. The "-ssl" names are only used with protocol https and the
// others only with http (one client speaks one protocol). _etcd-server records name peer URLs:
// the client URLs are then read from the peer's GET /members.
//
// Cluster awareness (unless useProxies): once a member answers, the backend asks it for the member
// list (refreshDue/adopt) and from then on spreads over every member's client URL: a random start,
// so that the agents of a cluster do not all load the same member, and on a failure the next
// member. The list is refreshed every 5 minutes and after a failover; after a whole round of
// failures the seeds are added back (a cluster that was rebuilt under new addresses is found
// again through them). With useProxies the seeds are used as given, in order.

import { Resolver } from 'node:dns/promises';

import { DcsError } from './dcs.ts';

export interface EndpointOptions {
  /** host:port seeds, in order. */
  hosts: string[];
  protocol: 'http' | 'https';
  /** DNS SRV domain (used when hosts is empty). */
  srv?: string | undefined;
  srvSuffix?: string | undefined;
  /** Treat hosts as proxies: no member discovery. */
  useProxies?: boolean | undefined;
  /** DNS servers for the SRV lookups (ip or ip:port); default: the system's. */
  dnsServers?: string[] | undefined;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void } | undefined;
}

/** The member list is asked again after this long (Patroni's machines cache TTL). */
const REFRESH_MS = 300_000;

/** host:port of an http(s) URL; undefined for another scheme or a malformed URL. */
export function hostOfUrl(url: string, protocol: 'http' | 'https'): string | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== `${protocol}:`) return undefined;
    // URL.hostname keeps the brackets of an IPv6 address.
    return `${u.hostname}:${u.port || '2379'}`;
  } catch {
    return undefined;
  }
}

/** The SRV names to look up, in Patroni's order, for this protocol. */
export function srvNames(srv: string, suffix: string | undefined, protocol: 'http' | 'https'): { name: string; server: boolean }[] {
  const kinds = ['_etcd-client-ssl', '_etcd-client', '_etcd-ssl', '_etcd', '_etcd-server-ssl', '_etcd-server'];
  return kinds
    .filter((k) => k.endsWith('-ssl') === (protocol === 'https'))
    .map((k) => ({ name: `${k}${suffix ? `-${suffix}` : ''}._tcp.${srv}`, server: k.startsWith('_etcd-server') }));
}

export class EtcdEndpoints {
  readonly #opts: EndpointOptions;
  #list: string[];
  #index = 0;
  #discoveredAt: number | undefined;
  #stale = false;

  constructor(opts: EndpointOptions) {
    if (opts.hosts.length === 0 && !opts.srv) throw new Error('etcd: at least one host (or srv) is required');
    this.#opts = opts;
    this.#list = opts.srv ? [] : [...opts.hosts];
  }

  /** The hosts in use now, in order of trial. */
  get list(): readonly string[] {
    return this.#list;
  }

  get size(): number {
    return Math.max(1, this.#list.length);
  }

  /** The host to try now and its index (for failover); undefined while the list is empty (SRV not resolved yet). */
  current(): { index: number; host: string } | undefined {
    const host = this.#list[this.#index];
    return host === undefined ? undefined : { index: this.#index, host };
  }

  /** Move past `index`, unless a concurrent call already did; the member list is then asked again. */
  failover(index: number): void {
    if (this.#index === index && this.#list.length > 0) this.#index = (index + 1) % this.#list.length;
    this.#stale = true;
  }

  /** A whole round failed: add the seeds back to the list (they may have moved). */
  roundFailed(): void {
    const missing = this.#opts.hosts.filter((h) => !this.#list.includes(h));
    if (missing.length > 0) this.#list = [...this.#list, ...missing];
  }

  /** The member list should be asked (now) from a member that just answered. */
  refreshDue(now: number): boolean {
    if (this.#opts.useProxies === true) return false;
    return this.#discoveredAt === undefined || this.#stale || now - this.#discoveredAt >= REFRESH_MS;
  }

  /** Mark a refresh as started, so that concurrent calls do not start another. */
  refreshStarted(now: number): void {
    this.#discoveredAt = now;
    this.#stale = false;
  }

  /** Use the client URLs of the member list. The first time, start at a random member. */
  adopt(clientUrls: string[]): void {
    const hosts = [...new Set(clientUrls.map((u) => hostOfUrl(u, this.#opts.protocol)).filter((h): h is string => h !== undefined))];
    if (hosts.length === 0) {
      this.#opts.logger?.warn({ clientUrls }, `etcd: the member list names no ${this.#opts.protocol} client URL; keeping ${this.#list.join(',')}`);
      return;
    }
    const first = !this.#adopted;
    this.#adopted = true;
    const cur = this.#list[this.#index];
    const same = hosts.length === this.#list.length && hosts.every((h) => this.#list.includes(h));
    if (same && !first) return;
    this.#list = hosts;
    const keep = cur === undefined ? -1 : hosts.indexOf(cur);
    this.#index = first ? Math.floor(Math.random() * hosts.length) : keep >= 0 ? keep : 0;
    this.#opts.logger?.debug?.({ hosts, current: this.#list[this.#index] }, 'etcd: member list');
  }

  #adopted = false;

  /**
   * When the list is empty: fill it from DNS SRV records, else from the hosts. `peerMembers` reads
   * the client URLs from a peer URL (GET /members). Rejects with a retryable DcsError when nothing
   * is found.
   */
  async resolve(peerMembers: (host: string) => Promise<string[]>, signal: AbortSignal): Promise<void> {
    if (this.#list.length > 0 || !this.#opts.srv) return;
    const resolver = new Resolver({ timeout: 1000, tries: 2 });
    if (this.#opts.dnsServers !== undefined) resolver.setServers(this.#opts.dnsServers);
    // The attempt's end (or the caller's abort) cancels the lookups in flight.
    const cancel = (): void => resolver.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      await this.#resolve(resolver, peerMembers, signal);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  async #resolve(resolver: Resolver, peerMembers: (host: string) => Promise<string[]>, signal: AbortSignal): Promise<void> {
    if (!this.#opts.srv) return;
    const tried: string[] = [];
    for (const { name, server } of srvNames(this.#opts.srv, this.#opts.srvSuffix, this.#opts.protocol)) {
      let records: { name: string; port: number; priority: number; weight: number }[];
      if (signal.aborted) throw new DcsError('DCS_UNAVAILABLE', `etcd: DNS SRV lookup of ${this.#opts.srv} cut short`);
      try {
        records = await resolver.resolveSrv(name);
      } catch (err) {
        tried.push(`${name}: ${(err as { code?: string }).code ?? String(err)}`);
        continue;
      }
      records.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
      const targets = records.map((r) => `${r.name.replace(/\.$/, '')}:${r.port}`);
      if (!server) {
        this.#list = targets;
        this.#index = 0;
        return;
      }
      for (const peer of targets) {
        try {
          const urls = await peerMembers(peer);
          const hosts = urls.map((u) => hostOfUrl(u, this.#opts.protocol)).filter((h): h is string => h !== undefined);
          if (hosts.length > 0) {
            this.#list = [...new Set(hosts)];
            this.#index = 0;
            return;
          }
        } catch (err) {
          tried.push(`${peer}/members: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    if (this.#opts.hosts.length > 0) {
      this.#opts.logger?.warn({ srv: this.#opts.srv, tried }, 'etcd: no member found through DNS SRV records; using hosts');
      this.#list = [...this.#opts.hosts];
      this.#index = 0;
      return;
    }
    throw new DcsError('DCS_UNAVAILABLE', `etcd: no member found through DNS SRV records of ${this.#opts.srv} (${tried.join('; ')})`);
  }
}
