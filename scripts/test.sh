#!/usr/bin/env bash
# The whole default test run: type-check, lint, unit tests, then tests against real servers
# (PostgreSQL 15, etcd, HAProxy, patronictl). Prints node:test's summary lines.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_OPTIONS="${NODE_OPTIONS:-} --max-old-space-size=2048"

echo "== type-check"; npx --no-install tsc --noEmit
echo "== lint"; npx --no-install eslint --no-error-on-unmatched-pattern src test bench
mapfile -t unit < <(find src -name '*.test.ts' | sort)
mapfile -t integ < <(find test -name '*.test.ts' -not -path 'test/fault/*' | sort)
echo "== tests (${#unit[@]} unit files, ${#integ[@]} integration files)"
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${unit[@]}" "${integ[@]}"
