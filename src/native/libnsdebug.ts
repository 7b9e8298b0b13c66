// The FFI boundary: the one module that loads native/libnsdebug.so with koffi, knows its C
// types, and turns -errno into an Error naming the step that failed. Nothing else imports koffi;
// callers depend on the NativeLibrary interface, so tests can pass a fake of it.
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';

import koffi, { type LibraryHandle } from 'koffi';

import { packageRoot } from '../package.js';

/** Mirrors enum nsd_file_op in native/libnsdebug.h. */
enum FileOp {
  Open = 0,
  Rename = 1,
  Mkdir = 2,
  Symlink = 3,
}

/** What the command is; mirrors enum nsd_exec_mode in native/libnsdebug.h. */
export enum ExecMode {
  /** argv[0] searched in the PATH of env, inside the target */
  Command = 0,
  /** the target's /bin/bash, else /bin/sh, else the toolbox's sh */
  Shell = 1,
  /** argv run by the toolbox (busybox) */
  Toolbox = 2,
}

/**
 * The steps of nsd_spawn that can fail: the number the library reports in nsd_spawn_result.step.
 * Mirrors enum nsd_step in native/libnsdebug.h member by member (NSD_STEP_SET_UID is SetUid).
 */
export enum Step {
  None = 0,
  Socketpair,
  ForkSupervisor,
  Pdeathsig,
  JoinSessionCgroup,
  OpenRoot,
  OpenCwd,
  TargetGone,
  Setns,
  BecomeRoot,
  Chroot,
  OpenPty,
  ForkCommand,
  Setsid,
  ControllingTty,
  Stdio,
  Exec,
  Report,
  ReadOnly,
  Postmortem,
  OpenProc,
  LsmLabel,
  DropBounding,
  SetGroups,
  SetGid,
  SetUid,
  SetCaps,
  AmbientCaps,
  NoNewPrivs,
  Seccomp,
  ConfineInit,
  JoinContainerCgroup,
  PmNamespace,
  PmPrivate,
  PmTmp,
  PmDev,
  PivotRoot,
  DetachOldRoot,
  PmProc,
}

/** Each step worded to follow "cannot …": the one table of their names. */
export const STEP_WORDING: Readonly<Record<Step, string>> = {
  [Step.None]: 'do nothing',
  [Step.Socketpair]: 'create the session channel',
  [Step.ForkSupervisor]: 'start the session supervisor',
  [Step.Pdeathsig]: 'tie the session to the agent',
  [Step.JoinSessionCgroup]: 'join the session cgroup',
  [Step.OpenRoot]: "open the target's root directory",
  [Step.OpenCwd]: "open the target's working directory",
  [Step.TargetGone]: 'find the target process (it has exited)',
  [Step.Setns]: 'join the namespaces',
  [Step.BecomeRoot]: "become root in the container's user namespace",
  [Step.Chroot]: "enter the container's root directory",
  [Step.OpenPty]: 'open a terminal in the container',
  [Step.ForkCommand]: 'start the command',
  [Step.Setsid]: 'start a new session',
  [Step.ControllingTty]: 'set the controlling terminal',
  [Step.Stdio]: 'set up standard input and output',
  [Step.Exec]: 'run the command',
  [Step.Report]: 'receive the session report',
  [Step.ReadOnly]: 'make a read-only copy of the mount tree',
  [Step.Postmortem]: "mount the container's last filesystem",
  [Step.OpenProc]: "open the agent's /proc",
  [Step.LsmLabel]: "set the target's security label (attr/exec)",
  [Step.DropBounding]: "drop the capabilities outside the target's bounding set",
  [Step.SetGroups]: "set the target's supplementary groups",
  [Step.SetGid]: "take the target's group IDs",
  [Step.SetUid]: "take the target's user IDs",
  [Step.SetCaps]: "take the target's capabilities",
  [Step.AmbientCaps]: "raise the target's ambient capabilities",
  [Step.NoNewPrivs]: 'set no_new_privs',
  [Step.Seccomp]: "install the target's seccomp filter",
  [Step.ConfineInit]: "drop the session init's privileges",
  [Step.JoinContainerCgroup]: "join the container's cgroups",
  [Step.PmNamespace]: 'make a mount namespace for the post-mortem session',
  [Step.PmPrivate]: "make the session's mounts private",
  [Step.PmTmp]: "mount the session's /tmp",
  [Step.PmDev]: "mount the session's /dev",
  [Step.PivotRoot]: "make the container's last filesystem the root (pivot_root)",
  [Step.DetachOldRoot]: "detach the node's root",
  [Step.PmProc]: "mount the session's /proc",
};

