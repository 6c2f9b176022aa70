// The one place a Dcs client is made: the backend is chosen by the configuration section present,
// as Patroni does (etcd3, etcd v2, consul, kubernetes, zookeeper). Patroni's other DCS sections
// are recognised and refused with an error naming the section. Adding a backend = one row in
// BACKENDS (and its section in the configuration loader), plus a contract test file in test/dcs
// (contract.ts).

import type { Dcs } from './dcs.ts';
import { Etcd3Dcs } from './etcd3.ts';
import { ConsulDcs } from './consul.ts';
import { parseConsulSettings, type ConsulSettings } from './consul-settings.ts';
import { Etcd2Dcs } from './etcd2.ts';
import type { EtcdSettings } from './etcd-settings.ts';
import type { Etcd3Settings } from '../config/types.ts';
import { KubernetesDcs } from './kubernetes.ts';
import type { KubernetesSettings } from './kubernetes-settings.ts';
import { ZookeeperDcs } from './zookeeper.ts';
import { parseZookeeperSettings, type ZookeeperSettings } from './zookeeper-settings.ts';
import { readFileSync } from 'node:fs';

/** The DCS sections of a configuration (Config has etcd3; the others are Patroni's, raw). */
export interface DcsSections {
  /** With the keys of etcd-settings.ts the loader does not take yet (srv, srvSuffix, useProxies). */
  etcd3?: (Etcd3Settings & Partial<Pick<EtcdSettings, 'srv' | 'srvSuffix' | 'useProxies'>>) | undefined;
  /** The v2 API: etcd-settings.ts parseEtcdSettings. */
  etcd?: EtcdSettings | undefined;
  consul?: unknown;
  zookeeper?: unknown;
  exhibitor?: unknown;
  kubernetes?: unknown;
  raft?: unknown;
}

export interface DcsClientOptions {
  /** Cluster prefix, e.g. /service/batman/ (codec.ts clusterPrefix). */
  prefix: string;
  /** Our member name (value of the leader key, name of members/<name>). */
  name: string;
  /** Session (lease) TTL, seconds. */
  ttl: number;
  /** Deadline of each call, retries included, seconds. */
  retryTimeout: number;
  /** A control tool's client (patronictl-style): linearizable reads, never holds a session. */
  ctl?: boolean;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}

/** No usable DCS section: none at all, or one whose backend is not implemented yet. */
export class DcsConfigError extends Error {
  /** The section at fault; undefined when there is none. */
  readonly section: string | undefined;
  constructor(section: string | undefined, message: string) {
    super(message);
    this.name = 'DcsConfigError';
    this.section = section;
  }
}

interface Backend {
  section: keyof DcsSections;
  label: string;
  create?: (settings: NonNullable<unknown>, opts: DcsClientOptions) => Dcs;
}

/**
 * When several sections are present, the first in this list is used: Patroni's order (3.0.2's
 * get_dcs walks its DCS modules as pkgutil lists them, sorted by name), see src/config/dcs.ts.
 */
const BACKENDS: Backend[] = [
  { section: 'consul', label: 'Consul', create: (s, o) => createConsul(s, o) },
  { section: 'etcd', label: 'etcd (v2 API)', create: (s, o) => createEtcd2(s as EtcdSettings, o) },
  { section: 'etcd3', label: 'etcd (v3 API)', create: (s, o) => createEtcd3(s as NonNullable<DcsSections['etcd3']>, o) },
  { section: 'exhibitor', label: 'Exhibitor' },
  { section: 'kubernetes', label: 'Kubernetes', create: (s, o) => createKubernetes(s as KubernetesSettings, o) },
  { section: 'raft', label: 'Raft' },
  { section: 'zookeeper', label: 'ZooKeeper', create: (s, o) => createZookeeper(s, o) },
];

export const SUPPORTED_DCS: readonly string[] = BACKENDS.filter((b) => b.create !== undefined).map((b) => b.section);

function createEtcd3(s: NonNullable<DcsSections['etcd3']>, o: DcsClientOptions): Dcs {
  return new Etcd3Dcs({
    hosts: s.hosts,
    protocol: s.protocol,
    ...(s.srv !== undefined ? { srv: s.srv } : {}),
    ...(s.srvSuffix !== undefined ? { srvSuffix: s.srvSuffix } : {}),
    ...(s.useProxies !== undefined ? { useProxies: s.useProxies } : {}),
    prefix: o.prefix,
    name: o.name,
    ttl: o.ttl,
    retryTimeout: o.retryTimeout,
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    // TLS files are read by the constructor, once: one that cannot be used throws an
    // Etcd3SettingError naming the setting and the file.
    cacert: s.cacert,
    cert: s.cert,
    key: s.key,
    keyPassword: s.keyPassword,
    ...(o.ctl === true ? { ctlMode: true } : {}),
    ...(o.logger !== undefined ? { logger: o.logger } : {}),
  });
}

function createEtcd2(s: EtcdSettings, o: DcsClientOptions): Dcs {
  return new Etcd2Dcs({
    ...s,
    prefix: o.prefix,
    name: o.name,
    ttl: o.ttl,
    retryTimeout: o.retryTimeout,
    ...(o.ctl === true ? { ctlMode: true } : {}),
    ...(o.logger !== undefined ? { logger: o.logger } : {}),
  });
}

/**
 * Consul from its settings (consul-settings.ts), already parsed or the raw section (parsed here:
 * an error makes a DcsConfigError naming the keys). The scope is the prefix's last segment.
 */
