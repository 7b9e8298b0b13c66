// `kubectl nsdebug ns TARGET`: the pod's namespaces and who shares them, like lsns.
import { Args, Command, Flags } from '@oclif/core';

import { kubeFlags, targetFlags } from '../src/cli/flags.js';

export default class Ns extends Command {
  static summary = "List a pod's namespaces like lsns: each one's inode, and who shares it (containers, the sandbox, the node).";
  static description =
    "Read by the nsdebug agent on the pod's node from /proc, through one exec via the API server. Shows sharing set by shareProcessNamespace, hostNetwork, hostPID, hostIPC and hostUsers, and PID namespaces made inside a container (LEVEL 2 and deeper, with their PID 1).";
  static examples = [
    { description: 'The namespaces of pod web-0', command: 'kubectl nsdebug ns pod/web-0' },
    { description: "A deployment's pod, as JSON", command: 'kubectl nsdebug ns deploy/web -n shop -o json' },
  ];
  static args = {
    target: Args.string({
      description: 'pod/NAME (or NAME), deploy/NAME, statefulset/NAME, daemonset/NAME, replicaset/NAME, job/NAME, service/NAME',
    }),
  };
  static flags = {
    selector: targetFlags.selector,
    'agent-namespace': targetFlags['agent-namespace'],
    'session-auth': targetFlags['session-auth'],
    output: Flags.string({ char: 'o', summary: 'output format', options: ['table', 'json'], default: 'table' }),
    ...kubeFlags,
  };

  async run(): Promise<number> {
    const { args, flags } = await this.parse(Ns);
    const { runNs } = await import('../src/cli/ns.js');
    return runNs({ ...flags, ...(args.target !== undefined ? { target: args.target } : {}) });
  }
}
