// The objects `kubectl nsdebug install` applies: deploy/ of the installed package (the one source
// of truth `kubectl apply -k deploy/` uses too), rendered for --image and --namespace, in the
// order kubectl applies them, and named as kubectl names them. Pure but for reading deploy/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { AGENT_CONTAINER } from '../agent-health.js';
import type { RecordingSettings } from '../contract.js';
import { packageRoot } from '../package.js';
import { kustomizeBuild, mapPodSpecImages, type KubeObject } from './kustomize.js';

export const DEFAULT_NAMESPACE = 'nsdebug-system';
export const AGENT_DAEMONSET = 'nsdebug-agent';
export const AGENT_LABEL = { key: 'app.kubernetes.io/name', value: 'nsdebug-agent' } as const;
export const AGENT_SELECTOR = `${AGENT_LABEL.key}=${AGENT_LABEL.value}`;
/** Every object deploy/ holds carries this label; uninstall deletes nothing without it. */
export const PART_OF = { key: 'app.kubernetes.io/part-of', value: 'nsdebug' } as const;

export const deployDir = () => join(packageRoot(), 'deploy');
/** The opt-in session authorization objects (`install --session-auth`). */
export const sessionAuthDir = () => join(deployDir(), 'session-auth');

export function cliVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** deploy/'s objects, and with sessionAuth deploy/session-auth/'s after them. */
export async function deployManifests(opts: { sessionAuth: boolean }): Promise<KubeObject[]> {
  return [...(await kustomizeBuild(deployDir())), ...(opts.sessionAuth ? await kustomizeBuild(sessionAuthDir()) : [])];
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
  recording?: RecordingSettings;
}

/** The agent DaemonSet told to record: its environment, and the recordings' hostPath. */
function withRecording(ds: KubeObject, rec: RecordingSettings): KubeObject {
  type Pod = { containers: Array<{ name: string; env?: unknown[]; volumeMounts?: unknown[] }>; volumes?: unknown[] };
  const pod = (ds.spec as { template: { spec: Pod } }).template.spec;
  const agent = pod.containers.find((c) => c.name === AGENT_CONTAINER);
  if (!agent) return ds;
  const env = {
    NSDEBUG_RECORD: rec.to,
    NSDEBUG_RECORD_MAX_BYTES: String(rec.maxBytes),
    NSDEBUG_RECORD_SCOPE: rec.scope,
    NSDEBUG_RECORD_INPUT: rec.input ? '1' : '0',
  };
  agent.env = [...(agent.env ?? []), ...Object.entries(env).map(([name, value]) => ({ name, value }))];
  if (rec.to === 'hostpath') {
    agent.env.push({ name: 'NSDEBUG_RECORD_DIR', value: rec.dir });
    agent.volumeMounts = [...(agent.volumeMounts ?? []), { name: 'recordings', mountPath: rec.dir }];
    pod.volumes = [...(pod.volumes ?? []), { name: 'recordings', hostPath: { path: rec.dir, type: 'DirectoryOrCreate' } }];
  }
  return ds;
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
    if (opts.recording && copy.kind === 'DaemonSet' && copy.metadata.name === AGENT_DAEMONSET) copy = withRecording(copy, opts.recording);
    return copy;
  });
  return rendered.sort((a, b) => orderOf(a.kind) - orderOf(b.kind));
}

/** kubectl's name for an object: `daemonset.apps/nsdebug-agent`, `namespace/nsdebug-system`. */
export function objectRef(o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`;
}

/** The agent's image in rendered objects, "?" when they hold no agent DaemonSet. */
export function agentImage(objects: KubeObject[]): string {
  const ds = objects.find((o) => o.kind === 'DaemonSet' && o.metadata.name === AGENT_DAEMONSET);
  const containers =
    (ds?.spec as { template?: { spec?: { containers?: Array<{ name: string; image: string }> } } } | undefined)?.template?.spec
      ?.containers ?? [];
  return containers.find((c) => c.name === AGENT_CONTAINER)?.image ?? '?';
}
