// The DCS section of a configuration: which one is used, and its settings.
//
// Patroni uses the first DCS section present in the alphabetical order of its DCS modules
// (consul, etcd, etcd3, exhibitor, kubernetes, raft, zookeeper: Patroni 3.0.2's get_dcs walks
// pkgutil.iter_modules, which lists them sorted), so a file with both `etcd` and `etcd3` runs on
// etcd's v2 API. Vigil picks the same section and warns about every other DCS section present
// (it is ignored, as Patroni ignores it). The chosen section is parsed by its backend's own parser
// (src/dcs/<backend>-settings.ts); a section whose backend Vigil does not implement yet is refused.

import { parseConsulSettings } from '../dcs/consul-settings.ts';
import { parseEtcdSettings } from '../dcs/etcd-settings.ts';
import { parseKubernetesSettings } from '../dcs/kubernetes-settings.ts';
import { parseZookeeperSettings } from '../dcs/zookeeper-settings.ts';
import { parseEtcd3 } from './etcd3.ts';
import type { Issues, Obj } from './fields.ts';
import type { Config } from './types.ts';

/** Patroni's order: the first section present is the one used. */
export const DCS_SECTIONS = ['consul', 'etcd', 'etcd3', 'exhibitor', 'kubernetes', 'raft', 'zookeeper'] as const;
export type DcsSection = (typeof DCS_SECTIONS)[number];

const LABELS: Record<DcsSection, string> = {
  consul: 'Consul', etcd: 'etcd (v2 API)', etcd3: 'etcd (v3 API)', exhibitor: 'Exhibitor', kubernetes: 'Kubernetes', raft: 'Raft', zookeeper: 'ZooKeeper',
};

interface SettingIssue {
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

/** What a backend's parser adds to the Config; undefined when its section has errors. */
type Parser = (issues: Issues, root: Obj, env: NodeJS.ProcessEnv) => Partial<Config> | undefined;

function report(issues: Issues, list: SettingIssue[]): void {
  for (const i of list) {
    if (i.severity === 'error') issues.error(i.path, i.message);
    else issues.warn(i.path, i.message);
  }
}

const PARSERS: Partial<Record<DcsSection, Parser>> = {
  etcd3: (issues, root) => {
    const etcd3 = parseEtcd3(issues, root);
    return etcd3 === undefined ? undefined : { etcd3 };
  },
  // etcd's v2 API (PATRONI_ETCD_* are merged by env.ts; the parser reads them again, same values).
  etcd: (issues, root, env) => {
    const r = parseEtcdSettings(root.etcd, env, 'etcd');
    report(issues, r.issues);
    return r.settings === undefined ? undefined : { etcd: r.settings };
  },
  // PATRONI_CONSUL_* are already merged into the document by env.ts.
  consul: (issues, root) => {
    const r = parseConsulSettings(root.consul, {});
    report(issues, r.issues);
    return r.settings === undefined ? undefined : { consul: r.settings };
  },
  // The parser also needs KUBERNETES_SERVICE_HOST/PORT (the API server) from the environment.
  kubernetes: (issues, root, env) => {
    const r = parseKubernetesSettings(root.kubernetes, env);
    report(issues, r.issues);
    return r.settings === undefined ? undefined : { kubernetes: r.settings };
  },
  // PATRONI_ZOOKEEPER_* are already merged into the document by env.ts.
  zookeeper: (issues, root) => {
    const r = parseZookeeperSettings(root.zookeeper, {});
    report(issues, r.issues);
    return r.settings === undefined ? undefined : { zookeeper: r.settings };
  },
};

/** The DCS sections Vigil implements, in Patroni's order. */
export const SUPPORTED_SECTIONS: readonly DcsSection[] = DCS_SECTIONS.filter((s) => PARSERS[s] !== undefined);

const present = (root: Obj, s: DcsSection): boolean => root[s] !== undefined && root[s] !== null;

/**
 * The Config fields of the DCS section Patroni would use; undefined (with an error) when there is
 * none, the chosen one is not implemented, or its settings are wrong.
 */
export function parseDcs(issues: Issues, root: Obj, env: NodeJS.ProcessEnv): Partial<Config> | undefined {
  const found = DCS_SECTIONS.filter((s) => present(root, s));
  const chosen = found[0];
  if (chosen === undefined) {
    issues.error('', `no DCS section: add one of ${SUPPORTED_SECTIONS.join(', ')} (the DCS sections Vigil implements)`);
    return undefined;
  }
  for (const other of found.slice(1)) {
    issues.warn(other, `ignored: Patroni uses the first DCS section present in the order ${DCS_SECTIONS.join(', ')}, so this configuration runs on ${chosen}`);
  }
  const parse = PARSERS[chosen];
  if (parse === undefined) {
    issues.error(chosen, `not implemented by Vigil yet (${LABELS[chosen]} as the DCS; Vigil implements ${SUPPORTED_SECTIONS.join(', ')}); remove it to start, or keep this node on Patroni`);
    return undefined;
  }
  return parse(issues, root, env);
}
