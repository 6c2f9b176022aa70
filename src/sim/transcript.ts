// Failover stories as readable transcripts (design.md section 3, principle 5), for tests only.
//
// A transcript file has a script, a line `----`, and the output the script produced:
//
//   # comment lines describe the story
//   nodes n0 n1 n2            node names (required, first)
//   tag n1 nofailover         tags: `name` (true) or `name=value`
//   lag n2 2097152            bytes a replica stays behind a writing primary
//   config ttl=30 loop_wait=10  dynamic configuration overrides (numbers or true/false)
//   seed 7                    PRNG seed (default 1)
//   rate 100000               bytes per second clients write to the primary (default 20000)
//   at 60 kill n0             an event at 60 s: start, restart, kill, kill-agent, kill-pg, stop,
//                             partition-dcs, heal-dcs, partition-peers, heal-peers, dcs-down,
//                             dcs-up, heal-all, writes-off, writes-on
//   run 200                   simulate until 200 s
//   converge 120              then step until the cluster converges, at most 120 s more
//   expect n1: acquireLeader startTask:promote  # promoted self
//                             an output line that must appear after the previous expectation:
//                             same actions, and the reason contains the text after `#`
//
// The output lists the events, each node's decision whenever it differs from its previous one
// (actions, failed ones marked `!outcome`, then `# reason`), task results, and the final state.

import { World, type NodeOptions } from './world.ts';
import type { DynamicConfig, Tags } from '../core/model.ts';

export const SEPARATOR = '----';

export interface TranscriptResult {
  /** The script part, unchanged. */
  script: string;
  output: string;
  /** Expectations not met, invariant violations, convergence failures. */
  errors: string[];
}

function parseValue(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  const n = Number(v);
  return v !== '' && Number.isFinite(n) ? n : v;
}

const seconds = (s: string, line: string): number => {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) throw new Error(`bad time in: ${line}`);
  return Math.round(n * 1000);
};

function fmt(ms: number): string {
  return (ms / 1000).toFixed(1).padStart(6);
}

export function splitTranscript(text: string): { script: string; expected: string | undefined } {
  const lines = text.split('\n');
  const i = lines.indexOf(SEPARATOR);
  if (i < 0) return { script: text.replace(/\n*$/, '\n'), expected: undefined };
  return { script: lines.slice(0, i).join('\n') + '\n', expected: lines.slice(i + 1).join('\n') };
}

export async function runTranscript(text: string): Promise<TranscriptResult> {
  const { script } = splitTranscript(text);
  const lines = script.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const nodes: Record<string, NodeOptions> = {};
  const config: Partial<DynamicConfig> = {};
  let seed = 1;
  let writeRate: number | undefined;
  const body: string[] = [];
  for (const line of lines) {
    const [cmd, ...args] = line.split(/\s+/);
    if (cmd === 'nodes') for (const n of args) nodes[n] = {};
    else if (cmd === 'tag') {
      const [name, ...tags] = args;
      const o = nodes[name ?? ''];
      if (o === undefined) throw new Error(`unknown node in: ${line}`);
      const t: Tags = { ...o.tags };
      for (const kv of tags) {
        const [k, v] = kv.split('=');
        t[k as string] = v === undefined ? true : parseValue(v);
      }
      o.tags = t;
    } else if (cmd === 'lag') {
      const o = nodes[args[0] ?? ''];
      if (o === undefined) throw new Error(`unknown node in: ${line}`);
      o.lagBytes = Number(args[1]);
    } else if (cmd === 'config') {
      for (const kv of args) {
        const [k, v] = kv.split('=');
        (config as Record<string, unknown>)[k as string] = parseValue(v ?? '');
      }
    } else if (cmd === 'seed') seed = Number(args[0]);
    else if (cmd === 'rate') writeRate = Number(args[0]);
    else body.push(line);
  }
  if (Object.keys(nodes).length === 0) throw new Error('a transcript needs a `nodes` line');

  const w = new World({ seed, nodes, config, ...(writeRate !== undefined ? { writeRate } : {}) });
  const expects: Array<{ node: string; actions: string; reason: string; line: string }> = [];
  const errors: string[] = [];
  const tail: string[] = [];
  for (const line of body) {
    const [cmd, ...args] = line.split(/\s+/);
    if (cmd === 'at') {
      const t = seconds(args[0] ?? '', line);
      const [ev, ...names] = args.slice(1);
      const each = (fn: (n: string) => void) => () => names.forEach(fn);
      const events: Record<string, () => void> = {
        start: each((n) => w.start(n)),
        restart: each((n) => w.start(n)),
        kill: each((n) => w.kill(n)),
        'kill-agent': each((n) => w.killAgent(n)),
        'kill-pg': each((n) => w.killPg(n)),
        stop: each((n) => w.stop(n)),
        'partition-dcs': each((n) => w.partitionDcs(n, true)),
        'heal-dcs': each((n) => w.partitionDcs(n, false)),
        'partition-peers': each((n) => w.partitionPeers(n, true)),
        'heal-peers': each((n) => w.partitionPeers(n, false)),
        'dcs-down': () => w.dcsUp(false),
        'dcs-up': () => w.dcsUp(true),
        'heal-all': () => w.healAll(),
        'writes-off': () => (w.writing = false),
        'writes-on': () => (w.writing = true),
      };
      const fn = events[ev ?? ''];
      if (fn === undefined) throw new Error(`unknown event in: ${line}`);
      w.at(t, [ev, ...names].join(' '), fn);
    } else if (cmd === 'run') {
      await w.run(seconds(args[0] ?? '', line));
    } else if (cmd === 'converge') {
      const limit = w.now + seconds(args[0] ?? '', line);
      const at = await w.runUntilConverged(limit);
      if (at === undefined) errors.push(`did not converge by ${limit / 1000} s: ${w.convergence()}`);
      tail.push(at === undefined ? `not converged: ${w.convergence()}` : `converged at ${(at / 1000).toFixed(1)} s`);
    } else if (cmd === 'expect') {
      const m = /^expect\s+(\S+):\s*([^#]*?)\s*(?:#\s*(.*))?$/.exec(line);
      if (m === null) throw new Error(`bad expectation: ${line}`);
      expects.push({ node: m[1] as string, actions: m[2] as string, reason: (m[3] ?? '').trim(), line });
    } else throw new Error(`unknown command: ${line}`);
  }

  const out = w.trace.map((l) => `${fmt(l.at)} ${l.node === '*' ? '*' : `${l.node}:`} ${l.text}`);
  out.push(...tail, ...w.summary());
  for (const v of w.violations) errors.push(`invariant: ${v}`);

  // Expectations: an ordered subsequence of the decision lines.
  let from = 0;
  for (const e of expects) {
    let found = -1;
    for (let i = from; i < w.trace.length; i++) {
      const l = w.trace[i];
      if (l === undefined || l.node !== e.node) continue;
      const [acts, ...rest] = l.text.split('  # ');
      if (acts?.trim() === e.actions && rest.join('  # ').includes(e.reason)) {
        found = i;
        break;
      }
    }
    if (found < 0) errors.push(`not found (in order): ${e.line}`);
    else from = found + 1;
  }
  return { script, output: out.join('\n') + '\n', errors };
}
