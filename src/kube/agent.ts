// The agent pod on the target's node: the DaemonSet's label plus spec.nodeName, so the lookup
// costs one small list whatever the cluster's size. No agent, or one that is not ready, is
// refused here with what to run next (install, status).
import { AGENT_CONTAINER, agentPodState, currentPods } from '../agent-health.js';
import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { PodLike } from '../pod.js';
import { apiClients, apiStatusCode, describeApiError, type KubeConnection } from './config.js';
import { AGENT_SELECTOR } from './manifests.js';

export interface AgentClient {
  /** the agent pods (DaemonSet label) bound to node, in namespace */
  listAgentPods(namespace: string, node: string): Promise<PodLike[]>;
}

export interface AgentPod {
  namespace: string;
  pod: string;
  container: string;
  node: string;
}

/** The ready agent pod on node, or AGENT_UNAVAILABLE saying what to do. */
export async function findAgent(node: string, namespace: string, client: AgentClient): Promise<AgentPod> {
  const [pod] = currentPods(await client.listAgentPods(namespace, node));
  if (!pod) {
    throw new NsdebugError(
      `no nsdebug agent on node ${node} (looked in namespace ${namespace}): run \`kubectl nsdebug install\`, or pass --agent-namespace if it runs elsewhere`,
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
  const state = agentPodState(pod);
  if (!state.ready) {
    throw new NsdebugError(
      `the nsdebug agent on node ${node} (pod ${namespace}/${state.pod}) is not ready: ${state.state}; see \`kubectl nsdebug status\``,
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
  return { namespace, pod: state.pod, container: AGENT_CONTAINER, node };
}

/** AgentClient over the API. */
export async function createAgentClient(conn: KubeConnection): Promise<AgentClient> {
  const { core } = await apiClients(conn);
  return {
    listAgentPods: async (namespace, node) => {
      try {
        return (await core.listNamespacedPod({ namespace, labelSelector: AGENT_SELECTOR, fieldSelector: `spec.nodeName=${node}` })).items;
      } catch (err) {
        if (apiStatusCode(err) === 403) {
          throw new NsdebugError(
            `you may not list pods in namespace ${namespace} to find the nsdebug agent on node ${node}; ask your cluster admin to bind the nsdebug-user role`,
            ExitCode.FORBIDDEN,
          );
        }
        throw describeApiError(err, `find the nsdebug agent on node ${node}`, conn);
      }
    },
  };
}
