// `kubectl nsdebug install | uninstall`: the objects of deploy/ (read from the installed package,
// the one source of truth `kubectl apply -k deploy/` uses too), rendered for --image/--namespace,
// server-side applied, then a wait for the DaemonSet's rollout that names the node and reason of
// any agent pod that cannot start. Parsing, rendering and rollout judgement are pure functions;
// the API sits behind InstallClient so tests can pass a fake.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { ExitCode } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import { parseDuration } from '../duration.js';
import { packageRoot } from '../package.js';

import {
  apiClients,
  apiStatusCode,
  clientNode,
  describeApiError,
  isApiException,
  loadKubeConfig,
  statusMessage,
  type KubeConnection,
} from './config.js';

export const DEFAULT_NAMESPACE = 'nsdebug-system';
export const AGENT_DAEMONSET = 'nsdebug-agent';
export const AGENT_CONTAINER = 'agent';
export const AGENT_LABEL = { key: 'app.kubernetes.io/name', value: 'nsdebug-agent' } as const;
export const AGENT_SELECTOR = `${AGENT_LABEL.key}=${AGENT_LABEL.value}`;
/** Every object deploy/ holds carries this label; uninstall deletes nothing without it. */
export const PART_OF = { key: 'app.kubernetes.io/part-of', value: 'nsdebug' } as const;
export const FIELD_MANAGER = 'kubectl-nsdebug';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

// ---- the manifests ----

export const deployDir = () => join(packageRoot(), 'deploy');
/** The opt-in session authorization objects (`install --session-auth`). */
export const sessionAuthDir = () => join(deployDir(), 'session-auth');

export function cliVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** A kustomize `images` entry. */
export interface ImageRule {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

export interface Kustomization {
  resources: string[];
  images: ImageRule[];
}

// The installer applies exactly what `kubectl kustomize deploy/` renders, so it must understand
// every field deploy/kustomization.yaml uses: anything else is refused rather than ignored.
const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'images']);

export function parseKustomization(doc: unknown): Kustomization {
  if (!doc || typeof doc !== 'object') throw new Error('kustomization.yaml is empty');
  const k = doc as Record<string, unknown>;
  const unknown = Object.keys(k).filter((key) => !KUSTOMIZATION_FIELDS.has(key));
  if (unknown.length)
    throw new Error(`kustomization.yaml uses ${unknown.join(', ')}, which the installer does not apply; use only resources and images`);
  const resources = k.resources ?? [];
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string' && /^[\w.-]+\.ya?ml$/.test(r))) {
    throw new Error('kustomization.yaml resources must be file names in deploy/');
  }
  const images = (k.images ?? []) as ImageRule[];
  if (!Array.isArray(images) || !images.every((i) => typeof i?.name === 'string'))
    throw new Error('kustomization.yaml images need a name each');
  return { resources: resources as string[], images };
}

/** An image reference split as kustomize does: name, then :tag and/or @digest. */
export function splitImage(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const rest = at >= 0 ? ref.slice(0, at) : ref;
  const colon = rest.lastIndexOf(':');
  // a colon before the last slash belongs to a registry port (localhost:5000/agent)
  const hasTag = colon > rest.lastIndexOf('/');
  return { name: hasTag ? rest.slice(0, colon) : rest, ...(hasTag ? { tag: rest.slice(colon + 1) } : {}), ...(digest ? { digest } : {}) };
}

/** kustomize's images transformer for one reference: a rule matches on the name alone. */
export function applyImageRules(ref: string, rules: ImageRule[]): string {
  const image = splitImage(ref);
  const rule = rules.find((r) => r.name === image.name);
  if (!rule) return ref;
  const name = rule.newName ?? image.name;
  if (rule.digest) return `${name}@${rule.digest}`;
  const tag = rule.newTag ?? image.tag;
  if (rule.newTag) return `${name}:${tag}`;
  return `${name}${tag ? `:${tag}` : ''}${image.digest ? `@${image.digest}` : ''}`;
}

