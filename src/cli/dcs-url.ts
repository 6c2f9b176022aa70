// `--dcs-url` / `--dcs` / DCS_URL of the control commands, read as patronictl reads it:
//   [SCHEME://][HOST][:PORT][/NAMESPACE]
// - SCHEME: etcd (v2 API), etcd3, zookeeper, consul, exhibitor (Patroni 3.0.2 knows etcd,
//   zookeeper, consul and exhibitor; etcd3 came later, patroni/patroni#2639), and kubernetes,
//   which is Vigil's own (no patronictl version has it). Without a scheme, the port chooses the
//   DCS whose default port it is (2181 zookeeper, 8181 exhibitor, 8500 consul), anything else is
//   etcd (v2 API), as in patronictl.
// - HOST defaults to localhost; PORT to the scheme's default (etcd/etcd3 2379, zookeeper 2181,
//   consul 8500, exhibitor 8181, kubernetes 443).
// - NAMESPACE (the path, slashes trimmed) replaces the configuration's namespace, as in later
//   patronictl versions (patroni/patroni#2926; 3.0.2 ignores the path). For kubernetes, whose keys do not live under Patroni's
//   namespace, the path is the Kubernetes namespace instead.
// - The URL replaces every DCS section of the configuration file (patronictl drops them all).
// - kubernetes://[HOST[:PORT]][/K8S_NAMESPACE]: the API server (default: the in-cluster one,
//   KUBERNETES_SERVICE_HOST/PORT); the other kubernetes settings (labels, token, cacert...) still
//   come from the file's kubernetes section and PATRONI_KUBERNETES_* (labels are required).
// Anything else (unknown scheme, a port that is not 1..65535, credentials, a query, a malformed
// host) is a UsageError naming the problem: patronictl would stop on a Python traceback for most.

import { parseConsulSettings } from '../dcs/consul-settings.ts';
import { parseEtcdSettings } from '../dcs/etcd-settings.ts';
import type { DcsSections } from '../dcs/factory.ts';
import { parseKubernetesSettings } from '../dcs/kubernetes-settings.ts';
import { parseZookeeperSettings } from '../dcs/zookeeper-settings.ts';
import { CliError, UsageError } from './errors.ts';

export const DCS_SCHEMES = ['etcd3', 'etcd', 'zookeeper', 'consul', 'exhibitor', 'kubernetes'] as const;
export type DcsScheme = (typeof DCS_SCHEMES)[number];

export const DEFAULT_PORTS: Readonly<Record<DcsScheme, number>> = { etcd3: 2379, etcd: 2379, zookeeper: 2181, consul: 8500, exhibitor: 8181, kubernetes: 443 };

/** A parsed --dcs-url. */
export interface DcsUrl {
  scheme: DcsScheme;
  /** Host as written (an IPv6 address keeps its brackets); undefined when the URL names none. */
  host: string | undefined;
  /** undefined when the URL names none. */
  port: number | undefined;
  /** The path with its slashes trimmed; undefined when empty. */
  namespace: string | undefined;
}

const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\]$/;