/** open(2)'s O_PATH from <fcntl.h> (Linux): a handle on a path that opens nothing; Node's fs.constants lacks it. */
export const O_PATH = 0o10000000;

/** Namespace flags for setns(2), from <linux/sched.h>. */
export const CLONE_FLAGS = {
  time: 0x00000080,
  mnt: 0x00020000,
  cgroup: 0x02000000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  net: 0x40000000,
} as const;

/**
 * What the command takes before exec (apply_confinement() in native/libnsdebug.c): a target
 * process's credentials, capability sets (bit N = capability N), no_new_privs, seccomp filters
 * and LSM label. Mirrors struct nsd_confinement.
 */
export interface Confinement {
  /** real, effective, saved; as the joined user namespace maps them */
  uid: [number, number, number];
  gid: [number, number, number];
  /** supplementary groups; undefined: keep those we have (the target's user namespace denies setgroups) */
  groups: number[] | undefined;
  capBounding: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  capInheritable: bigint;
  capAmbient: bigint;
  noNewPrivs: boolean;
  /** each filter's struct sock_filter instructions, oldest first (the order they are installed) */
  seccompFilters: Buffer[];
  /** what to write to /proc/thread-self/attr/exec; undefined where the node has no LSM or the target none */
  lsmExec?: string;
}

export interface SpawnRequest {
  /** target PID in our PID namespace */
  pid: number;
  /** from pidfdOpen(pid), after the process was verified */
  pidfd: number;
  /** OR of CLONE_FLAGS */
  nsFlags: number;
  /** the command's stdin, stdout, stderr when tty is false */
  stdio: [number, number, number];
  tty: boolean;
  mode: ExecMode;
  /** the static toolbox, opened before joining; -1 for none */
  toolboxFd: number;
  /** the session cgroup's cgroup.procs and cgroup.kill, opened for writing; -1 for none */
  cgroupProcsFd: number;
  cgroupKillFd: number;
  /** the target container's cgroup.procs in each cgroup v1 hierarchy, opened for writing: the session joins them */
  containerCgroupFds?: number[];
  /** a private, recursively read-only copy of the target's mount tree, and no new privileges */
  readOnly: boolean;
  /**
   * A dead container's filesystem as the root instead of a live process's mount namespace:
   * its layers (top first, host paths, colon-separated) and a pidfd of a process in the node's
   * mount namespace; pid/pidfd/nsFlags then name the pod sandbox's namespaces to join.
   */
  postmortem?: { rootfs: string; hostPidfd: number };
  argv: string[];
  env: string[];
  /** the target's confinement (post-mortem: the dead container's spec's); undefined: the agent's privileges (--privileged, node) */
  confinement?: Confinement;
}

export interface SpawnResult {
  supervisorPid: number;
  /** with tty: the pty master; else -1 */
  ptyMasterFd: number;
  /** yields a 4-byte little-endian exit code when the command ends; EOF if the session was killed */
  exitFd: number;
  /** the target had no shell and the toolbox's sh runs instead */
  usedToolbox: boolean;
}

/**
 * A failed system call: `code` is the errno name (ENOENT…), `what` what nsdebug was doing, in
 * words; a failed spawn also says which step, as a number to decide on.
 */
