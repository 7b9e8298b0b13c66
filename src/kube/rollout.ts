// Waiting for the agent DaemonSet's rollout after an install: `kubectl rollout status`, plus the
// node and reason of any agent pod that cannot start, so that an image pull failure or a crash
// loop fails at once instead of at the timeout. The judgement is pure (rolloutState); the API
// sits behind RolloutClient. Uninstall's wait shares the clock and the wording of durations.
import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { AGENT_CONTAINER, IMAGE_PULL_REASONS, agentPodState, currentPods, nodeOfPod, type AgentPodState } from '../agent-health.js';
import type { PodLike } from '../pod.js';
import { AGENT_DAEMONSET } from './manifests.js';

/** The subset of a DaemonSet the rollout judgement reads (client-node's V1DaemonSet fits). */
export interface DaemonSetLike {
  metadata?: { generation?: number };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    numberReady?: number;
  };
}

export interface RolloutState {
  done: boolean;
  desired: number;
  ready: number;
  nodes: AgentPodState[];
  /** the first agent that cannot start, as one line naming its node */
  failure?: string;
}

/** kubectl rollout status for a DaemonSet, plus the per-node reasons it does not give. */
export function rolloutState(ds: DaemonSetLike | undefined, nodes: AgentPodState[]): RolloutState {
  const s = ds?.status ?? {};
  const desired = s.desiredNumberScheduled ?? 0;
  const observed = (s.observedGeneration ?? 0) >= (ds?.metadata?.generation ?? 1);
  const done =
    Boolean(ds) &&
    observed &&
    (s.updatedNumberScheduled ?? 0) >= desired &&
    (s.numberAvailable ?? 0) >= desired &&
    nodes.every((n) => n.ready || n.state === 'terminating');
  // before the controller has seen this generation, pods may be the previous install's
  const stuck = observed ? nodes.find((n) => n.failure) : undefined;
  return {
    done,
    desired,
    ready: nodes.filter((n) => n.ready).length,
    nodes,
    ...(stuck ? { failure: `agent on node ${stuck.node} (pod ${stuck.pod}) cannot start: ${stuck.failure}` } : {}),
  };
}

/** What the wait reads from the API server. */
export interface RolloutClient {
  readDaemonSet(namespace: string, name: string): Promise<DaemonSetLike | undefined>;
  listAgentPods(namespace: string): Promise<PodLike[]>;
  /** messages of the pod's Warning events, oldest first (probe and pull failures) */
  podWarnings(namespace: string, pod: string): Promise<string[]>;
}

/** Progress and the clock of a wait; tests pass their own sleep and now. */
export interface WaitIO {
  /** progress, on stderr; undefined when stderr is not a terminal */
  progress?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export const POLL_MS = 1000;
export const DEFAULT_TIMEOUT_MS = 120_000;

/** io's sleep and now, else the real ones. */
export const clockOf = (io: WaitIO) => ({
  sleep: io.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
  now: io.now ?? Date.now,
});

/** A --timeout as messages say it: "2m", "90s", "1.5s". */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 100) / 10}s`;
}

async function observe(namespace: string, image: string | undefined, client: RolloutClient): Promise<RolloutState> {
  const [ds, pods] = await Promise.all([client.readDaemonSet(namespace, AGENT_DAEMONSET), client.listAgentPods(namespace)]);
  const current = currentPods(pods);
  const nodes = await Promise.all(
    current.map(async (pod) => {
      const podImage = pod.spec?.containers?.find((c) => c.name === AGENT_CONTAINER)?.image;
      // a pod of an earlier install, about to be replaced: its troubles are not this install's
      if (image && podImage && podImage !== image)
        return { node: nodeOfPod(pod), pod: pod.metadata?.name ?? '?', ready: false, state: `being replaced (it runs ${podImage})` };
      const first = agentPodState(pod);
      // events only for pods that are not ready: they carry the probe's or the pull's own words
      const events = first.ready || first.state === 'terminating' ? [] : await client.podWarnings(namespace, pod.metadata?.name ?? '');
      return events.length ? agentPodState(pod, events) : first;
    }),
  );
  return rolloutState(ds, nodes);
}

/** Poll until every node's agent is ready; fail at once when one cannot start, naming it. */
export async function waitForRollout(
  namespace: string,
  timeoutMs: number,
  client: RolloutClient,
  io: WaitIO,
  image?: string,
): Promise<RolloutState> {
  const { sleep, now } = clockOf(io);
  const deadline = now() + timeoutMs;
  const shown = new Map<string, string>();
  for (;;) {
    const state = await observe(namespace, image, client);
    if (io.progress) {
      for (const n of state.nodes) {
        if (shown.get(n.node) === n.state) continue;
        shown.set(n.node, n.state);
        io.progress(`${n.node}: ${n.pod} ${n.state}`);
      }
    }
    if (state.failure) throw new NsdebugError(`${state.failure}${imageHint(state)}`, ExitCode.AGENT_UNAVAILABLE);
    if (state.done) return state;
    if (now() >= deadline) {
      const waiting = state.nodes.filter((n) => !n.ready).map((n) => `${n.node}: ${n.state}`);
      const missing = state.desired - state.nodes.length;
      const detail =
        [...waiting, ...(missing > 0 ? [`${missing} node(s) without an agent pod yet`] : [])].join('; ') ||
        'the DaemonSet has not reported its status';
      throw new NsdebugError(
        `the agent is not ready on ${state.desired - state.ready} of ${state.desired} node(s) after ${formatDuration(timeoutMs)}: ${detail}; see \`kubectl -n ${namespace} describe daemonset ${AGENT_DAEMONSET}\` or wait longer with --timeout`,
        ExitCode.AGENT_UNAVAILABLE,
      );
    }
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - now())));
  }
}

function imageHint(state: RolloutState): string {
  const stuck = state.nodes.find((n) => n.failure);
  const reason = stuck?.failure?.split(':')[0] ?? '';
  return IMAGE_PULL_REASONS.has(reason)
    ? "; make the image available to the node (push it, or import it into the node's runtime) or pass --image"
    : '';
}
