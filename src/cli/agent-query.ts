// One agent query (`nsdebug-agent ps | ns | cp`): a one-shot exec into the agent pod or, with
// --session-auth, one stream through a DebugSession in the target's namespace. ps, ns and cp
// share it; the agent's refusals come back as one line with its exit code.
import type { Readable, Writable } from 'node:stream';

import { AGENT_EXECUTABLE, ExitCode, agentArgv, debugSessionAsk, type AgentRequest, type ExitCodeValue } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { AgentPod } from '../kube/agent.js';
import type { KubeConnection } from '../kube/config.js';
import { ExecStream } from '../kube/exec.js';
import type { ResolvedTarget } from '../kube/target.js';
import { explainAgentExit, describeAgent } from './debug.js';
import { Collector } from './output.js';
import type { ClusterDeps } from './prepare.js';
import { streamThroughDebugSession } from './session-auth.js';

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

/** Where a query goes: the agent on the target's node, and the target it is about. */
export interface QueryTarget {
  conn: KubeConnection;
  agent: AgentPod;
  target: Pick<ResolvedTarget, 'namespace' | 'pod' | 'container'>;
  sessionAuth?: boolean;
}

/**
 * Run one agent query; failures as queryFailure. Its stdout goes to streams.stdout if given,
 * else is collected and returned.
 */
export async function queryAgent(
  cluster: ClusterDeps,
  at: QueryTarget,
  request: AgentRequest,
  doing: string,
  streams: { stdin?: Readable; stdout?: Writable } = {},
): Promise<string> {
  const { conn, agent, target } = at;
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
    ? await streamThroughDebugSession(
        cluster,
        conn,
        agent,
        target.namespace,
        debugSessionAsk(request, { pod: target.pod, container: target.container.name }),
        local,
        (line) => stderr.write(`${line}\n`),
      )
    : await new ExecStream(await cluster.execTransport(conn)).run({
        ...local,
        namespace: agent.namespace,
        pod: agent.pod,
        container: agent.container,
        command: [AGENT_EXECUTABLE, ...agentArgv(request)],
        connectTimeoutMs: conn.requestTimeoutMs,
        where: conn,
      });
  if (code !== 0) throw queryFailure(code, stderr.text(), agent, doing);
  return collected.text();
}
