// One agent query (`nsdebug-agent ps | ns | cp`): a one-shot exec into the agent pod or, with
// --session-auth, one stream through a DebugSession in the target's namespace. ps, ns and cp
// share it; the agent's refusals come back as one line with its exit code.
import type { Readable, Writable } from 'node:stream';

import { CONTRACT_VERSION, ExitCode, agentCommand, debugSessionAsk, type DebugSessionRequest, type ExitCodeValue } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { AgentPod } from '../kube/agent.js';
import type { KubeConnection } from '../kube/config.js';
import { Collector, ExecStream } from '../kube/exec.js';
import type { ResolvedTarget } from '../kube/target.js';
import type { ClusterDeps } from './prepare.js';
import { streamThroughDebugSession } from './session-auth.js';

export const describeAgent = (agent: AgentPod) => `the nsdebug agent on node ${agent.node} (pod ${agent.namespace}/${agent.pod})`;

/**
 * The agent refuses a contract version it does not know with exit 68 and its own line; a remote
 * command may exit 68 too, so the explanation is added only when the agent's line was seen.
 */
export function explainAgentExit(code: number, agentLines: string[], agent: AgentPod): void {
  if (code === ExitCode.CONTRACT_MISMATCH && agentLines.some((l) => /contract/i.test(l))) {
    throw new NsdebugError(
      `the agent on node ${agent.node} and this kubectl-nsdebug (contract ${CONTRACT_VERSION}) are from different releases; upgrade one of them, e.g. \`kubectl nsdebug install\` with this CLI (\`kubectl nsdebug status\` shows both)`,
      ExitCode.CONTRACT_MISMATCH,
    );
  }
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

/** Where a query goes: the agent on the target's node, and the target it is about. */
export interface QueryTarget {
  conn: KubeConnection;
  agent: AgentPod;
  target: Pick<ResolvedTarget, 'namespace' | 'pod' | 'container'>;
  sessionAuth?: boolean;
}

/**
 * Run one agent query; failures as queryFailure. Its stdout goes to streams.stdout if given,
 * else is collected and returned; once it has succeeded, what it said on stderr (the entries a
 * copy skipped) goes to streams.said.
 */
export async function queryAgent(
  cluster: ClusterDeps,
  at: QueryTarget,
  request: DebugSessionRequest,
  doing: string,
  streams: { stdin?: Readable; stdout?: Writable; said?: (text: string) => void } = {},
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
        command: agentCommand(request),
        connectTimeoutMs: conn.requestTimeoutMs,
        where: conn,
      });
  if (code !== 0) throw queryFailure(code, stderr.text(), agent, doing);
  if (stderr.text()) streams.said?.(stderr.text());
  return collected.text();
}
