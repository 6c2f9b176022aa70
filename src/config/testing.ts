// Fixtures shared by the configuration tests in src/config and test/config (tests only).

import type { ConfigIssue } from './types.ts';

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

// Patroni's postgres0.yml (its shipped example), with the etcd section switched to etcd3.
export const PATRONI_EXAMPLE = `
scope: batman
#namespace: /service/
name: postgresql0

restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008

etcd3:
  host: 127.0.0.1:2379

bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
  initdb:
  - encoding: UTF8
  - data-checksums
  pg_hba:
  - host replication replicator 127.0.0.1/32 md5
  - host all all 0.0.0.0/0 md5
  users:
    admin:
      password: admin%
      options:
        - createrole
        - createdb

postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: data/postgresql0
  pgpass: /tmp/pgpass0
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: zalando
    rewind:
      username: rewind_user
      password: rewind_password
  parameters:
    unix_socket_directories: '..'

tags:
    nofailover: false
    noloadbalance: false
    clonefrom: false
    nosync: false
`;


/** The errors among `issues` as "path: message" lines. */
export function errors(issues: ConfigIssue[]): string[] {
  return issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
}

/** The warnings among `issues` as "path: message" lines. */
export function warnings(issues: ConfigIssue[]): string[] {
  return issues.filter((i) => i.severity === 'warning').map((i) => `${i.path}: ${i.message}`);
}

/** Some line of `list` matches `re`. */
export function hasIssue(list: string[], re: RegExp): boolean {
  return list.some((l) => re.test(l));
}
