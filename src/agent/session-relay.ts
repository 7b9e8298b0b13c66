// One session over a SessionLink, whichever way the client reached the agent (the session port,
// or an exec's stdio through the thin entry point): the session's stdio are pipes relayed to and
// from frames, stdin within the window the agent grants, and the session ends when the command
// does, when the client is gone, or when the agent ends it (stopping, revoked, max lifetime). The
// last frames say which: ENDED when the agent ended it, then EXIT.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';

import { ExitCode, Frame, STREAM_WINDOW, type DebugSessionRequest, type SessionEnded, type SessionRequest } from '../contract.js';
import { describeFailure } from '../errors.js';
import type { NativeLibrary } from '../native/libnsdebug.js';
import { sessionRecord } from './audit.js';
import { auditedCopy, copyCommand, copyThrough } from './copy.js';
import type { SessionIo } from './enter.js';
import { listPodNamespaces } from './namespaces.js';
import { listProcesses } from './ps.js';
import type { SessionRecorder } from './recording.js';
import { runAgentSession, writeNote, type SessionLog } from './resident.js';
import { DRAIN_TIMEOUT_MS, type SessionFrame, type SessionLink } from './session-link.js';

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

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

/** The frames that end a link: ENDED when the agent ended the session, then the exit code. */
export function closingFrames(exitCode: number, ended?: SessionEnded): SessionFrame[] {
  const exit = Buffer.alloc(4);
  exit.writeInt32BE(exitCode, 0);
  const frames: SessionFrame[] = [];
  if (ended && ended.reason !== 'client gone' && ended.reason !== 'heartbeat lost')
    frames.push({ type: Frame.ENDED, payload: Buffer.from(JSON.stringify(ended)) });
  frames.push({ type: Frame.EXIT, payload: exit });
  return frames;
}

/**
 * What the client lets the agent send (its WINDOW grants): a session's STDOUT and STDERR frames
 * wait for credit, so a client that is behind holds back only its own command, and the stream
 * itself is never left unread.
 */
export class OutputWindow {
  private credit = 0;
  private waiting: Array<() => void> = [];

  constructor(private readonly link: SessionLink) {
    void link.gone.then(() => this.wake());
  }

  grant(bytes: number): void {
    this.credit += bytes;
    this.wake();
  }

  /** Send data as frames of type, within the credit; resolves once all of it is queued (or the link is gone). */
  async send(type: number, data: Buffer): Promise<void> {
    let rest = data;
    while (rest.length && !this.link.isClosed) {
      if (this.credit === 0) {
        await new Promise<void>((resolve) => this.waiting.push(resolve));
        continue;
      }
      const n = Math.min(this.credit, rest.length);
      this.credit -= n;
      if (!this.link.send(type, rest.subarray(0, n))) await this.link.drained();
      rest = rest.subarray(n);
    }
  }

  private wake(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

/**
 * From now on: STDIN frames into stdin (never more than granted: the window is the only brake on
 * a client's input, so the link is always read), STDIN_EOF ends it, RESIZE to onResize, WINDOW
 * grants to the output window. The client's first stdin window goes out now.
 */
function deliverInput(
  link: SessionLink,
  stdin: Writable,
  output: OutputWindow,
  onResize?: (payload: Buffer) => void,
  onInput?: (chunk: Buffer) => void,
): void {
  let credit = STREAM_WINDOW;
  link.receive(({ type, payload }) => {
    if (type === Frame.STDIN) {
      if (payload.length > credit) return link.fail('the client sent more stdin than its window');
      credit -= payload.length;
      onInput?.(payload);
      stdin.write(payload, () => {
        credit += payload.length;
        link.send(Frame.WINDOW, u32(payload.length));
      });
    } else if (type === Frame.STDIN_EOF) stdin.end();
    else if (type === Frame.RESIZE) onResize?.(payload);
    else if (type === Frame.WINDOW && payload.length === 4) output.grant(payload.readUInt32BE(0));
  });
  link.send(Frame.WINDOW, u32(STREAM_WINDOW));
}

/** What a relayed session ends with: the exit code, and the agent's reason when it ended it. */
export interface RelayOutcome {
  exitCode: number;
  ended?: SessionEnded;
}

/**
 * ps, ns and cp over a link: run in this process, their stdin and stdout carried by frames; one
 * audit line. Failures are thrown, for the caller to report.
 */
export async function relayQuery(
  link: SessionLink,
  req: Exclude<DebugSessionRequest, { operation: 'enter' }>,
  record: Record<string, unknown>,
  native: NativeLibrary,
  audit: SessionLog,
): Promise<number> {
  const stdin = new PassThrough();
  const window = new OutputWindow(link);
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      // output back-pressure: the next chunk waits until the client has room for this one
      void window.send(Frame.STDOUT, chunk).then(() => done());
    },
  });
  deliverInput(link, stdin, window);
  // a client that leaves mid-copy ends the upload's stream, which fails the copy; once the query
  // is over (the link waits for the client to hang up) there is nothing left to fail
  let running = true;
  void link.gone.then(() => running && stdin.destroy(new Error('the client disconnected')));
  // a download never reads stdin: its failure must not become serve's unhandled 'error'
  stdin.on('error', () => undefined);

  const started = new Date();
  const base: Record<string, unknown> = {
    ...sessionRecord(req),
    ...record,
    command: req.operation === 'cp' ? copyCommand(req) : [req.operation],
  };
  const finished = (outcome: Record<string, unknown>) =>
    audit({ ...base, start: started.toISOString(), end: new Date().toISOString(), durationMs: Date.now() - started.getTime(), ...outcome });
  try {
    if (req.operation === 'ps') stdout.write(`${JSON.stringify(listProcesses(req.containerId, req.podUid, native))}\n`);
    else if (req.operation === 'ns') stdout.write(`${JSON.stringify(listPodNamespaces(req.podUid))}\n`);
    else {
      const warn = (line: string) => void window.send(Frame.STDERR, Buffer.from(`nsdebug-agent: ${line}\n`));
      Object.assign(base, auditedCopy(await copyThrough(req, native, stdin, stdout, warn)));
    }
    await new Promise<void>((resolve) => stdout.end(resolve));
    finished({ exitCode: 0 });
    return ExitCode.OK;
  } catch (err) {
    finished({ exitCode: null, error: (err as Error).message });
    throw err;
  } finally {
    running = false;
  }
}

