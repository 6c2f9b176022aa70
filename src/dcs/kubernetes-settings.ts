// The `kubernetes:` configuration section (spec patroni-interfaces.md 4.2.6) and its
// PATRONI_KUBERNETES_* environment variables (4.6), as a pure function: every Patroni key is either
// implemented or refused with an error naming it; unknown keys are warned about. The environment
// wins over the file, as in Patroni. The API server is the in-cluster one,
// KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, with the pod's service-account token and CA
// (kubeconfig, i.e. `context`, is not supported).

import { parse as parseYaml } from 'yaml';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubernetesSettings {
  namespace: string;
  labels: Record<string, string>;
  scopeLabel: string;
  roleLabel: string;
  leaderLabelValue: string;
  followerLabelValue: string;
  standbyLeaderLabelValue: string;
  tmpRoleLabel?: string | undefined;
  useEndpoints: boolean;
  podIp?: string | undefined;
  ports: { name?: string | undefined; port: number; protocol?: string | undefined }[];
  /** Path of the API server's CA bundle. */
  cacert: string;
  /** A bearer token given in the settings; otherwise tokenFile is read (and re-read). */
  token?: string | undefined;
  tokenFile: string;
  retriableHttpCodes: number[];
  bootstrapLabels?: Record<string, string> | undefined;
  apiHost: string;
  apiPort: number;
}

