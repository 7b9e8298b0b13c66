// Reading a file a container controls, from the agent: whatever the container put at that path
// (a FIFO, a device, a symlink to one, /proc/kmsg, a huge /proc/PID/pagemap) must not block,
// exhaust or mislead the agent. So the path is resolved below the container's root without
// opening anything (O_PATH, openat2 RESOLVE_IN_ROOT: its symlinks stay inside), the inode that
// fd pins is checked to be a regular file on a real file system, and only then opened for
// reading, non-blocking, and checked to be that same inode. With the container's credentials
// both the resolution and the open are made with them. And what cp shares for writing: where
// it copies (ContainerRoot), its temporary names, its failures in cp(1)'s words.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, statfsSync, type Stats } from 'node:fs';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { NativeError, O_PATH, type Confinement, type NativeLibrary } from '../native/libnsdebug.js';

const { O_RDONLY, O_NONBLOCK, O_NOCTTY } = constants;

/** File systems of the kernel's own files: sizes lie, reads block or never end (kmsg, pagemap). */
const KERNEL_FILE_SYSTEMS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x73636673: 'securityfs',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0xcafe4a11: 'bpf',
};

/** The kernel file system fd is on (proc, sysfs, …), or undefined for a real one. */
export const kernelFileSystem = (fd: number): string | undefined => KERNEL_FILE_SYSTEMS[Number(statfsSync(`/proc/self/fd/${fd}`).type)];

export interface OpenedFile {
  fd: number;
  stat: Stats;
}

const notRegular = (path: string, stat: Stats) =>
  new NsdebugError(
    stat.isDirectory()
      ? `${path}: is a directory; name a file`
      : `${path}: not a regular file (${stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : stat.isSymbolicLink() ? 'a symbolic link' : 'a device'}); nsdebug reads only regular files`,
    ExitCode.COPY_FAILED,
  );

/**
 * Open path (absolute, inside the container) below rootFd for reading: a regular file on a real
 * file system, or an NsdebugError saying what it is instead. With creds, the read is opened with
 * them (the container's permissions), by path again, and must find the very inode checked.
 */
export function openContainerFile(native: NativeLibrary, rootFd: number, path: string, creds?: Confinement): OpenedFile {
  // With creds the path is resolved with them too: the kernel's protected_symlinks (on in most
  // distributions) refuses even root a symlink the container's user made in its /tmp.
  const pathFd = creds ? native.openInRootAs(rootFd, path, O_PATH, 0, creds) : native.openInRoot(rootFd, path, O_PATH);
  try {
    const stat = fstatSync(pathFd);
    if (!stat.isFile()) throw notRegular(path, stat);
    const fs = kernelFileSystem(pathFd);
    if (fs)
      throw new NsdebugError(`${path}: a file of the kernel (${fs}), not a regular file; nsdebug does not read it`, ExitCode.COPY_FAILED);
    const flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
    const fd = creds ? native.openInRootAs(rootFd, path, flags, 0, creds) : openSync(`/proc/self/fd/${pathFd}`, flags);
    const opened = fstatSync(fd);
    if (opened.dev !== stat.dev || opened.ino !== stat.ino) {
      closeSync(fd);
      throw new NsdebugError(`${path}: changed while nsdebug opened it; try again`, ExitCode.COPY_FAILED);
    }
    return { fd, stat };
  } finally {
    closeSync(pathFd);
  }
}

/** The whole of a small file below the container's root (e.g. its /etc/passwd), at most maxBytes. */
export function readContainerFile(native: NativeLibrary, rootFd: number, path: string, maxBytes: number): Buffer {
  const { fd } = openContainerFile(native, rootFd, path);
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (let n; length < buf.length && (n = readSync(fd, buf, length, buf.length - length, null)) > 0;) length += n;
    if (length > maxBytes)
      throw new NsdebugError(`${path}: larger than ${maxBytes} bytes; nsdebug reads no more of it`, ExitCode.COPY_FAILED);
    return buf.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** Where a copy reads or writes: the container's root held open, the path made absolute inside it, whose rights apply. */
export interface ContainerRoot {
  rootFd: number;
  path: string;
  creds: Confinement;
}

/** Why an open, read or write failed, as cp(1) words it ("PATH: reason"), and what to do. */
export function copyFailure(err: unknown, path: string): NsdebugError {
  if (err instanceof NsdebugError) return err;
  const code = err instanceof NativeError ? err.code : ((err as NodeJS.ErrnoException).code ?? '');
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a component of the path is not a directory',
    EROFS: "read-only file system (the container's root or a read-only volume); copy to a writable volume such as an emptyDir",
    ENOSPC: 'no space left on the file system',
    EDQUOT: 'disk quota exceeded',
    EISDIR: 'is a directory; cp -r copies a directory and what it holds',
    EXDEV: "leads out of the container's root through a magic link; name the file itself",
    ELOOP: 'too many levels of symbolic links',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted (an immutable or append-only file?)',
  };
  const reason = reasons[code];
  const exitCode = code === 'ENOENT' || code === 'ENOTDIR' ? ExitCode.NOT_FOUND : ExitCode.COPY_FAILED;
  return new NsdebugError(`${path}: ${reason ?? (err as Error).message}`, exitCode);
}

/** A name for a file being written beside base, renamed to base once complete. */
export const temporaryName = (base: string) => `.${base.slice(0, 200)}.nsdebug-${randomBytes(4).toString('hex')}`;
