// A small ZooKeeper client over node:net / node:tls: one connection, one session, the requests
// the ZooKeeper backend needs (zookeeper.ts), one-shot watches, pings. Wire format: zookeeper-jute.ts.
//
// Session contract:
// - The client connects on first use and always tries to hold a live session: after a lost
//   connection it reconnects (to the next host) with the same session id and password; when the
//   server answers that the session expired, or when our own timer says so, it starts a new
//   session. `sessionId` is the live session (undefined while there is none).
// - Our own timer: the server expires a session `timeout` ms after the last packet it received
//   from it. We cannot see that moment, so we count from the send time of the last packet that
//   was answered (the server received it later, so its deadline is no earlier than ours): once
//   `timeout` ms have passed since then without a reconnection, the session is treated as expired
//   (its ephemeral znodes must be assumed gone) even if the server was never heard again, e.g.
//   during a network partition.
// - A request or ping left unanswered for the read timeout (at most two thirds of the session
//   timeout) closes the connection, and the next host is tried.
// - Pings go out every third of the read timeout, but only until one read timeout after the
//   client's last request: the session lives while its owner uses it. An agent whose loop stalls
//   (its process still running) thus loses its session, and the leader lock with it, at most
//   `timeout` plus one read timeout after its last request, as an etcd lease ends when its
//   keepalives stop. (Patroni's ZooKeeper client pings from a background thread whatever its HA
//   loop does.)
// - Watches are one-shot and delivered by path; a lost connection fires every registered watch
//   (a spurious wake, never a missed one: server watches are not re-registered). onEvent
//   listeners see every watch event with its type, and every end of an established connection
//   (after which the server holds none of this connection's watches).
// - A ping goes out only when nothing was sent for a third of the read timeout: any request
//   extends the session at the server and tells us the server is alive as well.
//
// Failure contract of call(): resolves with the reply body; rejects with ZkError(code) for a
// server error, ZkError(connectionLoss) when the connection dropped with the request in flight
// (its outcome unknown), ZkTimeout when no connection or no answer came before the deadline, or
// ZkClosed / ZkAborted (zookeeper-errors.ts). Watch delivery: zookeeper-watches.ts.

import net from 'node:net';
import tls from 'node:tls';

import { bounded, ZkAborted, ZkClosed, ZkError, ZkSessionLost, ZkTimeout, type Deadline } from './zookeeper-errors.ts';
import { Err, Op, Reader, Writer, type Acl } from './zookeeper-jute.ts';
import { ZkWatches, type ZkEvent } from './zookeeper-watches.ts';

export interface ZkClientOptions {
  /** host:port, tried in turn. */
  hosts: string[];
  /** Requested session timeout, ms (the server may negotiate it into its min/max). */
  sessionTimeoutMs: number;
  /**
   * A connection that answered nothing for this long is dropped and another tried (default and
   * cap: two thirds of the negotiated session timeout); pings go out every third of it.
   */
  readTimeoutMs?: number | undefined;
  /** Budget of one connection attempt, ms (default: the session timeout / number of hosts). */
  connectTimeoutMs?: number | undefined;
  /** TLS options (use_ssl); plain TCP when undefined. */
  tls?: tls.ConnectionOptions | undefined;
  /** Credentials sent on every connection (auth_data). */
  auth?: { scheme: string; credential: string }[];
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}

interface Pending {
  resolve(r: { zxid: bigint; body: Reader }): void;
  reject(err: Error): void;
  sentAt: number;
  type: number;
}

interface Session {
  id: bigint;
  passwd: Buffer;
  timeoutMs: number;
  /** Send time of the last answered packet. */
  lastAck: number;
}

const XID_WATCH = -1;
const XID_PING = -2;
const XID_AUTH = -4;