export class NativeError extends Error {
  readonly what: string;

  constructor(
    /** a spawn step, or what another call was doing (worded to follow "cannot …") */
    readonly step: Step | string,
    readonly errno: number,
    /** spawn: the supervisor that reported the failure, still to be reaped (it exits by itself) */
    readonly supervisorPid?: number,
  ) {
    const what = typeof step === 'string' ? step : (STEP_WORDING[step] ?? `step ${step}`);
    super(`cannot ${what}: ${errnoMessage(errno)}`);
    this.name = 'NativeError';
    this.what = what;
  }

  get code(): string {
    return errnoName(this.errno);
  }
}

export interface NativeLibrary {
  spawn(req: SpawnRequest): SpawnResult;
  pidfdOpen(pid: number): number;
  /**
   * openInRoot, done with creds' IDs, groups and permitted/effective capabilities (in a forked
   * child): the kernel checks the container's permissions, not the agent's. The fd.
   */
  openInRootAs(rootFd: number, path: string, flags: number, mode: number, creds: Confinement): number;
  /** renameat(2) of from to to, both in dirFd, with creds' permissions (as openInRootAs) */
  renameAs(dirFd: number, from: string, to: string, creds: Confinement): void;
  /** mkdirat(2) of name (one component) in dirFd, with creds' permissions: the directory is theirs */
  mkdirAs(dirFd: number, name: string, mode: number, creds: Confinement): void;
  /** symlinkat(2): name (one component) in dirFd pointing at target, with creds' permissions */
  symlinkAs(dirFd: number, name: string, target: string, creds: Confinement): void;
  /**
   * A dead container's layers (host paths, top first) mounted read-only in a private copy of
   * hostPidfd's mount namespace: the fd of their root, the mount alive as long as it is open.
   */
  snapshotRoot(hostPidfd: number, layers: string): number;
  /** write data (≤ 4096 bytes) to fd only if that cannot block; false when it would */
  writeIfReady(fd: number, data: Buffer): boolean;
  /**
   * The seccomp filters of pid (PTRACE_SECCOMP_GET_FILTER), oldest first, each as sock_filter
   * instructions. Off the event loop: a target that does not stop holds the copy up to 2 s.
   */
  seccompFilters(pid: number): Promise<Buffer[]>;
  /** open(2) flags and mode for path resolved below rootFd as its root (symlinks and ".." stay inside); the fd */
  openInRoot(rootFd: number, path: string, flags: number, mode?: number): number;
  /** the wait status once the child has exited, or null while it runs */
  reap(pid: number): number | null;
  /** give the heap's free memory back to the kernel (malloc_trim): streams' buffers leave it fragmented */
  releaseMemory(): void;
  setWinsize(fd: number, rows: number, cols: number): void;
  getWinsize(fd: number): { rows: number; cols: number };
  /** a close-on-exec pipe: [read end, write end] */
  pipe(): [number, number];
  /**
   * Read what the thin entry point sent on a unix socket, without blocking: data and, with its
   * first bytes, the client's stdio fds. null while nothing has arrived; an empty buffer at EOF.
   */
  receiveRequest(socketFd: number): { data: Buffer; fds: number[] } | null;
}

const errnoMap = getSystemErrorMap();

export function errnoName(errno: number): string {
  return errnoMap.get(-errno)?.[0] ?? `errno ${errno}`;
}

export function errnoMessage(errno: number): string {
  return errnoMap.get(-errno)?.[1] ?? `errno ${errno}`;
}

/** Where the library may be: $NSDEBUG_NATIVE_LIB, the package's native/, the image's lib dir. */
export function libraryCandidates(env = process.env): string[] {
  let packaged: string | undefined;
  try {
    packaged = join(packageRoot(), 'native', 'libnsdebug.so');
  } catch {
    // run from outside a package (a copied bundle): the other two places
  }
  return [env.NSDEBUG_NATIVE_LIB, packaged, '/usr/lib/nsdebug/libnsdebug.so'].filter((p): p is string => Boolean(p));
}

