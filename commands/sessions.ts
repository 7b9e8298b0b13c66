// `kubectl nsdebug sessions`: the live sessions on the cluster (src/cli/sessions.ts runs it).
import { Command, Flags } from '@oclif/core';

import { connectionFlags, kubeFlags, targetFlags } from '../src/cli/flags.js';

export default class Sessions extends Command {
  static summary = 'List the live debug sessions: who, into what, on which node, since when, with a TTY, recorded.';

  static description = `Each agent publishes every live session as a Lease in its namespace (owned by the agent pod, removed when the session ends); this lists them in one API call whatever the size of the cluster. By default the sessions whose target is in the current namespace (-n); -A every namespace and the node sessions (node/NAME).

USER is the DebugSession's requester (session authorization, pinned by its admission policy), or "(exec)" for a session authorized by exec into the agent: the API server's audit log names who ran that exec. ID is what \`kubectl nsdebug sessions kill\` takes.

Needs get and list on leases in the agent's namespace (the nsdebug-user role, or nsdebug-session-viewer with session authorization).`;

  static examples = [
    { description: "The sessions into this namespace's pods", command: '<%= config.bin %> sessions' },
    { description: 'Every session on the cluster, with its command', command: '<%= config.bin %> sessions -A -o wide' },
    { description: 'As JSON', command: '<%= config.bin %> sessions -A -o json' },
  ];

  static flags = {
    'all-namespaces': Flags.boolean({ char: 'A', summary: 'sessions into every namespace, and node sessions' }),
    output: Flags.string({ char: 'o', summary: 'output format', options: ['table', 'wide', 'json'], default: 'table' }),
    'agent-namespace': targetFlags['agent-namespace'],
    namespace: kubeFlags.namespace,
    ...connectionFlags,
  };

  async run(): Promise<number> {
    const { flags } = await this.parse(Sessions);
    const { runSessions } = await import('../src/cli/sessions.js');
    return runSessions(flags);
  }
}
