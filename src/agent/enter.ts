// `nsdebug-agent enter`: join a container's namespaces and run a shell or a command there,
// with the agent's stdio as the command's (or relayed through a pty with --tty).
import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { isatty, ReadStream, WriteStream } from 'node:tty';

import { ExitCode, NAMESPACE_KINDS, type NamespaceKind, type SessionEnded, type SessionUser } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { AgentArgs } from './args.js';
import {
  CLONE_FLAGS,
  ExecMode,
  NativeError,
  type Confinement,
  type NativeLibrary,
  type SpawnRequest,
  type SpawnResult,
} from '../native/libnsdebug.js';
import { ociConfinement, readTargetConfinement } from './confinement.js';
import { containerLayers, containerRecord, nothingLeft, ociSpecOf } from './containerd.js';
import { checkBelongsToPod, inPod, nodeProcess, podSandbox, seesPath } from './postmortem.js';
import { namespaceId, readEnviron } from './procfs.js';
import { processInContainer, resolveContainer, shortId, type ResolvedContainer } from './resolve.js';
import { containerCgroups, createSessionCgroup, openCgroupJoins, removeSessionCgroup } from './session-cgroup.js';
import { waitForStart } from './wait.js';

export interface EnterOptions {
  containerId: string;
  podUid?: string;
  /** namespaces to join; default every one the target does not share with us */
  namespaces?: NamespaceKind[];
  tools: boolean;
  tty: boolean;
  /** observe only: a private read-only copy of the container's mounts, no new privileges */
  readOnly?: boolean;
  /** enter this process (its PID inside the container) instead of the container's init */
  process?: number;
  /** keep the agent's privileges (root, its capabilities, no seccomp) instead of the target's confinement */
  privileged?: boolean;
  /** another user inside the target, never with more capabilities than the target's bounding set */
  user?: SessionUser;
  /** the container has exited: its last filesystem read-only, in the pod sandbox's namespaces */
  postmortem?: boolean;
  /** containerd's socket, for post-mortem sessions and --wait */
  runtimeEndpoint?: string;
  /** the node's own namespaces (its init's), not a container's: the node's name */
  node?: string;
  /** wait for the next start of the pod's container of this name, for up to waitSeconds */
  waitSeconds?: number;
  container?: string;
  /** empty: an interactive shell */
  command: string[];
}

/** The session a parsed `enter` argv asks for. */
export function enterOptions(args: AgentArgs): EnterOptions {
  const {
    containerId,
    podUid,
    namespaces,
    tools,
    tty,
    readOnly,
    process: pid,
    privileged,
    user,
    postmortem,
    waitSeconds,
    container,
    node,
    command,
  } = args;
  const runtimeEndpoint = process.env.NSDEBUG_RUNTIME_ENDPOINT;
  return {
    containerId,
    podUid,
    namespaces,
    tools,
    tty,
    readOnly,
    process: pid,
    privileged,
    user,
    postmortem,
    runtimeEndpoint,
    waitSeconds,
    container,
    node,
    command,
  };
}

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
}

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

export async function enter(opts: EnterOptions, deps: EnterDeps): Promise<SessionOutcome> {
  if (opts.readOnly && opts.namespaces && !opts.namespaces.includes('mnt')) {
    throw new NsdebugError('--read-only needs the mount namespace: add mnt to --ns', ExitCode.USAGE);
  }
  if (opts.postmortem) return enterPostmortem(opts, deps);
  if (opts.node) return enterNode(opts, deps);
  if (opts.waitSeconds && opts.podUid && opts.container) {
    const containerId = await waitForStart({
      podUid: opts.podUid,
      container: opts.container,
      ...(opts.containerId ? { skip: opts.containerId } : {}),
      timeoutMs: opts.waitSeconds * 1000,
      ...(opts.runtimeEndpoint ? { runtimeEndpoint: opts.runtimeEndpoint } : {}),
      ...(deps.abort ? { abort: deps.abort.then((end) => end.message) } : {}),
    });
    deps.note(`container ${opts.container} started (${shortId(containerId)}): entering it`);
    return enter({ ...opts, containerId, waitSeconds: undefined }, deps);
  }
  const target = resolveContainer(opts.containerId, opts.podUid);
  const pid = opts.process ? processInContainer(target, opts.containerId, opts.process) : target.pid;
  const pidfd = deps.native.pidfdOpen(pid);
  try {
    // The PID may have been recycled between resolving and pidfd_open: check the pidfd's process.
    resolveAgain(pid, opts);
    const joined = namespacesToJoin(pid, opts.namespaces);
    const env = sessionEnvironment(readEnviron(pid), opts.tty);
    // Read after pidfd_open: if pid was recycled since, the supervisor finds the pidfd's process gone.
    const confinement = opts.privileged ? undefined : await readTargetConfinement(pid, deps.native, joined.includes('user'), opts.user);
    return await run(opts, deps, { target, pid, pidfd, joined, env, ...(confinement ? { confinement } : {}) });
  } finally {
    closeSync(pidfd);
  }
}

