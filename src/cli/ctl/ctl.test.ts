// Unit tests of the control commands' pure parts: argument parsing, the diff, --set paths,
// confirmations, request bodies and the lines printed for REST answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterView } from '../../core/model.ts';
import type { ClusterView, Member } from '../../core/model.ts';
import { restFromRaw } from '../args.ts';
import { GLOBAL_OPTIONS_HELP } from '../global-options.ts';
import { formatConfig, isoWithOffset, memberApiUrl, membersLeaderFirst, membersWithRole, parseRole, parseScheduled, runCommand, timestamp } from './common.ts';
import { confirm, parseYesNo, prompt, type Io } from './io.ts';
import { unifiedDiff } from './diff.ts';
import { applyConfigChanges, patchConfig, pgPair, sameConfig } from './config.ts';
import { candidateNames, requestBody, resultLine } from './switchover.ts';
import { checkPgVersion, checkResponseLine, reloadLine, restartBody, restartLine } from './members.ts';
import { emptyCluster, formatPgVersion, historyRows, printOutput, topologyRows, versionLine } from './info.ts';
import { pauseLaggards } from './pause.ts';
import { cellValue, connectionConfig } from './query.ts';
import { clusterRows } from '../table.ts';

/** An Io that answers from `answers` and records everything written. */
function fakeIo(answers: string[]): Io & { stdout: string; stderr: string } {
  const q = [...answers];
  const io = {
    stdout: '',
    stderr: '',
    interactive: false,
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
    readLine: () => Promise.resolve(q.shift()),
    close: () => undefined,
  };
  return io;
}

function member(name: string, data: Record<string, unknown> = {}): Member {
  return { name, data, version: '1', session: '' };
}

function view(over: Partial<ClusterView> = {}): ClusterView {
  return clusterView({
    initialize: '7000000000000000001',
    config: { loop_wait: 10 },
    configVersion: '5',
    leader: { name: 'a', version: '1', session: 'x' },
    members: [
      member('a', { role: 'primary', api_url: 'http://127.0.0.1:8008/patroni', conn_url: 'postgres://10.0.0.1:5432/postgres', state: 'running' }),
      member('b', { role: 'replica', api_url: 'http://127.0.0.1:8009/patroni', conn_url: 'postgres://10.0.0.2:5432/postgres', state: 'running' }),
      member('c', { role: 'replica', conn_url: 'postgres://10.0.0.3:5433/postgres', state: 'running', tags: { nofailover: true } }),
    ],
    revision: '10',
    ...over,
  });
}

// ------------------------------------------------------------------------------ diff

test('unifiedDiff: difflib shape with empty file names and 3 lines of context', () => {
  const before = 'a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\n';
  const after = 'a: 1\nb: 2\nc: 3\nd: 40\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\n';
  assert.deepEqual(unifiedDiff(before, after), ['--- ', '+++ ', '@@ -1,8 +1,9 @@', ' a: 1', ' b: 2', ' c: 3', '-d: 4', '+d: 40', ' e: 5', ' f: 6', ' g: 7', ' h: 8', '+i: 9']);
});

test('unifiedDiff: separate hunks, single-line and empty ranges (as Python difflib prints them)', () => {
  const a = Array.from({ length: 12 }, (_, i) => `l${i}`).join('\n');
  const b = ['new', ...Array.from({ length: 12 }, (_, i) => `l${i}`).filter((l) => l !== 'l11')].join('\n');
  // Output checked against python3 difflib.unified_diff.
  assert.deepEqual(unifiedDiff(a, b), ['--- ', '+++ ', '@@ -1,3 +1,4 @@', '+new', ' l0', ' l1', ' l2', '@@ -9,4 +10,3 @@', ' l8', ' l9', ' l10', '-l11']);
  assert.deepEqual(unifiedDiff('a\n', 'a\nb\n'), ['--- ', '+++ ', '@@ -1 +1,2 @@', ' a', '+b']);
  assert.deepEqual(unifiedDiff('', 'b\n'), ['--- ', '+++ ', '@@ -1 +1 @@', '-', '+b']);
  assert.deepEqual(unifiedDiff('x\ny\n', 'x\ny'), [], 'trailing newlines do not count');
  assert.deepEqual(unifiedDiff('', ''), []);
});

