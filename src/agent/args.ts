// The agent's argv: the versioned contract of src/contract.ts, parsed and validated before
// anything runs.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { CONTRACT_VERSION, ExitCode, NAMESPACE_KINDS, parseSessionUser, type NamespaceKind } from '../contract.js';
import { parseDuration } from '../duration.js';
import { NsdebugError, usageError } from '../errors.js';
import { CONTAINER_ID, POD_UID } from './cgroups.js';

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
       nsdebug-agent cp --container-id ID [--pod-uid UID] --to PATH --name NAME --size N --mode OCTAL --mtime MS   (the file on stdin)
       nsdebug-agent info [--output table|json] [--check]
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

const SUBCOMMANDS = {
  enter: {
    ...common,
    ns: { type: 'string' },
    tools: { type: 'boolean' },
    tty: { type: 'boolean' },
    'read-only': { type: 'boolean' },
    process: { type: 'string' },
    privileged: { type: 'boolean' },
    user: { type: 'string' },
    postmortem: { type: 'boolean' },
    wait: { type: 'string' },
    node: { type: 'string' },
    framed: { type: 'boolean' },
  },
  ps: { ...common, output: { type: 'string', short: 'o' } },
  ns: { contract: common.contract, 'pod-uid': common['pod-uid'], help: common.help },
  cp: {
    contract: common.contract,
    'container-id': common['container-id'],
    'pod-uid': common['pod-uid'],
    help: common.help,
    from: { type: 'string' },
    to: { type: 'string' },
    name: { type: 'string' },
    size: { type: 'string' },
    mode: { type: 'string' },
    mtime: { type: 'string' },
  },
  info: { contract: common.contract, help: common.help, output: { type: 'string', short: 'o' }, check: { type: 'boolean' } },
  serve: { help: common.help, 'max-session': { type: 'string' } },
} satisfies Record<string, ParseArgsConfig['options']>;

type Subcommand = keyof typeof SUBCOMMANDS;

