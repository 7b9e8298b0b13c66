// One exec stream through the API server, as `kubectl exec` opens it: the Kubernetes channel
// protocol over a WebSocket (v5.channel.k8s.io when the server speaks it, so stdin can be
// half-closed). The transport is client-node's WebSocketHandler in production and a fake in
// tests; everything here ends in the one Promise run() returns: the remote exit code, or an
// NsdebugError. Raw mode and signals belong to the caller (src/cli/terminal.ts).
import { PassThrough, Writable, type Readable } from 'node:stream';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { clientNode, describeApiError, type KubeConnection } from './config.js';

/** The channels of the Kubernetes streaming protocol: the first byte of every binary message. */
export const Channel = {
  STDIN: 0,
  STDOUT: 1,
  STDERR: 2,
  /** the final metav1.Status: exit code or failure */
  ERROR: 3,
  /** terminal size, JSON {"Width":…,"Height":…} */
  RESIZE: 4,
  /** v5 only: [255, channel] half-closes a channel */
  CLOSE: 255,
} as const;

/** Subprotocols offered, newest first (what client-node and kubectl offer). */
export const V5_PROTOCOL = 'v5.channel.k8s.io';

/** The part of a WebSocket (the `ws` package's) an exec stream uses. */
export interface ExecSocket {
  readonly protocol: string;
  send(data: Buffer, cb?: (err?: Error) => void): void;
  close(code?: number): void;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** stop reading from the network (output back-pressure); optional in fakes */
  pause?(): void;
  resume?(): void;
}

/**
 * Opens the socket: client-node's WebSocketInterface. binaryHandler gets (channel, payload) for
 * every message and returns false to have the socket closed.
 */
export interface ExecTransport {
  connect(
    path: string,
    textHandler: ((text: string) => boolean) | null,
    binaryHandler: ((channel: number, data: Buffer) => boolean) | null,
  ): Promise<ExecSocket>;
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Where the window size comes from: the local terminal (src/cli/terminal.ts) or a fake. */
export interface TerminalSizeSource {
  size(): TerminalSize | undefined;
  /** listener runs on every window-size change; returns the unsubscribe */
  onResize(listener: () => void): () => void;
}

export interface ExecRequest {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  /** attached when set; its end half-closes the remote stdin */
  stdin?: Readable;
  stdout: Writable;
  /** ignored with tty (the terminal merges it into stdout) */
  stderr?: Writable;
  tty: boolean;
  /** with tty: the size sent at start and on every change */
  terminal?: TerminalSizeSource;
  /** limit for opening the stream, ms; 0 or unset = none */
  connectTimeoutMs?: number;
  /** how messages name the exec target, e.g. "the nsdebug agent on node n1 (pod nsdebug-system/a-x)" */
  describe?: string;
  /** for messages: the API server and context */
  where?: Pick<KubeConnection, 'server' | 'context' | 'requestTimeoutMs'>;
  /** called once the stream is open, before any byte flows (clear progress, enter raw mode) */
  onOpen?: () => void;
}

/** The API path of an exec, with argv as repeated command= parameters (never a shell string). */
export function execPath(req: Pick<ExecRequest, 'namespace' | 'pod' | 'container' | 'command' | 'tty'> & { stdin: boolean }): string {
  const q = new URLSearchParams();
  for (const arg of req.command) q.append('command', arg);
  q.set('container', req.container);
  q.set('stdin', String(req.stdin));
  q.set('stdout', 'true');
  q.set('stderr', String(!req.tty));
  q.set('tty', String(req.tty));
  return `/api/v1/namespaces/${encodeURIComponent(req.namespace)}/pods/${encodeURIComponent(req.pod)}/exec?${q.toString()}`;
}

/** The metav1.Status the server sends on the error channel when the command ends. */
export interface ExecStatus {
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: Array<{ reason?: string; message?: string; field?: string }> };
}

/**
 * Success → 0; NonZeroExitCode → the ExitCode cause (as kubectl exec reports it); any other
 * failure (the exec itself failed: no such container, executable not found…) → NsdebugError.
 */
