// `kubectl nsdebug status`: Options → Complete → Validate → Run, as the session's: the flags
// become StatusOptions, checked without I/O, then src/kube/status.ts collects a row per node
// and this prints them (a table and the session authorization line, or JSON).
import { parseRequestTimeout, type KubeConfigOptions, type KubeConnection } from '../kube/config.js';
import { cliVersion } from '../kube/manifests.js';
import type { StatusClient, StatusReport } from '../kube/status.js';
import { formatTable } from '../text.js';
import { escapeLine } from './escape.js';
import { processIo, type CliIo } from './io.js';
import {
  connectionOptions,
  DEFAULT_AGENT_NAMESPACE,
  validateAgentNamespace,
  validateOutput,
  type KubeFlags,
  type OutputFormat,
} from './options.js';

/** `kubectl nsdebug status` as parsed; -n/--namespace is the agent's. */
export interface StatusFlags extends KubeFlags {
  output?: string;
}

export interface StatusOptions {
  namespace: string;
  output: OutputFormat;
  kube: KubeConfigOptions;
}

export function completeStatus(flags: StatusFlags): StatusOptions {
  return {
    namespace: flags.namespace ?? DEFAULT_AGENT_NAMESPACE,
    output: (flags.output ?? 'table') as OutputFormat,
    kube: connectionOptions(flags),
  };
}

export function validateStatus(opts: StatusOptions): void {
  validateAgentNamespace(opts.namespace);
  validateOutput(opts.output);
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
  if (opts.output === 'json') {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  io.stdout.write(formatStatusTable(report));
  io.stdout.write(`${sessionAuthLine(report)}\n`);
  const hint = statusHint(report);
  if (hint) io.stderr.write(`${hint}\n`);
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

/** One line for stderr after the table when something needs doing, or undefined. */
export function statusHint(report: StatusReport): string | undefined {
  if (report.nodes.length && report.nodes.every((n) => !n.pod))
    return `nsdebug is not installed in namespace ${report.namespace}: run \`kubectl nsdebug install\``;
  const bad = report.nodes.filter((n) => n.problems.length).length;
  return bad ? `${bad} of ${report.nodes.length} node(s) cannot host a session now: see PROBLEMS` : undefined;
}
