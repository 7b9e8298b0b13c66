// `kubectl nsdebug status`: the agent of every node (src/cli/status.ts runs it).
import { Command, Flags } from '@oclif/core';

import { agentNamespaceFlag, connectionFlags } from '../src/cli/flags.js';

export default class Status extends Command {
  static summary = 'Show the nsdebug agent of every node.';

  static description = `One row per node: its agent pod and whether it is ready, the agent's version and contract version next to this CLI's, the container runtime, cgroup layout and kernel the agent found. Nodes without an agent are listed too. The agent is asked through \`kubectl exec\` (\`nsdebug-agent info\`), so this needs what a session needs: exec into the agent pods.`;

  static examples = ['<%= config.bin %> status', '<%= config.bin %> status -o json'];

  static flags = {
    output: Flags.string({ char: 'o', summary: 'output format', options: ['table', 'json'], default: 'table' }),
    namespace: agentNamespaceFlag('namespace the agent runs in'),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    const { runStatus } = await import('../src/cli/status.js');
    await runStatus(flags);
  }
}
