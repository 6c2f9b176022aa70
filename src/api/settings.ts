// The restapi settings each request reads once, when it arrives (authentication, allowlist, extra
// headers), and what a reload changes in them. ApiServer.reconfigure replaces them as a whole, so a
// reload swaps them between two requests, never within one.

import { validateHeaderName, validateHeaderValue } from '../node-http.ts';

import { Allowlist } from './allowlist.ts';
import type { AllowlistLogger, AllowlistOptions } from './allowlist.ts';

/** The restapi options the settings are made from (a field left out is unset). */
export interface SettingsSource {
  /** restapi.authentication, required on unsafe endpoints. */
  auth?: { username: string; password: string } | undefined;
  /** restapi.http_extra_headers. */
  extraHeaders?: Readonly<Record<string, string>> | undefined;
  /** restapi.https_extra_headers (with TLS only). */
  httpsExtraHeaders?: Readonly<Record<string, string>> | undefined;
  /** restapi.allowlist and allowlist_include_members. */
  allowlist?: Omit<AllowlistOptions, 'logger'> | undefined;
}

/** What requests read when they arrive. */
export interface Settings {
  readonly auth: { username: string; password: string } | undefined;
  readonly allowlist: Allowlist | undefined;
  /** The options the allowlist was made from (to keep it, and its DNS cache, when they did not change). */
  readonly allowlistOptions: Omit<AllowlistOptions, 'logger'> | undefined;
  /** Effective extra headers on a plain HTTP and on an HTTPS listener. */
  readonly headers: { readonly plain: Readonly<Record<string, string>>; readonly tls: Readonly<Record<string, string>> };
}

/**
 * The extra headers of every reply: http_extra_headers, plus https_extra_headers when TLS is on
 * (same name, case-insensitively: the https one wins). Throws on an invalid name or value.
 */
export function effectiveExtraHeaders(
  http: Readonly<Record<string, string>> | undefined,
  https: Readonly<Record<string, string>> | undefined,
  tls: boolean,
): Record<string, string> {
  const out = new Map<string, [string, string]>();
  for (const source of tls ? [http, https] : [http]) {
    for (const [name, value] of Object.entries(source ?? {})) {
      try {
        validateHeaderName(name);
        validateHeaderValue(name, value);
      } catch (err) {
        throw new Error(`REST API extra header ${JSON.stringify(name)}: ${(err as Error).message}`, { cause: err });
      }
      out.set(name.toLowerCase(), [name, value]);
    }
  }
  return Object.fromEntries(out.values());
}

/**
 * Settings from `next`. The previous allowlist object (and its DNS cache) is kept when its options
 * did not change. Throws on a bad extra header or allowlist entry.
 */
export function makeSettings(next: SettingsSource, previous: Settings | undefined, log: AllowlistLogger | undefined): Settings {
  const headers = {
    plain: effectiveExtraHeaders(next.extraHeaders, next.httpsExtraHeaders, false),
    tls: effectiveExtraHeaders(next.extraHeaders, next.httpsExtraHeaders, true),
  };
  let allowlist: Allowlist | undefined;
  if (next.allowlist !== undefined) {
    allowlist =
      previous?.allowlist !== undefined && sameAllowlist(previous.allowlistOptions, next.allowlist)
        ? previous.allowlist
        : new Allowlist({ ...next.allowlist, ...(log !== undefined ? { logger: log } : {}) });
  }
  return { auth: next.auth, allowlist, allowlistOptions: next.allowlist, headers };
}

/**
 * What changed from `prev` to `next` for the reload report ("authentication set", "allowlist
 * changed", "extra headers changed", ...; empty when nothing did). The extra headers compared are
 * those of the listener's kind before (tlsBefore) and after (tlsAfter).
 */
export function settingsChanges(prev: Settings, next: Settings, tlsBefore: boolean, tlsAfter: boolean): string[] {
  const changes: string[] = [];
  const a = prev.auth;
  const b = next.auth;
  if (a === undefined && b !== undefined) changes.push('authentication set');
  else if (a !== undefined && b === undefined) changes.push('authentication removed');
  else if (a !== undefined && b !== undefined && (a.username !== b.username || a.password !== b.password)) changes.push('authentication changed');
  if (next.allowlist !== prev.allowlist) changes.push(next.allowlist === undefined ? 'allowlist removed' : 'allowlist changed');
  if (!sameHeaders(tlsBefore ? prev.headers.tls : prev.headers.plain, tlsAfter ? next.headers.tls : next.headers.plain)) {
    changes.push('extra headers changed');
  }
  return changes;
}

function sameAllowlist(a: Omit<AllowlistOptions, 'logger'> | undefined, b: Omit<AllowlistOptions, 'logger'> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.entries.length === b.entries.length &&
    a.entries.every((e, i) => e === b.entries[i]) &&
    (a.includeMembers === true) === (b.includeMembers === true) &&
    a.lookup === b.lookup &&
    a.clock === b.clock &&
    a.ttlMs === b.ttlMs &&
    a.retryMs === b.retryMs &&
    a.waitMs === b.waitMs
  );
}

function sameHeaders(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const norm = (h: Readonly<Record<string, string>>): string => JSON.stringify(Object.entries(h).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return norm(a) === norm(b);
}
