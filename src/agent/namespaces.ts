// `nsdebug-agent ns`: the lsns view of one pod. Every process in the pod's cgroup tree is asked
// for its namespaces; a namespace's inode is its identity, so grouping by inode shows who shares
// what: containers with each other (shareProcessNamespace, the sandbox's network), with the node
// (hostNetwork, hostPID, hostUsers), and namespaces made inside a container (unshare, sandboxes).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { ExitCode, NAMESPACE_KINDS, type NamespaceInfo, type NamespaceKind } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { CONTAINER_ID, containerIdOf, podCgroupDirs, procsBelow } from './cgroups.js';
import { nodeProcess } from './postmortem.js';
import { namespaceId, readCmdline, readStat, readStatus } from './procfs.js';
import { pickInit } from './resolve.js';

/** What one process is in: its namespaces' inodes by kind (kinds it cannot show are absent). */
export interface ProcessNamespaces {
  hostPid: number;
  /** the container (cgroup) it belongs to */
  containerId: string;
  /** PID namespace depth below the reader's: NSpid length - 1 */
  level: number;
  /** its PID in its own PID namespace (1 = that namespace's init) */
  innermostPid: number;
  command: string;
  inodes: Partial<Record<NamespaceKind, number>>;
}

/** "pid:[4026531836]" → 4026531836 */
export function inodeOf(link: string): number | undefined {
  const match = /^\w+:\[(\d+)\]$/.exec(link);
  return match ? Number(match[1]) : undefined;
}

/**
 * Group processes by namespace. inits: each container's init process; node: the node's own
 * inodes. Namespaces come in NAMESPACE_KINDS order, PID namespaces by level, then by first process.
 */
export function groupNamespaces(
  processes: ProcessNamespaces[],
  inits: ReadonlyMap<string, number>,
  node: Partial<Record<NamespaceKind, number>>,
): NamespaceInfo[] {
  const byHostPid = new Map(processes.map((p) => [p.hostPid, p]));
  const entries: NamespaceInfo[] = [];
  for (const kind of NAMESPACE_KINDS) {
    const members = new Map<number, ProcessNamespaces[]>();
    for (const p of processes) {
      const inode = p.inodes[kind];
      if (inode !== undefined) members.set(inode, [...(members.get(inode) ?? []), p]);
    }
    for (const [inode, procs] of members) {
      const sorted = [...procs].sort((a, b) => a.hostPid - b.hostPid);
      // a PID namespace's first process is its init (PID 1) when the pod has it
      const first = (kind === 'pid' ? sorted.find((p) => p.innermostPid === 1) : undefined) ?? sorted[0]!;
      const containers = [...inits].filter(([, pid]) => byHostPid.get(pid)?.inodes[kind] === inode).map(([id]) => id);
      entries.push({
        kind,
        inode,
        containers,
        ...(containers.length === 0 ? { nestedIn: first.containerId } : {}),
        node: node[kind] === inode,
        ...(kind === 'pid' ? { level: first.level } : {}),
        processes: procs.length,
        hostPid: first.hostPid,
        command: first.command,
      });
    }
  }
  const rank = (e: NamespaceInfo) => NAMESPACE_KINDS.indexOf(e.kind) * 1000 + (e.level ?? 0);
  return entries.sort((a, b) => rank(a) - rank(b) || a.hostPid - b.hostPid);
}

function namespacesOf(pid: number | 'self'): Partial<Record<NamespaceKind, number>> {
  const inodes: Partial<Record<NamespaceKind, number>> = {};
  for (const kind of NAMESPACE_KINDS) {
    try {
      const inode = inodeOf(namespaceId(pid, kind));
      if (inode !== undefined) inodes[kind] = inode;
    } catch {
      // the kernel lacks this kind (time before 5.6), or the process is gone
    }
  }
  return inodes;
}

/** The pod's containers that have processes, by the cgroup directory of each, from the first hierarchy that shows any. */
function podContainers(podUid: string): Map<string, number[]> {
  for (const dir of podCgroupDirs(podUid)) {
    const containers = new Map<string, number[]>();
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const id = entry.isDirectory() ? containerIdOf(entry.name) : undefined;
      if (!id || !CONTAINER_ID.test(id)) continue;
      const pids = procsBelow(join(dir, entry.name));
      if (pids.length) containers.set(id, pids);
    }
    if (containers.size) return containers;
  }
  throw new NsdebugError(`pod ${podUid} has no running processes on this node: it has ended or runs on another node`, ExitCode.NOT_FOUND);
}

/** Every namespace the pod's processes are in, with who shares each. */
export function listPodNamespaces(podUid: string): NamespaceInfo[] {
  const processes: ProcessNamespaces[] = [];
  const inits = new Map<string, number>();
  for (const [containerId, pids] of podContainers(podUid)) {
    inits.set(containerId, pickInit(pids));
    for (const hostPid of pids) {
      try {
        const nsPids = readStatus(hostPid).nsPids;
        const argv = readCmdline(hostPid);
        const inodes = namespacesOf(hostPid);
        if (Object.keys(inodes).length === 0) continue; // exited while read
        processes.push({
          hostPid,
          containerId,
          level: nsPids.length - 1,
          innermostPid: nsPids.at(-1) ?? hostPid,
          command: argv.length ? argv.join(' ') : `[${readStat(hostPid).comm}]`,
          inodes,
        });
      } catch {
        // exited while listing
      }
    }
  }
  return groupNamespaces(processes, inits, namespacesOf(nodeProcess()));
}
