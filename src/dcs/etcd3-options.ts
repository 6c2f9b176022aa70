// The settings of the etcd v3 backend (etcd3.ts), as the factory and the CLI build them from the
// etcd3 section (etcd-settings.ts).

export interface Etcd3Options {
  /**
   * host:port seeds. Unless useProxies, the member list is read from the first that answers and
   * the client then spreads over every member (etcd-endpoints.ts); with useProxies they are tried
   * in order, the first that answers kept until it fails.
   */
  hosts: string[];
  /** DNS SRV domain the seeds are looked up in when hosts is empty; srvSuffix as Patroni's. */
  srv?: string | undefined;
  srvSuffix?: string | undefined;
  /** Treat hosts as proxies: no member discovery. */
  useProxies?: boolean | undefined;
  /** DNS servers for the SRV lookups (tests: a local dnsmasq); default: the system's. */
  dnsServers?: string[] | undefined;
  protocol: 'http' | 'https';
  /** Cluster prefix, e.g. /service/batman/ (see clusterPrefix). */
  prefix: string;
  /** Our member name (value of the leader key, name of members/<name>). */
  name: string;
  /** Lease TTL, seconds. */
  ttl: number;
  /** Deadline of each method (all its retries), seconds. */
  retryTimeout: number;
  username?: string;
  password?: string;
  /**
   * TLS (protocol https only; ignored for http), as file paths, read once by the constructor:
   * cacert: PEM CA certificate(s) etcd's server certificate must chain to (default: the system's
   * CAs); cert: PEM client certificate, which may also hold its key; key: PEM private key of
   * cert; keyPassword: passphrase of an encrypted key. The server's name or IP as written in
   * `hosts` must be in its certificate's subjectAltName.
   */
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  keyPassword?: string | undefined;
  /** patronictl-style: linearizable reads, never grants a lease (lease-bound writes reject). */
  ctlMode?: boolean;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}
