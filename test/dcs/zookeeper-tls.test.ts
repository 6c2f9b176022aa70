// ZooKeeper over TLS (use_ssl, cacert, cert, key, key_password, verify), through the factory from
// a raw `zookeeper` section, against a real ZooKeeper 3.8 whose secure client port requires client
// certificates (PEM files made by openssl: test/support/pki.ts).
// Run: node --import tsx --test --test-concurrency=1 test/dcs/zookeeper-tls.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { makePki, type Pki } from '../support/pki.ts';
import { startZookeeper, type ZookeeperServer } from '../support/zookeeper.ts';
import { DcsError, type Dcs } from '../../src/dcs/dcs.ts';
import { DcsConfigError, createDcs } from '../../src/dcs/factory.ts';

const T = { timeout: 60_000 };

describe('ZooKeeper over TLS (real ZooKeeper 3.8, client certificates required)', () => {
  let pki: Pki;
  let zk: ZookeeperServer;
  const open: Dcs[] = [];
  let seq = 0;
  before(async () => {
    pki = await makePki({ caName: 'vigil test zk CA', clientName: 'zk-client' });
    const keyStore = join(pki.dir, 'server-combined.pem');
    await writeFile(keyStore, (await readFile(pki.serverCert, 'utf8')) + (await readFile(pki.serverKey, 'utf8')));
    zk = await startZookeeper({ tls: { keyStore, trustStore: pki.ca } });
  });
  after(async () => {
    await Promise.all(open.map((d) => d.close()));
    await zk?.stop();
    await pki?.remove();
  });
  const client = (section: Record<string, unknown>): Dcs => {
    seq += 1;
    const d = createDcs({ zookeeper: { hosts: [zk.secureEndpoint], use_ssl: true, ...section } }, { prefix: `/service/tls${seq}/`, name: 'a', ttl: 5, retryTimeout: 2 });
    open.push(d);
    return d;
  };
  const unavailable = (pattern: RegExp) => (err: unknown): boolean => {
    assert.ok(err instanceof DcsError, String(err));
    assert.equal(err.code, 'DCS_UNAVAILABLE');
    assert.match(err.message, pattern);
    return true;
  };

  it('with the CA and a client certificate: writes and reads', T, async () => {
    const d = client({ cacert: pki.ca, cert: pki.clientCert, key: pki.clientKey });
    assert.equal(await d.writeConfig({ ttl: 5 }), true);
    assert.deepEqual((await d.readCluster()).config, { ttl: 5 });
    assert.equal(await d.acquireLeader(), true);
  });

  it('an encrypted key with key_password', T, async () => {
    const d = client({ cacert: pki.ca, cert: pki.clientCert, key: pki.clientKeyEncrypted, key_password: pki.keyPassword });
    assert.equal(await d.attemptInitialize(), true);
  });

  it('no client certificate: refused by the server, reported as unreachable with the reason', T, async () => {
    const d = client({ cacert: pki.ca });
    await assert.rejects(d.readCluster(), unavailable(/no connection/));
  });

  it('a server certificate from an untrusted CA is refused unless verify is false', T, async () => {
    const d = client({ cacert: pki.otherCa, cert: pki.clientCert, key: pki.clientKey });
    await assert.rejects(d.readCluster(), unavailable(/certificate/));
    const lax = client({ cacert: pki.otherCa, cert: pki.clientCert, key: pki.clientKey, verify: false });
    assert.equal(await lax.writeConfig({ ttl: 6 }), true);
  });

  it('a TLS file that cannot be read is a configuration error naming the key', () => {
    assert.throws(() => client({ cacert: join(pki.dir, 'missing.crt') }), (err: unknown) => err instanceof DcsConfigError && /zookeeper\.cacert: cannot read/.test(err.message));
  });
});
