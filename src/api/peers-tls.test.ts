// The agent's calls to a peer whose REST API demands a client certificate (verify_client: required):
// a real HTTPS server (node:https) with the throwaway PKI of test/support/pki.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fetchPeerStatus, peerTls } from './peers.ts';
import type { RestApiSettings } from '../config/types.ts';
import { loadConfig } from '../config/load.ts';
import { errors, MINIMAL_CONFIG } from '../config/testing.ts';
import { makePki } from '../../test/support/pki.ts';

test('peer calls present ctl.certfile/keyfile and check the peer against ctl.cacert', async () => {
  const pki = await makePki();
  const server = createServer(
    { cert: await readFile(pki.serverCert), key: await readFile(pki.serverKey), ca: await readFile(pki.ca), requestCert: true, rejectUnauthorized: true },
    (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ role: 'primary', xlog: { location: 100 }, timeline: 1 }));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/patroni`;
  const rest = (peer: RestApiSettings['peerTls']): RestApiSettings => ({ listen: '127.0.0.1:1', connectAddress: '127.0.0.1:1', ...(peer ? { peerTls: peer } : {}) });
  const reasons: string[] = [];
  const onError = (_n: string, _u: string, why: string): void => void reasons.push(why);
  try {
    const ok = await fetchPeerStatus('p', url, { tls: peerTls(rest({ certfile: pki.clientCert, keyfile: pki.clientKey, cafile: pki.ca })), onError });
    assert.equal(ok.reachable, true, reasons.join('; '));
    // A combined PEM (certificate + key in certfile) and an encrypted key with its password work too.
    assert.equal((await fetchPeerStatus('p', url, { tls: peerTls(rest({ certfile: pki.clientCombined, cafile: pki.ca })) })).reachable, true);
    assert.equal((await fetchPeerStatus('p', url, { tls: peerTls(rest({ certfile: pki.clientCert, keyfile: pki.clientKeyEncrypted, keyfilePassword: pki.keyPassword, cafile: pki.ca })) })).reachable, true);
    // No client certificate: the peer refuses the handshake.
    assert.equal((await fetchPeerStatus('p', url, { tls: peerTls(rest(undefined)) })).reachable, false);
    // With a certificate the peer's chain is checked: a CA that did not sign it fails.
    reasons.length = 0;
    assert.equal((await fetchPeerStatus('p', url, { tls: peerTls(rest({ certfile: pki.clientCert, keyfile: pki.clientKey, cafile: pki.otherCa })), onError })).reachable, false);
    assert.match(reasons.join(';'), /certificate/i);
    // An unreadable file: unreachable with the file named, never a throw.
    reasons.length = 0;
    assert.equal((await fetchPeerStatus('p', url, { tls: peerTls(rest({ certfile: '/nonexistent/c.pem' })), onError })).reachable, false);
    assert.match(reasons.join(';'), /cannot read ctl\.certfile \/nonexistent\/c\.pem/);
  } finally {
    server.close();
    await pki.remove();
  }
});

test('the peer TLS files: ctl.certfile/keyfile/keyfile_password/cacert, else restapi\'s; verify_client: required is accepted', () => {
  const withRest = MINIMAL_CONFIG.replace('restapi: {listen: "127.0.0.1:8008"}',
    'restapi: {listen: "127.0.0.1:8008", certfile: /r.crt, keyfile: /r.key, keyfile_password: rp, cafile: /r-ca.crt, verify_client: required}');
  const r = loadConfig(withRest, {});
  assert.deepEqual(errors(r.issues), []);
  assert.equal(r.config?.restapi.verifyClient, 'required');
  assert.deepEqual(r.config?.restapi.peerTls, { certfile: '/r.crt', keyfile: '/r.key', keyfilePassword: 'rp', cafile: '/r-ca.crt' });
  const c = loadConfig(`${withRest}\nctl: {certfile: /c.crt, keyfile: /c.key, cacert: /c-ca.crt}\n`, {});
  assert.deepEqual(c.config?.restapi.peerTls, { certfile: '/c.crt', keyfile: '/c.key', keyfilePassword: 'rp', cafile: '/c-ca.crt' });
  const e = loadConfig(MINIMAL_CONFIG, { PATRONI_CTL_CERTFILE: '/e.crt', PATRONI_CTL_KEYFILE: '/e.key' } as NodeJS.ProcessEnv);
  assert.deepEqual(e.config?.restapi.peerTls, { certfile: '/e.crt', keyfile: '/e.key' });
  assert.equal(loadConfig(MINIMAL_CONFIG, {}).config?.restapi.peerTls, undefined);
});