export function exitCodeOfStatus(status: ExecStatus, describe = 'the target'): number {
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code) && code >= 0 && code <= 255) return code;
    throw new NsdebugError(
      `exec into ${describe} ended with an unreadable exit code ${JSON.stringify(cause?.message ?? null)}`,
      ExitCode.INTERNAL,
    );
  }
  const message = (status.message ?? 'no message').replace(/\s+/g, ' ').trim();
  if (/executable file not found|no such file or directory/.test(message)) {
    throw new NsdebugError(
      `exec into ${describe} failed: the agent image has no nsdebug-agent (${message}); reinstall with \`kubectl nsdebug install\``,
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
  throw new NsdebugError(`exec into ${describe} failed: ${message}; see \`kubectl nsdebug status\``, ExitCode.AGENT_UNAVAILABLE);
}

/** A failure to open the stream (the WebSocket handshake) as one line. */
export function connectFailure(err: unknown, req: Pick<ExecRequest, 'namespace' | 'pod' | 'describe' | 'where'>): NsdebugError {
  if (err instanceof NsdebugError) return err;
  const what = req.describe ?? `pod ${req.namespace}/${req.pod}`;
  const message = (err as { message?: string } | undefined)?.message ?? String(err);
  const http = /Unexpected server response: (\d{3})/.exec(message);
  const code = http ? Number(http[1]) : undefined;
  switch (code) {
    case undefined:
      break;
    case 401:
      return new NsdebugError(
        `cannot exec into ${what}: the API server rejected your credentials (401); log in again or check your kubeconfig's user`,
        ExitCode.FORBIDDEN,
      );
    case 403:
      return new NsdebugError(
        `you may not exec into ${what}: missing permission create pods/exec in namespace ${req.namespace}; ask your cluster admin to bind the nsdebug-user role`,
        ExitCode.FORBIDDEN,
      );
    case 404:
      return new NsdebugError(`${what} is gone (404); try again, or see \`kubectl nsdebug status\``, ExitCode.AGENT_UNAVAILABLE);
    case 400:
      return new NsdebugError(
        `the API server refused to exec into ${what} (400): is its container running? see \`kubectl nsdebug status\``,
        ExitCode.AGENT_UNAVAILABLE,
      );
    default:
      if (code >= 500) {
        return new NsdebugError(
          `the API server could not open a stream to ${what} (${code}): the node's kubelet may be unreachable; try again`,
          ExitCode.API_UNREACHABLE,
        );
      }
      return new NsdebugError(`cannot exec into ${what}: the API server answered ${code}`, ExitCode.INTERNAL);
  }
  const cause = (err as { error?: unknown } | undefined)?.error ?? err;
  return describeApiError(cause, `open an exec stream to ${what}`, req.where);
}

const frame = (channel: number, data?: Buffer) => {
  const buf = Buffer.allocUnsafe(1 + (data?.length ?? 0));
  buf[0] = channel;
  data?.copy(buf, 1);
  return buf;
};

/** Pause local stdin when this much is queued for the network, resume below the low mark. */
const STDIN_HIGH_WATER = 4 << 20;
const STDIN_LOW_WATER = 1 << 20;

/** How a stream ends: the remote exit code or a failure, whichever event comes first. */
export function firstOutcome(): {
  outcome: Promise<{ code: number } | { error: unknown }>;
  settle: (o: { code: number } | { error: unknown }) => void;
} {
  let settle!: (o: { code: number } | { error: unknown }) => void;
  const outcome = new Promise<{ code: number } | { error: unknown }>((resolve) => {
    let settled = false;
    settle = (o) => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
  });
  return { outcome, settle };
}

/** Open a stream within ms (0: no limit); a handshake that completes later is closed at once. */
export async function connectWithin(connect: Promise<ExecSocket>, ms = 0, what: string): Promise<ExecSocket> {
  try {
    return await withTimeout(
      connect,
      ms,
      () =>
        new NsdebugError(
          `opening ${what} timed out after ${ms / 1000}s; check the cluster, or raise --request-timeout`,
          ExitCode.API_UNREACHABLE,
        ),
    );
  } catch (err) {
    // a late handshake must not leave a session running
    void connect.then(
      (late) => late.close(),
      () => undefined,
    );
    throw err;
  }
}

/** With a TTY: send the window size now and on every change; returns the unsubscribe. */
export function followWindowSize(terminal: TerminalSizeSource, send: (size: TerminalSize) => void): () => void {
  const sendSize = () => {
    const size = terminal.size();
    if (size) send(size);
  };
  sendSize();
  return terminal.onResize(sendSize);
}

/** The stream's end: its subscriptions undone, the socket closed; the exit code, or the failure thrown. */
export async function finishStream(
  outcome: Promise<{ code: number } | { error: unknown }>,
  cleanups: Array<() => void>,
  socket: ExecSocket,
): Promise<number> {
  const result = await outcome;
  for (const cleanup of cleanups) cleanup();
  socket.close();
  if ('error' in result) throw result.error;
  return result.code;
}

/** Write remote output locally; while the local side is full, stop reading the network. */
export function writeOrPause(out: Writable, data: Buffer, socket: ExecSocket | undefined): void {
  if (!out.write(data) && socket?.pause && socket.resume) {
    socket.pause();
    out.once('drain', () => socket.resume?.());
  }
}

/**
 * Local stdin to the remote side: each chunk through send (which calls sent once it is on the
 * wire), stdin paused while too much is queued; its end through onEnd. Returns the cleanup.
 */
export function relayStdin(
  stdin: Readable,
  send: (data: Buffer, sent: () => void) => void,
  onEnd: () => void,
  fail: (error: NsdebugError) => void,
): () => void {
  let queued = 0;
  const onData = (chunk: Buffer | string) => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    queued += data.length;
    send(data, () => {
      queued -= data.length;
      if (queued < STDIN_LOW_WATER && stdin.isPaused()) stdin.resume();
    });
    if (queued > STDIN_HIGH_WATER) stdin.pause();
  };
  // nsdebug's own errors (a stream of its making that refused its input) are the user's to read as they are
  const onError = (err: Error) =>
    fail(err instanceof NsdebugError ? err : new NsdebugError(`reading local stdin failed: ${err.message}`, ExitCode.INTERNAL));
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.once('error', onError);
  return () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.off('error', onError);
    stdin.pause();
  };
}

