// A session's stream, the CLI's end: the session frames of src/contract.ts, carried by an exec's
// stdin and stdout channels (plain mode: `nsdebug-agent enter --framed`) or by a port-forward to
// the agent's session port (--session-auth). Both share one protocol: heartbeats both ways (the
// session ends when the other side has been silent for HEARTBEAT_TIMEOUT_MS), data both ways
// within the windows each side grants (so neither stops reading the stream), ENDED when the agent
// ended the session, EXIT with the exit code.
// Everything ends in the one Promise a run returns: the remote exit code, or an NsdebugError.
import type { Readable, Writable } from 'node:stream';

import {
  encodeFrame,
  ExitCode,
  Frame,
  FrameDecoder,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TIMEOUT_MS,
  MAX_FRAME_PAYLOAD,
  STREAM_WINDOW,
  type SessionEnded,
  type SessionHello,
} from '../contract.js';
import { NsdebugError } from '../errors.js';
import {
  Channel,
  connectFailure,
  connectWithin,
  execPath,
  exitCodeOfStatus,
  finishStream,
  firstOutcome,
  followWindowSize,
  relayStdin,
  type ExecRequest,
  type ExecSocket,
  type ExecStatus,
  type ExecTransport,
} from './exec.js';

/** The local side of a session: where its bytes come from and go, and how it is named. */
export type SessionLocal = Pick<
  ExecRequest,
  'stdin' | 'stdout' | 'stderr' | 'tty' | 'terminal' | 'connectTimeoutMs' | 'describe' | 'where' | 'onOpen'
>;

export interface SessionStreamRequest extends SessionLocal {
  /** the agent pod */
  namespace: string;
  pod: string;
  port: number;
  hello: SessionHello;
}

export interface FramedExecRequest extends SessionLocal {
  /** the agent pod and container, and `nsdebug-agent enter --framed …` */
  namespace: string;
  pod: string;
  container: string;
  command: string[];
}

export interface LivenessTiming {
  heartbeatMs: number;
  timeoutMs: number;
}

const DEFAULT_TIMING: LivenessTiming = { heartbeatMs: HEARTBEAT_INTERVAL_MS, timeoutMs: HEARTBEAT_TIMEOUT_MS };

type Settle = (o: { code: number } | { error: unknown }) => void;

/**
 * What the agent may send ahead of this side's writes without a TTY: 8 MiB keeps the long path
 * through the API server and kubelet full for a bulk transfer (100 MiB out: 3.8 s with 1 MiB,
 * 3.2 s with 8). With a TTY, STREAM_WINDOW: output already on its way after ^C stays short.
 */
export const BULK_OUTPUT_WINDOW = 8 * STREAM_WINDOW;

/**
 * The frames of one session over an open stream: what arrives goes through push(), what is sent
 * goes out through sendBytes, each frame behind the carrier's channel byte. Returns the cleanup.
 */
class SessionFrames {
  private readonly decoder = new FrameDecoder();
  private lastHeard = Date.now();
  private credit = 0;
  private readonly pending: Array<{ data: Buffer; sent: () => void }> = [];
  private stdinEnded = false;
  private ended: SessionEnded | undefined;
  readonly cleanups: Array<() => void> = [];

  constructor(
    private readonly local: SessionLocal,
    private readonly describe: string,
    private readonly settle: Settle,
    /** the carrier's channel byte in front of each frame */
    private readonly channel: number,
    private readonly sendBytes: (bytes: Buffer, sent?: () => void) => void,
  ) {}

  start(timing: LivenessTiming): void {
    const heartbeat = setInterval(() => this.send(Frame.HEARTBEAT), timing.heartbeatMs);
    const watchdog = setInterval(
      () => {
        const silent = Date.now() - this.lastHeard;
        if (silent > timing.timeoutMs) {
          this.settle({
            error: new NsdebugError(
              `lost the connection to ${this.describe}: nothing heard for ${Math.round(silent / 1000)} s; the agent ends the session's processes when it stops hearing from this client`,
              ExitCode.CONNECTION_LOST,
            ),
          });
        }
      },
      Math.min(1000, timing.timeoutMs / 4),
    );
    this.cleanups.push(() => {
      clearInterval(heartbeat);
      clearInterval(watchdog);
    });
    // what the agent may send before this side has written anything
    this.send(Frame.WINDOW, u32(this.local.tty ? STREAM_WINDOW : BULK_OUTPUT_WINDOW));
    const { tty, terminal, stdin } = this.local;
    if (tty && terminal)
      this.cleanups.push(followWindowSize(terminal, (size) => this.send(Frame.RESIZE, Buffer.from(JSON.stringify(size)))));
    if (stdin) this.cleanups.push(this.relayStdin(stdin));
    else this.send(Frame.STDIN_EOF);
  }

