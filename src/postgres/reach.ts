// Whether a PostgreSQL server answers at all (the fast failover's detection, issue 13): TCP, then
// the protocol's SSLRequest, which the postmaster itself answers with one byte ('S' or 'N'; an
// old server may answer 'E'). A listening socket whose postmaster is gone does not answer; a
// frozen postmaster does not either (the kernel accepts, nobody replies). No login is attempted.

import { connect } from 'node:net';

/** Host and port of a member's conn_url (postgres://host:port/db); undefined when unparsable. */
export function pgAddress(connUrl: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(connUrl);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (host === '') return undefined;
    return { host, port: u.port === '' ? 5432 : Number(u.port) };
  } catch {
    return undefined;
  }
}

/** The postmaster at host:port answers an SSLRequest within timeoutMs. */
export function postmasterAnswers(addr: { host: string; port: number }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: addr.host, port: addr.port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('error', () => done(false));
    sock.once('connect', () => {
      // SSLRequest: length 8, code 80877103.
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      sock.write(req);
    });
    sock.once('data', (b: Buffer) => done(b.length > 0 && (b[0] === 0x53 || b[0] === 0x4e || b[0] === 0x45)));
    sock.once('close', () => done(false));
  });
}

