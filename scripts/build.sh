#!/usr/bin/env bash
# `npm run build`: the production form of Vigil in dist/, plain JavaScript run by plain node (no
# TypeScript loader at run time).
#   dist/**/*.js        tsc emit of src/ (tsconfig.build.json: no tests, no simulator; relative
#                       `.ts` imports rewritten to `.js`)
#   dist/fence/fencer.mjs  the JavaScript fencer, copied (used when no native one exists)
#   dist/fence/fencer.c    its native twin's source, and dist/fence/fencer built from it when a C
#                          compiler is there (otherwise Fence falls back to fencer.mjs)
# The package's `vigil` bin is dist/cli/main.js; bin/vigil keeps running the sources of a checkout.
# Usage: scripts/build.sh [OUTDIR]   (default dist; an OUTDIR must lie inside the checkout so that
# the built modules find node_modules, as the tests' builds under tmp/ do)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
rm -rf "$out"
npx --no-install tsc -p tsconfig.build.json --outDir "$out"
cp src/fence/fencer.mjs src/fence/fencer.c "$out/fence/"
chmod +x "$out/cli/main.js"
if command -v cc >/dev/null 2>&1; then
  cc -O2 -o "$out/fence/fencer" "$out/fence/fencer.c"
else
  echo "build: no C compiler (cc): $out/fence/fencer not built; the agent will run fencer.mjs under node (about 40 MiB instead of 2)" >&2
fi
echo "build: $out/ ready ($(find "$out" -name '*.js' | wc -l) modules)"
