import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.ts';
import { errors, MINIMAL_CONFIG } from '../config/testing.ts';
import { buildMemberData } from './member.ts';

const withProxy = (addr: string): string => MINIMAL_CONFIG.replace('postgresql:\n', `postgresql:\n  proxy_address: "${addr}"\n  database: app\n`);

test('proxy_address is published as proxy_url (postgres://<proxy_address>/<database>), absent without it', () => {
  const cases: Array<[string, string]> = [
    ['pgbouncer.example:6432', 'postgres://pgbouncer.example:6432/app'],
    ['10.0.0.5', 'postgres://10.0.0.5:5432/app'],
    ['[::1]:6432', 'postgres://[::1]:6432/app'],
  ];
  for (const [addr, url] of cases) {
    const { config, issues } = loadConfig(withProxy(addr), {});
    assert.deepEqual(errors(issues), [], addr);
    assert.equal(buildMemberData(config!, { state: 'running', role: 'replica' }).proxy_url, url, addr);
  }
  const plain = loadConfig(MINIMAL_CONFIG, {}).config!;
  assert.equal('proxy_url' in buildMemberData(plain, { state: 'running', role: 'replica' }), false);
});

test('a proxy_address without a host or with a bad port is an error', () => {
  for (const addr of [':6432', 'h:99999', 'h:x']) {
    assert.match(errors(loadConfig(withProxy(addr), {}).issues).join('\n'), /^postgresql\.proxy_address: /, addr);
  }
});
