// Counting the requests a cluster's HA agents send to their DCS, for bench/backends.ts, read at
// the DCS side wherever the server can tell:
// - etcd v3: etcd's Prometheus counter grpc_server_started_total, summed over every method (the
//   JSON gateway turns each HTTP request, watches and lease keep-alives included, into one gRPC
//   call on the server);
// - etcd v2: etcd's etcd_http_received_total (every /v2/keys request, by method);
// - ZooKeeper: the test server answers no four-letter words, so the agents are pointed at a
//   loopback TCP proxy that counts the client-to-server frames (ZooKeeper's framing is a 4-byte
//   length, then the request: connects, reads, writes, and the session pings);
// - the fakes of test/support (Consul, Kubernetes), which run in this process: node's
//   diagnostics channel http.server.request.start, published for every HTTP(S) request a node
//   server of this process receives.

import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';

/** A monotonically increasing request counter. */
export interface RequestCounter {
  read(): Promise<number>;
  /** The same count by kind of request (etcd v3: gRPC method; ZooKeeper: request type), where known. */
  byKind?(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** Per-kind difference b - a, kinds with a non-zero difference only. */
export function kindDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) !== 0) out[k] = v - (a[k] ?? 0);
  return out;
}

/** Sum of every sample of the Prometheus metric `name` at http://<endpoint>/metrics. */
async function promSum(endpoint: string, name: string): Promise<number> {
  const res = await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** grpc_server_started_total by grpc_method. */
async function etcd3ByMethod(endpoint: string): Promise<Record<string, number>> {
  const res = await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5000) });
  const out: Record<string, number> = {};
  for (const line of (await res.text()).split('\n')) {
    if (!line.startsWith('grpc_server_started_total{')) continue;
    const method = /grpc_method="([^"]*)"/.exec(line)?.[1] ?? '?';
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) out[method] = (out[method] ?? 0) + v;
  }
  return out;
}

export function etcd3Counter(endpoint: string): RequestCounter {
  return { read: () => promSum(endpoint, 'grpc_server_started_total'), byKind: () => etcd3ByMethod(endpoint), close: async () => undefined };
}

export function etcd2Counter(endpoint: string): RequestCounter {
  return { read: () => promSum(endpoint, 'etcd_http_received_total'), close: async () => undefined };
}

/** Every HTTP(S) request received by a node server of this process (the in-process fakes). */
export function inProcessHttpCounter(): RequestCounter {
  let n = 0;
  const onRequest = (): void => {
    n += 1;
  };
  diagnostics.subscribe('http.server.request.start', onRequest);
  return {
    read: async () => n,
    close: async () => {
      diagnostics.unsubscribe('http.server.request.start', onRequest);
    },
  };
}

/** ZooKeeper request types by code (the ones a HA agent sends). */
const ZK_OPS: Record<number, string> = { 1: 'create', 2: 'delete', 3: 'exists', 4: 'getData', 5: 'setData', 8: 'getChildren', 11: 'ping', 12: 'getChildren2', 14: 'multi', 15: 'create2', 100: 'auth', 101: 'setWatches', [-11]: 'closeSession' };

/** A loopback proxy to ZooKeeper at `target` counting client-to-server frames. */
export async function zookeeperCountingProxy(target: string): Promise<RequestCounter & { endpoint: string }> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  let frames = 0;
  const kinds: Record<string, number> = {};
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect({ host, port });
    sockets.add(down).add(up);
    let pending = Buffer.alloc(0);
    down.on('data', (chunk: Buffer) => {
      up.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const len = pending.readInt32BE(0);
        if (len < 0 || pending.length < 4 + len) break;
        frames += 1;
        // A request frame is xid, type; a connect request (the first frame) has no type there.
        const kind = len >= 8 ? String(ZK_OPS[pending.readInt32BE(8)] ?? 'connect/other') : 'connect/other';
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        pending = pending.subarray(4 + len);
      }
    });
    up.on('data', (chunk: Buffer) => down.write(chunk));
    const end = (): void => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    for (const s of [down, up]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${addr.port}`,
    read: async () => frames,
    byKind: async () => ({ ...kinds }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
