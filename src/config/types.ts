// The validated, fully defaulted, frozen local configuration that config/load.ts produces from
// a Patroni-style YAML file plus PATRONI_* environment variables.

import type { Tags } from '../core/model.ts';
import type { LogSettings } from './log.ts';
import type { ReplicaMethod } from './replica-methods.ts';
import type { ConsulSettings } from '../dcs/consul-settings.ts';
import type { EtcdSettings } from '../dcs/etcd-settings.ts';
import type { KubernetesSettings } from '../dcs/kubernetes-settings.ts';
import type { ZookeeperSettings } from '../dcs/zookeeper-settings.ts';

export interface Credentials {
  username: string;
  password?: string;
  /**
   * The libpq connection settings configured next to the user (sslmode, sslcert, ..., channel_binding:
   * LIBPQ_AUTH_KEYS in config/postgresql.ts), keyword -> value, as given.
   */
  libpq?: Record<string, string>;
}

export interface Etcd3Settings {
  /** host:port entries, in order of preference. */
  hosts: string[];
  protocol: 'http' | 'https';
  username?: string;
  password?: string;
  /** TLS (protocol https), file paths: CA bundle, client certificate, its key, the key's passphrase. */
  cacert?: string;
  cert?: string;
  key?: string;
  keyPassword?: string;
  /** DNS SRV discovery: the domain and the optional service-name suffix (Patroni's srv, srv_suffix). */
  srv?: string;
  srvSuffix?: string;
  /** true: use only the configured hosts (proxies); false/absent: discover the cluster's members. */
  useProxies?: boolean;
}

export interface RestApiSettings {
  /** host:port to bind. */
  listen: string;
  /** host:port advertised in api_url. */
  connectAddress: string;
  authentication?: { username: string; password: string };
  certfile?: string;
  keyfile?: string;
  keyfilePassword?: string;
  cafile?: string;
  verifyClient?: 'none' | 'optional' | 'required';
  /** restapi.allowlist: IP addresses, CIDR networks and hostnames (validated); absent when empty. */
  allowlist?: string[];
  /** restapi.allowlist_include_members. */
  allowlistIncludeMembers?: boolean;
  /** restapi.http_extra_headers (names and values validated). */
  httpExtraHeaders?: Record<string, string>;
  /** restapi.https_extra_headers, added to http_extra_headers when HTTPS is on. */
  httpsExtraHeaders?: Record<string, string>;
  /**
   * The TLS files of the agent's own calls to its peers' REST APIs, as Patroni picks them: ctl.certfile,
   * ctl.keyfile, ctl.keyfile_password, ctl.cacert, each else its restapi counterpart (api/peers.ts peerTls).
   */
  peerTls?: { certfile?: string; keyfile?: string; keyfilePassword?: string; cafile?: string };
}

/** The actions of postgresql.callbacks, in Patroni's order. */
export const CALLBACK_ACTIONS = ['on_start', 'on_stop', 'on_restart', 'on_reload', 'on_role_change'] as const;
export type CallbackAction = (typeof CALLBACK_ACTIONS)[number];

/** The role whose parameters_<role>, pg_hba_<role> and pg_ident_<role> apply (spec 4.1 point 5). */
export type ConfigRole = 'primary' | 'replica' | 'standby_leader';
export const CONFIG_ROLES: readonly ConfigRole[] = ['primary', 'replica', 'standby_leader'];

/** One role's overrides: parameters merged over postgresql.parameters; pg_hba / pg_ident replace the base lists. */
export interface RoleOverrides<V = string | number | boolean> {
  parameters?: Record<string, V>;
  pgHba?: string[];
  pgIdent?: string[];
}

