// The hostile clients of hostile.test.ts, as a process of their own so that their work does not
// run on the event loop of the server under test. Usage:
//   node --import tsx hostile-clients.ts PORT [KIND,KIND...]
// KINDs (default all): slowloris, hugeHeaders, endlessBody, slowBody, idle.
// Prints, every 100 ms, one JSON line {kind: {open, closed}} (closed = closed by the server and
// replaced); stops everything and exits when stdin closes.

import { Socket } from 'node:net';

/** A connection that stays open until the server or `stop` closes it; counts as open until then. */
function connect(port: number, onOpen: (s: Socket) => void): { socket: Socket; closed: Promise<void> } {
  const socket = new Socket();
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.connect(port, '127.0.0.1', () => onOpen(socket));
  return { socket, closed };
}

interface Attack {
  /** Connections of this kind currently open. */
  open: () => number;
  /** Connections the server closed so far. */
  closedByServer: () => number;
  stop: () => void;
}

/** Keeps `n` connections of one kind open: each one closed is replaced at once. */
export function attack(port: number, n: number, behave: (s: Socket, stopped: () => boolean) => void): Attack {
  let stopped = false;
  const live = new Set<Socket>();
  let closedByServer = 0;
  const one = (): void => {
    if (stopped) return;
    const { socket, closed } = connect(port, (s) => behave(s, () => stopped || s.destroyed));
    live.add(socket);
    void closed.then(() => {
      live.delete(socket);
      if (!stopped) {
        closedByServer++;
        one();
      }
    });
  };
  for (let i = 0; i < n; i++) one();
  return {
    open: () => live.size,
    closedByServer: () => closedByServer,
    stop: () => {
      stopped = true;
      for (const s of live) s.destroy();
    },
  };
}

const port = Number(process.argv[2]);
const only = process.argv[3]?.split(',');
const makers: Record<string, () => Attack> = {
  // Headers one byte every 100 ms, never finished.
  slowloris: () => attack(port, 50, (s, stopped) => {
    const text = 'GET /patroni HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(10_000);
    let i = 0;
    const tick = (): void => {
      if (stopped()) return;
      s.write(text[i++ % text.length]!);
      setTimeout(tick, 100);
    };
    tick();
  }),
  // Header lines without end, as fast as the server takes them.
  hugeHeaders: () => attack(port, 20, (s, stopped) => {
    s.write('GET /patroni HTTP/1.1\r\nHost: x\r\n');
    const line = `X-Big: ${'b'.repeat(8_000)}\r\n`;
    const pump = (): void => {
      while (!stopped() && s.write(line));
      if (!stopped()) s.once('drain', pump);
    };
    pump();
  }),
  // A chunked body that never ends, fast.
  endlessBody: () => attack(port, 10, (s, stopped) => {
    s.write('POST /reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = `2000\r\n${'c'.repeat(0x2000)}\r\n`;
    const pump = (): void => {
      while (!stopped() && s.write(chunk));
      if (!stopped()) s.once('drain', pump);
    };
    pump();
  }),
  // A body announced as 10,000 bytes, sent one byte every 50 ms.
  slowBody: () => attack(port, 20, (s, stopped) => {
    s.write('POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n');
    const tick = (): void => {
      if (stopped()) return;
      s.write('d');
      setTimeout(tick, 50);
    };
    tick();
  }),
  // Connected, silent.
  idle: () => attack(port, 1000, () => undefined),
};
const attacks: Record<string, Attack> = Object.fromEntries(
  Object.entries(makers)
    .filter(([k]) => only === undefined || only.includes(k))
    .map(([k, make]) => [k, make()]),
);
const report = setInterval(() => {
  const out: Record<string, { open: number; closed: number }> = {};
  for (const [k, a] of Object.entries(attacks)) out[k] = { open: a.open(), closed: a.closedByServer() };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}, 100);
process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(report);
  for (const a of Object.values(attacks)) a.stop();
  process.exit(0);
});
