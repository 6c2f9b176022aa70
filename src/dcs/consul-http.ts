// HTTP(S) transport of the Consul backend (consul.ts), on node:http / node:https with one
// keep-alive Agent per client, so that https can carry a private CA (consul.cacert), a client
// certificate (consul.cert, consul.key) and consul.verify: false (design.md §4: own small clients).
//
// Contract: every exchange ends. A caller's AbortSignal or the exchange's own timeout destroys the
// request and its socket and rejects with a ConsulHttpError; so do connection and TLS failures.
// HTTP statuses are not errors here: the backend reads them. TLS files are read once, by
// loadConsulTls; one that cannot be read throws a ConsulSettingError naming the setting.

import { readFileSync } from 'node:fs';
import type { Agent as HttpAgentType, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from '../node-http.ts';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export type ConsulHttpErrorKind = 'connect' | 'timeout' | 'tls' | 'aborted';

export class ConsulHttpError extends Error {
  readonly kind: ConsulHttpErrorKind;
  constructor(kind: ConsulHttpErrorKind, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ConsulHttpError';
    this.kind = kind;
  }
}

/** A consul setting that cannot be used (a TLS file that cannot be read). */
export class ConsulSettingError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.name = 'ConsulSettingError';
    this.setting = setting;
  }
}

export interface ConsulTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false: do not check the agent's certificate (consul.verify: false). */
  verify: boolean;
}

/** Read the TLS files of the consul section (cert may hold its key too). */
export function loadConsulTls(files: { cacert?: string | undefined; cert?: string | undefined; key?: string | undefined; verify: boolean }): ConsulTls {
  const read = (setting: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConsulSettingError(`consul.${setting}`, `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const tls: ConsulTls = { verify: files.verify };
  const ca = read('cacert', files.cacert);
  const cert = read('cert', files.cert);
  const key = read('key', files.key) ?? (cert !== undefined && cert.includes('PRIVATE KEY') ? cert : undefined);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  return tls;
}

export interface ConsulAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface ConsulCall {
  method: 'GET' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal | undefined;
  /** Whole exchange within this many ms, else kind 'timeout'. */
  timeoutMs?: number | undefined;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO|HOSTNAME|ALTNAME/;

export class ConsulHttp {
  readonly #https: boolean;
  readonly #agent: HttpAgentType;

  constructor(scheme: 'http' | 'https', tls: ConsulTls | undefined) {
    this.#https = scheme === 'https';
    this.#agent = this.#https
      ? new HttpsAgent({
        keepAlive: true,
        rejectUnauthorized: tls?.verify ?? true,
        ...(tls?.ca ? { ca: tls.ca } : {}),
        ...(tls?.cert ? { cert: tls.cert } : {}),
        ...(tls?.key ? { key: tls.key } : {}),
      })
      : new HttpAgent({ keepAlive: true });
  }

  request(host: string, path: string, call: ConsulCall): Promise<ConsulAnswer> {
    return new Promise((resolve, reject) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void): void => {
        if (done) return;
        done = true;
        if (timer !== undefined) clearTimeout(timer);
        call.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const fail = (err: ConsulHttpError): void => finish(() => {
        req?.destroy();
        reject(err);
      });
      const onAbort = (): void => fail(new ConsulHttpError('aborted', `consul ${host}: ${call.method} ${path} aborted`, call.signal?.reason));
      if (call.signal?.aborted) {
        reject(new ConsulHttpError('aborted', `consul ${host}: ${call.method} ${path} aborted`, call.signal.reason));
        return;
      }
      const m = /^\[([^\]]+)\]:(\d+)$/.exec(host) ?? /^([^:]+):(\d+)$/.exec(host);
      const hostname = m ? (m[1] as string) : host;
      const port = m ? Number(m[2]) : 8500;
      const headers: Record<string, string | number> = { ...call.headers };
      if (call.body !== undefined) headers['content-length'] = Buffer.byteLength(call.body);
      const options = { host: hostname, port, path, method: call.method, headers, agent: this.#agent };
      const req = this.#https ? httpsRequest(options) : httpRequest(options);
      call.signal?.addEventListener('abort', onAbort, { once: true });
      if (call.timeoutMs !== undefined) {
        const ms = Math.max(0, Math.round(call.timeoutMs));
        timer = setTimeout(() => fail(new ConsulHttpError('timeout', `consul ${host} did not answer ${call.method} ${path} within ${ms} ms`)), ms);
      }
      req.on('error', (err: Error & { code?: string }) => {
        const tls = this.#https && TLS_CODES.test(err.code ?? '');
        const hint = tls ? ' (check consul.cacert, consul.cert/key, consul.verify)' : '';
        fail(new ConsulHttpError(tls ? 'tls' : 'connect', `consul ${host}: ${err.message}${hint}`, err));
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => fail(new ConsulHttpError('connect', `consul ${host}: ${err.message}`, err)));
        res.on('close', () => {
          if (!res.complete) fail(new ConsulHttpError('connect', `consul ${host}: the connection closed in the middle of the answer to ${path}`));
        });
        res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') })));
      });
      req.end(call.body);
    });
  }

  /** Close every socket, busy or idle. */
  destroy(): void {
    this.#agent.destroy();
  }
}
