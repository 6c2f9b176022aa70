// The agent's logging as Patroni's `log` section configures it (src/config/log.ts): one Logging per
// process, component loggers (`vigil`, `vigil.ha`, `vigil.postgres`, `vigil.dcs`, `vigil.api`) with
// the levels of `log.level` and `log.loggers`, plain or JSON lines (./format.ts), to standard error
// or rotated files (./sink.ts). reconfigure() applies a reloaded section to the loggers already
// handed out. Warnings and errors that repeat are backed off (./repeat.ts).
//
// Contract: logging never blocks the event loop and never throws into the caller.

import type { LogSettings } from '../config/log.ts';
import { formatter, LEVEL_RANK, type Level, type LogRecord } from './format.ts';
import { RepeatFilter, type RepeatOptions } from './repeat.ts';
import { LineSink } from './sink.ts';

export const ROOT_LOGGER = 'vigil';

/** The agent's logger interface (agent/ports.ts Logger) plus Patroni's CRITICAL. */
export interface AgentLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  fatal(obj: object, msg?: string): void;
}

export interface LoggingOptions {
  /** Wall clock, epoch ms (the time printed). */
  now?: () => number;
  /** Monotonic ms for the repeat back-off. */
  monotonic?: () => number;
  /** Where lines go without `dir`; default 2 (standard error, as Patroni). */
  fd?: number;
  repeat?: RepeatOptions;
}

/** Patroni's words for dropped records, so that alerts on them keep matching. */
export const lostMessage = (n: number): string => `QueueHandler has lost ${n} log records`;

const EXPIRY_SWEEP_MS = 1000;

/** The level in force for logger `name`: its own in `loggers`, else its nearest ancestor's, else log.level. */
export function levelFor(settings: Pick<LogSettings, 'level' | 'loggers'>, name: string): Level {
  for (let n = name; n !== ''; n = n.includes('.') ? n.slice(0, n.lastIndexOf('.')) : '') {
    const l = settings.loggers[n];
    if (l !== undefined) return l;
  }
  return settings.level;
}

function describeTarget(s: LogSettings): string {
  return s.dir === undefined ? 'standard error' : `${s.dir}/patroni.log (rotated at ${s.fileSize} bytes, ${s.fileNum} kept)`;
}

/**
 * What makes two warnings "the same" for the back-off: logger, level and words, numbers left out
 * (a crash loop repeats one message with a new pid, time or port each time).
 */
export function repeatKey(name: string, level: Level, text: string): string {
  return `${name}\u0000${level}\u0000${text.replace(/\d+/g, '#')}`;
}

export class Logging {
  private settings: LogSettings;
  private format: (r: LogRecord) => string;
  private sink: LineSink;
  private readonly now: () => number;
  private readonly monotonic: () => number;
  private readonly fd: number;
  private readonly repeats: RepeatFilter;
  private lastSweep = 0;

  constructor(settings: LogSettings, opts: LoggingOptions = {}) {
    this.settings = settings;
    this.now = opts.now ?? Date.now;
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.fd = opts.fd ?? 2;
    this.repeats = new RepeatFilter(opts.repeat);
    this.format = formatter(settings);
    this.sink = this.makeSink(settings);
  }

  /** The logger `vigil` (no component) or `vigil.<component>`. Follows later reconfigure() calls. */
  logger(component?: string): AgentLogger {
    const name = component === undefined ? ROOT_LOGGER : `${ROOT_LOGGER}.${component}`;
    const at = (level: Level) => (obj: object, msg?: string): void => this.emit(name, level, obj, msg);
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal') };
  }

  /** Lines dropped so far and not yet reported, and lines waiting to be written. */
  get stats(): { lost: number; queued: number } {
    return { lost: this.sink.pendingLost, queued: this.sink.queued };
  }

  /**
   * Apply a reloaded `log` section (Patroni applies it on reload too). Returns what changed, ''
   * for nothing. The previous file is closed once its queued lines are written.
   */
  reconfigure(next: LogSettings): string {
    const prev = this.settings;
    const changed: string[] = [];
    if (prev.type !== next.type || prev.format !== next.format || JSON.stringify(prev.fields) !== JSON.stringify(next.fields)
      || prev.dateformat !== next.dateformat || JSON.stringify(prev.staticFields) !== JSON.stringify(next.staticFields)) {
      changed.push('format');
    }
    if (prev.level !== next.level || JSON.stringify(prev.loggers) !== JSON.stringify(next.loggers)) changed.push('levels');
    if (prev.dir !== next.dir || prev.fileSize !== next.fileSize || prev.fileNum !== next.fileNum || prev.mode !== next.mode) {
      changed.push(`destination: ${describeTarget(next)}`);
    }
    if (prev.maxQueueSize !== next.maxQueueSize) changed.push('max_queue_size');
    this.settings = next;
    this.format = formatter(next);
    this.sink.setMaxQueue(next.maxQueueSize);
    const fileTarget = next.dir === undefined ? undefined : { dir: next.dir, fileSize: next.fileSize, fileNum: next.fileNum, ...(next.mode !== undefined ? { mode: next.mode } : {}) };
    const keep = fileTarget === undefined ? typeof this.sink.target === 'number' : this.sink.retarget(fileTarget);
    if (!keep) {
      const old = this.sink;
      this.sink = this.makeSink(next);
      void old.close();
    }
    return changed.join(', ');
  }

  /** Resolves when the lines logged so far are written (or dropped). */
  flush(): Promise<void> {
    return this.sink.flush();
  }

  async close(): Promise<void> {
    await this.sink.close();
  }

  private makeSink(s: LogSettings): LineSink {
    const render = (n: number, reason: string): string =>
      this.format({ time: this.now(), level: 'warn', logger: ROOT_LOGGER, msg: lostMessage(n), fields: reason === '' ? {} : { reason } });
    if (s.dir === undefined) return new LineSink(this.fd, s.maxQueueSize, render);
    return new LineSink({ dir: s.dir, fileSize: s.fileSize, fileNum: s.fileNum, ...(s.mode !== undefined ? { mode: s.mode } : {}) }, s.maxQueueSize, render);
  }

  private emit(name: string, level: Level, obj: object, msg: string | undefined): void {
    try {
      // Every call, logged or not (the loop's DEBUG lines come each tick), lets due summaries out.
      const mono = this.monotonic();
      this.sweep(mono);
      if (LEVEL_RANK[level] < LEVEL_RANK[levelFor(this.settings, name)]) return;
      let text = msg ?? '';
      if (level === 'warn' || level === 'error') {
        const skipped = this.repeats.hit(repeatKey(name, level, text), mono, [name, level, text]);
        if (skipped === undefined) return;
        if (skipped > 0) text = `${text} (repeated ${skipped} more times since last logged)`;
      }
      this.write({ time: this.now(), level, logger: name, msg: text, fields: obj as Record<string, unknown> });
    } catch {
      // A record that cannot be rendered is dropped: logging must never break the caller.
    }
  }

  /** Repeats that went quiet with occurrences never logged get one summary line each. */
  private sweep(mono: number): void {
    if (mono - this.lastSweep < EXPIRY_SWEEP_MS) return;
    this.lastSweep = mono;
    for (const e of this.repeats.expired(mono)) {
      const [name, level, text] = e.payload as [string, Level, string];
      const ago = Math.round((mono - e.lastSeen) / 1000);
      this.write({ time: this.now(), level, logger: name, msg: `${text} (repeated ${e.suppressed} more times since last logged; last ${ago} s ago)`, fields: {} });
    }
  }

  private write(r: LogRecord): void {
    this.sink.write(this.format(r));
  }
}