export class ZkClient {
  readonly #hosts: string[];
  readonly #tls: tls.ConnectionOptions | undefined;
  readonly #auth: { scheme: string; credential: string }[];
  readonly #log: ZkClientOptions['logger'];
  #requestedMs: number;
  readonly #readTimeoutMs: number | undefined;
  readonly #connectTimeoutMs: number | undefined;
  #session: Session | undefined;
  #sock: net.Socket | undefined;
  #connected = false;
  #running = false;
  #closed = false;
  #hostIndex = 0;
  #xid = 1;
  #lastZxid = 0n;
  /** Time of the last use: a call() sent, or a wait for the connection (ready()). */
  #lastCall = 0;
  /** Since when a request or ping has gone unanswered (nothing received since); undefined: none. */
  #awaiting: number | undefined;
  #pending = new Map<number, Pending>();
  #pings: number[] = [];
  #readyWaiters = new Set<() => void>();
  readonly #watches = new ZkWatches();
  /** Time the last request or ping was written to the connection. */
  #lastSent = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Why the last connection attempt or connection failed (for error messages). */
  #lastConnError: string | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: ZkClientOptions) {
    this.#hosts = opts.hosts;
    this.#tls = opts.tls;
    this.#auth = opts.auth ?? [];
    this.#log = opts.logger;
    this.#requestedMs = opts.sessionTimeoutMs;
    this.#readTimeoutMs = opts.readTimeoutMs;
    this.#connectTimeoutMs = opts.connectTimeoutMs;
  }

  /** The live session's id, if any. */
  get sessionId(): bigint | undefined {
    this.#checkExpiry();
    return this.#session?.id;
  }

  get requestedTimeoutMs(): number {
    return this.#requestedMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Wait until connected with a live session (connecting if needed); its id. */
  async ready(d: Deadline): Promise<bigint> {
    this.#lastCall = Date.now();
    for (;;) {
      this.#guard(d);
      this.#start();
      this.#checkExpiry();
      if (this.#connected && this.#session) return this.#session.id;
      await this.#waitReady(d).catch((err: unknown) => {
        if (err instanceof ZkTimeout && this.#lastConnError !== undefined) throw new ZkTimeout(`no connection (${this.#lastConnError})`);
        throw err;
      });
    }
  }

  /**
   * End the current session (closeSession when connected, so its ephemeral znodes vanish at
   * once; best effort within the deadline) and start a new one with `timeoutMs`.
   */
  async newSession(timeoutMs: number, d: Deadline): Promise<bigint> {
    this.#requestedMs = timeoutMs;
    if (this.#session && this.#connected) {
      await this.call(Op.closeSession, new Writer(), d).catch(() => undefined);
    }
    this.#session = undefined;
    this.#sock?.destroy();
    return this.ready(d);
  }

  /** Register a one-shot callback for a watch event on `path`; returns the unregister function. */
  onWatch(path: string, fn: () => void): () => void {
    return this.#watches.onWatch(path, fn);
  }

  /** Call `fn` for every watch event and every end of an established connection; returns the unsubscribe function. */
  onEvent(fn: (e: ZkEvent) => void): () => void {
    return this.#watches.onEvent(fn);
  }

  /**
   * Send one request and wait for its reply. With `session`, the request is sent only while that
   * session is the live one (ZkSessionLost otherwise).
   */
  async call(type: number, body: Writer, d: Deadline, session?: bigint): Promise<{ zxid: bigint; body: Reader }> {
    const id = await this.ready(d);
    if (session !== undefined && id !== session) throw new ZkSessionLost(`session 0x${session.toString(16)} is no longer live`);
    const sock = this.#sock;
    if (!sock) throw new ZkTimeout('no connection');
    const xid = this.#xid++;
    const header = new Writer().int(xid).int(type);
    const packet = Buffer.concat([header.packet().subarray(4), body.packet().subarray(4)]);
    const len = Buffer.alloc(4);
    len.writeInt32BE(packet.length);
    const reply = new Promise<{ zxid: bigint; body: Reader }>((resolve, reject) => {
      this.#pending.set(xid, { resolve, reject, sentAt: Date.now(), type });
    });
    this.#lastCall = Date.now();
    this.#lastSent = this.#lastCall;
    this.#awaiting ??= this.#lastCall;
    sock.write(Buffer.concat([len, packet]));
    try {
      return await bounded(reply, d);
    } finally {
      this.#pending.delete(xid);
    }
  }

  /** Stop; with `closeSession`, end the session first (bounded to 1 s). Idempotent. */
  async close(closeSession: boolean): Promise<void> {
    if (this.#closed) return;
    if (closeSession && this.#connected && this.#session) {
      await this.call(Op.closeSession, new Writer(), { deadline: Date.now() + 1000 }).catch(() => undefined);
    }
    this.#closed = true;
    this.#session = undefined;
    this.#sock?.destroy();
    this.#wake?.();
    this.#watches.fireAll();
    for (const w of this.#readyWaiters) w();
  }

  // ---- internals ----------------------------------------------------------------------------

  #guard(d: Deadline): void {
    if (this.#closed) throw new ZkClosed('ZooKeeper client closed');
    if (d.signal?.aborted) throw new ZkAborted('aborted by caller');
    if (Date.now() >= d.deadline) throw new ZkTimeout('deadline passed');
  }

  #waitReady(d: Deadline): Promise<void> {
    let release: () => void = () => undefined;
    const p = new Promise<void>((resolve) => {
      release = resolve;
      this.#readyWaiters.add(resolve);
    });
    return bounded(p, d).finally(() => this.#readyWaiters.delete(release));
  }

  /**
   * Our own expiry timer (see the header): drop a session not heard of for its timeout, whether
   * the socket still looks open (a partition keeps it so) or not; the connection goes with it.
   */
  #checkExpiry(): void {
    const s = this.#session;
    if (!s || Date.now() - s.lastAck < s.timeoutMs) return;
    this.#log?.warn({ session: `0x${s.id.toString(16)}`, timeoutMs: s.timeoutMs }, 'ZooKeeper session not confirmed for its whole timeout; treating it as expired');
    this.#session = undefined;
    this.#connected = false;
    this.#sock?.destroy();
  }

  #start(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    void this.#run().finally(() => {
      this.#running = false;
    });
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      this.#checkExpiry();
      // No session and nobody asking for one: reconnect on the next use, not in a loop of new
      // sessions that lapse unused.
      if (this.#session === undefined && this.#readyWaiters.size === 0 && Date.now() - this.#lastCall > (this.#readTimeoutMs ?? this.#requestedMs)) break;
      const host = this.#hosts[this.#hostIndex % this.#hosts.length] ?? '';
      const ok = await this.#connectOnce(host).catch((err: unknown) => {
        this.#log?.debug?.({ host, err: String(err) }, 'ZooKeeper connection failed');
        return false;
      });
      if (this.#closed) break;
      this.#hostIndex++; // after a failure or a lost connection, the next server first (as kazoo)
      failures = ok ? 0 : failures + 1;
      if (failures > 0 && failures % this.#hosts.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** One connection, from connect to close. true: it was established (and has now ended). */
  #connectOnce(hostPort: string): Promise<boolean> {
    const i = hostPort.lastIndexOf(':');
    const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(hostPort.slice(i + 1));
    const session = this.#session;
    const remaining = session ? session.lastAck + session.timeoutMs - Date.now() : Infinity;
    const connectTimeout = Math.max(200, Math.min(remaining, this.#connectTimeoutMs ?? this.#requestedMs / Math.max(1, this.#hosts.length)));
    return new Promise<boolean>((resolve) => {
      const sock = this.#tls ? tls.connect({ ...this.#tls, host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
      this.#sock = sock;
      let established = false;
      let buf: Buffer = Buffer.alloc(0);
      const connectTimer = setTimeout(() => sock.destroy(new Error(`no session within ${connectTimeout} ms`)), connectTimeout);
      this.#wake = () => sock.destroy();
      sock.setNoDelay(true);
      sock.once(this.#tls ? 'secureConnect' : 'connect', () => {
        // The last zxid seen only when resuming a session: a server behind it refuses us, which
        // must not lock a new session out of a ZooKeeper rebuilt from empty (kazoo resets it too).
        const w = new Writer().int(0).long(session ? this.#lastZxid : 0n).int(session?.timeoutMs ?? this.#requestedMs).long(session?.id ?? 0n).buffer(session?.passwd ?? Buffer.alloc(16)).bool(false);
        sock.write(w.packet());
      });
      sock.on('data', (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        while (buf.length >= 4) {
          const len = buf.readInt32BE(0);
          if (len < 0 || len > 64 * 1024 * 1024) {
            sock.destroy(new Error(`bad packet length ${len}`));
            return;
          }
          if (buf.length < 4 + len) break;
          const frame = buf.subarray(4, 4 + len);
          buf = buf.subarray(4 + len);
          this.#awaiting = undefined;
          try {
            if (!established) {
              clearTimeout(connectTimer);
              established = this.#onConnectResponse(new Reader(frame), sock);
              if (!established) return;
            } else {
              this.#onPacket(new Reader(frame));
            }
            if (this.#pending.size > 0 || this.#pings.length > 0) this.#awaiting = Date.now();
          } catch (err) {
            sock.destroy(err instanceof Error ? err : new Error(String(err)));
            return;
          }
        }
      });
      sock.on('error', (err) => {
        this.#lastConnError = `${hostPort}: ${err.message}`;
        this.#log?.debug?.({ host: hostPort, err: err.message }, 'ZooKeeper socket error');
      });
      sock.on('close', () => {
        clearTimeout(connectTimer);
        if (this.#timer) clearInterval(this.#timer);
        this.#timer = undefined;
        const wasConnected = this.#connected;
        this.#connected = false;
        if (this.#sock === sock) this.#sock = undefined;
        const loss = new ZkError(Err.connectionLoss, `connection to ZooKeeper ${hostPort} lost`);
        for (const p of this.#pending.values()) p.reject(loss);
        this.#pending.clear();
        this.#pings = [];
        this.#awaiting = undefined;
        if (established || wasConnected) {
          this.#watches.emit({ kind: 'disconnected' });
          this.#watches.fireAll();
        }
        resolve(established);
      });
    });
  }

  /** The ConnectResponse: true when the session is (re)established. */
  #onConnectResponse(r: Reader, sock: net.Socket): boolean {
    r.int(); // protocolVersion
    const timeoutMs = r.int();
    const id = r.long();
    const passwd = Buffer.from(r.buffer() ?? Buffer.alloc(16));
    const old = this.#session;
    if (timeoutMs <= 0) {
      this.#log?.warn({ session: old ? `0x${old.id.toString(16)}` : undefined }, 'ZooKeeper session expired; starting a new one');
      this.#session = undefined;
      sock.destroy();
      return false;
    }
    const now = Date.now();
    this.#lastConnError = undefined;
    this.#session = { id, passwd, timeoutMs, lastAck: now };
    if (old === undefined || old.id !== id) this.#log?.debug?.({ session: `0x${id.toString(16)}`, timeoutMs }, 'ZooKeeper session started');
    this.#connected = true;
    for (const a of this.#auth) {
      sock.write(new Writer().int(XID_AUTH).int(Op.auth).int(0).string(a.scheme).buffer(Buffer.from(a.credential, 'utf8')).packet());
    }
    const readTimeout = Math.min((2 * timeoutMs) / 3, this.#readTimeoutMs ?? Infinity);
    const tick = Math.max(100, Math.floor(readTimeout / 3));
    this.#timer = setInterval(() => {
      this.#checkExpiry();
      if (!this.#connected) return;
      const now = Date.now();
      if (this.#awaiting !== undefined && now - this.#awaiting > readTimeout) {
        this.#log?.warn({ readTimeout }, 'ZooKeeper server silent too long; reconnecting');
        sock.destroy();
        return;
      }
      // Pings only while the client is in use (see the header): an idle client lets its session lapse.
      if (now - this.#lastCall > readTimeout) return;
      // A request sent within the last tick did what a ping does (see the header).
      if (now - this.#lastSent < tick) return;
      this.#awaiting ??= now;
      this.#lastSent = now;
      this.#pings.push(now);
      sock.write(new Writer().int(XID_PING).int(Op.ping).packet());
    }, tick);
    for (const w of this.#readyWaiters) w();
    this.#readyWaiters.clear();
    return true;
  }

  #ack(sentAt: number): void {
    if (this.#session && sentAt > this.#session.lastAck) this.#session.lastAck = sentAt;
  }

  #onPacket(r: Reader): void {
    const xid = r.int();
    const zxid = r.long();
    const err = r.int();
    if (zxid > this.#lastZxid) this.#lastZxid = zxid;
    if (xid === XID_PING) {
      const sentAt = this.#pings.shift();
      if (sentAt !== undefined) this.#ack(sentAt);
      return;
    }
    if (xid === XID_WATCH) {
      const type = r.int();
      r.int(); // state
      const path = r.string() ?? '';
      this.#watches.emit({ kind: 'watch', type, path });
      this.#watches.fire(path);
      return;
    }
    if (xid === XID_AUTH) {
      if (err !== 0) {
        this.#log?.warn({ err }, 'ZooKeeper refused auth_data');
        this.#sock?.destroy();
      }
      return;
    }
    const p = this.#pending.get(xid);
    if (!p) return; // its caller gave up
    this.#pending.delete(xid);
    this.#ack(p.sentAt);
    if (err !== 0) p.reject(new ZkError(err, `ZooKeeper error ${err}`));
    else p.resolve({ zxid, body: r });
    if (p.type === Op.closeSession) {
      this.#session = undefined;
      this.#sock?.destroy();
    }
  }
}

export type { Acl };
