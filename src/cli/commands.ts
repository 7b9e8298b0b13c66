// oclif's command table (package.json oclif.commands, "explicit" strategy): every file in
// dist/commands/ is a command named after the file, and commands/index.ts is the default command
// (id DEFAULT_COMMAND_ID) that src/cli/default-command.ts runs when no subcommand is named.
// oclif's "pattern" strategy maps index.js to that id but cannot load it from there, and its
// "single" strategy allows no subcommands; this keeps both, without a generated manifest to go stale.
import { readdirSync } from 'node:fs';

import type { Command } from '@oclif/core';

import { DEFAULT_COMMAND_ID } from './default-command.js';

const dir = new URL('../../commands/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.js'));

const commands: Record<string, Command.Class> = Object.fromEntries(
  await Promise.all(
    files.map(async (file) => {
      const { default: command } = (await import(new URL(file, dir).href)) as { default: Command.Class };
      return [file === 'index.js' ? DEFAULT_COMMAND_ID : file.slice(0, -'.js'.length), command] as const;
    }),
  ),
);

export default commands;
