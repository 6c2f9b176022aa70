import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Allowlist, apiUrlHost, isPlausibleHostname, normalizeAddress, parseAllowlistEntry } from './allowlist.ts';
import type { Lookup } from './allowlist.ts';

test('parseAllowlistEntry: addresses, networks of both families, hostnames', () => {
  assert.deepEqual(parseAllowlistEntry('10.0.0.1'), { kind: 'address', address: '10.0.0.1', family: 'ipv4' });
  assert.deepEqual(parseAllowlistEntry(' 2001:DB8::1 '), { kind: 'address', address: '2001:db8::1', family: 'ipv6' });
  assert.deepEqual(parseAllowlistEntry('::ffff:192.0.2.7'), { kind: 'address', address: '192.0.2.7', family: 'ipv4' });
  assert.deepEqual(parseAllowlistEntry('10.0.0.0/8'), { kind: 'network', address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseAllowlistEntry('10.1.2.3/8'), { kind: 'network', address: '10.1.2.3', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseAllowlistEntry('fd00::/8'), { kind: 'network', address: 'fd00::', prefix: 8, family: 'ipv6' });
  assert.deepEqual(parseAllowlistEntry('::ffff:10.0.0.0/104'), { kind: 'network', address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseAllowlistEntry('0.0.0.0/0'), { kind: 'network', address: '0.0.0.0', prefix: 0, family: 'ipv4' });
  assert.deepEqual(parseAllowlistEntry('Pg-1.example.COM'), { kind: 'hostname', name: 'pg-1.example.com' });
  assert.deepEqual(parseAllowlistEntry('localhost'), { kind: 'hostname', name: 'localhost' });
  assert.deepEqual(parseAllowlistEntry('svc_api.internal.'), { kind: 'hostname', name: 'svc_api.internal.' });
});

test('parseAllowlistEntry: bad entries say why', () => {
  for (const bad of ['10.0.0.256', '1.2.3', '010.0.0.1', '10.0.0.0/33', '::1/129', '10.0.0.0/x', '10.0.0.0/', 'host/8',
    '::ffff:10.0.0.0/64', 'not a host', 'a..b', '-lead.example.com', 'trail-.example.com', 'x'.repeat(64) + '.com', 'http://h', '']) {
    const r = parseAllowlistEntry(bad);
    assert.equal(typeof r, 'string', `${JSON.stringify(bad)} accepted as ${JSON.stringify(r)}`);
  }
  assert.match(parseAllowlistEntry('10.0.0.0/33') as string, /prefix must be 0-32/);
  assert.match(parseAllowlistEntry('bad host!') as string, /not an IP address, a CIDR network or a hostname: "bad host!"/);
  for (const bad of [42, null, true, { a: 1 }, ['10.0.0.1']]) assert.equal(typeof parseAllowlistEntry(bad), 'string');
  assert.equal(isPlausibleHostname('a.b.c'), true);
  assert.equal(isPlausibleHostname('a.' + 'b'.repeat(63)), true);
  assert.equal(isPlausibleHostname('a.' + 'b'.repeat(64)), false);
});

test('normalizeAddress: mapped IPv4, brackets, zones; non-addresses', () => {
  assert.deepEqual(normalizeAddress('::ffff:127.0.0.1'), { address: '127.0.0.1', family: 'ipv4' });
  assert.deepEqual(normalizeAddress('::FFFF:7f00:1'), { address: '127.0.0.1', family: 'ipv4' });
  assert.deepEqual(normalizeAddress('0:0:0:0:0:ffff:10.1.2.3'), { address: '10.1.2.3', family: 'ipv4' });
  assert.deepEqual(normalizeAddress('[::1]'), { address: '::1', family: 'ipv6' });
  assert.deepEqual(normalizeAddress('fe80::1%eth0'), { address: 'fe80::1', family: 'ipv6' });
  assert.deepEqual(normalizeAddress('::ffff:0:1.2.3.4'), { address: '::ffff:0:1.2.3.4', family: 'ipv6' }, 'IPv4-translated is not mapped');
  assert.equal(normalizeAddress('localhost'), undefined);
  assert.equal(normalizeAddress('1.2.3.4.5'), undefined);
  assert.equal(apiUrlHost('http://10.0.0.1:8008/patroni'), '10.0.0.1');
  assert.equal(apiUrlHost('https://[fd00::5]:8008/patroni'), 'fd00::5');
  assert.equal(apiUrlHost('http://pg1.example.com/patroni'), 'pg1.example.com');
  assert.equal(apiUrlHost('not a url'), undefined);
  assert.equal(apiUrlHost(undefined), undefined);
});

test('addresses and networks, IPv4 and IPv6; mapped clients match IPv4 entries', async () => {
  const list = new Allowlist({ entries: ['192.0.2.10', '10.0.0.0/8', '2001:db8::/32', '::1', '::ffff:198.51.100.0/120'] });
  const yes = ['192.0.2.10', '::ffff:192.0.2.10', '10.255.1.2', '::ffff:10.0.0.1', '2001:db8:1::9', '::1', '198.51.100.77', '::ffff:198.51.100.1'];
  const no = ['192.0.2.11', '11.0.0.1', '2001:db9::1', '::2', '198.51.101.1', '::ffff:11.0.0.1', 'garbage', undefined];
  for (const ip of yes) assert.equal(await list.allows(ip, []), true, `${ip} should pass`);
  for (const ip of no) assert.equal(await list.allows(ip, []), false, `${String(ip)} should not pass`);
  // POST /failsafe (no members) uses the same explicit list.
  assert.equal(await list.allows('10.1.1.1'), true);
  assert.equal(await list.allows('127.0.0.1'), false);
});

test('a bad entry makes the constructor throw', () => {
  assert.throws(() => new Allowlist({ entries: ['10.0.0.0/8', '10.0.0.0/40'] }), /restapi\.allowlist: .*10\.0\.0\.0\/40/);
});

test('hostnames are resolved with DNS (localhost)', async () => {
  const list = new Allowlist({ entries: ['localhost'] });
  await list.prime();
  assert.equal(await list.allows('127.0.0.1', []), true);
  assert.equal(await list.allows('::ffff:127.0.0.1', []), true);
  assert.equal(await list.allows('192.0.2.1', []), false);
});

/** A lookup under the test's control: answers from `table`, counts calls. */
function fakeLookup(table: Record<string, string[] | Error>): Lookup & { calls: string[] } {
  const calls: string[] = [];
  const fn = (name: string): Promise<string[]> => {
    calls.push(name);
    const v = table[name];
    if (v === undefined) return Promise.reject(new Error(`getaddrinfo ENOTFOUND ${name}`));
    return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
  };
  return Object.assign(fn, { calls });
}

test('resolved names are cached, refreshed in the background once stale', async () => {
  let now = 0;
  const table: Record<string, string[] | Error> = { 'api.example': ['192.0.2.5', '2001:db8::5'] };
  const lookup = fakeLookup(table);
  const list = new Allowlist({ entries: ['api.example'], lookup, clock: () => now, ttlMs: 1000 });
  await list.prime();
  assert.deepEqual(lookup.calls, ['api.example']);
  assert.equal(await list.allows('192.0.2.5', []), true);
  assert.equal(await list.allows('2001:db8::5', []), true);
  assert.equal(await list.allows('192.0.2.6', []), false);
  assert.equal(lookup.calls.length, 1, 'answered from the cache');
  // Stale: the old answer is used while a new lookup runs.
  table['api.example'] = ['192.0.2.6'];
  now = 1500;
  assert.equal(await list.allows('192.0.2.5', []), true);
  assert.equal(lookup.calls.length, 2);
  await new Promise((r) => setImmediate(r));
  assert.equal(await list.allows('192.0.2.6', []), true);
  assert.equal(await list.allows('192.0.2.5', []), false, 'the old address is gone after the refresh');
});

test('a failed lookup is logged once with the name, denies, and is retried later', async () => {
  let now = 0;
  const warned: string[] = [];
  const infos: string[] = [];
  const table: Record<string, string[] | Error> = {};
  const lookup = fakeLookup(table);
  const list = new Allowlist({
    entries: ['gone.example'],
    lookup,
    clock: () => now,
    retryMs: 100,
    logger: { warn: (_o, m) => warned.push(m ?? ''), info: (_o, m) => infos.push(m ?? '') },
  });
  await list.prime();
  assert.equal(await list.allows('192.0.2.1', []), false, 'fails closed: the allowlist still applies');
  assert.equal(lookup.calls.length, 1, 'not retried before retryMs');
  now = 200;
  assert.equal(await list.allows('192.0.2.1', []), false);
  assert.equal(lookup.calls.length, 2);
  assert.equal(warned.length, 1);
  assert.match(warned[0] as string, /cannot resolve gone\.example: getaddrinfo ENOTFOUND gone\.example/);
  table['gone.example'] = ['192.0.2.1'];
  now = 400;
  assert.equal(await list.allows('192.0.2.1', []), true);
  assert.equal(infos.length, 1);
  assert.match(infos[0] as string, /gone\.example resolves again/);
});

test('a lookup that hangs delays a request by waitMs at most', async () => {
  const list = new Allowlist({ entries: ['slow.example'], lookup: () => new Promise<string[]>(() => undefined), waitMs: 50 });
  const started = performance.now();
  assert.equal(await list.allows('192.0.2.1', []), false);
  const took = performance.now() - started;
  assert.ok(took >= 40 && took < 1000, `took ${took} ms`);
});

test('include_members: the hosts of the members api_url, IP literals and names; never for POST /failsafe', async () => {
  const lookup = fakeLookup({ 'pg3.example': ['192.0.2.33'] });
  const list = new Allowlist({ entries: [], includeMembers: true, lookup });
  const members = ['http://192.0.2.1:8008/patroni', 'https://[2001:db8::2]:8008/patroni', 'http://pg3.example:8008/patroni', undefined, 'junk'];
  assert.equal(list.applies(true), true);
  assert.equal(await list.allows('192.0.2.1', members), true);
  assert.equal(await list.allows('::ffff:192.0.2.1', members), true);
  assert.equal(await list.allows('2001:db8::2', members), true);
  assert.equal(await list.allows('192.0.2.33', members), true);
  assert.equal(await list.allows('192.0.2.99', members), false);
  assert.equal(await list.allows('192.0.2.1', []), false, 'no members, no entries: nobody');
  assert.deepEqual(lookup.calls, ['pg3.example']);
  // POST /failsafe: members never count; without explicit entries nothing is checked at all.
  assert.equal(list.applies(false), false);
  assert.equal(await list.allows('203.0.113.9'), true);

  const both = new Allowlist({ entries: ['10.0.0.0/8'], includeMembers: true, lookup });
  assert.equal(await both.allows('192.0.2.1', members), true);
  assert.equal(await both.allows('192.0.2.1'), false, 'POST /failsafe: only the explicit allowlist');
  assert.equal(await both.allows('10.2.3.4'), true);
});

test('no entries and no include_members: nothing is checked', async () => {
  const list = new Allowlist({ entries: [] });
  assert.equal(list.applies(true), false);
  assert.equal(await list.allows('203.0.113.9', []), true);
});
