// The FAKE Kubernetes API server (k8s-fake.ts) keeps the API semantics the Kubernetes DCS relies
// on: resourceVersion (monotonic, untouched by a no-op), preconditions answered 409, AlreadyExists,
// merge patch, label selectors evaluated by the server, watch streams from a resourceVersion (with
// selector transitions and 410 Gone), bearer-token auth.
// Run: node --import tsx --test test/support/k8s-fake.test.ts

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';

import { K8sFake, matchesLabels, mergePatch, parseLabelSelector } from './k8s-fake.ts';
import { makePki, type Pki } from './pki.ts';

const TOKEN = 't0ken';
let pki: Pki;
let ca: string;
let fake: K8sFake;

before(async () => {
  pki = await makePki();
  ca = await readFile(pki.ca, 'utf8');
  fake = new K8sFake({ cert: await readFile(pki.serverCert, 'utf8'), key: await readFile(pki.serverKey, 'utf8'), token: TOKEN, history: 5 });
  await fake.start();
});
after(async () => {
  await fake.stop();
  await pki.remove();
});

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function call(method: string, path: string, body?: unknown, opts: { type?: string; token?: string } = {}): Promise<{ status: number; body: Body }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port: fake.port, method, path, ca, headers: { Authorization: `Bearer ${opts.token ?? TOKEN}`, ...(text !== undefined ? { 'Content-Type': opts.type ?? 'application/json', 'Content-Length': String(Buffer.byteLength(text)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Body }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** The first `count` events of a watch (fewer if the server ends the stream: timeoutSeconds). */
function watchLines(path: string, count: number): Promise<{ type: string; object: Body }[]> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: fake.port, method: 'GET', path, ca, headers: { Authorization: `Bearer ${TOKEN}` } }, (res) => {
      let buf = '';
      const out: { type: string; object: Body }[] = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          out.push(JSON.parse(buf.slice(0, nl)) as { type: string; object: Body });
          buf = buf.slice(nl + 1);
          if (out.length === count) {
            req.destroy();
            resolve(out);
          }
        }
      });
      res.on('end', () => resolve(out));
    });
    req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
    req.end();
  });
}

const NS = '/api/v1/namespaces/fake';
const cm = (name: string, labels: Record<string, string> = { app: 'x' }, annotations: Record<string, string> = {}): Body => ({ metadata: { name, labels, annotations } });

