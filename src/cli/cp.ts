// `kubectl nsdebug cp TARGET:PATH LOCAL` and `cp LOCAL TARGET:PATH`: a file, or with -r a tree, out
// of or into a container through its node's agent (`nsdebug-agent cp`), byte for byte, with modes
// and mtimes. Nothing runs inside the container, so it works where `kubectl cp` (tar) cannot; out
// of a container that is not running, the copy reads its last filesystem. Local files are written
// under a temporary name (a tree in a scratch directory) and moved into place once complete.
import { createReadStream, createWriteStream, chmodSync, mkdirSync, renameSync, rmSync, statSync, utimesSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';

import { ExitCode, type CopyHeader, type CopyRequest, type CopyResult, type SessionCopy } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import type { ResolvedTarget } from '../kube/target.js';
import { parseTarget } from '../pod.js';
import { queryAgent } from './agent-query.js';
import { processIo, type CliIo } from './io.js';
import { completeTarget, validateTarget, type KubeFlags, type TargetFlags, type TargetOptions } from './options.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { TarError } from '../tar.js';
import { oneLine } from '../text.js';
import { moveIntoPlace, packLocalTree, repackTar, TarUnpacker, type TreeCount } from './cp-tree.js';
import { escapeText } from './escape.js';
import { createProgress, type Progress } from './progress.js';

export interface CpFlags extends KubeFlags, Omit<TargetFlags, 'target' | 'selector'> {
  source?: string;
  destination?: string;
  recursive?: boolean;
}

export type CpOptions = TargetOptions & { recursive: boolean } & (
    { download: { remote: string; local: string } } | { upload: { local: string; remote: string } }
  );

/** "pod/web-0:/etc/x", "web-0:x", "deploy/web:/x" → target and path; undefined for a local path. */
export function remotePath(arg: string): { target: string; path: string } | undefined {
  // like kubectl cp: a path that starts with / or . is local whatever it holds
  if (arg.startsWith('/') || arg.startsWith('.')) return undefined;
  const colon = arg.indexOf(':');
  if (colon <= 0) return undefined;
  const target = arg.slice(0, colon);
  try {
    parseTarget(target);
  } catch {
    return undefined;
  }
  return { target, path: arg.slice(colon + 1) };
}

export function completeCp(flags: CpFlags, io: Pick<CliIo, 'facts'>): CpOptions {
  const { source, destination } = flags;
  if (source === undefined || destination === undefined) {
    throw usageError('name a source and a destination: kubectl nsdebug cp pod/NAME:/path ./local, or cp ./local pod/NAME:/path');
  }
  const from = remotePath(source);
  const to = remotePath(destination);
  if (from && to) throw usageError('both paths are in containers; one of them must be local');
  if (!from && !to) throw usageError(`neither ${source} nor ${destination} names a container path (TARGET:PATH, e.g. pod/web-0:/tmp/x)`);
  const remote = (from ?? to)!;
  const base = { ...completeTarget({ ...flags, target: remote.target }, io.facts), recursive: flags.recursive === true };
  return from ? { ...base, download: { remote: from.path, local: destination } } : { ...base, upload: { local: source, remote: to!.path } };
}

export function validateCp(opts: CpOptions): void {
  validateTarget(opts);
  const remote = 'download' in opts ? opts.download.remote : opts.upload.remote;
  if (remote === '' || remote.includes('\0') || remote.length > 4095) {
    throw usageError(`"${remote.slice(0, 80)}" is not a path in the container: give one, e.g. pod/web-0:/tmp/x`);
  }
}

export async function runCp(flags: CpFlags, io: CliIo = processIo(), cluster: ClusterDeps = realCluster): Promise<number> {
  const opts = completeCp(flags, io);
  validateCp(opts);
  return 'download' in opts ? download(opts, opts.download, io, cluster) : upload(opts, opts.upload, io, cluster);
}

const localStat = (path: string): Stats | undefined => {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
};

/** The agent's stdout: one header line, then the file's bytes, which go to the sink `open` returns. */
export class HeaderThenBytes extends Writable {
  header?: CopyHeader;
  received = 0;
  private pending = Buffer.alloc(0);
  private sink?: { stream: Writable; owned: boolean };

  /** owned: the sink is ended with this stream (a file), not left open (stdout) */
  constructor(private readonly open: (header: CopyHeader) => { stream: Writable; owned: boolean }) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.sink) {
      this.pending = Buffer.concat([this.pending, chunk]);
      const newline = this.pending.indexOf(0x0a);
      if (newline < 0) return callback(this.pending.length > 65536 ? new Error('the agent sent no header line') : null);
      try {
        this.header = JSON.parse(this.pending.subarray(0, newline).toString('utf8')) as CopyHeader;
      } catch {
        return callback(new Error('the agent sent a malformed header line'));
      }
      this.sink = this.open(this.header);
      chunk = this.pending.subarray(newline + 1);
      this.pending = Buffer.alloc(0);
    }
    this.received += chunk.length;
    if (chunk.length === 0 || this.sink.stream.write(chunk)) callback();
    else this.sink.stream.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.sink?.owned) this.sink.stream.end(callback);
    else callback();
  }
}

