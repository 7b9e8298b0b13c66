// `kubectl nsdebug install`: deploy/'s objects (src/kube/manifests.ts) server-side applied, then a
// wait for the DaemonSet's rollout (src/kube/rollout.ts). The API sits behind InstallClient, which
// uninstall shares, so tests can pass a fake; createInstallClient puts client-node behind it.
import type { RecordingSettings } from '../contract.js';
import { usageError } from '../errors.js';
import { AGENT_SELECTOR, agentImage, DEFAULT_NAMESPACE, deployManifests, objectRef, PART_OF, renderManifests } from './manifests.js';
import { apiClients, apiStatusCode, clientNode, describeApiError, type KubeConnection } from './config.js';
import type { KubeObject } from './kustomize.js';
import { DEFAULT_TIMEOUT_MS, waitForRollout, type RolloutClient, type RolloutState, type WaitIO } from './rollout.js';

export const FIELD_MANAGER = 'kubectl-nsdebug';

/** What install and uninstall need from the API server; see createInstallClient. */
export interface InstallClient extends RolloutClient {
  /** server-side apply, fieldManager kubectl-nsdebug, force; dryRun = the server's dry run */
  apply(object: KubeObject, dryRun: boolean): Promise<void>;
  /** the object as stored, or undefined when it does not exist */
  get(object: KubeObject): Promise<KubeObject | undefined>;
  /** delete; false when it did not exist */
  remove(object: KubeObject): Promise<boolean>;
}

export interface InstallIO extends WaitIO {
  /** the result, on stdout */
  out(line: string): void;
}

/** What to install; the CLI has checked the namespace, the image and the recording (src/cli/install.ts). */
export interface InstallOptions {
  image?: string;
  recording?: RecordingSettings;
  namespace?: string;
  dryRun?: boolean;
  wait?: boolean;
  timeoutMs?: number;
  /** also apply deploy/session-auth/ */
  sessionAuth?: boolean;
  /** the manifests; default: deploy/ of this package (and deploy/session-auth/ with sessionAuth) */
  manifests?: KubeObject[];
}

export async function install(opts: InstallOptions, client: InstallClient, io: InstallIO): Promise<RolloutState | undefined> {
  const manifests = opts.manifests ?? (await deployManifests({ sessionAuth: opts.sessionAuth === true }));
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
  const state = await waitForRollout(namespace, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, client, io, image);
  io.out(
    `nsdebug agent ready on ${state.ready}/${state.desired} node${state.desired === 1 ? '' : 's'} (image ${image}, namespace ${namespace})`,
  );
  return state;
}

// ---- the API ----

/** An API failure of install or uninstall as one line; a refusal says that they take cluster-admin. */
export const installApiFailure = (err: unknown, doing: string, where?: Pick<KubeConnection, 'server' | 'context' | 'requestTimeoutMs'>) =>
  describeApiError(err, doing, where, 'installing or removing nsdebug needs cluster-admin rights');

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
      throw installApiFailure(err, doing, conn);
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
    agentPodWarnings: async (namespace) => {
      const byPod = new Map<string, string[]>();
      try {
        // one list for every pod of the namespace, not one per pod: a big cluster has a thousand
        const list = await core.listNamespacedEvent({ namespace, fieldSelector: 'type=Warning,involvedObject.kind=Pod' });
        const when = (e: (typeof list.items)[number]) =>
          new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0).getTime();
        for (const e of list.items.sort((a, b) => when(a) - when(b))) {
          const messages = byPod.get(e.involvedObject.name ?? '') ?? [];
          messages.push(e.message ?? '');
          byPod.set(e.involvedObject.name ?? '', messages);
        }
      } catch {
        // events only sharpen a message: without them the pods' own status still speaks
      }
      return byPod;
    },
  };
}
