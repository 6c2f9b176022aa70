// The fencer: a small process the agent spawns (detached, its own session and process group) that
// kills PostgreSQL when the leader lock may have expired, whether the agent is alive, dead or frozen.
//
// Plain Node ESM with no dependencies and no TypeScript loader, so that it starts in tens of
// milliseconds and depends on nothing the agent's packages could break. fencer.c is its native
// twin (same protocol and contract, about 1.5 MiB resident instead of a JavaScript heap); Fence
// runs that one when it was built, this one otherwise. Change both together.
//
// Usage: node fencer.mjs --data-dir <dir>
//
// Protocol (one JSON object per line):
//   stdin, from the agent:
//     {"op":"arm","seq":1,"pid":123,"dataDir":"/d","deadlineNs":"98765432100","watchdog":"/dev/watchdog"}
//        (re)arm: fence postmaster `pid` of `dataDir` once CLOCK_MONOTONIC (process.hrtime.bigint())
//        reaches deadlineNs (decimal string). Sent after every successful lock refresh; a later arm
//        replaces the deadline. `watchdog` (optional) is a device kept alive while armed.
//        pid 0: arm for the data directory itself, before PostgreSQL is started as a primary (the
//        postmaster named in its postmaster.pid at the deadline is the one fenced).
//     {"op":"disarm","seq":2}   PostgreSQL is no longer a writable primary: stop guarding.
//     {"op":"exit","seq":3}     exit now if disarmed; if armed, behave as if the pipe closed.
//   stdout, to the agent:
//     {"ev":"ready","pid":N}
//     {"ev":"armed","seq":1,"deadlineNs":"...","watchdog":"active"|"off"|"failed: <why>"}
//     {"ev":"disarmed","seq":2}
//     {"ev":"fenced","pid":123,"killed":[...],"lateMs":1.2,"alive":[]}   (alive: survivors, by pid)
//     {"ev":"error","seq":..,"message":"..."}   bad request; the state is unchanged
//   stderr: one log line per event, "<ISO time> <LEVEL> fencer[<pid>]: <message>".
//
// Contract:
// - Armed and the deadline passes: SIGSTOP the postmaster (it can fork no more), SIGKILL every
//   process whose parent is the postmaster (backends call setsid(), so a process-group kill would
//   miss them), SIGKILL the postmaster. Each pid is verified first: /proc/<pid>/cwd must be the
//   data directory and, for the postmaster, its parent must not be (a backend is never taken for
//   the postmaster), so a reused pid is never hit. Afterwards the fencer is disarmed.
// - stdin closes (agent dead or gone): disarmed -> exit; armed -> wait for the deadline, fence, exit.
// - SIGTERM: disarm and exit (a restarted agent uses it to make a previous fencer stand down, after
//   its own fencer is armed). SIGINT and SIGHUP are ignored.
// - Writes to a closed stdout/stderr are ignored: the agent may be gone.
// - Watchdog: opened at the first arm that names it (this starts the device), one byte written on
//   every arm, 'V' + close (magic close: the device stops) on disarm, SIGTERM and after a fence that
//   left nothing alive. A fence that could not kill everything leaves the device open without
//   keepalives, so the host is reset. Exiting while it is open without 'V' also leaves it running.

import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeSync } from 'node:fs';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

const argDir = (() => {
  const i = process.argv.indexOf('--data-dir');
  return i >= 0 ? process.argv[i + 1] : undefined;
})();

const MAX_LINE = 64 * 1024;

/** @typedef {{ pid: number, dataDir: string, realDir: string, deadlineNs: bigint }} Target */

/** @type {Target | undefined} */
let armed;
/** @type {NodeJS.Timeout | undefined} */
let timer;
let stdinOpen = true;
/** @type {{ path: string, fd: number } | undefined} */
let watchdog;

process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

/** @param {'INFO' | 'WARN' | 'ERROR'} level @param {string} msg */
function log(level, msg) {
  try {
    process.stderr.write(`${new Date().toISOString()} ${level} fencer[${process.pid}]: ${msg}\n`);
  } catch {
    // stderr gone: nothing to do.
  }
}

/** @param {Record<string, unknown>} obj */
function send(obj) {
  try {
    process.stdout.write(`${JSON.stringify(obj)}\n`);
  } catch {
    // The agent is gone.
  }
}

/** @param {unknown} e */
function why(e) {
  return e instanceof Error ? e.message : String(e);
}

// ------------------------------------------------------------------------------------------------
// /proc

/** The cwd of `pid`, or undefined when it is gone or unreadable. @param {number} pid */
function cwdOf(pid) {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]. @param {number} pid */
function statOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** @param {string | undefined} cwd @param {string} realDir */
function sameDir(cwd, realDir) {
  return cwd === realDir || cwd === `${realDir} (deleted)`;
}

