// Per-request settings (settings.ts): what makeSettings builds and keeps across a reload, and the
// reload report of settingsChanges.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { makeSettings, settingsChanges } from './settings.ts';

const AUTH = { username: 'admin', password: 'secret' };

test('makeSettings: effective headers for both listener kinds; no allowlist without options', () => {
  const s = makeSettings({ auth: AUTH, extraHeaders: { 'X-A': '1' }, httpsExtraHeaders: { 'x-a': '2', 'X-B': '3' } }, undefined, undefined);
  assert.deepEqual(s.auth, AUTH);
  assert.equal(s.allowlist, undefined);
  assert.deepEqual(s.headers.plain, { 'X-A': '1' });
  assert.deepEqual(s.headers.tls, { 'x-a': '2', 'X-B': '3' });
  assert.deepEqual(makeSettings({}, undefined, undefined).headers, { plain: {}, tls: {} });
});

test('makeSettings: the allowlist object (and its DNS cache) is kept while its options do not change', () => {
  const lookup = (): Promise<string[]> => Promise.resolve(['10.0.0.1']);
  const first = makeSettings({ allowlist: { entries: ['10.0.0.0/8', 'db.example'], lookup } }, undefined, undefined);
  assert.ok(first.allowlist !== undefined);
  const same = makeSettings({ allowlist: { entries: ['10.0.0.0/8', 'db.example'], lookup } }, first, undefined);
  assert.equal(same.allowlist, first.allowlist);
  const otherEntries = makeSettings({ allowlist: { entries: ['10.0.0.0/8'], lookup } }, first, undefined);
  assert.notEqual(otherEntries.allowlist, first.allowlist);
  const members = makeSettings({ allowlist: { entries: ['10.0.0.0/8', 'db.example'], lookup, includeMembers: true } }, first, undefined);
  assert.notEqual(members.allowlist, first.allowlist);
  assert.equal(makeSettings({}, first, undefined).allowlist, undefined);
});

test('makeSettings: a bad allowlist entry or extra header throws', () => {
  assert.throws(() => makeSettings({ allowlist: { entries: ['10.0.0.0/99'] } }, undefined, undefined), /restapi\.allowlist/);
  assert.throws(() => makeSettings({ extraHeaders: { 'a b': 'c' } }, undefined, undefined), /extra header "a b"/);
  assert.throws(() => makeSettings({ httpsExtraHeaders: { 'X-Ok': 'a\nb' } }, undefined, undefined), /extra header "X-Ok"/);
});

test('settingsChanges: authentication, allowlist and the headers of the listener kind in use', () => {
  const none = makeSettings({}, undefined, undefined);
  const withAuth = makeSettings({ auth: AUTH }, none, undefined);
  assert.deepEqual(settingsChanges(none, none, false, false), []);
  assert.deepEqual(settingsChanges(none, withAuth, false, false), ['authentication set']);
  assert.deepEqual(settingsChanges(withAuth, none, false, false), ['authentication removed']);
  assert.deepEqual(settingsChanges(withAuth, makeSettings({ auth: { ...AUTH, password: 'new' } }, none, undefined), false, false), ['authentication changed']);
  assert.deepEqual(settingsChanges(withAuth, makeSettings({ auth: { ...AUTH } }, none, undefined), false, false), []);

  const listed = makeSettings({ allowlist: { entries: ['10.0.0.0/8'] } }, none, undefined);
  assert.deepEqual(settingsChanges(none, listed, false, false), ['allowlist changed']);
  assert.deepEqual(settingsChanges(listed, makeSettings({ allowlist: { entries: ['10.0.0.0/8'] } }, listed, undefined), false, false), []);
  assert.deepEqual(settingsChanges(listed, none, false, false), ['allowlist removed']);

  // https_extra_headers count only on an HTTPS listener; order does not matter.
  const httpsOnly = makeSettings({ httpsExtraHeaders: { 'X-H': '1' } }, none, undefined);
  assert.deepEqual(settingsChanges(none, httpsOnly, false, false), []);
  assert.deepEqual(settingsChanges(none, httpsOnly, true, true), ['extra headers changed']);
  assert.deepEqual(settingsChanges(none, httpsOnly, false, true), ['extra headers changed'], 'HTTP -> HTTPS');
  const ab = makeSettings({ extraHeaders: { 'X-A': '1', 'X-B': '2' } }, none, undefined);
  const ba = makeSettings({ extraHeaders: { 'X-B': '2', 'X-A': '1' } }, none, undefined);
  assert.deepEqual(settingsChanges(ab, ba, false, false), []);
  assert.deepEqual(settingsChanges(none, makeSettings({ auth: AUTH, extraHeaders: { 'X-A': '1' } }, none, undefined), false, false), [
    'authentication set',
    'extra headers changed',
  ]);
});