export interface SettingIssue {
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

type Env = Record<string, string | undefined>;

/** PATRONI_KUBERNETES_<SUFFIX> -> key, and how the text is converted. */
const ENV_KEYS: Record<string, { key: string; kind: 'string' | 'bool' | 'map' | 'list' }> = {
  NAMESPACE: { key: 'namespace', kind: 'string' },
  LABELS: { key: 'labels', kind: 'map' },
  SCOPE_LABEL: { key: 'scope_label', kind: 'string' },
  ROLE_LABEL: { key: 'role_label', kind: 'string' },
  LEADER_LABEL_VALUE: { key: 'leader_label_value', kind: 'string' },
  FOLLOWER_LABEL_VALUE: { key: 'follower_label_value', kind: 'string' },
  STANDBY_LEADER_LABEL_VALUE: { key: 'standby_leader_label_value', kind: 'string' },
  TMP_ROLE_LABEL: { key: 'tmp_role_label', kind: 'string' },
  USE_ENDPOINTS: { key: 'use_endpoints', kind: 'bool' },
  POD_IP: { key: 'pod_ip', kind: 'string' },
  PORTS: { key: 'ports', kind: 'list' },
  BYPASS_API_SERVICE: { key: 'bypass_api_service', kind: 'bool' },
  CACERT: { key: 'cacert', kind: 'string' },
  TOKEN: { key: 'token', kind: 'string' },
  RETRIABLE_HTTP_CODES: { key: 'retriable_http_codes', kind: 'list' },
  BOOTSTRAP_LABELS: { key: 'bootstrap_labels', kind: 'map' },
  CONTEXT: { key: 'context', kind: 'string' },
};

/** Keys Patroni injects into every DCS section from the global configuration: not ours to check. */
const INJECTED = new Set(['ttl', 'loop_wait', 'retry_timeout', 'scope', 'name']);

function envValue(text: string, kind: 'string' | 'bool' | 'map' | 'list'): unknown {
  if (kind === 'string') return text;
  if (kind === 'bool') return /^(true|yes|on|1)$/i.test(text.trim()) ? true : /^(false|no|off|0)$/i.test(text.trim()) ? false : text;
  const t = text.trim();
  const wrapped = kind === 'map' ? (t.startsWith('{') ? t : `{${t}}`) : t.startsWith('[') ? t : `[${t}]`;
  try {
    return parseYaml(wrapped) as unknown;
  } catch {
    return text;
  }
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and validate the section; settings is undefined exactly when an issue is an error. */
export function parseKubernetesSettings(raw: unknown, env: Env): { settings: KubernetesSettings | undefined; issues: SettingIssue[] } {
  const issues: SettingIssue[] = [];
  const error = (path: string, message: string): void => void issues.push({ path, message, severity: 'error' });
  const warn = (path: string, message: string): void => void issues.push({ path, message, severity: 'warning' });
  const section: Record<string, unknown> = {};
  const where: Record<string, string> = {};
  if (raw !== undefined && raw !== null && !isMap(raw)) error('kubernetes', 'must be a map');
  for (const [k, v] of Object.entries(isMap(raw) ? raw : {})) {
    section[k] = v;
    where[k] = `kubernetes.${k}`;
  }
  for (const [suffix, { key, kind }] of Object.entries(ENV_KEYS)) {
    const text = env[`PATRONI_KUBERNETES_${suffix}`];
    if (text === undefined) continue;
    section[key] = envValue(text, kind);
    where[key] = `PATRONI_KUBERNETES_${suffix}`;
  }
  const at = (key: string): string => where[key] ?? `kubernetes.${key}`;

  const str = (key: string, dflt: string | undefined): string | undefined => {
    const v = section[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    error(at(key), 'must be a non-empty string');
    return dflt;
  };
  const bool = (key: string): boolean => {
    const v = section[key];
    if (v === undefined || v === null) return false;
    if (typeof v === 'boolean') return v;
    error(at(key), 'must be true or false');
    return false;
  };
  const labelMap = (key: string): Record<string, string> | undefined => {
    const v = section[key];
    if (v === undefined || v === null) return undefined;
    if (!isMap(v)) {
      error(at(key), 'must be a map of label names to values');
      return undefined;
    }
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
      else error(`${at(key)}.${k}`, 'must be a string');
    }
    return out;
  };

  for (const key of Object.keys(section)) {
    if (!Object.values(ENV_KEYS).some((e) => e.key === key) && !INJECTED.has(key)) warn(at(key), 'unknown key in the kubernetes section, ignored');
  }

  const labels = labelMap('labels');
  if (labels === undefined && section.labels === undefined) error('kubernetes.labels', 'is required: a map of labels every object of the cluster (and its pods) carries, e.g. {application: vigil}');

  if (section.context !== undefined && section.context !== null) {
    error(at('context'), 'is not supported: Vigil reaches the API server from inside a pod only (service-account token and CA), not through a kubeconfig');
  }
  if (bool('bypass_api_service')) {
    error(at('bypass_api_service'), 'is not implemented in Vigil: the API server is reached through the kubernetes Service (KUBERNETES_SERVICE_HOST/PORT)');
  }

  const useEndpoints = bool('use_endpoints');
  const podIp = str('pod_ip', undefined);
  if (useEndpoints && podIp === undefined) error(at('pod_ip'), 'is required with use_endpoints: the leader Endpoints points at this address (set it from the pod IP, e.g. PATRONI_KUBERNETES_POD_IP)');

  let ports: KubernetesSettings['ports'] = [{ port: 5432 }];
  if (section.ports !== undefined && section.ports !== null) {
    if (!Array.isArray(section.ports) || section.ports.length === 0) error(at('ports'), 'must be a non-empty list of {name, port[, protocol]}');
    else {
      ports = [];
      section.ports.forEach((p: unknown, i: number) => {
        const port = isMap(p) ? Number(p.port) : NaN;
        if (!isMap(p) || !Number.isInteger(port) || port < 1 || port > 65535) return error(`${at('ports')}[${i}]`, 'must be {name, port[, protocol]} with a port in 1..65535');
        ports.push({ ...(typeof p.name === 'string' ? { name: p.name } : {}), port, ...(typeof p.protocol === 'string' ? { protocol: p.protocol } : {}) });
      });
    }
  }

  let retriableHttpCodes: number[] = [];
  const codes = section.retriable_http_codes;
  if (codes !== undefined && codes !== null) {
    const list = Array.isArray(codes) ? (codes as unknown[]) : [codes];
    retriableHttpCodes = list.map((c) => Number(c));
    if (retriableHttpCodes.some((c) => !Number.isInteger(c) || c < 100 || c > 599)) error(at('retriable_http_codes'), 'must be an HTTP status code or a list of them');
  }

  const host = env.KUBERNETES_SERVICE_HOST;
  const portText = env.KUBERNETES_SERVICE_PORT ?? '443';
  const apiPort = Number(portText);
  if (host === undefined || host === '') {
    error('KUBERNETES_SERVICE_HOST', 'is not set: the kubernetes DCS works from inside a pod, where Kubernetes sets KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT');
  }
  if (!Number.isInteger(apiPort) || apiPort < 1 || apiPort > 65535) error('KUBERNETES_SERVICE_PORT', `must be a TCP port, got "${portText}"`);

  const settings: KubernetesSettings = {
    namespace: str('namespace', 'default') as string,
    labels: labels ?? {},
    scopeLabel: str('scope_label', 'cluster-name') as string,
    roleLabel: str('role_label', 'role') as string,
    leaderLabelValue: str('leader_label_value', 'primary') as string,
    followerLabelValue: str('follower_label_value', 'replica') as string,
    standbyLeaderLabelValue: str('standby_leader_label_value', 'primary') as string,
    tmpRoleLabel: str('tmp_role_label', undefined),
    useEndpoints,
    podIp,
    ports,
    cacert: str('cacert', env.PATRONI_KUBERNETES_CACERT ?? `${SERVICE_ACCOUNT_DIR}/ca.crt`) as string,
    token: str('token', undefined),
    tokenFile: `${SERVICE_ACCOUNT_DIR}/token`,
    retriableHttpCodes,
    bootstrapLabels: labelMap('bootstrap_labels'),
    apiHost: host ?? '',
    apiPort,
  };
  return { settings: issues.some((i) => i.severity === 'error') ? undefined : settings, issues };
}
