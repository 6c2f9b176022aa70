// `vigil agent CONFIG`: run the HA agent for one PostgreSQL node until SIGTERM/SIGINT.
//
// Exit codes: 0 after a clean stop, 1 when the configuration is invalid or the core asked to exit
// (duplicate member name, a replica started before any /initialize, ...), 2 on usage errors.

import { loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { formatIssues } from './validate-config.ts';
import { createDcs } from '../dcs/factory.ts';
import { clusterPrefix } from '../dcs/codec.ts';
import type { Dcs } from '../dcs/dcs.ts';
import { PostgresController } from '../postgres/controller.ts';
import { Agent } from '../agent/agent.ts';
import { readTlsFiles, startApiServer } from '../api/server.ts';
import type { ApiReloadableOptions, ApiServer } from '../api/server.ts';
import type { RestApiSettings } from '../config/types.ts';
import { effectiveDynamicConfig } from '../config/dynamic.ts';
import { DEFAULT_LOG } from '../config/log.ts';
import type { Level } from '../log/format.ts';
import { Logging, type AgentLogger } from '../log/logger.ts';

const USAGE = 'usage: vigil agent CONFIG';

export async function run(argv: string[]): Promise<number> {
  if (argv.length !== 1 || argv[0] === undefined || argv[0].startsWith('-')) {
    process.stderr.write(`${argv[0] === '-h' || argv[0] === '--help' ? '' : 'Error: expected exactly one configuration file\n'}${USAGE}\n`);
    return argv[0] === '-h' || argv[0] === '--help' ? 0 : 2;
  }
  const file = argv[0];
  let loaded;
  try {
    loaded = await loadConfigFile(file, process.env);
  } catch (err) {
    process.stderr.write(`Error: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (loaded.issues.length > 0) process.stderr.write(formatIssues(file, loaded.issues) + '\n');
  const config = loaded.config;
  if (config === undefined || loaded.issues.some((i) => i.severity === 'error')) {
    process.stderr.write(`Error: ${file} is not a valid configuration; the agent does not start\n`);
    return 1;
  }
  return runAgent(config, file);
}

/** The agent's logging, as the configuration's `log` section asks (Patroni's defaults without one). */
export function makeLogging(config: Config): Logging {
  return new Logging(config.log ?? { ...DEFAULT_LOG, level: config.logLevel as Level });
}

/**
 * Patroni's warning (same words, level WARNING) when the nofailover and failover_priority tags
 * disagree: nofailover true with a positive priority, or nofailover false with priority 0 or less.
 * The nofailover tag wins. Undefined when they agree or one of them is absent.
 */
export function conflictingFailoverTags(tags: Config['tags']): string | undefined {
  const nofailover = tags['nofailover'];
  const priority = tags['failover_priority'];
  if (nofailover === undefined || nofailover === null || priority === undefined || priority === null) return undefined;
  const p = Number(priority);
  if (!Number.isFinite(p)) return undefined;
  const noFo = nofailover === true || String(nofailover).toLowerCase() === 'true';
  if (noFo === p <= 0) return undefined;
  const show = (v: unknown): string => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));
  return `Conflicting configuration between nofailover: ${show(nofailover)} and failover_priority: ${show(priority)}. Defaulting to nofailover: ${show(nofailover)}`;
}

export function makeDcs(config: Config, logger?: AgentLogger): Dcs {
  const dyn = effectiveDynamicConfig(config.bootstrap?.dcs).config;
  // The backend is the one of the DCS section present. Its settings are checked here, once (etcd3:
  // a TLS file that cannot be used throws an Etcd3SettingError naming the setting and the file),
  // which stops the start-up (exit code 1).
  return createDcs(config, { prefix: clusterPrefix(config.namespace, config.scope), name: config.name, ttl: dyn.ttl, retryTimeout: dyn.retry_timeout, ...(logger !== undefined ? { logger } : {}) });
}

/**
 * The REST API server's settings from restapi: the part a reload may change, the same function at
 * start-up and on reload. Reads the TLS files; rejects naming the setting and the file when one
 * cannot be read.
 */
export async function restApiOptions(r: RestApiSettings): Promise<ApiReloadableOptions> {
  return {
    listen: r.listen,
    ...(r.certfile !== undefined
      ? {
          tls: await readTlsFiles({
            certfile: r.certfile,
            ...(r.keyfile !== undefined ? { keyfile: r.keyfile } : {}),
            ...(r.keyfilePassword !== undefined ? { keyfilePassword: r.keyfilePassword } : {}),
            ...(r.cafile !== undefined ? { cafile: r.cafile } : {}),
            ...(r.verifyClient !== undefined ? { verifyClient: r.verifyClient } : {}),
          }),
        }
      : {}),
    ...(r.authentication !== undefined ? { auth: r.authentication } : {}),
    ...(r.allowlist !== undefined || r.allowlistIncludeMembers === true
      ? { allowlist: { entries: r.allowlist ?? [], includeMembers: r.allowlistIncludeMembers === true } }
      : {}),
    ...(r.httpExtraHeaders !== undefined ? { extraHeaders: r.httpExtraHeaders } : {}),
    ...(r.httpsExtraHeaders !== undefined ? { httpsExtraHeaders: r.httpsExtraHeaders } : {}),
  };
}

/**
 * Apply reloaded restapi settings to the running REST API server. Resolves with what changed;
 * rejects, with the running settings kept, when a TLS file cannot be read or the new settings
 * cannot be used.
 */
export async function reloadRestApi(api: ApiServer, r: RestApiSettings): Promise<string> {
  return api.reconfigure(await restApiOptions(r));
}

/**
 * Refuse to start when a member with our name is registered and its REST API answers: two agents
 * with one name would fight over one member key (and one leader lock). Any HTTP answer counts.
 */
async function duplicateName(config: Config, dcs: Dcs): Promise<string | undefined> {
  let apiUrl: string | undefined;
  try {
    const view = await dcs.readCluster();
    apiUrl = view.members.find((m) => m.name === config.name)?.data.api_url;
  } catch {
    return undefined; // the DCS is not reachable yet: the loop deals with that
  }
  if (apiUrl === undefined) return undefined;
  try {
    const url = new URL(apiUrl);
    url.pathname = '/liveness';
    await fetch(url, { signal: AbortSignal.timeout(3000) });
    // Patroni's words, so that operators' alerts on them keep matching.
    return `Can't start; there is already a node named '${config.name}' running`;
  } catch {
    return undefined;
  }
}

async function runAgent(config: Config, configFile: string): Promise<number> {
  const logging = makeLogging(config);
  try {
    return await runWithLogging(config, configFile, logging);
  } finally {
    await logging.close();
  }
}

async function runWithLogging(config: Config, configFile: string, logging: Logging): Promise<number> {
  const log = logging.logger('ha');
  const root = logging.logger();
  const pgLog = logging.logger('postgres');
  const dcs = makeDcs(config, logging.logger('dcs'));
  const tagConflict = conflictingFailoverTags(config.tags);
  if (tagConflict !== undefined) log.warn({}, tagConflict);
  const dup = await duplicateName(config, dcs);
  if (dup !== undefined) {
    log.fatal({}, dup);
    process.stderr.write(`Error: ${dup}\n`);
    await dcs.close();
    return 1;
  }
  const holder: { agent?: Agent; api?: ApiServer } = {};
  const pg = new PostgresController({
    settings: config.postgresql,
    name: config.name,
    scope: config.scope,
    logger: {
      debug: (m) => pgLog.debug({}, m),
      info: (m) => pgLog.info({}, m),
      warn: (m) => pgLog.warn({}, m),
      error: (m) => pgLog.error({}, m),
    },
    onPostmasterExit: (info) => holder.agent?.postmasterExited(info),
  });

  // Reloads of restapi, one after the other (file reads included), in the order they came.
  let restApiReload: Promise<void> = Promise.resolve();
  const onReload = (cfg: Config): Promise<void> => {
    // The log section applies at once, as in Patroni (level, format, destination).
    if (cfg.log !== undefined) {
      const what = logging.reconfigure(cfg.log);
      if (what !== '') root.info({}, `log settings reloaded: ${what}`);
    }
    restApiReload = restApiReload.then(async () => {
      const api = holder.api;
      if (api === undefined) return;
      try {
        const what = await reloadRestApi(api, cfg.restapi);
        log.info({ listen: cfg.restapi.listen, port: api.port }, `REST API settings reloaded: ${what}`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.error({ listen: cfg.restapi.listen }, `REST API settings not applied, the running ones are kept: ${message}`);
      }
    });
    return restApiReload;
  };

  let fatal: string | undefined;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const agent = new Agent({
    config,
    dcs,
    pg,
    logger: log,
    configFile,
    onReload,
    onFatal: (msg) => {
      fatal = msg;
      resolveDone();
    },
  });

  holder.agent = agent;
  const api = await startApiServer({
    ...(await restApiOptions(config.restapi)),
    getSnapshot: () => agent.getSnapshot(),
    clock: () => performance.now(),
    operations: agent.operations(),
    logger: logging.logger('api'),
  });
  holder.api = api;
  log.info({ listen: config.restapi.listen, port: api.port }, 'REST API listening');

  let signalled = false;
  const onSignal = (sig: string): void => {
    if (signalled) {
      log.warn({}, `${sig} again: exiting now without stopping PostgreSQL`);
      process.exit(1);
    }
    signalled = true;
    log.info({}, `${sig} received: stopping`);
    resolveDone();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => {
    log.info({}, 'SIGHUP received: reloading the configuration');
    void agent.reloadConfig();
  });

  agent.start();
  await done;
  if (fatal !== undefined) {
    await agent.abort();
    await api.close();
    await dcs.close();
    return 1;
  }
  await agent.stop();
  await api.close();
  log.info({}, 'stopped');
  return 0;
}
