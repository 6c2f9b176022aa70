// The fault suite's network: a Linux bridge in the root namespace holding the test client's
// address, one network namespace per node and one for etcd, each joined to the bridge by a veth
// pair, all in a private test subnet that exists only on these interfaces.
//
//   root ns:    vigil-br0 10.231.0.1/24  <- the test process (writers, checker, REST calls)
//   vigil-etcd: eth0 10.231.0.2          <- etcd
//   vigil-n<i>: eth0 10.231.0.(10+i)     <- agent i and its PostgreSQL
//
// Host-side veth ends are vgl-etcd and vgl-n<i>. Setup first tears down whatever a previous
// (possibly crashed) run left behind, so both setup and teardown are idempotent. Teardown SIGKILLs
// the processes still running inside our namespaces (ours by construction: nothing else runs there).
//
// Needs root, `ip` (iproute2) and network-namespace support. Packet drops are made without
// iptables/nftables (not installed here): a permanent neighbour entry with an unused MAC makes the
// kernel send a peer's packets to a MAC address nobody owns, so they vanish silently (a real
// partition, not a connection refusal); deleting the entry heals it.

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';

export const SUBNET = '10.231.0.0/24';
export const BRIDGE = 'vigil-br0';
export const BRIDGE_IP = '10.231.0.1';
export const ETCD_NS = 'vigil-etcd';
export const ETCD_IP = '10.231.0.2';
/** A MAC address no interface has: frames sent to it are dropped by every receiver. */
const BLACKHOLE_MAC = '02:00:de:ad:be:ef';

export interface Host {
  /** Network namespace name. */
  ns: string;
  /** Address on the test subnet. */
  ip: string;
  /** Host-side (root namespace, on the bridge) end of its veth pair. */
  veth: string;
}

export interface Topology {
  bridge: string;
  bridgeIp: string;
  etcd: Host;
  nodes: Host[];
}

export function nodeHost(i: number): Host {
  return { ns: `vigil-n${i}`, ip: `10.231.0.${10 + i}`, veth: `vgl-n${i}` };
}

export const ETCD_HOST: Host = { ns: ETCD_NS, ip: ETCD_IP, veth: 'vgl-etcd' };

/** Runs a command; rejects with its stderr on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

async function tryRun(cmd: string, args: string[]): Promise<void> {
  await run(cmd, args).catch(() => undefined);
}

/** Runs a command inside a namespace. */
export function nsRun(ns: string, cmd: string, args: string[]): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** Why this machine cannot run the namespace topology, or undefined when it can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not running as root';
  const probe = 'vigil-probe';
  try {
    await tryRun('ip', ['netns', 'del', probe]);
    await run('ip', ['netns', 'add', probe]);
    await run('ip', ['netns', 'del', probe]);
    return undefined;
  } catch (err) {
    return `ip netns add failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Whether the kernel has sch_netem (tc ... netem delay). Not the case on every kernel. */
export async function netemAvailable(): Promise<boolean> {
  try {
    await run('ip', ['link', 'add', 'vgl-probe0', 'type', 'veth', 'peer', 'name', 'vgl-probe1']);
    try {
      await run('tc', ['qdisc', 'add', 'dev', 'vgl-probe0', 'root', 'netem', 'delay', '1ms']);
      return true;
    } finally {
      await tryRun('ip', ['link', 'del', 'vgl-probe0']);
    }
  } catch {
    return false;
  }
}

/** PIDs of every process whose network namespace is ns. */
export async function nsPids(ns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', ns]).catch(() => '');
  return out
    .split(/\s+/)
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0);
}

/**
 * Removes everything setupTopology creates; safe to call when nothing (or only part) exists.
 * Releases the lock unless keepLock (setup's own clean-up of leftovers).
 */
export async function teardownTopology(nodes = 3, keepLock = false): Promise<void> {
  const hosts = [ETCD_HOST, ...Array.from({ length: Math.max(nodes, 8) }, (_, i) => nodeHost(i))];
  for (const h of hosts) {
    for (const pid of await nsPids(h.ns)) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const h of hosts) {
    await tryRun('ip', ['link', 'del', h.veth]);
    await tryRun('ip', ['netns', 'del', h.ns]);
  }
  await tryRun('ip', ['link', 'del', BRIDGE]);
  if (!keepLock) releaseLock();
}

async function addHost(h: Host): Promise<void> {
  await run('ip', ['netns', 'add', h.ns]);
  await run('ip', ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', `${h.veth}-p`]);
  await run('ip', ['link', 'set', `${h.veth}-p`, 'netns', h.ns]);
  await nsRun(h.ns, 'ip', ['link', 'set', `${h.veth}-p`, 'name', 'eth0']);
  await nsRun(h.ns, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
  await nsRun(h.ns, 'ip', ['link', 'set', 'lo', 'up']);
  await nsRun(h.ns, 'ip', ['link', 'set', 'eth0', 'up']);
  await run('ip', ['link', 'set', h.veth, 'master', BRIDGE]);
  await run('ip', ['link', 'set', h.veth, 'up']);
}

/** Holds the pid of the process that owns the topology: the names are fixed, so one run at a time. */
export const LOCK_FILE = '/tmp/vigil-faults.lock';

function takeLock(): void {
  try {
    const pid = Number(readFileSync(LOCK_FILE, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another fault suite (pid ${pid}) owns the test network; ${LOCK_FILE} names it`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  writeFileSync(LOCK_FILE, `${process.pid}\n`);
}

