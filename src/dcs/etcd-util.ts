// Small helpers of the etcd backends (etcd3.ts, etcd2-client.ts): the v3 gateway's base64 and
// key ranges, the API prefix for a server version, a sleep that an abort ends, error texts.

import { EtcdHttpError } from './etcd3-http.ts';

export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
export const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** range_end covering every key starting with `prefix` (last byte + 1). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  let i = bytes.length - 1;
  while (i >= 0 && bytes[i] === 0xff) i--;
  if (i < 0) return Buffer.from([0]).toString('base64'); // every key
  const end = bytes.subarray(0, i + 1);
  end[i] = (end[i] ?? 0) + 1;
  return end.toString('base64');
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export function describe(err: unknown): string {
  if (err === undefined) return 'no attempt fitted in the deadline';
  if (err instanceof EtcdHttpError) return err.message;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}

/** API prefix from GET /version (etcdcluster, else etcdserver): <3.3 /v3alpha, 3.3 /v3beta, else /v3. */
export function apiPrefixFor(version: { etcdcluster?: string; etcdserver?: string }): string {
  const m = /^(\d+)\.(\d+)/.exec(version.etcdcluster ?? '') ?? /^(\d+)\.(\d+)/.exec(version.etcdserver ?? '');
  if (!m) return '/v3';
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 3 && minor < 3) return '/v3alpha';
  if (major === 3 && minor === 3) return '/v3beta';
  return '/v3';
}
