// A session's start and clean-up in `enter`, with a fake of the native library and of the session
// cgroups (no root, no cgroupfs, no container): test/unit/agent/fake-native.ts stands a child
// shell in for the supervisor and a FIFO for its exit pipe, test/unit/agent/fake-cgroups.ts plain
// directories for the cgroups; the target is this test's own process. On success and on every
// failure the pidfd and every fd enter opened are closed, the supervisor is ended (SIGTERM) if
// the session ran and is reaped, and only then the session cgroup removed.
import { closeSync, fstatSync, openSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';

import { ExitCode, type SessionEnded } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { enter, type EnterDeps, type TargetProcesses } from '../../../src/agent/enter.js';
import type { ResolvedContainer } from '../../../src/agent/resolve.js';
import { NativeError, Step, type Confinement } from '../../../src/native/libnsdebug.js';
import { FakeSessionCgroups } from './fake-cgroups.js';
import { FakeNativeLibrary, type FakeSession } from './fake-native.js';

type Request = Parameters<typeof enter>[0];

const CONTAINER_ID = '4b1f6a8b8e3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e';
const REQUEST: Request = { containerId: CONTAINER_ID, tools: false, tty: false, command: ['ls'] };
// this process: namespacesToJoin finds every namespace shared, so none is joined
const TARGET: ResolvedContainer = { pid: process.pid, pids: [process.pid], cgroup: '/kubepods/pod-x/container', via: 'cgroup' };
const CONFINEMENT: Confinement = {
  uid: [1000, 1000, 1000],
  gid: [1000, 1000, 1000],
  groups: [],
  capBounding: 0n,
  capPermitted: 0n,
  capEffective: 0n,
  capInheritable: 0n,
  capAmbient: 0n,
  noNewPrivs: true,
  seccompFilters: [],
};

const targets: TargetProcesses = {
  resolveContainer: () => TARGET,
  processInContainer: () => TARGET.pid,
  readEnviron: () => ['PATH=/bin'],
  readTargetConfinement: () => Promise.resolve(CONFINEMENT),
  nodeProcess: () => TARGET.pid,
};

/** Whether fd is closed: fstat fails with EBADF (checked right away, before another open could reuse the number). */
function isClosed(fd: number): boolean {
  try {
    fstatSync(fd);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBADF';
  }
}

let calls: string[];
let native: FakeNativeLibrary;
let cgroups: FakeSessionCgroups;
/** the client's stdio: /dev/null, which is neither a terminal, a pipe nor a socket */
let stdio: [number, number, number];
let notes: string[];

function setUp(session: FakeSession = {}): void {
  calls = [];
  native = new FakeNativeLibrary(calls, session);
  cgroups = new FakeSessionCgroups(calls);
}

beforeEach(() => {
  stdio = [openSync('/dev/null', 'r'), openSync('/dev/null', 'w'), openSync('/dev/null', 'w')];
  notes = [];
});
afterEach(() => {
  native.dispose();
  cgroups.dispose();
  for (const fd of stdio) closeSync(fd);
});

function deps(more: Partial<EnterDeps> = {}): EnterDeps {
  return {
    native,
    io: { stdio, onResize: () => () => undefined },
    note: (line) => notes.push(line),
    cgroups,
    targets,
    ...more,
  };
}

/** Every fd the session had open besides the client's: pidfd, exit pipe, pty master, cgroup joins. */
function sessionFds(): number[] {
  const spawned = native.results.flatMap((r) => [r.exitFd, r.ptyMasterFd]);
  return [...native.pidfds, ...spawned, ...cgroups.joinFds].filter((fd) => fd >= 0);
}

describe('enter: a session that runs', () => {
  test("the command's exit code; then the supervisor is reaped, the session cgroup removed and every fd closed", async () => {
    setUp({ exitCode: 3 });
    const started: Array<[ResolvedContainer, string[]]> = [];
    const outcome = await enter(REQUEST, deps({ onStart: (target, joined) => started.push([target, joined]) }));
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
    expect(outcome).toEqual({ exitCode: 3, target: TARGET, joined: [], usedToolbox: false });
    expect(started).toEqual([[TARGET, []]]);
    expect(calls).toEqual([
      'pidfdOpen',
      'containerCgroups',
      'createSessionCgroup',
      'openCgroupJoins',
      'spawn',
      'reaped supervisor: exit 0',
      'removeSessionCgroup',
    ]);
    expect(cgroups.exists(cgroups.sessions[0]!)).toBe(false);
  });

  test("a confined session's cgroup is below the container's and joins its v1 cgroups; a privileged one's below the agent's", async () => {
    setUp({ exitCode: 0 });
    await enter(REQUEST, deps());
    await enter({ ...REQUEST, privileged: true }, deps());
    const [confined, privileged] = cgroups.sessions;
    expect(confined!.dir.startsWith(`${cgroups.container.v2}/nsdebug-session-`)).toBe(true);
    expect(privileged!.dir.startsWith(`${cgroups.agentDir}/nsdebug-session-`)).toBe(true);
    expect(native.requests.map((r) => [r.cgroupProcsFd, r.containerCgroupFds?.length])).toEqual([
      [confined!.procsFd, 1],
      [privileged!.procsFd, 0],
    ]);
    expect(native.requests.map((r) => r.confinement)).toEqual([CONFINEMENT, undefined]);
  });

  test("a node session: the node's process, entered with the agent's privileges, its cgroup below the agent's", async () => {
    setUp({ exitCode: 0 });
    await enter({ ...REQUEST, node: 'node-1' }, deps());
    expect(calls).toEqual([
      'pidfdOpen',
      'createSessionCgroup',
      'openCgroupJoins',
      'spawn',
      'reaped supervisor: exit 0',
      'removeSessionCgroup',
    ]);
    expect(cgroups.sessions[0]!.dir.startsWith(`${cgroups.agentDir}/nsdebug-session-`)).toBe(true);
    expect(native.requests[0]).toMatchObject({ pid: TARGET.pid, env: ['PATH=/bin'] });
    expect(native.requests[0]!.confinement).toBeUndefined();
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
  });

  test('the session ended early (abort): the supervisor gets SIGTERM, the session reports 137 and is cleaned up', async () => {
    setUp(); // the command would run forever
    let abort!: (end: SessionEnded) => void;
    const outcome = enter(REQUEST, deps({ abort: new Promise((resolve) => (abort = resolve)) }));
    await new Promise((r) => setTimeout(r, 50));
    abort({ reason: 'agent stopping', message: 'the agent is stopping' });
    expect((await outcome).exitCode).toBe(128 + 9);
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
    expect(calls.slice(-2)).toEqual(['reaped supervisor: SIGTERM', 'removeSessionCgroup']);
  });

  test("an abort after the session ended signals nobody: the reaped supervisor's PID may be another process's by then", async () => {
    setUp({ exitCode: 0 });
    let abort!: (end: SessionEnded) => void;
    await enter(REQUEST, deps({ abort: new Promise((resolve) => (abort = resolve)) }));
    const signalled: number[] = [];
    const kill = process.kill.bind(process);
    process.kill = (pid: number, signal?: string | number) => {
      signalled.push(pid);
      return kill(pid, signal);
    };
    try {
      abort({ reason: 'client gone', message: 'the client disconnected' });
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      process.kill = kill;
    }
    expect(signalled).toEqual([]);
  });
});

describe('enter: a session that fails to start', () => {
  test('pidfd_open fails: nothing is made, nothing spawned', async () => {
    setUp();
    native.failPidfdOpen(new NativeError(`open a pidfd for pid ${TARGET.pid}`, osConstants.errno.ESRCH));
    await expect(enter(REQUEST, deps())).rejects.toThrow(NativeError);
    expect(calls).toEqual(['pidfdOpen']);
  });

  test("a container's v1 cgroup cannot be joined: the session cgroup made before it is removed, nothing spawned", async () => {
    setUp();
    cgroups.failJoins(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }));
    await expect(enter(REQUEST, deps())).rejects.toThrow('EACCES');
    expect(calls).toEqual(['pidfdOpen', 'containerCgroups', 'createSessionCgroup', 'openCgroupJoins', 'removeSessionCgroup']);
    expect(cgroups.exists(cgroups.sessions[0]!)).toBe(false);
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
  });

  test('spawn fails before a supervisor started: explained, the session cgroup removed, every fd closed', async () => {
    setUp();
    native.failSpawn({ step: Step.ForkSupervisor, errno: osConstants.errno.EAGAIN });
    const failure = enter(REQUEST, deps({ onStart: () => notes.push('started') }));
    await expect(failure).rejects.toThrow(NsdebugError);
    await expect(failure).rejects.toMatchObject({
      exitCode: ExitCode.ENTER_FAILED,
      message: expect.stringMatching(/^cannot start the session supervisor/),
    });
    expect(calls.slice(-2)).toEqual(['spawn', 'removeSessionCgroup']);
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
    expect(notes).toEqual([]);
  });

  test('spawn fails after the supervisor started: it is reaped (it exits by itself) before the session cgroup is removed', async () => {
    setUp();
    native.failSpawn({ step: Step.Exec, errno: osConstants.errno.ENOENT, supervisorStarted: true });
    await expect(enter(REQUEST, deps())).rejects.toMatchObject({ exitCode: ExitCode.COMMAND_NOT_FOUND });
    expect(calls.slice(-3)).toEqual(['spawn', 'reaped supervisor: exit 0', 'removeSessionCgroup']);
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
  });
});

