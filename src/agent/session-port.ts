// The session port (session authorization mode): 127.0.0.1:SESSION_PORT in the agent pod, which
// nothing reaches but pods/portforward through the API server. One TCP connection is one session:
// a HELLO frame naming a DebugSession and its secret, then stdin/resize frames in, stdout/stderr
// frames out, and a last EXIT frame (src/contract.ts). The session's stdio are pipes the agent
// relays to and from frames, so the resident session code runs it as it runs any other.
import { closeSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { PassThrough, Writable } from 'node:stream';

import { encodeFrame, ExitCode, Frame, FrameDecoder, SESSION_PORT } from '../contract.js';
import { describeFailure, NsdebugError } from '../errors.js';
import type { NativeLibrary } from '../native/libnsdebug.js';
import type { InClusterApi } from './apiserver.js';
import { parseAgentArgs, type AgentArgs } from './args.js';
import { sessionRecord } from './audit.js';
import { copyCommand, copyThrough } from './copy.js';
import { authorizeSession, deleteSession, parseHello, type AuthorizedSession } from './debug-session.js';
import type { SessionIo } from './enter.js';
import { listPodNamespaces } from './namespaces.js';
import { listProcesses } from './ps.js';
import { runAgentSession, writeNote, type SessionLog } from './resident.js';

const HELLO_TIMEOUT_MS = 5000;
/** Connections served at once; more are dropped by the kernel's accept (net.Server.maxConnections). */
export const MAX_CONNECTIONS = 64;
/** What is read of a client before its session runs (the hello, early stdin); then reading waits. */
export const MAX_EARLY_BYTES = 1 << 20;
/** How long to wait for the command's output to drain after it ended. */
const DRAIN_TIMEOUT_MS = 2000;

export interface SessionPortOptions {
  api: InClusterApi;
  /** this agent's node: only pods bound to it are served */
  node: string;
  port?: number;
  host?: string;
}

export async function startSessionPort(
  native: NativeLibrary,
  audit: SessionLog,
  stopping: Promise<string>,
  opts: SessionPortOptions,
): Promise<Server> {
  const server = createServer((socket) => void serveConnection(socket, native, audit, stopping, opts));
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? SESSION_PORT, opts.host ?? '127.0.0.1', resolve);
  });
  return server;
}

/** A frame's window size, or undefined when it is not one. */
export function parseResize(payload: Buffer): { rows: number; cols: number } | undefined {
  try {
    const { cols, rows } = JSON.parse(payload.toString('utf8')) as { cols?: unknown; rows?: unknown };
    const valid = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536;
    return valid(cols) && valid(rows) ? { rows, cols } : undefined;
  } catch {
    return undefined;
  }
}

async function serveConnection(
  socket: Socket,
  native: NativeLibrary,
  audit: SessionLog,
  stopping: Promise<string>,
  opts: SessionPortOptions,
): Promise<void> {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const send = (type: number, payload?: Buffer) => socket.writable && socket.write(encodeFrame(type, payload));
  // Once the exit code is sent the connection is over: nothing more is read, the socket is destroyed.
  const finish = (code: number) => {
    const exit = Buffer.alloc(4);
    exit.writeInt32BE(code, 0);
    send(Frame.EXIT, exit);
    socket.removeAllListeners('data');
    socket.end(() => socket.destroy());
  };
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve('the client disconnected')));

  // Frames that arrive before the session runs wait here (a client may send stdin at once).
  const decoder = new FrameDecoder();
  const queued: Array<{ type: number; payload: Buffer }> = [];
  let earlyBytes = 0;
  let deliver: ((frame: { type: number; payload: Buffer }) => void) | undefined;
  let hello: ((payload: Buffer) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    // until the session runs, what arrives is held in memory: past the bound, reading waits for it
    if (!deliver && (earlyBytes += chunk.length) > MAX_EARLY_BYTES) socket.pause();
    let frames;
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      socket.destroy(err as Error);
      return;
    }
    for (const frame of frames) {
      if (hello) {
        const take = hello;
        hello = undefined;
        if (frame.type === Frame.HELLO) take(frame.payload);
        else socket.destroy();
      } else if (deliver) deliver(frame);
      else queued.push(frame);
    }
  });

  let sessionObject: AuthorizedSession['session'] | undefined;
  let code: number;
  try {
    const payload = await new Promise<Buffer>((resolve, reject) => {
      hello = resolve;
      const timer = setTimeout(() => reject(new NsdebugError('no session request arrived', ExitCode.USAGE)), HELLO_TIMEOUT_MS);
      // a client that leaves before its request ends here too, not in a promise left pending
      void closed.then((why) => {
        clearTimeout(timer);
        reject(new NsdebugError(why, ExitCode.USAGE));
      });
    });
    const authorized = await authorizeSession(opts.api, parseHello(payload), opts.node);
    sessionObject = authorized.session;
    const relay = {
      queued,
      setDeliver: (d: (frame: { type: number; payload: Buffer }) => void) => {
        deliver = d;
        socket.resume();
      },
      send,
    };
    const args = parseAgentArgs(authorized.argv);
    code =
      args.subcommand === 'enter'
        ? await relaySession(socket, args, authorized.record, native, audit, Promise.race([closed, stopping]), relay)
        : await relayQuery(socket, args, authorized.record, native, audit, relay);
  } catch (err) {
    const { line, exitCode } = describeFailure(err);
    send(Frame.STDERR, Buffer.from(`nsdebug-agent: ${line.replace(/^error: /, '')}\n`));
    if (!sessionObject) audit({ event: 'refused', error: line.replace(/^error: /, '') });
    code = exitCode;
  }
  finish(code);
  // A claimed DebugSession is spent: gone once its session is over, however the client ended.
  if (sessionObject) {
    await deleteSession(opts.api, sessionObject).catch((err: Error) =>
      audit({ event: 'warning', msg: 'could not delete a DebugSession', error: err.message }),
    );
  }
}

