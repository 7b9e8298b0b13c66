// Sessions run by the resident `serve` process. The thin entry point (native/nsdebug-agent.c)
// connects to agent.sock, sends its argv with its stdin/stdout/stderr attached, writes "W" when
// its window size changes, and waits for a 4-byte exit code. Its disconnecting ends the session.
// This saves a Node start (~130 ms) per session. With `enter --framed` (what the CLI sends) the
// exec's stdin and stdout carry session frames, relayed as the session port relays them.
import { closeSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { SessionEnded, SessionRequest } from '../contract.js';
import { describeFailure, usageError } from '../errors.js';
import type { NativeLibrary } from '../native/libnsdebug.js';
import { parseAgentArgs } from './args.js';
import { RUN_DIR, sessionRecord } from './audit.js';
import { enter, type SessionIo } from './enter.js';
import { liveSessions, publishedSession, SessionRegistry } from './live-sessions.js';
import { recorderFor, type SessionRecorder } from './recording.js';
import { SessionLink } from './session-link.js';
import { closingFrames, relaySession, type RelayOutcome } from './session-relay.js';

export const SESSION_SOCKET = join(RUN_DIR, 'agent.sock');
const REQUEST_TIMEOUT_MS = 5000;

/** Decode the request: a little-endian u32 length, then argv as NUL-terminated strings. */
export function decodeRequest(data: Buffer): string[] | undefined {
  if (data.length < 4) return undefined;
  const length = data.readUInt32LE(0);
  if (data.length < 4 + length) return undefined;
  const body = data.subarray(4, 4 + length).toString('utf8');
  if (length === 0 || !body.endsWith('\0')) throw usageError('malformed session request');
  return body.slice(0, -1).split('\0');
}

/** The underlying fd of a connected unix socket (libuv exposes it on the handle). */
const socketFd = (socket: Socket) => (socket as unknown as { _handle: { fd: number } })._handle.fd;

async function receive(socket: Socket, native: NativeLibrary): Promise<{ argv: string[]; fds: number[] }> {
  let data = Buffer.alloc(0);
  let fds: number[] = [];
  const deadline = Date.now() + REQUEST_TIMEOUT_MS;
  for (;;) {
    const part = native.receiveRequest(socketFd(socket));
    if (part) {
      if (part.data.length === 0) throw usageError('the client left before sending its request');
      data = Buffer.concat([data, part.data]);
      fds.push(...part.fds);
      const argv = decodeRequest(data);
      if (argv) {
        if (fds.length !== 3) throw usageError(`the client sent ${fds.length} file descriptors, not its stdin, stdout and stderr`);
        return { argv, fds };
      }
    } else if (Date.now() > deadline) {
      throw usageError('the client sent no request');
    } else {
      await sleep(1);
    }
    if (fds.length > 3) fds = fds.slice(0, 3);
  }
}

/**
 * A line of the agent's own on a client's stream (the session's stderr), never blocking serve (the
 * fd's flags are shared with the session, so they are not changed): a client that is gone, or not
 * reading, loses the line; serve goes on.
 */
export function writeNote(native: NativeLibrary, fd: number, line: string): void {
  try {
    native.writeIfReady(fd, Buffer.from(line).subarray(0, 4096));
  } catch {
    // EPIPE, EBADF: the client is gone
  }
}

let openConnections = 0;
let releaseTimer: NodeJS.Timeout | undefined;
/** How long serve waits, once its last session ended, before handing memory back. */
const RELEASE_AFTER_MS = 2000;

/**
 * Around each connection serve takes: once none is left, the memory its streams grew the heap
 * by goes back to the kernel (without it, serve stayed ~60 MiB above idle after 50 sessions).
 */
export async function countedSession<T>(native: NativeLibrary, serveIt: () => Promise<T>): Promise<T> {
  openConnections++;
  clearTimeout(releaseTimer);
  try {
    return await serveIt();
  } finally {
    if (--openConnections === 0) {
      releaseTimer = setTimeout(() => {
        try {
          native.releaseMemory();
        } catch {
          // nothing to give back
        }
      }, RELEASE_AFTER_MS).unref();
    }
  }
}

export interface SessionLog {
  (record: Record<string, unknown>): void;
}

/**
 * What ends sessions besides their clients and commands: serve's stopping, and a maximum
 * lifetime. Stopping is a subscription, not a promise every session races: a reaction added per
 * session to a promise that lives as long as serve would keep every session's state alive.
 */
export interface SessionLimits {
  /** listener runs once, when serve stops; returns the unsubscribe */
  onStop(listener: (end: SessionEnded) => void): () => void;
  maxSessionMs: number;
}

/** serve's stop signal: every subscribed session ends with `end`, subscribers after it at once. */
export function stopSignal(): { onStop: SessionLimits['onStop']; stop: (end: SessionEnded) => void } {
  const listeners = new Set<(end: SessionEnded) => void>();
  let stopped: SessionEnded | undefined;
  return {
    onStop(listener) {
      if (stopped) listener(stopped);
      else listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop(end) {
      stopped ??= end;
      for (const listener of [...listeners]) listener(end);
      listeners.clear();
    },
  };
}

/** The agent's own endings of one session, from its start; cancel() once the session is over. */
export function agentEndings(limits: SessionLimits): { ended: Promise<SessionEnded>; cancel: () => void } {
  let end!: (reason: SessionEnded) => void;
  const ended = new Promise<SessionEnded>((resolve) => (end = resolve));
  const timer = setTimeout(
    () =>
      end({
        reason: 'max lifetime',
        message: `the session reached the agent's maximum session lifetime (${formatLifetime(limits.maxSessionMs)})`,
      }),
    limits.maxSessionMs,
  );
  const unsubscribe = limits.onStop(end);
  return {
    ended,
    cancel: () => {
      clearTimeout(timer);
      unsubscribe();
    },
  };
}

const formatLifetime = (ms: number) =>
  ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;

/** Serve sessions on SESSION_SOCKET; when serve stops (limits.onStop), every running session ends. */
export async function startSessionServer(
  native: NativeLibrary,
  audit: SessionLog,
  limits: SessionLimits,
  path = SESSION_SOCKET,
): Promise<Server> {
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  // pauseOnConnect: the request carries fds, so only recvmsg may read its first bytes.
  const server = createServer(
    { pauseOnConnect: true },
    (socket) => void countedSession(native, () => serveOne(socket, native, audit, limits)),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return server;
}

async function serveOne(socket: Socket, native: NativeLibrary, audit: SessionLog, limits: SessionLimits): Promise<void> {
  socket.on('error', () => undefined);
  // fds this function closes; a framed session's stdin and stdout belong to its link
  let fds: number[] = [];
  let code: number;
  try {
    const request = await receive(socket, native);
    fds = request.fds;
    const args = parseAgentArgs(request.argv);
    if (args.operation !== 'enter') throw usageError('the agent socket serves only `enter`');
    if (args.framed) {
      const [input, output] = fds as [number, number, number];
      fds = [fds[2] as number];
      ignoreWindowSizeSignals(socket);
      code = await runFramedSession(pipeLink(input, output), args, native, audit, limits);
    } else {
      code = await runResidentSession(socket, args, fds as [number, number, number], native, audit, limits);
    }
  } catch (err) {
    const { line, exitCode } = describeFailure(err);
    const stderr = fds.length === 3 ? fds[2] : fds[0];
    if (stderr !== undefined) writeNote(native, stderr, `nsdebug-agent: ${line.replace(/^error: /, '')}\n`);
    code = exitCode;
  } finally {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {
        // unframed --tty: the terminal relay's streams closed it already
      }
    }
  }
  const reply = Buffer.alloc(4);
  reply.writeInt32LE(code, 0);
  socket.end(reply);
}

/** A link over an exec's stdin and stdout (pipes, or the FIFOs of containerd's exec). */
export const pipeLink = (input: number, output: number) =>
  new SessionLink(new Socket({ fd: input, readable: true, writable: false }), new Socket({ fd: output, readable: false, writable: true }));

/** The thin entry point's "W"s: with --framed the window size comes in frames, so they are only read. */
function ignoreWindowSizeSignals(socket: Socket): void {
  socket.on('data', () => undefined);
  socket.resume();
}

/**
 * An `enter --framed` session over an exec's stdio: relayed like a session-port session, ended
 * by the client's going, serve's stopping or the maximum lifetime; the last frames say how.
 */
export async function runFramedSession(
  link: SessionLink,
  req: SessionRequest,
  native: NativeLibrary,
  audit: SessionLog,
  limits: SessionLimits,
): Promise<number> {
  const endings = agentEndings(limits);
  let outcome: RelayOutcome;
  try {
    outcome = await relaySession(link, req, {}, native, audit, endings.ended);
  } finally {
    endings.cancel();
  }
  await link.finish(closingFrames(outcome.exitCode, outcome.ended));
  return outcome.exitCode;
}

async function runResidentSession(
  socket: Socket,
  req: SessionRequest,
  stdio: [number, number, number],
  native: NativeLibrary,
  audit: SessionLog,
  limits: SessionLimits,
): Promise<number> {
  const resizeListeners = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    if (chunk.includes('W'.charCodeAt(0))) for (const l of resizeListeners) l();
  });
  const io: SessionIo = {
    stdio,
    onResize(listener) {
      resizeListeners.add(listener);
      return () => resizeListeners.delete(listener);
    },
  };
  const clientGone = new Promise<SessionEnded>((resolve) =>
    socket.once('close', () => resolve({ reason: 'client gone', message: 'the client disconnected' })),
  );
  socket.resume();
  const endings = agentEndings(limits);
  try {
    const outcome = await runAgentSession(req, io, native, audit, Promise.race([clientGone, endings.ended]));
    return outcome.exitCode;
  } finally {
    endings.cancel();
  }
}