/** Read deploy/: kustomization.yaml, its resources in order, its image rules applied. */
export async function readDeployManifests(dir = deployDir()): Promise<KubeObject[]> {
  const yaml = await import('js-yaml');
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  const kustomization = parseKustomization(yaml.load(read('kustomization.yaml')));
  const objects: KubeObject[] = [];
  for (const file of kustomization.resources) {
    for (const doc of yaml.loadAll(read(file))) {
      if (doc === null || doc === undefined) continue;
      const o = doc as KubeObject;
      if (!o.apiVersion || !o.kind || !o.metadata?.name)
        throw new Error(`${file}: every document needs apiVersion, kind and metadata.name`);
      objects.push(o);
    }
  }
  return objects.map((o) => mapPodSpecImages(o, (image) => applyImageRules(image, kustomization.images)));
}

function mapPodSpecImages(o: KubeObject, map: (image: string) => string): KubeObject {
  const copy = structuredClone(o);
  const podSpec = (copy.spec as { template?: { spec?: Record<string, unknown> } } | undefined)?.template?.spec;
  for (const list of ['initContainers', 'containers'] as const) {
    for (const c of (podSpec?.[list] as Array<{ image?: string }> | undefined) ?? []) if (c.image) c.image = map(c.image);
  }
  return copy;
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'PriorityClass',
  'CustomResourceDefinition',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);
// Kinds that others depend on first, as kubectl and kustomize order them.
// The admission policy that pins a DebugSession's requester comes before the CRD (and goes after
// it on uninstall): no DebugSession can ever exist unpinned.
const APPLY_ORDER = [
  'Namespace',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'CustomResourceDefinition',
  'ResourceQuota',
  'LimitRange',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'ConfigMap',
  'Secret',
  'DaemonSet',
];
const orderOf = (kind: string) => (APPLY_ORDER.includes(kind) ? APPLY_ORDER.indexOf(kind) : APPLY_ORDER.length);

export interface RenderOptions {
  image?: string;
  namespace?: string;
}

/** The objects to apply: deploy/'s, with the agent image and namespace replaced, in apply order. */
export function renderManifests(objects: KubeObject[], opts: RenderOptions = {}): KubeObject[] {
  const from = objects.find((o) => o.kind === 'Namespace')?.metadata.name ?? DEFAULT_NAMESPACE;
  const to = opts.namespace ?? from;
  const rendered = objects.map((o) => {
    let copy = structuredClone(o);
    if (copy.kind === 'Namespace' && copy.metadata.name === from) copy.metadata.name = to;
    if (!CLUSTER_SCOPED.has(copy.kind) && (copy.metadata.namespace ?? from) === from) copy.metadata.namespace = to;
    for (const s of (copy.subjects as Array<{ kind: string; namespace?: string }> | undefined) ?? []) {
      if (s.kind === 'ServiceAccount' && s.namespace === from) s.namespace = to;
    }
    if (opts.image && copy.kind === 'DaemonSet' && copy.metadata.name === AGENT_DAEMONSET) {
      const image = opts.image;
      copy = mapPodSpecImages(copy, () => image);
    }
    return copy;
  });
  return rendered.sort((a, b) => orderOf(a.kind) - orderOf(b.kind));
}

