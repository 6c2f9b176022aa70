// Throwaway certificates for TLS tests, made with openssl (EC P-256) in a temp directory: the REST
// API tests (test/api/operations.test.ts, test/api/allowlist.test.ts) and the etcd over TLS tests
// (test/support/etcd.ts makeTestPki).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A new EC P-256 key, unencrypted (openssl req options). */
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(dir: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** Paths of a self-signed certificate and its key. */
export interface CertFiles {
  cert: string;
  key: string;
}

/**
 * A self-signed certificate (openssl req -x509, so also a CA) for `subject`, valid `days`, written
 * to `<dir>/<name>.crt` with its unencrypted key in `<dir>/<name>.key`.
 */
export async function selfSigned(dir: string, name: string, subject: string, days = 2): Promise<CertFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await openssl(dir, 'req', '-x509', ...EC_KEY, '-keyout', files.key, '-out', files.cert, '-days', String(days), '-subj', subject);
  return files;
}

/** A certificate `<name>.crt` signed by `<ca>.crt` (with `<ca>.key`), its key `<name>.key`, the extensions in `ext`. */
async function signed(dir: string, name: string, ca: string, subject: string, ext: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, 'req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

export interface PkiOptions {
  /** CN of the CA; default "vigil test CA". */
  caName?: string;
  /** CN of the client certificate; default "vigil-client". */
  clientName?: string;
  /**
   * Give the server certificate clientAuth as well as serverAuth (etcd's JSON gateway calls etcd's
   * own gRPC server with the server certificate, which --client-cert-auth checks like any client's);
   * default false: serverAuth only.
   */
  serverAsClient?: boolean;
  /** Passphrase of server-enc.key and client-enc.key; default "keypass". */
  keyPassword?: string;
}

/** The PEM files of a PKI made by makePki (each one's path), all valid 2 days. */
export interface PkiFiles {
  /** ca.crt: the CA (self-signed) that signs the server and the client certificate. */
  ca: string;
  /** server.crt: CN 127.0.0.1, subjectAltName IP:127.0.0.1, serverAuth (and clientAuth with serverAsClient). */
  serverCert: string;
  /** server.key: its key, unencrypted. */
  serverKey: string;
  /** server-enc.key: the same key encrypted (AES-256) with keyPassword. */
  serverKeyEncrypted: string;
  /** client.crt: CN clientName, clientAuth. */
  clientCert: string;
  /** client.key: its key, unencrypted. */
  clientKey: string;
  /** client-enc.key: the same key encrypted (AES-256) with keyPassword. */
  clientKeyEncrypted: string;
  /** client-combined.pem: client.crt followed by client.key. */
  clientCombined: string;
  /** stranger.crt: a self-signed certificate, CN stranger, that no CA here signed. */
  strangerCert: string;
  /** stranger.key: its key, unencrypted. */
  strangerKey: string;
  /** other-ca.crt: another CA (self-signed, CN "vigil other CA"), trusted by nobody here. */
  otherCa: string;
  /** other-client.crt: CN stranger, clientAuth, signed by the other CA. */
  otherClientCert: string;
  /** other-client.key: its key, unencrypted. */
  otherClientKey: string;
}

const FILE_NAMES: Record<keyof PkiFiles, string> = {
  ca: 'ca.crt',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  serverKeyEncrypted: 'server-enc.key',
  clientCert: 'client.crt',
  clientKey: 'client.key',
  clientKeyEncrypted: 'client-enc.key',
  clientCombined: 'client-combined.pem',
  strangerCert: 'stranger.crt',
  strangerKey: 'stranger.key',
  otherCa: 'other-ca.crt',
  otherClientCert: 'other-client.crt',
  otherClientKey: 'other-client.key',
};
const FILE_KEYS = Object.keys(FILE_NAMES) as (keyof PkiFiles)[];

export interface Pki extends PkiFiles {
  /** The temp directory that holds the files (and the .csr, .ext and .srl openssl needed). */
  dir: string;
  /** The passphrase of the encrypted keys. */
  keyPassword: string;
  /** Delete the directory. */
  remove(): Promise<void>;
}

/**
 * Make a throwaway PKI with openssl (EC P-256, valid 2 days) in a new temp directory: req -x509 for
 * the CAs and the stranger, req + x509 -req with an extension file for the others.
 */
export async function makePki(options: PkiOptions = {}): Promise<Pki> {
  const { caName = 'vigil test CA', clientName = 'vigil-client', serverAsClient = false, keyPassword = 'keypass' } = options;
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pki-'));
  await selfSigned(dir, 'ca', `/CN=${caName}`);
  await selfSigned(dir, 'other-ca', '/CN=vigil other CA');
  await selfSigned(dir, 'stranger', '/CN=stranger');
  await signed(dir, 'server', 'ca', '/CN=127.0.0.1',
    `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth${serverAsClient ? ',clientAuth' : ''}\n`);
  await signed(dir, 'client', 'ca', `/CN=${clientName}`, 'extendedKeyUsage=clientAuth\n');
  await signed(dir, 'other-client', 'other-ca', '/CN=stranger', 'extendedKeyUsage=clientAuth\n');
  for (const name of ['server', 'client']) {
    await openssl(dir, 'pkey', '-in', `${name}.key`, '-aes256', '-passout', `pass:${keyPassword}`, '-out', `${name}-enc.key`);
  }
  const p = (f: string): string => join(dir, f);
  await writeFile(p('client-combined.pem'), (await readFile(p('client.crt'), 'utf8')) + (await readFile(p('client.key'), 'utf8')));
  const paths: PkiFiles = { ...FILE_NAMES };
  for (const k of FILE_KEYS) paths[k] = p(FILE_NAMES[k]);
  return { ...paths, dir, keyPassword, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The contents (PEM text) of every file of `pki`, under the same names. */
export async function readPki(pki: PkiFiles): Promise<PkiFiles> {
  const texts: PkiFiles = { ...FILE_NAMES };
  for (const k of FILE_KEYS) texts[k] = await readFile(pki[k], 'utf8');
  return texts;
}
