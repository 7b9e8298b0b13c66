// oclif's command table (package.json oclif.commands, "explicit" strategy): one entry per file in
// commands/, named after it, and commands/index.ts as the default command (id DEFAULT_COMMAND_ID)
// that src/cli/default-command.ts runs when no subcommand is named. Static imports, so that the
// CLI's bundle and start-up snapshot (build/cli.mjs) hold every command; a command's own work
// stays behind a dynamic import in its run().
import type { Command } from '@oclif/core';

import Cp from '../../commands/cp.js';
import Debug from '../../commands/index.js';
import Install from '../../commands/install.js';
import Ns from '../../commands/ns.js';
import Ps from '../../commands/ps.js';
import Replay from '../../commands/replay.js';
import Sessions from '../../commands/sessions.js';
import SessionsKill from '../../commands/sessions/kill.js';
import Status from '../../commands/status.js';
import Uninstall from '../../commands/uninstall.js';
import { DEFAULT_COMMAND_ID } from './default-command.js';

const commands: Record<string, Command.Class> = {
  [DEFAULT_COMMAND_ID]: Debug,
  cp: Cp,
  install: Install,
  ns: Ns,
  ps: Ps,
  replay: Replay,
  sessions: Sessions,
  'sessions:kill': SessionsKill,
  status: Status,
  uninstall: Uninstall,
};

export default commands;
