// The steps every session takes before it reaches the agent, shared by `kubectl nsdebug TARGET`
// and `kubectl nsdebug ps TARGET`: kubeconfig → target pod and container (with the access review
// alongside for pod/NAME) → (in parallel) access review, node check, agent lookup. Refusals come
// in that order of importance: a user who may not exec into the pod hears that first, whatever
// else is wrong.
import { checkExecAccess, type AccessClient } from '../kube/access.js';
import { findAgent, type AgentClient, type AgentPod } from '../kube/agent.js';
import type { KubeConfigOptions, KubeConnection } from '../kube/config.js';
import type { SessionClient } from '../kube/debug-session.js';
import type { ExecTransport } from '../kube/exec.js';
import { resolveTarget, type ResolvedTarget, type TargetClient } from '../kube/target.js';
import { checkNode, describeRef } from '../pod.js';
import { targetRef, type TargetOptions } from './options.js';
import type { Progress } from './progress.js';

/** Everything that talks to a cluster, as factories so tests can pass fakes and --help loads none. */
export interface ClusterDeps {
  loadKubeConfig(opts: KubeConfigOptions): Promise<KubeConnection>;
  targetClient(conn: KubeConnection): Promise<TargetClient>;
  accessClient(conn: KubeConnection): Promise<AccessClient>;
  agentClient(conn: KubeConnection): Promise<AgentClient>;
  execTransport(conn: KubeConnection): Promise<ExecTransport>;
  sessionClient(conn: KubeConnection): Promise<SessionClient>;
}

/** The real cluster: client-node, imported on first use. */
export const realCluster: ClusterDeps = {
  loadKubeConfig: async (opts) => (await import('../kube/config.js')).loadKubeConfig(opts),
  targetClient: async (conn) => (await import('../kube/target.js')).createTargetClient(conn),
  accessClient: async (conn) => (await import('../kube/access.js')).createAccessClient(conn),
  agentClient: async (conn) => (await import('../kube/agent.js')).createAgentClient(conn),
  execTransport: async (conn) => (await import('../kube/exec.js')).createExecTransport(conn),
  sessionClient: async (conn) => (await import('../kube/debug-session.js')).createSessionClient(conn),
};

export interface Prepared {
  conn: KubeConnection;
  target: ResolvedTarget;
  agent: AgentPod;
  targets: TargetClient;
}

/**
 * exited: a container that is not running resolves to its last instance (post-mortem sessions);
 * "any": to whatever instance it has, or none (--wait). wholePod: the pod is the target (`ns`).
 */
export async function prepare(
  opts: TargetOptions,
  cluster: ClusterDeps,
  progress: Progress,
  exited: boolean | 'any' = false,
  wholePod = false,
): Promise<Prepared> {
  const ref = targetRef(opts);
  progress.step('reading kubeconfig');
  const conn = await cluster.loadKubeConfig(opts.kube);
  const [targets, access, agents] = await Promise.all([cluster.targetClient(conn), cluster.accessClient(conn), cluster.agentClient(conn)]);

  const accessTo = (pod: string) => checkExecAccess({ namespace: conn.namespace, pod }, access, opts.sessionAuth === true);
  // pod/NAME: its access review needs no answer from the pod read, so both go at once (one round
  // trip fewer); a failed read is still what the user hears first, as before
  const earlyAccess = ref.kind === 'pod' ? accessTo(ref.name) : undefined;
  earlyAccess?.catch(() => {}); // awaited below, once the pod is read: not an unhandled rejection
  progress.step(`resolving ${describeRef(ref)} in namespace ${conn.namespace}`);
  const target = await resolveTarget(
    ref,
    { namespace: conn.namespace, ...(opts.container !== undefined ? { container: opts.container } : {}), exited, wholePod },
    targets,
  );
  for (const note of target.notes) progress.note(note);

  progress.step(`checking access and finding the agent on node ${target.node}`);
  const [allowed, node, agent] = await Promise.allSettled([
    earlyAccess ?? accessTo(target.pod),
    targets.readNode(target.node),
    findAgent(target.node, opts.agentNamespace, agents),
  ]);
  if (allowed.status === 'rejected') throw allowed.reason;
  if (node.status === 'rejected') throw node.reason;
  checkNode(target.podObject, node.value);
  if (agent.status === 'rejected') throw agent.reason;
  return { conn, target, agent: agent.value, targets };
}
