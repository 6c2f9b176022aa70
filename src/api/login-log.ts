// Failed logins on the REST API's guarded endpoints (restapi.authentication, verify_client),
// logged rate-limited per client address so that a client guessing passwords cannot flood the log.
//
// Contract: a line names the client address, method, path (cut to MAX_PATH characters) and a
// reason chosen here ('no Authorization header', 'wrong username or password', 'no client
// certificate'); never the Authorization header, the username or the password given. Per client
// address at most one line per windowMs: the first failure of a window is logged at once, later
// ones in the same window are counted and their number goes, as `suppressed`, on the next line
// logged for that address. At most MAX_CLIENTS addresses are remembered; past that, the addresses
// whose window ended are forgotten, and if all are still in their window, new addresses share one
// entry ('other clients') so that many source addresses cannot grow memory without bound (the
// count not yet logged of an address that is forgotten is lost).

import type { ApiLogger } from './listener.ts';

export type LoginFailureReason = 'no Authorization header' | 'wrong username or password' | 'no client certificate';

export interface LoginFailure {
  client: string | undefined;
  method: string;
  path: string;
  reason: LoginFailureReason;
}

const MAX_PATH = 200;
const MAX_CLIENTS = 1000;
const OTHERS = 'other clients';

export class LoginFailureLog {
  readonly #log: ApiLogger | undefined;
  readonly #clock: () => number;
  readonly #windowMs: number;
  /** Per client address: when its window started and the failures not logged since. */
  readonly #clients = new Map<string, { since: number; suppressed: number }>();

  /** `clock` in ms (monotonic preferred); `windowMs` the least time between two lines for one address. */
  constructor(log: ApiLogger | undefined, clock: () => number, windowMs = 10_000) {
    this.#log = log;
    this.#clock = clock;
    this.#windowMs = windowMs;
  }

  /** Record one failed login; logs it unless a line for this address was logged less than windowMs ago. */
  failed(f: LoginFailure): void {
    const now = this.#clock();
    let key = f.client ?? 'unknown';
    let entry = this.#clients.get(key);
    if (entry === undefined && this.#clients.size >= MAX_CLIENTS) {
      this.#forgetExpired(now);
      if (this.#clients.size >= MAX_CLIENTS) {
        key = OTHERS;
        entry = this.#clients.get(key);
      }
    }
    if (entry !== undefined && now - entry.since < this.#windowMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#clients.set(key, { since: now, suppressed: 0 });
    const path = f.path.length > MAX_PATH ? `${f.path.slice(0, MAX_PATH)}...` : f.path;
    const more = suppressed > 0 ? ` (${suppressed} more from this address not logged)` : '';
    this.#log?.warn?.(
      { client: key === OTHERS ? `${f.client ?? 'unknown'} (${OTHERS})` : key, method: f.method, path, reason: f.reason, suppressed },
      `REST API: failed login from ${key}: ${f.reason}${more}`,
    );
  }

  #forgetExpired(now: number): void {
    for (const [k, e] of this.#clients) if (now - e.since >= this.#windowMs) this.#clients.delete(k);
  }
}
