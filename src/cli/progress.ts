// What the CLI tells the user on stderr besides errors: transient progress ("resolving…",
// "connecting to the agent on node n1…") only when stderr is a terminal, each step overwriting
// the last and erased before anything else is written; and notes that stay ("Defaulted
// container…", "Found 2 pods, using pod/web-1") unless --quiet.

/** The part of a stream progress writes to. */
export interface TextSink {
  write(text: string): unknown;
}

export interface Progress {
  /** replace the current progress line (no-op unless enabled) */
  step(text: string): void;
  /** a line that stays, printed after erasing the progress line (no-op when quiet) */
  note(line: string): void;
  /** erase the progress line; call before the session's own output starts */
  clear(): void;
}

const ERASE_LINE = '\r\x1b[2K';

export function createProgress(sink: TextSink, opts: { enabled: boolean; quiet?: boolean }): Progress {
  let shown = false;
  const clear = () => {
    if (!shown) return;
    sink.write(ERASE_LINE);
    shown = false;
  };
  return {
    step(text) {
      if (!opts.enabled) return;
      sink.write(`${ERASE_LINE}${text}…`);
      shown = true;
    },
    note(line) {
      if (opts.quiet) return;
      clear();
      sink.write(`${line}\n`);
    },
    clear,
  };
}
