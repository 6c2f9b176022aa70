// The ZooKeeper backend's view of the cluster tree (zookeeper.ts readTree), kept by watches so that
// an idle HA loop re-reads nothing but a one-request check (Patroni's ZooKeeper client likewise
// reads again only after a watch fired).
//
// What is cached: the children of the cluster znode and of members/ (read with a child watch),
// and the data and Stat of every key znode under them plus optime/leader (read with a data watch,
// or an exists watch while absent). A watch event marks what it names dirty; the next read reads
// again only that (with a new watch). The end of a connection invalidates everything (the server
// drops a connection's watches with it, and our client does not re-register them): the next read
// is a full one. A read whose connection changed while it ran is not trusted as a cache either.
//
// Why a read served from the cache is as fresh as a read of every znode (the contract the HA loop
// relies on: it must never act on an older view than a plain read would give it):
// - Every read first sends one request (exists of the cluster znode) and waits for its reply, at
//   zxid Z. A ZooKeeper server sends a connection's watch events and replies in the order it
//   produced them, and a client sees the watch event for a change of a znode it watches before it
//   sees any reply reflecting that change (ZooKeeper's ordering guarantee). So once Z's reply is
//   here, every change up to Z of a watched znode has marked it dirty; what is clean still holds
//   its value at Z.
// - What is dirty is then read again (its value at Z or later), with a new watch. Each key in the
//   result is therefore at least as new as Z, which is what the uncached read gave (a read of each
//   znode after the first reply, not an atomic snapshot), and the revision returned is Z, so the
//   leader watch wakes for anything after it.
// - Our own writes need nothing special: the server fires our own watches for them before it
//   answers the write, and the next read's check orders after that in any case.
// - A znode whose data is empty is read every time: whether it only holds others (not a key, see
//   readTree) depends on its number of children, which a data watch does not report.

import { EventType, type ZkEvent } from './zookeeper-watches.ts';
import type { Stat } from './zookeeper-jute.ts';

export interface ZNode {
  data: string;
  stat: Stat;
}

/** The reads the cache is filled with (zookeeper.ts), each with its watch flag. */
export interface TreeReads {
  /** exists of the cluster znode, no watch: the zxid of its reply (undefined: no cluster znode). */
  check(): Promise<bigint | undefined>;
  /** Children and the reply's zxid; undefined when the znode does not exist (no watch is left then). */
  children(path: string, watch: boolean): Promise<{ names: string[]; zxid: bigint } | undefined>;
  /** Data and Stat; undefined when absent. With `watch`, an absent znode gets an exists watch. */
  data(path: string, watch: boolean): Promise<ZNode | undefined>;
}

export interface TreeResult {
  /** Relative key -> znode, in read order. */
  nodes: [string, ZNode][];
  revision: bigint;
}

/** The relative keys a cluster's children name (optime's only key is optime/leader). */
function keysOf(top: readonly string[], members: readonly string[]): string[] {
  const rels = top.filter((n) => n !== 'members' && n !== 'optime');
  if (top.includes('optime')) rels.push('optime/leader');
  for (const m of members) rels.push(`members/${m}`);
  return rels;
}

/** Every znode of the tree read once: the lists, then each key (pipelined), with or without watches. */
async function readAll(base: string, r: TreeReads, watch: boolean): Promise<{ top: string[] | undefined; members: string[] | undefined; got: (readonly [string, ZNode | undefined])[]; nodes: [string, ZNode][]; zxid: bigint }> {
  const [top, members] = await Promise.all([r.children(base, watch), r.children(`${base}/members`, watch)]);
  const rels = keysOf(top?.names ?? [], members?.names ?? []);
  const got = await Promise.all(rels.map(async (rel) => [rel, await r.data(`${base}/${rel}`, watch)] as const));
  const nodes: [string, ZNode][] = [];
  for (const [rel, node] of got) if (node !== undefined) nodes.push([rel, node]);
  return { top: top?.names, members: members?.names, got, nodes, zxid: top?.zxid ?? members?.zxid ?? 0n };
}

export class TreeCache {
  readonly #base: string;
  /** Incremented at the end of every connection: a read that saw it change is not a cache. */
  #generation = 0;
  #valid = false;
  #top: string[] = [];
  #members: string[] = [];
  #topDirty = false;
  #membersDirty = false;
  #nodes = new Map<string, ZNode | undefined>();
  #dirty = new Set<string>();
  /** Revision of the last read that (re)read the leader key or the cluster's children. */
  #leaderRead = -1n;
  #leaderWaiters = new Set<() => void>();
  #reading = false;

  constructor(base: string) {
    this.#base = base;
  }

