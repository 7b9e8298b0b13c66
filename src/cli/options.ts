// The options of the commands, kubectl-style: the command parses flags into a plain object,
// complete() fills in defaults from the process's facts (is stdin a terminal?), validate() checks
// everything without I/O (first error wins), and only then does run() (src/cli/debug.ts, ps.ts,
// install.ts…) talk to the cluster. Here are the session's and the queries' (ps, ns), and what
// every command shares.
import { parseNamespaceKinds, parseSessionUser, type SessionUser } from '../contract.js';
import { usageError } from '../errors.js';
import { parseRequestTimeout, type KubeConfigOptions } from '../kube/config.js';
import { DEFAULT_NAMESPACE } from '../kube/manifests.js';
import { DNS_LABEL } from '../names.js';
import { nodeTargetName, parseTarget, validateSelector, type TargetRef } from '../pod.js';

/** Where `kubectl nsdebug install` puts the agent unless told otherwise. */
export const DEFAULT_AGENT_NAMESPACE = DEFAULT_NAMESPACE;

/** The flags every cluster-facing command has, as oclif parsed them. */
export interface KubeFlags {
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  'request-timeout'?: string;
  debug?: boolean;
}

export interface TargetFlags {
  /** the positional TARGET */
  target?: string;
  container?: string;
  selector?: string;
  'agent-namespace'?: string;
  'session-auth'?: boolean;
}

/** `kubectl nsdebug TARGET` as parsed; `command` is everything after `--`. */
export interface DebugFlags extends KubeFlags, TargetFlags {
  ns?: string;
  tools?: boolean;
  stdin?: boolean;
  tty?: boolean;
  quiet?: boolean;
  wait?: boolean;
  timeout?: string;
  'read-only'?: boolean;
  process?: string;
  user?: string;
  privileged?: boolean;
  command: string[];
}

export interface PsFlags extends KubeFlags, TargetFlags {
  output?: string;
}

/** What complete() needs to know about the process; injected so tests need no terminal. */
export interface ProcessFacts {
  stdinIsTTY: boolean;
  stderrIsTTY: boolean;
}

export const processFacts = (): ProcessFacts => ({ stdinIsTTY: Boolean(process.stdin.isTTY), stderrIsTTY: Boolean(process.stderr.isTTY) });

/** Options shared by every command that resolves a target. */
export interface TargetOptions {
  target?: string;
  selector?: string;
  container?: string;
  agentNamespace: string;
  kube: KubeConfigOptions;
  /** progress lines on stderr (only when it is a terminal) */
  progress: boolean;
  debug: boolean;
  /** authorize by a DebugSession in the target's namespace and port-forward to the agent */
  sessionAuth?: boolean;
}

export interface DebugOptions extends TargetOptions {
  /** --ns as given: a comma-separated list of NAMESPACE_KINDS */
  ns?: string;
  tools: boolean;
  stdin: boolean;
  tty: boolean;
  quiet: boolean;
  /** --wait: wait up to this long for the container's next start, then enter it */
  waitSeconds?: number;
  /** --read-only: observe through a private read-only copy of the container's mounts */
  readOnly: boolean;
  /** --process: a PID inside the container whose namespaces to enter */
  process?: number;
  /** --user: run as this user inside the container, with at most the container's capabilities */
  user?: SessionUser;
  /** --privileged: keep the agent's full privileges on the node instead of the target's confinement */
  privileged: boolean;
  command: string[];
  /** lines for stderr about flags complete() had to override */
  warnings: string[];
}

/** How long --wait waits without --timeout. */
export const DEFAULT_WAIT = '5m';

export type OutputFormat = 'table' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json'];

export interface PsOptions extends TargetOptions {
  output: OutputFormat;
}