test('unifiedDiff: prefers the match difflib finds (longest block first)', () => {
  // python3: difflib.unified_diff(['l1\n','l5\n'], ['l2\n','l2\n','l3\n','l1\n','l0\n','l1\n','l5\n'])
  assert.deepEqual(unifiedDiff('l1\nl5\n', 'l2\nl2\nl3\nl1\nl0\nl1\nl5\n'), ['--- ', '+++ ', '@@ -1,2 +1,7 @@', '+l2', '+l2', '+l3', '+l1', '+l0', ' l1', ' l5']);
});

// ------------------------------------------------------------------------------ --set / --apply

test('applyConfigChanges: dotted paths, YAML values, null deletes, emptied parents dropped', () => {
  const base = { loop_wait: 10, postgresql: { parameters: { max_connections: 100 }, use_pg_rewind: true }, tags: { x: 1 } };
  const out = applyConfigChanges(base, ['loop_wait=5', 'postgresql.parameters.work_mem=8MB', 'synchronous_mode=on', 'a.b.c=[1, 2]', 'tags.x=null', 'ttl=']);
  assert.deepEqual(out, {
    loop_wait: 5,
    postgresql: { parameters: { max_connections: 100, work_mem: '8MB' }, use_pg_rewind: true },
    synchronous_mode: true, // YAML 1.1: on is a boolean, as PyYAML reads it
    a: { b: { c: [1, 2] } },
  });
  assert.deepEqual(base.tags, { x: 1 }, 'input untouched');
  assert.throws(() => applyConfigChanges(base, ['novalue']), /Invalid parameter setting novalue/);
  assert.throws(() => applyConfigChanges(base, ['=1']), /Invalid parameter setting =1/);
});

test('applyConfigChanges: GUC names with dots stay one key under postgresql.parameters (-p)', () => {
  const out = applyConfigChanges({}, [pgPair('pg_stat_statements.track=all'), pgPair(' auto_explain.log_min_duration = 10s')]);
  assert.deepEqual(out, { postgresql: { parameters: { 'pg_stat_statements.track': 'all', 'auto_explain.log_min_duration': '10s' } } });
  const del = applyConfigChanges({ postgresql: { parameters: { 'a.b': 1 } } }, [pgPair('a.b=null')]);
  assert.deepEqual(del, {});
});

