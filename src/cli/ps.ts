// `kubectl nsdebug ps TARGET`: the container's processes from the agent (`nsdebug-agent ps
// --output=json` over one exec), printed as a table or passed on as JSON.
import { AGENT_EXECUTABLE, ExitCode, psArgv, type ExitCodeValue } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { AgentPod } from '../kube/agent.js';
import { ExecStream } from '../kube/exec.js';
import type { ResolvedTarget } from '../kube/target.js';
import { explainAgentExit, describeAgent } from './debug.js';
import { processIo, type CliIo } from './io.js';
import { completePs, validatePs, type PsFlags, type PsOptions } from './options.js';
import { Collector, formatProcessTable, parseProcessList } from './output.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { createProgress } from './progress.js';

export async function runPs(flags: PsFlags, io: CliIo = processIo(), cluster: ClusterDeps = realCluster, now?: Date): Promise<number> {
  const opts = completePs(flags, io.facts);
  validatePs(opts);
  return ps(opts, io, cluster, now);
}

const OWN_CODES = new Set<number>(Object.values(ExitCode).filter((c) => c >= ExitCode.USAGE));

/** A failed `nsdebug-agent ps` as one line: the agent's own words, its exit code if it is one of ours. */
export function psFailure(code: number, stderr: string, agent: AgentPod, target: ResolvedTarget): NsdebugError {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const own = lines.filter((l) => l.startsWith('nsdebug-agent: ')).map((l) => l.slice('nsdebug-agent: '.length));
  explainAgentExit(code, own, agent);
  const said = (own.length ? own : lines).join('; ').slice(0, 500) || `it exited ${code} without a message`;
  const exitCode = (OWN_CODES.has(code) ? code : ExitCode.INTERNAL) as ExitCodeValue;
  return new NsdebugError(
    `the agent on node ${agent.node} could not list the processes of container ${target.container.name} of pod ${target.namespace}/${target.pod}: ${said}`,
    exitCode,
  );
}

export async function ps(opts: PsOptions, io: CliIo, cluster: ClusterDeps, now?: Date): Promise<number> {
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress);
    progress.step(`listing processes through the agent on node ${agent.node}`);
    const stdout = new Collector();
    const stderr = new Collector();
    const code = await new ExecStream(await cluster.execTransport(conn)).run({
      namespace: agent.namespace,
      pod: agent.pod,
      container: agent.container,
      command: [AGENT_EXECUTABLE, ...psArgv({ containerId: target.container.containerId, podUid: target.podUid })],
      stdout,
      stderr,
      tty: false,
      connectTimeoutMs: conn.requestTimeoutMs,
      describe: describeAgent(agent),
      where: conn,
    });
    progress.clear();
    if (code !== 0) throw psFailure(code, stderr.text(), agent, target);
    const processes = parseProcessList(stdout.text(), `the agent on node ${agent.node}`);
    io.stdout.write(opts.output === 'json' ? `${JSON.stringify(processes, null, 2)}\n` : formatProcessTable(processes, now));
    return ExitCode.OK;
  } finally {
    progress.clear();
  }
}
