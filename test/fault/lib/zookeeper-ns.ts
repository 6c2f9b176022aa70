// A real ZooKeeper 3.8 (test/support/zookeeper.ts) inside the DCS namespace of the fault topology
// (netns.ts: the namespace etcd uses in the etcd runs), listening on that namespace's address, so
// that faults can cut a node from ZooKeeper alone. Same contract as etcd-ns.ts: stop()/start() are
// the "DCS down" fault; data survives restarts.

import { mkdir } from 'node:fs/promises';

import { startZookeeper, type ZookeeperServer } from '../../support/zookeeper.ts';
import type { Host } from './netns.ts';
import type { NsEtcd } from './etcd-ns.ts';

export type NsZookeeper = NsEtcd;

export function nsZookeeper(host: Host, dir: string, port = 2181): NsZookeeper {
  let server: ZookeeperServer | undefined;

  async function start(): Promise<void> {
    if (server === undefined) {
      await mkdir(dir, { recursive: true });
      server = await startZookeeper({ host: host.ip, port, netns: host.ns, baseDir: dir });
    } else if (!server.running()) {
      await server.restart();
    }
  }

  async function stop(): Promise<void> {
    await server?.halt();
  }

  return { endpoint: `${host.ip}:${port}`, start, stop, running: () => server?.running() === true };
}
