// `kubectl nsdebug status`: Options → Complete → Validate → Run, as the session's: the flags
// become StatusOptions, checked without I/O, then src/kube/status.ts collects a row per node
// and this prints them: a summary (counts, and the nodes that cannot host a session), the full
// table (-o wide) or JSON, then the session authorization line; the exit code says "degraded".
import { ExitCode } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import { parseRequestTimeout, type KubeConfigOptions, type KubeConnection } from '../kube/config.js';
import { cliVersion } from '../kube/manifests.js';
import { summarizeAgents } from '../kube/rollout.js';
import type { StatusClient, StatusReport } from '../kube/status.js';
import { formatTable, tally } from '../text.js';
import { escapeLine } from './escape.js';
import { processIo, type CliIo } from './io.js';
import { connectionOptions, DEFAULT_AGENT_NAMESPACE, validateAgentNamespace, type KubeFlags } from './options.js';

/** How status prints: a summary that reads the same on 3 nodes and on 3,000, a row per node, or JSON. */
export type StatusOutput = 'summary' | 'wide' | 'json';
export const STATUS_OUTPUTS: readonly StatusOutput[] = ['summary', 'wide', 'json'];

/** `kubectl nsdebug status` as parsed; -n/--namespace is the agent's. */
export interface StatusFlags extends KubeFlags {
  output?: string;
}

export interface StatusOptions {
  namespace: string;
  output: StatusOutput;
  kube: KubeConfigOptions;
}

export function completeStatus(flags: StatusFlags): StatusOptions {
  return {
    namespace: flags.namespace ?? DEFAULT_AGENT_NAMESPACE,
    output: (flags.output ?? 'summary') as StatusOutput,
    kube: connectionOptions(flags),
  };
}

export function validateStatus(opts: StatusOptions): void {
  validateAgentNamespace(opts.namespace);
  if (!STATUS_OUTPUTS.includes(opts.output)) throw usageError(`-o/--output must be wide or json, not "${opts.output}"`);
  if (opts.kube.requestTimeout !== undefined) parseRequestTimeout(opts.kube.requestTimeout);
}

/** The cluster status talks to, as factories so tests can pass fakes. */
export interface StatusCluster {
  loadKubeConfig(opts: KubeConfigOptions): Promise<KubeConnection>;
  statusClient(conn: KubeConnection): Promise<StatusClient>;
}

export const realStatusCluster: StatusCluster = {
  loadKubeConfig: async (opts) => (await import('../kube/config.js')).loadKubeConfig(opts),
  statusClient: async (conn) => (await import('../kube/status.js')).createStatusClient(conn),
};

/**
 * Prints the report, then fails with DEGRADED when some node cannot host a session and
 * AGENT_UNAVAILABLE when none can, so scripts and probes read the state from the exit code.
 */
export async function runStatus(
  flags: StatusFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'> = processIo(),
  cluster = realStatusCluster,
): Promise<void> {
  const opts = completeStatus(flags);
  validateStatus(opts);
  const conn = await cluster.loadKubeConfig(opts.kube);
  const { collectStatus } = await import('../kube/status.js');
  const report = await collectStatus({ namespace: opts.namespace, cliVersion: cliVersion() }, await cluster.statusClient(conn));
  if (opts.output === 'json') io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    io.stdout.write(opts.output === 'wide' ? formatStatusTable(report) : formatStatusSummary(report));
    io.stdout.write(`${sessionAuthLine(report)}\n`);
  }
  const failure = statusFailure(report, opts.output);
  if (failure) throw failure;
}

/** The nodes as the agents' states: what summarizeAgents counts ("ready" when a session can start). */
const asAgents = (report: StatusReport) =>
  report.nodes.map((n) => ({ node: n.node, pod: n.pod ?? '-', ready: n.hostsSessions, state: n.problems[0] ?? n.state }));

/** "containerd 2.4.2 on 1000, containerd 1.6.20 on 1": counts of a column, largest first. */
const countsOf = (values: string[]) =>
  tally(values)
    .map(([v, n]) => `${v} on ${n}`)
    .join(', ');

/** At most this many nodes that cannot host a session are listed by name in the summary. */
export const LISTED_NODES = 20;