describe('K8sFake (a fake Kubernetes API server, for tests)', () => {
  it('label selectors: equality, inequality, sets, existence; syntax errors throw', () => {
    const l = { app: 'vigil', role: 'primary' };
    assert.equal(matchesLabels(parseLabelSelector('app=vigil,role==primary'), l), true);
    assert.equal(matchesLabels(parseLabelSelector('app=vigil,role!=primary'), l), false);
    assert.equal(matchesLabels(parseLabelSelector('tier!=db'), l), true, '!= selects objects without the key');
    assert.equal(matchesLabels(parseLabelSelector('role in (primary, replica),app notin (other)'), l), true);
    assert.equal(matchesLabels(parseLabelSelector('role notin (primary)'), l), false);
    assert.equal(matchesLabels(parseLabelSelector('app,!tier'), l), true);
    assert.equal(matchesLabels(parseLabelSelector('!app'), l), false);
    assert.equal(matchesLabels(parseLabelSelector(''), l), true);
    assert.throws(() => parseLabelSelector('role in (a'));
    assert.throws(() => parseLabelSelector('bad key=x'));
  });

  it('merge patch: maps merge, null removes, lists are replaced', () => {
    assert.deepEqual(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: null, d: 3 }, l: [3] }), { a: { c: 2, d: 3 }, l: [3] });
  });

  it('no or a wrong bearer token: 401 Status', async () => {
    const r = await call('GET', `${NS}/configmaps`, undefined, { token: 'nope' });
    assert.equal(r.status, 401);
    assert.equal(r.body.kind, 'Status');
    assert.equal(r.body.reason, 'Unauthorized');
  });

  it('create, AlreadyExists, get, list with a selector; resourceVersion grows on every change and not on a no-op', async () => {
    const c = await call('POST', `${NS}/configmaps`, cm('one', { app: 'x' }, { k: 'v' }));
    assert.equal(c.status, 201);
    const rv1 = Number(c.body.metadata.resourceVersion);
    assert.equal((await call('POST', `${NS}/configmaps`, cm('one'))).status, 409);
    assert.equal((await call('POST', `${NS}/configmaps`, cm('one'))).body.reason, 'AlreadyExists');
    await call('POST', `${NS}/configmaps`, cm('two', { app: 'y' }));
    const list = await call('GET', `${NS}/configmaps?labelSelector=${encodeURIComponent('app=x')}`);
    assert.deepEqual(list.body.items.map((o: Body) => o.metadata.name), ['one']);
    assert.ok(Number(list.body.metadata.resourceVersion) > rv1);
    assert.equal((await call('GET', `${NS}/configmaps?labelSelector=${encodeURIComponent('app in (x')}`)).status, 400);
    assert.equal((await call('GET', `${NS}/configmaps/none`)).status, 404);

    const p = await call('PATCH', `${NS}/configmaps/one`, { metadata: { annotations: { k: 'w', j: 'u' } } }, { type: 'application/merge-patch+json' });
    assert.equal(p.status, 200);
    const rv2 = Number(p.body.metadata.resourceVersion);
    assert.ok(rv2 > rv1);
    const same = await call('PATCH', `${NS}/configmaps/one`, { metadata: { annotations: { k: 'w' } } }, { type: 'application/strategic-merge-patch+json' });
    assert.equal(Number(same.body.metadata.resourceVersion), rv2, 'a no-op patch bumps nothing');
    const removed = await call('PATCH', `${NS}/configmaps/one`, { metadata: { annotations: { j: null } } }, { type: 'application/merge-patch+json' });
    assert.deepEqual(removed.body.metadata.annotations, { k: 'w' });
    assert.equal((await call('PATCH', `${NS}/configmaps/one`, [{ op: 'add' }], { type: 'application/json-patch+json' })).status, 415);
  });

  it('resourceVersion preconditions: PATCH, PUT and DELETE answer 409 Conflict when stale, 400 when not a version', async () => {
    const c = await call('POST', `${NS}/configmaps`, cm('cas'));
    const rv = c.body.metadata.resourceVersion as string;
    const ok = await call('PATCH', `${NS}/configmaps/cas`, { metadata: { resourceVersion: rv, annotations: { a: '1' } } }, { type: 'application/merge-patch+json' });
    assert.equal(ok.status, 200);
    const stale = await call('PATCH', `${NS}/configmaps/cas`, { metadata: { resourceVersion: rv, annotations: { a: '2' } } }, { type: 'application/merge-patch+json' });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
    assert.equal((await call('PATCH', `${NS}/configmaps/cas`, { metadata: { resourceVersion: 'x1', annotations: { a: '2' } } }, { type: 'application/merge-patch+json' })).status, 400);
    assert.equal((await call('PUT', `${NS}/configmaps/cas`, { metadata: { name: 'cas', resourceVersion: rv } })).status, 409);
    const put = await call('PUT', `${NS}/configmaps/cas`, { metadata: { name: 'cas', resourceVersion: ok.body.metadata.resourceVersion }, data: { x: 'y' } });
    assert.equal(put.status, 200);
    const del = await call('DELETE', `${NS}/configmaps/cas`, { preconditions: { resourceVersion: rv } });
    assert.equal(del.status, 409, JSON.stringify(del.body));
    assert.equal((await call('DELETE', `${NS}/configmaps/cas`, { preconditions: { resourceVersion: put.body.metadata.resourceVersion } })).status, 200);
    assert.equal((await call('DELETE', `${NS}/configmaps/cas`)).status, 404);
  });

  it('watch: the changes after a resourceVersion, filtered; leaving/entering the selection is DELETED/ADDED; timeoutSeconds ends it', async () => {
    const from = fake.resourceVersion;
    await call('POST', `${NS}/pods`, cm('w1', { app: 'w' }));
    await call('PATCH', `${NS}/pods/w1`, { metadata: { labels: { app: 'gone' } } }, { type: 'application/merge-patch+json' });
    await call('PATCH', `${NS}/pods/w1`, { metadata: { labels: { app: 'w' } } }, { type: 'application/merge-patch+json' });
    await call('POST', `${NS}/pods`, cm('w2', { app: 'other' }));
    await call('DELETE', `${NS}/pods/w1`);
    const events = await watchLines(`${NS}/pods?watch=1&resourceVersion=${from}&labelSelector=app%3Dw&timeoutSeconds=1`, 100);
    assert.deepEqual(events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED w1', 'DELETED w1', 'ADDED w1', 'DELETED w1']);
    const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b), 'in resourceVersion order');

    // Live events, by name (fieldSelector).
    const live = watchLines(`${NS}/pods?watch=1&resourceVersion=${fake.resourceVersion}&fieldSelector=metadata.name%3Dw3`, 1);
    await call('POST', `${NS}/pods`, cm('w4'));
    await call('POST', `${NS}/pods`, cm('w3'));
    assert.deepEqual((await live).map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED w3']);

    // Older than the kept history (5 changes here): an ERROR event with a 410 Status.
    const gone = await watchLines(`${NS}/pods?watch=1&resourceVersion=${from}&timeoutSeconds=1`, 1);
    assert.equal(gone[0]?.type, 'ERROR');
    assert.equal(gone[0]?.object.code, 410);
  });
});
