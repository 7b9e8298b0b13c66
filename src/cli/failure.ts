// The one place a failure becomes what the user sees: one line on stderr and an exit code.
// NsdebugError speaks for itself; oclif's parse errors become usage lines (exit 64) without
// their "See more help" tails; anything else is a bug: "error: internal: …", with its stack
// only under --debug.
import { stripVTControlCharacters } from 'node:util';

import { ExitCode } from '../contract.js';
import { describeFailure } from '../errors.js';

const PARSE_ERRORS = new Set([
  'CLIParseError',
  'InvalidArgsSpecError',
  'RequiredArgsError',
  'UnexpectedArgsError',
  'NonExistentFlagsError',
  'FlagInvalidOptionError',
  'ArgInvalidOptionError',
  'FailedFlagValidationError',
]);

interface OclifError {
  name?: string;
  message?: string;
  code?: string;
  oclif?: { exit?: number };
  parse?: unknown;
  args?: unknown[];
  flags?: string[];
}

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);

/** oclif's parser message → one lowercase line that says what to do. */
export function usageLine(err: OclifError): string {
  // on a terminal oclif dims parts of its message: the line is ours to style, not its
  const message = stripVTControlCharacters(err.message ?? '').replace(/\nSee more help with --help\s*$/, '');
  switch (errorClass(err)) {
    case 'NonExistentFlagsError':
      return `unknown flag${(err.flags?.length ?? 0) > 1 ? 's' : ''} ${(err.flags ?? []).join(', ')}; see kubectl nsdebug --help`;
    case 'UnexpectedArgsError':
      return `unexpected argument${(err.args?.length ?? 0) > 1 ? 's' : ''} ${(err.args ?? []).map((a) => JSON.stringify(a)).join(', ')}: put the remote command after --, e.g. kubectl nsdebug pod/NAME -- ls /`;
    case 'FailedFlagValidationError': {
      const reasons = message
        .split('\n')
        .slice(1)
        .map((l) => l.trim())
        .filter(Boolean);
      return reasons.map(lowerFirst).join('; ');
    }
    default:
      return message
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .map(lowerFirst)
        .join('; ');
  }
}

/** oclif's errors all have name "Error"; their class tells them apart. */
const errorClass = (err: OclifError) => (err as { constructor?: { name?: string } }).constructor?.name ?? err.name ?? '';

/** What to print (maybe nothing) and the exit code, for anything a command threw. */
export function failureOf(err: unknown, debug = false): { line?: string; exitCode: number } {
  const e = (err ?? {}) as OclifError;
  if (e.code === 'EEXIT' && typeof e.oclif?.exit === 'number') return { exitCode: e.oclif.exit };
  // parse errors, and oclif's own CLIErrors from parsing ("Flag --namespace expects a value", exit 2)
  if (PARSE_ERRORS.has(errorClass(e)) || (errorClass(e) === 'CLIError' && e.oclif?.exit === 2)) {
    return { line: `error: ${usageLine(e)}`, exitCode: ExitCode.USAGE };
  }
  const { line, exitCode } = describeFailure(err, debug);
  return { line, exitCode };
}
