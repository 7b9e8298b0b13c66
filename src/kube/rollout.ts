// Waiting for the agent DaemonSet's rollout after an install: `kubectl rollout status`, plus the
// node and reason of any agent pod that cannot start, so that an image pull failure or a crash
// loop fails at once instead of at the timeout. A timeout with some agents ready is DEGRADED (the
// ready nodes can host sessions), not AGENT_UNAVAILABLE. The judgement is pure (rolloutState,
// summarizeAgents); the API sits behind RolloutClient, three calls a poll on any number of nodes.
// Uninstall's wait shares the clock and the wording of durations.
import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { AGENT_CONTAINER, IMAGE_PULL_REASONS, agentPodState, currentPods, nodeOfPod, type AgentPodState } from '../agent-health.js';
import type { PodLike } from '../pod.js';
import { tally } from '../text.js';
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

/** What the wait reads from the API server: three calls a poll, whatever the number of nodes. */
export interface RolloutClient {
  readDaemonSet(namespace: string, name: string): Promise<DaemonSetLike | undefined>;
  listAgentPods(namespace: string): Promise<PodLike[]>;
  /** the Warning events of the namespace's pods (probe and pull failures): pod name → messages, oldest first */
  agentPodWarnings(namespace: string): Promise<Map<string, string[]>>;
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
  const judged = currentPods(pods).map((pod) => {
    const podImage = pod.spec?.containers?.find((c) => c.name === AGENT_CONTAINER)?.image;
    // a pod of an earlier install, about to be replaced: its troubles are not this install's
    if (image && podImage && podImage !== image)
      return {
        state: { node: nodeOfPod(pod), pod: pod.metadata?.name ?? '?', ready: false, state: `being replaced (it runs ${podImage})` },
      };
    const state = agentPodState(pod);
    // events only while a pod is not ready: they carry the probe's or the pull's own words
    return { state, ...(!state.ready && state.state !== 'terminating' ? { waiting: pod } : {}) };
  });
  // one list for all pods
  const warnings = judged.some((j) => j.waiting) ? await client.agentPodWarnings(namespace) : new Map<string, string[]>();
  const nodes = judged.map(({ waiting, state }) => {
    const events = waiting && warnings.get(waiting.metadata?.name ?? '');
    return waiting && events?.length ? agentPodState(waiting, events) : state;
  });
  return rolloutState(ds, nodes);
}

/** Above this many nodes, progress is one line of counts instead of a line per node. */
export const PER_NODE_PROGRESS_MAX = 10;
/** How many nodes a summary names before "and N more". */
export const NAMED_NODES = 5;
/** How many states a summary counts before "N other". */
const STATE_GROUPS = 4;
/** A longer state is cut in a summary: a probe's words may be long, the line stays one line. */
const STATE_MAX = 160;

const byName = new Intl.Collator('en', { numeric: true }).compare;
const clip = (text: string) => (text.length > STATE_MAX ? `${text.slice(0, STATE_MAX - 1)}…` : text);
/** "a, b, c and 2 more"; with sep "; ", "a; b; c; and 2 more" */
const listSome = (items: string[], limit: number, sep: string) =>
  items.length > limit ? `${items.slice(0, limit).join(sep)}${sep === ', ' ? ' ' : sep}and ${items.length - limit} more` : items.join(sep);

/** Agents counted by state, for one line about many nodes; see summarizeAgents. */
export interface AgentsSummary {
  /** the nodes judged */
  total: number;
  ready: number;
  /** the states of the agents that are not ready, with counts, largest first, at most 4 then "N other":
   * "3 running, not ready (readiness check pending); 2 ContainerCreating"; "" when all are ready */
  states: string;
  /** the nodes whose agent is not ready, in name order, at most `limit` named: "n7, n9, n11 and 2 more"; "" when all are ready */
  nodes: string;
}

