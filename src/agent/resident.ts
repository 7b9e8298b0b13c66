// Sessions run by the resident `serve` process. The thin entry point (native/nsdebug-agent.c)
// connects to agent.sock, sends its argv with its stdin/stdout/stderr attached, writes "W" when
// its window size changes, and waits for a 4-byte exit code. Its disconnecting ends the session.
// This saves a Node start (~130 ms) per session.
import { closeSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { describeFailure, usageError } from '../errors.js';
import type { NativeLibrary } from '../native/libnsdebug.js';
import { parseAgentArgs, type AgentArgs } from './args.js';
import { RUN_DIR, sessionRecord } from './audit.js';
import { enter, enterOptions, type SessionIo } from './enter.js';

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

export interface SessionLog {
  (record: Record<string, unknown>): void;
}

/**
 * Serve sessions on SESSION_SOCKET until `stopping` resolves; then end every running session
 * with the reason it resolves to.
 */
export async function startSessionServer(
  native: NativeLibrary,
  audit: SessionLog,
  stopping: Promise<string>,
  path = SESSION_SOCKET,
): Promise<Server> {
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  // pauseOnConnect: the request carries fds, so only recvmsg may read its first bytes.
  const server = createServer({ pauseOnConnect: true }, (socket) => void serveOne(socket, native, audit, stopping));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return server;
}

async function serveOne(socket: Socket, native: NativeLibrary, audit: SessionLog, stopping: Promise<string>): Promise<void> {
  socket.on('error', () => undefined);
  let fds: number[] = [];
  let code: number;
  try {
    const request = await receive(socket, native);
    fds = request.fds;
    code = await runResidentSession(socket, request.argv, fds as [number, number, number], native, audit, stopping);
  } catch (err) {
    const { line, exitCode } = describeFailure(err);
    if (fds[2] !== undefined) writeNote(native, fds[2], `nsdebug-agent: ${line.replace(/^error: /, '')}\n`);
    code = exitCode;
  } finally {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {
        // the relay's streams closed it already
      }
    }
  }
  const reply = Buffer.alloc(4);
  reply.writeInt32LE(code, 0);
  socket.end(reply);
}

async function runResidentSession(
  socket: Socket,
  argv: string[],
  stdio: [number, number, number],
  native: NativeLibrary,
  audit: SessionLog,
  stopping: Promise<string>,
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
  const clientGone = new Promise<string>((resolve) => socket.once('close', () => resolve('the client disconnected')));
  socket.resume();
  return runAgentSession(parseAgentArgs(argv), io, native, audit, Promise.race([clientGone, stopping]));
}

/**
 * One `enter` session in the resident process, for the thin entry point and the session port:
 * its parsed argv, the client's stdio, one audit record (with `record`'s fields) when it ends.
 */
export async function runAgentSession(
  args: AgentArgs,
  io: SessionIo,
  native: NativeLibrary,
  audit: SessionLog,
  abort: Promise<string>,
  record: Record<string, unknown> = {},
  onStart?: () => void,
): Promise<number> {
  if (args.subcommand !== 'enter' || args.help) throw usageError('the agent socket serves only `enter`');
  const started = new Date();
  const base = { ...sessionRecord(args), ...record };
  let hostPid: number | undefined;
  let namespaces: string[] = [];
  const finished = (outcome: { exitCode: number | null; error?: string }) =>
    audit({
      ...base,
      hostPid,
      namespaces,
      start: started.toISOString(),
      end: new Date().toISOString(),
      ...outcome,
      durationMs: Date.now() - started.getTime(),
    });
  try {
    const outcome = await enter(enterOptions(args), {
      native,
      io,
      note: (line) => writeNote(native, io.stdio[2], `nsdebug-agent: ${line}${args.tty ? '\r' : ''}\n`),
      abort,
      onStart: (target, joined) => {
        hostPid = target.pid;
        namespaces = joined;
        onStart?.();
      },
    });
    finished({ exitCode: outcome.exitCode });
    return outcome.exitCode;
  } catch (err) {
    finished({ exitCode: null, error: (err as Error).message });
    throw err;
  }
}