/** argv → the part oclif parses and the remote command after the first `--` (kept verbatim). */
export function splitCommand(argv: readonly string[]): { flags: string[]; command: string[] } {
  const at = argv.indexOf('--');
  return at < 0 ? { flags: [...argv], command: [] } : { flags: argv.slice(0, at), command: argv.slice(at + 1) };
}

/** Which cluster, as whom: kubectl's connection flags, without -n (a target's or the agent's namespace). */
export function connectionOptions(flags: Omit<KubeFlags, 'namespace'>): KubeConfigOptions {
  const kube: KubeConfigOptions = {};
  if (flags.context !== undefined) kube.context = flags.context;
  if (flags.kubeconfig !== undefined) kube.kubeconfig = flags.kubeconfig;
  if (flags['request-timeout'] !== undefined) kube.requestTimeout = flags['request-timeout'];
  return kube;
}

export function completeTarget(flags: KubeFlags & TargetFlags, facts: ProcessFacts, env: NodeJS.ProcessEnv = process.env): TargetOptions {
  const kube: KubeConfigOptions = {
    ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}),
    ...connectionOptions(flags),
  };
  return {
    ...(flags.target !== undefined ? { target: flags.target } : {}),
    ...(flags.selector !== undefined ? { selector: flags.selector } : {}),
    ...(flags.container !== undefined ? { container: flags.container } : {}),
    agentNamespace: flags['agent-namespace'] ?? DEFAULT_AGENT_NAMESPACE,
    kube,
    progress: facts.stderrIsTTY,
    debug: flags.debug === true,
    sessionAuth: flags['session-auth'] === true || env.NSDEBUG_SESSION_AUTH === '1',
  };
}

/**
 * Defaults as `kubectl exec` has them, plus a shell's needs: with no command (a shell) stdin is
 * attached and -t is on when stdin is a terminal; with a command, -i and -t are off unless given.
 * A TTY needs stdin, and stdin that is a terminal: otherwise it is dropped with a warning.
 */
export function completeDebug(flags: DebugFlags, facts: ProcessFacts, env: NodeJS.ProcessEnv = process.env): DebugOptions {
  const shell = flags.command.length === 0;
  const stdin = flags.stdin ?? shell;
  let tty = flags.tty ?? (shell && facts.stdinIsTTY);
  const warnings: string[] = [];
  if (tty && !stdin) {
    warnings.push('-t needs stdin: running without a TTY; pass -it for an interactive command');
    tty = false;
  } else if (tty && !facts.stdinIsTTY) {
    warnings.push('Unable to use a TTY - input is not a terminal or the right kind of file');
    tty = false;
  }
  return {
    ...completeTarget(flags, facts, env),
    ...(flags.ns !== undefined ? { ns: flags.ns } : {}),
    tools: flags.tools === true,
    stdin,
    tty,
    quiet: flags.quiet === true,
    ...(flags.wait ? { waitSeconds: waitSeconds(flags.timeout ?? DEFAULT_WAIT) } : {}),
    readOnly: flags['read-only'] === true,
    ...(flags.process !== undefined ? { process: processPid(flags.process) } : {}),
    ...(flags.user !== undefined ? { user: sessionUser(flags.user) } : {}),
    privileged: flags.privileged === true,
    command: flags.command,
    warnings,
  };
}

function processPid(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text))
    throw usageError(`--process must be a PID inside the container (see kubectl nsdebug ps), not "${text}"`);
  return Number(text);
}

function sessionUser(text: string): SessionUser {
  const user = parseSessionUser(text);
  if (!user) throw usageError(`--user must be UID or UID:GID, numbers as the container knows them (e.g. 0 or 1000:1000), not "${text}"`);
  return user;
}

function waitSeconds(timeout: string): number {
  const seconds = Math.ceil(parseRequestTimeout(timeout, '--timeout') / 1000);
  if (seconds < 1 || seconds > 99_999) throw usageError(`--timeout must be between 1s and 27h for --wait, not "${timeout}"`);
  return seconds;
}

