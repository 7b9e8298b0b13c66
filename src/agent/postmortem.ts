// Post-mortem sessions: a container that has exited keeps its snapshot (its image layers and its
// own writes) until kubelet removes the container. The runtime names the layers; the pod's
// sandbox still runs and holds the pod's network, IPC and UTS namespaces.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { Confinement } from '../native/libnsdebug.js';
import { parseProcCgroup, podCgroupDirs, podUidOf, procsBelow } from './cgroups.js';
import { ociConfinement } from './confinement.js';
import { containerLayers, containerRecord, nothingLeft, ociSpecOf, runtimeEndpoint } from './containerd.js';
import { PROC, readStat } from './procfs.js';
import { pickInit, shortId } from './resolve.js';

/**
 * The pod's sandbox (pause) process, the oldest process in the pod's cgroup tree, if the pod
 * still has one (kubelet stops it once every container of a Never-restarting pod has ended);
 * and a process in the node's mount namespace, where the snapshot's layer paths resolve: the
 * sandbox's parent (the runtime's shim), else the runtime itself.
 */
export function podSandbox(podUid: string, layerPath: string): { sandboxPid?: number; hostPid: number } {
  const pids =
    podCgroupDirs(podUid)
      .map(procsBelow)
      .find((found) => found.length) ?? [];
  const sandboxPid = pids.length ? pickInit([...new Set(pids)]) : undefined;
  const shim = sandboxPid ? readStat(sandboxPid).ppid : 0;
  const hostPid = [shim, ...runtimeProcesses().map((p) => p.pid)].find((pid) => pid > 0 && seesPath(pid, layerPath));
  if (!hostPid) throw new NsdebugError(`cannot find the node's mount namespace, where container layers are`, ExitCode.ENTER_FAILED);
  return { ...(sandboxPid ? { sandboxPid } : {}), hostPid };
}

/**
 * A process in every namespace of the node itself: its init, when the agent may enter it (a
 * sandboxed machine's init may refuse even root), else the container runtime.
 */
export function nodeProcess(): number {
  const enterable = (pid: number) => {
    try {
      readlinkSync(`${PROC}/${pid}/ns/mnt`);
      return true;
    } catch {
      return false;
    }
  };
  const runtime = runtimeProcesses()
    .filter((p) => p.comm === 'containerd')
    .map((p) => p.pid);
  const pid = [1, ...runtime].find(enterable);
  if (!pid)
    throw new NsdebugError(
      "cannot find a process in the node's own namespaces (init and containerd are not enterable)",
      ExitCode.ENTER_FAILED,
    );
  return pid;
}

/** containerd and its shims, as this node's /proc shows them (each /proc entry read once: a shim may exit meanwhile). */
function runtimeProcesses(): Array<{ pid: number; comm: string }> {
  return readdirSync(PROC)
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const comm = readFileSync(`${PROC}/${entry}/comm`, 'utf8').trim();
        return /^containerd(-shim.*)?$/.test(comm) ? [{ pid: Number(entry), comm }] : [];
      } catch {
        return [];
      }
    });
}

/** Whether pid's root (and so its mount namespace) holds path. */
export function seesPath(pid: number, path: string): boolean {
  return existsSync(`${PROC}/${pid}/root${path}`);
}

/** Whether pid is a process of the pod, by its cgroup. */
export function inPod(pid: number, podUid: string): boolean {
  try {
    return parseProcCgroup(readFileSync(`${PROC}/${pid}/cgroup`, 'utf8')).some((m) => podUidOf(m.path) === podUid);
  } catch {
    return false;
  }
}

/** kubelet's labels on every container it creates (pkg/kubelet/types/labels.go). */
export const POD_UID_LABEL = 'io.kubernetes.pod.uid';
export const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';

/**
 * Refuse a container that kubelet did not create for this pod's container of this name: a
 * container ID names any container on the node, and its snapshot is mounted for whoever asked.
 */
export function checkBelongsToPod(labels: Record<string, string>, containerId: string, podUid: string, container: string): void {
  const [ownerPod, ownerName] = [labels[POD_UID_LABEL], labels[CONTAINER_NAME_LABEL]];
  if (ownerPod === podUid && ownerName === container) return;
  // Labels are anyone's text for a container kubelet did not make: quoted, short, escaped.
  const shown = (v: string) => (/^[-a-z0-9.]{1,253}$/.test(v) ? v : JSON.stringify(v.slice(0, 80)));
  const owner = ownerPod
    ? `pod ${shown(ownerPod)}'s container ${JSON.stringify((ownerName ?? '(unnamed)').slice(0, 80))}`
    : 'no pod (it has no kubelet labels)';
  throw new NsdebugError(
    `container ${shortId(containerId)} belongs to ${owner}, not to pod ${podUid}'s container ${JSON.stringify(container)}: refused`,
    ExitCode.FORBIDDEN,
  );
}

/** What the runtime keeps of a dead container: its layers (top first), and its process's cwd and confinement. */
export interface DeadContainer {
  layers: string;
  cwd: string;
  confinement: Confinement;
}

/**
 * The pod's dead container as containerd keeps it, once kubelet's labels say it is that pod's
 * container: its snapshot's layers, and the user, capabilities and cwd runc gave its process.
 */
export async function deadContainer(containerId: string, podUid: string, container: string): Promise<DeadContainer> {
  // Whose snapshot this is, before mounting it: kubelet's labels name the pod and container.
  const record = await containerRecord(containerId, runtimeEndpoint());
  if (!record) throw nothingLeft(containerId);
  checkBelongsToPod(record.labels, containerId, podUid, container);
  let confinement: Confinement;
  let cwd = '/';
  try {
    const spec = ociSpecOf(record, containerId);
    confinement = ociConfinement(spec);
    const specCwd = (spec as { process?: { cwd?: unknown } }).process?.cwd;
    if (typeof specCwd === 'string' && specCwd.startsWith('/')) cwd = specCwd;
  } catch (err) {
    if (err instanceof NsdebugError) throw err;
    throw new NsdebugError(
      `cannot read the confinement of container ${shortId(containerId)} from its OCI spec: ${(err as Error).message}`,
      ExitCode.ENTER_FAILED,
    );
  }
  return { layers: await containerLayers(containerId, runtimeEndpoint()), cwd, confinement };
}
