// `nsdebug-agent cp`: one file out of or into a running container, without anything (tar, a
// shell) inside it. The agent opens the container's root (/proc/PID/root: its mount namespace's
// view, volumes included) and resolves paths below it with openat2(RESOLVE_IN_ROOT), so the
// container's own symlinks and ".." cannot lead out; the bytes flow through the exec stream.
// Every open and the rename are done with the container init's credentials and capabilities
// (a forked child takes them, see nsd_file_as): a file the container cannot read or write,
// nsdebug cannot either.
//   out:  stdout = one JSON line (CopyHeader), then the file's bytes
//   in:   stdin = exactly `size` bytes; written to a temporary name beside the target, given its
//         mode, owner (the container's user) and mtime, then renamed over it; stdout = CopyResult
import { closeSync, constants, createReadStream, fchmodSync, futimesSync, openSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';

import { ExitCode, type CopyHeader, type CopyRequest, type CopyResult } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { loadNativeLibrary, NativeError, O_PATH, type Confinement, type NativeLibrary } from '../native/libnsdebug.js';
import { openAuditChannel, sessionRecord } from './audit.js';
import { readTargetCredentials } from './confinement.js';
import { openContainerFile } from './container-file.js';
import { PROC } from './procfs.js';
import { resolveContainer, verifyMembership } from './resolve.js';

export interface CopyOptions {
  containerId: string;
  podUid?: string;
  /** the path in the container; relative paths start at its init's working directory */
  path: string;
  /** copying in: */
  upload?: { size: number; mode: number; mtimeMs: number; name: string };
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NOCTTY } = constants;

/** The container's root directory, held open, the path made absolute inside it, and whose rights to use there. */
function openContainer(opts: CopyOptions): { rootFd: number; path: string; pid: number; creds: Confinement } {
  const { pid } = resolveContainer(opts.containerId, opts.podUid);
  const rootFd = openSync(`${PROC}/${pid}/root`, O_RDONLY | O_DIRECTORY);
  try {
    // the pid could have been reused between resolving and opening: check it still is the container's
    verifyMembership(pid, opts.containerId, opts.podUid);
    const cwd = opts.path.startsWith('/') ? '/' : readlinkSync(`${PROC}/${pid}/cwd`);
    return { rootFd, pid, path: posix.resolve(cwd, opts.path), creds: readTargetCredentials(pid) };
  } catch (err) {
    closeSync(rootFd);
    throw err;
  }
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
    EISDIR: 'is a directory; nsdebug cp copies one file',
    EXDEV: "leads out of the container's root through a magic link; name the file itself",
    ELOOP: 'too many levels of symbolic links',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted (an immutable or append-only file?)',
  };
  const reason = reasons[code];
  const exitCode = code === 'ENOENT' || code === 'ENOTDIR' ? ExitCode.NOT_FOUND : ExitCode.COPY_FAILED;
  return new NsdebugError(`${path}: ${reason ?? (err as Error).message}`, exitCode);
}

const isDirectory = () => Object.assign(new Error('is a directory'), { code: 'EISDIR' });

/** Stream one regular file out: a header line, then its bytes. */
export async function copyOut(opts: CopyOptions, native: NativeLibrary, stdout: Writable): Promise<CopyHeader> {
  const c = openContainer(opts);
  let fd = -1;
  try {
    let stat;
    try {
      ({ fd, stat } = openContainerFile(native, c.rootFd, c.path, c.creds));
    } catch (err) {
      throw copyFailure(err, c.path);
    }
    const { size } = stat;
    const header: CopyHeader = { path: c.path, size, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs };
    stdout.write(`${JSON.stringify(header)}\n`);
    if (size === 0) return header;
    // the stream owns fd from here and closes it
    const source = createReadStream('', { fd, autoClose: true, end: size - 1 });
    fd = -1;
    await pipeline(source, stdout, { end: false });
    return header;
  } finally {
    if (fd >= 0) closeSync(fd);
    closeSync(c.rootFd);
  }
}

/**
 * Up to size bytes from stdin into fd (-1: dropped); how many came, and the first write error.
 * Reads on past a failed write and stops at size rather than at EOF: containerd ends an exec only
 * once its stdin is consumed (see drain_stdin in native/nsdebug-agent.c), and only the v5 stream
 * protocol can half-close stdin.
 */
async function receive(stdin: Readable, fd: number, size: number): Promise<{ received: number; error?: unknown }> {
  let received = 0;
  let error: unknown;
  if (size === 0) return { received };
  for await (const chunk of stdin as AsyncIterable<Buffer>) {
    const take = chunk.subarray(0, size - received);
    try {
      if (fd >= 0 && error === undefined) for (let off = 0; off < take.length;) off += writeSync(fd, take, off);
    } catch (err) {
      error = err;
    }
    received += take.length;
    if (received === size) break;
  }
  return { received, ...(error !== undefined ? { error } : {}) };
}