let loaded: NativeLibrary | undefined;

/** Load libnsdebug.so once; the error lists every path tried and why each failed. */
export function loadNativeLibrary(candidates = libraryCandidates()): NativeLibrary {
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      failures.push(`${path}: not found`);
      continue;
    }
    try {
      loaded = bind(koffi.load(path));
      return loaded;
    } catch (err) {
      failures.push(`${path}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot load libnsdebug.so (run \`npm run build\`); tried ${failures.join('; ')}`);
}

/** NSD_MAX_CGROUP_JOINS in native/libnsdebug.h. */
export const MAX_CGROUP_JOINS = 16;

/** Bytes of one struct sock_filter instruction. */
const SOCK_FILTER_SIZE = 8;
/** The kernel's limit on a process's filters: 256 KiB of instructions in all (MAX_INSNS_PER_PATH). */
const MAX_FILTER_BYTES = 1 << 18;
/** Each filter costs at least one instruction plus a penalty of 4 against that limit. */
const MAX_FILTERS = Math.floor(MAX_FILTER_BYTES / SOCK_FILTER_SIZE / 5);

function confinementStruct(c: Confinement | undefined) {
  if (!c) return { enabled: 0, uid: [0, 0, 0], gid: [0, 0, 0], ngroups: 0, groups: null, cap_bounding: 0n, cap_permitted: 0n, cap_effective: 0n, cap_inheritable: 0n, cap_ambient: 0n, no_new_privs: 0, seccomp_filters: 0, seccomp_lengths: null, seccomp_program: null, lsm_exec: null };
  return {
    enabled: 1,
    uid: c.uid,
    gid: c.gid,
    ngroups: c.groups ? c.groups.length : -1,
    groups: c.groups?.length ? Uint32Array.from(c.groups) : null,
    cap_bounding: c.capBounding,
    cap_permitted: c.capPermitted,
    cap_effective: c.capEffective,
    cap_inheritable: c.capInheritable,
    cap_ambient: c.capAmbient,
    no_new_privs: c.noNewPrivs ? 1 : 0,
    seccomp_filters: c.seccompFilters.length,
    seccomp_lengths: c.seccompFilters.length ? Int32Array.from(c.seccompFilters, (f) => f.length / SOCK_FILTER_SIZE) : null,
    seccomp_program: c.seccompFilters.length ? Buffer.concat(c.seccompFilters) : null,
    lsm_exec: c.lsmExec ?? null,
  };
}

