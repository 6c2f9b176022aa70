// The etcd launcher is product code (vigil demo uses it); tests import it from here, together with
// a throwaway PKI for the tests of etcd over TLS.

import { makePki, type Pki } from './pki.ts';

export { startEtcd, freePort, type EtcdServer, type EtcdTlsFiles } from '../../src/local/etcd.ts';

/** Paths of a throwaway PKI for the etcd TLS tests (test/support/pki.ts documents each file). */
export type TestPki = Pki;

/**
 * makePki (test/support/pki.ts) for etcd: CA "vigil test etcd CA"; the server certificate for IP
 * 127.0.0.1 has clientAuth as well as serverAuth, since etcd's JSON gateway calls etcd's own gRPC
 * server with it, which --client-cert-auth checks like any client's; client certificate CN
 * etcd-client; keyPassword "etcd key pw".
 */
export function makeTestPki(): Promise<TestPki> {
  return makePki({ caName: 'vigil test etcd CA', clientName: 'etcd-client', serverAsClient: true, keyPassword: 'etcd key pw' });
}
