// `kubectl nsdebug ps TARGET`: the container's processes from the agent (`nsdebug-agent ps
// --output=json` over one exec), printed as a table or passed on as JSON. queryAgent is the
// one-shot exec that `ns` shares.
import type { Readable, Writable } from 'node:stream';

import { AGENT_EXECUTABLE, ExitCode, psArgv, type ExitCodeValue } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { AgentPod } from '../kube/agent.js';
import type { KubeConnection } from '../kube/config.js';
import { ExecStream } from '../kube/exec.js';
import { explainAgentExit, describeAgent } from './debug.js';
import { processIo, type CliIo } from './io.js';
import { completePs, validatePs, type PsFlags, type PsOptions } from './options.js';
import { Collector, formatProcessTable, parseProcessList } from './output.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { createProgress } from './progress.js';
import { streamThroughDebugSession, type SessionAsk } from './session-auth.js';

export async function runPs(flags: PsFlags, io: CliIo = processIo(), cluster: ClusterDeps = realCluster, now?: Date): Promise<number> {
  const opts = completePs(flags, io.facts);
  validatePs(opts);
  return ps(opts, io, cluster, now);
}

const OWN_CODES = new Set<number>(Object.values(ExitCode).filter((c) => c >= ExitCode.USAGE));

/** A failed agent query as one line: the agent's own words, its exit code if it is one of ours. */
export function queryFailure(code: number, stderr: string, agent: AgentPod, doing: string): NsdebugError {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const own = lines.filter((l) => l.startsWith('nsdebug-agent: ')).map((l) => l.slice('nsdebug-agent: '.length));
  explainAgentExit(code, own, agent);
  const said = (own.length ? own : lines).join('; ').slice(0, 500) || `it exited ${code} without a message`;
  const exitCode = (OWN_CODES.has(code) ? code : ExitCode.INTERNAL) as ExitCodeValue;
  return new NsdebugError(`the agent on node ${agent.node} could not ${doing}: ${said}`, exitCode);
}

/** One agent query: its argv for exec into the agent, and the same as a DebugSession asks it. */
export interface AgentQuery {
  argv: string[];
  ask: SessionAsk;
}

/**
 * Run one agent query, by exec into the agent or, with sessionAuth, through a DebugSession in
 * the target's namespace; failures as queryFailure. Its stdout goes to streams.stdout if given,
 * else is collected and returned.
 */
export async function queryAgent(
  cluster: ClusterDeps,
  at: { conn: KubeConnection; agent: AgentPod; namespace: string; sessionAuth?: boolean },
  query: AgentQuery,
  doing: string,
  streams: { stdin?: Readable; stdout?: Writable } = {},
): Promise<string> {
  const { conn, agent } = at;
  const collected = new Collector();
  const stderr = new Collector();
  const local = {
    ...(streams.stdin ? { stdin: streams.stdin } : {}),
    stdout: streams.stdout ?? collected,
    stderr,
    tty: false,
    describe: describeAgent(agent),
  };
  const code = at.sessionAuth
    ? await streamThroughDebugSession(cluster, conn, agent, at.namespace, query.ask, local, (line) => stderr.write(`${line}\n`))
    : await new ExecStream(await cluster.execTransport(conn)).run({
        ...local,
        namespace: agent.namespace,
        pod: agent.pod,
        container: agent.container,
        command: [AGENT_EXECUTABLE, ...query.argv],
        connectTimeoutMs: conn.requestTimeoutMs,
        where: conn,
      });
  if (code !== 0) throw queryFailure(code, stderr.text(), agent, doing);
  return collected.text();
}

export async function ps(opts: PsOptions, io: CliIo, cluster: ClusterDeps, now?: Date): Promise<number> {
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress);
    progress.step(`listing processes through the agent on node ${agent.node}`);
    const query = {
      argv: psArgv({ containerId: target.container.containerId, podUid: target.podUid }),
      ask: { operation: 'ps' as const, pod: target.pod, container: target.container.name, command: [] },
    };
    const doing = `list the processes of container ${target.container.name} of pod ${target.namespace}/${target.pod}`;
    const stdout = await queryAgent(cluster, { conn, agent, namespace: target.namespace, sessionAuth: opts.sessionAuth }, query, doing);
    progress.clear();
    const processes = parseProcessList(stdout, `the agent on node ${agent.node}`);
    io.stdout.write(opts.output === 'json' ? `${JSON.stringify(processes, null, 2)}\n` : formatProcessTable(processes, now));
    return ExitCode.OK;
  } finally {
    progress.clear();
  }
}