/** The dead container's last filesystem, read-only, in the pod sandbox's network, IPC and UTS. */
async function enterPostmortem(opts: EnterOptions, deps: EnterDeps): Promise<SessionOutcome> {
  if (!opts.podUid || !opts.container) throw new NsdebugError('--postmortem needs --pod-uid and --container', ExitCode.USAGE);
  // Whose snapshot this is, before mounting it: kubelet's labels name the pod and container.
  const record = await containerRecord(opts.containerId, opts.runtimeEndpoint);
  if (!record) throw nothingLeft(opts.containerId);
  checkBelongsToPod(record.labels, opts.containerId, opts.podUid, opts.container);
  // The dead container's own user and capabilities, as runc gave them to its process.
  let confinement: Confinement;
  try {
    confinement = ociConfinement(ociSpecOf(record, opts.containerId));
  } catch (err) {
    if (err instanceof NsdebugError) throw err;
    throw new NsdebugError(
      `cannot read the confinement of container ${shortId(opts.containerId)} from its OCI spec: ${(err as Error).message}`,
      ExitCode.ENTER_FAILED,
    );
  }
  const rootfs = await containerLayers(opts.containerId, opts.runtimeEndpoint);
  const { sandboxPid, hostPid } = podSandbox(opts.podUid, rootfs.split(':')[0]!);
  const pidfds: number[] = [];
  try {
    const hostPidfd = deps.native.pidfdOpen(hostPid);
    pidfds.push(hostPidfd);
    const sandboxPidfd = sandboxPid ? deps.native.pidfdOpen(sandboxPid) : -1;
    if (sandboxPid) pidfds.push(sandboxPidfd);
    // The pidfds name the processes found above only if those are still what they were (no PID reuse).
    if ((sandboxPid && !inPod(sandboxPid, opts.podUid)) || !seesPath(hostPid, rootfs.split(':')[0]!)) {
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
async function enterNode(opts: EnterOptions, deps: EnterDeps): Promise<SessionOutcome> {
  const pid = nodeProcess();
  const pidfd = deps.native.pidfdOpen(pid);
  try {
    const joined = namespacesToJoin(pid, opts.namespaces);
    let environ: string[] = [];
    try {
      environ = readEnviron(pid);
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
async function run(opts: EnterOptions, deps: EnterDeps, at: Joined, postmortem?: SpawnRequest['postmortem']): Promise<SessionOutcome> {
  const { native } = deps;
  const { target, pid, pidfd, joined, env, confinement } = at;
  const fds: number[] = [];
  try {
    const toolboxFd = openToolbox(deps.toolboxCandidates ?? toolboxCandidates(), opts.tools);
    if (toolboxFd >= 0) fds.push(toolboxFd);
    const mode = opts.tools ? ExecMode.Toolbox : opts.command.length ? ExecMode.Command : ExecMode.Shell;
    // busybox's sh runs its own applets first, then the target's PATH: `exec "$@"` picks either.
    const argv = mode !== ExecMode.Toolbox ? opts.command : opts.command.length ? ['sh', '-c', 'exec "$@"', 'sh', ...opts.command] : ['sh'];
    // A confined session lives in the container's cgroups (its limits and devices); one with the
    // agent's power, or post-mortem (no live container), below the agent's.
    const placement = confinement && !postmortem ? containerCgroups(opts.containerId, opts.podUid) : { v1: [] };
    const session = createSessionCgroup(placement.v2);
    const containerCgroupFds = openCgroupJoins(placement.v1);
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
      if (session) await removeSessionCgroup(session);
      throw explainSpawnFailure(err, pid, joined, opts);
    }
    if (spawned.usedToolbox) deps.note("the container has no shell: running nsdebug's busybox sh (nothing is written into the container)");
    deps.onStart?.(target, joined);
    const exitCode = await runSession(spawned, opts.tty, deps);
    if (session) await removeSessionCgroup(session);
    return { exitCode, target, joined, usedToolbox: spawned.usedToolbox };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

function toolboxCandidates(): string[] {
  return process.env.NSDEBUG_TOOLBOX ? [process.env.NSDEBUG_TOOLBOX] : TOOLBOX_CANDIDATES;
}

function resolveAgain(pid: number, opts: EnterOptions): void {
  const again = resolveContainer(opts.containerId, opts.podUid);
  if (!again.pids.includes(pid)) {
    throw new NsdebugError(`container ${shortId(opts.containerId)} restarted while nsdebug was entering it; try again`, ExitCode.NOT_FOUND);
  }
}

function explainSpawnFailure(err: unknown, pid: number, joined: NamespaceKind[], opts: EnterOptions): unknown {
  if (!(err instanceof NativeError)) return err;
  if (err.step === 'run the command') {
    const what = opts.command[0] ?? 'a shell';
    if (err.code === 'ENOENT') {
      const hint = opts.command.length
        ? opts.tools
          ? ''
          : '; the toolbox has more commands: add --tools'
        : ': it has no /bin/bash or /bin/sh; use --tools';
      return new NsdebugError(`${what}: not found in container ${shortId(opts.containerId)}${hint}`, ExitCode.COMMAND_NOT_FOUND);
    }
    return new NsdebugError(
      `cannot run ${what} in the container: ${err.message.replace(/^cannot run the command: /, '')}`,
      ExitCode.COMMAND_NOT_EXECUTABLE,
    );
  }
  const which = err.step === 'join the namespaces' ? ` (${joined.join(', ')})` : '';
  return new NsdebugError(`${err.message.replace(/^cannot ([^:]*)/, `cannot $1${which} of pid ${pid}`)}`, ExitCode.ENTER_FAILED);
}

/** Relay the pty (with --tty), wait for the exit code, reap the supervisor. */
async function runSession(spawned: SpawnResult, tty: boolean, deps: EnterDeps): Promise<number> {
  const endSession = () => {
    try {
      process.kill(spawned.supervisorPid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  const relayDone = tty ? relayTerminal(spawned.ptyMasterFd, deps, endSession) : Promise.resolve();
  const exitCode = readExitCode(spawned.exitFd);
  void deps.abort?.then(endSession);
  const [code] = await Promise.all([exitCode, relayDone]);
  await reap(spawned.supervisorPid, deps.native);
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
  // session): never long.
  for (let i = 0; i < 500; i++) {
    if (native.reap(pid) !== null) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  process.kill(pid, 'SIGKILL');
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
  const master = new ReadStream(masterFd);
  const input = clientStream(io.stdio[0], 'in');
  const output = clientStream(io.stdio[1], 'out');
  const raw = input instanceof ReadStream;
  const syncSize = () => {
    try {
      const { rows, cols } = io.size?.() ?? native.getWinsize(io.stdio[0]);
      native.setWinsize(masterFd, rows, cols);
    } catch {
      // the client's stdin is not a terminal: keep the pty's default size
    }
  };
  if (raw) input.setRawMode(true);
  syncSize();
  const unsubscribe = io.onResize(syncSize);
  input.on('data', (chunk) => master.write(chunk));
  // The client's side is gone: nobody is left to type into or read the session.
  input.on('end', onHangup);
  output.on('error', onHangup);
  // output back-pressure: while the client is behind, the pty fills and the command waits
  master.on('data', (chunk) => {
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
