// HTTP(S) transport of the etcd3 adapter, on node:http / node:https: one keep-alive Agent per client,
// which is what lets an https client carry a private CA and a client certificate (global fetch
// cannot without undici).
//
// Contract: every exchange ends. A caller's AbortSignal or the exchange's own timeout destroys the
// request and its socket (an aborted socket never goes back to the pool) and rejects with an
// EtcdHttpError; so do connection and TLS failures, with a message naming the endpoint and, for
// TLS, the likely setting at fault. HTTP statuses are not errors here: the adapter reads them.

import type { Agent as HttpAgentType, ClientRequest, IncomingMessage } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from '../node-http.ts';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { tlsFailure, type Etcd3Tls } from './etcd3-tls.ts';

export type EtcdHttpErrorKind = 'connect' | 'timeout' | 'tls' | 'aborted';

export class EtcdHttpError extends Error {
  readonly kind: EtcdHttpErrorKind;
  readonly code: string | undefined;
  /** The failure happened on a pooled keep-alive socket before any answer: worth one more try. */
  readonly staleSocket: boolean;
  constructor(kind: EtcdHttpErrorKind, message: string, options: { cause?: unknown; code?: string | undefined; staleSocket?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EtcdHttpError';
    this.kind = kind;
    this.code = options.code;
    this.staleSocket = options.staleSocket ?? false;
  }
}

export interface EtcdHttpCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  /** Aborting destroys the request and its socket; the call rejects with kind 'aborted'. */
  signal?: AbortSignal | undefined;
  /** Whole exchange (connect, TLS, request, full answer) within this many ms, else kind 'timeout'. */
  timeoutMs?: number | undefined;
}

export interface EtcdHttpAnswer {
  status: number;
  text: string;
  /** The answer's headers (etcd v2: X-Etcd-Index). */
  headers: IncomingMessage['headers'];
}

export interface EtcdHttpStream {
  status: number;
  /** The answer line by line (empty lines skipped); ends when the server ends it or on abort. */
  lines: AsyncGenerator<string, void, undefined>;
  /** Stop: destroys the request and its socket. Call it whether or not `lines` was read. */
  close(): void;
}

const STALE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

function splitHost(host: string): { hostname: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(host) ?? /^([^:]+):(\d+)$/.exec(host);
  if (!m) return { hostname: host.replace(/^\[|\]$/g, ''), port: 2379 };
  return { hostname: m[1] as string, port: Number(m[2]) };
}

export class EtcdHttp {
  readonly #https: boolean;
  readonly #agent: HttpAgentType;
  readonly #tls: Etcd3Tls | undefined;

