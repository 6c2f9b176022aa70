// How a ZooKeeper client call fails (zookeeper-client.ts "Failure contract of call()"), and the
// caller's deadline that bounds every wait.

export class ZkError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'ZkError';
    this.code = code;
  }
}
export class ZkTimeout extends Error {}
export class ZkClosed extends Error {}
export class ZkAborted extends Error {}
/** The call required a session that is no longer the client's live session. */
export class ZkSessionLost extends Error {}

export interface Deadline {
  deadline: number;
  signal?: AbortSignal | undefined;
}

/** Resolve/reject with `p`, or reject with ZkTimeout at the deadline or ZkAborted on abort. */
export function bounded<T>(p: Promise<T>, d: Deadline): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(new ZkTimeout('no answer before the deadline'))), Math.max(0, d.deadline - Date.now()));
    const onAbort = (): void => finish(() => reject(new ZkAborted('aborted by caller')));
    d.signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      d.signal?.removeEventListener('abort', onAbort);
      f();
    };
    p.then((v) => finish(() => resolve(v)), (e: unknown) => finish(() => reject(e instanceof Error ? e : new Error(String(e)))));
  });
}
