// `kubectl nsdebug uninstall`: everything install created, removed (src/cli/uninstall.ts runs it).
import { Command, Flags } from '@oclif/core';

import { agentNamespaceFlag, connectionFlags } from '../src/cli/flags.js';

export default class Uninstall extends Command {
  static summary = 'Remove the nsdebug agent and everything install created.';

  static description = `Deletes the objects install applies (the DaemonSet, the nsdebug-user roles, the namespace), only those labelled app.kubernetes.io/part-of=nsdebug, and waits until they are gone. Running it again, or where nsdebug is not installed, changes nothing. Bindings you made to nsdebug-user yourself are left to you.`;

  static examples = ['<%= config.bin %> uninstall', '<%= config.bin %> uninstall --no-wait'];

  static flags = {
    namespace: agentNamespaceFlag('namespace the agent was installed in'),
    wait: Flags.boolean({ summary: 'wait until every object is gone', default: true, allowNo: true }),
    timeout: Flags.string({ helpValue: 'DURATION', summary: 'how long to wait, e.g. 90s, 5m', default: '2m' }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Uninstall);
    const { runUninstall } = await import('../src/cli/uninstall.js');
    await runUninstall(flags);
  }
}