/** kubectl's name for an object: `daemonset.apps/nsdebug-agent`, `namespace/nsdebug-system`. */
export function objectRef(o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`;
}

// ---- options ----

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// The image reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest];
// the first component is a domain only if it has a dot or a port, or is localhost.
const IMAGE_DOMAIN = /^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?$/;
const IMAGE_PATH_COMPONENT = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/;
const IMAGE_TAG = /^\w[\w.-]{0,127}$/;
const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;

export function validateNamespace(namespace: string): void {
  if (namespace.length > 63 || !DNS_LABEL.test(namespace))
    throw usageError(`--namespace must be a DNS label (lowercase letters, digits, '-'), not "${namespace}"`);
}

export function validateImage(image: string): void {
  const { name, tag, digest } = splitImage(image);
  const parts = name.split('/');
  const domain = parts.length > 1 && (/[.:]/.test(parts[0] as string) || parts[0] === 'localhost') ? parts.shift() : undefined;
  const valid =
    image.length <= 512 &&
    (!domain || IMAGE_DOMAIN.test(domain)) &&
    parts.every((p) => IMAGE_PATH_COMPONENT.test(p)) &&
    (tag === undefined || IMAGE_TAG.test(tag)) &&
    (digest === undefined || IMAGE_DIGEST.test(digest)) &&
    !image.endsWith('@');
  if (!valid) throw usageError(`--image must be an image reference like registry.example/nsdebug-agent:0.1.0, not "${image}"`);
}

// ---- rollout ----

/** The subset of a Pod the rollout judgement reads (client-node's V1Pod fits). */
export interface PodLike {
  metadata?: { name?: string; creationTimestamp?: Date | string; deletionTimestamp?: Date | string; labels?: Record<string, string> };
  spec?: {
    nodeName?: string;
    containers?: Array<{ name?: string; image?: string }>;
    affinity?: {
      nodeAffinity?: {
        requiredDuringSchedulingIgnoredDuringExecution?: {
          nodeSelectorTerms?: Array<{ matchFields?: Array<{ key?: string; values?: string[] }> }>;
        };
      };
    };
  };
  status?: {
    phase?: string;
    conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }>;
    containerStatuses?: Array<{
      name?: string;
      ready?: boolean;
      image?: string;
      state?: {
        waiting?: { reason?: string; message?: string };
        running?: object;
        terminated?: { reason?: string; exitCode?: number; message?: string };
      };
      lastState?: { terminated?: { reason?: string; exitCode?: number; message?: string } };
    }>;
  };
}

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

const oneLine = (text: string | undefined) => (text ?? '').replace(/\s+/g, ' ').trim();

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

// ---- the cluster ----

/** What install and uninstall need from the API server; see createInstallClient. */
export interface InstallClient {
  /** server-side apply, fieldManager kubectl-nsdebug, force; dryRun = the server's dry run */
  apply(object: KubeObject, dryRun: boolean): Promise<void>;
  /** the object as stored, or undefined when it does not exist */
  get(object: KubeObject): Promise<KubeObject | undefined>;
  /** delete; false when it did not exist */
  remove(object: KubeObject): Promise<boolean>;
  readDaemonSet(namespace: string, name: string): Promise<DaemonSetLike | undefined>;
  listAgentPods(namespace: string): Promise<PodLike[]>;
  /** messages of the pod's Warning events, oldest first (probe and pull failures) */
  podWarnings(namespace: string, pod: string): Promise<string[]>;
}

export interface InstallIO {
  /** the result, on stdout */
  out(line: string): void;
  /** progress, on stderr; undefined when stderr is not a terminal */
  progress?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface InstallOptions {
  image?: string;
  namespace?: string;
  dryRun?: boolean;
  wait?: boolean;
  timeoutMs?: number;
  /** also apply deploy/session-auth/ */
  sessionAuth?: boolean;
  /** the manifests; default: deploy/ of this package (and deploy/session-auth/ with sessionAuth) */
  manifests?: KubeObject[];
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const POLL_MS = 1000;

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 100) / 10}s`;
}

export async function install(opts: InstallOptions, client: InstallClient, io: InstallIO): Promise<RolloutState | undefined> {
  if (opts.namespace) validateNamespace(opts.namespace);
  if (opts.image) validateImage(opts.image);
  const manifests = opts.manifests ?? [
    ...(await readDeployManifests()),
    ...(opts.sessionAuth ? await readDeployManifests(sessionAuthDir()) : []),
  ];
  const objects = renderManifests(manifests, opts);
  const namespace = objects.find((o) => o.kind === 'Namespace')?.metadata.name ?? DEFAULT_NAMESPACE;
  const image = agentImage(objects);

  // Never take over a namespace someone else made (and label it privileged), nor delete it later.
  const ns = objects.find((o) => o.kind === 'Namespace');
  const existing = ns && (await client.get(ns));
  if (existing && existing.metadata.labels?.[PART_OF.key] !== PART_OF.value) {
    throw usageError(
      `namespace ${namespace} exists and was not created by nsdebug; pick another --namespace (the agent's namespace must allow privileged pods)`,
    );
  }

  for (const o of objects) {
    // a server dry run creates nothing, so objects in a namespace that does not exist yet 404
    if (opts.dryRun && ns && !existing && o.metadata.namespace) {
      io.out(`${objectRef(o)} not checked: the server can dry-run it only once namespace ${namespace} exists`);
      continue;
    }
    await client.apply(o, Boolean(opts.dryRun));
    io.out(`${objectRef(o)} ${opts.dryRun ? 'serverside-applied (server dry run)' : 'serverside-applied'}`);
  }
  if (opts.dryRun) return undefined;
  if (opts.wait === false) {
    io.out(`not waiting for the agent: run \`kubectl nsdebug status\` to see it start (image ${image})`);
    return undefined;
  }
  const state = await waitForRollout(namespace, opts.timeoutMs ?? 120_000, client, io, image);
  io.out(
    `nsdebug agent ready on ${state.ready}/${state.desired} node${state.desired === 1 ? '' : 's'} (image ${image}, namespace ${namespace})`,
  );
  return state;
}