/** The default view: counts by state, version, runtime and cgroup layout, and the nodes that need a look. */
export function formatStatusSummary(report: StatusReport): string {
  const { cli, nodes } = report;
  const agents = summarizeAgents(asAgents(report), LISTED_NODES);
  const reported = nodes.filter((n) => n.version !== undefined);
  const lines = [
    `nodes: ${nodes.length}; ready to host a session: ${agents.ready}${agents.states ? `; not: ${agents.states}` : ''}`,
    `agent versions: ${reported.length ? countsOf(reported.map((n) => `${n.version} (contract ${n.contractVersion})`)) : 'none reported'}; this CLI: ${cli.version} (contract ${cli.contractVersion})`,
    `runtimes: ${countsOf(nodes.map((n) => n.runtimeVersion)) || '-'}`,
    `cgroups: ${reported.length ? countsOf(reported.map((n) => n.cgroup ?? '-')) : '-'}`,
  ].map(escapeLine);
  const troubled = nodes.filter((n) => !n.hostsSessions);
  let out = `${lines.join('\n')}\n`;
  if (troubled.length) {
    out += `\ncannot host a session (${troubled.length}):\n`;
    const rows = troubled.slice(0, LISTED_NODES).map((n) => [n.node, n.pod ?? '<none>', n.problems.join('; ')].map(escapeLine));
    out += formatTable(['NODE', 'AGENT POD', 'PROBLEMS'], rows);
    if (troubled.length > LISTED_NODES) out += `… and ${troubled.length - LISTED_NODES} more: kubectl nsdebug status -o wide\n`;
    out += '\n';
  }
  return out;
}

/** A row per node, like `kubectl get`; PROBLEMS only when a node has one. */
export function formatStatusTable(report: StatusReport): string {
  const { cli } = report;
  const mark = (agent: string | number | undefined, mine: string | number) =>
    agent === undefined ? '-' : agent === mine ? String(agent) : `${agent} (cli ${mine})`;
  const rows = report.nodes.map((n) => [
    n.node,
    n.pod ?? '<none>',
    n.pod ? (n.ready ? 'yes' : 'no') : '-',
    mark(n.version, cli.version),
    mark(n.contractVersion, cli.contractVersion),
    n.runtime,
    n.cgroup ?? '-',
    n.kernel,
    n.problems.join('; '),
  ]);
  const header = ['NODE', 'AGENT POD', 'READY', 'VERSION', 'CONTRACT', 'RUNTIME', 'CGROUP', 'KERNEL', 'PROBLEMS'];
  const withProblems = rows.some((r) => r[8]);
  // node names, agent and kubelet messages: shown, never obeyed by the terminal
  const cells = rows.map((r) => (withProblems ? r : r.slice(0, -1)).map(escapeLine));
  return formatTable(withProblems ? header : header.slice(0, -1), cells);
}

/** The line under the table on session authorization. */
export function sessionAuthLine({ sessionAuth }: Pick<StatusReport, 'sessionAuth'>): string {
  if (!sessionAuth.resource) return 'session authorization: not installed (kubectl nsdebug install --session-auth)';
  if (sessionAuth.policy === false)
    return 'session authorization: BROKEN — the DebugSession resource is served but its admission policy is not bound, so requesters are not pinned; run kubectl nsdebug install --session-auth';
  return `session authorization: installed${sessionAuth.policy === 'unknown' ? ' (its admission policy is not visible to you)' : ''}`;
}

/** The error status ends with when not every node can host a session (after its output), or undefined. */
export function statusFailure(report: StatusReport, output: StatusOutput): NsdebugError | undefined {
  const { nodes, namespace } = report;
  if (nodes.length && nodes.every((n) => !n.pod))
    return new NsdebugError(
      `nsdebug is not installed in namespace ${namespace}: run \`kubectl nsdebug install\``,
      ExitCode.AGENT_UNAVAILABLE,
    );
  const bad = nodes.filter((n) => !n.hostsSessions).length;
  if (!bad) return undefined;
  const see = output === 'wide' ? 'see PROBLEMS' : output === 'json' ? 'see their problems' : 'see the list above';
  return new NsdebugError(
    bad === nodes.length
      ? `no node can host a session now: ${see}`
      : `degraded: ${bad} of ${nodes.length} node(s) cannot host a session now (the other ${nodes.length - bad} can): ${see}`,
    bad === nodes.length ? ExitCode.AGENT_UNAVAILABLE : ExitCode.DEGRADED,
  );
}
