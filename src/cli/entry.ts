// The CLI's bundle entry (build/cli.mjs bundles it into dist/cli/nsdebug.cjs): runs the
// executable argv[1] names, kubectl-nsdebug or kubectl_complete-nsdebug, with oclif's own module
// loading served from the bundle. Started two ways:
// - from Node's start-up snapshot of the bundle, by bin/kubectl-nsdebug and
//   bin/kubectl_complete-nsdebug when dist/cli/snapshot.blob was built by the node on PATH:
//   oclif, the commands and client-node are already loaded;
// - imported by bin/*.js otherwise.
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startupSnapshot } from 'node:v8';

import { ExitCode } from '../contract.js';
import * as commands from './commands.js';
import * as defaultCommand from './default-command.js';
import * as help from './help.js';
import { main } from './main.js';
import { printCompletion } from './complete.js';

/** The modules package.json's `oclif` section names by path, as bundled here. */
const OCLIF_MODULES: Record<string, unknown> = {
  'dist/src/cli/commands.js': commands,
  'dist/src/cli/default-command.js': defaultCommand,
  'dist/src/cli/help.js': help,
};

declare global {
  /** import.meta.url of every bundled module (build/cli.mjs defines it so): the bundle's URL. */
  var nsdebugModuleUrl: string;
  /** oclif's module loader, as build/cli.mjs rewrites it: a bundled module, else require(). */
  var nsdebugLoadModule: (filePath: string) => unknown;
}

/**
 * Point the bundle at the package it runs from: its modules' import.meta.url (the package root
 * is found above it) and oclif's loader. Neither may be fixed at snapshot time: the package may
 * have moved since.
 */
function useBundleAt(root: string): void {
  globalThis.nsdebugModuleUrl = pathToFileURL(resolve(root, 'dist/cli/nsdebug.cjs')).href;
  // a snapshot has no import() callback; require() loads ESM without top-level await too
  globalThis.nsdebugLoadModule = (filePath) =>
    OCLIF_MODULES[relative(root, resolve(filePath)).split('\\').join('/')] ?? createRequire(filePath)(filePath);
}

/** What each executable runs, by its name. */
const PROGRAMS: Record<string, (argv: string[], root: string) => Promise<unknown>> = {
  'kubectl-nsdebug': (argv, root) => main(argv, pathToFileURL(resolve(root, 'bin/kubectl-nsdebug')).href),
  'kubectl_complete-nsdebug': (argv) => printCompletion(argv),
};

/**
 * What a session needs, loaded (and compiled) into the snapshot: the session command and the
 * modules its cluster steps import on use (src/cli/prepare.ts); other commands load on use.
 */
async function preloadSession(): Promise<void> {
  await Promise.all([
    import('./debug.js'),
    import('../kube/target.js'),
    import('../kube/access.js'),
    import('../kube/agent.js'),
    import('../kube/exec.js'),
    import('../kube/config.js').then(({ clientNode }) => clientNode()),
  ]);
}

/** Run the executable argv[1] names: its path, where a script's would be (the wrapper passes it). */
function runProgram(): void {
  const program = basename(process.argv[1] ?? '').replace(/\.js$/, '');
  const run = PROGRAMS[program];
  if (!run) {
    process.stderr.write(`nsdebug: the CLI's bundle runs ${Object.keys(PROGRAMS).join(' or ')}, not "${program}"\n`);
    process.exit(ExitCode.INTERNAL);
  }
  const root = dirname(dirname(realpathSync(process.argv[1]!)));
  useBundleAt(root);
  void run(process.argv.slice(2), root);
}

if (startupSnapshot.isBuildingSnapshot()) {
  void preloadSession();
  startupSnapshot.setDeserializeMainFunction(runProgram);
} else {
  runProgram();
}
