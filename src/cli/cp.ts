// `kubectl nsdebug cp TARGET:PATH LOCAL` and `cp LOCAL TARGET:PATH`: one file out of or into a
// container through its node's agent (`nsdebug-agent cp`), byte for byte, with its mode and
// mtime. Nothing runs inside the container, so it works where `kubectl cp` (tar) cannot.
// Local files are written under a temporary name and renamed once complete.
import { createReadStream, createWriteStream, chmodSync, renameSync, rmSync, statSync, utimesSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';

import { ExitCode, type CopyHeader, type CopyRequest, type CopyResult, type SessionCopy } from '../contract.js';
import { NsdebugError, usageError } from '../errors.js';
import type { ResolvedTarget } from '../kube/target.js';
import { parseTarget } from '../pod.js';
import { queryAgent } from './agent-query.js';
import { processIo, type CliIo } from './io.js';
import { completeTarget, validateTarget, type KubeFlags, type TargetFlags, type TargetOptions } from './options.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { createProgress } from './progress.js';

export interface CpFlags extends KubeFlags, Omit<TargetFlags, 'target' | 'selector'> {
  source?: string;
  destination?: string;
}

export type CpOptions = TargetOptions & ({ download: { remote: string; local: string } } | { upload: { local: string; remote: string } });

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
  const base = completeTarget({ ...flags, target: remote.target }, io.facts);
  return from ? { ...base, download: { remote: from.path, local: destination } } : { ...base, upload: { local: source, remote: to!.path } };
}

export function validateCp(opts: CpOptions): void {
  validateTarget(opts);
  const remote = 'download' in opts ? opts.download.remote : opts.upload.remote;
  if (remote === '' || remote.includes('\0') || remote.length > 4095) {
    throw usageError(`"${remote.slice(0, 80)}" is not a path in the container: give one, e.g. pod/web-0:/tmp/x`);
  }
  if ('upload' in opts && opts.upload.local === '-') throw usageError('cp from stdin is not supported: name a local file');
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

async function download(opts: TargetOptions, d: { remote: string; local: string }, io: CliIo, cluster: ClusterDeps): Promise<number> {
  const toStdout = d.local === '-';
  const existing = toStdout ? undefined : localStat(d.local);
  const local = existing?.isDirectory() ? join(d.local, basename(d.remote)) : d.local;
  if (!toStdout && !existing && d.local.endsWith('/')) {
    throw new NsdebugError(`local directory ${d.local} does not exist`, ExitCode.NOT_FOUND);
  }
  const tmp = join(dirname(local), `.${basename(local)}.nsdebug-${randomBytes(4).toString('hex')}`);
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  let file: Writable | undefined;
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress);
    progress.step(`copying ${d.remote} through the agent on node ${agent.node}`);
    const bytes = new HeaderThenBytes(() => {
      progress.clear();
      if (toStdout) return { stream: io.stdout, owned: false };
      file = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      return { stream: file, owned: true };
    });
    const doing = `copy ${d.remote} out of container ${target.container.name} of pod ${target.namespace}/${target.pod}`;
    const request = copyRequest(target, { from: d.remote });
    await queryAgent(cluster, { conn, agent, target, sessionAuth: opts.sessionAuth }, request, doing, { stdout: bytes });
    await new Promise<void>((resolve, reject) => bytes.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const header = bytes.header;
    if (!header || bytes.received !== header.size) {
      throw new NsdebugError(
        `the copy of ${d.remote} ended after ${bytes.received} of ${header?.size ?? '?'} bytes${toStdout ? '' : `; ${local} was not written`}`,
        ExitCode.COPY_FAILED,
      );
    }
    if (!toStdout) {
      chmodSync(tmp, header.mode & 0o777);
      utimesSync(tmp, new Date(), new Date(header.mtimeMs));
      renameSync(tmp, local);
    }
    return ExitCode.OK;
  } catch (err) {
    throw localFailure(err, local);
  } finally {
    progress.clear();
    file?.destroy();
    if (!toStdout) rmSync(tmp, { force: true });
  }
}

async function upload(opts: TargetOptions, u: { local: string; remote: string }, io: CliIo, cluster: ClusterDeps): Promise<number> {
  const stat = localStat(u.local);
  if (!stat) throw new NsdebugError(`${u.local}: no such local file`, ExitCode.NOT_FOUND);
  if (stat.isDirectory()) throw new NsdebugError(`${u.local} is a directory; nsdebug cp copies one file`, ExitCode.COPY_FAILED);
  if (!stat.isFile()) throw new NsdebugError(`${u.local} is not a regular file`, ExitCode.COPY_FAILED);
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress);
    progress.step(`copying ${u.local} through the agent on node ${agent.node}`);
    const copy = { to: u.remote, name: basename(u.local), size: stat.size, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs };
    const doing = `copy ${u.local} into container ${target.container.name} of pod ${target.namespace}/${target.pod}`;
    const at = { conn, agent, target, sessionAuth: opts.sessionAuth };
    const out = await queryAgent(cluster, at, copyRequest(target, copy), doing, { stdin: createReadStream(u.local) });
    const result = JSON.parse(out.trim() || '{}') as Partial<CopyResult>;
    if (result.size !== stat.size)
      throw new NsdebugError(`the agent did not confirm the copy of ${u.local} (${out.trim().slice(0, 120)})`, ExitCode.INTERNAL);
    return ExitCode.OK;
  } catch (err) {
    throw localFailure(err, u.local);
  } finally {
    progress.clear();
  }
}

/** The agent's cp request for the target's container. */
const copyRequest = (target: ResolvedTarget, copy: SessionCopy): { operation: 'cp' } & CopyRequest => ({
  operation: 'cp',
  containerId: target.container.containerId,
  podUid: target.podUid,
  ...copy,
});

/** A local file system error in one line; nsdebug's own errors pass through. */
function localFailure(err: unknown, path: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof NsdebugError || typeof code !== 'string') return err;
  return new NsdebugError(`${path}: ${(err as Error).message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')}`, ExitCode.COPY_FAILED);
}