/** Parse argv for one subcommand; every value is validated before anything runs. */
export function parseAgentArgs(argv: string[]) {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') return { ...emptyArgs, help: true };
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
  const containerId = str('container-id');
  const waitText = str('wait');
  if (waitText !== undefined && !/^[1-9]\d{0,4}$/.test(waitText)) {
    throw usageError(`--wait must be a number of seconds (1-99999), got ${JSON.stringify(waitText.slice(0, 80))}`);
  }
  if (waitText !== undefined && (!str('pod-uid') || !str('container') || values.postmortem)) {
    throw usageError('--wait needs --pod-uid and --container (the container to wait for), and takes no --postmortem');
  }
  const node = str('node');
  if (node !== undefined && !/^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/.test(node)) {
    throw usageError(`--node must be a node name, got ${JSON.stringify(node.slice(0, 80))}`);
  }
  if (node !== undefined && (containerId || waitText || values.postmortem || str('process') || values['read-only'])) {
    throw usageError('--node enters the node itself: it takes no --container-id, --wait, --postmortem, --process or --read-only');
  }
  if (
    (subcommand === 'enter' || subcommand === 'ps' || subcommand === 'cp') &&
    !values.help &&
    waitText === undefined &&
    node === undefined
  ) {
    if (!containerId) throw usageError('--container-id is required');
  }
  if (subcommand === 'ns' && !values.help && !str('pod-uid')) throw usageError('--pod-uid is required');
  if (containerId !== undefined && !CONTAINER_ID.test(containerId)) {
    throw usageError(`--container-id must be 64 lowercase hex digits, got ${JSON.stringify(containerId.slice(0, 80))}`);
  }
  const podUid = str('pod-uid');
  if (podUid !== undefined && !POD_UID.test(podUid))
    throw usageError(`--pod-uid must be a UUID, got ${JSON.stringify(podUid.slice(0, 80))}`);
  const output = str('output') ?? 'table';
  if (!['table', 'json'].includes(output)) throw usageError(`--output must be table or json, got ${JSON.stringify(output)}`);
  // Positionals are only allowed after "--": a stray word is more likely a typo than a command.
  const dashDash = parsed.tokens?.find((t) => t.kind === 'option-terminator');
  const stray = parsed.positionals.length && (!dashDash || parsed.tokens.some((t) => t.kind === 'positional' && t.index < dashDash.index));
  if (stray) throw usageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}: put the command after --`);
  const pod = str('pod');
  if (pod !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/.test(pod)) {
    throw usageError(`--pod must be NAMESPACE/NAME, got ${JSON.stringify(pod.slice(0, 80))}`);
  }
  const container = str('container');
  if (container !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(container)) {
    throw usageError(`--container must be a container name, got ${JSON.stringify(container.slice(0, 80))}`);
  }
  if (values.postmortem && (values.process !== undefined || values['read-only'] || str('ns') !== undefined)) {
    throw usageError('--postmortem opens the dead container read-only in the pod network: it takes no --process, --read-only or --ns');
  }
  const processText = str('process');
  if (processText !== undefined && !/^[1-9]\d{0,9}$/.test(processText)) {
    throw usageError(`--process must be a PID inside the container, got ${JSON.stringify(processText.slice(0, 80))}`);
  }
  const userText = str('user');
  const user = userText === undefined ? undefined : parseSessionUser(userText);
  if (userText !== undefined && !user) {
    throw usageError(`--user must be UID or UID:GID (numbers inside the container), got ${JSON.stringify(userText.slice(0, 80))}`);
  }
  if (values.privileged && user)
    throw usageError("--privileged keeps the agent's root; --user picks a user with the target's limits: choose one");
  if ((values.privileged || user) && (node !== undefined || values.postmortem)) {
    throw usageError("--privileged and --user apply to a running container's session, not to --node or --postmortem");
  }
  // Post-mortem mounts a dead container's snapshot: the agent checks it is this pod's container of this name.
  if (values.postmortem && !values.help && (!podUid || !container)) {
    throw usageError(
      "--postmortem needs --pod-uid and --container (the dead container is checked to be that pod's container of that name)",
    );
  }
  const copy = subcommand === 'cp' && !values.help ? parseCopy(str) : undefined;
  return {
    subcommand,
    copy,
    pod,
    process: processText === undefined ? undefined : Number(processText),
    container,
    help: values.help === true,
    containerId: containerId ?? '',
    podUid,
    namespaces: parseNamespaceList(str('ns')),
    tools: values.tools === true,
    tty: values.tty === true,
    readOnly: values['read-only'] === true,
    privileged: values.privileged === true,
    user,
    postmortem: values.postmortem === true,
    waitSeconds: waitText === undefined ? undefined : Number(waitText),
    node,
    output: output as 'table' | 'json',
    check: values.check === true,
    framed: values.framed === true,
    maxSessionMs: parseMaxSession(str('max-session')),
    command: parsed.positionals,
  };
}

/** How long a session may run before serve ends it: generous, so only a forgotten one is cut. */
export const DEFAULT_MAX_SESSION_MS = 12 * 3_600_000;

function parseMaxSession(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_SESSION_MS;
  const ms = parseDuration(text, '--max-session');
  if (ms < 1000) throw usageError(`--max-session must be at least 1s, not "${text}"`);
  return ms;
}

/** A path inside the container, as argv carries it: no NUL (argv cannot hold one), at most PATH_MAX. */
const CONTAINER_PATH = /^[^\0]{1,4095}$/;

function parseCopy(str: (name: string) => string | undefined) {
  const from = str('from');
  const to = str('to');
  if ((from === undefined) === (to === undefined))
    throw usageError('cp needs exactly one of --from PATH (copy out) and --to PATH (copy in)');
  const path = (from ?? to) as string;
  if (!CONTAINER_PATH.test(path))
    throw usageError(`--from/--to must be a path of 1 to 4095 bytes, got ${JSON.stringify(path.slice(0, 80))}`);
  if (from !== undefined) {
    for (const flag of ['name', 'size', 'mode', 'mtime'])
      if (str(flag) !== undefined) throw usageError(`--${flag} is for --to (copy in), not --from`);
    return { path, upload: undefined };
  }
  const name = str('name') ?? '';
  if (!/^[^/\0]{1,255}$/.test(name) || name === '.' || name === '..') {
    throw usageError(`--name must be a file name (no "/", not "." or ".."), got ${JSON.stringify(name.slice(0, 80))}`);
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
    path,
    upload: {
      name,
      size: number('size', /^\d{1,15}$/),
      mode: number('mode', /^[0-7]{3,4}$/, 8),
      mtimeMs: number('mtime', /^\d{1,15}$/),
    },
  };
}

export function parseNamespaceList(list: string | undefined): NamespaceKind[] | undefined {
  if (list === undefined) return undefined;
  const kinds = list.split(',').map((k) => k.trim());
  const unknown = kinds.filter((k) => !(NAMESPACE_KINDS as readonly string[]).includes(k));
  if (unknown.length || kinds.length === 0) {
    throw usageError(`--ns: unknown namespace ${JSON.stringify(unknown[0] ?? '')}; choose from ${NAMESPACE_KINDS.join(',')}`);
  }
  return [...new Set(kinds)] as NamespaceKind[];
}

export type AgentArgs = ReturnType<typeof parseAgentArgs>;

const emptyArgs = {
  subcommand: 'enter' as Subcommand,
  copy: undefined,
  pod: undefined,
  process: undefined,
  container: undefined,
  help: false,
  containerId: '',
  podUid: undefined,
  namespaces: undefined,
  tools: false,
  tty: false,
  readOnly: false,
  privileged: false,
  user: undefined,
  postmortem: false,
  waitSeconds: undefined,
  node: undefined,
  output: 'table' as const,
  check: false,
  framed: false,
  maxSessionMs: DEFAULT_MAX_SESSION_MS,
  command: [] as string[],
};