/** Parse a --dcs-url value; UsageError on anything patronictl would not take. */
export function parseDcsUrl(url: string): DcsUrl {
  const bad = (why: string): never => {
    throw new UsageError(`Invalid --dcs-url '${url}': ${why}`);
  };
  let text = url.trim();
  if (/\s/.test(text)) bad('it contains white space');
  // As patronictl: a value without `//` is a bare [HOST][:PORT][/NAMESPACE].
  if (!text.includes('//')) text = `//${text}`;
  const m = /^(?:([A-Za-z][A-Za-z0-9+.-]*):)?\/\/(.*)$/s.exec(text);
  if (m === null) return bad('expected [SCHEME://][HOST][:PORT][/NAMESPACE]');
  const schemeText = m[1]?.toLowerCase();
  let rest = m[2]!;
  if (/[?#]/.test(rest)) bad('a query (?...) or fragment (#...) is not taken');
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  rest = slash < 0 ? '' : rest.slice(slash);
  if (authority.includes('@')) bad('credentials do not go in the URL: put them in the configuration file');

  let host: string | undefined;
  let portText: string | undefined;
  const v6 = /^(\[[^\]]*\])(?::(.*))?$/.exec(authority);
  if (v6 !== null) {
    host = v6[1];
    portText = v6[2];
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0 && authority.indexOf(':') !== colon) bad('an IPv6 address must be written in brackets ([::1]:2379)');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
  }
  if (host === '') host = undefined;
  if (host !== undefined && !HOSTNAME.test(host) && !IPV6.test(host)) bad(`'${host}' is not a host name or address`);
  let port: number | undefined;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) bad(`'${portText}' is not a port (1-65535)`);
  }

  let scheme: DcsScheme;
  if (schemeText === undefined) {
    scheme = port === 2181 ? 'zookeeper' : port === 8181 ? 'exhibitor' : port === 8500 ? 'consul' : 'etcd';
  } else if ((DCS_SCHEMES as readonly string[]).includes(schemeText)) {
    scheme = schemeText as DcsScheme;
  } else {
    throw new UsageError(`Unknown dcs scheme: ${schemeText} (in --dcs-url '${url}'; known: ${DCS_SCHEMES.join(', ')})`);
  }
  const namespace = rest.replace(/^\/+|\/+$/g, '');
  return { scheme, host, port, namespace: namespace === '' ? undefined : namespace };
}

/** `host:port` with the defaults applied (localhost, the scheme's port). */
export function dcsUrlHostPort(u: DcsUrl): string {
  return `${u.host ?? 'localhost'}:${u.port ?? DEFAULT_PORTS[u.scheme]}`;
}

type Issue = { path: string; message: string; severity: 'error' | 'warning' };

function settingsOrThrow<T>(url: string, r: { settings: T | undefined; issues: Issue[] }): T {
  if (r.settings !== undefined) return r.settings;
  const errors = r.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
  throw new CliError(`--dcs-url ${url}: ${errors.join('; ')}`);
}

/**
 * The DCS section equivalent to a parsed --dcs-url, for the factory (src/dcs/factory.ts). etcd3 is
 * not here: control commands reach etcd3 through their own target (args.ts Etcd3Target).
 * `fileKubernetes` is the raw kubernetes section of the configuration file (kubernetes:// only).
 */
export function dcsUrlSections(url: string, u: DcsUrl, fileKubernetes: unknown, env: NodeJS.ProcessEnv): DcsSections {
  const hp = dcsUrlHostPort(u);
  switch (u.scheme) {
    case 'etcd3':
      return { etcd3: { hosts: [hp], protocol: 'http' } };
    case 'etcd':
      return { etcd: settingsOrThrow(url, parseEtcdSettings({ host: hp }, {}, 'etcd')) };
    case 'zookeeper':
      return { zookeeper: settingsOrThrow(url, parseZookeeperSettings({ hosts: [hp] }, {})) };
    case 'consul':
      return { consul: settingsOrThrow(url, parseConsulSettings({ host: hp }, {})) };
    case 'exhibitor':
      throw new CliError(`--dcs-url ${url}: the Exhibitor DCS is not implemented in Vigil (use zookeeper://HOST:PORT to reach the ZooKeeper ensemble directly)`);
    case 'kubernetes': {
      const k8sEnv = { ...env };
      if (u.host !== undefined) {
        k8sEnv['KUBERNETES_SERVICE_HOST'] = u.host.replace(/^\[|\]$/g, '');
        k8sEnv['KUBERNETES_SERVICE_PORT'] = String(u.port ?? DEFAULT_PORTS.kubernetes);
      } else if (u.port !== undefined) {
        k8sEnv['KUBERNETES_SERVICE_PORT'] = String(u.port);
      }
      const settings = settingsOrThrow(url, parseKubernetesSettings(fileKubernetes, k8sEnv));
      if (u.namespace !== undefined) settings.namespace = u.namespace;
      return { kubernetes: settings };
    }
  }
}