  constructor(protocol: 'http' | 'https', tls: Etcd3Tls | undefined) {
    this.#https = protocol === 'https';
    this.#tls = this.#https ? tls : undefined;
    this.#agent = this.#https
      ? new HttpsAgent({ keepAlive: true, ...(this.#tls ? { secureContext: this.#tls.context } : {}) })
      : new HttpAgent({ keepAlive: true });
  }

  /** One exchange with the whole answer. A keep-alive socket the server had closed is retried once. */
  async request(host: string, path: string, call: EtcdHttpCall): Promise<EtcdHttpAnswer> {
    const started = Date.now();
    try {
      return await this.#once(host, path, call);
    } catch (err) {
      if (!(err instanceof EtcdHttpError) || !err.staleSocket || call.signal?.aborted) throw err;
      // Within the same time budget.
      const timeoutMs = call.timeoutMs === undefined ? undefined : Math.max(0, call.timeoutMs - (Date.now() - started));
      return this.#once(host, path, { ...call, timeoutMs });
    }
  }

  /** Start an exchange whose answer is read as a stream of lines (etcd's /watch). */
  stream(host: string, path: string, call: Omit<EtcdHttpCall, 'timeoutMs'>): Promise<EtcdHttpStream> {
    return new Promise((resolve, reject) => {
      const { req, fail, cleanup } = this.#start(host, path, call, reject);
      if (req === undefined) return;
      req.on('response', (res: IncomingMessage) => {
        // Errors surface through the line iterator; this listener only keeps an unread stream quiet.
        res.on('error', () => undefined);
        const close = (): void => {
          cleanup();
          req.destroy();
        };
        resolve({ status: res.statusCode ?? 0, lines: readLines(res, close), close });
      });
      req.on('error', (err) => fail(this.#classify(err, host, path, false)));
    });
  }

  /** Close every socket, busy or idle. */
  destroy(): void {
    this.#agent.destroy();
  }

  #once(host: string, path: string, call: EtcdHttpCall): Promise<EtcdHttpAnswer> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const { req, fail, settle } = this.#start(host, path, call, reject);
      if (req === undefined) return;
      req.on('error', (err) => fail(this.#classify(err, host, path, req.reusedSocket && !answered)));
      req.on('response', (res: IncomingMessage) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => fail(this.#classify(err, host, path, false)));
        res.on('close', () => {
          if (!res.complete) fail(new EtcdHttpError('connect', `etcd ${host}: the connection closed in the middle of the answer to ${path}`));
        });
        res.on('end', () => settle(() => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers })));
      });
    });
  }

  /**
   * Send the request with abort and timeout wired. `fail` destroys the request (and its socket)
   * and rejects once; `settle` runs a success once; `cleanup` only drops the timer and listener.
   */
  #start(
    host: string,
    path: string,
    call: EtcdHttpCall,
    reject: (err: unknown) => void,
  ): { req: ClientRequest | undefined; fail: (err: EtcdHttpError) => void; settle: (ok: () => void) => void; cleanup: () => void } {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const sent: { req?: ClientRequest } = {};
    const onAbort = (): void => fail(new EtcdHttpError('aborted', `etcd ${host}: ${path} aborted`, { cause: call.signal?.reason }));
    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      call.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: EtcdHttpError): void => {
      if (done) return;
      done = true;
      cleanup();
      sent.req?.destroy();
      reject(err);
    };
    const settle = (ok: () => void): void => {
      cleanup();
      if (done) return;
      done = true;
      ok();
    };
    if (call.signal?.aborted) {
      onAbort();
      return { req: undefined, fail, settle, cleanup };
    }
    const { hostname, port } = splitHost(host);
    const headers: Record<string, string | number> = { ...call.headers };
    if (call.body !== undefined) headers['content-length'] = Buffer.byteLength(call.body);
    const options = { host: hostname, port, path, method: call.method, headers, agent: this.#agent };
    const req = this.#https ? httpsRequest(options) : httpRequest(options);
    sent.req = req;
    call.signal?.addEventListener('abort', onAbort, { once: true });
    if (call.timeoutMs !== undefined) {
      const ms = Math.max(0, Math.round(call.timeoutMs));
      timer = setTimeout(() => fail(new EtcdHttpError('timeout', `etcd ${host} did not answer ${path} within ${ms} ms`)), ms);
    }
    req.end(call.body);
    return { req, fail, settle, cleanup };
  }

  #classify(err: unknown, host: string, path: string, reusedBeforeAnswer: boolean): EtcdHttpError {
    const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
    const tls = tlsFailure(err, host, this.#tls);
    if (tls !== undefined) return new EtcdHttpError('tls', tls, { cause: err, code });
    const message = err instanceof Error ? err.message : String(err);
    const stale = reusedBeforeAnswer && (STALE_CODES.has(code ?? '') || message === 'socket hang up');
    // Node's connect errors already name the address ("connect ECONNREFUSED 127.0.0.1:2379").
    let text = message.includes(host) || message.includes(splitHost(host).hostname) ? message : `etcd ${host}: ${path}: ${message}`;
    // etcd serving TLS drops a plain-HTTP request without a word, and a plain-HTTP etcd drops a TLS
    // handshake. Either may also be a server going away: retried like any connection failure.
    if (!this.#https && !stale && code === 'ECONNRESET' && message === 'socket hang up') {
      text += ' (etcd closed the connection without an answer: if it serves https, set etcd3.protocol: https)';
    } else if (this.#https && code === 'ECONNRESET' && /before secure TLS connection was established/.test(message)) {
      text = `etcd ${host}: TLS: the connection closed during the handshake (does etcd serve plain HTTP there? check etcd3.protocol)`;
    }
    return new EtcdHttpError('connect', text, { cause: err, code, staleSocket: stale });
  }
}

/** Lines of a streamed answer; `close` (destroy the request and its socket) runs when reading stops. */
async function* readLines(res: IncomingMessage, close: () => void): AsyncGenerator<string, void, undefined> {
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  try {
    for await (const chunk of res) {
      buffer += decoder.write(chunk as Buffer);
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line !== '') yield line;
      }
    }
    const rest = (buffer + decoder.end()).trim();
    if (rest !== '') yield rest;
  } finally {
    // A watch is never finished from the server's side: its socket is not reusable.
    close();
  }
}
