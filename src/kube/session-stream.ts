// A session-authorized session's stream: a port-forward to the agent's session port through the
// API server (pods/portforward over a WebSocket, the v4 channel protocol: channel 0 carries the
// TCP bytes, channel 1 the server's errors, each starting with the port as two bytes), carrying
// the session frames of src/contract.ts. Like ExecStream, everything ends in the one Promise
// run() returns: the remote exit code, or an NsdebugError.
import type { Writable } from 'node:stream';

import { encodeFrame, ExitCode, Frame, FrameDecoder, MAX_FRAME_PAYLOAD, type SessionHello } from '../contract.js';
import { NsdebugError } from '../errors.js';
import {
  connectFailure,
  connectWithin,
  finishStream,
  firstOutcome,
  followWindowSize,
  relayStdin,
  writeOrPause,
  type ExecRequest,
  type ExecSocket,
  type ExecTransport,
} from './exec.js';

export interface SessionStreamRequest extends Pick<
  ExecRequest,
  'stdin' | 'stdout' | 'stderr' | 'tty' | 'terminal' | 'connectTimeoutMs' | 'describe' | 'where' | 'onOpen'
> {
  /** the agent pod */
  namespace: string;
  pod: string;
  port: number;
  hello: SessionHello;
}

export const portForwardPath = (namespace: string, pod: string, port: number) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward?ports=${port}`;

export class SessionStream {
  constructor(private readonly transport: ExecTransport) {}

  async run(req: SessionStreamRequest): Promise<number> {
    const describe = req.describe ?? `pod ${req.namespace}/${req.pod}`;
    const { outcome, settle } = firstOutcome();
    let socket: ExecSocket | undefined;
    const stderr = req.stderr ?? req.stdout;
    const write = (out: Writable, data: Buffer) => writeOrPause(out, data, socket);
    const decoder = new FrameDecoder();
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
      let frames;
      try {
        frames = decoder.push(data);
      } catch (err) {
        settle({ error: new NsdebugError(`${describe} sent a malformed session stream: ${(err as Error).message}`, ExitCode.INTERNAL) });
        return false;
      }
      for (const { type, payload } of frames) {
        if (type === Frame.STDOUT) write(req.stdout, payload);
        else if (type === Frame.STDERR) write(stderr, payload);
        else if (type === Frame.EXIT && payload.length === 4) settle({ code: payload.readInt32BE(0) });
      }
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
    const send = (type: number, payload?: Buffer, cb?: (err?: Error) => void) =>
      s.send(Buffer.concat([Buffer.from([0]), encodeFrame(type, payload)]), cb);
    s.on('close', () =>
      settle({
        error: new NsdebugError(
          `the session stream to ${describe} closed before the command finished; the agent ends the session's processes when its stream goes`,
          ExitCode.API_UNREACHABLE,
        ),
      }),
    );
    s.on('error', (err) =>
      settle({ error: new NsdebugError(`the session stream to ${describe} failed: ${err.message}`, ExitCode.API_UNREACHABLE) }),
    );
    send(Frame.HELLO, Buffer.from(JSON.stringify(req.hello)));
    req.onOpen?.();

    const cleanups: Array<() => void> = [];
    if (req.tty && req.terminal)
      cleanups.push(followWindowSize(req.terminal, (size) => send(Frame.RESIZE, Buffer.from(JSON.stringify(size)))));
    if (req.stdin) {
      // a frame's payload is bounded: larger chunks go as several frames
      const sendStdin = (data: Buffer, sent: () => void) => {
        for (let at = 0; at < data.length; at += MAX_FRAME_PAYLOAD) {
          const last = at + MAX_FRAME_PAYLOAD >= data.length;
          send(Frame.STDIN, data.subarray(at, at + MAX_FRAME_PAYLOAD), last ? sent : undefined);
        }
      };
      cleanups.push(
        relayStdin(
          req.stdin,
          sendStdin,
          () => send(Frame.STDIN_EOF),
          (error) => settle({ error }),
        ),
      );
    }

    return finishStream(outcome, cleanups, s);
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
