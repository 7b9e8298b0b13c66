// An agent pod judged without the API: the node it is for, whether it is ready, and if not, why
// in a few words and whether waiting can help. install's rollout, status and a session's agent
// lookup (src/kube/agent.ts) all judge the agent's pods this way. Plain objects in (PodLike).
import type { PodLike } from './pod.js';
import { oneLine } from './text.js';

/** The agent's container in its DaemonSet's pods (deploy/daemonset.yaml). */
export const AGENT_CONTAINER = 'agent';

export interface AgentPodState {
  node: string;
  pod: string;
  ready: boolean;
  /** short words for a progress line: "ready", "ContainerCreating", "ImagePullBackOff: …" */
  state: string;
  /** set when the pod cannot become ready without someone acting: the reason, one line */
  failure?: string;
}

/** The node a DaemonSet pod is for: spec.nodeName once bound, else its metadata.name affinity. */
export function nodeOfPod(pod: PodLike): string {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  for (const term of terms) for (const f of term.matchFields ?? []) if (f.key === 'metadata.name' && f.values?.[0]) return f.values[0];
  return '(unscheduled)';
}

// Waiting reasons that do not resolve by waiting: the user has to change the image or the node.
const STUCK_REASONS = new Set([
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);
export const IMAGE_PULL_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName']);

/** The agent pod's state; `events` (its Warning events' messages, oldest first) sharpen the reason. */
export function agentPodState(pod: PodLike, events: string[] = []): AgentPodState {
  const node = nodeOfPod(pod);
  const name = pod.metadata?.name ?? '?';
  const agent = pod.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER) ?? pod.status?.containerStatuses?.[0];
  const readyCondition = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const base = { node, pod: name };
  if (pod.metadata?.deletionTimestamp) return { ...base, ready: false, state: 'terminating' };
  if (readyCondition?.status === 'True') return { ...base, ready: true, state: 'ready' };
  const waiting = agent?.state?.waiting;
  if (waiting?.reason) {
    const last = agent?.lastState?.terminated;
    const detail =
      waiting.reason === 'CrashLoopBackOff' && last
        ? `the agent exited ${last.exitCode ?? '?'}${last.reason ? ` (${last.reason})` : ''}${last.message ? `: ${oneLine(last.message)}` : ''}`
        : // a pull's real cause is in its event; the back-off message only repeats the image name
          oneLine(
            (IMAGE_PULL_REASONS.has(waiting.reason) && events.filter((m) => /^Failed to pull image/.test(m)).at(-1)) || waiting.message,
          );
    const state = detail ? `${waiting.reason}: ${detail}` : waiting.reason;
    return { ...base, ready: false, state, ...(STUCK_REASONS.has(waiting.reason) ? { failure: state } : {}) };
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False')
    return { ...base, ready: false, state: `unschedulable: ${oneLine(scheduled.message) || scheduled.reason || 'no reason given'}` };
  if (agent?.state?.running) {
    const probe = oneLine(events.filter((m) => /^Readiness probe/.test(m)).at(-1));
    return { ...base, ready: false, state: `running, not ready${probe ? `: ${probe}` : ' (readiness check pending)'}` };
  }
  return { ...base, ready: false, state: pod.status?.phase ?? 'Pending' };
}

/** Per node, the newest pod that is not being deleted (a rolling update briefly has two). */
export function currentPods<P extends PodLike>(pods: P[]): P[] {
  const byNode = new Map<string, P>();
  const created = (p: PodLike) => new Date(p.metadata?.creationTimestamp ?? 0).getTime();
  for (const pod of pods) {
    const node = nodeOfPod(pod);
    const seen = byNode.get(node);
    const better =
      !seen ||
      (Boolean(seen.metadata?.deletionTimestamp) && !pod.metadata?.deletionTimestamp) ||
      (!pod.metadata?.deletionTimestamp && created(pod) > created(seen));
    if (better) byNode.set(node, pod);
  }
  return [...byNode.values()].sort((a, b) => nodeOfPod(a).localeCompare(nodeOfPod(b)));
}
