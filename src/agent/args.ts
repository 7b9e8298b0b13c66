// The agent's argv: the argv encoding of src/contract.ts's AgentRequest, decoded here and
// validated (src/agent/request.ts) before anything runs.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import {
  CONTRACT_VERSION,
  ExitCode,
  parseNamespaceKinds,
  parseSessionUser,
  SESSION_FLAGS,
  type AgentRequest,
  type SessionFlagKind,
  type SessionCopy,
  type SessionRequest,
} from '../contract.js';
import { parseDuration } from '../duration.js';
import { NsdebugError, usageError } from '../errors.js';
import { validateAgentRequest } from './request.js';

export const USAGE = `usage: nsdebug-agent enter --container-id ID [--pod-uid UID] [--ns LIST] [--tools] [--tty] [--read-only] [--process PID]
                           [--postmortem --pod-uid UID --container NAME]
                           [--wait SECONDS --pod-uid UID --container NAME] [--user UID[:GID] | --privileged] [-- ARGV...]
       (a session takes the target process's UID, GID, groups, capabilities, no_new_privs, seccomp filter and
        LSM label; --user another user with at most its capabilities; --privileged keeps the agent's)
       nsdebug-agent enter --node NAME [--ns LIST] [--tty] [-- ARGV...]   (the node's own namespaces)
       (enter --framed: stdin and stdout carry session frames, with heartbeats; what the CLI sends)
       nsdebug-agent ps --container-id ID [--pod-uid UID] [--output table|json]
       nsdebug-agent ns --pod-uid UID   (the pod's namespaces as JSON, like lsns -J)
       nsdebug-agent cp --container-id ID [--pod-uid UID] --from PATH   (a header line, then the file)
       nsdebug-agent cp --container-id ID [--pod-uid UID] --from PATH --recursive   (the tree, a tar stream)
       nsdebug-agent cp --container-id ID --pod-uid UID --postmortem --container NAME --from PATH [--recursive]
                                                  (out of a dead container's last filesystem)
       nsdebug-agent cp --container-id ID [--pod-uid UID] --to PATH --name NAME --size N --mode OCTAL --mtime MS   (the file on stdin)
       nsdebug-agent cp --container-id ID [--pod-uid UID] --to PATH --tree [--name NAME]   (a tar stream on stdin)
       nsdebug-agent info [--output table|json] [--check]
       nsdebug-agent kill --session ID   (end one of this node's live sessions: kubectl nsdebug sessions kill)
       nsdebug-agent recording --session ID   (a recorded session, to stdout: kubectl nsdebug replay)
       nsdebug-agent serve [--max-session DURATION]   (default 12h: sessions older than that are ended)
Every subcommand accepts --contract=N (the CLI always sends it; this agent speaks ${CONTRACT_VERSION}).`;

