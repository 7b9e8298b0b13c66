// Where a container's processes live in the cgroup tree, for every layout kubelet and the
// runtimes produce: cgroup v1, v2 and hybrid; cgroupfs and systemd drivers; containerd, CRI-O,
// cri-dockerd, and bare containerd/docker/podman. Parsers are pure; I/O sits at the bottom.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { PROC } from './procfs.js';

export const CONTAINER_ID = /^[0-9a-f]{64}$/;
export const POD_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A cgroup hierarchy mounted somewhere we can read it. */
export interface CgroupMount {
  /** where it is mounted, as a path we can open (may start with /proc/1/root) */
  path: string;
  version: 1 | 2;
  /** v1: the controllers (cpu, memory, name=systemd…); v2: [] */
  controllers: string[];
}

/** Mounts of cgroup hierarchies in a mountinfo text, whole hierarchies only (root "/"). */
export function parseCgroupMounts(mountinfo: string, prefix = ''): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional fields] - fstype source superoptions
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const fields = pre.split(' ');
    const [fstype, , superOptions = ''] = post.split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root !== '/' || !mountPoint) continue;
    const path = prefix + unescapeMountPath(mountPoint);
    if (fstype === 'cgroup2') mounts.push({ path, version: 2, controllers: [] });
    else if (fstype === 'cgroup') {
      const known = [
        'cpu',
        'cpuacct',
        'cpuset',
        'memory',
        'devices',
        'freezer',
        'blkio',
        'pids',
        'hugetlb',
        'net_cls',
        'net_prio',
        'perf_event',
        'rdma',
        'misc',
      ];
      const controllers = superOptions.split(',').filter((o) => known.includes(o) || o.startsWith('name='));
      mounts.push({ path, version: 1, controllers });
    }
  }
  return mounts;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescapeMountPath = (p: string) => p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));

export interface CgroupMembership {
  /** "0" for v2 */
  hierarchyId: string;
  controllers: string[];
  path: string;
}

/** Lines of /proc/PID/cgroup: "hierarchy-ID:controller-list:cgroup-path". */
export function parseProcCgroup(text: string): CgroupMembership[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const first = line.indexOf(':');
      const second = line.indexOf(':', first + 1);
      return {
        hierarchyId: line.slice(0, first),
        controllers: line
          .slice(first + 1, second)
          .split(',')
          .filter(Boolean),
        path: line.slice(second + 1),
      };
    });
}

// The last path component names the container: a bare ID (cgroupfs drivers, /k8s.io/ID) or a
// systemd scope "<runtime>-ID.scope"; podman adds "libpod-ID" under cgroupfs.
const CONTAINER_COMPONENT = /^(?:cri-containerd-|crio-|docker-|libpod-)?([0-9a-f]{64})(?:\.scope)?$/;
// cgroupfs writes "pod<uid>", the systemd driver "kubepods-<qos>-pod<uid with _ for ->.slice".
const POD_COMPONENT = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

/** The container ID a cgroup path names, if it names one. */
export function containerIdOf(cgroupPath: string): string | undefined {
  const last = cgroupPath.split('/').at(-1) ?? '';
  return CONTAINER_COMPONENT.exec(last)?.[1];
}

/** The pod UID (with dashes) a cgroup path names, if any of its components is a pod's. */
export function podUidOf(cgroupPath: string): string | undefined {
  for (const component of cgroupPath.split('/').reverse()) {
    const match = POD_COMPONENT.exec(component);
    if (match?.[1]) return match[1].replaceAll('_', '-');
  }
  return undefined;
}

const QOS_CLASSES = ['besteffort', 'burstable'] as const;
const SCOPE_PREFIXES = ['cri-containerd', 'crio', 'docker'] as const;

/**
 * Paths (relative to a hierarchy's root) where kubelet and the runtimes put this container, most
 * likely first. Without a pod UID only the non-Kubernetes layouts can be named; the caller scans.
 */
export function containerCgroupCandidates(containerId: string, podUid?: string, kubeletRoots: string[] = ['']): string[] {
  const candidates: string[] = [];
  for (const pod of podUid ? podCgroupCandidates(podUid, kubeletRoots) : []) {
    // cgroupfs driver: the container's directory is its ID; the systemd driver: a runtime scope.
    if (pod.endsWith('.slice')) for (const prefix of SCOPE_PREFIXES) candidates.push(`${pod}/${prefix}-${containerId}.scope`);
    else candidates.push(`${pod}/${containerId}`, `${pod}/crio-${containerId}`);
  }
  candidates.push(
    `k8s.io/${containerId}`,
    `default/${containerId}`,
    `docker/${containerId}`,
    `system.slice/docker-${containerId}.scope`,
    `libpod_parent/libpod-${containerId}`,
    `machine.slice/libpod-${containerId}.scope`,
  );
  return candidates;
}