  /**
   * Write locally; once written, the agent may send as much again. The stream is never paused:
   * a client behind on its output holds back only its own session, and its heartbeats (and the
   * API server's pings) are still read.
   */
  private write(out: Writable, data: Buffer): void {
    out.write(data, () => this.send(Frame.WINDOW, u32(data.length)));
  }

  send(type: number, payload?: Buffer | Buffer[], sent?: () => void): void {
    this.sendBytes(encodeFrame(type, payload, this.channel), sent);
  }

  /** Bytes of the session's frames, as they arrive. */
  push(data: Buffer): void {
    this.lastHeard = Date.now();
    let frames;
    try {
      frames = this.decoder.push(data);
    } catch (err) {
      this.settle({
        error: new NsdebugError(`${this.describe} sent a malformed session stream: ${(err as Error).message}`, ExitCode.INTERNAL),
      });
      return;
    }
    const stderr = this.local.stderr ?? this.local.stdout;
    for (const { type, payload } of frames) {
      if (type === Frame.STDOUT) this.write(this.local.stdout, payload);
      else if (type === Frame.STDERR) this.write(stderr, payload);
      else if (type === Frame.WINDOW && payload.length === 4) {
        this.credit += payload.readUInt32BE(0);
        this.flushStdin();
      } else if (type === Frame.ENDED) this.ended = parseEnded(payload);
      else if (type === Frame.EXIT && payload.length === 4) {
        const code = payload.readInt32BE(0);
        if (this.ended) {
          this.settle({
            error: new NsdebugError(`${this.describe} ended the session: ${this.ended.message}`, ExitCode.SESSION_ENDED),
          });
        } else this.settle({ code });
      }
    }
  }

  /**
   * Local stdin as STDIN frames, never more than the agent granted (what waits for credit is
   * bounded by relayStdin's high-water mark); its end as STDIN_EOF once all of it is out.
   */
  private relayStdin(stdin: Readable): () => void {
    return relayStdin(
      stdin,
      (data, sent) => {
        this.pending.push({ data, sent });
        this.flushStdin();
      },
      () => {
        this.stdinEnded = true;
        this.flushStdin();
      },
      (error) => this.settle({ error }),
    );
  }

  /** What the credit allows, as few frames as possible: a pipe's small reads go out together. */
  private flushStdin(): void {
    while (this.pending.length && this.credit > 0) {
      const room = Math.min(this.credit, MAX_FRAME_PAYLOAD);
      const parts: Buffer[] = [];
      const done: Array<() => void> = [];
      let size = 0;
      while (this.pending.length && size < room) {
        const chunk = this.pending[0] as { data: Buffer; sent: () => void };
        const n = Math.min(chunk.data.length, room - size);
        parts.push(chunk.data.subarray(0, n));
        size += n;
        if (n < chunk.data.length) chunk.data = chunk.data.subarray(n);
        else {
          this.pending.shift();
          done.push(chunk.sent);
        }
      }
      this.send(Frame.STDIN, parts);
      this.credit -= size;
      for (const sent of done) sent();
    }
    if (!this.pending.length && this.stdinEnded) {
      this.stdinEnded = false;
      this.send(Frame.STDIN_EOF);
    }
  }
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

function parseEnded(payload: Buffer): SessionEnded {
  try {
    const { reason, message } = JSON.parse(payload.toString('utf8')) as Partial<SessionEnded>;
    if (typeof reason === 'string' && typeof message === 'string')
      return { reason: reason as SessionEnded['reason'], message: message.replace(/[\p{C}]+/gu, ' ').slice(0, 300) };
  } catch {
    // fall through
  }
  return { reason: 'agent stopping', message: 'the agent ended it' };
}

/** Plain mode: `nsdebug-agent enter --framed` over an exec; the frames ride its stdin and stdout. */
export class FramedExecStream {
  constructor(
    private readonly transport: ExecTransport,
    private readonly timing: LivenessTiming = DEFAULT_TIMING,
  ) {}

