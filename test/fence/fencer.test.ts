// The fencer (src/fence/fencer.mjs) through Fence (src/fence/fence.ts) against real processes: a
// fake postmaster tree whose cwd is a temp "data directory". No timing assertions: only ordering
// (dead after the deadline; alive while keepalives continue or after a disarm).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Fence, type FencedEvent } from '../../src/fence/fence.ts';
import { alive, fakePostmaster, memLogger, sleep, until, type FakeTree } from './lib.ts';

const here = dirname(fileURLToPath(import.meta.url));
const trees: FakeTree[] = [];
const fences: Fence[] = [];
const dirs: string[] = [];

after(async () => {
  for (const f of fences) {
    await f.disarm();
    await f.close();
  }
  for (const t of trees) t.kill();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function setup(name: string): Promise<{ dir: string; tree: FakeTree; fence: Fence; fenced: FencedEvent[]; log: ReturnType<typeof memLogger> }> {
  const base = await mkdtemp(join(tmpdir(), `vigil-fence-${name}-`));
  dirs.push(base);
  const dir = join(base, 'data');
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  const tree = await fakePostmaster(dir);
  trees.push(tree);
  const log = memLogger();
  const fenced: FencedEvent[] = [];
  const fence = new Fence({ dataDir: dir, logger: log, onFenced: (e) => fenced.push(e) });
  fences.push(fence);
  assert.equal(await fence.start(), true);
  return { dir, tree, fence, fenced, log };
}

test('the deadline passes: the postmaster and its setsid() children are killed, after the deadline', async () => {
  const { tree, fence, fenced } = await setup('kill');
  const start = performance.now();
  const res = await fence.arm({ pid: tree.postmaster, refreshStartMs: start, timeoutMs: 400 });
  assert.deepEqual(res, { ok: true, watchdog: 'off' });
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
  await until('the fenced event', () => fenced.length === 1);
  const ev = fenced[0]!;
  assert.ok(ev.lateMs >= 0, `fenced before the deadline: ${ev.lateMs} ms`);
  assert.deepEqual([...ev.killed].sort(), [...tree.all()].sort());
  assert.deepEqual(ev.alive, []);
  assert.equal(fence.armed, false);
  console.log(`# fake postmaster: killed ${ev.lateMs.toFixed(2)} ms after the deadline`);
});

test('keepalives that move the deadline keep PostgreSQL alive; a disarm prevents the kill', async () => {
  const { tree, fence, fenced } = await setup('keepalive');
  for (let i = 0; i < 15; i++) {
    const r = await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 1500 });
    assert.equal(r.ok, true);
    await sleep(100);
  }
  assert.ok(tree.all().every(alive), 'killed while keepalives continued');
  assert.equal(await fence.disarm(), true);
  await sleep(2500);
  assert.ok(tree.all().every(alive), 'killed after a disarm');
  assert.deepEqual(fenced, []);
  // And it can be armed again afterwards.
  await fence.arm({ pid: tree.postmaster, deadlineNs: process.hrtime.bigint() + 200_000_000n });
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
});

test('a deadline already passed fences at once', async () => {
  const { tree, fence } = await setup('passed');
  await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now() - 10_000, timeoutMs: 5000 });
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
});

test('a SIGSTOPped tree is still killed', async () => {
  const { tree, fence, fenced } = await setup('stopped');
  for (const p of tree.all()) process.kill(p, 'SIGSTOP');
  await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 300 });
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
  await until('the fenced event', () => fenced.length === 1);
  assert.deepEqual(fenced[0]!.alive, []);
});

test('a pid whose cwd is not the data directory is refused and never killed', async () => {
  const { dir, tree, fence, fenced } = await setup('cwd');
  const other = await fakePostmaster(tmpdir());
  trees.push(other);
  const r = await fence.arm({ pid: other.postmaster, refreshStartMs: performance.now(), timeoutMs: 200 });
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /is not the postmaster of/);
  // A backend of the right data directory is not taken for its postmaster either.
  const r2 = await fence.arm({ pid: tree.children[0]!, refreshStartMs: performance.now(), timeoutMs: 200 });
  assert.equal(r2.ok, false, `a child of the postmaster of ${dir} was accepted as the postmaster`);
  await sleep(1000);
  assert.ok(other.all().every(alive));
  assert.ok(tree.all().every(alive));
  assert.deepEqual(fenced, []);
});

test('armed by data directory (pid 0) before PostgreSQL starts: the postmaster named in postmaster.pid at the deadline is fenced', async () => {
  const { dir, tree, fence, fenced } = await setup('bydir');
  // Armed while nothing runs yet (the agent does this right before starting a primary).
  const res = await fence.arm({ pid: 0, refreshStartMs: performance.now(), timeoutMs: 600 });
  assert.equal(res.ok, true, res.error);
  // "PostgreSQL starts": its postmaster.pid appears.
  await writeFile(join(dir, 'postmaster.pid'), `${tree.postmaster}\n${dir}\n`);
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
  await until('the fenced event', () => fenced.length === 1);
  assert.equal(fenced[0]!.pid, tree.postmaster);
  assert.deepEqual([...fenced[0]!.killed].sort(), [...tree.all()].sort());
});

test('armed by data directory with no postmaster there at the deadline: nothing is killed', async () => {
  const { dir, tree, fence, fenced } = await setup('bydir-none');
  const other = await fakePostmaster(tmpdir());
  trees.push(other);
  // postmaster.pid names a process that is not this data directory's postmaster (a reused pid).
  await writeFile(join(dir, 'postmaster.pid'), `${other.postmaster}\n${dir}\n`);
  assert.equal((await fence.arm({ pid: 0, refreshStartMs: performance.now(), timeoutMs: 200 })).ok, true);
  await until('the fenced event', () => fenced.length === 1);
  assert.deepEqual(fenced[0]!.killed, []);
  assert.ok(other.all().every(alive));
  assert.ok(tree.all().every(alive));
});

