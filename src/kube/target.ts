// From what the user typed to one container, through the API: a TargetRef → one pod (the most
// active, as `kubectl exec deploy/x` picks it) → one container → its runtime ID, pod UID, node and
// state. The judging is src/pod.ts's (parsing the target, picking the pod and the container,
// refusing a node), which the agent shares; here are the API calls it needs, behind TargetClient
// so tests pass a fake, and createTargetClient, which puts client-node behind it.
import { ExitCode } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import {
  anyInstance,
  chooseContainer,
  checkNode,
  exitedContainer,
  pickPod,
  runningContainer,
  selectorString,
  type LabelSelectorLike,
  type NodeLike,
  type PodLike,
  type RunningContainer,
  type TargetRef,
  type WorkloadKind,
} from '../pod.js';
import { apiClients, describeApiError, apiStatusCode, statusMessage, isApiException, type KubeConnection } from './config.js';

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
