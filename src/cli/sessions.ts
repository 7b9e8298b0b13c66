// `kubectl nsdebug sessions [-A] [-o table|wide|json]` and `sessions kill ID`: who is debugging
// what, from the Lease each agent publishes per live session (one list call, whatever the number
// of nodes), and ending one of them. Options → Complete → Validate → Run, as the other commands.
import { ExitCode, SESSION_ID, type PublishedSession } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import { findAgent, type AgentClient } from '../kube/agent.js';
import { parseRequestTimeout, type KubeConfigOptions, type KubeConnection } from '../kube/config.js';
import type { SessionsClient } from '../kube/sessions.js';
import { formatTable } from '../text.js';
import { escapeLine } from './escape.js';
import { processIo, type CliIo } from './io.js';
import { connectionOptions, DEFAULT_AGENT_NAMESPACE, validateAgentNamespace, type KubeFlags } from './options.js';

export type SessionsOutput = 'table' | 'wide' | 'json';

export interface SessionsFlags extends KubeFlags {
  'all-namespaces'?: boolean;
  output?: string;
  'agent-namespace'?: string;
}

export interface SessionsOptions {
  kube: KubeConfigOptions;
  agentNamespace: string;
  allNamespaces: boolean;
  output: SessionsOutput;
}

export function completeSessions(flags: SessionsFlags): SessionsOptions {
  return {
    kube: { ...connectionOptions(flags), ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}) },
    agentNamespace: flags['agent-namespace'] ?? DEFAULT_AGENT_NAMESPACE,
    allNamespaces: flags['all-namespaces'] === true,
    output: (flags.output ?? 'table') as SessionsOutput,
  };
}

export function validateSessions(opts: SessionsOptions): void {
  validateAgentNamespace(opts.agentNamespace);
  if (!['table', 'wide', 'json'].includes(opts.output)) throw usageError(`-o/--output must be table, wide or json, not "${opts.output}"`);
  if (opts.kube.requestTimeout !== undefined) parseRequestTimeout(opts.kube.requestTimeout);
}

/** The cluster the sessions commands talk to, as factories so tests can pass fakes. */
export interface SessionsCluster {
  loadKubeConfig(opts: KubeConfigOptions): Promise<KubeConnection>;
  sessionsClient(conn: KubeConnection): Promise<SessionsClient>;
  agentClient(conn: KubeConnection): Promise<AgentClient>;
}

export const realSessionsCluster: SessionsCluster = {
  loadKubeConfig: async (opts) => (await import('../kube/config.js')).loadKubeConfig(opts),
  sessionsClient: async (conn) => (await import('../kube/sessions.js')).createSessionsClient(conn),
  agentClient: async (conn) => (await import('../kube/agent.js')).createAgentClient(conn),
};

export async function runSessions(
  flags: SessionsFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'> = processIo(),
  cluster = realSessionsCluster,
  now = Date.now(),
): Promise<number> {
  const opts = completeSessions(flags);
  validateSessions(opts);
  const conn = await cluster.loadKubeConfig(opts.kube);
  const client = await cluster.sessionsClient(conn);
  const sessions = (await client.list(opts.agentNamespace, opts.allNamespaces ? undefined : conn.namespace)).sort((a, b) =>
    a.since.localeCompare(b.since),
  );
  if (opts.output === 'json') io.stdout.write(`${JSON.stringify(sessions, null, 2)}\n`);
  else if (sessions.length) io.stdout.write(formatSessionsTable(sessions, opts.output === 'wide', now));
  else io.stderr.write(`No live sessions${opts.allNamespaces ? '' : ` in namespace ${conn.namespace} (-A for every namespace)`}.\n`);
  return ExitCode.OK;
}

/** How long ago, as kubectl's AGE column: 45s, 12m, 3h, 2d. */
export function formatAge(since: string, now: number): string {
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172_800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
}

const targetOf = (s: PublishedSession) =>
  'node' in s.target
    ? `node/${s.target.node}`
    : `${s.target.namespace}/${s.target.pod}${s.target.container ? `:${s.target.container}` : ''}`;

/** A row per session, like `kubectl get`; wide adds the command and how it was authorized. */
export function formatSessionsTable(sessions: PublishedSession[], wide: boolean, now: number): string {
  const header = ['ID', 'USER', 'TARGET', 'NODE', 'AGE', 'TTY', 'RECORDED', ...(wide ? ['VIA', 'COMMAND'] : [])];
  const rows = sessions.map((s) => [
    s.id,
    // exec: the API server's audit log names who ran it; a DebugSession's requester is pinned by admission
    s.requester ?? '(exec)',
    targetOf(s) + (s.privileged ? ' (privileged)' : ''),
    s.node,
    formatAge(s.since, now),
    s.tty ? 'yes' : 'no',
    s.recording ?? 'no',
    ...(wide ? [s.debugSession ? `DebugSession ${s.debugSession}` : 'exec', s.command.length ? s.command.join(' ') : '(shell)'] : []),
  ]);
  // what agents publish is shown, never obeyed by the terminal
  return formatTable(
    header,
    rows.map((r) => r.map(escapeLine)),
  );
}

export interface KillFlags extends Omit<KubeFlags, 'namespace'> {
  id?: string;
  'agent-namespace'?: string;
}

export async function runSessionsKill(
  flags: KillFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'> = processIo(),
  cluster = realSessionsCluster,
): Promise<number> {
  const id = flags.id ?? '';
  const agentNamespace = flags['agent-namespace'] ?? DEFAULT_AGENT_NAMESPACE;
  if (!SESSION_ID.test(id))
    throw usageError(`name a session by its ID (10 hex digits, as \`kubectl nsdebug sessions\` lists them), not "${id.slice(0, 40)}"`);
  validateAgentNamespace(agentNamespace);
  const conn = await cluster.loadKubeConfig(connectionOptions(flags));
  const client = await cluster.sessionsClient(conn);
  const session = await client.get(agentNamespace, id);
  if (!session) throw new NsdebugError(`no live session ${id} (see \`kubectl nsdebug sessions -A\`)`, ExitCode.NOT_FOUND);
  // a DebugSession's session ends when its object goes (the agent revokes it); RBAC on the object decides
  if (session.debugSession) await client.revoke(session.debugSession);
  else await client.killThroughAgent(await findAgent(session.node, agentNamespace, await cluster.agentClient(conn)), id);
  io.stderr.write(`${escapeLine(`session ${id} (${targetOf(session)}, node ${session.node}) ended`)}\n`);
  return ExitCode.OK;
}