export function agentImage(objects: KubeObject[]): string {
  const ds = objects.find((o) => o.kind === 'DaemonSet' && o.metadata.name === AGENT_DAEMONSET);
  const containers =
    (ds?.spec as { template?: { spec?: { containers?: Array<{ name: string; image: string }> } } } | undefined)?.template?.spec
      ?.containers ?? [];
  return containers.find((c) => c.name === AGENT_CONTAINER)?.image ?? '?';
}

async function observe(namespace: string, image: string | undefined, client: InstallClient): Promise<RolloutState> {
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
  client: InstallClient,
  io: InstallIO,
  image?: string,
): Promise<RolloutState> {
  const sleep = io.sleep ?? defaultSleep;
  const now = io.now ?? Date.now;
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

export interface UninstallOptions {
  namespace?: string;
  wait?: boolean;
  timeoutMs?: number;
  manifests?: KubeObject[];
}

/** Delete every object install creates (reverse order; session authorization's too), only those labelled as nsdebug's. */
export async function uninstall(opts: UninstallOptions, client: InstallClient, io: InstallIO): Promise<number> {
  if (opts.namespace) validateNamespace(opts.namespace);
  const manifests = opts.manifests ?? [...(await readDeployManifests()), ...(await readDeployManifests(sessionAuthDir()))];
  const objects = renderManifests(manifests, opts).reverse();
  const deleted: KubeObject[] = [];
  for (const o of objects) {
    const found = await client.get(o);
    if (!found) continue;
    if (found.metadata.labels?.[PART_OF.key] !== PART_OF.value) {
      io.out(`${objectRef(o)} kept: it is not labelled ${PART_OF.key}=${PART_OF.value}, so nsdebug did not create it`);
      continue;
    }
    if (await client.remove(o)) {
      deleted.push(o);
      io.out(`${objectRef(o)} deleted`);
    }
  }
  if (!deleted.length) {
    io.out('nsdebug is not installed: nothing to remove');
    return 0;
  }
  if (opts.wait === false) return deleted.length;
  const sleep = io.sleep ?? defaultSleep;
  const now = io.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = now() + timeoutMs;
  let shown = '';
  for (;;) {
    const left = (await Promise.all(deleted.map(async (o) => ((await client.get(o)) ? o : undefined)))).filter((o): o is KubeObject =>
      Boolean(o),
    );
    if (!left.length) return deleted.length;
    const waiting = `waiting for ${left.map(objectRef).join(', ')} to be deleted`;
    if (now() >= deadline) {
      throw new NsdebugError(
        `still being deleted after ${formatDuration(timeoutMs)}: ${left.map(objectRef).join(', ')}; check them with kubectl, or wait longer with --timeout`,
        ExitCode.INTERNAL,
      );
    }
    if (waiting !== shown) io.progress?.(waiting);
    shown = waiting;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - now())));
  }
}

// ---- the API ----

/**
 * An API failure as one line: config.ts's sentences, except that a refusal says what the command
 * takes (install/uninstall: cluster-admin, for a ClusterRole and a privileged DaemonSet).
 */
