// Pods made the way kubelet makes them, for integration tests: through CRI, with kubelet's
// labels and annotations, its cgroup layout (cgroupfs driver: /kubepods/<qos>/pod<uid>),
// its namespace options (PID namespace per container unless shareProcessNamespace), its
// default masked/read-only /proc paths, and its QoS resources. Nothing here is needed by
// the agent itself: tests use the host PIDs reported here only to cross-check it.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CriClient,
  CriError,
  type ContainerConfig,
  type ContainerState,
  type ContainerStatus,
  type Labels,
  type LinuxContainerResources,
  type Mount,
  type NamespaceOption,
  type PodSandboxConfig,
} from './cri.js';

/** The images test/support/images.sh builds and imports. */
export const IMAGES = {
  pause: 'registry.k8s.io/pause:3.6',
  /** static busybox, every applet in /bin etc., /marker.txt = MARKERS.busybox, cmd `sleep infinity` */
  busybox: 'nsdebug.test/busybox:1',
  /** no shell: only /app (sleeps until SIGTERM), /etc/passwd, /tmp, /marker.txt = MARKERS.distroless */
  distroless: 'nsdebug.test/distroless:1',
} as const;
/** Content of /marker.txt in each image (with a trailing newline). */
export const MARKERS = { busybox: 'nsdebug-marker', distroless: 'nsdebug-distroless-marker' } as const;

export type Qos = 'besteffort' | 'burstable' | 'guaranteed';

export interface ContainerSpec {
  name: string;
  image: string;
  /** Kubernetes `command` (replaces the image entrypoint). */
  command?: string[];
  /** Kubernetes `args` (replaces the image cmd). */
  args?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  readOnlyRootfs?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  supplementalGroups?: number[];
  /** Kubernetes `capabilities` (names without CAP_, e.g. ALL, NET_RAW). */
  capabilities?: { add?: string[]; drop?: string[] };
  /** Kubernetes `seccompProfile.type` (default here: Unconfined, as kubelet's own default). */
  seccomp?: 'RuntimeDefault' | 'Unconfined';
  /** `allowPrivilegeEscalation: false`: kubelet sets no_new_privs. */
  noNewPrivs?: boolean;
  privileged?: boolean;
  tty?: boolean;
  stdin?: boolean;
  mounts?: Mount[];
  /** Extra container labels/annotations (kubelet's own are always set). */
  labels?: Labels;
  annotations?: Labels;
  /** Create but do not start. */
  noStart?: boolean;
}

export interface PodSpec {
  name: string;
  namespace?: string;
  /** Default: a fresh UUID, as the API server assigns. */
  uid?: string;
  qos?: Qos;
  shareProcessNamespace?: boolean;
  hostNetwork?: boolean;
  hostPID?: boolean;
  /** Pod labels/annotations (copied to the sandbox as kubelet does). */
  labels?: Labels;
  annotations?: Labels;
  /** Shorthand for one container named `containerName` (default "main"). */
  image?: string;
  containerName?: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  readOnlyRootfs?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  /** Several containers, started in order like kubelet's regular containers. */
  containers?: ContainerSpec[];
  /**
   * Directory for container logs (kubelet: /var/log/pods); the pod's own directory is
   * `<logRoot>/<namespace>_<name>_<uid>`. Default $NSDEBUG_POD_LOG_ROOT, else no logs.
   */
  logRoot?: string;
}

export interface PodContainer {
  name: string;
  /** 64 hex digits: the runtime's container ID (`containerd://<id>` in the pod status). */
  id: string;
  image: string;
  /** Host PID of the container's init process (0 when not running). */
  pid: number;
}

export interface Pod {
  name: string;
  namespace: string;
  podUid: string;
  qos: Qos;
  sandboxId: string;
  /** Host PID of the sandbox's pause process. */
  sandboxPid: number;
  /** e.g. /kubepods/besteffort/pod<uid>; each container's cgroup is `${cgroupParent}/${id}`. */
  cgroupParent: string;
  sandboxConfig: PodSandboxConfig;
  containers: PodContainer[];
  /** The container named `name` (default: the first). */
  container(name?: string): PodContainer;
  /** Stops and removes every container and the sandbox, then the pod cgroup (kubelet's job). */
  remove(opts?: { gracePeriodSeconds?: number }): Promise<void>;
  /** Starts the container's next instance (attempt + 1) in the same sandbox, as kubelet restarts it. */
  restart(name: string): Promise<PodContainer>;
}

