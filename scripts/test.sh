#!/usr/bin/env bash
# The whole default test run: type-check, lint, unit tests, then tests against real servers
# (PostgreSQL 15, etcd, HAProxy, patronictl), then the short fault-injection run. Prints node:test's
# summary lines.
#
# The fault run (test/fault/, VIGIL_FAULTS=short: async with lag must lose within its bound, sync
# with the same lag must lose nothing, the primary's agent killed for longer than ttl must not cause
# split brain) needs root and `ip netns`; without them it is skipped and the reason printed. It runs
# after the other tests, as its own node --test invocation, because it needs the machine's CPU and
# fixed network-namespace names to itself. The long version is `npm run test:faults`.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_OPTIONS="${NODE_OPTIONS:-} --max-old-space-size=2048"

echo "== type-check"; npx --no-install tsc --noEmit
echo "== lint"; npx --no-install eslint --no-error-on-unmatched-pattern src test bench
mapfile -t unit < <(find src -name '*.test.ts' | sort)
mapfile -t integ < <(find test -name '*.test.ts' -not -path 'test/fault/*' | sort)
mapfile -t faultunit < <(find test/fault -name '*.test.ts' -not -name 'suite.test.ts' | sort)
echo "== tests (${#unit[@]} unit files, ${#integ[@]} integration files, ${#faultunit[@]} fault-checker files)"
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${unit[@]}" "${integ[@]}" "${faultunit[@]}"

echo "== fault injection (short)"
why=""
if [ "$(id -u)" != "0" ]; then
  why="not running as root"
elif ! command -v ip >/dev/null 2>&1; then
  why="iproute2 (ip) is not installed"
elif ! ip netns add vigil-probe-sh 2>/dev/null; then
  why="ip netns add failed (no network-namespace support or no permission)"
else
  ip netns del vigil-probe-sh 2>/dev/null || true
fi
if [ -n "$why" ]; then
  echo "fault injection skipped: $why (run scripts/test.sh as root on a host with ip netns to include it)"
else
  VIGIL_FAULTS=short node --import tsx --test --test-concurrency=1 --test-reporter=spec test/fault/suite.test.ts
fi
