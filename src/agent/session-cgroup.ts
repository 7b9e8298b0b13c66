// A cgroup (v2) per session, so that ending the session kills every process it started,
// including ones the user backgrounded or double-forked: cgroup.kill takes them all at once.
// It is made under the agent's own cgroup, so it shares the agent pod's limits.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync, constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { cgroupMounts, parseProcCgroup } from './cgroups.js';
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

/** Create the session's cgroup, or undefined where none can be made (then the C side kills by group). */
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

/** PIDs of the `enter` processes whose sessions are running now. */
export function liveSessionOwners(parent = ownCgroupV2Dir()): number[] {
  if (!parent) return [];
  return readdirSync(parent)
    .map((name) => Number(/^nsdebug-session-(\d+)-/.exec(name)?.[1]))
    .filter((pid) => pid > 0 && processExists(pid));
}

/** Remove sessions left by agents that died (their PID is gone): kill their processes first. */
export async function removeStaleSessions(parent = ownCgroupV2Dir()): Promise<string[]> {
  if (!parent) return [];
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    const owner = /^nsdebug-session-(\d+)-/.exec(name)?.[1];
    if (!owner || processExists(Number(owner))) continue;
    await removeCgroupDir(join(parent, name), 5000);
    removed.push(name);
  }
  return removed;
}
