// The fence budget of a primary's DCS writes (executor.ts fenceBudget): with the fencer armed, a
// refresh gives up in time for a clean demotion instead of waiting the whole retry_timeout; with no
// time left it is not attempted; without an armed fencer the DCS's own deadline applies.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Observation } from '../core/model.ts';
import { loadConfig } from '../config/load.ts';
import { MINIMAL_CONFIG } from '../config/testing.ts';
import type { Config } from '../config/types.ts';
import type { CallOptions, Dcs } from '../dcs/dcs.ts';
import { SimDcs } from '../sim/dcs.ts';
import { SimDcsClient } from '../sim/dcs-client.ts';
import { NodeDriver } from './driver.ts';
import { executeOne } from './executor.ts';
import type { Clock, PgPort } from './ports.ts';

const config = loadConfig(MINIMAL_CONFIG, {}).config as Config;
const NOW = 50_000;

/** A DCS whose refreshLeader never answers: it settles only when the caller's signal aborts. */
function hangingDcs(seen: (CallOptions | undefined)[]): Dcs {
  const inner = new SimDcsClient(new SimDcs(() => NOW), config.name);
  return Object.assign(Object.create(inner) as Dcs, {
    refreshLeader(opts?: CallOptions): Promise<boolean> {
      seen.push(opts);
      return new Promise<boolean>((_resolve, reject) => {
        const signal = opts?.signal;
        if (signal?.aborted === true) reject(new Error('aborted by the caller'));
        signal?.addEventListener('abort', () => reject(new Error('aborted by the caller')), { once: true });
      });
    },
  });
}

function driver(dcs: Dcs, budgets: number[]): NodeDriver {
  // Each requested budget is recorded and its signal aborts at once: the time is taken as spent.
  const clock: Clock = {
    now: () => NOW,
    wallNow: () => Date.parse('2026-01-01T00:00:00Z'),
    sleep: async () => undefined,
    timeout: (ms: number) => {
      budgets.push(ms);
      return AbortSignal.abort();
    },
  };
  return new NodeDriver({
    config,
    ports: {
      pg: {} as PgPort,
      dcs,
      peers: { fetchStatuses: async () => [], checkFailsafe: async () => ({ ok: false, reason: 'none' }) },
      fence: { arm: async () => ({ ok: true }), disarm: async () => true },
      clock,
      hooks: { spawn: async () => ({ code: 0 }), run: async () => ({ code: 0 }) },
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    wake: () => undefined,
  });
}

const obs = {} as Observation;

test("with the fencer armed, a refresh that hangs gives up at the fence deadline less the demotion's reserve", async () => {
  const seen: (CallOptions | undefined)[] = [];
  const budgets: number[] = [];
  const d = driver(hangingDcs(seen), budgets);
  d.fenceDeadline = NOW + 3000;
  d.lockRefreshedAt = NOW - 2000;
  const failure = await executeOne(d, { type: 'refreshLeader' }, obs);
  assert.equal(seen.length, 1);
  assert.ok(seen[0]?.signal !== undefined, 'the refresh got a signal');
  assert.deepEqual(budgets, [3000 - 1500]);
  assert.equal(failure?.action, 'refreshLeader');
  assert.equal(d.lockRefreshedAt, undefined, 'the lock is not confirmed');
});

test('with no time left before the fence deadline, the refresh is not attempted and fails as unreachable', async () => {
  const seen: (CallOptions | undefined)[] = [];
  const d = driver(hangingDcs(seen), []);
  d.fenceDeadline = NOW + 1000;
  const failure = await executeOne(d, { type: 'refreshLeader' }, obs);
  assert.deepEqual(seen, []);
  assert.equal(failure?.outcome, 'unreachable');
});

test('without an armed fencer (or with time to spare) the DCS keeps its own retry deadline', async () => {
  const calls: (CallOptions | undefined)[] = [];
  const inner = new SimDcsClient(new SimDcs(() => NOW), config.name);
  const dcs = Object.assign(Object.create(inner) as Dcs, {
    refreshLeader(opts?: CallOptions): Promise<boolean> {
      calls.push(opts);
      return Promise.resolve(true);
    },
  });
  const budgets: number[] = [];
  const d = driver(dcs, budgets);
  assert.equal(await executeOne(d, { type: 'refreshLeader' }, obs), undefined);
  d.fenceDeadline = NOW + 60_000;
  assert.equal(await executeOne(d, { type: 'refreshLeader' }, obs), undefined);
  assert.deepEqual(calls, [undefined, undefined]);
  assert.deepEqual(budgets, []);
});
