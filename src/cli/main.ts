// Entry of `kubectl-nsdebug` (bin/kubectl-nsdebug, through src/cli/entry.ts): run oclif, print
// any failure as one line (src/cli/failure.ts), wait for stdout to drain, exit with the command's
// code. Only oclif is imported up front; commands load what they need (client-node only once a
// cluster is involved; the start-up snapshot holds a session's already).
import { Config, run, settings } from '@oclif/core';

import { ExitCode } from '../contract.js';
import { escapeLine } from './escape.js';
import { failureOf } from './failure.js';
import { kubeFlags } from './flags.js';

let originalArgv: string[] | undefined;

/** The argv main() was given: the default-command hook re-reads it verbatim. */
export const invocationArgv = (): string[] => originalArgv ?? process.argv.slice(2);

/** --debug before any `--`, or NSDEBUG_DEBUG=1: stack traces for internal errors. */
export function wantsDebug(argv: readonly string[], env: Record<string, string | undefined> = process.env): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--debug') || env.NSDEBUG_DEBUG === '1';
}

/** kubectl's global flags that take a value in the next word (-n NS, --context NAME…). */
const VALUE_FLAGS = new Set(
  Object.entries(kubeFlags).flatMap(([name, flag]) =>
    flag.type === 'option' ? [`--${name}`, ...(flag.char ? [`-${flag.char}`] : [])] : [],
  ),
);

/**
 * kubectl takes global flags before the subcommand (`kubectl -n demo get pods`); oclif looks for
 * the subcommand in the first word only. Moves the first non-flag word to the front when it
 * names a command, else returns argv as typed (a target for the default command).
 */
export function subcommandFirst(argv: readonly string[], isCommand: (word: string) => boolean): string[] {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    if (VALUE_FLAGS.has(word)) i++;
    else if (!word.startsWith('-')) return i > 0 && isCommand(word) ? [word, ...argv.slice(0, i), ...argv.slice(i + 1)] : [...argv];
  }
  return [...argv];
}

const drained = (stream: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => (stream.writableLength ? stream.write('', () => resolve()) : resolve()));

export async function main(argv: string[], root: string): Promise<never> {
  originalArgv = argv;
  // `kubectl nsdebug ps … | head`: a closed pipe ends us as SIGPIPE would, silently
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 128 + 13 : ExitCode.INTERNAL));
  }
  let exitCode: number;
  // dist/ is what runs: oclif need not look for TypeScript sources (nor load typescript to)
  settings.enableAutoTranspile = false;
  try {
    const config = await Config.load(root);
    const result = await run(
      subcommandFirst(argv, (word) => config.findCommand(word) !== undefined),
      config,
    );
    exitCode = typeof result === 'number' ? result : ExitCode.OK;
  } catch (err) {
    const failure = failureOf(err, wantsDebug(argv));
    // a failure may quote the API server or the container (a pod's status message): escaped
    if (failure.line) process.stderr.write(`${escapeLine(failure.line)}\n`);
    exitCode = failure.exitCode;
  }
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(exitCode);
}
