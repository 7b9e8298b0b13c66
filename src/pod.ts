// A pod as the API returns it, judged without the API: the target as the user typed it
// (TYPE/NAME, -l SELECTOR), which of several pods kubectl would pick, whether its node can be
// served, which container (-c, else the default-container annotation, else the first, as kubectl
// chooses it), and that container's runtime ID and state. Plain objects in, a choice or an
// NsdebugError out. Both halves use it: the CLI resolving a target (src/kube/target.ts) and the
// agent judging a DebugSession's pod (src/agent/debug-session.ts), so it imports nothing of
// src/kube or client-node (eslint.config.js enforces that).
import { ExitCode } from './contract.js';
import { NsdebugError, usageError } from './errors.js';
import { DNS_SUBDOMAIN } from './names.js';
import { oneLine } from './text.js';

// ---- what the user typed ----

export const WORKLOAD_KINDS = ['deployment', 'statefulset', 'daemonset', 'replicaset', 'job', 'service'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export type TargetRef = { kind: 'pod'; name: string } | { kind: WorkloadKind; name: string } | { kind: 'selector'; selector: string };

// kubectl's short names, plurals and resource.group spellings for the kinds nsdebug resolves.
const KIND_NAMES: Record<string, TargetRef['kind']> = {};
for (const [kind, names] of Object.entries({
  pod: ['pod', 'pods', 'po'],
  deployment: ['deployment', 'deployments', 'deploy', 'deployment.apps', 'deployments.apps'],
  statefulset: ['statefulset', 'statefulsets', 'sts', 'statefulset.apps', 'statefulsets.apps'],
  daemonset: ['daemonset', 'daemonsets', 'ds', 'daemonset.apps', 'daemonsets.apps'],
  replicaset: ['replicaset', 'replicasets', 'rs', 'replicaset.apps', 'replicasets.apps'],
  job: ['job', 'jobs', 'job.batch', 'jobs.batch'],
  service: ['service', 'services', 'svc'],
})) {
  for (const name of names) KIND_NAMES[name] = kind as TargetRef['kind'];
}

/** The kind a TYPE spelling names (pod, po, deploy, sts…), if nsdebug resolves it. */
export const kindNamed = (type: string): TargetRef['kind'] | undefined => KIND_NAMES[type.toLowerCase()];

/** The node's name in a node/NAME target (no/, nodes/ too), else undefined. */
export function nodeTargetName(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || !['node', 'nodes', 'no'].includes(text.slice(0, slash).toLowerCase())) return undefined;
  const name = text.slice(slash + 1);
  if (!DNS_SUBDOMAIN.test(name)) {
    throw usageError(`"${name}" is not a valid node name (lowercase letters, digits, '-' and '.'); check the spelling`);
  }
  return name;
}

/** "web-0", "pod/web-0", "deploy/web", "statefulset.apps/db" → a TargetRef; usage errors name the fix. */
export function parseTarget(text: string): TargetRef {
  const slash = text.indexOf('/');
  const typed = slash >= 0;
  const type = typed ? text.slice(0, slash).toLowerCase() : 'pod';
  const name = typed ? text.slice(slash + 1) : text;
  if (nodeTargetName(text) !== undefined) {
    throw usageError(`${text} names a node: \`kubectl nsdebug ${text}\` opens a shell on it; here name a pod, e.g. pod/NAME`);
  }
  const kind = kindNamed(type);
  if (!kind) {
    throw usageError(
      `unknown target type "${type}" in "${text}"; use pod/, deploy/, statefulset/, daemonset/, replicaset/, job/ or service/ followed by a name`,
    );
  }
  if (!name) throw usageError(`target "${text}" has no name; use TYPE/NAME, e.g. pod/web-0`);
  if (!DNS_SUBDOMAIN.test(name)) {
    throw usageError(`"${name}" is not a valid ${kind} name (lowercase letters, digits, '-' and '.'); check the spelling`);
  }
  return { kind, name } as TargetRef;
}

