// restapi.allowlist and restapi.allowlist_include_members (patroni-interfaces.md 2.2): which client
// addresses may call the unsafe endpoints. Checked before the client certificate and Basic auth.
//
// Entries are IPv4/IPv6 addresses, CIDR networks of either family, or hostnames. Addresses and
// networks go into a net.BlockList once. Hostnames (the allowlist's own and, with
// include_members, the hosts of the members' api_url) are resolved with dns.lookup (getaddrinfo,
// so /etc/hosts counts, as for Patroni) into a cache:
// - the allowlist's hostnames are resolved when the checker is created (prime());
// - a cached answer older than ttlMs is still used, and a new lookup starts in the background;
// - a name never resolved yet makes the request wait for its lookup, at most waitMs, then the
//   check goes on without it (fails closed);
// - a failed lookup keeps the previous addresses, is retried after retryMs, and is logged once
//   per failure streak, with the name.
//
// Unlike Patroni, an allowlist whose hostnames all fail to resolve still restricts access (Patroni
// then checks nothing at all).

import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export type AllowlistEntry =
  | { kind: 'address'; address: string; family: 'ipv4' | 'ipv6' }
  | { kind: 'network'; address: string; prefix: number; family: 'ipv4' | 'ipv6' }
  | { kind: 'hostname'; name: string };

/** Resolves a name to all its addresses (IPv4 and IPv6). Rejects when it cannot. */
export type Lookup = (name: string) => Promise<string[]>;

export interface AllowlistLogger {
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
}

export interface AllowlistOptions {
  /** restapi.allowlist, each entry already checked by parseAllowlistEntry (bad ones throw). */
  entries: readonly string[];
  /** restapi.allowlist_include_members. */
  includeMembers?: boolean;
  /** Name resolution; default dns.lookup with all addresses. */
  lookup?: Lookup;
  logger?: AllowlistLogger;
  /** Monotonic clock, ms. Default performance.now. */
  clock?: () => number;
  /** Age after which a resolved name is looked up again (in the background). Default 60 s. */
  ttlMs?: number;
  /** Delay before a failed lookup is tried again. Default 10 s. */
  retryMs?: number;
  /** Longest a request waits for names never resolved before. Default 2 s. */
  waitMs?: number;
}

const IPV4_MAPPED = /^(?:::|(?:0{1,4}:){5})ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
const IPV4_MAPPED_HEX = /^(?:::|(?:0{1,4}:){5})ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;
const HOST_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/**
 * An address as the checker compares it: brackets and an IPv6 zone (`%eth0`) removed, and an
 * IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, `::ffff:7f00:1`) turned into its IPv4 address.
 * Returns undefined for anything that is not an IP address.
 */
export function normalizeAddress(value: string): { address: string; family: 'ipv4' | 'ipv6' } | undefined {
  let s = value.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone > 0 && s.includes(':')) s = s.slice(0, zone);
  const v = isIP(s);
  if (v === 4) return { address: s, family: 'ipv4' };
  if (v !== 6) return undefined;
  const dotted = IPV4_MAPPED.exec(s);
  if (dotted && isIP(dotted[1] as string) === 4) return { address: dotted[1] as string, family: 'ipv4' };
  const hex = IPV4_MAPPED_HEX.exec(s);
  if (hex) {
    const hi = parseInt(hex[1] as string, 16);
    const lo = parseInt(hex[2] as string, 16);
    return { address: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  return { address: s.toLowerCase(), family: 'ipv6' };
}

/** A DNS name that could resolve: letters, digits, '-', '_' in labels of 1-63, not all-numeric at the end. */
export function isPlausibleHostname(value: string): boolean {
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name === '' || name.length > 253) return false;
  const labels = name.split('.');
  if (!labels.every((l) => HOST_LABEL.test(l))) return false;
  // "10.0.0.256" or "1.2.3" are mistyped addresses, not names.
  return !/^\d+$/.test(labels[labels.length - 1] as string);
}

