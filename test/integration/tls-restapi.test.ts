// A three-node cluster whose REST APIs demand a client certificate (restapi.verify_client:
// required): the agents' own calls to their peers present ctl.certfile/keyfile and check the peers
// against ctl.cacert. The switchover depends on it (the leader checks its candidate through the
// candidate's REST API: without a certificate the candidate looks unreachable and the switchover is
// refused). The failover would happen without it too (as in Patroni, a replica skips peers it
// cannot reach when it decides it is the healthiest); it shows the cluster keeps working.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { LocalCluster } from '../../src/local/cluster.ts';
import type { Dcs } from '../../src/dcs/dcs.ts';
import { makePki, type Pki } from '../support/pki.ts';
import { ctlDcs, stopCluster } from '../support/cluster.ts';
import { query, waitFor } from '../support/wait.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('restapi.verify_client: required in a three-node cluster', { timeout: 400_000 }, () => {
  let base: string | undefined;
  let cluster: LocalCluster | undefined;
  let pki: Pki;
  let dcs: Dcs;
  let tls: { cert: Buffer; key: Buffer; ca: Buffer };

  /** One HTTPS request to a member's REST API; `withCert` false: no client certificate. */
  function api(name: string, method: 'GET' | 'POST', path: string, body?: unknown, withCert = true): Promise<{ status: number; text: string }> {
    const n = cluster!.node(name);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: n.host, port: n.apiPort, path, method, ca: tls.ca, checkServerIdentity: () => undefined, agent: false,
          ...(withCert ? { cert: tls.cert, key: tls.key } : {}),
          headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {},
          timeout: 5000,
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  const leader = async (): Promise<string | undefined> => (await dcs.readCluster()).leader?.name;
  const status = (name: string, path: string): Promise<number | undefined> => api(name, 'GET', path).then((r) => r.status, () => undefined);
  /** The leader, once it answers /primary and both others stream from it. */
  async function healthy(exclude?: string): Promise<string | undefined> {
    const l = await leader();
    if (l === undefined || l === exclude || (await status(l, '/primary')) !== 200) return undefined;
    for (const n of cluster!.nodes) {
      if (n.name !== l && (await status(n.name, '/replica?replication_state=streaming')) !== 200) return undefined;
    }
    return l;
  }

  before(async () => {
    pki = await makePki();
    tls = { cert: await readFile(pki.clientCert), key: await readFile(pki.clientKey), ca: await readFile(pki.ca) };
    base = await mkdtemp(join(tmpdir(), 'vigil-it-tls-api-'));
    cluster = new LocalCluster({ baseDir: base, nodes: 3 });
    await cluster.prepare();
    for (const n of cluster.nodes) {
      const text = await readFile(n.configFile, 'utf8');
      const at = `  connect_address: ${n.host}:${n.apiPort}\n`;
      assert.ok(text.includes(at));
      await writeFile(n.configFile, text.replace(at, at + [
        `  certfile: ${pki.serverCert}`, `  keyfile: ${pki.serverKey}`, `  cafile: ${pki.ca}`, '  verify_client: required', '',
      ].join('\n')) + `ctl: {certfile: ${pki.clientCert}, keyfile: ${pki.clientKey}, cacert: ${pki.ca}}\n`);
    }
    await cluster.startAll();
    dcs = ctlDcs(cluster);
  });

  after(async () => {
    await stopCluster(cluster, base);
    await pki?.remove();
  });

  test('a request without a client certificate is refused', async () => {
    await waitFor('a leader', leader, 120_000);
    const name = cluster!.nodes[0]!.name;
    await waitFor(`${name}'s REST API`, () => status(name, '/patroni'), 60_000);
    await assert.rejects(api(name, 'GET', '/patroni', undefined, false));
  });

  test('switchover to a named candidate', async () => {
    const from = await waitFor('a healthy cluster', () => healthy(), 180_000);
    const to = cluster!.nodes.find((n) => n.name !== from)!.name;
    const res = await api(from, 'POST', '/switchover', { leader: from, candidate: to });
    assert.equal(res.status, 200, res.text);
    await waitFor(`${to} to lead`, async () => (await leader()) === to && (await status(to, '/primary')) === 200, 120_000);
  });

  test('failover when the leader\'s host dies', async () => {
    const old = await waitFor('a healthy cluster', () => healthy(), 180_000);
    await query(cluster!.connParams(old), 'CREATE TABLE IF NOT EXISTS tls_t (v int); INSERT INTO tls_t VALUES (1)');
    for (const n of cluster!.nodes.filter((x) => x.name !== old)) {
      await waitFor(`${n.name} to replay the row`, async () => (await query(cluster!.connParams(n.name), 'SELECT v FROM tls_t')).length === 1, 60_000);
    }
    cluster!.killAgent(old, 'SIGKILL', { withPostgres: true });
    const fresh = await waitFor('a new leader', async () => {
      const l = await leader();
      return l !== undefined && l !== old && (await status(l, '/primary')) === 200 ? l : undefined;
    }, 120_000);
    assert.notEqual(fresh, old);
    assert.deepEqual(await query(cluster!.connParams(fresh), 'SELECT v FROM tls_t'), [{ v: 1 }]);
  });
});