/** A label selector, checked only for what cannot be one; the API server judges the rest. */
export function validateSelector(selector: string): void {
  if (!selector.trim() || !/^[A-Za-z0-9_./\-!=,()\s]+$/.test(selector)) {
    throw usageError(`-l/--selector "${selector}" is not a label selector; use e.g. -l app=web or -l 'tier in (web,api)'`);
  }
}

export const describeRef = (ref: TargetRef) => (ref.kind === 'selector' ? `-l ${ref.selector}` : `${ref.kind}/${ref.name}`);

// ---- the objects read ----

/** The parts of a Pod nsdebug reads; client-node's V1Pod fits. */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    creationTimestamp?: Date | string;
    deletionTimestamp?: Date | string;
  };
  spec?: {
    nodeName?: string;
    os?: { name?: string };
    /** a DaemonSet pod not yet bound names its node here (see src/agent-health.ts) */
    affinity?: {
      nodeAffinity?: {
        requiredDuringSchedulingIgnoredDuringExecution?: {
          nodeSelectorTerms?: Array<{ matchFields?: Array<{ key?: string; values?: string[] }> }>;
        };
      };
    };
    containers?: Array<{ name: string; image?: string }>;
    initContainers?: Array<{ name: string }>;
    ephemeralContainers?: Array<{ name: string }>;
  };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string; lastTransitionTime?: Date | string }>;
    containerStatuses?: ContainerStatusLike[];
    initContainerStatuses?: ContainerStatusLike[];
    ephemeralContainerStatuses?: ContainerStatusLike[];
  };
}

export interface TerminatedLike {
  containerID?: string;
  exitCode?: number;
  signal?: number;
  reason?: string;
  message?: string;
  finishedAt?: Date | string;
}

export interface ContainerStatusLike {
  name: string;
  containerID?: string;
  ready?: boolean;
  restartCount?: number;
  started?: boolean;
  state?: { running?: { startedAt?: Date | string }; waiting?: { reason?: string; message?: string }; terminated?: TerminatedLike };
  lastState?: { terminated?: TerminatedLike };
}

/** The parts of a Node nsdebug reads; client-node's V1Node fits. */
export interface NodeLike {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: {
    conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }>;
    nodeInfo?: { operatingSystem?: string; kernelVersion?: string; containerRuntimeVersion?: string };
  };
}

