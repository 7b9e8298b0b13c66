// `kubectl nsdebug --help`: the default command's usage, flags and examples, then the
// subcommands; shown too for `kubectl nsdebug pod/x --help`. Usage lines read `kubectl nsdebug`,
// as the user types it through kubectl, not the executable's name.
import { Help, type Command } from '@oclif/core';

import { DEFAULT_COMMAND_ID } from './default-command.js';

export default class NsdebugHelp extends Help {
  override async showHelp(argv: string[]): Promise<void> {
    const words = argv.filter((a) => !a.startsWith('-'));
    const subject = words[0];
    if (
      subject !== undefined &&
      argv.indexOf(subject) === argv.findIndex((a) => !a.startsWith('-')) &&
      (this.config.findCommand(subject) || this.config.findTopic(subject))
    ) {
      return super.showHelp(argv);
    }
    return this.showRootHelp();
  }

  override async showRootHelp(): Promise<void> {
    const root = this.config.findCommand(DEFAULT_COMMAND_ID);
    if (!root) return super.showRootHelp();
    await this.showCommandHelp({ ...root, id: '' } as Command.Loadable);
    const commands = this.sortedCommands.filter((c) => c.id !== DEFAULT_COMMAND_ID);
    if (commands.length) this.log(`${this.formatCommands(commands)}\n`);
  }

  override formatCommand(command: Command.Loadable): string {
    return super.formatCommand(command).replaceAll(new RegExp(`\\$ ${this.config.bin} +`, 'g'), '$ kubectl nsdebug ');
  }
}
