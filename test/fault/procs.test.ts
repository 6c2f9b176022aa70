// The freeze fault's process selection: agent and PostgreSQL trees are stopped, a fencer never is.
// The first tests use hand-made process tables; the last one a real process tree read from /proc
// (no root or namespaces needed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';

import { selectFreezeTargets, readProcs, procState, isFencer, type Proc } from './lib/procs.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const table: Proc[] = [
  { pid: 1, ppid: 0, cmd: '/sbin/init' },
  { pid: 100, ppid: 1, cmd: 'node --import tsx src/cli/main.ts agent /tmp/x/node0/vigil.yml' },
  { pid: 101, ppid: 100, cmd: 'node /work/main/src/fence/fencer.mjs --log /tmp/x/node0/fencer.log' },
  { pid: 102, ppid: 101, cmd: 'sleep 1' }, // hypothetical child of the fencer: not frozen either
  { pid: 103, ppid: 100, cmd: 'pg_rewind -D /tmp/x' },
  { pid: 200, ppid: 1, cmd: '/usr/lib/postgresql/15/bin/postgres -D /tmp/x/node0/data' },
  { pid: 201, ppid: 200, cmd: 'postgres: faults: checkpointer' },
  { pid: 202, ppid: 200, cmd: 'postgres: faults: postgres postgres 10.231.0.1(5555) idle' },
  { pid: 300, ppid: 1, cmd: 'etcd' }, // same namespace but neither tree: untouched
];

test('freeze targets: agent and PostgreSQL trees, postmaster first, never the fencer or strangers', () => {
  const t = selectFreezeTargets(table, [100, 200], 200);
  assert.equal(t[0], 200);
  assert.deepEqual([...t].sort((a, b) => a - b), [100, 103, 200, 201, 202]);
});

test('freeze targets: the fencer reparented after the agent died stays out; vanished roots are ignored', () => {
  const orphaned = table.filter((p) => p.pid !== 100).map((p) => (p.pid === 101 ? { ...p, ppid: 1 } : p));
  assert.deepEqual(selectFreezeTargets(orphaned, [100, 200], 200), [200, 201, 202]);
  assert.deepEqual(selectFreezeTargets(table, [999]), []);
});

test('freeze targets: a cyclic (malformed) table does not hang', () => {
  const cyclic: Proc[] = [
    { pid: 5, ppid: 6, cmd: 'a' },
    { pid: 6, ppid: 5, cmd: 'b' },
  ];
  assert.deepEqual(selectFreezeTargets(cyclic, [7]), []);
  assert.equal(isFencer({ pid: 1, ppid: 0, cmd: 'node fencer.mjs' }), true);
  assert.equal(isFencer({ pid: 1, ppid: 0, cmd: '/usr/local/bin/node --import tsx src/fence/fencer.ts' }), true);
  assert.equal(isFencer({ pid: 1, ppid: 0, cmd: 'vigil-fencer' }), true);
  assert.equal(isFencer({ pid: 1, ppid: 0, cmd: 'bash -c echo fencer' }), false);
  assert.equal(isFencer({ pid: 1, ppid: 0, cmd: 'postgres: faults: checkpointer' }), false);
});

test('real process tree: readProcs sees it, the selection stops the tree and spares the fencer', async () => {
  // bash (root) -> sleep, and -> a process whose argv[0] says "fencer" (exec -a renames it). The
  // script itself names it in two pieces, so bash's own command line does not say "fencer".
  const root = spawn('bash', ['-c', 'sleep 60 & (exec -a vigil-fen""cer-test sleep 60) & wait'], { stdio: 'ignore' });
  const rootPid = root.pid!;
  try {
    let procs: Proc[] = [];
    for (let i = 0; i < 50; i++) {
      const pids = (await readdir('/proc')).map(Number).filter((p) => Number.isInteger(p) && p > 0);
      procs = await readProcs(pids);
      if (procs.filter((p) => p.ppid === rootPid).length >= 2) break;
      await sleep(100);
    }
    const kids = procs.filter((p) => p.ppid === rootPid);
    assert.equal(kids.length, 2, `children of ${rootPid}: ${JSON.stringify(kids)}`);
    const fencer = kids.find(isFencer);
    assert.ok(fencer !== undefined, 'the fencer stand-in was not recognised');
    const targets = selectFreezeTargets(procs, [rootPid]);
    assert.deepEqual([...targets].sort((a, b) => a - b), [rootPid, kids.find((k) => !isFencer(k))!.pid].sort((a, b) => a - b));
    for (const pid of targets) process.kill(pid, 'SIGSTOP');
    for (let i = 0; i < 50 && (await procState(targets[0]!)) !== 'T'; i++) await sleep(20);
    for (const pid of targets) assert.equal(await procState(pid), 'T', `pid ${pid} is not stopped`);
    assert.notEqual(await procState(fencer.pid), 'T', 'the fencer stand-in was stopped');
    for (const pid of targets) process.kill(pid, 'SIGCONT');
  } finally {
    for (const p of await readProcs((await readdir('/proc')).map(Number).filter((p) => Number.isInteger(p) && p > 0))) {
      if (p.ppid === rootPid) process.kill(p.pid, 'SIGKILL');
    }
    root.kill('SIGKILL');
  }
  assert.equal(await procState(2 ** 22 + 12345), undefined);
});