// kubelet's defaults for non-privileged containers (k8s.io/kubernetes pkg/securitycontext).
const DEFAULT_MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The pod cgroup kubelet's cgroupfs driver uses for a QoS class. */
export function podCgroupParent(qos: Qos, podUid: string): string {
  switch (qos) {
    case 'guaranteed':
      return `/kubepods/pod${podUid}`;
    case 'burstable':
      return `/kubepods/burstable/pod${podUid}`;
    case 'besteffort':
      return `/kubepods/besteffort/pod${podUid}`;
  }
}

/** Container resources kubelet derives for each QoS class (a 100m/64Mi container). */
function qosResources(qos: Qos): LinuxContainerResources {
  switch (qos) {
    case 'besteffort':
      return { cpuShares: 2, oomScoreAdj: 1000 };
    case 'burstable':
      return { cpuShares: 102, cpuPeriod: 100000, oomScoreAdj: 999 };
    case 'guaranteed':
      // containerd clamps a negative oom_score_adj to its own (restrict_oom_score_adj).
      return { cpuShares: 102, cpuPeriod: 100000, cpuQuota: 10000, memoryLimitInBytes: 64 * 1024 * 1024, oomScoreAdj: -997 };
  }
}

function containerHash(c: ContainerSpec): string {
  return String(createHash('sha256').update(JSON.stringify(c)).digest().readUInt32BE(0));
}

