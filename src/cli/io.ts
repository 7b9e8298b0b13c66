// The process's streams and terminal, bundled so the run functions can be driven by tests.
import type { Readable, Writable } from 'node:stream';

import { processFacts, type ProcessFacts } from './options.js';
import { processTerminal, type LocalTerminal, type RawCapable } from './terminal.js';

export interface CliIo {
  stdin: Readable & RawCapable;
  stdout: Writable;
  stderr: Writable;
  terminal: LocalTerminal;
  facts: ProcessFacts;
}

export const processIo = (): CliIo => ({
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  terminal: processTerminal(),
  facts: processFacts(),
});