  /** Feed every client event here (ZkClient.onEvent). */
  onEvent(e: ZkEvent): void {
    if (e.kind === 'disconnected') {
      this.#generation++;
      this.#valid = false;
      this.#wakeLeaderWaiters();
      return;
    }
    const { path } = e;
    if (path === this.#base || path === `${this.#base}/members`) {
      // The cluster's or members' children changed (or the znode itself went).
      if (path === this.#base) {
        this.#topDirty = true;
        this.#wakeLeaderWaiters();
      } else this.#membersDirty = true;
      if (e.type === EventType.deleted) this.#valid = false;
      return;
    }
    if (!path.startsWith(`${this.#base}/`)) return;
    const rel = path.slice(this.#base.length + 1);
    this.#dirty.add(rel);
    if (rel === 'leader') this.#wakeLeaderWaiters();
  }

  /**
   * The whole tree: from the cache after a check when it is valid, else read in full. One read
   * at a time uses the cache: a read that starts while another runs reads every znode itself
   * (the other may have taken a dirty key's flag but not yet its new value).
   */
  async read(r: TreeReads): Promise<TreeResult> {
    if (this.#reading) {
      const all = await readAll(this.#base, r, false);
      return { nodes: all.nodes, revision: all.zxid };
    }
    this.#reading = true;
    try {
      return await this.#cached(r);
    } finally {
      this.#reading = false;
    }
  }

  async #cached(r: TreeReads): Promise<TreeResult> {
    if (!this.#valid) return this.#full(r);
    const generation = this.#generation;
    const z = await r.check();
    if (z === undefined || generation !== this.#generation || !this.#valid) return this.#full(r);
    let leaderRead = this.#dirty.has('leader');
    const lists: Promise<boolean>[] = [];
    if (this.#topDirty) {
      this.#topDirty = false;
      leaderRead = true;
      lists.push(r.children(this.#base, true).then((c) => c !== undefined && ((this.#top = c.names), true)));
    }
    if (this.#membersDirty) {
      this.#membersDirty = false;
      lists.push(r.children(`${this.#base}/members`, true).then((c) => c !== undefined && ((this.#members = c.names), true)));
    }
    if (!(await Promise.all(lists)).every(Boolean)) return this.#full(r);
    const rels = keysOf(this.#top, this.#members);
    const keep = new Set(rels);
    for (const rel of [...this.#nodes.keys()]) if (!keep.has(rel)) this.#nodes.delete(rel);
    // Marks of keys gone (a key that comes back is read as new anyway).
    for (const rel of [...this.#dirty]) if (!keep.has(rel)) this.#dirty.delete(rel);
    const stale = rels.filter((rel) => !this.#nodes.has(rel) || this.#dirty.has(rel) || this.#nodes.get(rel)?.data === '');
    for (const rel of stale) this.#dirty.delete(rel);
    const got = await Promise.all(stale.map(async (rel) => [rel, await r.data(`${this.#base}/${rel}`, true)] as const));
    if (generation !== this.#generation || !this.#valid) return this.#full(r);
    for (const [rel, node] of got) this.#nodes.set(rel, node);
    if (leaderRead && z > this.#leaderRead) this.#leaderRead = z;
    return { nodes: this.#result(rels), revision: z };
  }

  /** Everything read again with watches; a cache from now on if the connection held throughout. */
  async #full(r: TreeReads): Promise<TreeResult> {
    const generation = this.#generation;
    this.#valid = false;
    this.#topDirty = false;
    this.#membersDirty = false;
    this.#dirty.clear();
    this.#nodes.clear();
    const all = await readAll(this.#base, r, true);
    this.#top = all.top ?? [];
    this.#members = all.members ?? [];
    for (const [rel, node] of all.got) this.#nodes.set(rel, node);
    // Without the cluster or members znode there is no child watch to tell us when it appears.
    this.#valid = generation === this.#generation && all.top !== undefined && all.members !== undefined;
    if (all.zxid > this.#leaderRead) this.#leaderRead = all.zxid;
    return { nodes: all.nodes, revision: all.zxid };
  }

  #result(rels: readonly string[]): [string, ZNode][] {
    const out: [string, ZNode][] = [];
    for (const rel of rels) {
      const n = this.#nodes.get(rel);
      if (n !== undefined) out.push([rel, n]);
    }
    return out;
  }

  /**
   * For the leader watch (zookeeper.ts watch): 'changed' when the leader key or the cluster's
   * children changed after the read at `revision` (an event not yet read, or a later read that
   * read them again); 'armed' when the cache's watches will report such a change (wait with
   * waitLeader); 'unknown' when the cache cannot tell (not valid: use server watches).
   */
  leaderState(revision: bigint | undefined): 'changed' | 'armed' | 'unknown' {
    if (!this.#valid) return 'unknown';
    if (this.#topDirty || this.#dirty.has('leader')) return 'changed';
    if (revision !== undefined && this.#leaderRead > revision) return 'changed';
    return 'armed';
  }

  /** Resolves at the next event on the leader key or the cluster's children, or connection end. */
  waitLeader(): { done: Promise<void>; cancel(): void } {
    let fn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      fn = resolve;
      this.#leaderWaiters.add(resolve);
    });
    return { done, cancel: () => this.#leaderWaiters.delete(fn) };
  }

  #wakeLeaderWaiters(): void {
    const ws = [...this.#leaderWaiters];
    this.#leaderWaiters.clear();
    for (const w of ws) w();
  }
}