test('bad requests to the fencer are refused without killing anything or crashing it', async () => {
  const { tree, fence } = await setup('bad');
  for (const pid of [-5, 1, 1.5, Number.NaN]) {
    const r = await fence.arm({ pid, refreshStartMs: performance.now(), timeoutMs: 100 });
    assert.equal(r.ok, false, `pid ${pid}`);
  }
  assert.equal((await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 60_000 })).ok, true);
  assert.equal(await fence.disarm(), true);
  assert.ok(tree.all().every(alive));
});

/** Starts fixtures/agent.ts (a Fence armed `ms` ahead) as a separate process; returns it and its fencer pid. */
async function agentProcess(dir: string, pid: number, ms: number, logFile: string): Promise<{ agent: ReturnType<typeof spawn>; fencer: number }> {
  const agent = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures/agent.ts'), dir, String(pid), String(ms), logFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: join(here, '../..'),
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: agent.stdout! });
    rl.once('line', resolve);
    agent.once('exit', () => reject(new Error('agent stub exited')));
  });
  const info = JSON.parse(line) as { fencer: number; ok: boolean; error?: string };
  assert.equal(info.ok, true, info.error);
  return { agent, fencer: info.fencer };
}

test('the agent is killed (kill -9) while armed: the fencer still fences at the deadline, then exits', async () => {
  const base = await mkdtemp(join(tmpdir(), 'vigil-fence-agentdead-'));
  dirs.push(base);
  const dir = join(base, 'data');
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  const tree = await fakePostmaster(dir);
  trees.push(tree);
  const logFile = join(base, 'fencer.log');
  const { agent, fencer } = await agentProcess(dir, tree.postmaster, 3000, logFile);
  agent.kill('SIGKILL');
  await new Promise((r) => agent.once('exit', r));
  assert.ok(tree.all().every(alive), 'killed before the deadline');
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
  await until('the fencer to exit', () => !alive(fencer));
  const log = await readFile(logFile, 'utf8');
  assert.match(log, /pipe closed while armed/);
  const late = /fenced: .*, ([\d.]+) ms after the deadline/.exec(log);
  assert.ok(late, log);
  console.log(`# agent killed: fake postmaster killed ${late[1]} ms after the deadline`);
});

test('a restarted agent takes over: the previous fencer stands down only once the new one is armed', async () => {
  const base = await mkdtemp(join(tmpdir(), 'vigil-fence-takeover-'));
  dirs.push(base);
  const dir = join(base, 'data');
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  const tree = await fakePostmaster(dir);
  trees.push(tree);
  const { agent, fencer: old } = await agentProcess(dir, tree.postmaster, 4000, join(base, 'old.log'));
  agent.kill('SIGKILL');
  assert.equal((await readFile(`${dir}.fencer.pid`, 'utf8')).trim(), String(old));
  const log = memLogger();
  const fence = new Fence({ dataDir: dir, logger: log });
  fences.push(fence);
  await fence.start();
  await sleep(300);
  assert.ok(alive(old), 'the previous fencer stood down before the new one was armed');
  for (let i = 0; i < 30; i++) {
    assert.equal((await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 1500 })).ok, true);
    await sleep(200);
  }
  // Past the old deadline (4 s): the old fencer was retired, so nothing was killed.
  assert.equal(alive(old), false);
  assert.ok(tree.all().every(alive));
  assert.equal((await readFile(`${dir}.fencer.pid`, 'utf8')).trim(), String(fence.fencerPid));
});

test('a fencer that dies is restarted and re-armed with the same deadline', async () => {
  const { tree, fence, log } = await setup('restart');
  await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 2500 });
  const first = fence.fencerPid!;
  process.kill(first, 'SIGKILL');
  await until('a new fencer', () => fence.fencerPid !== undefined && fence.fencerPid !== first);
  assert.ok(log.lines.some((l) => /the fencer died/.test(l)));
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
});

test('watchdog device: a byte per arm, magic close on disarm', async () => {
  const base = await mkdtemp(join(tmpdir(), 'vigil-fence-wd-'));
  dirs.push(base);
  const dir = join(base, 'data');
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  const tree = await fakePostmaster(dir);
  trees.push(tree);
  const device = join(base, 'watchdog');
  await writeFile(device, '');
  const fence = new Fence({ dataDir: dir, logger: memLogger(), watchdogDevice: device });
  fences.push(fence);
  await fence.start();
  for (let i = 0; i < 3; i++) {
    const r = await fence.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 60_000 });
    assert.deepEqual(r, { ok: true, watchdog: 'active' });
  }
  assert.equal(await readFile(device, 'latin1'), '\0\0\0');
  await fence.disarm();
  assert.equal(await readFile(device, 'latin1'), '\0\0\0V');
  // A device that cannot be opened is reported, and the fence itself still works.
  const broken = new Fence({ dataDir: dir, logger: memLogger(), watchdogDevice: join(base, 'missing/watchdog') });
  fences.push(broken);
  await broken.start();
  const r = await broken.arm({ pid: tree.postmaster, refreshStartMs: performance.now(), timeoutMs: 300 });
  assert.equal(r.ok, true);
  assert.match(r.watchdog ?? '', /^failed: .*ENOENT/);
  await until('the tree to die', () => tree.all().every((p) => !alive(p)));
});
