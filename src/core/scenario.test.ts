// Failover stories as readable transcripts (design.md section 3, principle 5).
//
// Each src/core/testdata/*.txt holds a script, `----`, and the output the simulator printed for
// it (src/core/sim/transcript.ts documents the format). A test fails when the output differs,
// when an `expect` line is not met, when a safety invariant is violated, or when the cluster does
// not converge. After a deliberate change of behaviour, regenerate the outputs with
//   VIGIL_UPDATE_TRANSCRIPTS=1 node --import tsx --test src/core/scenario.test.ts
// and read the diff: it is the review of the change.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runTranscript, SEPARATOR, splitTranscript } from './sim/transcript.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const update = process.env['VIGIL_UPDATE_TRANSCRIPTS'] === '1';

const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

test('the transcript directory holds the stories', () => {
  for (const story of ['bootstrap-three-nodes', 'host-crash-rewind', 'postmaster-crash', 'dcs-outage', 'graceful-stop', 'lagging-replica', 'nofailover', 'failover-priority']) {
    assert.ok(files.includes(`${story}.txt`), story);
  }
});

for (const file of files) {
  test(`transcript ${file}`, () => {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    const result = runTranscript(text);
    if (update) writeFileSync(path, `${result.script}${SEPARATOR}\n${result.output}`);
    assert.deepEqual(result.errors, [], `${file}:\n${result.output}`);
    if (update) return;
    const { expected } = splitTranscript(text);
    assert.ok(expected !== undefined, `${file} has no expected output: run with VIGIL_UPDATE_TRANSCRIPTS=1`);
    assert.equal(result.output, expected, `${file}: the output changed (VIGIL_UPDATE_TRANSCRIPTS=1 regenerates it)`);
  });
}

test('a transcript whose output was edited by hand fails', () => {
  const text = readFileSync(join(dir, 'postmaster-crash.txt'), 'utf8');
  const { script, expected } = splitTranscript(text);
  assert.ok(expected !== undefined);
  const tampered = `${script}${SEPARATOR}\n${expected.replace('starting primary after failure', 'something else')}`;
  const result = runTranscript(tampered);
  assert.notEqual(result.output, splitTranscript(tampered).expected);
});

test('an expectation that is not met is reported', () => {
  const result = runTranscript(['nodes n0 n1', 'at 0 start n0 n1', 'run 30', 'expect n1: acquireLeader  # never happens'].join('\n'));
  assert.equal(result.errors.length, 1);
  assert.match(result.errors[0] ?? '', /not found/);
});