/** A pod's cgroup directories under the kubelet's root (default "/", kind's "/kubelet", --cgroup-root). */
export function podCgroupCandidates(podUid: string, kubeletRoots: string[] = ['']): string[] {
  const underscored = podUid.replaceAll('-', '_');
  const pods = [
    // cgroupfs driver: /kubepods/<qos>/pod<uid>; guaranteed pods sit directly under kubepods.
    ...QOS_CLASSES.map((q) => `kubepods/${q}/pod${podUid}`),
    `kubepods/pod${podUid}`,
    // systemd driver: slices named after their parents.
    ...QOS_CLASSES.map((q) => `kubepods.slice/kubepods-${q}.slice/kubepods-${q}-pod${underscored}.slice`),
    `kubepods.slice/kubepods-pod${underscored}.slice`,
  ];
  return kubeletRoots.flatMap((root) => pods.map((pod) => (root ? `${root}/${pod}` : pod)));
}

/**
 * The kubelet's cgroup root as a cgroup path names it: what precedes its kubepods tree
 * ("" for the default root "/", "kubelet" for kind's --cgroup-root=/kubelet), or undefined.
 */
export function kubeletRootOf(cgroupPath: string): string | undefined {
  const components = cgroupPath.split('/').filter(Boolean);
  const at = components.findIndex((c) => KUBEPODS_ROOTS.includes(c));
  return at < 0 ? undefined : components.slice(0, at).join('/');
}

/** Roots of the Kubernetes pod trees, under which an unknown pod UID is looked for by scanning. */
export const KUBEPODS_ROOTS = ['kubepods', 'kubepods.slice'];

// ---- I/O ----

/**
 * Cgroup hierarchies, host's view first: in a container with a private cgroup namespace our own
 * /sys/fs/cgroup shows only our subtree, while /proc/1/root (hostPID) shows the node's whole tree.
 */
export function cgroupMounts(): CgroupMount[] {
  const sources: Array<[string, string]> = [[`${PROC}/self/mountinfo`, '']];
  if (!sameFile(`${PROC}/1/root`, '/')) sources.unshift([`${PROC}/1/mountinfo`, `${PROC}/1/root`]);
  const mounts: CgroupMount[] = [];
  for (const [file, prefix] of sources) {
    try {
      mounts.push(...parseCgroupMounts(readFileSync(file, 'utf8'), prefix));
    } catch {
      // not readable from here: the next source may be
    }
  }
  // v2 first (one read answers), then the v1 hierarchies every runtime places containers in.
  const rank = (m: CgroupMount) =>
    m.version === 2 ? 0 : m.controllers.includes('pids') ? 1 : m.controllers.includes('name=systemd') ? 2 : 3;
  return mounts.sort((a, b) => rank(a) - rank(b));
}

function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** Directories (relative paths) named for containerId under the kubepods roots, depth ≤ 3. */
export function scanForContainer(mount: CgroupMount, containerId: string, kubeletRoots: string[] = ['']): string[] {
  const found: string[] = [];
  const walk = (rel: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(join(mount.path, rel), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const name of entries) {
      const child = `${rel}/${name}`;
      if (containerIdOf(name) === containerId) found.push(child);
      else if (depth < 3) walk(child, depth + 1);
    }
  };
  for (const kubeletRoot of kubeletRoots) {
    for (const root of KUBEPODS_ROOTS) {
      const rel = kubeletRoot ? `${kubeletRoot}/${root}` : root;
      if (existsSync(join(mount.path, rel))) walk(rel, 1);
    }
  }
  return found;
}

/**
 * Where this node's kubelet roots its pods: the agent is one of them, so its own cgroup names
 * the root (the default "" is always tried too).
 */
export function kubeletRoots(): string[] {
  const roots = new Set(['']);
  try {
    for (const m of parseProcCgroup(readFileSync(`${PROC}/self/cgroup`, 'utf8'))) {
      const root = kubeletRootOf(m.path);
      if (root !== undefined) roots.add(root);
    }
  } catch {
    // not readable: the default root only
  }
  return [...roots];
}

/** PIDs in a cgroup directory (cgroup.procs is in the reader's PID namespace). */
export function readCgroupProcs(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((n) => Number.parseInt(n, 10));
}

/** The pod's cgroup directories that exist, one per hierarchy, in cgroupMounts() order. */
export function podCgroupDirs(podUid: string): string[] {
  const roots = kubeletRoots();
  return cgroupMounts().flatMap((mount) =>
    podCgroupCandidates(podUid, roots)
      .map((rel) => join(mount.path, rel))
      .filter((dir) => existsSync(dir)),
  );
}

/** PIDs in a cgroup directory and every directory below it; [] once it is gone. */
export function procsBelow(dir: string): number[] {
  const pids: number[] = [];
  try {
    pids.push(...readCgroupProcs(dir));
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) pids.push(...procsBelow(join(dir, entry.name)));
  } catch {
    // removed meanwhile
  }
  return pids;
}
