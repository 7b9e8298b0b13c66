// The local half of `kubectl nsdebug cp -r`: a local tree packed as the tar stream the agent
// unpacks, and the agent's tar stream unpacked into a local directory. What comes from the agent
// is the container's to choose (names, link targets), so an archive is unpacked into a fresh
// directory of its own, where nothing is written through a symlink it made, and only then moved
// into place; an interrupted copy leaves nothing at the destination.
import {
  closeSync,
  fchmodSync,
  futimesSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeSync,
  chmodSync,
  createReadStream,
  constants,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { NOT_COPIED, specialKind, TAR_END, TarError, TarParser, tarHeader, tarPadding, type TarEntry } from '../tar.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** How far a tree copy has got: entries and file bytes so far. */
export interface TreeCount {
  files: number;
  bytes: number;
  skipped: number;
}

/**
 * The local tree at path as a tar stream (a file alone if path is one): regular files,
 * directories and symlinks (kept as links), each below the top as it is, never followed; other
 * files are skipped with a line to warn. count follows along.
 */
export function packLocalTree(path: string, count: TreeCount, warn: (line: string) => void): Readable {
  async function* entries(): AsyncGenerator<Buffer> {
    const top = statSync(path);
    if (top.isDirectory()) yield* directory(path, '.', top);
    else if (top.isFile()) yield* file(path, path.split('/').filter(Boolean).pop() ?? 'file', top);
    else throw new NsdebugError(`${path}: ${specialKind(top)}, not a directory or a regular file`, ExitCode.COPY_FAILED);
    yield TAR_END;
  }
  async function* directory(abs: string, rel: string, stat: Stats): AsyncGenerator<Buffer> {
    yield tarHeader({ type: 'directory', path: rel, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs });
    count.files++;
    for (const name of readdirSync(abs).sort()) {
      const where = join(abs, name);
      const entryPath = rel === '.' ? name : `${rel}/${name}`;
      const entry = lstatSync(where);
      if (entry.isSymbolicLink()) {
        yield tarHeader({ type: 'symlink', path: entryPath, target: readlinkSync(where), mode: 0o777, mtimeMs: entry.mtimeMs });
        count.files++;
      } else if (entry.isDirectory()) yield* directory(where, entryPath, entry);
      else if (entry.isFile()) yield* file(where, entryPath, entry);
      else {
        count.skipped++;
        warn(`skipped ${where}: ${specialKind(entry)} ${NOT_COPIED}`);
      }
    }
  }
  async function* file(abs: string, rel: string, stat: Stats): AsyncGenerator<Buffer> {
    yield tarHeader({ type: 'file', path: rel, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs, size: stat.size });
    // the header promised stat.size bytes: a file that changes size meanwhile fails the copy
    let sent = 0;
    if (stat.size > 0)
      for await (const chunk of createReadStream(abs, { start: 0, end: stat.size - 1 }) as AsyncIterable<Buffer>) {
        sent += chunk.length;
        count.bytes += chunk.length;
        yield chunk;
      }
    if (sent !== stat.size)
      throw new NsdebugError(`${abs}: changed size while it was copied; nothing of it was written`, ExitCode.COPY_FAILED);
    yield tarPadding(stat.size);
    count.files++;
  }
  return Readable.from(entries(), { objectMode: false });
}

/**
 * A tar stream (from stdin) checked and written again: a malformed or unsafe archive fails here,
 * before anything reaches the container, and what nsdebug does not copy is skipped with a warning.
 */
export function repackTar(input: Readable, count: TreeCount, warn: (line: string) => void): Readable {
  async function* entries(): AsyncGenerator<Buffer> {
    const parser = new TarParser();
    let current: Extract<TarEntry, { type: 'file' }> | undefined;
    let left = 0;
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        for (const event of parser.push(chunk)) yield* emit(event);
        if (parser.ended) break;
      }
      if (!parser.ended) for (const event of parser.finish()) yield* emit(event);
    } catch (err) {
      if (err instanceof TarError) throw new NsdebugError(`stdin: ${err.message}; the copy was stopped`, ExitCode.COPY_FAILED);
      throw err;
    }
    yield TAR_END;

    function* emit(event: ReturnType<TarParser['push']>[number]): Generator<Buffer> {
      if (event.kind === 'entry') {
        const { entry } = event;
        if (entry.type === 'other') {
          count.skipped++;
          warn(`skipped ${entry.path}: ${entry.kind} ${NOT_COPIED}`);
          return;
        }
        yield tarHeader(entry);
        count.files++;
        if (entry.type === 'file') {
          current = entry;
          left = entry.size;
          if (left === 0) current = undefined;
        }
      } else if (event.kind === 'data' && current) {
        left -= event.chunk.length;
        count.bytes += event.chunk.length;
        yield event.chunk;
        if (left === 0) {
          yield tarPadding(current.size);
          current = undefined;
        }
      }
    }
  }
  return Readable.from(entries(), { objectMode: false });
}

/** What an unpacked archive was: a tree (its top directory), or one file (the archive's only entry). */
export interface Unpacked {
  /** the path in the scratch directory to move into place */
  path: string;
  isTree: boolean;
}

/**
 * A Writable that unpacks the agent's tar stream into scratch (a new, empty directory): files,
 * directories and symlinks with their modes (permission bits only) and mtimes; anything else
 * skipped with a warning. An entry below anything but a directory it made itself is refused: a
 * symlink in the archive is never written through.
 */
