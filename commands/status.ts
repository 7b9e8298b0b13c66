// `kubectl nsdebug status`: the agent of every node (src/cli/status.ts runs it).
import { Command, Flags } from '@oclif/core';

import { agentNamespaceFlag, connectionFlags } from '../src/cli/flags.js';

export default class Status extends Command {
  static summary = 'Show whether every node can host a session, and why not.';

  static description = `A summary that reads the same on three nodes and on three thousand: how many nodes can host a session now, the agents' versions next to this CLI's, the container runtimes and cgroup layouts, and every node that cannot host a session with why (its agent pod missing, not ready, or speaking another contract; the node not Ready). \`-o wide\` prints a row per node, \`-o json\` everything. It reads what each agent publishes of itself (a Lease per agent pod) in three paged lists, whatever the number of nodes.

Exit codes: 0 when every node can host a session, 76 (degraded) when some cannot, 67 when none can or nsdebug is not installed.`;

  static examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status -o wide',
    "<%= config.bin %> status -o json | jq '.nodes[] | select(.hostsSessions | not)'",
  ];

  static flags = {
    output: Flags.string({
      char: 'o',
      summary: 'output format: wide (a row per node) or json; a summary without it',
      options: ['wide', 'json'],
    }),
    namespace: agentNamespaceFlag('namespace the agent runs in'),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    const { runStatus } = await import('../src/cli/status.js');
    await runStatus(flags);
  }
}