/** A workload's label selector, as the API returns it (matchLabels + matchExpressions), or a Service's map. */
export interface LabelSelectorLike {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** matchLabels + matchExpressions → "a=b,c in (d,e),!f", the string form list calls take. */
export function selectorString(sel: LabelSelectorLike): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = `(${(e.values ?? []).join(',')})`;
    if (e.operator === 'In') parts.push(`${e.key} in ${values}`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin ${values}`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else throw new NsdebugError(`unknown label selector operator "${e.operator}" on key ${e.key}`, ExitCode.INTERNAL);
  }
  return parts.join(',');
}

// ---- picking one pod ----

const time = (t: Date | string | undefined) => (t === undefined ? undefined : new Date(t).getTime());
const isReady = (pod: PodLike) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const readySince = (pod: PodLike) =>
  time(pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime);
const restarts = (pod: PodLike) => Math.max(0, ...(pod.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0));
const PHASE_RANK: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * Negative when a is more active than b: kubectl's podutils.ActivePods order, reversed, which
 * `kubectl exec deploy/x` uses to pick its pod: scheduled, Running, Ready, ready for longer,
 * fewer restarts, older. Pods being deleted come last.
 */
export function compareActivePods(a: PodLike, b: PodLike): number {
  const by = (f: (p: PodLike) => number) => f(b) - f(a);
  return (
    by((p) => (p.metadata?.deletionTimestamp ? 0 : 1)) ||
    by((p) => (p.spec?.nodeName ? 1 : 0)) ||
    by((p) => PHASE_RANK[p.status?.phase ?? ''] ?? -1) ||
    by((p) => (isReady(p) ? 1 : 0)) ||
    // ready for longer first: an earlier transition time is more active
    (isReady(a) && isReady(b) ? (readySince(a) ?? Infinity) - (readySince(b) ?? Infinity) : 0) ||
    restarts(a) - restarts(b) ||
    (time(a.metadata?.creationTimestamp) ?? Infinity) - (time(b.metadata?.creationTimestamp) ?? Infinity)
  );
}

/** The pod kubectl would pick out of several, and a line saying so (kubectl logs' wording). */
export function pickPod(pods: PodLike[]): { pod: PodLike; note: string } | undefined {
  const sorted = [...pods].sort(compareActivePods);
  const pod = sorted[0];
  if (!pod) return undefined;
  const ready = pods.filter(isReady).length;
  const readiness = ready === pods.length ? '' : ` (${ready} ready${isReady(pod) ? '' : `; pod/${pod.metadata?.name} is not ready`})`;
  return { pod, note: `Found ${pods.length} pod${pods.length === 1 ? '' : 's'}${readiness}, using pod/${pod.metadata?.name}` };
}

// ---- the node ----

const isWindows = (pod: PodLike, node?: NodeLike) =>
  pod.spec?.os?.name === 'windows' ||
  node?.metadata?.labels?.['kubernetes.io/os'] === 'windows' ||
  node?.status?.nodeInfo?.operatingSystem === 'windows';

/** Refuse nodes no agent can serve: Windows, or not Ready. `node` undefined: only the pod's own hints are checked. */
export function checkNode(pod: PodLike, node?: NodeLike): void {
  const name = pod.spec?.nodeName ?? '?';
  if (isWindows(pod, node)) {
    throw new NsdebugError(
      `pod ${podLabel(pod)} runs on Windows node ${name}, which nsdebug does not support (Linux nodes only)`,
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
  const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready && ready.status !== 'True') {
    const why = [ready.reason, oneLine(ready.message)].filter(Boolean).join(': ');
    throw new NsdebugError(
      `node ${name} is not Ready${why ? ` (${why})` : ''}; its agent cannot be reached until the node recovers`,
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
}

// ---- the container ----

export type ContainerKind = 'container' | 'init' | 'ephemeral';

/** Every container name of the pod, as kubectl lists them: "app, sidecar, setup (init), debugger (ephem)". */
export function allContainerNames(pod: PodLike): string {
  return [
    ...(pod.spec?.containers ?? []).map((c) => c.name),
    ...(pod.spec?.initContainers ?? []).map((c) => `${c.name} (init)`),
    ...(pod.spec?.ephemeralContainers ?? []).map((c) => `${c.name} (ephem)`),
  ].join(', ');
}

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/** "namespace/name", as messages name a pod. */
export const podLabel = (pod: PodLike) => `${pod.metadata?.namespace ?? '?'}/${pod.metadata?.name ?? '?'}`;

/**
 * kubectl's podcmd.FindOrDefaultContainerByName: -c (any kind, init and ephemeral by name only),
 * else the default-container annotation when it names a container, else the first, with
 * "Defaulted container …" when there was a choice.
 */
export function chooseContainer(pod: PodLike, requested?: string): { name: string; kind: ContainerKind; note?: string } {
  const lists: Array<[ContainerKind, Array<{ name: string }>]> = [
    ['container', pod.spec?.containers ?? []],
    ['init', pod.spec?.initContainers ?? []],
    ['ephemeral', pod.spec?.ephemeralContainers ?? []],
  ];
  const find = (name: string) => {
    for (const [kind, list] of lists) if (list.some((c) => c.name === name)) return { name, kind };
    return undefined;
  };
  if (requested) {
    const found = find(requested);
    if (!found)
      throw new NsdebugError(
        `container "${requested}" not found in pod ${podLabel(pod)}; valid names: ${allContainerNames(pod)}`,
        ExitCode.NOT_FOUND,
      );
    return found;
  }
  const containers = pod.spec?.containers ?? [];
  const first = containers[0];
  if (!first) throw new NsdebugError(`pod ${podLabel(pod)} has no containers`, ExitCode.NOT_FOUND);
  const annotated = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && containers.some((c) => c.name === annotated)) return { name: annotated, kind: 'container' };
  const choice = containers.length > 1 || (pod.spec?.initContainers?.length ?? 0) > 0 || (pod.spec?.ephemeralContainers?.length ?? 0) > 0;
  return {
    name: first.name,
    kind: 'container',
    ...(choice ? { note: `Defaulted container "${first.name}" out of: ${allContainerNames(pod)}` } : {}),
  };
}

// ---- the container's runtime ID and state ----

export const KNOWN_RUNTIMES = ['containerd', 'cri-o', 'docker'] as const;
const HEX64 = /^[0-9a-f]{64}$/;

/** "containerd://<64 hex>" → runtime and bare ID, as the agent's --container-id wants it. */
export function parseContainerId(raw: string, what = 'the container'): { runtime: string; id: string } {
  const m = /^([a-z0-9.-]+):\/\/(.*)$/.exec(raw);
  if (!m) throw new NsdebugError(`${what} has a malformed ID "${raw.slice(0, 100)}" (expected RUNTIME://ID)`, ExitCode.INTERNAL);
  const [, runtime, id] = m as unknown as [string, string, string];
  if (!(KNOWN_RUNTIMES as readonly string[]).includes(runtime)) {
    throw new NsdebugError(
      `${what} runs on the "${runtime}" runtime, which nsdebug does not support (only ${KNOWN_RUNTIMES.join(', ')})`,
      ExitCode.ENTER_FAILED,
    );
  }
  if (!HEX64.test(id))
    throw new NsdebugError(`${what} has a malformed ${runtime} ID "${id.slice(0, 100)}" (expected 64 hex digits)`, ExitCode.INTERNAL);
  return { runtime, id };
}

function describeTermination(t: TerminatedLike, prefix: string): string {
  const parts = [`${prefix}exit code ${t.exitCode ?? '?'}${t.signal ? ` (signal ${t.signal})` : ''}`];
  if (t.reason) parts[0] += ` (${t.reason})`;
  if (t.finishedAt) parts.push(`at ${new Date(t.finishedAt).toISOString()}`);
  if (t.message) parts.push(`"${oneLine(t.message).slice(0, 200)}"`);
  return parts.join(' ');
}

export interface RunningContainer {
  name: string;
  kind: ContainerKind;
  runtime: string;
  /** the bare 64-hex ID */
  containerId: string;
  /** set when the container is not running and containerId names its last, exited instance */
  exited?: ExitedContainer;
}

export interface ExitedContainer {
  /** "CrashLoopBackOff, exit code 1, 7 restarts" */
  summary: string;
  /** the termination message, if the container wrote one */
  message?: string;
  /** whether its log is the API's --previous one (it was restarted since) */
  previousLog: boolean;
  /** the whole pod has ended (Succeeded/Failed): kubelet stopped its sandbox, and its network */
  podEnded: boolean;
}

/**
 * A container that is not running but whose last instance may still be on the node (kubelet
 * keeps the last dead container until it removes it): its ID and how it ended.
 */
export function exitedContainer(pod: PodLike, choice: { name: string; kind: ContainerKind }): RunningContainer | undefined {
  const status = statusesOf(pod, choice.kind).find((s) => s.name === choice.name);
  if (!status || status.state?.running) return undefined;
  const terminated = status.state?.terminated;
  const last = terminated ?? status.lastState?.terminated;
  const raw = terminated ? (terminated.containerID ?? status.containerID) : last?.containerID;
  if (!last || !raw) return undefined;
  const { runtime, id } = parseContainerId(raw, `container ${choice.name} of pod ${podLabel(pod)}`);
  const restarts = status.restartCount ?? 0;
  const reason = status.state?.waiting?.reason ?? last.reason;
  const summary = [reason, `exit code ${last.exitCode ?? '?'}`, `${restarts} restart${restarts === 1 ? '' : 's'}`]
    .filter(Boolean)
    .join(', ');
  const message = oneLine(last.message);
  return {
    name: choice.name,
    kind: choice.kind,
    runtime,
    containerId: id,
    exited: {
      summary,
      ...(message ? { message } : {}),
      previousLog: !terminated,
      podEnded: pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed',
    },
  };
}

/** --wait: the instance that runs or ran last (the next start is another), or none yet (ID ""). */
export function anyInstance(pod: PodLike, choice: { name: string; kind: ContainerKind }): RunningContainer {
  const status = statusesOf(pod, choice.kind).find((s) => s.name === choice.name);
  if (status?.state?.running && status.containerID) return runningContainer(pod, choice);
  return exitedContainer(pod, choice) ?? { name: choice.name, kind: choice.kind, runtime: 'containerd', containerId: '' };
}

function statusesOf(pod: PodLike, kind: ContainerKind): ContainerStatusLike[] {
  return (
    {
      container: pod.status?.containerStatuses,
      init: pod.status?.initContainerStatuses,
      ephemeral: pod.status?.ephemeralContainerStatuses,
    }[kind] ?? []
  );
}

/**
 * The chosen container's runtime ID when it is running; otherwise NOT_RUNNING with its state,
 * reason, exit code and restart count in one line.
 */
export function runningContainer(pod: PodLike, choice: { name: string; kind: ContainerKind }): RunningContainer {
  const status = statusesOf(pod, choice.kind).find((s) => s.name === choice.name);
  const what = `container ${choice.name} of pod ${podLabel(pod)}`;
  const logs = `kubectl logs -n ${pod.metadata?.namespace ?? '?'} ${pod.metadata?.name ?? '?'} -c ${choice.name}`;
  if (!pod.spec?.nodeName) {
    const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    const why = unscheduled ? `: ${oneLine(unscheduled.message) || unscheduled.reason}` : '';
    throw new NsdebugError(`pod ${podLabel(pod)} is not scheduled to a node yet${why}; wait until it runs`, ExitCode.NOT_RUNNING);
  }
  if (!status)
    throw new NsdebugError(`${what} has not started yet (pod ${pod.status?.phase ?? 'Pending'}); wait until it runs`, ExitCode.NOT_RUNNING);
  const restartsText = `restarted ${status.restartCount ?? 0} time${status.restartCount === 1 ? '' : 's'}`;
  if (status.state?.running && status.containerID) {
    const { runtime, id } = parseContainerId(status.containerID, what);
    return { name: choice.name, kind: choice.kind, runtime, containerId: id };
  }
  const last = status.lastState?.terminated;
  if (status.state?.terminated) {
    const t = status.state.terminated;
    throw new NsdebugError(
      `${what} is not running: terminated, ${describeTermination(t, '')}, ${restartsText}; see \`${logs}\``,
      ExitCode.NOT_RUNNING,
    );
  }
  const waiting = status.state?.waiting;
  const reason = waiting?.reason
    ? ` (${waiting.reason}${waiting.message && waiting.reason !== 'CrashLoopBackOff' ? `: ${oneLine(waiting.message).slice(0, 200)}` : ''})`
    : '';
  const lastRun = last ? `, last ${describeTermination(last, '')}` : '';
  const previous = last ? `${logs} --previous` : logs;
  throw new NsdebugError(`${what} is not running: waiting${reason}${lastRun}, ${restartsText}; see \`${previous}\``, ExitCode.NOT_RUNNING);
}
