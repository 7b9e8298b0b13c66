// src/agent/session-cgroup.ts on plain directories in a tmp dir (no root, no cgroupfs): finding
// the session cgroups on a node, who owns them, leaving the live ones alone, and a session that
// does not empty. A plain directory is not a cgroupfs: the kernel makes no cgroup.procs in a new
// one, and rmdir fails on one with files (a cgroup's control files go with it), so making a session
// cgroup and removing one are tested only where that makes no difference.
import { spawnSync } from 'node:child_process';
import { existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  createSessionCgroup,
  liveSessionOwners,
  removeSessionCgroup,
  removeStaleSessions,
  sessionCgroupDirs,
} from '../../../src/agent/session-cgroup.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'nsdebug-session-cgroup-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const dir = (...parts: string[]) => {
  const path = join(root, ...parts);
  mkdirSync(path, { recursive: true });
  return path;
};

/** A PID that no process has: a child's, once it has exited and been reaped. */
const exitedPid = () => spawnSync('true').pid;

describe('sessionCgroupDirs: every session cgroup on the node', () => {
  test("those right below the agent's own cgroup, and those below the containers of the pod trees", () => {
    const own = dir('agent');
    const agentSession = dir('agent', 'nsdebug-session-100-aa');
    dir('agent', 'other', 'nsdebug-session-101-bb'); // not below the agent's own: not one of its sessions
    const tree = dir('kubepods.slice');
    const containerSession = dir(
      'kubepods.slice',
      'kubepods-burstable.slice',
      'kubepods-burstable-pod1.slice',
      'cri-containerd-abc.scope',
      'nsdebug-session-102-cc',
    );
    writeFileSync(join(tree, 'nsdebug-session-103-dd'), ''); // a file, not a cgroup
    expect(sessionCgroupDirs(own, [tree, join(root, 'no-such-tree')]).sort()).toEqual([agentSession, containerSession].sort());
  });

  test('a session cgroup found twice (the agent runs in a pod tree) is listed once', () => {
    const own = dir('kubepods', 'pod1', 'agent');
    const session = dir('kubepods', 'pod1', 'agent', 'nsdebug-session-100-aa');
    expect(sessionCgroupDirs(own, [join(root, 'kubepods')])).toEqual([session]);
  });
});

describe('liveSessionOwners and removeStaleSessions', () => {
  test('the owners are the PIDs in the names that still run, each once', () => {
    const dead = exitedPid();
    const dirs = [
      join(root, `nsdebug-session-${process.pid}-aa`),
      join(root, `nsdebug-session-${process.pid}-bb`),
      join(root, `nsdebug-session-${dead}-cc`),
      join(root, 'nsdebug-session-x-dd'),
    ];
    expect(liveSessionOwners(dirs)).toEqual([process.pid]);
  });

  test('sessions whose owner runs, or that name none, are left alone', async () => {
    const live = dir(`nsdebug-session-${process.pid}-aa`);
    const unnamed = dir('nsdebug-session-x-bb');
    expect(await removeStaleSessions([live, unnamed])).toEqual([]);
    expect([existsSync(live), existsSync(unnamed)]).toEqual([true, true]);
  });
});

describe('createSessionCgroup and removeSessionCgroup', () => {
  test('no session cgroup where its parent does not exist: the C side then kills by process group', () => {
    expect(createSessionCgroup(join(root, 'gone'), () => 'aa')).toBeUndefined();
  });

  test('a session that does not empty is an error naming it once the timeout passes, after its fds are closed and it was killed', async () => {
    const session = dir(`nsdebug-session-${process.pid}-aa`);
    writeFileSync(join(session, 'cgroup.events'), 'populated 1\nfrozen 0\n');
    writeFileSync(join(session, 'cgroup.procs'), '');
    const procsFd = openSync(join(session, 'cgroup.procs'), 'r+');
    await expect(removeSessionCgroup({ dir: session, procsFd, killFd: -1 }, 30)).rejects.toThrow(
      `session cgroup ${session} still has processes after 30 ms`,
    );
    expect(() => fstatSync(procsFd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(readFileSync(join(session, 'cgroup.kill'), 'utf8')).toBe('1');
    expect(existsSync(session)).toBe(true);
  });
});
