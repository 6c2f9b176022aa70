// Terminal input and output of the control commands: the Io seam the tests replace, prompts read
// line by line from stdin, hidden password input on a terminal, yes/no confirmations.

import { createInterface, type Interface } from 'node:readline';
import { CliError } from '../args.ts';

// ---------------------------------------------------------------------------------------------
// Input/output

/** Where a command writes and how it asks questions; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Next line of input without its newline; undefined at end of input. */
  readLine(): Promise<string | undefined>;
  /** Like readLine, but a terminal does not echo what is typed (passwords). Default: readLine. */
  readSecret?(): Promise<string | undefined>;
  /** Whether input is an interactive terminal. */
  interactive: boolean;
  close(): void;
}

/** Io over process.stdin/stdout; stdin is only opened on the first readLine(). */
export function processIo(): Io {
  let rl: Interface | undefined;
  const lines: string[] = [];
  const waiters: Array<(l: string | undefined) => void> = [];
  let ended = false;
  const open = (): void => {
    if (rl !== undefined) return;
    rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (l) => {
      const w = waiters.shift();
      if (w) w(l);
      else lines.push(l);
    });
    rl.on('close', () => {
      ended = true;
      for (const w of waiters.splice(0)) w(undefined);
    });
  };
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    interactive: process.stdin.isTTY === true,
    readLine() {
      open();
      if (lines.length > 0) return Promise.resolve(lines.shift());
      if (ended) return Promise.resolve(undefined);
      return new Promise((resolve) => waiters.push(resolve));
    },
    readSecret() {
      const stdin = process.stdin;
      // Not a terminal (piped input), or stdin already read line by line: nothing to hide.
      if (!stdin.isTTY || rl !== undefined) return this.readLine();
      return readHidden(stdin, (t) => void process.stdout.write(t));
    },
    close() {
      rl?.close();
      // readline leaves a non-TTY stdin flowing; let the process exit.
      if (rl !== undefined) process.stdin.destroy();
    },
  };
}

/**
 * One line from a terminal in raw mode without echo: Enter ends it, Backspace deletes, Ctrl-U
 * clears, Ctrl-C and Ctrl-D (on an empty line) give undefined (the prompt is aborted).
 */
export function readHidden(stdin: NodeJS.ReadStream, write: (t: string) => void): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v: string | undefined): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      write('\n');
      resolve(v);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(buf);
        if (ch === '\u0003' || (ch === '\u0004' && buf === '')) return done(undefined);
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else if (ch === '\u0015') buf = '';
        else if (ch >= ' ') buf += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  });
}

/** Thrown when a prompt finds no answer: stdin ended (e.g. not a terminal and nothing piped). */
export class NoAnswer extends CliError {
  constructor(question: string, forceHint: boolean) {
    super(
      `Aborted: no answer to '${question.trim()}' on stdin` +
        (forceHint ? '; pass --force to skip confirmations' : ''),
    );
    this.name = 'NoAnswer';
  }
}

export interface PromptOptions {
  /** Shown as ` [default]` and used for an empty answer. */
  default?: string;
  /** Mention --force when input runs out. */
  forceHint?: boolean;
  /** A password: a terminal does not echo it. */
  hidden?: boolean;
}

/** click.prompt: `text [default]: `; an empty answer without default asks again. */
export async function prompt(io: Io, text: string, opts: PromptOptions = {}): Promise<string> {
  const q = opts.default !== undefined ? `${text} [${opts.default}]: ` : `${text}: `;
  for (;;) {
    io.out(q);
    const hidden = opts.hidden === true && io.readSecret !== undefined;
    const line = hidden ? await (io.readSecret as () => Promise<string | undefined>)() : await io.readLine();
    // A hidden read on a terminal ends its own line (the Enter was not echoed).
    const lineEnded = hidden && io.interactive;
    if (line === undefined) {
      if (!lineEnded) io.out('\n');
      throw new NoAnswer(text, opts.forceHint ?? true);
    }
    if (!io.interactive) io.out('\n');
    const answer = line.trim() === '' ? opts.default : line;
    if (answer !== undefined) return answer;
  }
}

/** Meaning of a y/n answer: true, false, or undefined for anything unclear (click asks again). */
export function parseYesNo(answer: string, dflt = false): boolean | undefined {
  const a = answer.trim().toLowerCase();
  if (a === '') return dflt;
  if (a === 'y' || a === 'yes') return true;
  if (a === 'n' || a === 'no') return false;
  return undefined;
}

/** click.confirm: `text [y/N]: `, default no; unclear answers print `Error: invalid input` and ask again. */
export async function confirm(io: Io, text: string, opts: { forceHint?: boolean } = {}): Promise<boolean> {
  for (;;) {
    io.out(`${text} [y/N]: `);
    const line = await io.readLine();
    if (line === undefined) {
      io.out('\n');
      throw new NoAnswer(text, opts.forceHint ?? true);
    }
    if (!io.interactive) io.out('\n');
    const yes = parseYesNo(line);
    if (yes !== undefined) return yes;
    io.err('Error: invalid input\n');
  }
}
