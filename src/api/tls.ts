// The REST API's TLS material (restapi.certfile, keyfile, keyfile_password, cafile, verify_client):
// reading it from files, turning it into node:tls secure-context options, and checking it before a
// listener is made or renewed with it.

import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions } from 'node:tls';

export interface ApiTlsOptions {
  /** Server certificate chain, PEM (restapi.certfile). */
  cert: string;
  /** Private key, PEM (restapi.keyfile; may be the same file as cert). */
  key: string;
  /** restapi.keyfile_password. */
  passphrase?: string;
  /** CA bundle, PEM, that client certificates must chain to (restapi.cafile). */
  ca?: string;
  /**
   * restapi.verify_client. none (default): no client certificate asked. optional: asked, and
   * required on unsafe endpoints (403 "client certificate required" otherwise). required: the TLS
   * handshake fails without a valid one, for every request.
   */
  verifyClient?: 'none' | 'optional' | 'required';
}

/**
 * ApiTlsOptions from restapi's file settings: certfile (PEM chain; may also hold the key when
 * keyfile is not set), keyfile, keyfile_password, cafile, verify_client. Rejects with the file
 * and the reason when a file cannot be read.
 */
export async function readTlsFiles(s: {
  certfile: string;
  keyfile?: string | undefined;
  keyfilePassword?: string | undefined;
  cafile?: string | undefined;
  verifyClient?: 'none' | 'optional' | 'required' | undefined;
}): Promise<ApiTlsOptions> {
  const read = async (what: string, file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`restapi.${what} ${JSON.stringify(file)} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  const cert = await read('certfile', s.certfile);
  const key = s.keyfile !== undefined ? await read('keyfile', s.keyfile) : cert;
  return {
    cert,
    key,
    ...(s.keyfilePassword !== undefined ? { passphrase: s.keyfilePassword } : {}),
    ...(s.cafile !== undefined ? { ca: await read('cafile', s.cafile) } : {}),
    verifyClient: s.verifyClient ?? 'none',
  };
}

/** The parts of ApiTlsOptions that make the secure context (not verify_client). */
export function secureContextOptions(tls: ApiTlsOptions): SecureContextOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
  };
}

/** Same certificate, key, passphrase and CA (verify_client is not compared). */
export function sameTlsMaterial(a: ApiTlsOptions, b: ApiTlsOptions): boolean {
  return a.cert === b.cert && a.key === b.key && a.passphrase === b.passphrase && a.ca === b.ca;
}

/** The error for TLS material node:tls refused, naming the settings it came from. */
export function tlsSetupError(err: unknown): Error {
  return new Error(`REST API TLS setup failed (certfile/keyfile/keyfile_password/cafile): ${(err as Error).message}`, { cause: err });
}

/** Throws tlsSetupError when the material cannot make a secure context (bad PEM, wrong passphrase, key not matching). */
export function checkTlsMaterial(tls: ApiTlsOptions): void {
  try {
    createSecureContext(secureContextOptions(tls));
  } catch (err) {
    throw tlsSetupError(err);
  }
}