describe('enter: a throw after spawn succeeded ends the session it started', () => {
  test('onStart throws: the supervisor gets SIGTERM and is reaped, the exit pipe closed, the session cgroup removed', async () => {
    setUp(); // the command would run forever
    const failure = enter(
      REQUEST,
      deps({
        onStart: () => {
          throw new Error('the audit channel is closed');
        },
      }),
    );
    await expect(failure).rejects.toThrow('the audit channel is closed');
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
    expect(calls.slice(-3)).toEqual(['spawn', 'reaped supervisor: SIGTERM', 'removeSessionCgroup']);
    expect(cgroups.exists(cgroups.sessions[0]!)).toBe(false);
  });

  test('a supervisor that does not end on SIGTERM is killed, and reaped too: no zombie is left', async () => {
    setUp({ ignoresSigterm: true });
    const onStart = () => {
      throw new Error('the audit channel is closed');
    };
    await expect(enter(REQUEST, deps({ onStart }))).rejects.toThrow('the audit channel is closed');
    expect(calls.slice(-3)).toEqual(['spawn', 'reaped supervisor: SIGKILL', 'removeSessionCgroup']);
  });

  test('--tty with stdio that is no terminal, pipe or socket: refused, and the pty master, exit pipe, supervisor and cgroup go', async () => {
    setUp();
    const failure = enter({ ...REQUEST, tty: true }, deps());
    await expect(failure).rejects.toMatchObject({ exitCode: ExitCode.USAGE, message: expect.stringMatching(/^--tty needs a terminal/) });
    expect(native.results[0]!.ptyMasterFd).toBeGreaterThanOrEqual(0);
    expect(sessionFds().filter((fd) => !isClosed(fd))).toEqual([]);
    expect(calls.slice(-3)).toEqual(['spawn', 'reaped supervisor: SIGTERM', 'removeSessionCgroup']);
    // the client's stdio is the caller's to close
    expect(stdio.filter((fd) => isClosed(fd))).toEqual([]);
  });
});

describe('enter: the toolbox', () => {
  test('the toolbox fd is passed to spawn and closed when the session ends', async () => {
    setUp({ exitCode: 0 });
    const toolbox = join(cgroups.root, 'busybox');
    writeFileSync(toolbox, '');
    await enter({ ...REQUEST, tools: true }, deps({ toolboxCandidates: [toolbox] }));
    const { toolboxFd } = native.requests[0]!;
    expect(toolboxFd).toBeGreaterThanOrEqual(0);
    expect(isClosed(toolboxFd)).toBe(true);
  });
});