/** One allowlist entry, or a message saying why it is not one. */
export function parseAllowlistEntry(value: unknown): AllowlistEntry | string {
  if (typeof value !== 'string') return 'expected an IP address, a CIDR network or a hostname';
  const s = value.trim();
  if (s === '') return 'empty entry';
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const addr = normalizeAddress(s.slice(0, slash));
    const prefixText = s.slice(slash + 1);
    if (addr === undefined || !/^\d{1,3}$/.test(prefixText)) return `not a CIDR network: ${JSON.stringify(s)}`;
    let prefix = Number(prefixText);
    // A mapped network (::ffff:10.0.0.0/104) came out as IPv4: its prefix shifts by 96 bits.
    if (addr.family === 'ipv4' && s.slice(0, slash).includes(':')) {
      if (prefix < 96) return `not a CIDR network: ${JSON.stringify(s)} (an IPv4-mapped network needs a prefix of at least 96)`;
      prefix -= 96;
    }
    const max = addr.family === 'ipv4' ? 32 : 128;
    if (prefix > max) return `not a CIDR network: ${JSON.stringify(s)} (the prefix must be 0-${max})`;
    return { kind: 'network', address: addr.address, prefix, family: addr.family };
  }
  const addr = normalizeAddress(s);
  if (addr !== undefined) return { kind: 'address', ...addr };
  if (isPlausibleHostname(s)) return { kind: 'hostname', name: s.toLowerCase() };
  return `not an IP address, a CIDR network or a hostname: ${JSON.stringify(s)}`;
}

