// `nsdebug-agent enter`: join a container's namespaces and run a shell or a command there,
// with the agent's stdio as the command's (or relayed through a pty with --tty).
import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { isatty, ReadStream, WriteStream } from 'node:tty';

import { ExitCode, NAMESPACE_KINDS, type NamespaceKind, type SessionEnded, type SessionRequest } from '../contract.js';
import { NsdebugError } from '../errors.js';
import {
  CLONE_FLAGS,
  errnoMessage,
  ExecMode,
  NativeError,
  Step,
  type Confinement,
  type NativeLibrary,
  type SpawnRequest,
  type SpawnResult,
} from '../native/libnsdebug.js';
import { readTargetConfinement } from './confinement.js';
import { runtimeEndpoint } from './containerd.js';
import { deadContainer, inPod, nodeProcess, podSandbox, seesPath } from './postmortem.js';
import { namespaceId, readEnviron } from './procfs.js';
import { processInContainer, resolveContainer, shortId, type ResolvedContainer } from './resolve.js';
import { nodeCgroups, type SessionCgroup, type SessionCgroups } from './session-cgroup.js';
import type { SessionRecorder } from './recording.js';
import { waitForStart } from './wait.js';

/** What the caller learns of a session, for the audit line. */
export interface SessionOutcome {
  exitCode: number;
  target: ResolvedContainer;
  joined: NamespaceKind[];
  usedToolbox: boolean;
}

