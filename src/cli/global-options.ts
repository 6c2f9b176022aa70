// patronictl's group options, which scripts and aliases put before the verb
// (`patronictl -c FILE list`): -c/--config-file FILE, -d/--dcs-url/--dcs URL, -k/--insecure.
// `vigil` takes them there too, for every control verb, and hands them to the verb as long options
// placed before the verb's own arguments: the verb parses them like its own, so the same option
// given after the verb wins. (After the verb, `query` keeps -c for its SQL and -d for its
// database, as patronictl's query does; before the verb, -c and -d are the group options.)

import { UsageError } from './errors.ts';

/** The paragraph every control verb's --help ends with. */
export const GLOBAL_OPTIONS_HELP = `Global options (before the verb as for patronictl, or after it):
  -c, --config-file FILE     configuration file (default: $PATRONICTL_CONFIG_FILE, else
                             ~/.config/patroni/patronictl.yaml)
  -d, --dcs-url, --dcs URL   the DCS, replacing the file's DCS section (default: $DCS_URL):
                             [SCHEME://][HOST][:PORT][/NAMESPACE] with SCHEME etcd3, etcd (v2 API),
                             zookeeper, consul or kubernetes (HOST: the API server, path: the
                             Kubernetes namespace); no scheme: zookeeper on port 2181, consul on
                             8500, else etcd (v2 API), as patronictl reads it
  -k, --insecure             do not verify the members' REST API certificates`;

export interface GlobalOptions {
  /** The options found, as long options for the verb's own parser (`--config-file=FILE`...). */
  args: string[];
  /** -h/--help before the verb. */
  help: boolean;
  /** --version before the verb. */
  version: boolean;
  /** The verb and its arguments (empty: no verb). */
  rest: string[];
}

const WITH_VALUE: Record<string, string> = { c: 'config-file', 'config-file': 'config-file', d: 'dcs-url', 'dcs-url': 'dcs-url', dcs: 'dcs-url' };

/**
 * Split `argv` into the global options before the verb and the rest. Accepts click's spellings:
 * `-c FILE`, `-cFILE`, `--config-file FILE`, `--config-file=FILE`, flags grouped (`-kc FILE`).
 * UsageError on an unknown option or a missing value.
 */
export function splitGlobalOptions(argv: string[]): GlobalOptions {
  const out: GlobalOptions = { args: [], help: false, version: false, rest: [] };
  let i = 0;
  const value = (name: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`option '${name}' needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const inline = eq < 0 ? undefined : a.slice(eq + 1);
      const long = WITH_VALUE[name];
      if (long !== undefined) out.args.push(`--${long}=${value(`--${name}`, inline)}`);
      else if (name === 'insecure' && inline === undefined) out.args.push('--insecure');
      else if (name === 'help' && inline === undefined) out.help = true;
      else if (name === 'version' && inline === undefined) out.version = true;
      else throw new UsageError(`unknown option '${a}' before the command (before it: -c/--config-file, -d/--dcs-url/--dcs, -k/--insecure)`);
      continue;
    }
    // A group of short options: flags, then at most one option taking the rest or the next word.
    for (let j = 1; j < a.length; j++) {
      const ch = a[j]!;
      const long = ch === 'c' || ch === 'd' ? WITH_VALUE[ch] : undefined;
      if (long !== undefined) {
        const inline = j + 1 < a.length ? a.slice(j + 1) : undefined;
        out.args.push(`--${long}=${value(`-${ch}`, inline)}`);
        break;
      }
      if (ch === 'k') out.args.push('--insecure');
      else if (ch === 'h') out.help = true;
      else throw new UsageError(`unknown option '-${ch}' before the command (before it: -c/--config-file, -d/--dcs-url/--dcs, -k/--insecure)`);
    }
  }
  out.rest = argv.slice(i);
  return out;
}
