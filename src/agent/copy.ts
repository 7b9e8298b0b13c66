// `nsdebug-agent cp`: a file or a tree out of a container, or into it, without anything (tar, a
// shell) inside it. The agent opens the container's root (/proc/PID/root: its mount namespace's
// view, volumes included; for a container that is not running, its snapshot mounted read-only)
// and resolves paths below it with openat2(RESOLVE_IN_ROOT), so the container's own symlinks and
// ".." cannot lead out; the bytes flow through the exec stream.
// Every open, mkdir, symlink and rename is done with the container init's credentials and
// capabilities (a forked child takes them, see nsd_file_as): a file the container cannot read or
// write, nsdebug cannot either.
//   out:  stdout = one JSON line (CopyHeader), then the file's bytes; a tree: a tar stream
//   in:   stdin = exactly `size` bytes; written to a temporary name beside the target, given its
//         mode, owner (the container's user) and mtime, then renamed over it; stdout = CopyResult.
//         A tree: a tar stream, each file written the same way (src/agent/copy-tree.ts)
import { closeSync, constants, createReadStream, fchmodSync, futimesSync, openSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';

import { ExitCode, type CopyHeader, type CopyRequest, type CopyResult, type SessionCopy } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { loadNativeLibrary, O_PATH, type NativeLibrary } from '../native/libnsdebug.js';
import { openAuditChannel, sessionRecord } from './audit.js';
import { readTargetCredentials } from './confinement.js';
import { copyFailure, openContainerFile, temporaryName, type ContainerRoot } from './container-file.js';
import { packTree, unpackTree, type TreeResult } from './copy-tree.js';
import { deadContainer, podSandbox, seesPath } from './postmortem.js';
import { PROC } from './procfs.js';
import { resolveContainer, shortId, verifyMembership } from './resolve.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NOCTTY } = constants;

/** A running container's root; relative paths start at its init's working directory. */
function openLiveContainer(req: CopyRequest, path: string): ContainerRoot {
  const { pid } = resolveContainer(req.containerId, req.podUid);
  const rootFd = openSync(`${PROC}/${pid}/root`, O_RDONLY | O_DIRECTORY);
  try {
    // the pid could have been reused between resolving and opening: check it still is the container's
    verifyMembership(pid, req.containerId, req.podUid);
    const cwd = path.startsWith('/') ? '/' : readlinkSync(`${PROC}/${pid}/cwd`);
    return { rootFd, path: posix.resolve(cwd, path), creds: readTargetCredentials(pid) };
  } catch (err) {
    closeSync(rootFd);
    throw err;
  }
}

/** A dead container's last filesystem, read-only; relative paths start at its process's cwd. */
async function openDeadContainer(req: CopyRequest & { postmortem: true }, path: string, native: NativeLibrary): Promise<ContainerRoot> {
  const dead = await deadContainer(req.containerId, req.podUid, req.container);
  const layer = dead.layers.split(':')[0]!;
  const { hostPid } = podSandbox(req.podUid, layer);
  const hostPidfd = native.pidfdOpen(hostPid);
  try {
    // the pidfd names the process found above only if it still sees the layers (no PID reuse)
    if (!seesPath(hostPid, layer))
      throw new NsdebugError(
        `the node's runtime changed while nsdebug looked for container ${shortId(req.containerId)}; try again`,
        ExitCode.NOT_FOUND,
      );
    const rootFd = native.snapshotRoot(hostPidfd, dead.layers);
    return { rootFd, path: posix.resolve(dead.cwd, path), creds: dead.confinement };
  } finally {
    closeSync(hostPidfd);
  }
}

/** The root the request copies from or to. */
export async function openContainer(req: CopyRequest, native: NativeLibrary): Promise<ContainerRoot> {
  const path = 'from' in req ? req.from : req.to;
  return req.postmortem ? openDeadContainer(req, path, native) : openLiveContainer(req, path);
}

const isDirectory = () => Object.assign(new Error('is a directory'), { code: 'EISDIR' });

/** Stream one regular file out: a header line, then its bytes. */
async function copyOut(c: ContainerRoot, native: NativeLibrary, stdout: Writable): Promise<CopyHeader> {
  let fd = -1;
  try {
    if (isContainerDirectory(native, c, c.path)) throw copyFailure(isDirectory(), c.path);
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

type FileUpload = Extract<SessionCopy, { size: number }>;

/** Read exactly `size` bytes from stdin into the container's file; the old file stays whole until the rename. */
async function copyIn(c: ContainerRoot, upload: FileUpload, native: NativeLibrary, stdin: Readable): Promise<CopyResult> {
  let target = c.path;
  let dirFd = -1;
  let tmp: string | undefined;
  let consumed = false;
  try {
    // an existing directory receives the file under its source name, as cp(1) does
    if (isContainerDirectory(native, c, target)) target = posix.join(target, upload.name);
    const base = posix.basename(target);
    if (target === '/') throw isDirectory();
    dirFd = native.openInRootAs(c.rootFd, posix.dirname(target), O_PATH | O_DIRECTORY, 0, c.creds);
    tmp = temporaryName(base);
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
  }
}

/** Whether path is a directory the container's user can reach. */
export function isContainerDirectory(native: NativeLibrary, c: ContainerRoot, path: string): boolean {
  try {
    closeSync(native.openInRootAs(c.rootFd, path, O_PATH | O_DIRECTORY, 0, c.creds));
    return true;
  } catch {
    return false;
  }
}

/** What a cp did, for its result line and the audit line. */
export type CopyDone = CopyHeader | CopyResult | TreeResult;

/**
 * One decoded `cp` over a stdin and stdout: copied out, the header line and the bytes (a tree: a
 * tar stream); copied in, the result line. warn: a line for the user (an entry skipped).
 */
export async function copyThrough(
  req: CopyRequest,
  native: NativeLibrary,
  stdin: Readable,
  stdout: Writable,
  warn: (line: string) => void,
): Promise<CopyDone> {
  let c: ContainerRoot;
  try {
    c = await openContainer(req, native);
  } catch (err) {
    // an upload's bytes are read all the same: the exec ends once its stdin is consumed
    if ('tree' in req) await unpackTree(undefined, native, stdin, warn).catch(() => undefined);
    else if ('size' in req) await receive(stdin, -1, req.size);
    throw err;
  }
  let done: CopyDone;
  try {
    if ('from' in req) done = req.recursive ? await packTree(c, native, stdout, warn) : await copyOut(c, native, stdout);
    else {
      const target =
        'tree' in req && req.name !== undefined && isContainerDirectory(native, c, c.path) ? posix.join(c.path, req.name) : c.path;
      done = 'tree' in req ? await unpackTree({ ...c, path: target }, native, stdin, warn) : await copyIn(c, req, native, stdin);
      stdout.write(`${JSON.stringify(done)}\n`);
    }
  } finally {
    closeSync(c.rootFd);
  }
  await new Promise<void>((resolve) => stdout.write('', () => resolve()));
  return done;
}

/** The audit line's command for a cp. */
export const copyCommand = (req: CopyRequest) =>
  'from' in req ? ['cp', 'out', ...(req.recursive ? ['-r'] : []), req.from] : ['cp', 'in', ...('tree' in req ? ['-r'] : []), req.to];

/** `nsdebug-agent cp`, with one audit record like a session's: which file, which way, how many bytes. */
export async function runCopy(req: CopyRequest): Promise<number> {
  const native = loadNativeLibrary();
  const audit = await openAuditChannel();
  const record = { ...sessionRecord(req), command: copyCommand(req) };
  audit.send({ event: 'start', ...record, start: new Date().toISOString() });
  try {
    const warn = (line: string) => process.stderr.write(`nsdebug-agent: ${line}\n`);
    const done = await copyThrough(req, native, process.stdin, process.stdout, warn);
    audit.send({ event: 'end', ...record, ...auditedCopy(done), end: new Date().toISOString(), exitCode: 0 });
    return ExitCode.OK;
  } catch (err) {
    audit.send({ event: 'end', ...record, end: new Date().toISOString(), exitCode: null, error: (err as Error).message });
    throw err;
  } finally {
    await audit.close();
  }
}

/** What the audit line keeps of a finished copy. */
export const auditedCopy = (done: CopyDone) => ({
  path: done.path,
  bytes: done.size,
  ...('files' in done ? { files: done.files, skipped: done.skipped } : {}),
});
