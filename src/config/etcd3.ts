// The etcd3 section.

import { show } from './dynamic.ts';
import { bool, checkKeys, describe, isMap, section, splitHostPort, str, sub, type Issues, type Obj } from './fields.ts';
import type { Etcd3Settings } from './types.ts';

const DEFAULT_ETCD_PORT = 2379;

/** One etcd endpoint as host:port (default port 2379); a scheme, if any, is returned apart. */
function etcdEndpoint(issues: Issues, value: unknown, path: string): { hostPort: string; scheme?: 'http' | 'https' } | undefined {
  if (typeof value !== 'string' || value.trim() === '') {
    issues.error(path, `expected host:port, got ${describe(value)}`);
    return undefined;
  }
  let s = value.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\/(.*?)\/?$/i.exec(s);
  if (m) {
    scheme = (m[1] as string).toLowerCase() as 'http' | 'https';
    s = m[2] as string;
  } else if (/^[a-z]+:\/\//i.test(s)) {
    issues.error(path, `unsupported scheme in ${show(value)}: expected http or https`);
    return undefined;
  }
  // No colon at all (or a bare [v6] address): the default port applies.
  const hasPort = s.startsWith('[') ? /\]:/.test(s) : s.includes(':');
  const withPort = hasPort ? s : `${s}:${DEFAULT_ETCD_PORT}`;
  const hp = splitHostPort(withPort);
  if (typeof hp === 'string' || hp.host === '') {
    issues.error(path, typeof hp === 'string' ? hp : `expected host:port, got ${show(value)}`);
    return undefined;
  }
  return scheme === undefined ? { hostPort: withPort } : { hostPort: withPort, scheme };
}

export function parseEtcd3(issues: Issues, root: Obj): Etcd3Settings | undefined {
  const path = 'etcd3';
  if (root.etcd3 === undefined || root.etcd3 === null) {
    const hint = isMap(root.etcd) ? ' (the file has an etcd section, for the v2 API: Patroni keeps those keys in the v2 store, which an etcd3 section does not see)' : '';
    issues.error(path, `required: an etcd3 section with host or hosts${hint}`);
    return undefined;
  }
  const sec = section(issues, root, 'etcd3', '');
  if (sec === undefined) return undefined;
  checkKeys(issues, sec, path, ['host', 'hosts', 'url', 'protocol', 'username', 'password', 'cacert', 'cert', 'key', 'key_password', 'use_proxies', 'proxy', 'srv', 'srv_suffix']);
  const srv = str(issues, sec, 'srv', path);
  const srvSuffix = str(issues, sec, 'srv_suffix', path);
  const proxy = str(issues, sec, 'proxy', path);
  const hosts: string[] = [];
  const schemes = new Set<string>();
  const add = (v: unknown, p: string): void => {
    const e = etcdEndpoint(issues, v, p);
    if (!e) return;
    hosts.push(e.hostPort);
    if (e.scheme) schemes.add(e.scheme);
  };
  const hostsValue = sec.hosts;
  const emptyHosts = hostsValue === '' || (Array.isArray(hostsValue) && hostsValue.length === 0);
  const errorsBefore = issues.list.length;
  if (hostsValue !== undefined && hostsValue !== null && !emptyHosts) {
    const p = sub(path, 'hosts');
    if (typeof hostsValue === 'string') {
      hostsValue.split(',').map((h) => h.trim()).filter((h) => h !== '').forEach((h) => add(h, p));
    } else if (Array.isArray(hostsValue)) {
      hostsValue.forEach((h, i) => add(h, `${p}[${i}]`));
    } else {
      issues.error(p, `expected a list or a comma-separated string of host:port, got ${describe(hostsValue)}`);
    }
  } else if (proxy !== undefined) {
    // Patroni: a proxy is the only endpoint, and the member list is not used (use_proxies).
    add(proxy, sub(path, 'proxy'));
  } else if (sec.host !== undefined && sec.host !== null) {
    add(sec.host, sub(path, 'host'));
  } else if (sec.url !== undefined && sec.url !== null) {
    const url = str(issues, sec, 'url', path);
    if (url !== undefined) url.split(',').forEach((u) => add(u.trim(), sub(path, 'url')));
  } else if (srv === undefined) {
    issues.error(sub(path, emptyHosts ? 'hosts' : 'host'), emptyHosts ? 'empty: give at least one host:port' : 'required: host, hosts, url, proxy or srv');
  }
  if (hosts.length === 0 && srv === undefined && issues.list.length === errorsBefore) issues.error(sub(path, 'hosts'), 'empty: give at least one host:port');
  let protocol: 'http' | 'https' = 'http';
  const proto = str(issues, sec, 'protocol', path);
  if (proto !== undefined) {
    const p = proto.toLowerCase();
    if (p === 'http' || p === 'https') protocol = p;
    else issues.error(sub(path, 'protocol'), `expected http or https, got ${show(proto)}`);
  } else if (schemes.size === 1) {
    protocol = [...schemes][0] as 'http' | 'https';
  }
  if (schemes.size > 1) issues.error(path, 'hosts mix http:// and https://');
  const useProxies = proxy !== undefined ? true : bool(issues, sec, 'use_proxies', path);
  const out: Etcd3Settings = { hosts, protocol };
  if (srv !== undefined) out.srv = srv;
  if (srvSuffix !== undefined) out.srvSuffix = srvSuffix;
  if (useProxies !== undefined) out.useProxies = useProxies;
  for (const k of ['username', 'password', 'cacert', 'cert', 'key'] as const) {
    const v = str(issues, sec, k, path);
    if (v !== undefined) out[k] = v;
  }
  const keyPassword = str(issues, sec, 'key_password', path);
  if (keyPassword !== undefined) out.keyPassword = keyPassword;
  if ((out.username === undefined) !== (out.password === undefined)) {
    issues.error(sub(path, out.username === undefined ? 'username' : 'password'), 'required when the other of username/password is set');
  }
  if (out.key !== undefined && out.cert === undefined) issues.error(sub(path, 'key'), 'set without cert');
  if (out.keyPassword !== undefined && out.cert === undefined) issues.warn(sub(path, 'key_password'), 'ignored: no client certificate (cert, key) is set');
  // The files themselves are read when the etcd client is created (dcs/etcd3-tls.ts).
  const tlsKeys = (['cacert', 'cert', 'key'] as const).filter((k) => out[k] !== undefined);
  if (protocol === 'http' && tlsKeys.length > 0) {
    issues.warn(path, `${tlsKeys.join(', ')} ignored: protocol is http (set protocol: https, or write the hosts as https://host:port)`);
  }
  if (hosts.length === 0 && srv === undefined) return undefined;
  return out;
}