/** Alive and not a zombie. @param {number} pid */
function alive(pid) {
  const st = statOf(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

/** Whether `pid` is the postmaster of `realDir`. @param {number} pid @param {string} realDir */
function isPostmaster(pid, realDir) {
  const st = statOf(pid);
  if (st === undefined || st.state === 'Z' || st.state === 'X') return false;
  if (!sameDir(cwdOf(pid), realDir)) return false;
  return !sameDir(cwdOf(st.ppid), realDir);
}

/** Pids whose parent is `ppid`. @param {number} ppid */
function childrenOf(ppid) {
  /** @type {number[]} */
  const out = [];
  let names;
  try {
    names = readdirSync('/proc');
  } catch (e) {
    log('ERROR', `cannot list /proc: ${why(e)}`);
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    if (statOf(pid)?.ppid === ppid) out.push(pid);
  }
  return out;
}

/** @param {number} pid @param {NodeJS.Signals} sig */
function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------
// watchdog device

/** @param {string} path @returns {string} 'active' or 'failed: ...' */
function watchdogKeepalive(path) {
  try {
    if (watchdog !== undefined && watchdog.path !== path) watchdogClose('device changed');
    if (watchdog === undefined) {
      watchdog = { path, fd: openSync(path, 'w') };
      log('INFO', `watchdog ${path} opened`);
    }
    writeSync(watchdog.fd, '\0');
    return 'active';
  } catch (e) {
    log('ERROR', `watchdog ${path}: ${why(e)}`);
    return `failed: ${why(e)}`;
  }
}

/** Magic close: 'V' then close, so the device stops. @param {string} reason */
function watchdogClose(reason) {
  if (watchdog === undefined) return;
  const { path, fd } = watchdog;
  watchdog = undefined;
  try {
    writeSync(fd, 'V');
  } catch (e) {
    log('ERROR', `watchdog ${path}: magic close failed (${why(e)}): the host may be reset`);
  }
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
  log('INFO', `watchdog ${path} disabled (${reason})`);
}

// ------------------------------------------------------------------------------------------------
// fencing

function schedule() {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (armed === undefined) return;
  const left = armed.deadlineNs - process.hrtime.bigint();
  if (left <= 0n) {
    fence();
    return;
  }
  // Timers run on a coarse clock and may fire a little early: check again on expiry.
  const ms = Math.min(Number(left / 1_000_000n) + 1, 2 ** 31 - 1);
  timer = setTimeout(() => {
    timer = undefined;
    schedule();
  }, ms);
}

/** The pid in `${dataDir}/postmaster.pid` (first line), or 0. @param {string} dataDir */
function postmasterPidOf(dataDir) {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : 0;
  } catch {
    return 0;
  }
}

function fence() {
  let t = armed;
  if (t === undefined) return;
  armed = undefined;
  // Armed by data directory (pid 0, while PostgreSQL was being started as a primary): the
  // postmaster that runs there now, verified like any other.
  if (t.pid === 0) t = { ...t, pid: postmasterPidOf(t.realDir) };
  const lateMs = Number(process.hrtime.bigint() - t.deadlineNs) / 1e6;
  /** @type {number[]} */
  const killed = [];
  if (!isPostmaster(t.pid, t.realDir)) {
    log('WARN', `deadline passed (${lateMs.toFixed(1)} ms ago) but pid ${t.pid} is not the postmaster of ${t.dataDir} (gone or reused): nothing to fence`);
    send({ ev: 'fenced', pid: t.pid, killed, lateMs, alive: [] });
    watchdogClose('nothing to fence');
    afterFence();
    return;
  }
  log('WARN', `deadline passed ${lateMs.toFixed(1)} ms ago: fencing PostgreSQL (postmaster ${t.pid}, ${t.dataDir})`);
  signal(t.pid, 'SIGSTOP');
  // Wait (bounded, about 200 ms) until the stop took effect, so that no child is forked after the scan.
  for (let i = 0; i < 2000 && statOf(t.pid)?.state !== 'T' && alive(t.pid); i++) busyWait(0.1);
  const children = childrenOf(t.pid);
  for (const c of children) if (signal(c, 'SIGKILL')) killed.push(c);
  // Re-verify right before the final kill: it is the same process (stopped), but cheap to check.
  if (sameDir(cwdOf(t.pid), t.realDir) && signal(t.pid, 'SIGKILL')) killed.push(t.pid);
  // A child forked in a race (the stop not yet effective) would have been reparented by now.
  // (Children signalled above may still be listed, not yet dead: each pid is reported once.)
  for (const c of childrenOf(t.pid)) if (signal(c, 'SIGKILL') && !killed.includes(c)) killed.push(c);
  // Wait (bounded, about 2 s) for the processes to die; zombies count as dead.
  let survivors = killed.filter(alive);
  for (let i = 0; i < 200 && survivors.length > 0; i++) {
    busyWait(10);
    survivors = survivors.filter(alive);
  }
  if (survivors.length === 0) {
    log('WARN', `fenced: killed postmaster ${t.pid} and ${killed.length - 1} children (${killed.join(' ')}), ${lateMs.toFixed(1)} ms after the deadline`);
    watchdogClose('PostgreSQL fenced');
  } else {
    log('ERROR', `fence incomplete: still alive after SIGKILL: ${survivors.join(' ')}${watchdog ? ': leaving the watchdog to reset the host' : ''}`);
  }
  send({ ev: 'fenced', pid: t.pid, killed, lateMs, alive: survivors });
  afterFence();
}

function afterFence() {
  if (!stdinOpen) finish(0);
}

/** Synchronous sleep: the fence path must not yield to anything else. @param {number} ms */
function busyWait(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** @param {number} code @returns {never} */
function finish(code) {
  if (timer !== undefined) clearTimeout(timer);
  log('INFO', `exiting${armed ? ' while armed' : ''}`);
  // Exit without 'V' if a fence failed: the open watchdog then resets the host.
  process.exit(code);
}

// ------------------------------------------------------------------------------------------------
// requests

/** @type {Map<string, string>} */
const realDirs = new Map();

/** @param {string} dir */
function realDirOf(dir) {
  let r = realDirs.get(dir);
  if (r === undefined) {
    r = realpathSync(dir);
    realDirs.set(dir, r);
  }
  return r;
}

/** @param {string} line */
function handle(line) {
  /** @type {any} */
  let m;
  try {
    m = JSON.parse(line);
  } catch {
    log('ERROR', `ignored a line that is not JSON: ${line.slice(0, 200)}`);
    send({ ev: 'error', message: 'not JSON' });
    return;
  }
  const seq = typeof m?.seq === 'number' ? m.seq : undefined;
  const fail = (/** @type {string} */ message) => {
    log('ERROR', `ignored ${m?.op ?? 'a request'}: ${message}`);
    send({ ev: 'error', seq, message });
  };
  if (m === null || typeof m !== 'object') return fail('expected an object');
  switch (m.op) {
    case 'arm': {
      if (!Number.isInteger(m.pid) || m.pid < 0 || m.pid === 1) return fail(`bad pid ${JSON.stringify(m.pid)}`);
      if (typeof m.dataDir !== 'string' || !m.dataDir.startsWith('/')) return fail(`bad dataDir ${JSON.stringify(m.dataDir)}`);
      if (argDir !== undefined && m.dataDir !== argDir) return fail(`dataDir ${m.dataDir} is not ${argDir}, the one this fencer guards`);
      if (typeof m.deadlineNs !== 'string' || !/^\d{1,30}$/.test(m.deadlineNs)) return fail(`bad deadlineNs ${JSON.stringify(m.deadlineNs)}`);
      if (m.watchdog !== undefined && (typeof m.watchdog !== 'string' || m.watchdog === '')) return fail(`bad watchdog ${JSON.stringify(m.watchdog)}`);
      let realDir;
      try {
        realDir = realDirOf(m.dataDir);
      } catch (e) {
        return fail(`data directory ${m.dataDir}: ${why(e)}`);
      }
      if (m.pid !== 0 && !isPostmaster(m.pid, realDir)) return fail(`pid ${m.pid} is not the postmaster of ${m.dataDir} (its cwd is ${cwdOf(m.pid) ?? 'unreadable'})`);
      const first = armed === undefined || armed.pid !== m.pid;
      armed = { pid: m.pid, dataDir: m.dataDir, realDir, deadlineNs: BigInt(m.deadlineNs) };
      const wd = m.watchdog === undefined ? 'off' : watchdogKeepalive(m.watchdog);
      if (m.watchdog === undefined) watchdogClose('not requested');
      if (first) log('INFO', `armed for ${m.pid === 0 ? 'whatever postmaster runs' : `postmaster ${m.pid} of`} ${m.dataDir}, deadline in ${(Number(armed.deadlineNs - process.hrtime.bigint()) / 1e6).toFixed(0)} ms`);
      send({ ev: 'armed', seq, deadlineNs: m.deadlineNs, watchdog: wd });
      schedule();
      return;
    }
    case 'disarm':
      if (armed !== undefined) log('INFO', `disarmed (postmaster ${armed.pid})`);
      armed = undefined;
      schedule();
      watchdogClose('disarmed');
      send({ ev: 'disarmed', seq });
      return;
    case 'exit':
      stdinOpen = false;
      if (armed === undefined) finish(0);
      log('WARN', 'asked to exit while armed: staying until the deadline');
      return;
    default:
      return fail(`unknown op ${JSON.stringify(m.op)}`);
  }
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (/** @type {string} */ chunk) => {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (line !== '') handle(line);
  }
  if (buf.length > MAX_LINE) {
    log('ERROR', `discarded ${buf.length} bytes without a newline`);
    buf = '';
  }
});
const closed = () => {
  stdinOpen = false;
  if (armed === undefined) finish(0);
  log('WARN', `the agent's pipe closed while armed: fencing postmaster ${armed.pid} at the deadline unless told to stand down (SIGTERM)`);
};
process.stdin.on('end', closed);
process.stdin.on('error', closed);

process.on('SIGTERM', () => {
  if (armed !== undefined) log('INFO', `SIGTERM: standing down (was armed for postmaster ${armed.pid})`);
  armed = undefined;
  watchdogClose('SIGTERM');
  finish(0);
});
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});

send({ ev: 'ready', pid: process.pid });
