// The libpq TLS settings of a user (postgresql.authentication.*: sslmode, sslrootcert, sslcert,
// sslkey, sslpassword, sslcrl, sslcrldir, channel_binding) translated into node-postgres options
// for the agent's own connections. The libpq tools (pg_basebackup, pg_rewind, the walreceiver) get
// the settings verbatim in their connection strings instead (conninfo.ts libpqPairs).
//
// sslmode as node-postgres honours it:
//   disable      no TLS.
//   allow        no TLS. (libpq would retry with TLS after a refused plain attempt; we do not.)
//   prefer       TLS without verifying the server; plain only when the server answers that it has
//                no TLS at all (libpq also falls back after a failed handshake; we do not).
//   require      TLS without verification; with sslrootcert set, the certificate chain is checked
//                against it, as libpq does when a root certificate file exists.
//   verify-ca    TLS, the chain checked against sslrootcert (default ~/.postgresql/root.crt), no
//                host name check.
//   verify-full  as verify-ca, and the host name (or IP address) must match the certificate.
//   unset        plain, as before, unless another ssl* setting is given: then prefer. (libpq's
//                default is prefer; the agent keeps plain connections when nothing asks for TLS.)
// Unix-socket connections never use TLS (as libpq). sslcert/sslkey/sslpassword present a client
// certificate (no default ~/.postgresql/postgresql.crt); sslcrl and every file in sslcrldir are
// revocation lists. channel_binding: disable turns SCRAM-SHA-256-PLUS off, otherwise it is used
// whenever the server offers it over TLS (require is refused in the configuration, as is
// gssencmode=require: node-postgres has no GSSAPI). sslcompression is ignored (libpq ignores it too
// since PostgreSQL 14's OpenSSL builds do not compress).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';

export interface PgClientTls {
  /** node-postgres `ssl`: false for a plain connection. */
  ssl: false | ConnectionOptions;
  /** Retry without TLS when the server says it has none (sslmode=prefer). */
  plainFallback: boolean;
  /** node-postgres enableChannelBinding. */
  enableChannelBinding: boolean;
}

function readSetting(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * node-postgres options for a connection to `host` with the libpq settings `libpq`. Reads the
 * certificate files (synchronously, they are small); throws an Error naming the setting and the
 * file when one cannot be read.
 */
export function pgClientTls(libpq: Record<string, string> | undefined, host: string): PgClientTls {
  const s = libpq ?? {};
  const enableChannelBinding = s.channel_binding !== 'disable';
  const plain: PgClientTls = { ssl: false, plainFallback: false, enableChannelBinding };
  if (host.startsWith('/')) return plain;
  const anySsl = ['sslcert', 'sslkey', 'sslrootcert', 'sslcrl', 'sslcrldir'].some((k) => s[k] !== undefined);
  const mode = s.sslmode ?? (anySsl ? 'prefer' : undefined);
  if (mode === undefined || mode === 'disable' || mode === 'allow') return plain;

  const ssl: ConnectionOptions = {};
  if (s.sslcert !== undefined) ssl.cert = readSetting('sslcert', s.sslcert);
  if (s.sslkey !== undefined) ssl.key = readSetting('sslkey', s.sslkey);
  if (s.sslpassword !== undefined) ssl.passphrase = s.sslpassword;
  const crls: Buffer[] = [];
  if (s.sslcrl !== undefined) crls.push(readSetting('sslcrl', s.sslcrl));
  if (s.sslcrldir !== undefined) {
    let names: string[];
    try {
      names = readdirSync(s.sslcrldir);
    } catch (e) {
      throw new Error(`cannot read sslcrldir ${s.sslcrldir}: ${(e as Error).message}`, { cause: e });
    }
    for (const n of names.sort()) {
      const p = join(s.sslcrldir, n);
      if (statSync(p).isFile()) crls.push(readSetting('sslcrldir', p));
    }
  }
  if (crls.length > 0) ssl.crl = crls;

  const verifyChain = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && s.sslrootcert !== undefined);
  if (!verifyChain) {
    ssl.rejectUnauthorized = false;
    return { ssl, plainFallback: mode === 'prefer', enableChannelBinding };
  }
  ssl.ca = readSetting('sslrootcert', s.sslrootcert ?? join(homedir(), '.postgresql', 'root.crt'));
  ssl.rejectUnauthorized = true;
  // verify-full: node-postgres passes the host to tls.connect, which checks it against the
  // certificate (DNS names and IP addresses); otherwise only the chain counts.
  if (mode !== 'verify-full') ssl.checkServerIdentity = () => undefined;
  return { ssl, plainFallback: false, enableChannelBinding };
}

/** The error node-postgres raises when the server answered the SSLRequest with 'N'. */
export function isNoTlsAnswer(e: unknown): boolean {
  return e instanceof Error && e.message === 'The server does not support SSL connections';
}
