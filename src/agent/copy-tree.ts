// `nsdebug-agent cp -r`: a tree out of a container as a tar stream, or a tar stream unpacked into
// one. Regular files, directories and symbolic links are copied with their modes and mtimes; a
// symlink is kept as a link, its target as text, never followed; anything else (FIFOs, sockets,
// devices, hard-link entries) is skipped with a line saying so, as are the kernel's own file
// systems (a container's /proc and /sys), whose files lie about their sizes or block.
// Every name comes from the container (out) or the client (in), so each step opens one name
// relative to a directory already open (openat2 below it, O_NOFOLLOW) with the container's
// credentials, and an unpacked file is written under a temporary name and renamed into place
// once complete: an interrupted copy leaves no partial file behind.
import {
  closeSync,
  constants,
  createReadStream,
  fchmodSync,
  fstatSync,
  futimesSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { O_PATH, type NativeLibrary } from '../native/libnsdebug.js';
import { NOT_COPIED, specialKind, TAR_END, TarParser, tarHeader, tarPadding, type TarEntry } from '../tar.js';
import { copyFailure, kernelFileSystem, temporaryName, type ContainerRoot } from './container-file.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NOCTTY, O_NONBLOCK } = constants;

/** What a tree copy did: where, how many bytes of file data and how many entries, how many skipped. */
export interface TreeResult {
  path: string;
  size: number;
  files: number;
  skipped: number;
}

/** An entry by name in an open directory, as the kernel names it: no path walk, no symlink followed. */
const inDir = (dirFd: number, name: string) => `/proc/self/fd/${dirFd}/${name}`;

/** Write to out, waiting while it is full. */
async function send(out: Writable, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/** The tree at c.path (a file alone if it is one) as a tar stream on out, its entries relative to it. */
export async function packTree(c: ContainerRoot, native: NativeLibrary, out: Writable, warn: (line: string) => void): Promise<TreeResult> {
  const result: TreeResult = { path: c.path, size: 0, files: 0, skipped: 0 };
  const skip = (path: string, why: string) => {
    result.skipped++;
    warn(`skipped ${path}: ${why}`);
  };
  // the path named is followed (inside the container); what is below it is not
  let top: number;
  try {
    top = native.openInRootAs(c.rootFd, c.path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, c.creds);
  } catch (err) {
    throw copyFailure(err, c.path);
  }
  try {
    const stat = fstatSync(top);
    if (stat.isDirectory()) await packDirectory(top, '.', c.path, stat);
    else if (stat.isFile()) await packFile(top, posix.basename(c.path), c.path, stat);
    else throw new NsdebugError(`${c.path}: ${specialKind(stat)}, not a directory or a regular file`, ExitCode.COPY_FAILED);
  } finally {
    closeSync(top);
  }
  await send(out, TAR_END);
  return result;

  async function packDirectory(dirFd: number, rel: string, abs: string, stat: Stats): Promise<void> {
    const fs = kernelFileSystem(dirFd);
    if (fs) return skip(abs, `a file system of the kernel (${fs})`);
    await send(out, tarHeader({ type: 'directory', path: rel, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs }));
    result.files++;
    // listed through the fd opened with the container's credentials: what it may read
    for (const name of readdirSync(`/proc/self/fd/${dirFd}`).sort()) {
      const path = rel === '.' ? name : `${rel}/${name}`;
      const where = posix.join(abs, name);
      let entry: Stats;
      try {
        entry = lstatSync(inDir(dirFd, name));
      } catch {
        continue; // gone since the listing
      }
      if (entry.isSymbolicLink()) {
        await send(
          out,
          tarHeader({ type: 'symlink', path, target: readlinkSync(inDir(dirFd, name)), mode: 0o777, mtimeMs: entry.mtimeMs }),
        );
        result.files++;
        continue;
      }
      if (!entry.isDirectory() && !entry.isFile()) {
        skip(where, `${specialKind(entry)} ${NOT_COPIED}`);
        continue;
      }
      let fd: number;
      try {
        const flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | (entry.isDirectory() ? O_DIRECTORY : 0);
        fd = native.openInRootAs(dirFd, name, flags, 0, c.creds);
      } catch (err) {
        skip(where, copyFailure(err, where).message.replace(`${where}: `, ''));
        continue;
      }
      try {
        const opened = fstatSync(fd);
        if (opened.ino !== entry.ino || opened.dev !== entry.dev) skip(where, 'it changed while nsdebug read it');
        else if (opened.isDirectory()) await packDirectory(fd, path, where, opened);
        else await packFile(fd, path, where, opened);
      } finally {
        closeSync(fd);
      }
    }
  }

  async function packFile(fd: number, path: string, abs: string, stat: Stats): Promise<void> {
    const fs = kernelFileSystem(fd);
    if (fs) return skip(abs, `a file of the kernel (${fs})`);
    const size = stat.size;
    await send(out, tarHeader({ type: 'file', path, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs, size }));
    // the header promised size bytes: a file that shrinks while read is padded, one that grows cut
    let sent = 0;
    if (size > 0) {
      for await (const chunk of createReadStream('', { fd, autoClose: false, start: 0, end: size - 1 }) as AsyncIterable<Buffer>) {
        await send(out, chunk);
        sent += chunk.length;
      }
    }
    if (sent < size) {
      warn(`${abs}: shrank while nsdebug read it; its copy is padded with zeros to ${size} bytes`);
      for (let left = size - sent; left > 0; left -= 65536) await send(out, Buffer.alloc(Math.min(left, 65536)));
    }
    await send(out, tarPadding(size));
    result.files++;
    result.size += size;
  }
}

/** A directory of the tree being unpacked: its fd (O_PATH), and, if made here, the mode and mtime to give it last. */
interface UnpackedDirectory {
  fd: number;
  made: boolean;
  mode?: number;
  mtimeMs?: number;
}

/**
 * A tar stream from stdin unpacked at c.path (created if missing; its parent must exist),
 * merged into what is there. c undefined: the stream is only read to its end (the copy has
 * failed already; the exec ends once its stdin is consumed).
 */
export async function unpackTree(
  c: ContainerRoot | undefined,
  native: NativeLibrary,
  stdin: Readable,
  warn: (line: string) => void,
): Promise<TreeResult> {
  const result: TreeResult = { path: c?.path ?? '', size: 0, files: 0, skipped: 0 };
  const parser = new TarParser();
  const dirs = new Map<string, UnpackedDirectory>();
  let file:
    { fd: number; dirFd: number; tmp: string; name: string; entry: Extract<TarEntry, { type: 'file' }>; written: number } | undefined;
  let failure: unknown;

  /** The open directory at rel ('.' the top), made (by the container's user) when missing. */
  const directory = (rel: string): UnpackedDirectory => {
    const known = dirs.get(rel);
    if (known) return known;
    const root = c!;
    const top = rel === '.';
    let made = false;
    if (!(top && root.path === '/')) {
      const parentFd = top
        ? native.openInRootAs(root.rootFd, posix.dirname(root.path), O_PATH | O_DIRECTORY, 0, root.creds)
        : directory(posix.dirname(rel)).fd;
      try {
        // owner-only until the end: the tree's own modes (a 0555 directory) apply once it is full
        native.mkdirAs(parentFd, posix.basename(top ? root.path : rel), 0o700, root.creds);
        made = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        if (top) closeSync(parentFd);
      }
    }
    // the top as named (its symlinks resolved inside the container); below it, never through one
    const fd = top
      ? native.openInRootAs(root.rootFd, root.path, O_PATH | O_DIRECTORY, 0, root.creds)
      : native.openInRootAs(dirs.get(posix.dirname(rel))!.fd, posix.basename(rel), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, root.creds);
    // a directory that was there keeps its mode and mtime; one made here gets the archive's
    const dir: UnpackedDirectory = { fd, made, ...(made ? { mode: 0o755 } : {}) };
    dirs.set(rel, dir);
    return dir;
  };

  const finishFile = () => {
    if (!file) return;
    const f = file;
    file = undefined;
    try {
      fchmodSync(f.fd, f.entry.mode & 0o777);
      futimesSync(f.fd, Date.now() / 1000, f.entry.mtimeMs / 1000);
      closeSync(f.fd);
      native.renameAs(f.dirFd, f.tmp, f.name, c!.creds);
      result.files++;
      result.size += f.entry.size;
    } catch (err) {
      rmSync(inDir(f.dirFd, f.tmp), { force: true });
      throw err;
    }
  };

  const onEntry = (entry: TarEntry) => {
    if (entry.type === 'other') {
      result.skipped++;
      return warn(`skipped ${entry.path}: ${entry.kind} ${NOT_COPIED}`);
    }
    if (entry.type === 'directory') {
      const dir = directory(entry.path);
      if (dir.made) Object.assign(dir, { mode: entry.mode & 0o777, mtimeMs: entry.mtimeMs });
      result.files++;
      return;
    }
    if (entry.path === '.') throw new NsdebugError('the archive names its top directory as a file', ExitCode.COPY_FAILED);
    const dirFd = directory(posix.dirname(entry.path)).fd;
    const name = posix.basename(entry.path);
    const tmp = temporaryName(name);
    if (entry.type === 'symlink') {
      native.symlinkAs(dirFd, tmp, entry.target, c!.creds);
      try {
        native.renameAs(dirFd, tmp, name, c!.creds);
      } catch (err) {
        rmSync(inDir(dirFd, tmp), { force: true });
        throw err;
      }
      result.files++;
      return;
    }
    // created by the container's user (so it owns it), where it may write
    const fd = native.openInRootAs(dirFd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, 0o600, c!.creds);
    file = { fd, dirFd, tmp, name, entry, written: 0 };
    if (entry.size === 0) finishFile();
  };

  const onData = (chunk: Buffer) => {
    if (!file) return;
    for (let off = 0; off < chunk.length;) off += writeSync(file.fd, chunk, off);
    file.written += chunk.length;
    if (file.written === file.entry.size) finishFile();
  };

  try {
    for await (const chunk of stdin as AsyncIterable<Buffer>) {
      for (const event of parser.push(chunk)) {
        if (failure !== undefined || !c) continue;
        try {
          if (event.kind === 'entry') onEntry(event.entry);
          else if (event.kind === 'data') onData(event.chunk);
        } catch (err) {
          failure = err;
        }
      }
      // the end marker ends the upload: the stream cannot be half-closed (see copy.ts, receive)
      if (parser.ended) break;
    }
    if (!parser.ended) parser.finish();
    if (failure !== undefined) throw failure;
    return result;
  } catch (err) {
    const where = file ? posix.join(result.path, posix.dirname(file.entry.path), file.name) : result.path;
    throw copyFailure(err, where);
  } finally {
    if (file) {
      closeSync(file.fd);
      rmSync(inDir(file.dirFd, file.tmp), { force: true });
    }
    // the directories' own modes and mtimes last (also when the copy failed: none stays owner-only),
    // deepest first: filling one changes its mtime
    for (const [rel, dir] of [...dirs].sort(([a], [b]) => b.split('/').length - a.split('/').length)) {
      try {
        if (dir.mode !== undefined) {
          const fd = openSync(`/proc/self/fd/${dir.fd}`, O_RDONLY | O_DIRECTORY);
          try {
            fchmodSync(fd, dir.mode);
            if (dir.mtimeMs !== undefined) futimesSync(fd, Date.now() / 1000, dir.mtimeMs / 1000);
          } finally {
            closeSync(fd);
          }
        }
      } catch (err) {
        warn(`${posix.join(result.path, rel)}: ${(err as Error).message}`);
      } finally {
        closeSync(dir.fd);
      }
    }
  }
}