interface FrameRelay {
  queued: Array<{ type: number; payload: Buffer }>;
  setDeliver(deliver: (frame: { type: number; payload: Buffer }) => void): void;
  send(type: number, payload?: Buffer): unknown;
}

/** From now on (queued frames first): STDIN frames into stdin, STDIN_EOF ends it, RESIZE to onResize. */
function deliverInput(relay: FrameRelay, socket: Socket, stdin: Writable, onResize?: (payload: Buffer) => void): void {
  const onFrame = ({ type, payload }: { type: number; payload: Buffer }) => {
    if (type === Frame.STDIN) {
      // input back-pressure: stop reading the network while the command is behind
      if (!stdin.write(payload) && !socket.isPaused()) {
        socket.pause();
        stdin.once('drain', () => socket.resume());
      }
    } else if (type === Frame.STDIN_EOF) stdin.end();
    else if (type === Frame.RESIZE) onResize?.(payload);
  };
  for (const frame of relay.queued.splice(0)) onFrame(frame);
  relay.setDeliver(onFrame);
}

/**
 * ps, ns and cp: run in this process, their stdin and stdout carried by frames; one audit line.
 * Failures are thrown, for the caller to report.
 */
async function relayQuery(
  socket: Socket,
  args: AgentArgs,
  record: Record<string, unknown>,
  native: NativeLibrary,
  audit: SessionLog,
  relay: FrameRelay,
): Promise<number> {
  const stdin = new PassThrough();
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      // output back-pressure: the next chunk waits until the network took this one
      if (relay.send(Frame.STDOUT, chunk) === false) socket.once('drain', () => done());
      else done();
    },
  });
  deliverInput(relay, socket, stdin);

  const started = new Date();
  const base: Record<string, unknown> = {
    ...sessionRecord(args),
    ...record,
    command: args.subcommand === 'cp' ? copyCommand(args) : [args.subcommand],
  };
  const finished = (outcome: Record<string, unknown>) =>
    audit({ ...base, start: started.toISOString(), end: new Date().toISOString(), durationMs: Date.now() - started.getTime(), ...outcome });
  try {
    if (args.subcommand === 'ps') stdout.write(`${JSON.stringify(listProcesses(args.containerId, args.podUid, native))}\n`);
    else if (args.subcommand === 'ns') stdout.write(`${JSON.stringify(listPodNamespaces(args.podUid as string))}\n`);
    else if (args.subcommand === 'cp') {
      const done = await copyThrough(args, native, stdin, stdout);
      base.path = done.path;
      base.bytes = done.size;
    } else throw new NsdebugError(`the session port does not serve ${args.subcommand}`, ExitCode.USAGE);
    await new Promise<void>((resolve) => stdout.end(resolve));
    finished({ exitCode: 0 });
    return ExitCode.OK;
  } catch (err) {
    finished({ exitCode: null, error: (err as Error).message });
    throw err;
  }
}

/** Run the session with pipes as its stdio, relaying them to and from frames; its exit code. */
async function relaySession(
  socket: Socket,
  args: AgentArgs,
  record: Record<string, unknown>,
  native: NativeLibrary,
  audit: SessionLog,
  abort: Promise<string>,
  relay: FrameRelay,
): Promise<number> {
  const [stdinRead, stdinWrite] = native.pipe();
  const [stdoutRead, stdoutWrite] = native.pipe();
  const [stderrRead, stderrWrite] = native.pipe();
  const stdin = new Socket({ fd: stdinWrite, readable: false, writable: true });
  stdin.on('error', () => undefined); // the command closed its stdin: what is left is dropped
  const outputs = [
    { stream: new Socket({ fd: stdoutRead, readable: true, writable: false }), type: Frame.STDOUT },
    { stream: new Socket({ fd: stderrRead, readable: true, writable: false }), type: Frame.STDERR },
  ];
  const drained = outputs.map(
    ({ stream, type }) =>
      new Promise<void>((resolve) => {
        stream.on('data', (chunk: Buffer) => {
          // output back-pressure: stop reading the command while the network is behind
          if (relay.send(type, chunk) === false && !stream.isPaused()) {
            stream.pause();
            socket.once('drain', () => stream.resume());
          }
        });
        stream.once('close', () => resolve());
        stream.on('error', () => resolve());
      }),
  );

  let size: { rows: number; cols: number } | undefined;
  const resizeListeners = new Set<() => void>();
  const io: SessionIo = {
    stdio: [stdinRead, stdoutWrite, stderrWrite],
    onResize(listener) {
      resizeListeners.add(listener);
      return () => resizeListeners.delete(listener);
    },
    size: () => size,
  };
  deliverInput(relay, socket, stdin, (payload) => {
    size = parseResize(payload) ?? size;
    for (const listener of resizeListeners) listener();
  });

  let started = false;
  try {
    return await runAgentSession(args, io, native, audit, abort, record, () => (started = true));
  } catch (err) {
    const { line, exitCode } = describeFailure(err);
    writeNote(native, stderrWrite, `nsdebug-agent: ${line.replace(/^error: /, '')}\n`);
    return exitCode;
  } finally {
    // With --tty the terminal relay owned (and closed) the session's stdin and stdout once it started.
    const ours = args.tty && started ? [stderrWrite] : [stdinRead, stdoutWrite, stderrWrite];
    for (const fd of ours) closeSync(fd);
    stdin.destroy();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS).unref());
    await Promise.race([Promise.all(drained), timeout]);
    for (const { stream } of outputs) stream.destroy();
  }
}