function createConsul(raw: NonNullable<unknown>, o: DcsClientOptions): Dcs {
  let settings: ConsulSettings;
  if (typeof raw === 'object' && 'serviceCheckInterval' in raw) settings = raw as ConsulSettings;
  else {
    const parsed = parseConsulSettings(raw, {});
    if (parsed.settings === undefined) {
      const errors = parsed.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
      throw new DcsConfigError('consul', errors.join('; '));
    }
    settings = parsed.settings;
  }
  const scope = o.prefix.split('/').filter((x) => x !== '').pop() ?? '';
  return new ConsulDcs({
    settings,
    prefix: o.prefix,
    scope,
    name: o.name,
    ttl: o.ttl,
    retryTimeout: o.retryTimeout,
    ...(o.ctl === true ? { ctlMode: true } : {}),
    ...(o.logger !== undefined ? { logger: o.logger } : {}),
  });
}

/**
 * Kubernetes (settings from kubernetes-settings.ts): the objects are named from the scope, the
 * last component of the prefix. The CA file is read here, once: one that cannot be read throws a
 * DcsConfigError naming kubernetes.cacert.
 */
function createKubernetes(s: KubernetesSettings, o: DcsClientOptions): Dcs {
  let ca: string;
  try {
    ca = readFileSync(s.cacert, 'utf8');
  } catch (err) {
    throw new DcsConfigError('kubernetes', `kubernetes.cacert: cannot read ${s.cacert}: ${(err as Error).message}`);
  }
  const scope = o.prefix.split('/').filter((p) => p !== '').pop() ?? '';
  return new KubernetesDcs({
    prefix: o.prefix,
    scope,
    name: o.name,
    ttl: o.ttl,
    retryTimeout: o.retryTimeout,
    namespace: s.namespace,
    labels: s.labels,
    scopeLabel: s.scopeLabel,
    roleLabel: s.roleLabel,
    leaderLabelValue: s.leaderLabelValue,
    followerLabelValue: s.followerLabelValue,
    standbyLeaderLabelValue: s.standbyLeaderLabelValue,
    tmpRoleLabel: s.tmpRoleLabel,
    bootstrapLabels: s.bootstrapLabels,
    useEndpoints: s.useEndpoints,
    podIp: s.podIp,
    ports: s.ports,
    api: { host: s.apiHost, port: s.apiPort, ca, token: s.token, tokenFile: s.tokenFile, retriableHttpCodes: s.retriableHttpCodes },
    ...(o.ctl === true ? { ctl: true } : {}),
    ...(o.logger !== undefined ? { logger: o.logger } : {}),
  });
}

/**
 * ZooKeeper from its parsed settings (zookeeper-settings.ts), or from the raw `zookeeper` section
 * (parsed here; errors throw DcsConfigError naming the keys). TLS files are read once, here.
 */
function createZookeeper(raw: unknown, o: DcsClientOptions): Dcs {
  let s = raw as ZookeeperSettings;
  if (!(Array.isArray(s.auth) && typeof s.useSsl === 'boolean')) {
    const parsed = parseZookeeperSettings(raw);
    if (parsed.settings === undefined) {
      const errors = parsed.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
      throw new DcsConfigError('zookeeper', errors.join('; '));
    }
    s = parsed.settings;
  }
  const file = (what: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new DcsConfigError('zookeeper', `zookeeper.${what}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const tls = s.useSsl
    ? { ca: file('cacert', s.cacert), cert: file('cert', s.cert), key: file('key', s.key), passphrase: s.keyPassword, rejectUnauthorized: s.verify }
    : undefined;
  return new ZookeeperDcs({
    hosts: s.hosts,
    prefix: o.prefix,
    name: o.name,
    ttl: o.ttl,
    retryTimeout: o.retryTimeout,
    acl: s.acl,
    auth: s.auth,
    tls,
    ...(o.ctl === true ? { ctlMode: true } : {}),
    ...(o.logger !== undefined ? { logger: o.logger } : {}),
  });
}

/** The message for a DCS section whose backend Vigil does not have yet. */
export function notImplementedMessage(section: string): string {
  const b = BACKENDS.find((x) => x.section === section);
  return `${section}: the ${b?.label ?? section} DCS is not implemented yet in Vigil (supported: ${SUPPORTED_DCS.join(', ')})`;
}

/** The first DCS section present (null and undefined count as absent). */
export function dcsSectionOf(sections: DcsSections): keyof DcsSections | undefined {
  return BACKENDS.find((b) => sections[b.section] !== undefined && sections[b.section] !== null)?.section;
}

/**
 * A Dcs client for the backend of the section present. Throws DcsConfigError when there is no
 * DCS section or its backend is not implemented yet; a backend's constructor may throw its own
 * setting errors (etcd3: Etcd3SettingError).
 */
export function createDcs(sections: DcsSections, opts: DcsClientOptions): Dcs {
  const section = dcsSectionOf(sections);
  if (section === undefined) throw new DcsConfigError(undefined, `no DCS section in the configuration (supported: ${SUPPORTED_DCS.join(', ')})`);
  const backend = BACKENDS.find((b) => b.section === section) as Backend;
  const settings = sections[section];
  if (backend.create === undefined || settings === undefined || settings === null) throw new DcsConfigError(section, notImplementedMessage(section));
  return backend.create(settings, opts);
}
