import { Command, Flags } from '@oclif/core';

import { kubeFlags } from '../src/cli/flags.js';
import { DEFAULT_NAMESPACE, runUninstall } from '../src/kube/install.js';

// kubectl's connection flags; -n/--namespace here is the agent's namespace, not a target's
const { namespace: _targetNamespace, ...connectionFlags } = kubeFlags;

export default class Uninstall extends Command {
  static summary = 'Remove the nsdebug agent and everything install created.';

  static description = `Deletes the objects install applies (the DaemonSet, the nsdebug-user roles, the namespace), only those labelled app.kubernetes.io/part-of=nsdebug, and waits until they are gone. Running it again, or where nsdebug is not installed, changes nothing. Bindings you made to nsdebug-user yourself are left to you.`;

  static examples = ['<%= config.bin %> uninstall', '<%= config.bin %> uninstall --no-wait'];

  static flags = {
    namespace: Flags.string({ char: 'n', helpValue: 'NS', summary: 'namespace the agent was installed in', default: DEFAULT_NAMESPACE }),
    wait: Flags.boolean({ summary: 'wait until every object is gone', default: true, allowNo: true }),
    timeout: Flags.string({ helpValue: 'DURATION', summary: 'how long to wait, e.g. 90s, 5m', default: '2m' }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Uninstall);
    await runUninstall(flags);
  }
}
