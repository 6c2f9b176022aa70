// Fixtures shared by the configuration tests in src/config and test/config (tests only).

/** The smallest valid local configuration (YAML): no bootstrap section, no bin_dir (it is detected). */
export const MINIMAL_CONFIG = `
scope: s
name: n1
restapi: {listen: "127.0.0.1:8008"}
etcd3: {host: "127.0.0.1:2379"}
postgresql:
  listen: 127.0.0.1:5432
  data_dir: /var/lib/vigil/n1
  authentication:
    superuser: {username: postgres}
    replication: {username: replicator}
`;