export function apiFailure(
  err: unknown,
  doing: string,
  where?: Pick<KubeConnection, 'server' | 'context' | 'requestTimeoutMs'>,
  whatItTakes = 'installing or removing nsdebug needs cluster-admin rights',
): NsdebugError {
  if (isApiException(err) && err.code === 403) {
    const why = statusMessage(err.body);
    return new NsdebugError(`cannot ${doing}: forbidden${why ? `: ${why}` : ''}; ${whatItTakes}`, ExitCode.FORBIDDEN);
  }
  return describeApiError(err, doing, where);
}

const header = (o: KubeObject) => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) },
});

/** InstallClient over client-node; loaded only when a command talks to a cluster. */
export async function createInstallClient(conn: KubeConnection): Promise<InstallClient> {
  const k8s = await clientNode();
  const { kc } = conn;
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const { core, apps } = await apiClients(conn);
  const call = async <T>(doing: string, f: () => Promise<T>, onAbsent?: () => T): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      if (onAbsent && apiStatusCode(err) === 404) return onAbsent();
      throw apiFailure(err, doing, conn);
    }
  };
  return {
    apply: async (o, dryRun) => {
      await call(`apply ${objectRef(o)}`, () =>
        objects.patch(o, undefined, dryRun ? 'All' : undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply),
      );
    },
    get: (o) =>
      call(
        `read ${objectRef(o)}`,
        async () => (await objects.read(header(o))) as KubeObject | undefined,
        () => undefined,
      ),
    remove: (o) =>
      call(
        `delete ${objectRef(o)}`,
        async () => {
          await objects.delete(header(o), undefined, undefined, undefined, undefined, 'Background');
          return true;
        },
        () => false,
      ),
    readDaemonSet: (namespace, name) =>
      call(
        `read daemonset ${namespace}/${name}`,
        () => apps.readNamespacedDaemonSet({ namespace, name }),
        () => undefined,
      ),
    listAgentPods: async (namespace) =>
      (await call(`list the agent pods in ${namespace}`, () => core.listNamespacedPod({ namespace, labelSelector: AGENT_SELECTOR }))).items,
    podWarnings: async (namespace, pod) => {
      try {
        const list = await core.listNamespacedEvent({
          namespace,
          fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${pod},type=Warning`,
        });
        const when = (e: (typeof list.items)[number]) =>
          new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0).getTime();
        return list.items.sort((a, b) => when(a) - when(b)).map((e) => e.message ?? '');
      } catch {
        return []; // events only sharpen a message: without them the pod's own status still speaks
      }
    },
  };
}

// ---- the commands' entry points ----

/** kubectl's connection flags, as the commands pass them on. */
export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  'request-timeout'?: string;
}

/** stdout for results; progress on stderr only when stderr is a terminal. */
export function terminalIO(stdout = process.stdout, stderr = process.stderr): InstallIO {
  return {
    out: (line) => void stdout.write(`${line}\n`),
    ...(stderr.isTTY ? { progress: (line: string) => void stderr.write(`${line}\n`) } : {}),
  };
}

async function connect(flags: KubeFlags): Promise<KubeConnection> {
  // the agent's namespace is --namespace of these commands, not the context's namespace
  return loadKubeConfig({ kubeconfig: flags.kubeconfig, context: flags.context, requestTimeout: flags['request-timeout'] });
}

export async function runInstall(
  flags: KubeFlags & { namespace: string; image?: string; 'dry-run'?: boolean; wait: boolean; timeout: string; 'session-auth'?: boolean },
  io = terminalIO(),
): Promise<void> {
  validateNamespace(flags.namespace);
  if (flags.image !== undefined) validateImage(flags.image);
  const timeoutMs = parseDuration(flags.timeout);
  const conn = await connect(flags);
  await install(
    {
      namespace: flags.namespace,
      image: flags.image,
      dryRun: flags['dry-run'],
      wait: flags.wait,
      timeoutMs,
      sessionAuth: flags['session-auth'] === true,
    },
    await createInstallClient(conn),
    io,
  );
}

export async function runUninstall(
  flags: KubeFlags & { namespace: string; wait: boolean; timeout: string },
  io = terminalIO(),
): Promise<void> {
  validateNamespace(flags.namespace);
  const timeoutMs = parseDuration(flags.timeout);
  const conn = await connect(flags);
  await uninstall({ namespace: flags.namespace, wait: flags.wait, timeoutMs }, await createInstallClient(conn), io);
}