/**
 * Run an `enter` session with pipes as its stdio, relaying them to and from the link's frames,
 * until it ends: by itself, by the client's going (link.gone), or by `abort` (the agent's reasons).
 */
export async function relaySession(
  link: SessionLink,
  req: SessionRequest,
  record: Record<string, unknown>,
  native: NativeLibrary,
  audit: SessionLog,
  abort: Promise<SessionEnded>,
): Promise<RelayOutcome> {
  const [stdinRead, stdinWrite] = native.pipe();
  const [stdoutRead, stdoutWrite] = native.pipe();
  const [stderrRead, stderrWrite] = native.pipe();
  const stdin = new Socket({ fd: stdinWrite, readable: false, writable: true });
  stdin.on('error', () => undefined); // the command closed its stdin: what is left is dropped
  const outputs = [
    { stream: new Socket({ fd: stdoutRead, readable: true, writable: false }), type: Frame.STDOUT },
    { stream: new Socket({ fd: stderrRead, readable: true, writable: false }), type: Frame.STDERR },
  ];
  const window = new OutputWindow(link);
  // a session without a TTY is recorded here (its byte counts); one with a TTY by its terminal relay
  const tap: { recorder?: SessionRecorder } = {};
  const count = (type: number, chunk: Buffer) => {
    if (req.tty) return;
    if (type === Frame.STDERR) tap.recorder?.errors(chunk);
    else tap.recorder?.output(chunk);
  };
  const drained = outputs.map(
    ({ stream, type }) =>
      new Promise<void>((resolve) => {
        // output back-pressure: the command waits while the client is behind; drained once
        // the last chunk is out, not merely read
        let sending = Promise.resolve();
        stream.on('data', (chunk: Buffer) => {
          count(type, chunk);
          stream.pause();
          sending = window.send(type, chunk).then(() => void stream.resume());
        });
        stream.once('close', () => void sending.then(resolve));
        stream.on('error', () => void sending.then(resolve));
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
  deliverInput(
    link,
    stdin,
    window,
    (payload) => {
      size = parseResize(payload) ?? size;
      for (const listener of resizeListeners) listener();
    },
    (chunk) => {
      if (!req.tty) tap.recorder?.input(chunk);
    },
  );

  let started = false;
  let endedBy: SessionEnded | undefined;
  const ending = Promise.race([link.gone, abort]).then((end) => (endedBy = end));
  try {
    return await runAgentSession(req, io, native, audit, ending, record, () => (started = true), tap);
  } catch (err) {
    const { line, exitCode } = describeFailure(err);
    writeNote(native, stderrWrite, `nsdebug-agent: ${line.replace(/^error: /, '')}\n`);
    return { exitCode, ...(endedBy ? { ended: endedBy } : {}) };
  } finally {
    // With --tty the terminal relay owned (and closed) the session's stdin and stdout once it started.
    const ours = req.tty && started ? [stderrWrite] : [stdinRead, stdoutWrite, stderrWrite];
    for (const fd of ours) closeSync(fd);
    stdin.destroy();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_TIMEOUT_MS)));
    await Promise.race([Promise.all(drained), timeout, link.gone]);
    clearTimeout(timer);
    for (const { stream } of outputs) stream.destroy();
  }
}
