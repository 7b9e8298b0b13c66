import { ExitCode, type ExitCodeValue } from './contract.js';

/**
 * An error nsdebug expects and explains: a one-line, lowercase message that says what to do, and
 * the exit code it maps to. Anything else that escapes is a bug and exits INTERNAL.
 */
export class NsdebugError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
  ) {
    super(message);
    this.name = 'NsdebugError';
  }
}

export const usageError = (message: string) => new NsdebugError(message, ExitCode.USAGE);

/** The single line a user sees for any failure, and the exit code, for one place to print them. */
export function describeFailure(err: unknown, debug = false): { line: string; exitCode: number } {
  if (err instanceof NsdebugError) return { line: `error: ${err.message}`, exitCode: err.exitCode };
  const detail = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err);
  return { line: `error: internal: ${detail}`, exitCode: ExitCode.INTERNAL };
}