export interface PostgresqlSettings {
  /** host:port list as in listen_addresses plus port, e.g. "127.0.0.1:5432". */
  listen: string;
  connectAddress: string;
  /** postgresql.proxy_address as host:port; published as the member key's proxy_url. */
  proxyAddress?: string;
  dataDir: string;
  /** postgresql.config_dir: where the configuration files are written (absent: the data directory). */
  configDir?: string;
  /** postgresql.config_base_name: the generated file is <name>.conf, initdb's <name>.base.conf (absent: postgresql). */
  configBaseName?: string;
  /**
   * postgresql.recovery_conf: recovery settings written into postgresql.conf while the node is a
   * replica (e.g. restore_command, recovery_min_apply_delay); recovery_target*, primary_conninfo,
   * primary_slot_name and standby_mode are dropped (Vigil manages them).
   */
  recoveryConf?: Record<string, string | number | boolean>;
  binDir: string;
  /** postgresql.bin_name: standard binary name -> the name in binDir (or an absolute path) to run instead. */
  binName?: Record<string, string>;
  /** postgresql.custom_conf: a file postgresql.conf includes in place of postgresql.base.conf. */
  customConf?: string;
  /** pgpass file the agent writes for replication/rewind connections. */
  pgpass: string;
  database: string;
  authentication: {
    superuser: Credentials;
    replication: Credentials;
    rewind?: Credentials;
  };
  parameters: Record<string, string | number | boolean>;
  pgHba: string[];
  /** postgresql.pg_ident lines (written to pg_ident.conf when non-empty). */
  pgIdent?: string[];
  /** The local postgresql.parameters_<role>, pg_hba_<role>, pg_ident_<role> (src/postgres/roles.ts). */
  roleOverrides?: Partial<Record<ConfigRole, RoleOverrides>>;
  /** postgresql.krbsrvname: the Kerberos service name libpq uses (primary_conninfo, PGKRBSRVNAME for pg_basebackup, pg_rewind). */
  krbsrvname?: string;
  /** The local postgresql.use_pg_rewind; when set it overrides /config (config/dynamic.ts withLocalOverrides). */
  usePgRewind?: boolean;
  useSlots: boolean;
  /** postgresql.use_unix_socket: the agent's local connections go over the Unix socket (conninfo.ts localSocketDir). */
  useUnixSocket?: boolean;
  /** postgresql.use_unix_socket_repl: so does the local replication connection. */
  useUnixSocketRepl?: boolean;
  removeDataDirectoryOnRewindFailure: boolean;
  removeDataDirectoryOnDivergedTimelines: boolean;
  /**
   * The remove_data_directory_* keys the local section sets: they win over the dynamic
   * configuration's, which applies otherwise (agent/observe.ts).
   */
  removeDataDirectoryLocal?: { onRewindFailure?: boolean; onDivergedTimelines?: boolean };
  /** Seconds to wait for pg_ctl-like operations. */
  pgCtlTimeout: number;
  /** Extra options for pg_basebackup, e.g. ["--checkpoint=fast"]. */
  basebackup: string[];
  /** postgresql.rewind: extra options for pg_rewind (rendered, e.g. ["--no-sync"]); absent: none. */
  rewind?: string[];
  /** postgresql.create_replica_methods, in order (src/config/replica-methods.ts); absent: basebackup only. */
  createReplicaMethods?: ReplicaMethod[];
  /**
   * The postgresql keys other than Vigil's own settings, as written: the possible sections of the
   * replica methods a standby cluster's standby_cluster.create_replica_methods names (resolved by
   * resolveReplicaMethods in src/config/replica-methods.ts); absent: none.
   */
  replicaMethodSections?: Record<string, unknown>;
  /** postgresql.callbacks: each configured action's command, split into arguments (src/config/hooks.ts). */
  callbacks?: Partial<Record<CallbackAction, string[]>>;
  /** postgresql.pre_promote, split into arguments. */
  prePromote?: string[];
  /** postgresql.before_stop, split into arguments. */
  beforeStop?: string[];
}

export interface BootstrapSettings {
  /** bootstrap.dcs as written in the file (validated, timings adjusted). */
  dcs: Record<string, unknown>;
  /** initdb options, rendered as command-line arguments (e.g. ["--encoding=UTF8", "--data-checksums"]). */
  initdb: string[];
  pgHba: string[];
  users: Record<string, { password: string; options: string[] }>;
  /** bootstrap.post_bootstrap (or post_init), split into arguments: run once after the cluster is initialized. */
  postBootstrap?: string[];
  /**
   * bootstrap.method other than initdb, with its section's command: run instead of initdb (with
   * --scope and --datadir unless noParams); keepExistingRecoveryConf keeps the recovery.signal /
   * standby.signal it left (else both are removed, so the cluster starts as a primary at once).
   */
  custom?: {
    name: string;
    command: string[];
    noParams: boolean;
    keepExistingRecoveryConf: boolean;
    /**
     * bootstrap.<method>.recovery_conf: recovery settings (e.g. restore_command, recovery_target_time,
     * recovery_target_action) written into postgresql.conf after the script, with recovery.signal
     * (standby.signal when standby_mode is on), until the restored cluster has promoted itself.
     */
    recoveryConf?: Record<string, string | number | boolean>;
  };
}

/** watchdog section (patroni-interfaces.md 4.2.9). */
export interface WatchdogSettings {
  mode: 'off' | 'automatic' | 'required';
  /** Default /dev/watchdog. */
  device: string;
  /** Seconds; -1 means ttl/2. Default 5. */
  safetyMargin: number;
}

export interface Config {
  scope: string;
  namespace: string;
  name: string;
  restapi: RestApiSettings;
  /** The DCS: exactly one of these is set, the section Patroni would use (src/config/dcs.ts). */
  etcd3?: Etcd3Settings;
  etcd?: EtcdSettings;
  consul?: ConsulSettings;
  kubernetes?: KubernetesSettings;
  zookeeper?: ZookeeperSettings;
  /** undefined when the file has no bootstrap section: the node never wins a bootstrap race. */
  bootstrap: BootstrapSettings | undefined;
  postgresql: PostgresqlSettings;
  tags: Tags;
  /** log.level: 'debug' | 'info' | 'warn' | 'error' | 'fatal'. */
  logLevel: string;
  /** The whole log section (src/config/log.ts); absent in configurations built in code (simulation). */
  log?: LogSettings;
  watchdog: WatchdogSettings;
}

/** One problem found while loading configuration. */
export interface ConfigIssue {
  /** Dotted path in the file, e.g. "postgresql.data_dir", or "PATRONI_SCOPE" for the environment. */
  path: string;
  message: string;
  severity: 'error' | 'warning';
}
