// Who is debugging what, over the API: the Lease each agent publishes per live session, listed in
// one call (paged) whatever the cluster's size, and a session ended — by deleting its DebugSession
// (session authorization: the agent revokes it) or by `nsdebug-agent kill` on its node's agent.
import {
  agentCommand,
  DEBUG_SESSION,
  ExitCode,
  SESSION_LABELS,
  sessionLeaseName,
  type AgentRequest,
  type PublishedSession,
} from '../contract.js';
import { NsdebugError } from '../errors.js';
import { oneLine } from '../text.js';
import type { AgentPod } from './agent.js';
import { apiStatusCode, clientNode, describeApiError, listAllPages, type KubeConnection } from './config.js';
import { Collector, createExecTransport, ExecStream } from './exec.js';

export interface SessionsClient {
  /** the live sessions the agents in agentNamespace publish; with targetNamespace, only those with a target there */
  list(agentNamespace: string, targetNamespace?: string): Promise<PublishedSession[]>;
  /** one live session by ID, or undefined */
  get(agentNamespace: string, id: string): Promise<PublishedSession | undefined>;
  /** end a session through its agent (`nsdebug-agent kill`) */
  killThroughAgent(agent: AgentPod, id: string): Promise<void>;
  /** end a DebugSession's session by deleting the object (the agent watches it) */
  revoke(debugSession: string): Promise<void>;
  /** a recorded session's recording, from the agent of its node (`nsdebug-agent recording`) */
  recording(agent: AgentPod, id: string): Promise<Buffer>;
}

/** The session a Lease publishes, or undefined when its annotation is not one. */
export function sessionOfLease(lease: { metadata?: { annotations?: Record<string, string> } }): PublishedSession | undefined {
  const text = lease.metadata?.annotations?.[SESSION_LABELS.session];
  if (!text) return undefined;
  try {
    const s = JSON.parse(text) as PublishedSession;
    return typeof s.id === 'string' && typeof s.node === 'string' && typeof s.since === 'string' && s.target ? s : undefined;
  } catch {
    return undefined;
  }
}

const forbidden = (namespace: string) =>
  new NsdebugError(
    `you may not list the session leases in namespace ${namespace}: ask your cluster admin to bind the nsdebug-user role there (or nsdebug-session-viewer with session authorization)`,
    ExitCode.FORBIDDEN,
  );

export async function createSessionsClient(conn: KubeConnection): Promise<SessionsClient> {
  /** One request of the agent on a node, by exec: its exit code, stdout, and what it said on stderr. */
  const agentExec = async (agent: AgentPod, request: AgentRequest) => {
    const stdout = new Collector();
    const stderr = new Collector();
    const code = await new ExecStream(await createExecTransport(conn)).run({
      namespace: agent.namespace,
      pod: agent.pod,
      container: agent.container,
      command: agentCommand(request),
      stdout,
      stderr,
      tty: false,
      connectTimeoutMs: conn.requestTimeoutMs,
      describe: `the nsdebug agent pod ${agent.namespace}/${agent.pod}`,
      where: conn,
    });
    return { code, stdout: stdout.bytes(), said: oneLine(stderr.text()).replace(/^nsdebug-agent: /, '') || `exit ${code}` };
  };
  const k8s = await clientNode();
  const coordination = conn.kc.makeApiClient(k8s.CoordinationV1Api);
  const custom = conn.kc.makeApiClient(k8s.CustomObjectsApi);
  return {
    list: async (agentNamespace, targetNamespace) => {
      const labelSelector = [
        `${SESSION_LABELS.session}=true`,
        ...(targetNamespace ? [`${SESSION_LABELS.targetNamespace}=${targetNamespace}`] : []),
      ].join(',');
      try {
        const leases = await listAllPages((page) =>
          coordination.listNamespacedLease({ namespace: agentNamespace, labelSelector, ...page }),
        );
        return leases.flatMap((lease) => sessionOfLease(lease) ?? []);
      } catch (err) {
        if (apiStatusCode(err) === 403) throw forbidden(agentNamespace);
        throw describeApiError(err, `list the live sessions in namespace ${agentNamespace}`, conn);
      }
    },
    get: async (agentNamespace, id) => {
      try {
        return sessionOfLease(await coordination.readNamespacedLease({ namespace: agentNamespace, name: sessionLeaseName(id) }));
      } catch (err) {
        if (apiStatusCode(err) === 404) return undefined;
        if (apiStatusCode(err) === 403) throw forbidden(agentNamespace);
        throw describeApiError(err, `read session ${id}`, conn);
      }
    },
    killThroughAgent: async (agent, id) => {
      const { code, said } = await agentExec(agent, { operation: 'kill', session: id });
      if (code === ExitCode.NOT_FOUND) throw new NsdebugError(`session ${id} has ended already`, ExitCode.NOT_FOUND);
      if (code !== 0) throw new NsdebugError(`the agent on node ${agent.node} could not end session ${id}: ${said}`, ExitCode.INTERNAL);
    },
    recording: async (agent, id) => {
      const { code, said, stdout } = await agentExec(agent, { operation: 'recording', session: id });
      if (code === ExitCode.NOT_FOUND) throw new NsdebugError(`the agent on node ${agent.node}: ${said}`, ExitCode.NOT_FOUND);
      if (code !== 0) throw new NsdebugError(`the agent on node ${agent.node} could not read recording ${id}: ${said}`, ExitCode.INTERNAL);
      return stdout;
    },
    revoke: async (debugSession) => {
      const [namespace = '', name = ''] = debugSession.split('/');
      try {
        await custom.deleteNamespacedCustomObject({
          group: DEBUG_SESSION.group,
          version: DEBUG_SESSION.version,
          namespace,
          plural: DEBUG_SESSION.plural,
          name,
        });
      } catch (err) {
        if (apiStatusCode(err) === 404)
          throw new NsdebugError(`session's DebugSession ${debugSession} is gone: the session has ended already`, ExitCode.NOT_FOUND);
        if (apiStatusCode(err) === 403)
          throw new NsdebugError(
            `you may not delete DebugSession ${debugSession}, which ending this session takes (delete debugsessions.${DEBUG_SESSION.group} in namespace ${namespace})`,
            ExitCode.FORBIDDEN,
          );
        throw describeApiError(err, `delete DebugSession ${debugSession}`, conn);
      }
    },
  };
}
