// `vigil query --password` on a real terminal (a pseudo-terminal made by Python's pty module):
// the password typed at the prompt is not echoed. With piped input it is read as a line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';

const VIGIL = resolve(import.meta.dirname, '..', '..', 'bin', 'vigil');
const SECRET = 'pw-9f3e2a-secret';

// Runs argv[1:] on a pty, types argv[0] + Enter once "Password: " appears, prints everything the
// terminal showed (base64, so control characters survive).
const PTY_DRIVER = `
import base64, os, pty, select, sys, time
secret = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b''
sent = False
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if not sent and b'Password: ' in out:
        time.sleep(0.3)
        os.write(fd, secret + b'\\r')
        sent = True
os.waitpid(pid, 0)
sys.stdout.write(base64.b64encode(out).decode())
`;

function onPty(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile('python3', ['-c', PTY_DRIVER, SECRET, ...args], { timeout: 90_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) rej(err);
      else res(Buffer.from(stdout, 'base64').toString('utf8'));
    });
  });
}

const ARGS = ['query', '--dcs-url', 'etcd3://127.0.0.1:1', '--password', '-c', 'SELECT 1', 'demo'];

test('query --password on a terminal: the prompt is shown, the password is not echoed', { timeout: 120_000 }, async () => {
  const screen = await onPty([VIGIL, ...ARGS]);
  assert.match(screen, /Password: /);
  assert.ok(!screen.includes(SECRET), `the password was echoed:\n${screen}`);
  // It went on after the prompt (to the DCS, which is unreachable here).
  assert.match(screen.slice(screen.indexOf('Password: ')), /etcd|DCS|127\.0\.0\.1:1/i);
});

test('the pty driver sees echoed input (so the test above can fail)', { timeout: 120_000 }, async () => {
  // `head -n1` reads a line in the terminal's normal (echoing) mode.
  const screen = await onPty(['sh', '-c', 'printf "Password: "; head -n1 >/dev/null']);
  assert.ok(screen.includes(SECRET), screen);
});

test('query --password with piped input reads one line', { timeout: 120_000 }, async () => {
  const child = spawn(VIGIL, ARGS, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end(`${SECRET}\n`);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.notEqual(code, 0, 'the DCS is unreachable');
  assert.match(out, /Password: /);
  assert.ok(!out.includes(SECRET));
  assert.doesNotMatch(out, /Aborted: no answer/);
});
