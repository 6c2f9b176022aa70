// A throwaway DNS server for the tests of etcd discovery by DNS SRV records: dnsmasq (Debian's
// dnsmasq-base) in the foreground on a free loopback UDP/TCP port, answering only the SRV records
// given (no upstream, no /etc/hosts). Stop it with stop().

import { spawn, type ChildProcess } from 'node:child_process';
import { Resolver } from 'node:dns/promises';

import { freePort } from './etcd.ts';

export interface SrvRecord {
  /** e.g. _etcd-client._tcp.example.test */
  name: string;
  target: string;
  port: number;
}

export interface DnsServer {
  /** 127.0.0.1:<port>, for Resolver.setServers. */
  address: string;
  stop(): Promise<void>;
}

export async function startDns(records: SrvRecord[]): Promise<DnsServer> {
  const port = await freePort();
  const args = [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--conf-file=/dev/null',
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--port=${port}`,
    '--pid-file=',
    '--user=root',
    ...records.map((r) => `--srv-host=${r.name},${r.target},${r.port}`),
  ];
  const child: ChildProcess = spawn('/usr/sbin/dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${port}`;
  const resolver = new Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([address]);
  const first = records[0];
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    try {
      if (first === undefined || (await resolver.resolveSrv(first.name)).length > 0) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
