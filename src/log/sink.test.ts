// The line sink against real files: rotation as Patroni's rotating handler does it, the file mode,
// a full queue, a full disk (/dev/full) and a directory that comes back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineSink, LOG_FILE_NAME } from './sink.ts';

const lost = (n: number, reason: string): string => `LOST ${n} (${reason})`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-sink-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('rotation: files stay within file_size, file_num older files are kept, nothing is reordered', () =>
  withDir(async (dir) => {
    const sink = new LineSink({ dir, fileSize: 100, fileNum: 2 }, 1000, lost);
    const lines = Array.from({ length: 40 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'x'.repeat(20)}`); // 29 bytes with \n
    for (const [i, l] of lines.entries()) {
      sink.write(l);
      if (i % 7 === 0) await sink.flush(); // both one line and several lines a write
    }
    await sink.close();
    const base = join(dir, LOG_FILE_NAME);
    assert.ok(existsSync(`${base}.1`) && existsSync(`${base}.2`));
    assert.equal(existsSync(`${base}.3`), false, 'no more than file_num rotated files');
    const parts = [`${base}.2`, `${base}.1`, base].map((f) => readFileSync(f, 'utf8'));
    for (const p of parts) assert.ok(Buffer.byteLength(p) < 100, `a file holds ${Buffer.byteLength(p)} bytes`);
    const kept = parts.join('').split('\n').filter((l) => l !== '');
    assert.deepEqual(kept, lines.slice(lines.length - kept.length), 'the newest lines, in order');
    assert.ok(kept.length >= 6);
  }));

test('file_num 0 or file_size 0: the file is never rotated', () =>
  withDir(async (dir) => {
    const sink = new LineSink({ dir, fileSize: 0, fileNum: 3 }, 1000, lost);
    for (let i = 0; i < 50; i++) sink.write(`line ${i}`);
    await sink.close();
    assert.equal(existsSync(join(dir, `${LOG_FILE_NAME}.1`)), false);
    assert.equal(readFileSync(join(dir, LOG_FILE_NAME), 'utf8').split('\n').length, 51);
  }));

test('mode sets the permission bits of the log file', () =>
  withDir(async (dir) => {
    const sink = new LineSink({ dir, fileSize: 0, fileNum: 0, mode: 0o600 }, 10, lost);
    sink.write('hello');
    await sink.close();
    assert.equal(statSync(join(dir, LOG_FILE_NAME)).mode & 0o777, 0o600);
  }));

test('a full queue drops lines and says how many', () =>
  withDir(async (dir) => {
    const sink = new LineSink({ dir, fileSize: 0, fileNum: 0 }, 5, lost);
    for (let i = 0; i < 20; i++) sink.write(`line ${i}`);
    await sink.close();
    const text = readFileSync(join(dir, LOG_FILE_NAME), 'utf8');
    assert.deepEqual(text.split('\n').filter((l) => l !== ''), ['LOST 15 (the log queue is full)', 'line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  }));

test('a full disk: writes fail, lines are dropped and counted, write() never throws', async () => {
  const fd = openSync('/dev/full', 'w');
  try {
    const sink = new LineSink(fd, 100, lost);
    for (let i = 0; i < 10; i++) sink.write(`line ${i}`);
    await sink.flush();
    sink.write('one more');
    await sink.flush();
    assert.ok(sink.pendingLost >= 11, `${sink.pendingLost} lost`);
    assert.equal(sink.queued, 0);
  } finally {
    closeSync(fd);
  }
});

test('a missing directory: lines are dropped until it exists, then the loss is reported first', () =>
  withDir(async (parent) => {
    const dir = join(parent, 'later');
    const sink = new LineSink({ dir, fileSize: 0, fileNum: 0 }, 100, lost);
    for (let i = 0; i < 3; i++) sink.write(`early ${i}`);
    await sink.flush();
    assert.equal(sink.pendingLost, 3);
    await mkdir(dir);
    sink.write('late');
    await sink.flush();
    await sink.close();
    const text = readFileSync(join(dir, LOG_FILE_NAME), 'utf8');
    assert.match(text, /^LOST 3 \(cannot open .*later\/patroni\.log: ENOENT\)\nlate\n$/);
  }));

test('a stalled pipe (nobody reads): write() returns at once, lines wait in the queue, all arrive in order once it is read', async () => {
  const { spawn } = await import('node:child_process');
  // cat copies its stdin to its stdout; its stdout is not read until the end, so both pipes fill.
  const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
  cat.stdout.pause();
  const fd = (cat.stdin as unknown as { _handle: { fd: number } })._handle.fd;
  assert.ok(fd > 2, 'the pipe has a file descriptor');
  const sink = new LineSink(fd, 100_000, lost);
  const line = 'y'.repeat(199);
  for (let i = 0; i < 5000; i++) sink.write(`${String(i).padStart(5, '0')} ${line}`); // 1 MB, far beyond both pipe buffers
  // The event loop is not held: a macrotask runs while lines are still queued.
  await new Promise((r) => setImmediate(r));
  assert.ok(sink.queued > 0, 'lines wait in the queue while the pipe is full');
  const chunks: Buffer[] = [];
  cat.stdout.on('data', (c: Buffer) => chunks.push(c));
  cat.stdout.resume();
  await sink.flush();
  while (sink.queued > 0) await sink.flush();
  cat.stdin.end();
  await new Promise((r) => cat.on('close', r));
  const got = Buffer.concat(chunks).toString().split('\n').filter((l) => l !== '');
  assert.equal(got.length, 5000);
  assert.ok(got.every((l, i) => l.startsWith(String(i).padStart(5, '0'))), 'in order');
  assert.equal(sink.pendingLost, 0);
});