function bind(lib: LibraryHandle): NativeLibrary {
  // Registered by name for the prototypes below.
  koffi.struct('nsd_confinement', {
    enabled: 'int32_t',
    uid: koffi.array('uint32_t', 3),
    gid: koffi.array('uint32_t', 3),
    ngroups: 'int32_t',
    groups: 'const uint32_t *',
    cap_bounding: 'uint64_t',
    cap_permitted: 'uint64_t',
    cap_effective: 'uint64_t',
    cap_inheritable: 'uint64_t',
    cap_ambient: 'uint64_t',
    no_new_privs: 'int32_t',
    seccomp_filters: 'int32_t',
    seccomp_lengths: 'const int32_t *',
    seccomp_program: 'const uint8_t *',
    lsm_exec: 'const char *',
  });
  koffi.struct('nsd_spawn_request', {
    pid: 'int32_t',
    pidfd: 'int32_t',
    ns_flags: 'int32_t',
    stdio_fds: koffi.array('int32_t', 3),
    tty: 'int32_t',
    mode: 'int32_t',
    toolbox_fd: 'int32_t',
    cgroup_procs_fd: 'int32_t',
    cgroup_kill_fd: 'int32_t',
    container_cgroup_fds: koffi.array('int32_t', MAX_CGROUP_JOINS),
    container_cgroup_count: 'int32_t',
    read_only: 'int32_t',
    rootfs: 'const char *',
    host_pidfd: 'int32_t',
    argv: 'const char **',
    envp: 'const char **',
    confinement: 'nsd_confinement',
  });
  koffi.struct('nsd_spawn_result', {
    supervisor_pid: 'int32_t',
    pty_master_fd: 'int32_t',
    exit_fd: 'int32_t',
    flags: 'int32_t',
    step: 'int32_t',
    error: 'int32_t',
  });
  const nsdSpawn = lib.func('int nsd_spawn(const nsd_spawn_request *req, _Out_ nsd_spawn_result *res)');
  const nsdPidfdOpen = lib.func('int nsd_pidfd_open(int32_t pid)');
  const nsdSeccompFilters = lib.func(
    'int nsd_seccomp_filters(int32_t pid, _Out_ uint8_t *buf, int32_t size, _Out_ int32_t *lengths, int32_t max_filters)',
  );
  const nsdOpenInRoot = lib.func('int nsd_open_in_root(int32_t root_fd, const char *path, int32_t flags, int32_t mode)');
  const nsdWriteReady = lib.func('int nsd_write_ready(int32_t fd, const uint8_t *buf, int32_t len)');
  const nsdReleaseMemory = lib.func('int nsd_release_memory(void)');
  const nsdFileAs = lib.func(
    'int nsd_file_as(int32_t op, int32_t dir_fd, const char *path, const char *to, int32_t flags, int32_t mode, const nsd_confinement *creds)',
  );
  const nsdSnapshotRoot = lib.func('int nsd_snapshot_root(int32_t host_pidfd, const char *rootfs)');
  const nsdReap = lib.func('int nsd_reap(int32_t pid)');
  const nsdSetWinsize = lib.func('int nsd_set_winsize(int32_t fd, int32_t rows, int32_t cols)');
  const nsdGetWinsize = lib.func('int nsd_get_winsize(int32_t fd)');
  const nsdPipe = lib.func('int nsd_pipe(_Out_ int32_t *fds)');
  const nsdRecvRequest = lib.func('int nsd_recv_request(int32_t sock, _Out_ uint8_t *buf, int32_t len, _Out_ int32_t *fds)');

  const check = (rc: number, step: string): number => {
    if (rc < 0) throw new NativeError(step, -rc);
    return rc;
  };

  return {
    spawn(req) {
      const res: Record<string, number> = {};
      const rc = nsdSpawn(
        {
          pid: req.pid,
          pidfd: req.pidfd,
          ns_flags: req.nsFlags,
          stdio_fds: req.stdio,
          tty: req.tty ? 1 : 0,
          mode: req.mode,
          toolbox_fd: req.toolboxFd,
          cgroup_procs_fd: req.cgroupProcsFd,
          cgroup_kill_fd: req.cgroupKillFd,
          container_cgroup_fds: Array.from({ length: MAX_CGROUP_JOINS }, (_, i) => req.containerCgroupFds?.[i] ?? -1),
          container_cgroup_count: req.containerCgroupFds?.length ?? 0,
          read_only: req.readOnly ? 1 : 0,
          rootfs: req.postmortem?.rootfs ?? null,
          host_pidfd: req.postmortem?.hostPidfd ?? -1,
          argv: [...req.argv, null],
          envp: [...req.env, null],
          confinement: confinementStruct(req.confinement),
        },
        res,
      ) as number;
      if (rc < 0) {
        const supervisor = res.supervisor_pid !== undefined && res.supervisor_pid > 0 ? res.supervisor_pid : undefined;
        throw new NativeError(res.step as Step, res.error || -rc, supervisor);
      }
      return {
        supervisorPid: res.supervisor_pid,
        ptyMasterFd: res.pty_master_fd,
        exitFd: res.exit_fd,
        usedToolbox: (res.flags & 1) !== 0,
      };
    },
    pidfdOpen: (pid) => check(nsdPidfdOpen(pid) as number, `open a pidfd for pid ${pid}`),
    async seccompFilters(pid) {
      const buf = Buffer.alloc(MAX_FILTER_BYTES);
      const lengths = new Int32Array(MAX_FILTERS);
      const rc = await new Promise<number>((resolve, reject) =>
        nsdSeccompFilters.async(pid, buf, buf.length, lengths, lengths.length, (err: unknown, result: number) =>
          err ? reject(err as Error) : resolve(result),
        ),
      );
      const count = check(rc, `copy the seccomp filter of pid ${pid}`);
      const filters: Buffer[] = [];
      for (let i = 0, at = 0; i < count; i++) {
        const bytes = (lengths[i] as number) * SOCK_FILTER_SIZE;
        filters.push(Buffer.from(buf.subarray(at, at + bytes)));
        at += bytes;
      }
      return filters;
    },
    openInRoot: (rootFd, path, flags, mode = 0) => {
      const rc = nsdOpenInRoot(rootFd, path, flags, mode) as number;
      if (rc < 0) throw new NativeError(`open ${path}`, -rc);
      return rc;
    },
    openInRootAs: (rootFd, path, flags, mode, creds) => {
      const rc = nsdFileAs(FileOp.Open, rootFd, path, null, flags, mode, confinementStruct(creds)) as number;
      if (rc < 0) throw new NativeError(`open ${path}`, -rc);
      return rc;
    },
    renameAs: (dirFd, from, to, creds) => {
      const rc = nsdFileAs(FileOp.Rename, dirFd, from, to, 0, 0, confinementStruct(creds)) as number;
      if (rc < 0) throw new NativeError(`rename ${from} to ${to}`, -rc);
    },
    mkdirAs: (dirFd, name, mode, creds) => {
      const rc = nsdFileAs(FileOp.Mkdir, dirFd, name, null, 0, mode, confinementStruct(creds)) as number;
      if (rc < 0) throw new NativeError(`mkdir ${name}`, -rc);
    },
    symlinkAs: (dirFd, name, target, creds) => {
      const rc = nsdFileAs(FileOp.Symlink, dirFd, name, target, 0, 0, confinementStruct(creds)) as number;
      if (rc < 0) throw new NativeError(`symlink ${name}`, -rc);
    },
    snapshotRoot: (hostPidfd, layers) => check(nsdSnapshotRoot(hostPidfd, layers) as number, "mount the dead container's layers"),
    writeIfReady(fd, data) {
      const rc = nsdWriteReady(fd, data, data.length) as number;
      if (rc === -osConstants.errno.EAGAIN) return false;
      check(rc, 'write to the client');
      return true;
    },
    releaseMemory: () => void nsdReleaseMemory(),
    reap(pid) {
      const rc = nsdReap(pid) as number;
      if (rc === -osConstants.errno.EAGAIN) return null;
      return check(rc, `wait for pid ${pid}`);
    },
    setWinsize: (fd, rows, cols) => void check(nsdSetWinsize(fd, rows, cols) as number, 'set the terminal size'),
    getWinsize(fd) {
      const packed = check(nsdGetWinsize(fd) as number, 'read the terminal size');
      return { rows: packed >>> 16, cols: packed & 0xffff };
    },
    pipe() {
      const fds = new Int32Array(2);
      check(nsdPipe(fds) as number, 'create a pipe');
      return [fds[0] as number, fds[1] as number];
    },
    receiveRequest(socketFd) {
      const buf = Buffer.alloc(65536);
      const fds = new Int32Array(3);
      const rc = nsdRecvRequest(socketFd, buf, buf.length, fds) as number;
      if (rc === -osConstants.errno.EAGAIN) return null;
      check(rc, 'receive the session request');
      return { data: buf.subarray(0, rc), fds: [...fds].filter((fd) => fd >= 0) };
    },
  };
}