/** Agents' states counted and their not-ready nodes named, bounded whatever the number of nodes. Pure. */
export function summarizeAgents(nodes: AgentPodState[], limit = NAMED_NODES): AgentsSummary {
  const waiting = nodes.filter((n) => !n.ready).sort((a, b) => byName(a.node, b.node));
  const groups = tally(waiting.map((n) => clip(n.state)));
  const other = groups.slice(STATE_GROUPS).reduce((sum, [, count]) => sum + count, 0);
  return {
    total: nodes.length,
    ready: nodes.length - waiting.length,
    states: [...groups.slice(0, STATE_GROUPS).map(([state, count]) => `${count} ${state}`), ...(other ? [`${other} other`] : [])].join(
      '; ',
    ),
    nodes: listSome(
      waiting.map((n) => n.node),
      limit,
      ', ',
    ),
  };
}

/** Every node the DaemonSet wants, with or without its pod yet. */
const nodeCount = (state: RolloutState) => Math.max(state.desired, state.nodes.length);
const withoutPod = (state: RolloutState) => {
  const missing = state.desired - state.nodes.length;
  return missing > 0 ? `${missing} node(s) without an agent pod yet` : '';
};

/** The progress line of a wait on many nodes: "agents ready on 512 of 1000 nodes (488 ContainerCreating)". */
function progressSummary(state: RolloutState): string {
  const rest = [summarizeAgents(state.nodes).states, withoutPod(state)].filter(Boolean).join('; ');
  return `agents ready on ${state.ready} of ${nodeCount(state)} nodes${rest ? ` (${rest})` : ''}`;
}

/**
 * The wait's end without a rollout: DEGRADED when some agents are ready (sessions to their nodes
 * work), else AGENT_UNAVAILABLE; either names at most NAMED_NODES nodes.
 */
function timeoutFailure(namespace: string, state: RolloutState, timeoutMs: number): NsdebugError {
  const total = nodeCount(state);
  const after = formatDuration(timeoutMs);
  if (state.ready > 0 && state.ready < total) {
    const s = summarizeAgents(state.nodes);
    const which = [s.states && `${s.states} (nodes ${s.nodes})`, withoutPod(state)].filter(Boolean).join('; ');
    return new NsdebugError(
      `the agent is ready on ${state.ready} of ${total} node(s) after ${after}; not ready: ${which}; sessions to the ready nodes work; see \`kubectl nsdebug status\``,
      ExitCode.DEGRADED,
    );
  }
  const waiting = state.nodes
    .filter((n) => !n.ready)
    .sort((a, b) => byName(a.node, b.node))
    .map((n) => `${n.node}: ${n.state}`);
  const detail =
    [listSome(waiting, NAMED_NODES, '; '), withoutPod(state)].filter(Boolean).join('; ') || 'the DaemonSet has not reported its status';
  return new NsdebugError(
    `the agent is not ready on ${total - state.ready} of ${total} node(s) after ${after}: ${detail}; see \`kubectl -n ${namespace} describe daemonset ${AGENT_DAEMONSET}\` or wait longer with --timeout`,
    ExitCode.AGENT_UNAVAILABLE,
  );
}

/**
 * Poll until every node's agent is ready; fail at once when one cannot start, naming it. Each poll
 * is at most three API calls (the DaemonSet, its pods, their Warning events), and on more than
 * PER_NODE_PROGRESS_MAX nodes progress is one line of counts, printed when it changes.
 */
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
  let summary = '';
  for (;;) {
    const state = await observe(namespace, image, client);
    if (io.progress && nodeCount(state) > PER_NODE_PROGRESS_MAX) {
      const line = progressSummary(state);
      if (line !== summary) io.progress((summary = line));
    } else if (io.progress) {
      for (const n of state.nodes) {
        if (shown.get(n.node) === n.state) continue;
        shown.set(n.node, n.state);
        io.progress(`${n.node}: ${n.pod} ${n.state}`);
      }
    }
    if (state.failure) throw new NsdebugError(`${state.failure}${imageHint(state)}`, ExitCode.AGENT_UNAVAILABLE);
    if (state.done) return state;
    if (now() >= deadline) throw timeoutFailure(namespace, state, timeoutMs);
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
