// Entry of `kubectl-nsdebug` (bin/kubectl-nsdebug.js): run oclif, print any failure as one line
// (src/cli/failure.ts), wait for stdout to drain, exit with the command's code. Only oclif is
// imported up front; commands load what they need (client-node only once a cluster is involved).
import { run } from '@oclif/core';

import { ExitCode } from '../contract.js';
import { failureOf } from './failure.js';

let originalArgv: string[] | undefined;

/** The argv main() was given: the default-command hook re-reads it verbatim. */
export const invocationArgv = (): string[] => originalArgv ?? process.argv.slice(2);

/** --debug before any `--`, or NSDEBUG_DEBUG=1: stack traces for internal errors. */
export function wantsDebug(argv: readonly string[], env: Record<string, string | undefined> = process.env): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--debug') || env.NSDEBUG_DEBUG === '1';
}

const drained = (stream: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => (stream.writableLength ? stream.write('', () => resolve()) : resolve()));

export async function main(argv: string[], root: string): Promise<never> {
  originalArgv = argv;
  // `kubectl nsdebug ps … | head`: a closed pipe ends us as SIGPIPE would, silently
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 128 + 13 : ExitCode.INTERNAL));
  }
  let exitCode: number = ExitCode.OK;
  try {
    const result = await run(argv, root);
    exitCode = typeof result === 'number' ? result : ExitCode.OK;
  } catch (err) {
    const failure = failureOf(err, wantsDebug(argv));
    if (failure.line) process.stderr.write(`${failure.line}\n`);
    exitCode = failure.exitCode;
  }
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(exitCode);
}
