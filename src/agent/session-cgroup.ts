// A cgroup (v2) per session, so that ending the session kills every process it started,
// including ones the user backgrounded or double-forked: cgroup.kill takes them all at once.
// A confined session's cgroup is made below the target container's own (v2), and the session
// joins the container's cgroup in every v1 hierarchy: the container's memory, pids, cpu and
// device rules then hold for the session as for `kubectl exec`. Sessions with the agent's power
// (--privileged, node shells) and post-mortem ones (no live container) stay below the agent's own.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
  constants as fsConstants,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { cgroupMounts, containerCgroupCandidates, KUBEPODS_ROOTS, kubeletRoots, parseProcCgroup } from './cgroups.js';
import { PROC, processExists } from './procfs.js';

const PREFIX = 'nsdebug-session-';

export interface SessionCgroup {
  dir: string;
  /** cgroup.procs, read-write: the supervisor moves itself here before joining; the session's init reads who is left */
  procsFd: number;
  /** cgroup.kill, opened for writing; -1 on kernels before 5.14 */
  killFd: number;
}

/** The directory of our own cgroup in the v2 hierarchy, or undefined without one we can write. */
export function ownCgroupV2Dir(): string | undefined {
  const own = parseProcCgroup(readFileSync(`${PROC}/self/cgroup`, 'utf8')).find((m) => m.hierarchyId === '0');
  if (!own) return undefined;
  // Our mounts first: /proc/self/cgroup paths are relative to our cgroup namespace, as they are.
  const mount = cgroupMounts()
    .filter((m) => m.version === 2)
    .sort((a, b) => Number(a.path.startsWith(`${PROC}/1/`)) - Number(b.path.startsWith(`${PROC}/1/`)))[0];
  return mount ? join(mount.path, own.path) : undefined;
}

/** A live container's own cgroup directories: in the v2 hierarchy, and one per v1 hierarchy. */
export interface ContainerCgroups {
  v2?: string;
  v1: string[];
}

/** Where the container's cgroups are, in every hierarchy this node mounts (each hierarchy once). */
export function containerCgroups(containerId: string, podUid: string | undefined): ContainerCgroups {
  const candidates = containerCgroupCandidates(containerId, podUid, kubeletRoots());
  const found: ContainerCgroups = { v1: [] };
  const seen = new Set<string>();
  for (const mount of cgroupMounts()) {
    const hierarchy = mount.version === 2 ? 'v2' : mount.controllers.join(',');
    if (seen.has(hierarchy)) continue;
    const rel = candidates.find((r) => existsSync(join(mount.path, r)));
    if (rel === undefined) continue;
    seen.add(hierarchy);
    if (mount.version === 2) found.v2 = join(mount.path, rel);
    else found.v1.push(join(mount.path, rel));
  }
  return found;
}

/** cgroup.procs of each v1 directory, opened for writing (the session's supervisor joins each). */
export function openCgroupJoins(dirs: string[]): number[] {
  const fds: number[] = [];
  try {
    for (const dir of dirs) fds.push(openSync(join(dir, 'cgroup.procs'), fsConstants.O_WRONLY));
    return fds;
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
}

/** Create the session's cgroup below parent (default, and when parent is undefined: the agent's own), or undefined where none can be made (then the C side kills by group). */
export function createSessionCgroup(parent = ownCgroupV2Dir(), random = () => randomBytes(4).toString('hex')): SessionCgroup | undefined {
  if (!parent) return undefined;
  const dir = join(parent, `${PREFIX}${process.pid}-${random()}`);
  try {
    mkdirSync(dir);
  } catch {
    return undefined;
  }
  const procsFd = openSync(join(dir, 'cgroup.procs'), fsConstants.O_RDWR);
  let killFd = -1;
  try {
    killFd = openSync(join(dir, 'cgroup.kill'), fsConstants.O_WRONLY);
  } catch {
    // cgroup.kill arrived in Linux 5.14; removeSessionCgroup kills process by process instead.
  }
  return { dir, procsFd, killFd };
}

const populated = (dir: string) => /^populated 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));

function killAll(dir: string): void {
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
    return;
  } catch {
    // no cgroup.kill: signal each member
  }
  for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kill whatever is left in the session, wait until it is empty, and remove it. */
export async function removeSessionCgroup(session: SessionCgroup, timeoutMs = 5000): Promise<void> {
  for (const fd of [session.procsFd, session.killFd]) if (fd >= 0) closeSync(fd);
  await removeCgroupDir(session.dir, timeoutMs);
}

async function removeCgroupDir(dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (populated(dir)) {
    if (Date.now() > deadline) throw new Error(`session cgroup ${dir} still has processes after ${timeoutMs} ms`);
    killAll(dir);
    await sleep(5);
  }
  rmdirSync(dir);
}

/** What a session does with its cgroups, as one object: `enter` takes it, tests pass a fake of it (no cgroupfs, no root). */
export interface SessionCgroups {
  containerCgroups(containerId: string, podUid: string | undefined): ContainerCgroups;
  /** below parent; none given: below the agent's own cgroup */
  createSessionCgroup(parent?: string): SessionCgroup | undefined;
  openCgroupJoins(dirs: string[]): number[];
  removeSessionCgroup(session: SessionCgroup): Promise<void>;
}

/** The node's cgroups under /sys/fs/cgroup. */
export const nodeCgroups: SessionCgroups = { containerCgroups, createSessionCgroup, openCgroupJoins, removeSessionCgroup };

const ownerOf = (dir: string) => Number(/\/nsdebug-session-(\d+)-[^/]*$/.exec(dir)?.[1] ?? 0);

/**
 * Every session cgroup on this node: below the agent's own cgroup, and below the containers of
 * the v2 hierarchy's pod tree (pods, then containers: depth ≤ 5 under a kubepods root).
 */
export function sessionCgroupDirs(own = ownCgroupV2Dir(), podTrees = v2PodTrees()): string[] {
  const dirs: string[] = [];
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(PREFIX)) dirs.push(join(dir, name));
      else if (depth > 0) walk(join(dir, name), depth - 1);
    }
  };
  if (own) walk(own, 0);
  for (const tree of podTrees) walk(tree, 5);
  return [...new Set(dirs)];
}

function v2PodTrees(): string[] {
  const mount = cgroupMounts().find((m) => m.version === 2);
  if (!mount) return [];
  return kubeletRoots().flatMap((root) => KUBEPODS_ROOTS.map((k) => join(mount.path, root, k)).filter((dir) => existsSync(dir)));
}

/** PIDs of the `enter` processes whose sessions are running now. */
export function liveSessionOwners(dirs = sessionCgroupDirs()): number[] {
  return [...new Set(dirs.map(ownerOf))].filter((pid) => pid > 0 && processExists(pid));
}

/** Remove sessions left by agents that died (their PID is gone): kill their processes first. */
export async function removeStaleSessions(dirs = sessionCgroupDirs()): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of dirs) {
    const owner = ownerOf(dir);
    if (!owner || processExists(owner)) continue;
    await removeCgroupDir(dir, 5000);
    removed.push(dir);
  }
  return removed;
}
