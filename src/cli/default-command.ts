// oclif `command_not_found` hook: `kubectl nsdebug pod/web-0 …` (and `kubectl nsdebug -n x …`)
// names no subcommand, so it runs the default command (commands/index.ts) with the argv as typed.
// `ps`, `install`, `status`, `uninstall`, `autocomplete` are found before this hook is asked.
import type { Hook } from '@oclif/core';

import { invocationArgv } from './main.js';

/** oclif's id for commands/index.ts. */
export const DEFAULT_COMMAND_ID = Symbol('SINGLE_COMMAND_CLI').toString();

const hook: Hook<'command_not_found'> = async function ({ config, id }) {
  if (id === 'help' || id.startsWith('help:')) {
    const { loadHelpClass } = await import('@oclif/core');
    const Help = await loadHelpClass(config);
    await new Help(config).showHelp(invocationArgv().slice(1));
    return 0;
  }
  return config.runCommand(DEFAULT_COMMAND_ID, invocationArgv());
};

export default hook;