async function download(opts: CpOptions, d: { remote: string; local: string }, io: CliIo, cluster: ClusterDeps): Promise<number> {
  const toStdout = d.local === '-';
  const existing = toStdout ? undefined : localStat(d.local);
  const local = existing?.isDirectory() ? join(d.local, basename(d.remote) || basename(resolve(d.local))) : d.local;
  if (!toStdout && !existing && d.local.endsWith('/')) {
    throw new NsdebugError(`local directory ${d.local} does not exist`, ExitCode.NOT_FOUND);
  }
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  const scratch = toStdout ? undefined : `${join(dirname(local), `.${basename(local)}.nsdebug-${randomBytes(4).toString('hex')}`)}`;
  const count: TreeCount = { files: 0, bytes: 0, skipped: 0 };
  const meter = copyMeter(progress, count);
  let file: Writable | undefined;
  try {
    // a container that is not running: its last filesystem, as a post-mortem session opens it
    const { conn, target, agent } = await prepare(opts, cluster, progress, true);
    const { exited } = target.container;
    if (exited) progress.note(`container ${target.container.name} is not running (${exited.summary}); copying from its last filesystem`);
    progress.step(`copying ${d.remote} through the agent on node ${agent.node}`);
    const doing = `copy ${d.remote} out of container ${target.container.name} of pod ${target.namespace}/${target.pod}`;
    const request = copyRequest(target, { from: d.remote, ...(opts.recursive ? { recursive: true } : {}) });
    const at = { conn, agent, target, sessionAuth: opts.sessionAuth };
    const said = (text: string) => (progress.clear(), io.stderr.write(escapeText(text)));
    if (opts.recursive) {
      if (scratch) mkdirSync(scratch, { mode: 0o700 });
      const sink = scratch ? new TarUnpacker(scratch, count, (line) => said(`${line}\n`)) : countedPassThrough(io.stdout, count);
      // an archive refused midway fails the sink: the agent's stream is read on to its end, unwritten
      let refused: Error | undefined;
      sink.on('error', (err) => (refused ??= err));
      meter.start();
      await queryAgent(cluster, at, request, doing, { stdout: sink, said });
      if (refused) throw refused;
      await new Promise<void>((done, fail) => sink.end((err?: Error | null) => (err ? fail(err) : done())));
      if (sink instanceof TarUnpacker) moveIntoPlace(sink.result().path, local);
      return ExitCode.OK;
    }
    const bytes = new HeaderThenBytes(() => {
      progress.clear();
      if (toStdout) return { stream: io.stdout, owned: false };
      file = createWriteStream(scratch!, { flags: 'wx', mode: 0o600 });
      return { stream: file, owned: true };
    });
    await queryAgent(cluster, at, request, doing, { stdout: bytes, said });
    await new Promise<void>((resolve, reject) => bytes.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const header = bytes.header;
    if (!header || bytes.received !== header.size) {
      throw new NsdebugError(
        `the copy of ${d.remote} ended after ${bytes.received} of ${header?.size ?? '?'} bytes${toStdout ? '' : `; ${local} was not written`}`,
        ExitCode.COPY_FAILED,
      );
    }
    if (scratch) {
      chmodSync(scratch, header.mode & 0o777);
      utimesSync(scratch, new Date(), new Date(header.mtimeMs));
      renameSync(scratch, local);
    }
    return ExitCode.OK;
  } catch (err) {
    throw localFailure(err, local);
  } finally {
    meter.stop();
    progress.clear();
    file?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

async function upload(opts: CpOptions, u: { local: string; remote: string }, io: CliIo, cluster: ClusterDeps): Promise<number> {
  // "-": a tar stream on stdin, unpacked into the remote directory
  const fromStdin = u.local === '-';
  const stat = fromStdin ? undefined : localStat(u.local);
  if (!fromStdin && !stat) throw new NsdebugError(`${u.local}: no such local file`, ExitCode.NOT_FOUND);
  const tree = fromStdin || stat!.isDirectory();
  if (tree && !fromStdin && !opts.recursive)
    throw new NsdebugError(`${u.local} is a directory; add -r to copy it and what it holds`, ExitCode.COPY_FAILED);
  if (!tree && !stat!.isFile()) throw new NsdebugError(`${u.local} is not a regular file`, ExitCode.COPY_FAILED);
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  const count: TreeCount = { files: 0, bytes: 0, skipped: 0 };
  const meter = copyMeter(progress, count);
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress);
    progress.step(`copying ${u.local} through the agent on node ${agent.node}`);
    const doing = `copy ${fromStdin ? 'stdin' : u.local} into container ${target.container.name} of pod ${target.namespace}/${target.pod}`;
    const at = { conn, agent, target, sessionAuth: opts.sessionAuth };
    const said = (text: string) => (progress.clear(), io.stderr.write(escapeText(text)));
    if (tree) {
      const warn = (line: string) => said(`${line}\n`);
      const stdin = fromStdin ? repackTar(io.stdin, count, warn) : packLocalTree(u.local, count, warn);
      const copy = { to: u.remote, tree: true as const, ...(fromStdin ? {} : { name: basename(resolve(u.local)) }) };
      meter.start();
      const out = await queryAgent(cluster, at, copyRequest(target, copy), doing, { stdin, said });
      const result = JSON.parse(out.trim() || '{}') as { files?: unknown };
      if (typeof result.files !== 'number')
        throw new NsdebugError(`the agent did not confirm the copy of ${u.local} (${oneLine(out).slice(0, 120)})`, ExitCode.INTERNAL);
      return ExitCode.OK;
    }
    const copy = { to: u.remote, name: basename(u.local), size: stat!.size, mode: stat!.mode & 0o7777, mtimeMs: stat!.mtimeMs };
    const out = await queryAgent(cluster, at, copyRequest(target, copy), doing, { stdin: createReadStream(u.local), said });
    const result = JSON.parse(out.trim() || '{}') as Partial<CopyResult>;
    if (result.size !== stat!.size)
      throw new NsdebugError(`the agent did not confirm the copy of ${u.local} (${oneLine(out).slice(0, 120)})`, ExitCode.INTERNAL);
    return ExitCode.OK;
  } catch (err) {
    throw localFailure(err, u.local);
  } finally {
    meter.stop();
    progress.clear();
  }
}

/** stdout, counted for the progress line. */
function countedPassThrough(stdout: Writable, count: TreeCount): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      count.bytes += chunk.length;
      if (stdout.write(chunk)) done();
      else stdout.once('drain', () => done());
    },
  });
}