const isNotFound = (e: unknown) => e instanceof CriError && e.code === 5; /* NOT_FOUND */

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** Host PID of a container's (or sandbox's) init, from the runtime's verbose status; 0 if unknown. */
export async function containerPid(cri: CriClient, id: string): Promise<number> {
  try {
    const { info } = await cri.containerStatus(id, true);
    return info.info ? Number(JSON.parse(info.info).pid ?? 0) : 0;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  const { info } = await cri.podSandboxStatus(id, true);
  return info.info ? Number(JSON.parse(info.info).pid ?? 0) : 0;
}

/** Waits until a container is in `state`; throws after timeoutMs with the state it is in. */
export async function waitContainerState(cri: CriClient, id: string, state: ContainerState, timeoutMs = 10_000): Promise<ContainerStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await cri.containerStatus(id);
    if (status.state === state) return status;
    if (Date.now() > deadline) throw new Error(`container ${id} is ${status.state}, not ${state}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stops a container (stop signal, then SIGKILL after timeoutSeconds; 0 = SIGKILL at once) and
 * waits until it is EXITED. The container and its snapshot are left in place (post-mortem tests).
 */
export async function stopContainer(cri: CriClient, id: string, timeoutSeconds = 0): Promise<ContainerStatus> {
  await cri.stopContainer(id, timeoutSeconds);
  return waitContainerState(cri, id, 'CONTAINER_EXITED', timeoutSeconds * 1000 + 10_000);
}

/** cgroup mount points on this host (v1 controllers, named hierarchies, cgroup2). */
export function cgroupMounts(): string[] {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup' || f[2] === 'cgroup2') out.add(f[1]!);
  }
  return [...out];
}

/** PIDs in a cgroup (path relative to the hierarchy root), read from the first hierarchy that has it. */
export function cgroupProcs(cgroupPath: string): number[] {
  const mounts = cgroupMounts().sort((a, b) => Number(b.endsWith('unified')) - Number(a.endsWith('unified')));
  for (const m of mounts) {
    try {
      return readFileSync(join(m, cgroupPath, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      /* not in this hierarchy */
    }
  }
  throw new Error(`cgroup ${cgroupPath} not found in any hierarchy`);
}

/** Removes a cgroup directory tree in every hierarchy, deepest first (it must be empty of tasks). */
export async function removeCgroupTree(cgroupPath: string): Promise<void> {
  const rm = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name));
    rmdirSync(dir);
  };
  for (const m of cgroupMounts()) {
    const dir = join(m, cgroupPath);
    for (let i = 0; ; i++) {
      try {
        if (!statSync(dir, { throwIfNoEntry: false })) break;
        rm(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        if (i >= 50) throw new Error(`cannot remove cgroup ${dir}: ${(e as Error).message}`, { cause: e });
        await new Promise((r) => setTimeout(r, 100)); // EBUSY: tasks still exiting
      }
    }
  }
}

function containersOf(spec: PodSpec): ContainerSpec[] {
  if (spec.containers?.length) {
    if (spec.image) throw new Error('createPod: give either image (one container) or containers, not both');
    return spec.containers;
  }
  if (!spec.image) throw new Error('createPod: image or containers is required');
  const c: ContainerSpec = { name: spec.containerName ?? 'main', image: spec.image };
  if (spec.command) c.command = spec.command;
  if (spec.args) c.args = spec.args;
  if (spec.env) c.env = spec.env;
  if (spec.readOnlyRootfs !== undefined) c.readOnlyRootfs = spec.readOnlyRootfs;
  if (spec.runAsUser !== undefined) c.runAsUser = spec.runAsUser;
  if (spec.runAsGroup !== undefined) c.runAsGroup = spec.runAsGroup;
  return [c];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Creates a pod like kubelet: RunPodSandbox (pause), then CreateContainer + StartContainer
 * for each container in order. On failure, whatever was created is removed again.
 */
export async function createPod(cri: CriClient, spec: PodSpec): Promise<Pod> {
  const namespace = spec.namespace ?? 'default';
  const podUid = spec.uid ?? randomUUID();
  const qos = spec.qos ?? 'besteffort';
  if (!DNS_LABEL.test(spec.name)) throw new Error(`createPod: pod name must be a DNS label, got "${spec.name}"`);
  const containers = containersOf(spec);
  const cgroupParent = podCgroupParent(qos, podUid);
  const nsOpts: NamespaceOption = {
    network: spec.hostNetwork ? 'NODE' : 'POD',
    pid: spec.hostPID ? 'NODE' : spec.shareProcessNamespace ? 'POD' : 'CONTAINER',
    ipc: 'POD',
  };
  const logRoot = spec.logRoot ?? process.env.NSDEBUG_POD_LOG_ROOT;
  const podLabels: Labels = {
    ...spec.labels,
    'io.kubernetes.pod.name': spec.name,
    'io.kubernetes.pod.namespace': namespace,
    'io.kubernetes.pod.uid': podUid,
  };
  const sandboxConfig: PodSandboxConfig = {
    metadata: { name: spec.name, uid: podUid, namespace, attempt: 0 },
    // A host-network sandbox must not set a hostname.
    ...(spec.hostNetwork ? {} : { hostname: spec.name }),
    ...(logRoot ? { logDirectory: join(logRoot, `${namespace}_${spec.name}_${podUid}`) } : {}),
    labels: podLabels,
    annotations: {
      ...spec.annotations,
      'kubernetes.io/config.seen': new Date().toISOString(),
      'kubernetes.io/config.source': 'api',
    },
    linux: {
      cgroupParent,
      securityContext: { namespaceOptions: nsOpts, seccomp: { profileType: 'Unconfined' } },
      sysctls: {},
    },
  };

  const sandboxId = await cri.runPodSandbox(sandboxConfig);
  const created: PodContainer[] = [];
  const pod: Pod = {
    name: spec.name,
    namespace,
    podUid,
    qos,
    sandboxId,
    sandboxPid: 0,
    cgroupParent,
    sandboxConfig,
    containers: created,
    container(name?: string) {
      const c = name === undefined ? created[0] : created.find((x) => x.name === name);
      if (!c) throw new Error(`pod ${spec.name} has no container ${name ?? '(any)'}`);
      return c;
    },
    async remove(opts = {}) {
      await removePodSandbox(cri, sandboxId, { gracePeriodSeconds: opts.gracePeriodSeconds ?? 0, cgroupParent });
    },
    async restart(name: string) {
      const config = configs.get(name);
      if (!config) throw new Error(`pod ${spec.name} has no container ${name}`);
      const attempt = (config.metadata.attempt ?? 0) + 1;
      const next: ContainerConfig = {
        ...config,
        metadata: { name, attempt },
        annotations: { ...config.annotations, 'io.kubernetes.container.restartCount': String(attempt) },
        ...(config.logPath ? { logPath: `${name}/${attempt}.log` } : {}),
      };
      configs.set(name, next);
      const id = await cri.createContainer(sandboxId, next, sandboxConfig);
      await cri.startContainer(id);
      const pc: PodContainer = { name, id, image: config.image.image, pid: 0 };
      created.splice(
        created.findIndex((c) => c.name === name),
        1,
        pc,
      );
      return pc;
    },
  };
  const configs = new Map<string, ContainerConfig>();
  try {
    pod.sandboxPid = await containerPid(cri, sandboxId);
    for (const c of containers) {
      const sc = {
        namespaceOptions: nsOpts,
        seccomp: { profileType: c.seccomp ?? ('Unconfined' as const) },
        ...(c.capabilities
          ? { capabilities: { addCapabilities: c.capabilities.add ?? [], dropCapabilities: c.capabilities.drop ?? [] } }
          : {}),
        ...(c.noNewPrivs ? { noNewPrivs: true } : {}),
        ...(c.supplementalGroups ? { supplementalGroups: c.supplementalGroups } : {}),
        ...(c.privileged ? { privileged: true } : { maskedPaths: DEFAULT_MASKED_PATHS, readonlyPaths: DEFAULT_READONLY_PATHS }),
        ...(c.readOnlyRootfs ? { readonlyRootfs: true } : {}),
        ...(c.runAsUser !== undefined ? { runAsUser: { value: c.runAsUser } } : {}),
        ...(c.runAsGroup !== undefined ? { runAsGroup: { value: c.runAsGroup } } : {}),
      };
      const config: ContainerConfig = {
        metadata: { name: c.name, attempt: 0 },
        image: { image: c.image },
        command: c.command ?? [],
        args: c.args ?? [],
        workingDir: c.workingDir ?? '',
        envs: Object.entries(c.env ?? {}).map(([key, value]) => ({ key, value })),
        mounts: c.mounts ?? [],
        labels: {
          ...c.labels,
          'io.kubernetes.container.name': c.name,
          'io.kubernetes.pod.name': spec.name,
          'io.kubernetes.pod.namespace': namespace,
          'io.kubernetes.pod.uid': podUid,
        },
        annotations: {
          ...c.annotations,
          'io.kubernetes.container.hash': containerHash(c),
          'io.kubernetes.container.restartCount': '0',
          'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
          'io.kubernetes.container.terminationMessagePolicy': 'File',
          'io.kubernetes.pod.terminationGracePeriod': '30',
        },
        ...(logRoot ? { logPath: `${c.name}/0.log` } : {}),
        stdin: c.stdin ?? false,
        stdinOnce: false,
        tty: c.tty ?? false,
        linux: { resources: qosResources(qos), securityContext: sc },
      };
      configs.set(c.name, config);
      const id = await cri.createContainer(sandboxId, config, sandboxConfig);
      const pc: PodContainer = { name: c.name, id, image: c.image, pid: 0 };
      created.push(pc);
      if (!c.noStart) {
        await cri.startContainer(id);
        pc.pid = await containerPid(cri, id);
      }
    }
  } catch (e) {
    await pod.remove().catch(() => undefined);
    throw e;
  }
  return pod;
}

/**
 * Stops and removes a sandbox and its containers (kubelet's order), then removes the pod's
 * cgroup directories, which kubelet (not the runtime) owns. Tolerates what is already gone.
 */
export async function removePodSandbox(
  cri: CriClient,
  sandboxId: string,
  opts: { gracePeriodSeconds?: number; cgroupParent?: string } = {},
): Promise<void> {
  let cgroupParent = opts.cgroupParent;
  if (!cgroupParent) {
    try {
      const { status } = await cri.podSandboxStatus(sandboxId);
      const uid = status.metadata.uid;
      cgroupParent = (['besteffort', 'burstable', 'guaranteed'] as Qos[])
        .map((q) => podCgroupParent(q, uid))
        .find((p) => cgroupMounts().some((m) => statSync(join(m, p), { throwIfNoEntry: false })));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
  const containers = await cri.listContainers({ podSandboxId: sandboxId });
  await Promise.all(containers.map((c) => ignoreNotFound(cri.stopContainer(c.id, opts.gracePeriodSeconds ?? 0))));
  await Promise.all(containers.map((c) => ignoreNotFound(cri.removeContainer(c.id))));
  await ignoreNotFound(cri.stopPodSandbox(sandboxId));
  await ignoreNotFound(cri.removePodSandbox(sandboxId));
  if (cgroupParent) await removeCgroupTree(cgroupParent);
}

/** Removes every pod sandbox the runtime has (the integration tier's teardown). */
export async function removeAllPods(cri: CriClient): Promise<number> {
  const sandboxes = await cri.listPodSandbox();
  for (const s of sandboxes) await removePodSandbox(cri, s.id);
  return sandboxes.length;
}