/** Runs one command over one exec stream. */
export class ExecStream {
  constructor(private readonly transport: ExecTransport) {}

  /** The remote command's exit code; rejects with an NsdebugError for nsdebug's own failures. */
  async run(req: ExecRequest): Promise<number> {
    const describe = req.describe ?? `pod ${req.namespace}/${req.pod}`;
    const { outcome, settle } = firstOutcome();
    let socket: ExecSocket | undefined;
    let statusSeen = false;
    const write = (out: Writable, data: Buffer) => writeOrPause(out, data, socket);
    const stderr = req.stderr ?? req.stdout;
    const onMessage = (channel: number, data: Buffer): boolean => {
      switch (channel) {
        case Channel.STDOUT:
          if (data.length) write(req.stdout, data);
          return true;
        case Channel.STDERR:
          if (data.length) write(stderr, data);
          return true;
        case Channel.ERROR: {
          statusSeen = true;
          try {
            const status = JSON.parse(data.toString('utf8')) as ExecStatus;
            settle({ code: exitCodeOfStatus(status, describe) });
          } catch (err) {
            settle({
              error:
                err instanceof NsdebugError
                  ? err
                  : new NsdebugError(
                      `exec into ${describe} sent an unreadable status: ${data.toString('utf8').slice(0, 200)}`,
                      ExitCode.INTERNAL,
                    ),
            });
          }
          return false;
        }
        default:
          return true; // a server-side CLOSE frame, or a channel this client did not ask for
      }
    };

    try {
      socket = await connectWithin(
        this.transport.connect(execPath({ ...req, stdin: Boolean(req.stdin) }), null, onMessage),
        req.connectTimeoutMs,
        `the exec stream to ${describe}`,
      );
    } catch (err) {
      throw connectFailure(err, req);
    }
    const s = socket;
    req.onOpen?.();

    s.on('close', (code) => {
      if (!statusSeen) {
        settle({
          error: new NsdebugError(
            `the exec stream to ${describe} closed before the command finished (websocket code ${code}); the agent ends the session's processes when its stream goes`,
            ExitCode.API_UNREACHABLE,
          ),
        });
      }
    });
    s.on('error', (err) =>
      settle({ error: new NsdebugError(`the exec stream to ${describe} failed: ${err.message}`, ExitCode.API_UNREACHABLE) }),
    );

    const cleanups: Array<() => void> = [];
    if (req.tty && req.terminal) {
      cleanups.push(
        followWindowSize(req.terminal, (size) =>
          s.send(frame(Channel.RESIZE, Buffer.from(JSON.stringify({ Width: size.cols, Height: size.rows })))),
        ),
      );
    }

    if (req.stdin) {
      cleanups.push(
        relayStdin(
          req.stdin,
          (data, sent) => s.send(frame(Channel.STDIN, data), sent),
          () => {
            // v5 can half-close stdin and keep reading; older protocols can only close everything
            if (s.protocol === V5_PROTOCOL) s.send(Buffer.from([Channel.CLOSE, Channel.STDIN]));
            else s.close();
          },
          (error) => settle({ error }),
        ),
      );
    }

    return finishStream(outcome, cleanups, s);
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  if (!ms) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * The production transport: client-node's WebSocketHandler (auth, TLS, proxies from the
 * kubeconfig). Its own stream bookkeeping gets inert streams: this module handles every channel.
 */
export async function createExecTransport(conn: KubeConnection): Promise<ExecTransport> {
  const { WebSocketHandler } = await clientNode();
  return new WebSocketHandler(conn.kc, undefined, {
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    stderr: new PassThrough(),
  }) as unknown as ExecTransport;
}

/** Everything written, kept in memory: a short exec's stdout and stderr. */
export class Collector extends Writable {
  private chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    callback();
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