function releaseLock(): void {
  try {
    if (Number(readFileSync(LOCK_FILE, 'utf8').trim()) === process.pid) rmSync(LOCK_FILE);
  } catch {
    // not ours or gone
  }
}

/**
 * Tears down leftovers, then builds the bridge, the etcd namespace and `nodes` node namespaces.
 * Refuses (throws) while another live process owns the topology.
 */
export async function setupTopology(nodes: number): Promise<Topology> {
  takeLock();
  await teardownTopology(nodes, true);
  try {
    await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${BRIDGE_IP}/24`, 'dev', BRIDGE]);
    await run('ip', ['link', 'set', BRIDGE, 'up']);
    const hosts = Array.from({ length: nodes }, (_, i) => nodeHost(i));
    for (const h of [ETCD_HOST, ...hosts]) await addHost(h);
    // Wait until every namespace reaches the bridge address (the veths come up asynchronously).
    for (const h of [ETCD_HOST, ...hosts]) {
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        // No ping here: a TCP connect to a closed port that is refused proves the path works.
        ok = await nsRun(h.ns, 'timeout', ['1', 'bash', '-c', `exec 3<>/dev/tcp/${BRIDGE_IP}/9`]).then(
          () => true,
          (err: unknown) => String(err).includes('refused'),
        );
        if (!ok) await new Promise((r) => setTimeout(r, 100));
      }
      if (!ok) throw new Error(`namespace ${h.ns} cannot reach ${BRIDGE_IP}`);
    }
    return { bridge: BRIDGE, bridgeIp: BRIDGE_IP, etcd: ETCD_HOST, nodes: hosts };
  } catch (err) {
    await teardownTopology(nodes);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Link-level faults

/**
 * Silently drops traffic between a and b in both directions (each side sends b's/a's packets to a
 * MAC address nobody owns). `a` or `b` may be the root namespace, given as undefined ns with the
 * bridge address.
 */
export async function cut(a: Host | 'root', b: Host | 'root'): Promise<void> {
  await blackhole(a, b);
  await blackhole(b, a);
}

/** Undoes cut(): deletes the bogus neighbour entries; ARP relearns the real ones. */
export async function heal(a: Host | 'root', b: Host | 'root'): Promise<void> {
  await unblackhole(a, b);
  await unblackhole(b, a);
}

function ipOf(h: Host | 'root'): string {
  return h === 'root' ? BRIDGE_IP : h.ip;
}

async function blackhole(from: Host | 'root', to: Host | 'root'): Promise<void> {
  const args = ['neigh', 'replace', ipOf(to), 'lladdr', BLACKHOLE_MAC, 'nud', 'permanent', 'dev', from === 'root' ? BRIDGE : 'eth0'];
  if (from === 'root') await run('ip', args);
  else await nsRun(from.ns, 'ip', args);
}

async function unblackhole(from: Host | 'root', to: Host | 'root'): Promise<void> {
  const args = ['neigh', 'del', ipOf(to), 'dev', from === 'root' ? BRIDGE : 'eth0'];
  if (from === 'root') await tryRun('ip', args);
  else await nsRun(from.ns, 'ip', args).catch(() => undefined);
}

/** Takes a host's bridge port down: it is cut from everything, clients included. */
export async function linkDown(h: Host): Promise<void> {
  await run('ip', ['link', 'set', h.veth, 'down']);
}

export async function linkUp(h: Host): Promise<void> {
  await run('ip', ['link', 'set', h.veth, 'up']);
}

/**
 * Throttles traffic the bridge sends to host h whose source port is srcPort (the primary's
 * PostgreSQL port: the WAL stream) to `rate` (tc syntax, e.g. "200kbit"); everything else to h
 * (etcd, REST) goes through an unthrottled class. This is the replication-delay fault on kernels
 * without sch_netem: a replica whose WAL arrives slower than it is written falls behind.
 */
export async function throttleFrom(h: Host, srcPort: number, rate: string): Promise<void> {
  await unthrottle(h);
  await run('tc', ['qdisc', 'add', 'dev', h.veth, 'root', 'handle', '1:', 'htb', 'default', '20']);
  await run('tc', ['class', 'add', 'dev', h.veth, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', rate, 'ceil', rate]);
  await run('tc', ['class', 'add', 'dev', h.veth, 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '10gbit']);
  await run('tc', ['filter', 'add', 'dev', h.veth, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'sport', String(srcPort), '0xffff', 'flowid', '1:10']);
}

/** Adds netem delay on the bridge's link to h (only where the kernel has sch_netem). */
export async function netemDelay(h: Host, ms: number): Promise<void> {
  await unthrottle(h);
  await run('tc', ['qdisc', 'add', 'dev', h.veth, 'root', 'netem', 'delay', `${ms}ms`]);
}

export async function unthrottle(h: Host): Promise<void> {
  await tryRun('tc', ['qdisc', 'del', 'dev', h.veth, 'root']);
}
