// Post-mortem sessions: a container that has exited keeps its snapshot (its image layers and its
// own writes) until kubelet removes the container. The runtime names the layers; the pod's
// sandbox still runs and holds the pod's network, IPC and UTS namespaces.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { INamespace } from 'protobufjs';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { cgroupMounts, kubeletRoots, parseProcCgroup, podCgroupCandidates, podUidOf, readCgroupProcs } from './cgroups.js';
import { PROC, readStat } from './procfs.js';
import { pickInit, shortId } from './resolve.js';

/** containerd's socket as the node has it (the DaemonSet mounts /run/containerd). */
export const DEFAULT_RUNTIME_ENDPOINT = 'unix:///run/containerd/containerd.sock';

/**
 * The part of containerd's API used here (containerd/api services/snapshots/v1 and types/mount,
 * Apache-2.0), as a protobufjs JSON descriptor: Snapshots.Mounts and its messages.
 */
const SNAPSHOTS_API: INamespace = {
  nested: {
    containerd: {
      nested: {
        types: {
          nested: {
            Mount: {
              fields: {
                type: { type: 'string', id: 1 },
                source: { type: 'string', id: 2 },
                target: { type: 'string', id: 3 },
                options: { rule: 'repeated', type: 'string', id: 4 },
              },
            },
          },
        },
        services: {
          nested: {
            snapshots: {
              nested: {
                v1: {
                  nested: {
                    Snapshots: { methods: { Mounts: { requestType: 'MountsRequest', responseType: 'MountsResponse', comment: '' } } },
                    MountsRequest: { fields: { snapshotter: { type: 'string', id: 1 }, key: { type: 'string', id: 2 } } },
                    MountsResponse: { fields: { mounts: { rule: 'repeated', type: 'containerd.types.Mount', id: 1 } } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

interface Mount {
  type: string;
  source: string;
  options: string[];
}

/** The container's layers, top (its own writes) first: overlayfs lowerdir syntax, host paths. */
export function layersOf(mounts: Mount[]): string {
  const [mount] = mounts;
  if (mounts.length !== 1 || !mount) throw new Error(`expected one mount from the snapshotter, got ${mounts.length}`);
  if (mount.type === 'bind') return mount.source;
  if (mount.type !== 'overlay') throw new Error(`unsupported snapshot mount type ${mount.type}`);
  const option = (name: string) => mount.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
  const layers = [option('upperdir'), ...(option('lowerdir')?.split(':') ?? [])].filter((l): l is string => !!l);
  if (!layers.length) throw new Error('the snapshot mount names no layer');
  if (layers.some((l) => !l.startsWith('/') || /[,:]/.test(l))) throw new Error('a snapshot layer path is not a plain absolute path');
  return layers.join(':');
}

/** Ask containerd (CRI's namespace k8s.io, overlayfs snapshotter) for the container's layers. */
export async function containerLayers(containerId: string, endpoint = DEFAULT_RUNTIME_ENDPOINT): Promise<string> {
  if (!endpoint.startsWith('unix://')) {
    throw new NsdebugError(
      `post-mortem sessions are not supported yet on runtime endpoint ${endpoint} (containerd only)`,
      ExitCode.ENTER_FAILED,
    );
  }
  const [grpc, loader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
  const definition = loader.fromJSON(SNAPSHOTS_API, { keepCase: true, defaults: true, arrays: true });
  const api = grpc.loadPackageDefinition(definition) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: new (address: string, creds: unknown) => SnapshotsClient } } } };
  };
  const client = new api.containerd.services.snapshots.v1.Snapshots(endpoint, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('containerd-namespace', 'k8s.io');
  try {
    const response = await new Promise<{ mounts: Mount[] }>((resolve, reject) =>
      client.Mounts({ snapshotter: 'overlayfs', key: containerId }, metadata, { deadline: Date.now() + 10_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
    return layersOf(response.mounts);
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === grpc.status.NOT_FOUND) {
      throw new NsdebugError(
        `nothing left to inspect: container ${shortId(containerId)} has been removed from the node with its filesystem; use --wait to catch its next start`,
        ExitCode.NOT_FOUND,
      );
    }
    if (code === grpc.status.UNAVAILABLE) {
      throw new NsdebugError(`cannot reach containerd at ${endpoint}: ${(err as Error).message}`, ExitCode.ENTER_FAILED);
    }
    throw err;
  } finally {
    client.close();
  }
}

interface SnapshotsClient {
  Mounts(
    req: { snapshotter: string; key: string },
    metadata: unknown,
    options: { deadline: number },
    callback: (err: Error | null, res: { mounts: Mount[] }) => void,
  ): void;
  close(): void;
}

/**
 * The pod's sandbox (pause) process, the oldest process in the pod's cgroup tree, if the pod
 * still has one (kubelet stops it once every container of a Never-restarting pod has ended);
 * and a process in the node's mount namespace, where the snapshot's layer paths resolve: the
 * sandbox's parent (the runtime's shim), else the runtime itself.
 */
export function podSandbox(podUid: string, layerPath: string): { sandboxPid?: number; hostPid: number } {
  const roots = kubeletRoots();
  const pids: number[] = [];
  for (const mount of cgroupMounts()) {
    for (const rel of podCgroupCandidates(podUid, roots)) {
      const dir = join(mount.path, rel);
      if (existsSync(dir)) pids.push(...procsBelow(dir));
    }
    if (pids.length) break;
  }
  const sandboxPid = pids.length ? pickInit([...new Set(pids)]) : undefined;
  const shim = sandboxPid ? readStat(sandboxPid).ppid : 0;
  const hostPid = [shim, ...runtimeProcesses()].find((pid) => pid > 0 && seesPath(pid, layerPath));
  if (!hostPid) throw new NsdebugError(`cannot find the node's mount namespace, where container layers are`, ExitCode.ENTER_FAILED);
  return { ...(sandboxPid ? { sandboxPid } : {}), hostPid };
}

/** containerd and its shims, as this node's /proc shows them. */
function runtimeProcesses(): number[] {
  return readdirSync(PROC)
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return /^containerd(-shim.*)?$/.test(readFileSync(`${PROC}/${pid}/comm`, 'utf8').trim());
      } catch {
        return false;
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

function procsBelow(dir: string): number[] {
  const pids: number[] = [];
  try {
    pids.push(...readCgroupProcs(dir));
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) pids.push(...procsBelow(join(dir, entry.name)));
  } catch {
    // removed meanwhile
  }
  return pids;
}
