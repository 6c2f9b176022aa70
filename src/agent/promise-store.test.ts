import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { filePromiseStore } from './real-ports.ts';

test('the detachment promise survives in its file; a missing or damaged file is no promise', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-promise-'));
  try {
    const path = join(dir, 'data.vigil-detach.json');
    const store = filePromiseStore(path);
    assert.equal(store.load(), undefined);
    const p = { leader: 'n0', leaderVersion: '40', leaderSession: '7', syncVersion: '41' };
    store.save(p);
    assert.deepEqual(filePromiseStore(path).load(), p, 'a new agent reads it');
    writeFileSync(path, '{"leader": 1');
    assert.equal(store.load(), undefined);
    assert.throws(() => filePromiseStore(join(dir, 'missing', 'x.json')).save(p), 'an unwritable file throws (the detachment is refused)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
