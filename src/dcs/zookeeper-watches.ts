// The ZooKeeper client's watch delivery (zookeeper-client.ts): one-shot callbacks by path, and
// listeners that see every event. The client decides when events happen (a watch notification
// from the server, the end of a connection); this registry only delivers them.

/** What onEvent listeners receive: a watch event (type: EventType) or the end of a connection. */
export type ZkEvent = { kind: 'watch'; type: number; path: string } | { kind: 'disconnected' };

/** ZooKeeper's watch event types. */
export const EventType = { created: 1, deleted: 2, dataChanged: 3, childrenChanged: 4 } as const;

export class ZkWatches {
  #watchers = new Map<string, Set<() => void>>();
  #listeners = new Set<(e: ZkEvent) => void>();

  /** Register a one-shot callback for a watch event on `path`; returns the unregister function. */
  onWatch(path: string, fn: () => void): () => void {
    let set = this.#watchers.get(path);
    if (!set) {
      set = new Set();
      this.#watchers.set(path, set);
    }
    set.add(fn);
    return () => {
      this.#watchers.get(path)?.delete(fn);
    };
  }

  /** Call `fn` for every event emitted; returns the unsubscribe function. */
  onEvent(fn: (e: ZkEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  /** Tell every listener (those subscribed when it is called). */
  emit(e: ZkEvent): void {
    for (const fn of [...this.#listeners]) fn(e);
  }

  /** Call, and unregister, the callbacks registered for `path`. */
  fire(path: string): void {
    const set = this.#watchers.get(path);
    if (!set) return;
    this.#watchers.delete(path);
    for (const fn of set) fn();
  }

  /** fire() every path that has callbacks. */
  fireAll(): void {
    for (const path of [...this.#watchers.keys()]) this.fire(path);
  }
}