test('patchConfig: null deletes, objects merge, scalars replace by string form', () => {
  const c: Record<string, unknown> = { a: 1, b: { x: 1, y: 2 }, c: 'keep', d: 'str' };
  assert.equal(patchConfig(c, { a: null, b: { y: null, z: 3 }, c: 'keep', e: { f: 1 } }), true);
  assert.deepEqual(c, { b: { x: 1, z: 3 }, c: 'keep', d: 'str', e: { f: 1 } });
  assert.equal(patchConfig(c, { c: 'keep', missing: null }), false);
  assert.equal(sameConfig({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), true);
  assert.equal(sameConfig({ a: 1 }, { a: 2 }), false);
  assert.equal(sameConfig({ a: 1 }, { a: 1, b: 1 }), false);
});

test('formatConfig: PyYAML block style, sorted keys, lists not indented', () => {
  assert.equal(formatConfig({ z: 1, a: { l: ['x', 'w'], b: true }, s: 'on' }), "a:\n  b: true\n  l:\n  - x\n  - w\ns: 'on'\nz: 1\n");
});

// ------------------------------------------------------------------------------ prompts

test('confirm: y/yes/n/no/empty, re-asks on unclear answers, aborts naming --force at end of input', async () => {
  assert.equal(parseYesNo('Y'), true);
  assert.equal(parseYesNo(' no '), false);
  assert.equal(parseYesNo(''), false);
  assert.equal(parseYesNo('maybe'), undefined);
  const io = fakeIo(['maybe', 'yes']);
  assert.equal(await confirm(io, 'Apply these changes?'), true);
  assert.equal(io.stdout, 'Apply these changes? [y/N]: \nApply these changes? [y/N]: \n');
  assert.equal(io.stderr, 'Error: invalid input\n');
  assert.equal(await confirm(fakeIo(['']), 'Sure?'), false);
  await assert.rejects(confirm(fakeIo([]), 'Sure?'), /no answer to 'Sure\?' on stdin; pass --force/);
});

test('prompt: default shown and used for an empty answer; no default asks again', async () => {
  const io = fakeIo(['', 'b']);
  assert.equal(await prompt(io, 'Primary', { default: 'a' }), 'a');
  assert.equal(io.stdout, 'Primary [a]: \n');
  const io2 = fakeIo(['', 'name']);
  assert.equal(await prompt(io2, 'Please confirm'), 'name');
  assert.equal(io2.stdout, 'Please confirm: \nPlease confirm: \n');
  await assert.rejects(prompt(fakeIo([]), 'Q', { forceHint: false }), (e: Error) => !/--force/.test(e.message));
});

// ------------------------------------------------------------------------------ arguments

test('runCommand: bad flags are usage errors (exit 2), -h prints usage', async () => {
  const io = fakeIo([]);
  assert.equal(await runCommand(['--nope'], 'usage: x', {}, () => Promise.resolve(0), io), 2);
  assert.match(io.stderr, /^Error: Unknown option '--nope'.*\n\nusage: x\n\nGlobal options .*--insecure.*\n$/s);
  const io2 = fakeIo([]);
  assert.equal(await runCommand(['-h'], 'usage: x', {}, () => Promise.resolve(5), io2), 0);
  assert.equal(io2.stdout, `usage: x\n\n${GLOBAL_OPTIONS_HELP}\n`);
  const io3 = fakeIo([]);
  assert.equal(await runCommand([], 'u', {}, () => Promise.reject(new Error('boom')), io3), 1);
  assert.equal(io3.stderr, 'Error: boom\n');
  assert.throws(() => parseRole('boss', 'any'), /'boss' is not one of/);
  assert.equal(parseRole(undefined, 'any'), 'any');
});

test('parseScheduled: now, zone offsets, local time without zone, garbage', () => {
  assert.equal(parseScheduled(undefined), undefined);
  assert.equal(parseScheduled('now'), undefined);
  assert.equal(parseScheduled('2030-01-02T03:04:05+02:00'), '2030-01-02T03:04:05+02:00');
  assert.equal(parseScheduled('2030-01-02 03:04Z'), '2030-01-02T03:04:00+00:00');
  const local = new Date(2030, 5, 1, 12, 30, 0);
  assert.equal(parseScheduled('2030-06-01T12:30'), isoWithOffset(local, -local.getTimezoneOffset()));
  assert.throws(() => parseScheduled('tomorrow'), /Unable to parse scheduled timestamp \(tomorrow\)/);
  assert.throws(() => parseScheduled('2030-02-31T10:00'), /Unable to parse/);
  assert.match(timestamp(0), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.match(timestamp(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
});

test('restFromRaw: ctl section first, restapi fallback, environment overrides', () => {
  assert.deepEqual(restFromRaw({ restapi: { authentication: { username: 'u', password: 'p' }, cafile: '/ca' } }, {}), {
    insecure: false,
    auth: { username: 'u', password: 'p' },
    cacert: '/ca',
  });
  assert.deepEqual(
    restFromRaw({ ctl: { authentication: { username: 'c', password: 'q' }, insecure: true, certfile: '/c', keyfile: '/k' }, restapi: { authentication: { username: 'u', password: 'p' } } }, {}),
    { insecure: true, auth: { username: 'c', password: 'q' }, certfile: '/c', keyfile: '/k' },
  );
  assert.deepEqual(restFromRaw({}, { PATRONI_CTL_USERNAME: 'e', PATRONI_CTL_PASSWORD: 'f', PATRONI_CTL_INSECURE: 'on' }), { insecure: true, auth: { username: 'e', password: 'f' } });
});

// ------------------------------------------------------------------------------ members and requests

test('memberApiUrl replaces the path; bad api_url gives undefined', () => {
  assert.equal(memberApiUrl(member('a', { api_url: 'https://h:8008/patroni?x=1' }), 'switchover'), 'https://h:8008/switchover');
  assert.equal(memberApiUrl(member('a', { api_url: 'not a url' }), 'x'), undefined);
  assert.equal(memberApiUrl(member('a', {}), 'x'), undefined);
});

test('membersWithRole follows patronictl roles', () => {
  const v = view();
  assert.deepEqual(membersWithRole(v, 'leader').map((m) => m.name), ['a']);
  assert.deepEqual(membersWithRole(v, 'primary').map((m) => m.name), ['a']);
  assert.deepEqual(membersWithRole(v, 'standby-leader').map((m) => m.name), []);
  assert.deepEqual(membersWithRole(v, 'replica').map((m) => m.name), ['b', 'c']);
  assert.deepEqual(membersWithRole(v, 'any').map((m) => m.name), ['a', 'b', 'c']);
  assert.deepEqual(membersWithRole(view({ leader: undefined }), 'leader'), []);
  assert.deepEqual(membersLeaderFirst(view()).map((m) => m.name), ['a', 'b'], 'only members with an api_url');
});

test('switchover/failover: candidates, request body, answer lines', () => {
  assert.deepEqual(candidateNames(view(), 'a'), ['b'], 'leader and nofailover excluded');
  assert.deepEqual(candidateNames(view({ members: [member('x', { tags: { failover_priority: 0 } }), member('y')] }), undefined), ['y']);
  // Patroni 4.1: an explicit nofailover: false wins over failover_priority 0 (core/election.ts isNoFailover).
  assert.deepEqual(candidateNames(view({ members: [member('x', { tags: { nofailover: false, failover_priority: 0 } }), member('y')] }), undefined), ['x', 'y']);
  assert.deepEqual(requestBody('switchover', 'a', 'b', undefined), { candidate: 'b', leader: 'a' });
  assert.deepEqual(requestBody('switchover', 'a', '', '2030-01-01T00:00:00+00:00'), { leader: 'a', scheduled_at: '2030-01-01T00:00:00+00:00' });
  assert.deepEqual(requestBody('failover', 'a', 'b', undefined), { candidate: 'b' });
  assert.equal(resultLine('switchover', 200, 'Successfully switched over to "b"', 'TS'), 'TS Successfully switched over to "b"');
  assert.equal(resultLine('switchover', 202, 'Switchover scheduled', 'TS'), 'TS Switchover scheduled');
  assert.equal(resultLine('failover', 412, 'candidate does not exists', 'TS'), 'Failover failed, details: 412, candidate does not exists');
  assert.equal(
    resultLine('switchover', 503, 'Switchover status unknown after 20 seconds; operation may still be in progress', 'TS'),
    'Switchover result unknown, details: 503, Switchover status unknown after 20 seconds; operation may still be in progress',
  );
});

test('restart/reload/reinit/flush: bodies and printed lines', () => {
  assert.deepEqual(restartBody({ pending: true, version: '15.2', scheduledAt: 'T', timeout: '30' }), { restart_pending: true, postgres_version: '15.2', schedule: 'T', timeout: '30' });
  assert.deepEqual(restartBody({ pending: false }), {});
  assert.equal(restartLine({ status: 200, body: 'restarted successfully' }, 'b'), 'Success: restart on member b');
  assert.equal(restartLine({ status: 202, body: 'Restart scheduled' }, 'b'), 'Success: restart scheduled on member b');
  assert.equal(restartLine({ status: 409, body: 'x' }, 'b'), 'Failed: another restart is already scheduled on member b');
  assert.equal(restartLine({ status: 503, body: 'restart failed' }, 'b'), 'Failed: restart for member b, status code=503, (restart failed)');
  assert.equal(reloadLine({ status: 200, body: '' }, 'b', 10), 'No changes to apply on member b');
  assert.equal(reloadLine({ status: 202, body: 'reload scheduled' }, 'b', 10), 'Reload request received for member b and will be processed within 10 seconds');
  assert.equal(reloadLine({ status: 401, body: 'no auth' }, 'b', 10), 'Failed: reload for member b, status code=401, (no auth)');
  assert.deepEqual(checkResponseLine({ status: 200, body: 'reinitialize started' }, 'b', 'reinitialize'), { ok: true, line: 'Success: reinitialize for member b' });
  assert.deepEqual(checkResponseLine({ status: 503, body: 'I am the leader, can not reinitialize' }, 'a', 'reinitialize'), {
    ok: false,
    line: 'Failed: reinitialize for member a, status code=503, (I am the leader, can not reinitialize)',
  });
  checkPgVersion('15.2');
  checkPgVersion('9.6.24');
  assert.throws(() => checkPgVersion('fifteen'), /fifteen is not a valid PostgreSQL version string/);
});

test('pauseLaggards: members that have not published the new flag', () => {
  const before = view();
  const now = view({ members: [member('a', { api_url: 'http://h:1/patroni', pause: true }), member('b', { api_url: 'http://h:2/patroni' }), member('d', {})] });
  assert.deepEqual(pauseLaggards(before, now, true), ['b']);
  assert.deepEqual(pauseLaggards(before, now, false), ['a']);
});

// ------------------------------------------------------------------------------ output

test('topologyRows: leader first, cascades indented under their replicatefrom parent', () => {
  const v = view({
    members: [
      member('a', { role: 'primary', conn_url: 'postgres://h1:5432/p' }),
      member('b', { role: 'replica', conn_url: 'postgres://h2:5432/p' }),
      member('c', { role: 'replica', conn_url: 'postgres://h3:5432/p', tags: { replicatefrom: 'b' } }),
      member('d', { role: 'replica', conn_url: 'postgres://h4:5432/p', tags: { replicatefrom: 'c' } }),
      member('e', { role: 'replica', conn_url: 'postgres://h5:5432/p', tags: { replicatefrom: 'a' } }),
    ],
  });
  assert.deepEqual(topologyRows(clusterRows(v)).map((r) => r.member), ['a', '+ b', '  + c', '    + d', '+ e']);
  const noLeader = view({ leader: undefined });
  assert.deepEqual(topologyRows(clusterRows(noLeader)).map((r) => r.member), ['+ a', '+ b', '+ c']);
});

test('history: padded rows in pretty, tsv and json', () => {
  const v = view({ history: [[1, 25165984, 'no recovery target specified', '2024-01-01T00:00:00+00:00', 'b'], [2, 50331808, 'x']] });
  const rows = historyRows(v);
  assert.deepEqual(rows[1], [2, 50331808, 'x', '', '']);
  const cols = ['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader'];
  assert.equal(
    printOutput(cols, rows, 'pretty', ['TL', 'LSN']),
    [
      '+----+----------+------------------------------+---------------------------+------------+',
      '| TL |      LSN | Reason                       | Timestamp                 | New Leader |',
      '+----+----------+------------------------------+---------------------------+------------+',
      '|  1 | 25165984 | no recovery target specified | 2024-01-01T00:00:00+00:00 | b          |',
      '|  2 | 50331808 | x                            |                           |            |',
      '+----+----------+------------------------------+---------------------------+------------+',
    ].join('\n'),
  );
  assert.equal(printOutput(cols, rows, 'tsv').split('\n')[2], '2\t50331808\tx\t\t');
  assert.equal(printOutput(['a'], [[1]], 'json'), '[{"a": 1}]');
  assert.equal(printOutput(['a'], [[null]], 'tsv'), 'a\nNone');
});

test('version lines and other helpers', () => {
  assert.equal(formatPgVersion(150004), '15.4');
  assert.equal(formatPgVersion(90624), '9.6.24');
  assert.equal(versionLine('a', JSON.stringify({ patroni: { version: '4.1.4' }, server_version: 150004 })), 'a: Patroni 4.1.4 PostgreSQL 15.4');
  assert.equal(versionLine('a', JSON.stringify({ patroni: { version: '4.1.4' } })), 'a: Patroni 4.1.4');
  assert.equal(emptyCluster(view()), false);
  assert.equal(emptyCluster(view({ initialize: undefined, config: undefined, leader: undefined, members: [] })), true);
  assert.equal(cellValue('t', 16), 'True');
  assert.equal(cellValue(null), null);
  const cfg = connectionConfig({ conn_url: 'postgres://127.0.0.1:5433/postgres' }, { user: 'u', dbname: 'd' });
  assert.equal(cfg?.host, '127.0.0.1');
  assert.equal(cfg?.port, 5433);
  assert.equal(cfg?.user, 'u');
  assert.equal(cfg?.database, 'd');
  assert.equal(cfg?.connectionTimeoutMillis, 5000);
  assert.equal(cfg?.fallback_application_name, 'Patroni ctl');
  assert.equal(connectionConfig({}, {}), undefined);
});