export const TOOLBOX_CANDIDATES = ['/usr/lib/nsdebug/busybox', '/bin/busybox'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The client's side of a session: its stdio, and a signal that its window size changed. */
export interface SessionIo {
  stdio: [number, number, number];
  /** subscribe to window-size changes of the client's terminal; returns the unsubscribe */
  onResize(listener: () => void): () => void;
  /** the client's window size when stdio is not its terminal (the session port); else read from stdin */
  size?(): { rows: number; cols: number } | undefined;
}

/** The agent process's own stdio: a session run by a per-session `nsdebug-agent enter`. */
export const processIo: SessionIo = {
  stdio: [0, 1, 2],
  onResize(listener) {
    process.on('SIGWINCH', listener);
    return () => process.off('SIGWINCH', listener);
  },
};

export interface EnterDeps {
  native: NativeLibrary;
  io: SessionIo;
  /** one-line notes for the user (stderr) */
  note: (line: string) => void;
  /** called once the command runs */
  onStart?: (target: ResolvedContainer, joined: NamespaceKind[]) => void;
  /** resolves when the session must end early (client gone, agent stopping…); the caller tells the user */
  abort?: Promise<SessionEnded>;
  toolboxCandidates?: string[];
  /** default: the node's cgroups */
  cgroups?: SessionCgroups;
  /** default: the node's /proc */
  targets?: TargetProcesses;
  /** the session's recording, fed what the terminal shows, what is typed and its size changes */
  recorder?: SessionRecorder;
}

/** How enter finds the process to enter and reads what the session takes from it: /proc, for tests a fake. */
export interface TargetProcesses {
  resolveContainer: typeof resolveContainer;
  processInContainer: typeof processInContainer;
  readEnviron: (pid: number) => string[];
  readTargetConfinement: typeof readTargetConfinement;
  nodeProcess: typeof nodeProcess;
}

const procTargets: TargetProcesses = { resolveContainer, processInContainer, readEnviron, readTargetConfinement, nodeProcess };

/** Namespaces of pid that differ from ours, among those asked for (setns into our own user ns is EINVAL). */
export function namespacesToJoin(pid: number, wanted: readonly NamespaceKind[] = NAMESPACE_KINDS): NamespaceKind[] {
  return wanted.filter((kind) => {
    try {
      return namespaceId(pid, kind) !== namespaceId('self', kind);
    } catch {
      return false; // a kind this kernel does not have
    }
  });
}

/** The target's environment, with what a shell needs when the container set none. */
export function sessionEnvironment(targetEnv: string[], tty: boolean, term = process.env.TERM): string[] {
  const env = [...targetEnv];
  const has = (name: string) => env.some((e) => e.startsWith(`${name}=`));
  if (!has('PATH')) env.push(`PATH=${DEFAULT_PATH}`);
  if (tty && !has('TERM')) env.push(`TERM=${term || 'xterm'}`);
  return env;
}

function openToolbox(candidates: string[], required: boolean): number {
  const path = candidates.find((p) => existsSync(p));
  if (path) return openSync(path, 'r');
  if (required) {
    throw new NsdebugError(`no toolbox found (looked for ${candidates.join(', ')}); set NSDEBUG_TOOLBOX`, ExitCode.ENTER_FAILED);
  }
  return -1;
}

export async function enter(opts: SessionRequest, deps: EnterDeps): Promise<SessionOutcome> {
  if (opts.postmortem) return enterPostmortem(opts, deps);
  if (opts.node) return enterNode(opts, deps);
  if (opts.waitSeconds && opts.podUid && opts.container) {
    const containerId = await waitForStart({
      podUid: opts.podUid,
      container: opts.container,
      ...(opts.containerId ? { skip: opts.containerId } : {}),
      timeoutMs: opts.waitSeconds * 1000,
      ...(runtimeEndpoint() ? { runtimeEndpoint: runtimeEndpoint() } : {}),
      ...(deps.abort ? { abort: deps.abort.then((end) => end.message) } : {}),
    });
    deps.note(`container ${opts.container} started (${shortId(containerId)}): entering it`);
    return enter({ ...opts, containerId, waitSeconds: undefined }, deps);
  }
  const { targets = procTargets } = deps;
  const target = targets.resolveContainer(opts.containerId, opts.podUid);
  const pid = opts.process ? targets.processInContainer(target, opts.containerId, opts.process) : target.pid;
  const pidfd = deps.native.pidfdOpen(pid);
  try {
    // The PID may have been recycled between resolving and pidfd_open: check the pidfd's process.
    resolveAgain(pid, opts, targets);
    const joined = namespacesToJoin(pid, opts.namespaces);
    const env = sessionEnvironment(targets.readEnviron(pid), opts.tty);
    // Read after pidfd_open: if pid was recycled since, the supervisor finds the pidfd's process gone.
    const confinement = opts.privileged
      ? undefined
      : await targets.readTargetConfinement(pid, deps.native, joined.includes('user'), opts.user);
    return await run(opts, deps, { target, pid, pidfd, joined, env, ...(confinement ? { confinement } : {}) });
  } finally {
    closeSync(pidfd);
  }
}

/** The dead container's last filesystem, read-only, in the pod sandbox's network, IPC and UTS. */
async function enterPostmortem(opts: SessionRequest, deps: EnterDeps): Promise<SessionOutcome> {
  if (!opts.podUid || !opts.container) throw new NsdebugError('--postmortem needs --pod-uid and --container', ExitCode.USAGE);
  const { layers: rootfs, confinement } = await deadContainer(opts.containerId, opts.podUid, opts.container);
  const podUid = opts.podUid;
  let started = false;
  let sandbox: number | undefined;
  const attempt = () =>
    enterDeadRoot(
      { ...opts, podUid },
      {
        ...deps,
        onStart: (target, joined) => {
          started = true;
          deps.onStart?.(target, joined);
        },
      },
      rootfs,
      confinement,
      (pid) => (sandbox = pid),
    );
  try {
    return await attempt();
  } catch (err) {
    // kubelet stops an ended pod's sandbox on its own schedule, maybe while nsdebug was entering
    // it: then the session goes on without it, as when it was gone already
    if (started || sandbox === undefined || inPod(sandbox, podUid)) throw err;
    return attempt();
  }
}

/** A post-mortem session in the pod sandbox found now (none: no network); `found` learns which. */
async function enterDeadRoot(
  opts: SessionRequest & { podUid: string },
  deps: EnterDeps,
  rootfs: string,
  confinement: Confinement,
  found: (sandboxPid: number | undefined) => void,
): Promise<SessionOutcome> {
  // the top layer: a path the node's mount namespace resolves
  const layer = rootfs.split(':')[0]!;
  const { sandboxPid, hostPid } = podSandbox(opts.podUid, layer);
  found(sandboxPid);
  const pidfds: number[] = [];
  try {
    const hostPidfd = deps.native.pidfdOpen(hostPid);
    pidfds.push(hostPidfd);
    const sandboxPidfd = sandboxPid ? deps.native.pidfdOpen(sandboxPid) : -1;
    if (sandboxPid) pidfds.push(sandboxPidfd);
    // The pidfds name the processes found above only if those are still what they were (no PID reuse).
    if ((sandboxPid && !inPod(sandboxPid, opts.podUid)) || !seesPath(hostPid, layer)) {
      throw new NsdebugError(`pod ${opts.podUid}'s sandbox changed while nsdebug was entering it; try again`, ExitCode.NOT_FOUND);
    }
    if (!sandboxPid) deps.note("the pod's sandbox is gone too: the session has no network");
    const target: ResolvedContainer = { pid: sandboxPid ?? 0, pids: [], cgroup: '', via: 'cgroup' };
    const joined = sandboxPid ? namespacesToJoin(sandboxPid, ['net', 'ipc', 'uts']) : [];
    return await run(
      { ...opts, readOnly: true },
      deps,
      { target, pid: sandboxPid ?? 0, pidfd: sandboxPidfd, joined, env: sessionEnvironment([], opts.tty), confinement },
      { rootfs, hostPidfd },
    );
  } finally {
    for (const fd of pidfds) closeSync(fd);
  }
}

/** The node's own namespaces: its init's (PID 1 of the agent's host PID namespace), else the runtime's. */
async function enterNode(opts: SessionRequest, deps: EnterDeps): Promise<SessionOutcome> {
  const { targets = procTargets } = deps;
  const pid = targets.nodeProcess();
  const pidfd = deps.native.pidfdOpen(pid);
  try {
    const joined = namespacesToJoin(pid, opts.namespaces);
    let environ: string[] = [];
    try {
      environ = targets.readEnviron(pid);
    } catch {
      // the node's init may hide its environment: PATH and TERM defaults serve
    }
    const target: ResolvedContainer = { pid, pids: [pid], cgroup: '', via: 'cgroup' };
    return await run(opts, deps, { target, pid, pidfd, joined, env: sessionEnvironment(environ, opts.tty) });
  } finally {
    closeSync(pidfd);
  }
}

interface Joined {
  target: ResolvedContainer;
  /** the process whose namespaces are joined, and its pidfd */
  pid: number;
  pidfd: number;
  joined: NamespaceKind[];
  env: string[];
  /** the target's confinement, taken before exec; none: the agent's privileges */
  confinement?: Confinement;
}

/** Start the command in the joined namespaces and relay it until it ends. */
async function run(opts: SessionRequest, deps: EnterDeps, at: Joined, postmortem?: SpawnRequest['postmortem']): Promise<SessionOutcome> {
  const { native, cgroups = nodeCgroups } = deps;
  const { target, pid, pidfd, joined, env, confinement } = at;
  const fds: number[] = [];
  let session: SessionCgroup | undefined;
  try {
    const toolboxFd = openToolbox(deps.toolboxCandidates ?? toolboxCandidates(), opts.tools);
    if (toolboxFd >= 0) fds.push(toolboxFd);
    const mode = opts.tools ? ExecMode.Toolbox : opts.command.length ? ExecMode.Command : ExecMode.Shell;
    // busybox's sh runs its own applets first, then the target's PATH: `exec "$@"` picks either.
    const argv = mode !== ExecMode.Toolbox ? opts.command : opts.command.length ? ['sh', '-c', 'exec "$@"', 'sh', ...opts.command] : ['sh'];
    // A confined session lives in the container's cgroups (its limits and devices); one with the
    // agent's power, or post-mortem (no live container), below the agent's.
    const placement = confinement && !postmortem ? cgroups.containerCgroups(opts.containerId, opts.podUid) : { v1: [] };
    session = cgroups.createSessionCgroup(placement.v2);
    const containerCgroupFds = cgroups.openCgroupJoins(placement.v1);
    fds.push(...containerCgroupFds);
    let spawned: SpawnResult;
    try {
      spawned = native.spawn({
        pid,
        pidfd,
        nsFlags: joined.reduce((flags, kind) => flags | CLONE_FLAGS[kind], 0),
        stdio: deps.io.stdio,
        tty: opts.tty,
        mode,
        toolboxFd,
        cgroupProcsFd: session?.procsFd ?? -1,
        cgroupKillFd: session?.killFd ?? -1,
        containerCgroupFds,
        readOnly: opts.readOnly === true,
        ...(postmortem ? { postmortem } : {}),
        argv: mode === ExecMode.Shell ? ['sh'] : argv,
        env,
        ...(confinement ? { confinement } : {}),
      });
    } catch (err) {
      // The supervisor lets the session init reap what the failed command left, then exits:
      // wait for that before emptying the cgroup, or the unreaped go to the container's PID 1.
      if (err instanceof NativeError && err.supervisorPid) await reap(err.supervisorPid, deps.native);
      throw explainSpawnFailure(err, pid, joined, opts);
    }
    const exitCode = await runSession(spawned, opts.tty, deps, () => {
      if (spawned.usedToolbox)
        deps.note("the container has no shell: running nsdebug's busybox sh (nothing is written into the container)");
      deps.onStart?.(target, joined);
    });
    return { exitCode, target, joined, usedToolbox: spawned.usedToolbox };
  } finally {
    for (const fd of fds) closeSync(fd);
    // The supervisor is reaped by now, whatever failed: what it left in the session dies here.
    if (session) await cgroups.removeSessionCgroup(session);
  }
}

function toolboxCandidates(): string[] {
  return process.env.NSDEBUG_TOOLBOX ? [process.env.NSDEBUG_TOOLBOX] : TOOLBOX_CANDIDATES;
}

function resolveAgain(pid: number, opts: SessionRequest, targets: TargetProcesses): void {
  const again = targets.resolveContainer(opts.containerId, opts.podUid);
  if (!again.pids.includes(pid)) {
    throw new NsdebugError(`container ${shortId(opts.containerId)} restarted while nsdebug was entering it; try again`, ExitCode.NOT_FOUND);
  }
}

function explainSpawnFailure(err: unknown, pid: number, joined: NamespaceKind[], opts: SessionRequest): unknown {
  if (!(err instanceof NativeError)) return err;
  if (err.step === Step.Exec) {
    const what = opts.command[0] ?? 'a shell';
    if (err.code === 'ENOENT') {
      const hint = opts.command.length
        ? opts.tools
          ? ''
          : '; the toolbox has more commands: add --tools'
        : ': it has no /bin/bash or /bin/sh; use --tools';
      return new NsdebugError(`${what}: not found in container ${shortId(opts.containerId)}${hint}`, ExitCode.COMMAND_NOT_FOUND);
    }
    return new NsdebugError(`cannot run ${what} in the container: ${errnoMessage(err.errno)}`, ExitCode.COMMAND_NOT_EXECUTABLE);
  }
  const which = err.step === Step.Setns ? ` (${joined.join(', ')})` : '';
  return new NsdebugError(`cannot ${err.what}${which} of pid ${pid}: ${errnoMessage(err.errno)}`, ExitCode.ENTER_FAILED);
}

/**
 * Tell the caller the session runs (started), relay the pty (with --tty), wait for the exit code,
 * reap the supervisor. Whatever throws before the relay runs ends the session, as the user would.
 */
async function runSession(spawned: SpawnResult, tty: boolean, deps: EnterDeps, started: () => void): Promise<number> {
  let reaped = false;
  const endSession = () => {
    // once reaped, its PID may be another process's
    if (reaped) return;
    try {
      process.kill(spawned.supervisorPid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  let relayDone: Promise<void>;
  try {
    started();
    relayDone = tty ? relayTerminal(spawned.ptyMasterFd, deps, endSession) : Promise.resolve();
  } catch (err) {
    endSession();
    // no stream has taken them yet
    for (const fd of [spawned.ptyMasterFd, spawned.exitFd]) if (fd >= 0) closeSync(fd);
    await reap(spawned.supervisorPid, deps.native);
    throw err;
  }
  const exitCode = readExitCode(spawned.exitFd);
  void deps.abort?.then(endSession);
  const [code] = await Promise.all([exitCode, relayDone]);
  await reap(spawned.supervisorPid, deps.native);
  reaped = true;
  // No exit code: the supervisor was told to end the session (or killed); report it as killed.
  return code ?? 128 + 9;
}

/** The 4-byte exit code the supervisor writes when the command ends; null on EOF without one. */
function readExitCode(fd: number): Promise<number | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const pipe = new Socket({ fd, readable: true, writable: false });
    pipe.on('data', (chunk: Buffer) => chunks.push(chunk));
    pipe.on('error', () => resolve(null));
    pipe.on('close', () => {
      const data = Buffer.concat(chunks);
      resolve(data.length >= 4 ? data.readInt32LE(0) : null);
    });
  });
}

async function reap(pid: number, native: NativeLibrary): Promise<void> {
  // The supervisor exits right after the exit code or a failure (or is killed with the
  // session): never long. One that does not is killed, then reaped too: no zombie is left.
  for (let i = 0; i < 1000; i++) {
    if (native.reap(pid) !== null) return;
    if (i === 499) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A stream over one of the client's fds: a terminal, a pipe or a socket. */
function clientStream(fd: number, direction: 'in' | 'out'): ReadStream | WriteStream | Socket {
  if (isatty(fd)) return direction === 'in' ? new ReadStream(fd) : new WriteStream(fd);
  if (!fstatSync(fd).isFIFO() && !fstatSync(fd).isSocket())
    throw new NsdebugError('--tty needs a terminal, a pipe or a socket as stdio', ExitCode.USAGE);
  return new Socket({ fd, readable: direction === 'in', writable: direction === 'out' });
}

/**
 * Relay between the client's stdio and the pty master, in raw mode, following the client's
 * window size. Ends when the container side of the pty is closed by everyone (EIO on the master).
 */
function relayTerminal(masterFd: number, deps: EnterDeps, onHangup: () => void): Promise<void> {
  const { native, io } = deps;
  // The client's streams before the master's: a client refused leaves masterFd to the caller.
  const input = clientStream(io.stdio[0], 'in');
  let output: ReadStream | WriteStream | Socket;
  try {
    output = clientStream(io.stdio[1], 'out');
  } catch (err) {
    input.destroy();
    throw err;
  }
  const master = new ReadStream(masterFd);
  const raw = input instanceof ReadStream;
  const { recorder } = deps;
  const syncSize = () => {
    try {
      const { rows, cols } = io.size?.() ?? native.getWinsize(io.stdio[0]);
      native.setWinsize(masterFd, rows, cols);
      recorder?.resize(rows, cols);
    } catch {
      // the client's stdin is not a terminal: keep the pty's default size
    }
  };
  if (raw) input.setRawMode(true);
  syncSize();
  const unsubscribe = io.onResize(syncSize);
  input.on('data', (chunk: Buffer) => {
    recorder?.input(chunk);
    master.write(chunk);
  });
  // The client's side is gone: nobody is left to type into or read the session.
  input.on('end', onHangup);
  output.on('error', onHangup);
  // output back-pressure: while the client is behind, the pty fills and the command waits
  master.on('data', (chunk: Buffer) => {
    recorder?.output(chunk);
    if (!output.write(chunk) && !master.isPaused()) {
      master.pause();
      output.once('drain', () => master.resume());
    }
  });
  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      unsubscribe();
      input.off('end', onHangup);
      if (raw) input.setRawMode(false);
      input.destroy();
      master.destroy();
      output.end(() => resolve());
    };
    // EIO on the master: the last holder of the container side closed it.
    master.on('error', finish);
    master.on('end', finish);
    master.on('close', finish);
  });
}
