// `kubectl nsdebug TARGET [-- COMMAND…]`: complete and validate the options, resolve the target
// (src/cli/prepare.ts), then exec `nsdebug-agent enter …` in the agent pod on the target's node
// and stream the session. The exit code is the remote command's; nsdebug's own failures throw
// NsdebugError, which src/cli/main.ts prints as one line.
import { agentCommand, debugSessionAsk, parseNamespaceKinds, type SessionRequest } from '../contract.js';
import { usageError } from '../errors.js';
import { checkExecAccess } from '../kube/access.js';
import { findAgent, type AgentPod } from '../kube/agent.js';
import type { KubeConnection } from '../kube/config.js';
import type { ExecRequest } from '../kube/exec.js';
import { FramedExecStream } from '../kube/session-stream.js';
import type { ResolvedTarget, TargetClient } from '../kube/target.js';
import { nodeTargetName } from '../pod.js';
import { processIo, type CliIo } from './io.js';
import { completeDebug, validateDebug, type DebugFlags, type DebugOptions } from './options.js';
import { describeAgent, explainAgentExit } from './agent-query.js';
import { escapeLine } from './escape.js';
import { AgentLineWatcher } from './output.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { createProgress, type Progress } from './progress.js';
import { streamThroughDebugSession } from './session-auth.js';
import { withTerminal, type SignalHost } from './terminal.js';

export async function runDebug(
  flags: DebugFlags,
  io: CliIo = processIo(),
  cluster: ClusterDeps = realCluster,
  host?: SignalHost,
): Promise<number> {
  const opts = completeDebug(flags, io.facts);
  validateDebug(opts);
  return debug(opts, io, cluster, host);
}

/** The session this invocation asks of the agent, built once; sent as argv or as a DebugSession. */
export function sessionRequest(
  opts: Pick<DebugOptions, 'ns' | 'tools' | 'tty' | 'command' | 'waitSeconds' | 'readOnly' | 'process' | 'privileged' | 'user'>,
  target: ResolvedTarget,
): SessionRequest {
  return {
    containerId: target.container.containerId,
    podUid: target.podUid,
    pod: `${target.namespace}/${target.pod}`,
    container: target.container.name,
    ...(opts.ns !== undefined ? { namespaces: parseNamespaceKinds(opts.ns) } : {}),
    tools: opts.tools,
    tty: opts.tty,
    ...(opts.waitSeconds ? { waitSeconds: opts.waitSeconds } : target.container.exited ? { postmortem: true } : {}),
    ...(opts.readOnly && !target.container.exited ? { readOnly: true } : {}),
    ...(opts.process !== undefined ? { process: opts.process } : {}),
    ...(opts.privileged ? { privileged: true } : {}),
    ...(opts.user ? { user: opts.user } : {}),
    framed: true,
    command: opts.command,
  };
}

/** How many lines of the dead container's log the post-mortem announcement shows. */
const LOG_TAIL_LINES = 10;

/**
 * Say, before a post-mortem session opens, what the user is looking at and how the container
 * ended: its state, termination message and the tail of its last log.
 */
export async function announcePostmortem(
  target: ResolvedTarget,
  targets: Pick<TargetClient, 'readLogTail'>,
  opts: Pick<DebugOptions, 'command'>,
  stderr: NodeJS.WritableStream,
): Promise<void> {
  const { name, exited } = target.container;
  if (!exited) return;
  const what = opts.command.length ? 'session' : 'shell';
  const network = exited.podEnded ? ', without network (the pod has ended)' : " in the pod's network";
  const lines = [
    `container ${name} is not running (${exited.summary}); opening a post-mortem ${what} on its last filesystem (read-only)${network}`,
  ];
  if (exited.message) lines.push(`termination message: ${exited.message}`);
  const log = (await targets.readLogTail(target.namespace, target.pod, name, exited.previousLog, LOG_TAIL_LINES)).trimEnd();
  if (log) lines.push(`last log lines${exited.previousLog ? ' (--previous)' : ''}:`, ...log.split('\n').map((l) => `  ${l}`));
  // the message and the log are the container's words: shown, never obeyed by the terminal
  stderr.write(`${lines.map(escapeLine).join('\n')}\n`);
}

export async function debug(opts: DebugOptions, io: CliIo, cluster: ClusterDeps, host?: SignalHost): Promise<number> {
  const progress = createProgress(io.stderr, { enabled: opts.progress, quiet: opts.quiet });
  for (const warning of opts.warnings) progress.note(warning);
  try {
    const node = opts.target !== undefined ? nodeTargetName(opts.target) : undefined;
    if (node !== undefined) return await debugNode(node, opts, io, cluster, progress, host);
    const { conn, target, agent, targets } = await prepare(opts, cluster, progress, opts.waitSeconds ? 'any' : true);
    if (opts.waitSeconds) {
      progress.clear();
      if (!opts.quiet) {
        io.stderr.write(
          `waiting up to ${opts.waitSeconds} s for container ${target.container.name} of pod ${target.namespace}/${target.pod} to start…\n`,
        );
      }
    } else if (target.container.exited) {
      if (opts.process !== undefined || opts.ns !== undefined || opts.privileged || opts.user) {
        throw usageError(
          `container ${target.container.name} is not running: --process, --ns, --user and --privileged do not apply to its post-mortem session`,
        );
      }
      progress.clear();
      await announcePostmortem(target, targets, opts, io.stderr);
    }
    const request = sessionRequest(opts, target);
    if (opts.sessionAuth) return await streamAuthorizedSession(opts, io, cluster, progress, { conn, agent, target, request }, host);
    if (opts.privileged) {
      progress.clear();
      io.stderr.write(`nsdebug: --privileged: this session has the agent's full privileges on node ${agent.node}\n`);
    }
    return await streamSession(opts, io, cluster, progress, { conn, agent, argv: agentCommand({ operation: 'enter', ...request }) }, host);
  } finally {
    progress.clear();
  }
}

