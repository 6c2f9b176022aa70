// A real `vigil agent` with Patroni's `log` section: JSON records with static fields written to
// <dir>/patroni.log (nothing of the log on standard error), then a SIGHUP reload back to Patroni's
// default plain lines on standard error, as Patroni applies log changes on reload.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LocalCluster } from '../../src/local/cluster.ts';
import { waitFor } from '../support/wait.ts';

const PLAIN = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL): /;

test('vigil agent: log {type: json, dir, static_fields} writes JSON to <dir>/patroni.log; a reload switches back to plain lines', { timeout: 240_000 }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'vigil-it-log-'));
  const cluster = new LocalCluster({ baseDir: base, nodes: 1 });
  try {
    await cluster.prepare();
    const node = cluster.node('node0');
    const logDir = join(base, 'logs');
    await mkdir(logDir);
    const yaml = await readFile(node.configFile, 'utf8');
    const logSection = /^log:\n {2}level: \w+\n/m;
    assert.match(yaml, logSection);
    await writeFile(
      node.configFile,
      yaml.replace(logSection, [
        'log:',
        '  type: json',
        '  level: INFO',
        '  static_fields: {app: vigil-test}',
        `  dir: ${logDir}`,
        '  file_size: 1000000',
        '  file_num: 2',
        '  mode: 0600',
        '',
      ].join('\n')),
    );
    cluster.startAgent('node0');
    const file = join(logDir, 'patroni.log');
    const records = (): Record<string, unknown>[] =>
      existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) : [];
    await waitFor('a primary', async () => (await cluster.primaries()).length === 1, 120_000);
    await waitFor('the leader line in patroni.log', async () => records().some((r) => r.message === 'no action. I am (node0), the leader with the lock'), 60_000);

    const all = records();
    for (const r of all) {
      assert.equal(typeof r.asctime, 'string');
      assert.ok(['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'].includes(r.levelname as string), JSON.stringify(r));
      assert.equal(typeof r.message, 'string');
      assert.equal(r.app, 'vigil-test');
    }
    assert.ok(all.some((r) => r.message === 'REST API listening' && typeof r.port === 'number'), 'structured fields are JSON keys');
    assert.ok(!all.some((r) => r.levelname === 'DEBUG'), 'level INFO');
    const stderrBefore = readFileSync(node.logFile, 'utf8');
    assert.ok(!stderrBefore.split('\n').some((l) => PLAIN.test(l) || l.startsWith('{')), `no log line on standard error:\n${stderrBefore}`);

    // Reload: no log section (Patroni's defaults): plain lines on standard error again.
    await writeFile(node.configFile, yaml.replace(logSection, ''));
    cluster.killAgent('node0', 'SIGHUP');
    await waitFor('the reload line on standard error', async () => /INFO: log settings reloaded: format, destination: standard error/.test(readFileSync(node.logFile, 'utf8')), 60_000);
    await waitFor('the agent logging plain lines', async () => readFileSync(node.logFile, 'utf8').split('\n').filter((l) => PLAIN.test(l)).length >= 2, 60_000);
    assert.ok(records().some((r) => r.message === 'configuration file reloaded'), 'the reload itself was logged to the old file');
  } finally {
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
  }
});
