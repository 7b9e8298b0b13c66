// From what the user typed to one container: TYPE/NAME or -l SELECTOR → one pod (the most
// active, as `kubectl exec deploy/x` picks it) → one container → its runtime ID, pod UID, node and
// state. Parsing the target and judging the node are pure functions here; picking the pod and the
// container and judging its state are src/pod.ts's, which the agent shares. The API sits behind
// TargetClient so tests pass a fake; createTargetClient puts client-node behind it.
import { ExitCode } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import {
  anyInstance,
  chooseContainer,
  exitedContainer,
  oneLine,
  pickPod,
  podLabel,
  runningContainer,
  type PodLike,
  type RunningContainer,
} from '../pod.js';
import { apiClients, describeApiError, apiStatusCode, statusMessage, isApiException, type KubeConnection } from './config.js';

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

/** DNS-1123 subdomain: pod and workload names. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** DNS-1123 label: container names. */
export const CONTAINER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The node's name in a node/NAME target (no/, nodes/ too), else undefined. */
export function nodeTargetName(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || !['node', 'nodes', 'no'].includes(text.slice(0, slash).toLowerCase())) return undefined;
  const name = text.slice(slash + 1);
  if (!name || name.length > 253 || !OBJECT_NAME.test(name)) {
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
  if (name.length > 253 || !OBJECT_NAME.test(name)) {
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

// ---- the objects read (the pod's shape: PodLike in src/pod.ts) ----

/** The parts of a Node nsdebug reads; client-node's V1Node fits. */
export interface NodeLike {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: {
    conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }>;
    nodeInfo?: { operatingSystem?: string };
  };
}

/** A workload's label selector, as the API returns it (matchLabels + matchExpressions), or a Service's map. */
export interface LabelSelectorLike {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** The API calls target resolution needs; `undefined` where the object does not exist. */
export interface TargetClient {
  readPod(namespace: string, name: string): Promise<PodLike | undefined>;
  /** the workload's pod selector; undefined when the workload does not exist */
  readSelector(kind: WorkloadKind, namespace: string, name: string): Promise<LabelSelectorLike | undefined>;
  listPods(namespace: string, selector: string): Promise<PodLike[]>;
  /** undefined when the node does not exist or the user may not read nodes (the check is then skipped) */
  readNode(name: string): Promise<NodeLike | undefined>;
  /** the last lines of a container's log (previous: its last terminated instance); "" when unavailable */
  readLogTail(namespace: string, pod: string, container: string, previous: boolean, lines: number): Promise<string>;
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

// ---- resolution ----

export interface ResolvedTarget {
  namespace: string;
  pod: string;
  podUid: string;
  node: string;
  container: RunningContainer;
  /** lines for stderr: which pod was picked, which container defaulted */
  notes: string[];
  /** the pod as read, for later checks */
  podObject: PodLike;
}

/** Resolve a TargetRef in a namespace to one pod (not yet its container). */
export async function resolvePod(ref: TargetRef, namespace: string, client: TargetClient): Promise<{ pod: PodLike; note?: string }> {
  if (ref.kind === 'pod') {
    const pod = await client.readPod(namespace, ref.name);
    if (!pod)
      throw new NsdebugError(
        `pod ${ref.name} not found in namespace ${namespace}; check the name, or pass -n with the pod's namespace`,
        ExitCode.NOT_FOUND,
      );
    return { pod };
  }
  let selector: string;
  let from: string;
  if (ref.kind === 'selector') {
    selector = ref.selector;
    from = `match -l ${ref.selector}`;
  } else {
    const sel = await client.readSelector(ref.kind, namespace, ref.name);
    if (!sel)
      throw new NsdebugError(
        `${ref.kind} ${ref.name} not found in namespace ${namespace}; check the name, or pass -n with its namespace`,
        ExitCode.NOT_FOUND,
      );
    selector = selectorString(sel);
    if (!selector)
      throw new NsdebugError(
        `${ref.kind} ${ref.name} in namespace ${namespace} has no pod selector; name a pod instead`,
        ExitCode.NOT_FOUND,
      );
    from = `belong to ${ref.kind}/${ref.name}`;
  }
  const picked = pickPod(await client.listPods(namespace, selector));
  if (!picked)
    throw new NsdebugError(
      `no pods in namespace ${namespace} ${from}; check with \`kubectl get pods -n ${namespace} -l ${selector}\``,
      ExitCode.NOT_FOUND,
    );
  return picked;
}

/** TargetRef → pod → container, with every refusal the pod itself explains (not the node's Ready state: see checkNode). */
export async function resolveTarget(
  ref: TargetRef,
  opts: {
    namespace: string;
    container?: string;
    /** not running: its last instance (a post-mortem), or with "any" whatever state (--wait) */
    exited?: boolean | 'any';
    /** the pod is the target (`ns`): no note on which container was defaulted */
    wholePod?: boolean;
  },
  client: TargetClient,
): Promise<ResolvedTarget> {
  const { pod, note } = await resolvePod(ref, opts.namespace, client);
  const choice = chooseContainer(pod, opts.container);
  checkNode(pod);
  const container =
    opts.exited === 'any'
      ? anyInstance(pod, choice)
      : ((opts.exited ? exitedContainer(pod, choice) : undefined) ?? runningContainer(pod, choice));
  return {
    namespace: pod.metadata?.namespace ?? opts.namespace,
    pod: pod.metadata?.name ?? '?',
    podUid: pod.metadata?.uid ?? '',
    node: pod.spec?.nodeName ?? '',
    container,
    notes: [note, opts.wholePod ? undefined : choice.note].filter((n): n is string => Boolean(n)),
    podObject: pod,
  };
}

// ---- over client-node ----

/** TargetClient over the API; 404 → undefined, other failures → one-line NsdebugError. */
export async function createTargetClient(conn: KubeConnection): Promise<TargetClient> {
  const { core, apps, batch } = await apiClients(conn);
  const absentOk = async <T>(doing: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (err) {
      if (apiStatusCode(err) === 404) return undefined;
      throw describeApiError(err, doing, conn);
    }
  };
  const readers: Record<WorkloadKind, (namespace: string, name: string) => Promise<LabelSelectorLike | undefined>> = {
    deployment: async (namespace, name) => (await apps.readNamespacedDeployment({ namespace, name })).spec?.selector,
    statefulset: async (namespace, name) => (await apps.readNamespacedStatefulSet({ namespace, name })).spec?.selector,
    daemonset: async (namespace, name) => (await apps.readNamespacedDaemonSet({ namespace, name })).spec?.selector,
    replicaset: async (namespace, name) => (await apps.readNamespacedReplicaSet({ namespace, name })).spec?.selector,
    job: async (namespace, name) => (await batch.readNamespacedJob({ namespace, name })).spec?.selector ?? {},
    service: async (namespace, name) => ({ matchLabels: (await core.readNamespacedService({ namespace, name })).spec?.selector ?? {} }),
  };
  return {
    readPod: (namespace, name) => absentOk(`get pod ${name} in namespace ${namespace}`, () => core.readNamespacedPod({ namespace, name })),
    readSelector: (kind, namespace, name) =>
      absentOk(`get ${kind} ${name} in namespace ${namespace}`, () => readers[kind](namespace, name)),
    listPods: async (namespace, labelSelector) => {
      try {
        return (await core.listNamespacedPod({ namespace, labelSelector })).items;
      } catch (err) {
        if (apiStatusCode(err) === 400 && isApiException(err))
          throw usageError(`"${labelSelector}" is not a valid label selector: ${statusMessage(err.body)}`);
        throw describeApiError(err, `list pods in namespace ${namespace}`, conn);
      }
    },
    readLogTail: async (namespace, name, container, previous, tailLines) => {
      try {
        return await core.readNamespacedPodLog({ namespace, name, container, previous, tailLines });
      } catch {
        return ''; // logs are context for the user, never a reason to fail
      }
    },
    readNode: async (name) => {
      try {
        return await core.readNode({ name });
      } catch (err) {
        const code = apiStatusCode(err);
        if (code === 404 || code === 403) return undefined; // the node check is a courtesy, not a gate
        throw describeApiError(err, `get node ${name}`, conn);
      }
    },
  };
}
