// The etcd launcher is product code (vigil demo uses it); tests import it from here, together with
// a throwaway PKI for the tests of etcd over TLS.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export { startEtcd, freePort, type EtcdServer, type EtcdTlsFiles } from '../../src/local/etcd.ts';

/** PEM files of a throwaway PKI for TLS tests (paths). */
export interface TestPki {
  dir: string;
  /** The CA that signs the server and the client certificate. */
  ca: string;
  /** Server certificate for IP 127.0.0.1 (subjectAltName; serverAuth and clientAuth), and its key. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (CN etcd-client) and its key; the same key encrypted with keyPassword. */
  clientCert: string;
  clientKey: string;
  clientKeyEncrypted: string;
  keyPassword: string;
  /** Client certificate + key in one file. */
  clientCombined: string;
  /** Another CA, and a client certificate it signed: trusted by nobody here. */
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
  remove(): Promise<void>;
}

/**
 * Make a PKI with openssl (EC P-256, valid 2 days) in a new temp directory, the way the REST API
 * tests make theirs: req -x509 for a CA, req + x509 -req with an extension file for the leaves.
 */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pki-'));
  const openssl = (...args: string[]): Promise<unknown> => promisify(execFile)('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const leaf = async (name: string, ca: string, subject: string, ext: string): Promise<void> => {
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=vigil test etcd CA');
  await openssl('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=vigil other CA');
  // clientAuth as well: etcd's JSON gateway calls etcd's own gRPC server with the server certificate,
  // which --client-cert-auth checks like any client's.
  await leaf('server', 'ca', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await leaf('client', 'ca', '/CN=etcd-client', 'extendedKeyUsage=clientAuth\n');
  await leaf('other-client', 'other-ca', '/CN=stranger', 'extendedKeyUsage=clientAuth\n');
  const keyPassword = 'etcd key pw';
  await openssl('pkey', '-in', 'client.key', '-aes256', '-passout', `pass:${keyPassword}`, '-out', 'client-enc.key');
  await writeFile(join(dir, 'client-combined.pem'), (await readFile(join(dir, 'client.crt'), 'utf8')) + (await readFile(join(dir, 'client.key'), 'utf8')));
  const p = (f: string): string => join(dir, f);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    clientKeyEncrypted: p('client-enc.key'),
    keyPassword,
    clientCombined: p('client-combined.pem'),
    otherCa: p('other-ca.crt'),
    otherClientCert: p('other-client.crt'),
    otherClientKey: p('other-client.key'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
