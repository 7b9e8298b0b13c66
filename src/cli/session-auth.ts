// --session-auth: one stream through a DebugSession. The CLI creates it in the target pod's
// namespace (RBAC decides; admission pins the requester), reaches the agent by port-forward,
// presents the secret only this process knows, and deletes the DebugSession when the stream ends,
// however it ends. Sessions (src/cli/debug.ts) and queries (ps, ns, cp) share it.
import { CONTRACT_VERSION, SESSION_PORT, type SessionAsk } from '../contract.js';
import type { AgentPod } from '../kube/agent.js';
import type { KubeConnection } from '../kube/config.js';
import { newSessionSecret } from '../kube/debug-session.js';
import { SessionStream, type SessionStreamRequest } from '../kube/session-stream.js';
import type { ClusterDeps } from './prepare.js';

/** The local side of the stream: everything but where it goes. */
export type SessionLocal = Omit<SessionStreamRequest, 'namespace' | 'pod' | 'port' | 'hello' | 'connectTimeoutMs' | 'where'>;

export async function streamThroughDebugSession(
  cluster: ClusterDeps,
  conn: KubeConnection,
  agent: AgentPod,
  namespace: string,
  ask: SessionAsk,
  local: SessionLocal,
  warn: (line: string) => void,
): Promise<number> {
  const sessions = await cluster.sessionClient(conn);
  const { secret, secretHash } = newSessionSecret();
  const name = await sessions.create(namespace, { ...ask, requester: await sessions.whoAmI(), secretHash });
  try {
    const stream = new SessionStream(await cluster.execTransport(conn));
    return await stream.run({
      ...local,
      namespace: agent.namespace,
      pod: agent.pod,
      port: SESSION_PORT,
      hello: { contract: CONTRACT_VERSION, namespace, name, secret },
      connectTimeoutMs: conn.requestTimeoutMs,
      where: conn,
    });
  } finally {
    await sessions.remove(namespace, name).catch((err: Error) => warn(`warning: ${err.message}`));
  }
}