export class TarUnpacker extends Writable {
  private readonly parser = new TarParser();
  private readonly made = new Map<string, 'directory' | 'file' | 'symlink'>([['.', 'directory']]);
  private readonly dirTimes: Array<{ path: string; mode: number; mtimeMs: number }> = [];
  private file?: { fd: number; entry: Extract<TarEntry, { type: 'file' }>; written: number };
  private first?: TarEntry;

  constructor(
    private readonly scratch: string,
    private readonly count: TreeCount,
    private readonly warn: (line: string) => void,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      for (const event of this.parser.push(chunk)) {
        if (event.kind === 'entry') this.entry(event.entry);
        else if (event.kind === 'data') this.data(event.chunk);
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      if (!this.parser.ended) this.parser.finish();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
    callback(error);
  }

  /** Once the stream has finished: what to move into place, with the directories' modes and mtimes set. */
  result(): Unpacked {
    if (!this.parser.ended) throw new NsdebugError('the copy ended before the archive did', ExitCode.COPY_FAILED);
    // deepest first: setting a directory's mode could shut out what is below it
    for (const { path, mode, mtimeMs } of this.dirTimes.reverse()) {
      chmodSync(path, mode);
      utimesSync(path, new Date(), new Date(mtimeMs));
    }
    const first = this.first;
    if (first && first.type !== 'directory' && first.type !== 'other' && this.made.size === 2)
      return { path: join(this.scratch, first.path), isTree: false };
    return { path: this.scratch, isTree: true };
  }

  private entry(entry: TarEntry): void {
    this.first ??= entry;
    const parent = entry.path.includes('/') ? entry.path.slice(0, entry.path.lastIndexOf('/')) : '.';
    if (entry.type === 'other') {
      this.count.skipped++;
      return this.warn(`skipped ${entry.path}: ${entry.kind} ${NOT_COPIED}`);
    }
    this.makeParents(parent, entry.path);
    const at = join(this.scratch, entry.path);
    const before = this.made.get(entry.path);
    if (entry.type === 'directory') {
      if (before && before !== 'directory') throw unsafe(entry.path, 'names a directory where the archive made a file');
      if (!before) mkdirSync(at, { mode: 0o700 });
      this.made.set(entry.path, 'directory');
      this.dirTimes.push({ path: at, mode: entry.mode & 0o777, mtimeMs: entry.mtimeMs });
      this.count.files++;
      return;
    }
    if (before === 'directory') throw unsafe(entry.path, 'names a file where the archive made a directory');
    // a second entry of the same name replaces the first, as tar does (it is ours: a link is not followed)
    if (before) rmSync(at, { force: true });
    this.made.set(entry.path, entry.type);
    if (entry.type === 'symlink') {
      symlinkSync(entry.target, at);
      lutimesSync(at, new Date(), new Date(entry.mtimeMs));
      this.count.files++;
      return;
    }
    const fd = openSync(at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    this.file = { fd, entry, written: 0 };
    if (entry.size === 0) this.finishFile();
  }

  private data(chunk: Buffer): void {
    const file = this.file;
    if (!file) return;
    for (let off = 0; off < chunk.length;) off += writeSync(file.fd, chunk, off);
    file.written += chunk.length;
    this.count.bytes += chunk.length;
    if (file.written === file.entry.size) this.finishFile();
  }

  private finishFile(): void {
    const { fd, entry } = this.file!;
    this.file = undefined;
    try {
      fchmodSync(fd, entry.mode & 0o777);
      futimesSync(fd, new Date(), new Date(entry.mtimeMs));
    } finally {
      closeSync(fd);
    }
    this.count.files++;
  }

  /** Directories the archive did not list before their entries, made; a parent it made as anything else refused. */
  private makeParents(parent: string, path: string): void {
    const kind = this.made.get(parent);
    if (kind === 'directory') return;
    if (kind) throw unsafe(path, `is below ${parent}, which the archive made a ${kind}`);
    this.makeParents(parent.includes('/') ? parent.slice(0, parent.lastIndexOf('/')) : '.', path);
    mkdirSync(join(this.scratch, parent), { mode: 0o755 });
    this.made.set(parent, 'directory');
  }
}

const unsafe = (path: string, why: string) =>
  new NsdebugError(`the archive's entry ${JSON.stringify(path.slice(0, 200))} ${why}; nothing was copied`, ExitCode.COPY_FAILED);

/**
 * Move what was unpacked into place: a path not there yet is renamed as a whole; an existing
 * directory receives the tree's entries (merged, as cp -r does), each file renamed over its
 * namesake; a directory is never replaced by a file, nor a file by a directory.
 */
export function moveIntoPlace(from: string, to: string): void {
  let there: Stats | undefined;
  try {
    there = lstatSync(to);
  } catch {
    return renameSync(from, to);
  }
  const coming = lstatSync(from);
  if (there.isDirectory() && coming.isDirectory()) {
    for (const name of readdirSync(from)) moveIntoPlace(join(from, name), join(to, name));
    rmdirSync(from);
    return;
  }
  if (there.isDirectory()) throw new NsdebugError(`${to} is a directory; a file cannot replace it`, ExitCode.COPY_FAILED);
  if (coming.isDirectory()) throw new NsdebugError(`${to} exists and is not a directory`, ExitCode.COPY_FAILED);
  renameSync(from, to);
}
