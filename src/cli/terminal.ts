// The local terminal during a session: raw mode while the remote side owns the keyboard, the
// window size for the remote pty (at start and on every SIGWINCH, through the 'resize' event),
// and restoration on every way out: normal end, error, SIGINT/SIGTERM/SIGHUP, remote close, and
// process exit as the last resort.
import type { TerminalSize, TerminalSizeSource } from '../kube/exec.js';

/** The parts of a tty.ReadStream raw mode needs. */
export interface RawCapable {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** The parts of a tty.WriteStream size tracking needs. */
export interface SizedOutput {
  isTTY?: boolean;
  columns?: number;
  rows?: number;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

export interface LocalTerminal extends TerminalSizeSource {
  /** enter raw mode (idempotent; no-op when stdin is not a terminal) */
  makeRaw(): void;
  /** leave raw mode if this object entered it (idempotent) */
  restore(): void;
}

export function localTerminal(input: RawCapable, outputs: SizedOutput[]): LocalTerminal {
  const sized = outputs.find((o) => o.isTTY);
  let entered = false;
  return {
    size(): TerminalSize | undefined {
      return sized?.columns && sized.rows ? { cols: sized.columns, rows: sized.rows } : undefined;
    },
    onResize(listener) {
      if (!sized) return () => undefined;
      sized.on('resize', listener);
      return () => sized.off('resize', listener);
    },
    makeRaw() {
      if (entered || !input.isTTY || !input.setRawMode) return;
      input.setRawMode(true);
      entered = true;
    },
    restore() {
      if (!entered) return;
      entered = false;
      input.setRawMode?.(false);
    },
  };
}

export const processTerminal = (): LocalTerminal => localTerminal(process.stdin, [process.stdout, process.stderr]);

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/** The process hooks withTerminal installs; injectable for tests. */
export interface SignalHost {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  exit(code: number): never;
}

/**
 * Run a session with the terminal restored whatever happens. A signal restores the terminal and
 * exits 128+N as a shell would; the API server then drops the stream and the agent ends the
 * session's processes.
 */
export async function withTerminal<T>(
  terminal: LocalTerminal | undefined,
  session: () => Promise<T>,
  host: SignalHost = process as unknown as SignalHost,
): Promise<T> {
  if (!terminal) return session();
  const onExit = () => terminal.restore();
  const handlers = Object.entries(SIGNALS).map(([signal, number]) => {
    const handler = () => {
      terminal.restore();
      host.exit(128 + number);
    };
    host.on(signal, handler);
    return [signal, handler] as const;
  });
  host.on('exit', onExit);
  try {
    return await session();
  } finally {
    terminal.restore();
    host.off('exit', onExit);
    for (const [signal, handler] of handlers) host.off(signal, handler);
  }
}