/**
 * One `enter` session in the resident process, for the thin entry point and the session port:
 * its request, the client's stdio, one audit record (with `record`'s fields, and `ended`:
 * how it ended) when it ends. Unframed, the user is told on stderr when the agent ended it.
 */
export async function runAgentSession(
  req: SessionRequest,
  io: SessionIo,
  native: NativeLibrary,
  audit: SessionLog,
  abort: Promise<SessionEnded>,
  record: Record<string, unknown> = {},
  onStart?: () => void,
  tap: { recorder?: SessionRecorder } = {},
): Promise<RelayOutcome> {
  const started = new Date();
  const id = SessionRegistry.newId();
  const node = liveSessions.node ?? req.node ?? '';
  // recorded when the cluster says so; the user hears it before anything else
  const recorder = await recorderFor(id, req, started);
  tap.recorder = recorder;
  if (recorder)
    writeNote(
      native,
      io.stdio[2],
      `nsdebug-agent: this session is recorded (kubectl nsdebug replay ${id} --node ${node})${req.tty ? '\r' : ''}\n`,
    );
  // listed by `kubectl nsdebug sessions` while it lives, and ended by `sessions kill`
  let killed!: (end: SessionEnded) => void;
  const kill = new Promise<SessionEnded>((resolve) => (killed = resolve));
  const unregister = liveSessions.add(publishedSession(id, req, record, node, started, recorder?.name), killed);
  const base = { session: id, ...sessionRecord(req), ...record, ...(recorder ? { recording: recorder.name } : {}) };
  let hostPid: number | undefined;
  let namespaces: string[] = [];
  let ended: SessionEnded | undefined;
  const ending = Promise.race([abort, kill]).then((end) => (ended = end));
  const finished = (outcome: { exitCode: number | null; error?: string }) =>
    audit({
      ...base,
      hostPid,
      namespaces,
      start: started.toISOString(),
      end: new Date().toISOString(),
      ...outcome,
      ended: ended?.reason ?? (outcome.error ? 'error' : 'exit'),
      ...(ended ? { endedBy: ended.message } : {}),
      durationMs: Date.now() - started.getTime(),
    });
  const note = (line: string) => writeNote(native, io.stdio[2], `nsdebug-agent: ${line}${req.tty ? '\r' : ''}\n`);
  try {
    const outcome = await enter(req, {
      native,
      io,
      note,
      abort: ending,
      ...(recorder ? { recorder } : {}),
      onStart: (target, joined) => {
        hostPid = target.pid;
        namespaces = joined;
        onStart?.();
      },
    });
    finished({ exitCode: outcome.exitCode });
    recorder?.finish(outcome.exitCode);
    if (ended && !req.framed) note(`session ended: ${ended.message}`);
    return { exitCode: outcome.exitCode, ...(ended ? { ended } : {}) };
  } catch (err) {
    finished({ exitCode: null, error: (err as Error).message });
    recorder?.finish(null);
    throw err;
  } finally {
    unregister();
  }
}