  async run(req: FramedExecRequest): Promise<number> {
    const describe = req.describe ?? `pod ${req.namespace}/${req.pod}`;
    const { outcome, settle } = firstOutcome();
    let socket: ExecSocket | undefined;
    let statusSeen = false;
    const frames = new SessionFrames(req, describe, settle, Channel.STDIN, (bytes, sent) => socket?.send(bytes, sent));
    const onMessage = (channel: number, data: Buffer): boolean => {
      if (channel === Channel.STDOUT) frames.push(data);
      // the agent's own lines before frames begin (a contract it does not speak, a failure to start)
      else if (channel === Channel.STDERR) (req.stderr ?? req.stdout).write(data);
      else if (channel === Channel.ERROR) {
        statusSeen = true;
        try {
          // the session's exit code comes in its EXIT frame; an exec that ends well without one
          // was cut short (the kubelet going away ends it so), an exec that failed says why
          const code = exitCodeOfStatus(JSON.parse(data.toString('utf8')) as ExecStatus, describe);
          settle(code === 0 ? { error: streamClosed(describe, "the exec ended without the session's exit code") } : { code });
        } catch (err) {
          settle({
            error:
              err instanceof NsdebugError ? err : new NsdebugError(`exec into ${describe} sent an unreadable status`, ExitCode.INTERNAL),
          });
        }
        return false;
      }
      return true;
    };
    try {
      socket = await connectWithin(
        this.transport.connect(execPath({ ...req, stdin: true, tty: false }), null, onMessage),
        req.connectTimeoutMs,
        `the exec stream to ${describe}`,
      );
    } catch (err) {
      throw connectFailure(err, req);
    }
    const s = socket;
    s.on('close', (code) => {
      if (!statusSeen) settle({ error: streamClosed(describe, `websocket code ${code}`) });
    });
    s.on('error', (err) => settle({ error: streamClosed(describe, err.message) }));
    req.onOpen?.();
    frames.start(this.timing);
    return finishStream(outcome, frames.cleanups, s);
  }
}

const streamClosed = (describe: string, why: string) =>
  new NsdebugError(
    `the connection to ${describe} closed before the command finished (${why}); the agent ends the session's processes when its client goes`,
    ExitCode.CONNECTION_LOST,
  );

export const portForwardPath = (namespace: string, pod: string, port: number) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward?ports=${port}`;

/**
 * --session-auth: a port-forward to the agent's session port through the API server
 * (pods/portforward over a WebSocket, the v4 channel protocol: channel 0 carries the TCP bytes,
 * channel 1 the server's errors, each starting with the port as two bytes), HELLO first.
 */
export class SessionStream {
  constructor(
    private readonly transport: ExecTransport,
    private readonly timing: LivenessTiming = DEFAULT_TIMING,
  ) {}

  async run(req: SessionStreamRequest): Promise<number> {
    const describe = req.describe ?? `pod ${req.namespace}/${req.pod}`;
    const { outcome, settle } = firstOutcome();
    let socket: ExecSocket | undefined;
    // the port's data channel: 0
    const frames = new SessionFrames(req, describe, settle, 0, (bytes, sent) => socket?.send(bytes, sent));
    const portPrefixPending = [true, true];
    const onMessage = (channel: number, data: Buffer): boolean => {
      if (channel > 1) return true;
      if (portPrefixPending[channel]) {
        portPrefixPending[channel] = false;
        data = data.subarray(2);
      }
      if (!data.length) return true;
      if (channel === 1) {
        settle({ error: forwardFailure(data.toString('utf8'), describe) });
        return false;
      }
      frames.push(data);
      return true;
    };

    try {
      socket = await connectWithin(
        this.transport.connect(portForwardPath(req.namespace, req.pod, req.port), null, onMessage),
        req.connectTimeoutMs,
        `the port-forward to ${describe}`,
      );
    } catch (err) {
      const http = /Unexpected server response: (\d{3})/.exec((err as Error | undefined)?.message ?? '');
      if (http?.[1] === '403') {
        throw new NsdebugError(
          `you may not reach ${describe}: missing permission create pods/portforward in namespace ${req.namespace}; ask your cluster admin to bind the nsdebug-session-user role there`,
          ExitCode.FORBIDDEN,
        );
      }
      throw connectFailure(err, req);
    }
    const s = socket;
    s.on('close', () => settle({ error: streamClosed(describe, 'the port-forward ended') }));
    s.on('error', (err) => settle({ error: streamClosed(describe, err.message) }));
    frames.send(Frame.HELLO, Buffer.from(JSON.stringify(req.hello)));
    req.onOpen?.();
    frames.start(this.timing);
    return finishStream(outcome, frames.cleanups, s);
  }
}

/** The port-forward's error channel as one line: the agent has no session port, or the pod is gone. */
export function forwardFailure(text: string, describe: string): NsdebugError {
  const message = text.replace(/\s+/g, ' ').trim();
  if (/connection refused|connect: /.test(message)) {
    return new NsdebugError(
      `${describe} has no session port (${message}); it needs an agent of this release: kubectl nsdebug install --session-auth`,
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
  return new NsdebugError(`the port-forward to ${describe} failed: ${message}`, ExitCode.API_UNREACHABLE);
}
