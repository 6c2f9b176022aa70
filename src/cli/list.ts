// `vigil [GLOBAL OPTIONS] list [-c CONFIG] [--dcs-url URL] [-k] [-e] [-t] [-f FORMAT] [-W] [-w SEC] [CLUSTER...]`:
// reads each cluster's subtree from the DCS (linearizable, no lease) and prints it like
// `patronictl list` (spec §3.3). Exit codes: 0 printed, 1 configuration/DCS error, 2 usage error.

import { parseArgs } from 'node:util';
import { clusterPrefix } from '../dcs/codec.ts';
import type { Dcs } from '../dcs/dcs.ts';
import { createDcs } from '../dcs/factory.ts';
import type { ClusterView } from '../core/model.ts';
import { CliError, UsageError, formatTimestamp, loadCtlSettings, type CtlSettings, type Etcd3Target } from './args.ts';
import { renderTable, type ListFormat } from './table.ts';
import { ctlEtcd3Dcs } from './ctl/common.ts';
import { GLOBAL_OPTIONS_HELP } from './global-options.ts';

const USAGE = `usage: vigil [GLOBAL OPTIONS] list [-c CONFIG] [-d DCS_URL] [-e] [-t] [-f pretty|tsv|json|yaml] [-W] [-w SEC] [CLUSTER...]

Print the members of each cluster (default: scope from the configuration) as patronictl list does.

  -e, --extended           always show Pending restart, Pending restart reason, Scheduled restart, Tags
  -t, --timestamp          print the time before each listing
  -f, --format FORMAT      pretty (default), tsv, json or yaml (yml)
  -W                       repeat every 2 seconds
  -w, --watch SEC          repeat every SEC seconds

${GLOBAL_OPTIONS_HELP}`;

/** Seconds a read may take (retries included) before the command gives up: Patroni's retry_timeout default. */
const RETRY_TIMEOUT_S = 10;

interface ListOptions {
  configFile?: string;
  dcsUrl?: string;
  extended: boolean;
  timestamp: boolean;
  format: ListFormat;
  /** Seconds between listings; undefined: print once. */
  watch?: number;
  clusters: string[];
  help: boolean;
}

function parseListArgs(argv: string[]): ListOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'config-file': { type: 'string', short: 'c' },
        'dcs-url': { type: 'string', short: 'd' },
        dcs: { type: 'string' },
        insecure: { type: 'boolean', short: 'k', default: false },
        extended: { type: 'boolean', short: 'e', default: false },
        timestamp: { type: 'boolean', short: 't', default: false },
        format: { type: 'string', short: 'f', default: 'pretty' },
        W: { type: 'boolean', short: 'W', default: false },
        watch: { type: 'string', short: 'w' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  const fmtRaw = String(v.format).toLowerCase();
  const format: ListFormat | undefined =
    fmtRaw === 'pretty' || fmtRaw === 'tsv' || fmtRaw === 'json' ? fmtRaw : fmtRaw === 'yaml' || fmtRaw === 'yml' ? 'yaml' : undefined;
  if (format === undefined) throw new UsageError(`Unknown output format '${String(v.format)}': use pretty, tsv, json or yaml`);
  let watch: number | undefined;
  if (v.watch !== undefined) {
    watch = Number(v.watch);
    if (!Number.isFinite(watch) || watch <= 0) throw new UsageError(`-w/--watch needs a positive number of seconds, got '${v.watch}'`);
  } else if (v.W) {
    watch = 2;
  }
  const opts: ListOptions = {
    extended: v.extended === true,
    timestamp: v.timestamp === true,
    format,
    clusters: parsed.positionals,
    help: v.help === true,
  };
  if (v['config-file'] !== undefined) opts.configFile = v['config-file'];
  const dcsUrl = v['dcs-url'] ?? v.dcs;
  if (dcsUrl !== undefined) opts.dcsUrl = dcsUrl;
  if (watch !== undefined) opts.watch = watch;
  return opts;
}

function describeTarget(t: Etcd3Target): string {
  return t.hosts.map((h) => `${t.protocol}://${h}`).join(', ');
}

function noDcs(settings: CtlSettings): CliError {
  const why = settings.notes.length > 0 ? ` (${settings.notes.join('; ')})` : '';
  return new CliError(`no usable DCS section in the configuration and no --dcs-url: cannot find the DCS${why}`);
}

/** A ctl-mode client of the configuration's DCS (etcd3, or the other section the loader chose) and how errors name it. */
function ctlDcs(settings: CtlSettings, prefix: string, scope: string): { dcs: Dcs; where: string } {
  if (settings.etcd3 !== undefined) return { dcs: ctlEtcd3Dcs(settings.etcd3, prefix, scope, RETRY_TIMEOUT_S), where: `etcd at ${describeTarget(settings.etcd3)}` };
  const sections = settings.sections;
  if (sections === undefined) throw noDcs(settings);
  try {
    return { dcs: createDcs(sections, { prefix, name: scope, ttl: 30, retryTimeout: RETRY_TIMEOUT_S, ctl: true }), where: settings.dcsLabel ?? Object.keys(sections).join(', ') };
  } catch (err) {
    throw new CliError(`configuration: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** One consistent read of a cluster; errors name the DCS (etcd: the endpoints tried). */
async function readCluster(settings: CtlSettings, scope: string): Promise<ClusterView> {
  const prefix = clusterPrefix(settings.namespace, scope);
  const { dcs, where } = ctlDcs(settings, prefix, scope);
  try {
    // A hard stop in case the adapter's own deadline does not fire.
    return await dcs.readCluster({ signal: AbortSignal.timeout((RETRY_TIMEOUT_S + 5) * 1000) });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new CliError(`cannot read cluster '${scope}' (${prefix}) from ${where}: ${msg}`);
  } finally {
    await dcs.close().catch(() => undefined);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export async function run(argv: string[]): Promise<number> {
  try {
    return await runList(argv);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`Error: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(`\n${USAGE}\n`);
      return err.exitCode;
    }
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

async function runList(argv: string[]): Promise<number> {
  const opts = parseListArgs(argv);
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const settings = await loadCtlSettings({
    ...(opts.configFile !== undefined ? { configFile: opts.configFile } : {}),
    ...(opts.dcsUrl !== undefined ? { dcsUrl: opts.dcsUrl } : {}),
  });
  const clusters = opts.clusters.length > 0 ? opts.clusters : settings.scope !== undefined ? [settings.scope] : [];
  if (clusters.length === 0) {
    throw new UsageError('no cluster name given: pass CLUSTER or set scope in the configuration file');
  }
  if (settings.etcd3 === undefined && settings.sections === undefined) throw noDcs(settings);

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  if (opts.watch !== undefined) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const clear = opts.watch !== undefined && process.stdout.isTTY === true;
  try {
    while (true) {
      // Read everything first so a slow DCS does not leave a cleared screen half drawn.
      const outputs: string[] = [];
      for (const scope of clusters) {
        const view = await readCluster(settings, scope);
        outputs.push(renderTable(scope, view, { format: opts.format, extended: opts.extended }));
      }
      let text = '';
      if (clear) text += '\x1b[2J\x1b[H';
      if (opts.timestamp) text += `${formatTimestamp(new Date())}\n`;
      text += outputs.map((o) => `${o}\n`).join('');
      process.stdout.write(text);
      if (opts.watch === undefined) return 0;
      await sleep(opts.watch * 1000, stop.signal);
      if (stop.signal.aborted) return 0;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
