// The agent's end of one client's session frames (src/contract.ts): the session port's TCP
// connection, or an exec's stdin and stdout handed over by the thin entry point. It knows when the
// client is gone: its stream ended or failed (the CLI was killed, the API server or kubelet went
// away: both end an exec's stdin), or nothing arrived for HEARTBEAT_TIMEOUT_MS (a cut without a
// FIN: a laptop asleep, a dropped route). The agent never stops reading a link, so its clock only
// measures the client: data both ways is held back by windows (src/agent/session-relay.ts), not
// by pausing the stream.
import type { Socket } from 'node:net';

import { encodeFrame, Frame, FrameDecoder, HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS, type SessionEnded } from '../contract.js';

export interface SessionFrame {
  type: number;
  payload: Buffer;
}

export interface SessionLinkOptions {
  heartbeatMs?: number;
  timeoutMs?: number;
  /** what may wait, unread by a session, before one takes the frames (the hello, a resize) */
  maxQueuedBytes?: number;
}

/** How long a session's last output may wait for a client that is alive but not reading. */
export const DRAIN_TIMEOUT_MS = 10 * 60_000;

/** Frames that arrive before a session takes them: a hello, a resize. Nothing larger is legitimate. */
export const MAX_QUEUED_BYTES = 1 << 20;

export class SessionLink {
  /** Resolves once, when the client is gone; the link is closed by then. */
  readonly gone: Promise<SessionEnded>;
  private markGone!: (end: SessionEnded) => void;
  private readonly decoder = new FrameDecoder();
  private queued: SessionFrame[] = [];
  private queuedBytes = 0;
  private handler: ((frame: SessionFrame) => void) | undefined;
  private lastRead = Date.now();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly watchdog: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly input: Socket,
    private readonly output: Socket,
    opts: SessionLinkOptions = {},
  ) {
    this.gone = new Promise((resolve) => (this.markGone = resolve));
    const timeoutMs = opts.timeoutMs ?? HEARTBEAT_TIMEOUT_MS;
    const maxQueued = opts.maxQueuedBytes ?? MAX_QUEUED_BYTES;
    input.on('data', (chunk: Buffer) => {
      this.lastRead = Date.now();
      let frames: SessionFrame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.fail(`the client sent a malformed stream (${(err as Error).message})`);
        return;
      }
      for (const frame of frames) {
        if (this.handler) this.handler(frame);
        else if ((this.queuedBytes += frame.payload.length) > maxQueued)
          return this.fail('the client sent too much before its session ran');
        else this.queued.push(frame);
      }
    });
    const left = () => this.fail('the client disconnected');
    input.once('end', left);
    input.once('close', left);
    input.on('error', left);
    if (output !== input) output.on('error', left);
    this.heartbeat = setInterval(() => this.send(Frame.HEARTBEAT), opts.heartbeatMs ?? HEARTBEAT_INTERVAL_MS);
    this.watchdog = setInterval(
      () => {
        const silent = Date.now() - this.lastRead;
        if (silent > timeoutMs) this.fail(`no heartbeat from the client for ${Math.round(silent / 1000)} s`, 'heartbeat lost');
      },
      Math.min(1000, timeoutMs / 4),
    );
  }

  /** From now on every frame goes to handler, the ones that waited first; none: frames wait again. */
  receive(handler?: (frame: SessionFrame) => void): void {
    this.handler = handler;
    if (!handler) return;
    for (const frame of this.queued.splice(0)) handler(frame);
    this.queuedBytes = 0;
  }

  /** Queue a frame; false when the client is behind (wait for drained() before sending more). */
  send(type: number, payload?: Buffer): boolean {
    if (this.closed || !this.output.writable) return true;
    return this.output.write(encodeFrame(type, payload));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves when what was queued reached the client's stream, or the link closed. */
  drained(): Promise<void> {
    if (this.closed || !this.output.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.output.off('drain', done);
        this.output.off('close', done);
        resolve();
      };
      this.output.once('drain', done);
      this.output.once('close', done);
    });
  }

  /** The client is gone, or breaks the protocol: the link is closed, gone resolves. */
  fail(message: string, reason: 'client gone' | 'heartbeat lost' = 'client gone'): void {
    this.markGone({ reason, message });
    this.destroy();
  }

  /**
   * The last frames (EXIT), then the link closed once the client hung up, having read them (a
   * CLI closes its stream on EXIT): ending the exec or the connection earlier could cut off what
   * is still on its way through the kubelet and the API server. A client that is gone (or
   * silent) ends the wait, as does waitMs.
   */
  async finish(frames: SessionFrame[], waitMs = DRAIN_TIMEOUT_MS): Promise<void> {
    for (const { type, payload } of frames) this.send(type, payload);
    // the session is over: nothing follows its EXIT, but the client's silence still ends the wait
    clearInterval(this.heartbeat);
    if (!this.closed) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.gone, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    this.destroy();
  }

  private stopTimers(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.watchdog);
  }

  private destroy(): void {
    this.stopTimers();
    if (this.closed) return;
    this.closed = true;
    this.handler = undefined;
    this.input.removeAllListeners('data');
    this.input.destroy();
    if (this.output !== this.input) this.output.destroy();
  }
}