/**
 * The progress line of a tree copy on a terminal: bytes, entries and rate, every half second once
 * the copy has taken one (a small copy shows nothing).
 */
function copyMeter(progress: Progress, count: TreeCount): { start(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  return {
    start() {
      started = Date.now();
      timer = setInterval(() => {
        const seconds = (Date.now() - started) / 1000;
        if (seconds < 1) return;
        progress.step(`copied ${formatBytes(count.bytes)}, ${count.files} entries, ${formatBytes(count.bytes / seconds)}/s`);
      }, 500);
      timer.unref();
    },
    stop: () => clearInterval(timer),
  };
}

const formatBytes = (n: number) =>
  n >= 2 ** 30
    ? `${(n / 2 ** 30).toFixed(1)} GiB`
    : n >= 2 ** 20
      ? `${(n / 2 ** 20).toFixed(1)} MiB`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)} KiB`
        : `${Math.round(n)} B`;

/** The agent's cp request for the target's container; out of one that is not running, post-mortem. */
const copyRequest = (target: ResolvedTarget, copy: SessionCopy): { operation: 'cp' } & CopyRequest => {
  const at = { operation: 'cp' as const, containerId: target.container.containerId, podUid: target.podUid };
  if (target.container.exited && 'from' in copy) return { ...at, ...copy, postmortem: true, container: target.container.name };
  return { ...at, ...copy };
};

/** A local file system error in one line; nsdebug's own errors pass through. */
function localFailure(err: unknown, path: string): unknown {
  if (err instanceof TarError) return new NsdebugError(`${path === '-' ? 'stdin' : path}: ${err.message}`, ExitCode.COPY_FAILED);
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof NsdebugError || typeof code !== 'string') return err;
  return new NsdebugError(`${path}: ${(err as Error).message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')}`, ExitCode.COPY_FAILED);
}