/** The host of an api_url ("http://10.0.0.1:8008/patroni" -> "10.0.0.1"), undefined when none. */
export function apiUrlHost(apiUrl: unknown): string | undefined {
  if (typeof apiUrl !== 'string' || apiUrl === '') return undefined;
  try {
    const host = new URL(apiUrl).hostname;
    return host === '' ? undefined : host.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

const defaultLookup: Lookup = async (name) => (await dnsLookup(name, { all: true, verbatim: true })).map((a) => a.address);

interface Resolved {
  /** The last addresses found (kept when a later lookup fails). */
  addresses: BlockList | undefined;
  /** When to look the name up again. */
  dueAt: number;
  /** The lookup in progress. */
  pending: Promise<void> | undefined;
  failing: boolean;
  lastUsedAt: number;
}

/** Cached names unused for this long are dropped (members come and go). */
const FORGET_AFTER_MS = 3_600_000;

export class Allowlist {
  private readonly fixed = new BlockList();
  private readonly names: readonly string[];
  private readonly includeMembers: boolean;
  /** The allowlist has entries: an explicit list to check even when nothing of it resolves. */
  private readonly explicit: boolean;
  private readonly cache = new Map<string, Resolved>();
  private readonly lookup: Lookup;
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly waitMs: number;
  private readonly log: AllowlistLogger | undefined;

  /** Throws on an entry that parseAllowlistEntry refuses. */
  constructor(opts: AllowlistOptions) {
    const names: string[] = [];
    for (const raw of opts.entries) {
      const e = parseAllowlistEntry(raw);
      if (typeof e === 'string') throw new Error(`restapi.allowlist: ${e}`);
      if (e.kind === 'address') this.fixed.addAddress(e.address, e.family);
      else if (e.kind === 'network') this.fixed.addSubnet(e.address, e.prefix, e.family);
      else if (!names.includes(e.name)) names.push(e.name);
    }
    this.names = names;
    this.explicit = opts.entries.length > 0;
    this.includeMembers = opts.includeMembers === true;
    this.lookup = opts.lookup ?? defaultLookup;
    this.clock = opts.clock ?? (() => performance.now());
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.retryMs = opts.retryMs ?? 10_000;
    this.waitMs = opts.waitMs ?? 2_000;
    this.log = opts.logger;
  }

  /**
   * Whether the check applies to an endpoint: with `members` (every unsafe endpoint but POST
   * /failsafe) when there is an allowlist or include_members; without (POST /failsafe) only when
   * there is an allowlist.
   */
  applies(withMembers: boolean): boolean {
    return this.explicit || (withMembers && this.includeMembers);
  }

  /** Resolve the allowlist's hostnames now (start-up); never rejects. */
  async prime(): Promise<void> {
    await Promise.all(this.names.map((n) => this.resolve(n)));
  }

  /**
   * Whether `client` (the socket's remote address) may call an unsafe endpoint. `memberApiUrls`:
   * the api_url of every member as last read from the DCS, counted only with include_members;
   * undefined for POST /failsafe, where members never count. Never rejects.
   */
  async allows(client: string | undefined, memberApiUrls?: readonly (string | undefined)[]): Promise<boolean> {
    const withMembers = memberApiUrls !== undefined;
    if (!this.applies(withMembers)) return true;
    const ip = client === undefined ? undefined : normalizeAddress(client);
    if (ip === undefined) return false;
    if (this.fixed.check(ip.address, ip.family)) return true;

    const names = [...this.names];
    if (withMembers && this.includeMembers) {
      const literals = new BlockList();
      for (const url of memberApiUrls) {
        const host = apiUrlHost(url);
        if (host === undefined) continue;
        const literal = normalizeAddress(host);
        if (literal !== undefined) literals.addAddress(literal.address, literal.family);
        else if (!names.includes(host.toLowerCase())) names.push(host.toLowerCase());
      }
      if (literals.check(ip.address, ip.family)) return true;
    }
    if (names.length === 0) return false;

    const now = this.clock();
    this.forgetUnused(now);
    const waiting: Promise<void>[] = [];
    for (const name of names) {
      const r = this.cache.get(name);
      if (r !== undefined) r.lastUsedAt = now;
      // Due (or never looked up): look it up; wait only for a name without any addresses yet.
      // A name that failed recently is not retried before its retry time, and not waited for.
      if (r === undefined || now >= r.dueAt) {
        const p = this.resolve(name);
        if (r?.addresses === undefined) waiting.push(p);
      }
      if (r?.addresses !== undefined && r.addresses.check(ip.address, ip.family)) return true;
    }
    if (waiting.length === 0) return false;
    await this.atMost(Promise.all(waiting), this.waitMs);
    return names.some((n) => this.cache.get(n)?.addresses?.check(ip.address, ip.family) === true);
  }

  /** Look `name` up (once at a time) and store the result; never rejects. */
  private resolve(name: string): Promise<void> {
    let r = this.cache.get(name);
    if (r === undefined) {
      r = { addresses: undefined, dueAt: 0, pending: undefined, failing: false, lastUsedAt: this.clock() };
      this.cache.set(name, r);
    }
    if (r.pending !== undefined) return r.pending;
    const entry = r;
    entry.pending = (async () => {
      try {
        const found = await this.lookup(name);
        const list = new BlockList();
        let count = 0;
        for (const a of found) {
          const n = normalizeAddress(a);
          if (n === undefined) continue;
          list.addAddress(n.address, n.family);
          count++;
        }
        if (count === 0) throw new Error('no addresses');
        entry.addresses = list;
        entry.dueAt = this.clock() + this.ttlMs;
        if (entry.failing) {
          entry.failing = false;
          this.log?.info?.({ name }, `REST API allowlist: ${name} resolves again`);
        }
      } catch (err) {
        entry.dueAt = this.clock() + this.retryMs;
        if (!entry.failing) {
          entry.failing = true;
          const reason = err instanceof Error ? err.message : String(err);
          this.log?.warn?.({ name, err: reason }, `REST API allowlist: cannot resolve ${name}: ${reason}`);
        }
      } finally {
        entry.pending = undefined;
      }
    })();
    return entry.pending;
  }

  private forgetUnused(now: number): void {
    for (const [name, r] of this.cache) {
      if (!this.names.includes(name) && r.pending === undefined && now - r.lastUsedAt > FORGET_AFTER_MS) this.cache.delete(name);
    }
  }

  private async atMost(p: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    try {
      await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
