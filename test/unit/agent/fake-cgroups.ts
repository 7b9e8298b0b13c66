// A fake of the session cgroups (SessionCgroups in src/agent/session-cgroup.ts) for the agent's
// unit tests: plain directories in a tmp dir instead of /sys/fs/cgroup, no root. The container's
// cgroups are one v2 directory and one v1 directory; a session cgroup is a directory below the
// container's (or below "the agent's own" when enter names no parent) with real files for its
// cgroup.procs and cgroup.kill fds. Calls are recorded in order, in a log shared with other fakes.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ContainerCgroups, SessionCgroup, SessionCgroups } from '../../../src/agent/session-cgroup.js';

export class FakeSessionCgroups implements SessionCgroups {
  readonly root = mkdtempSync(join(tmpdir(), 'nsdebug-fake-cgroups-'));
  /** the directory standing for the agent's own cgroup */
  readonly agentDir = join(this.root, 'agent');
  readonly container: Required<ContainerCgroups> = { v2: join(this.root, 'container'), v1: [join(this.root, 'v1-memory', 'container')] };
  /** the session cgroups made, in order */
  readonly sessions: SessionCgroup[] = [];
  /** the v1 joins opened, in order */
  readonly joinFds: number[] = [];
  private joinFailure: Error | undefined;

  constructor(readonly calls: string[] = []) {
    for (const dir of [this.agentDir, this.container.v2, ...this.container.v1]) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cgroup.procs'), '');
    }
  }

  /** The next openCgroupJoins throws err (a v1 cgroup.procs that cannot be opened). */
  failJoins(err: Error): void {
    this.joinFailure = err;
  }

  /** Whether the session cgroup's directory is still there. */
  exists(session: SessionCgroup): boolean {
    return existsSync(session.dir);
  }

  dispose(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  containerCgroups(): ContainerCgroups {
    this.calls.push('containerCgroups');
    return { v2: this.container.v2, v1: [...this.container.v1] };
  }

  createSessionCgroup(parent = this.agentDir): SessionCgroup {
    this.calls.push('createSessionCgroup');
    const dir = join(parent, `nsdebug-session-${process.pid}-${this.sessions.length}`);
    mkdirSync(dir);
    const session = { dir, procsFd: openSync(join(dir, 'cgroup.procs'), 'w+'), killFd: openSync(join(dir, 'cgroup.kill'), 'w') };
    this.sessions.push(session);
    return session;
  }

  openCgroupJoins(dirs: string[]): number[] {
    this.calls.push('openCgroupJoins');
    const failure = this.joinFailure;
    this.joinFailure = undefined;
    if (failure) throw failure;
    const fds = dirs.map((dir) => openSync(join(dir, 'cgroup.procs'), 'w'));
    this.joinFds.push(...fds);
    return fds;
  }

  removeSessionCgroup(session: SessionCgroup): Promise<void> {
    this.calls.push('removeSessionCgroup');
    for (const fd of [session.procsFd, session.killFd]) closeSync(fd);
    rmSync(session.dir, { recursive: true });
    return Promise.resolve();
  }
}
