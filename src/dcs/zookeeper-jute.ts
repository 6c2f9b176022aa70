// The subset of ZooKeeper's wire format (jute) that the ZooKeeper client (zookeeper-client.ts)
// speaks: big-endian ints and longs, bools as one byte, strings and buffers as an int length
// (-1 = null) followed by the bytes, vectors as an int count followed by the items, and the
// znode Stat record. Every packet on the socket is an int length followed by that many bytes.

/** Operation codes (ZooDefs.OpCode). */
export const Op = {
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getChildren: 8,
  ping: 11,
  getChildren2: 12,
  auth: 100,
  closeSession: -11,
} as const;

/** Error codes (KeeperException.Code) the client and the backend tell apart. */
export const Err = {
  ok: 0,
  connectionLoss: -4,
  noNode: -101,
  noAuth: -102,
  badVersion: -103,
  noChildrenForEphemerals: -108,
  nodeExists: -110,
  notEmpty: -111,
  sessionExpired: -112,
  invalidAcl: -114,
  authFailed: -115,
  sessionMoved: -118,
} as const;

/** Create flags. */
export const EPHEMERAL = 1;

/** Permission bits of an ACL entry (ZooDefs.Perms). */
export const Perms = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

export interface Acl {
  perms: number;
  scheme: string;
  id: string;
}

/** world:anyone with every permission (ZooDefs.Ids.OPEN_ACL_UNSAFE), the default ACL. */
export const OPEN_ACL: Acl[] = [{ perms: Perms.ALL, scheme: 'world', id: 'anyone' }];

export interface Stat {
  czxid: bigint;
  mzxid: bigint;
  ctime: bigint;
  mtime: bigint;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

export class Writer {
  readonly #parts: Buffer[] = [];

  int(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    this.#parts.push(b);
    return this;
  }

  long(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    this.#parts.push(b);
    return this;
  }

  bool(v: boolean): this {
    this.#parts.push(Buffer.from([v ? 1 : 0]));
    return this;
  }

  buffer(b: Buffer | null): this {
    if (b === null) return this.int(-1);
    this.int(b.length);
    this.#parts.push(b);
    return this;
  }

  string(s: string | null): this {
    return this.buffer(s === null ? null : Buffer.from(s, 'utf8'));
  }

  acls(acls: Acl[]): this {
    this.int(acls.length);
    for (const a of acls) this.int(a.perms).string(a.scheme).string(a.id);
    return this;
  }

  /** The bytes written, as one packet (length prefix included). */
  packet(): Buffer {
    const body = Buffer.concat(this.#parts);
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length);
    return Buffer.concat([len, body]);
  }
}

/** Reads one packet's body; reading past its end throws a RangeError. */
export class Reader {
  readonly #buf: Buffer;
  #off = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.length - this.#off;
  }

  int(): number {
    const v = this.#buf.readInt32BE(this.#off);
    this.#off += 4;
    return v;
  }

  long(): bigint {
    const v = this.#buf.readBigInt64BE(this.#off);
    this.#off += 8;
    return v;
  }

  bool(): boolean {
    const v = this.#buf.readUInt8(this.#off);
    this.#off += 1;
    return v !== 0;
  }

  buffer(): Buffer | null {
    const len = this.int();
    if (len < 0) return null;
    if (len > this.remaining) throw new RangeError(`jute: buffer of ${len} bytes past the end of the packet`);
    const b = this.#buf.subarray(this.#off, this.#off + len);
    this.#off += len;
    return b;
  }

  string(): string | null {
    const b = this.buffer();
    return b === null ? null : b.toString('utf8');
  }

  strings(): string[] {
    const n = this.int();
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.string() ?? '');
    return out;
  }

  stat(): Stat {
    return {
      czxid: this.long(),
      mzxid: this.long(),
      ctime: this.long(),
      mtime: this.long(),
      version: this.int(),
      cversion: this.int(),
      aversion: this.int(),
      ephemeralOwner: this.long(),
      dataLength: this.int(),
      numChildren: this.int(),
      pzxid: this.long(),
    };
  }
}