/** node/NAME: a shell in the node's own namespaces, through the agent on that node. */
async function debugNode(node: string, opts: DebugOptions, io: CliIo, cluster: ClusterDeps, progress: Progress, host?: SignalHost) {
  const extra = opts.waitSeconds
    ? '--wait'
    : opts.readOnly
      ? '--read-only'
      : opts.process !== undefined
        ? '--process'
        : opts.container !== undefined
          ? '-c'
          : opts.user
            ? '--user'
            : opts.privileged
              ? '--privileged'
              : '';
  if (extra) throw usageError(`${extra} applies to containers, not to node/${node}`);
  progress.step('reading kubeconfig');
  const conn = await cluster.loadKubeConfig(opts.kube);
  progress.step(`finding the agent on node ${node}`);
  const agent = await findAgent(node, opts.agentNamespace, await cluster.agentClient(conn));
  // exec into the agent is what the API server authorizes, and it is root on the node
  await checkExecAccess({ namespace: agent.namespace, pod: agent.pod }, await cluster.accessClient(conn));
  const argv = agentCommand({
    operation: 'enter',
    containerId: '',
    node,
    ...(opts.ns !== undefined ? { namespaces: parseNamespaceKinds(opts.ns) } : {}),
    tools: opts.tools,
    tty: opts.tty,
    framed: true,
    command: opts.command,
  });
  return streamSession(opts, io, cluster, progress, { conn, agent, argv }, host);
}

/** What a session's stream needs from the local side, whichever way it reaches the agent. */
type LocalStreams = Pick<ExecRequest, 'stdin' | 'stdout' | 'stderr' | 'tty' | 'terminal' | 'describe' | 'onOpen'>;

/** Relay a session between the local terminal and `open`'s stream; the remote exit code is ours. */
async function relaySession(
  opts: DebugOptions,
  io: CliIo,
  progress: Progress,
  agent: AgentPod,
  open: (local: LocalStreams) => Promise<number>,
  host?: SignalHost,
): Promise<number> {
  // with a TTY the remote side merges stderr into stdout: the agent's lines come there
  const watcher = new AgentLineWatcher(opts.tty ? io.stdout : io.stderr);
  const terminal = opts.tty ? io.terminal : undefined;
  const code = await withTerminal(
    terminal,
    () =>
      open({
        ...(opts.stdin ? { stdin: io.stdin } : {}),
        stdout: opts.tty ? watcher : io.stdout,
        ...(opts.tty ? {} : { stderr: watcher }),
        tty: opts.tty,
        ...(terminal ? { terminal } : {}),
        describe: describeAgent(agent),
        onOpen: () => {
          progress.clear();
          terminal?.makeRaw();
        },
      }),
    host,
  );
  await new Promise<void>((resolve) => watcher.end(resolve));
  explainAgentExit(code, watcher.lines, agent);
  return code;
}

/** Exec argv in the agent pod and relay the session. */
async function streamSession(
  opts: DebugOptions,
  io: CliIo,
  cluster: ClusterDeps,
  progress: Progress,
  at: { conn: KubeConnection; agent: AgentPod; argv: string[] },
  host?: SignalHost,
): Promise<number> {
  const { conn, agent } = at;
  progress.step(`connecting to the agent on node ${agent.node}`);
  const exec = new FramedExecStream(await cluster.execTransport(conn));
  return relaySession(
    opts,
    io,
    progress,
    agent,
    (local) =>
      exec.run({
        ...local,
        namespace: agent.namespace,
        pod: agent.pod,
        container: agent.container,
        command: at.argv,
        connectTimeoutMs: conn.requestTimeoutMs,
        where: conn,
      }),
    host,
  );
}

/** --session-auth: the same session, asked for by a DebugSession and reached by port-forward. */
async function streamAuthorizedSession(
  opts: DebugOptions,
  io: CliIo,
  cluster: ClusterDeps,
  progress: Progress,
  at: { conn: KubeConnection; agent: AgentPod; target: ResolvedTarget; request: SessionRequest },
  host?: SignalHost,
): Promise<number> {
  const { conn, agent, target, request } = at;
  // what the DebugSession asks: what the agent will serve, and nothing else
  const ask = debugSessionAsk({ operation: 'enter', ...request }, { pod: target.pod, container: target.container.name });
  progress.step(`asking for a DebugSession in namespace ${target.namespace} and connecting to the agent on node ${agent.node}`);
  return relaySession(
    opts,
    io,
    progress,
    agent,
    (local) => streamThroughDebugSession(cluster, conn, agent, target.namespace, ask, local, (line) => io.stderr.write(`${line}\n`)),
    host,
  );
}
