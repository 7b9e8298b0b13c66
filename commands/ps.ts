// `kubectl nsdebug ps TARGET`: the target container's processes, host PID ↔ container PID.
import { Args, Command, Flags } from '@oclif/core';

import { kubeFlags, targetFlags } from '../src/cli/flags.js';

export default class Ps extends Command {
  static summary =
    "List a container's processes: host PID, PID inside the container (and nested PID namespaces), user, state, start, command.";
  static description =
    "Read by the nsdebug agent on the container's node from /proc, through one exec via the API server; nothing runs inside the container.";
  static examples = [
    { description: 'The processes of pod web-0', command: 'kubectl nsdebug ps pod/web-0' },
    { description: "As JSON, for the sidecar of a deployment's pod", command: 'kubectl nsdebug ps deploy/web -c sidecar -o json' },
  ];
  static args = {
    target: Args.string({
      description: 'pod/NAME (or NAME), deploy/NAME, statefulset/NAME, daemonset/NAME, replicaset/NAME, job/NAME, service/NAME',
    }),
  };
  static flags = {
    ...targetFlags,
    output: Flags.string({ char: 'o', summary: 'output format', options: ['table', 'json'], default: 'table' }),
    ...kubeFlags,
  };

  async run(): Promise<number> {
    const { args, flags } = await this.parse(Ps);
    const { runPs } = await import('../src/cli/ps.js');
    return runPs({ ...flags, ...(args.target !== undefined ? { target: args.target } : {}) });
  }
}