export function completePs(flags: PsFlags, facts: ProcessFacts): PsOptions {
  return { ...completeTarget(flags, facts), output: (flags.output ?? 'table') as OutputFormat };
}

/** The target as a TargetRef (after validate() this cannot fail). */
export function targetRef(opts: Pick<TargetOptions, 'target' | 'selector'>): TargetRef {
  if (opts.selector !== undefined) return { kind: 'selector', selector: opts.selector };
  return parseTarget(opts.target ?? '');
}

export function validateTarget(opts: TargetOptions): void {
  if (opts.target === undefined && opts.selector === undefined) {
    throw usageError(
      'name a target: kubectl nsdebug pod/NAME (or deploy/, statefulset/, daemonset/, replicaset/, job/, service/NAME, or -l SELECTOR); see --help',
    );
  }
  if (opts.target !== undefined && opts.selector !== undefined)
    throw usageError(`a target (${opts.target}) and -l/--selector cannot be used together; drop one of them`);
  if (opts.selector !== undefined) validateSelector(opts.selector);
  else if (nodeTargetName(opts.target as string) === undefined) parseTarget(opts.target as string);
  if (opts.container !== undefined && !DNS_LABEL.test(opts.container)) {
    throw usageError(`-c/--container "${opts.container}" is not a container name (lowercase letters, digits and '-')`);
  }
  if (opts.kube.namespace !== undefined && !DNS_LABEL.test(opts.kube.namespace)) {
    throw usageError(`-n/--namespace "${opts.kube.namespace}" is not a namespace name (lowercase letters, digits and '-')`);
  }
  if (!DNS_LABEL.test(opts.agentNamespace))
    throw usageError(`--agent-namespace "${opts.agentNamespace}" is not a namespace name (lowercase letters, digits and '-')`);
  if (opts.kube.requestTimeout !== undefined) parseRequestTimeout(opts.kube.requestTimeout);
}

/** Every check that needs no cluster; the first problem is thrown as a usage error. */
export function validateDebug(opts: DebugOptions): void {
  validateTarget(opts);
  if (opts.ns !== undefined) parseNamespaceKinds(opts.ns);
  if (opts.readOnly && opts.ns !== undefined && !parseNamespaceKinds(opts.ns).includes('mnt')) {
    throw usageError('--read-only needs the mount namespace: add mnt to --ns');
  }
  if (opts.command.length && opts.command[0] === '') throw usageError('the command after -- is empty; give a program name, e.g. -- ls /');
  if (opts.sessionAuth && opts.target !== undefined && nodeTargetName(opts.target) !== undefined)
    throw usageError('node/NAME is not available with --session-auth: a DebugSession authorizes pods in its own namespace only');
  // a namespace left out would be the agent's own (the node's PID namespace, its mounts)
  if (opts.sessionAuth && opts.ns !== undefined)
    throw usageError('--ns cannot be combined with --session-auth: a DebugSession always joins every namespace of its target; drop --ns');
  if (opts.privileged && opts.sessionAuth)
    throw usageError(
      "--privileged cannot be combined with --session-auth: a DebugSession never grants the agent's privileges; drop one of them",
    );
  if (opts.user && opts.sessionAuth) throw usageError('--user is not available with --session-auth yet; drop --user');
}

export function validatePs(opts: PsOptions): void {
  validateTarget(opts);
  validateOutput(opts.output);
}

/** -o/--output; oclif checks it for the commands (`options`), this for direct callers. */
export function validateOutput(output: string): void {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output))
    throw usageError(`-o/--output must be ${OUTPUT_FORMATS.join(' or ')}, not "${output}"`);
}

/** -n/--namespace of install, uninstall and status: the agent's namespace. */
export function validateAgentNamespace(namespace: string): void {
  if (!DNS_LABEL.test(namespace)) throw usageError(`--namespace must be a DNS label (lowercase letters, digits, '-'), not "${namespace}"`);
}
