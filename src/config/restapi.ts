// The restapi section.

import { validateHeaderName, validateHeaderValue } from '../node-http.ts';
import { parseAllowlistEntry } from '../api/allowlist.ts';
import { show } from './dynamic.ts';
import { bool, checkKeys, connectAddress, describe, isMap, listenValue, NOT_APPLICABLE, origin, refused, section, str, sub, type Issues, type Obj } from './fields.ts';
import type { RestApiSettings } from './types.ts';

export function parseRestApi(issues: Issues, root: Obj): RestApiSettings | undefined {
  const path = 'restapi';
  if (root.restapi === undefined || root.restapi === null) {
    issues.error('restapi.listen', 'required');
    return undefined;
  }
  const sec = section(issues, root, 'restapi', '');
  if (sec === undefined) return undefined;
  checkKeys(issues, sec, path, [
    'listen', 'connect_address', 'authentication', 'certfile', 'keyfile', 'keyfile_password', 'cafile', 'verify_client',
    'allowlist', 'allowlist_include_members', 'http_extra_headers', 'https_extra_headers',
  ], {
    ciphers: refused('the REST API would accept Node.js default TLS ciphers'),
    server_tokens: refused('the REST API would not hide its Server header as asked'),
    request_queue_size: NOT_APPLICABLE, thread_pool_size: NOT_APPLICABLE,
  });
  const listen = listenValue(issues, sec, 'listen', path, false);
  const connect = connectAddress(issues, sec, path, listen);
  let authentication: RestApiSettings['authentication'];
  const auth = section(issues, sec, 'authentication', path);
  if (auth !== undefined) {
    const ap = sub(path, 'authentication');
    checkKeys(issues, auth, ap, ['username', 'password']);
    const username = str(issues, auth, 'username', ap, true);
    const password = str(issues, auth, 'password', ap, true);
    if (username !== undefined && password !== undefined) authentication = { username, password };
  }
  const certfile = str(issues, sec, 'certfile', path);
  const keyfile = str(issues, sec, 'keyfile', path);
  const keyfilePassword = str(issues, sec, 'keyfile_password', path);
  const cafile = str(issues, sec, 'cafile', path);
  let verifyClient: RestApiSettings['verifyClient'];
  const vc = str(issues, sec, 'verify_client', path);
  if (vc !== undefined) {
    if (vc === 'none' || vc === 'optional' || vc === 'required') verifyClient = vc;
    else issues.error(sub(path, 'verify_client'), `expected none, optional or required, got ${show(vc)}`);
  }
  // The agent's calls to its peers: ctl's TLS files, else restapi's (as Patroni's agent picks them).
  const ctl = isMap(root.ctl) ? root.ctl : {};
  const peerTls: NonNullable<RestApiSettings['peerTls']> = {};
  const pick = (ctlKey: string, own: string | undefined): string | undefined => str(issues, ctl, ctlKey, 'ctl') ?? own;
  const pc = pick('certfile', certfile);
  if (pc !== undefined) {
    peerTls.certfile = pc;
    const pk = pick('keyfile', keyfile);
    if (pk !== undefined) peerTls.keyfile = pk;
    const pp = pick('keyfile_password', keyfilePassword);
    if (pp !== undefined) peerTls.keyfilePassword = pp;
  }
  const pca = pick('cacert', cafile);
  if (pca !== undefined) peerTls.cafile = pca;
  if (keyfile !== undefined && certfile === undefined) issues.error(sub(path, 'keyfile'), 'set without certfile');
  const allowlist = allowlistValue(issues, sec, path);
  const allowlistIncludeMembers = bool(issues, sec, 'allowlist_include_members', path);
  const httpExtraHeaders = headerMap(issues, sec, 'http_extra_headers', path);
  const httpsExtraHeaders = headerMap(issues, sec, 'https_extra_headers', path);
  if (listen === undefined || connect === undefined) return undefined;
  const out: RestApiSettings = { listen: listen.text, connectAddress: connect };
  if (authentication) out.authentication = authentication;
  if (certfile !== undefined) out.certfile = certfile;
  if (keyfile !== undefined) out.keyfile = keyfile;
  if (keyfilePassword !== undefined) out.keyfilePassword = keyfilePassword;
  if (cafile !== undefined) out.cafile = cafile;
  if (verifyClient !== undefined) out.verifyClient = verifyClient;
  if (allowlist !== undefined && allowlist.length > 0) out.allowlist = allowlist;
  if (allowlistIncludeMembers !== undefined) out.allowlistIncludeMembers = allowlistIncludeMembers;
  if (httpExtraHeaders !== undefined) out.httpExtraHeaders = httpExtraHeaders;
  if (httpsExtraHeaders !== undefined) out.httpsExtraHeaders = httpsExtraHeaders;
  if (Object.keys(peerTls).length > 0) out.peerTls = peerTls;
  return out;
}

/** restapi.allowlist: a list of IP addresses, CIDR networks (IPv4 or IPv6) and hostnames. */
function allowlistValue(issues: Issues, sec: Obj, path: string): string[] | undefined {
  const v = sec.allowlist;
  if (v === undefined || v === null) return undefined;
  const p = sub(path, 'allowlist');
  if (!Array.isArray(v)) {
    issues.error(p, `expected a list of IP addresses, CIDR networks or hostnames, got ${describe(v)}`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    const entry = parseAllowlistEntry(item);
    if (typeof entry !== 'string') out.push((item as string).trim());
    else issues.error(`${origin(issues, p)}[${i}]`, typeof item === 'string' ? entry : `${entry}, got ${describe(item)}`);
  });
  return out;
}

/**
 * http_extra_headers / https_extra_headers: a mapping header name -> value. Values are strings
 * (numbers are accepted and converted, as Patroni prints them); names and values must be valid in
 * an HTTP header.
 */
function headerMap(issues: Issues, sec: Obj, key: string, path: string): Record<string, string> | undefined {
  const v = sec[key];
  if (v === undefined || v === null) return undefined;
  const p = sub(path, key);
  if (!isMap(v)) {
    issues.error(p, `expected a mapping of header names to values, got ${describe(v)}`);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(v)) {
    const hp = sub(origin(issues, p), name);
    const text = typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
    if (text === undefined) {
      issues.error(hp, `expected a string, got ${describe(value)}`);
      continue;
    }
    try {
      validateHeaderName(name);
    } catch {
      issues.error(hp, `not a valid HTTP header name: ${show(name)}`);
      continue;
    }
    try {
      validateHeaderValue(name, text);
    } catch {
      issues.error(hp, `not a valid HTTP header value (control characters such as line breaks are not allowed): ${show(text)}`);
      continue;
    }
    out[name] = text;
  }
  return out;
}