const common = {
  contract: { type: 'string' },
  'container-id': { type: 'string' },
  'pod-uid': { type: 'string' },
  pod: { type: 'string' },
  container: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** enter's options, from the contract's table of its flags. */
const ENTER_OPTIONS = Object.fromEntries(
  Object.values(SESSION_FLAGS).map(({ flag, kind }) => [flag, { type: kind === 'switch' ? 'boolean' : 'string' }] as const),
) as Record<string, { type: 'boolean' | 'string' }>;

const SUBCOMMANDS = {
  enter: { contract: common.contract, help: common.help, ...ENTER_OPTIONS },
  ps: { ...common, output: { type: 'string', short: 'o' } },
  ns: { contract: common.contract, 'pod-uid': common['pod-uid'], help: common.help },
  cp: {
    contract: common.contract,
    'container-id': common['container-id'],
    'pod-uid': common['pod-uid'],
    container: common.container,
    postmortem: { type: 'boolean' },
    help: common.help,
    from: { type: 'string' },
    recursive: { type: 'boolean' },
    to: { type: 'string' },
    tree: { type: 'boolean' },
    name: { type: 'string' },
    size: { type: 'string' },
    mode: { type: 'string' },
    mtime: { type: 'string' },
  },
  info: { contract: common.contract, help: common.help, output: { type: 'string', short: 'o' }, check: { type: 'boolean' } },
  kill: { contract: common.contract, help: common.help, session: { type: 'string' } },
  recording: { contract: common.contract, help: common.help, session: { type: 'string' } },
  serve: { help: common.help, 'max-session': { type: 'string' } },
} satisfies Record<string, ParseArgsConfig['options']>;

type Subcommand = keyof typeof SUBCOMMANDS;

/** What argv asks: a request of the contract (validated), the resident server, or the usage text. */
export type AgentArgs = AgentRequest | { operation: 'serve'; maxSessionMs: number } | { operation: 'help' };

/**
 * Decode argv (the encoding src/contract.ts's agentArgv writes) into the request it carries:
 * syntax here, meaning in validateAgentRequest, as for a DebugSession's request.
 */
export function parseAgentArgs(argv: string[]): AgentArgs {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') return { operation: 'help' };
  if (!sub || !(sub in SUBCOMMANDS)) throw usageError(sub ? `unknown subcommand "${sub}"\n${USAGE}` : USAGE);
  const subcommand = sub as Subcommand;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: SUBCOMMANDS[subcommand],
      allowPositionals: subcommand === 'enter',
      strict: true,
      tokens: true,
    });
  } catch (err) {
    // Node's wording ("Unknown option '--x'. To specify a positional…") made one short line.
    const message = (err as Error).message.replace(/\. To specify.*$/s, '').replace(/'/g, '');
    throw usageError(`${message.charAt(0).toLowerCase()}${message.slice(1)}; see nsdebug-agent --help`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const str = (name: string) => values[name] as string | undefined;
  const contract = str('contract');
  if (contract !== undefined && contract !== String(CONTRACT_VERSION)) {
    throw new NsdebugError(
      `this agent speaks contract version ${CONTRACT_VERSION}, the CLI sent ${JSON.stringify(contract)}: use a CLI and an agent from the same release (kubectl nsdebug status)`,
      ExitCode.CONTRACT_MISMATCH,
    );
  }
  if (values.help) return { operation: 'help' };
  const outputText = str('output');
  if (outputText !== undefined && outputText !== 'table' && outputText !== 'json')
    throw usageError(`--output must be table or json, got ${JSON.stringify(outputText)}`);
  const output = outputText as 'table' | 'json' | undefined;
  const at = { containerId: str('container-id') ?? '', ...defined('podUid', str('pod-uid')) };
  switch (subcommand) {
    case 'enter':
      return validateAgentRequest({ operation: 'enter', ...sessionRequest(values, parsed) });
    case 'ps':
      return validateAgentRequest({ operation: 'ps', ...at, ...defined('output', output) });
    case 'ns':
      return validateAgentRequest({ operation: 'ns', podUid: str('pod-uid') ?? '' });
    case 'cp':
      return validateAgentRequest({ operation: 'cp', ...at, ...copyRequest(str, (name) => values[name] === true) } as AgentRequest);
    case 'info':
      return { operation: 'info', ...defined('output', output), check: values.check === true };
    case 'kill':
    case 'recording':
      return validateAgentRequest({ operation: subcommand, session: str('session') ?? '' });
    case 'serve':
      return { operation: 'serve', maxSessionMs: parseMaxSession(str('max-session')) };
  }
}

/** { [key]: value } when value is set, else nothing: optional fields stay absent, not undefined. */
const defined = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

/** enter's argv as the SessionRequest it encodes, by the contract's table of its flags. */
function sessionRequest(
  values: Record<string, string | boolean | undefined>,
  parsed: { positionals: string[]; tokens?: Array<{ kind: string; index: number }> },
): SessionRequest {
  // Positionals are only allowed after "--": a stray word is more likely a typo than a command.
  const dashDash = parsed.tokens?.find((t) => t.kind === 'option-terminator');
  const stray = parsed.positionals.length && (!dashDash || parsed.tokens?.some((t) => t.kind === 'positional' && t.index < dashDash.index));
  if (stray) throw usageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}: put the command after --`);
  const fields = Object.entries(SESSION_FLAGS).map(([field, { flag, kind }]) => {
    const value = values[flag];
    return [field, kind === 'switch' ? value === true : value === undefined ? undefined : decodeValue(flag, kind, value as string)];
  });
  // optional fields stay absent, not undefined
  return {
    ...Object.fromEntries(fields.filter(([, value]) => value !== undefined)),
    containerId: values['container-id'] ?? '',
    command: parsed.positionals,
  } as SessionRequest;
}

/** One flag's text as its field's type; only syntax here (the validator judges ranges and relations). */
function decodeValue(flag: string, kind: Exclude<SessionFlagKind, 'switch'>, text: string): unknown {
  switch (kind) {
    case 'text':
      return text;
    // a number as argv spells one, or the text as it came, for the validator to quote
    case 'number':
      return /^\d{1,15}$/.test(text) ? Number(text) : text;
    case 'namespaces':
      return parseNamespaceKinds(text);
    case 'user': {
      const user = parseSessionUser(text);
      if (!user)
        throw usageError(`--${flag} must be UID or UID:GID (numbers inside the container), got ${JSON.stringify(text.slice(0, 80))}`);
      return user;
    }
  }
}

/** How long a session may run before serve ends it: generous, so only a forgotten one is cut. */
export const DEFAULT_MAX_SESSION_MS = 12 * 3_600_000;

function parseMaxSession(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_SESSION_MS;
  const ms = parseDuration(text, '--max-session');
  if (ms < 1000) throw usageError(`--max-session must be at least 1s, not "${text}"`);
  return ms;
}

function copyRequest(
  str: (name: string) => string | undefined,
  on: (name: string) => boolean,
): SessionCopy & { postmortem?: true; container?: string } {
  const from = str('from');
  const to = str('to');
  if ((from === undefined) === (to === undefined))
    throw usageError('cp needs exactly one of --from PATH (copy out) and --to PATH (copy in)');
  const only = (flags: string[], what: string) => {
    for (const flag of flags) if (str(flag) !== undefined || on(flag)) throw usageError(`--${flag} is for ${what}`);
  };
  if (from !== undefined) {
    only(['name', 'size', 'mode', 'mtime', 'tree'], '--to (copy in), not --from');
    const postmortem = on('postmortem') ? { postmortem: true as const, container: str('container') ?? '' } : {};
    if (!on('postmortem')) only(['container'], '--postmortem');
    return { from, ...(on('recursive') ? { recursive: true } : {}), ...postmortem };
  }
  only(['recursive', 'postmortem', 'container'], '--from (copy out), not --to');
  if (on('tree')) {
    only(['size', 'mode', 'mtime'], 'one file (without --tree)');
    return { to: to as string, tree: true, ...defined('name', str('name')) };
  }
  const number = (flag: string, pattern: RegExp, radix = 10) => {
    const text = str(flag);
    if (text === undefined || !pattern.test(text))
      throw usageError(
        `--${flag} is required with --to and must match ${pattern.source}, got ${JSON.stringify((text ?? '').slice(0, 40))}`,
      );
    return Number.parseInt(text, radix);
  };
  return {
    to: to as string,
    name: str('name') ?? '',
    size: number('size', /^\d{1,15}$/),
    mode: number('mode', /^[0-7]{3,4}$/, 8),
    mtimeMs: number('mtime', /^\d{1,15}$/),
  };
}