/** Read exactly `size` bytes from stdin into the container's file; the old file stays whole until the rename. */
export async function copyIn(opts: CopyOptions, native: NativeLibrary, stdin: Readable): Promise<CopyResult> {
  const upload = opts.upload;
  if (!upload) throw new NsdebugError('internal: copyIn without an upload', ExitCode.INTERNAL);
  let c: ReturnType<typeof openContainer>;
  try {
    c = openContainer(opts);
  } catch (err) {
    await receive(stdin, -1, upload.size);
    throw err;
  }
  let target = c.path;
  let dirFd = -1;
  let tmp: string | undefined;
  let consumed = false;
  try {
    // an existing directory receives the file under its source name, as cp(1) does
    try {
      closeSync(native.openInRootAs(c.rootFd, target, O_PATH | O_DIRECTORY, 0, c.creds));
      target = posix.join(target, upload.name);
    } catch {
      // not a directory (or not there yet): the target file itself
    }
    const base = posix.basename(target);
    if (target === '/') throw isDirectory();
    dirFd = native.openInRootAs(c.rootFd, posix.dirname(target), O_PATH | O_DIRECTORY, 0, c.creds);
    tmp = `.${base.slice(0, 200)}.nsdebug-${randomBytes(4).toString('hex')}`;
    // created by the container's user (so it owns it, as with kubectl cp), where it may write
    const fd = native.openInRootAs(dirFd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, 0o600, c.creds);
    try {
      const { received, error } = await receive(stdin, fd, upload.size);
      consumed = true;
      if (error !== undefined) throw error;
      if (received !== upload.size) {
        throw new NsdebugError(
          `${target}: the upload ended after ${received} of ${upload.size} bytes; nothing was changed`,
          ExitCode.COPY_FAILED,
        );
      }
      fchmodSync(fd, upload.mode & 0o777);
      futimesSync(fd, Date.now() / 1000, upload.mtimeMs / 1000);
    } finally {
      closeSync(fd);
    }
    // within the directory already resolved inside the container: no second path walk
    native.renameAs(dirFd, tmp, base, c.creds);
    tmp = undefined;
    return { path: target, size: upload.size };
  } catch (err) {
    if (!consumed) await receive(stdin, -1, upload.size);
    throw copyFailure(err, target);
  } finally {
    if (tmp !== undefined && dirFd >= 0) rmSync(`/proc/self/fd/${dirFd}/${tmp}`, { force: true });
    if (dirFd >= 0) closeSync(dirFd);
    closeSync(c.rootFd);
  }
}

/**
 * One decoded `cp` over a stdin and stdout: copied out, the header line and the bytes; copied
 * in, the result line. What it did, for the audit line.
 */
export async function copyThrough(
  req: CopyRequest,
  native: NativeLibrary,
  stdin: Readable,
  stdout: Writable,
): Promise<CopyHeader | CopyResult> {
  const at = { containerId: req.containerId, ...(req.podUid ? { podUid: req.podUid } : {}) };
  let done: CopyHeader | CopyResult;
  if ('from' in req) done = await copyOut({ ...at, path: req.from }, native, stdout);
  else {
    const { to: path, name, size, mode, mtimeMs } = req;
    done = await copyIn({ ...at, path, upload: { name, size, mode, mtimeMs } }, native, stdin);
    stdout.write(`${JSON.stringify(done)}\n`);
  }
  await new Promise<void>((resolve) => stdout.write('', () => resolve()));
  return done;
}

/** The audit line's command for a cp. */
export const copyCommand = (req: CopyRequest) => ('from' in req ? ['cp', 'out', req.from] : ['cp', 'in', req.to]);

/** `nsdebug-agent cp`, with one audit record like a session's: which file, which way, how many bytes. */
export async function runCopy(req: CopyRequest): Promise<number> {
  const native = loadNativeLibrary();
  const audit = await openAuditChannel();
  const record = { ...sessionRecord(req), command: copyCommand(req) };
  audit.send({ event: 'start', ...record, start: new Date().toISOString() });
  try {
    const done = await copyThrough(req, native, process.stdin, process.stdout);
    audit.send({ event: 'end', ...record, path: done.path, bytes: done.size, end: new Date().toISOString(), exitCode: 0 });
    return ExitCode.OK;
  } catch (err) {
    audit.send({ event: 'end', ...record, end: new Date().toISOString(), exitCode: null, error: (err as Error).message });
    throw err;
  } finally {
    await audit.close();
  }
}
