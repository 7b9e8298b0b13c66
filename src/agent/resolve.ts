// From a container ID (and pod UID) to the host PID of the container's init process.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import {
  cgroupMounts,
  containerCgroupCandidates,
  kubeletRoots,
  containerIdOf,
  parseProcCgroup,
  podUidOf,
  readCgroupProcs,
  scanForContainer,
} from './cgroups.js';
import { PROC, readStat, readStatus } from './procfs.js';

export interface ResolvedContainer {
  /** host PID of the container's init */
  pid: number;
  /** every PID in the container's cgroup when resolved */
  pids: number[];
  /** the cgroup directory the PIDs were read from, or the path found in /proc/PID/cgroup */
  cgroup: string;
  /** how it was found: the container's cgroup directory, or a scan of every /proc/PID/cgroup */
  via: 'cgroup' | 'proc-scan';
}

export const shortId = (id: string) => id.slice(0, 12);

/**
 * Find the container's processes through its cgroup directory (cost independent of how many
 * processes the node runs), else by scanning /proc/PID/cgroup; then pick its init.
 */
export function resolveContainer(containerId: string, podUid?: string): ResolvedContainer {
  const found = findByCgroupDir(containerId, podUid) ?? findByProcScan(containerId);
  if (!found || found.pids.length === 0) {
    throw new NsdebugError(
      `no running container ${shortId(containerId)} on this node: it has exited or runs on another node`,
      ExitCode.NOT_FOUND,
    );
  }
  const pid = pickInit(found.pids);
  verifyMembership(pid, containerId, podUid);
  return { pid, ...found };
}

function findByCgroupDir(containerId: string, podUid?: string): Omit<ResolvedContainer, 'pid'> | undefined {
  const mounts = cgroupMounts();
  const roots = kubeletRoots();
  const candidates = containerCgroupCandidates(containerId, podUid, roots);
  for (const mount of mounts) {
    const rels = candidates.filter((rel) => existsSync(join(mount.path, rel)));
    if (rels.length === 0 && !podUid) rels.push(...scanForContainer(mount, containerId, roots));
    for (const rel of rels) {
      const dir = join(mount.path, rel);
      const pids = readProcsQuietly(dir);
      if (pids.length) return { pids, cgroup: dir, via: 'cgroup' };
    }
  }
  return undefined;
}

function readProcsQuietly(dir: string): number[] {
  try {
    return readCgroupProcs(dir);
  } catch {
    return [];
  }
}

/** The slow path: every process's cgroup file, for layouts no candidate path describes. */
export function findByProcScan(containerId: string): Omit<ResolvedContainer, 'pid'> | undefined {
  const pids: number[] = [];
  let cgroup = '';
  for (const entry of readdirSync(PROC)) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`${PROC}/${entry}/cgroup`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const match = parseProcCgroup(text).find((m) => containerIdOf(m.path) === containerId);
    if (match) {
      pids.push(Number.parseInt(entry, 10));
      cgroup = match.path;
    }
  }
  return pids.length ? { pids, cgroup, via: 'proc-scan' } : undefined;
}

/**
 * The container's init: the process whose parent is outside the container (the runtime's shim).
 * `kubectl exec`'d processes qualify too, so the oldest wins. This also holds in
 * shareProcessNamespace pods, where the container's init is not PID 1 inside.
 */
export function pickInit(pids: number[]): number {
  const inside = new Set(pids);
  const roots: Array<{ pid: number; start: number }> = [];
  for (const pid of pids) {
    try {
      const stat = readStat(pid);
      if (!inside.has(stat.ppid)) roots.push({ pid, start: stat.startTicks });
    } catch {
      // exited meanwhile
    }
  }
  roots.sort((a, b) => a.start - b.start || a.pid - b.pid);
  const init = roots[0]?.pid ?? pids[0];
  if (init === undefined) throw new NsdebugError('the container has no processes left', ExitCode.NOT_FOUND);
  return init;
}

/** Check that pid is (still) a process of containerId, and of podUid when given. */
export function verifyMembership(pid: number, containerId: string, podUid?: string): void {
  let memberships;
  try {
    memberships = parseProcCgroup(readFileSync(`${PROC}/${pid}/cgroup`, 'utf8'));
    readStatus(pid);
  } catch {
    throw new NsdebugError(`container ${shortId(containerId)} exited while nsdebug was entering it`, ExitCode.NOT_FOUND);
  }
  const own = memberships.filter((m) => containerIdOf(m.path) === containerId);
  if (own.length === 0) {
    throw new NsdebugError(`process ${pid} is no longer part of container ${shortId(containerId)}`, ExitCode.NOT_FOUND);
  }
  if (podUid && !own.some((m) => podUidOf(m.path) === podUid)) {
    const actual = own.map((m) => podUidOf(m.path)).find(Boolean);
    throw new NsdebugError(
      `container ${shortId(containerId)} does not belong to pod ${podUid}` + (actual ? ` (it belongs to pod ${actual})` : ''),
      ExitCode.NOT_FOUND,
    );
  }
}

/**
 * The host PID of the process that has PID `nsPid` inside the container's PID namespace (NSpid),
 * which may itself sit in a PID namespace nested below the container's.
 */
export function processInContainer(target: ResolvedContainer, containerId: string, nsPid: number): number {
  const level = readStatus(target.pid).nsPids.length - 1;
  for (const pid of target.pids) {
    try {
      if (readStatus(pid).nsPids[level] === nsPid) return pid;
    } catch {
      // exited meanwhile
    }
  }
  throw new NsdebugError(`no process ${nsPid} in container ${shortId(containerId)}: see \`kubectl nsdebug ps\``, ExitCode.NOT_FOUND);
}
