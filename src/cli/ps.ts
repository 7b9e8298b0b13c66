// `kubectl nsdebug ps TARGET`: the container's processes from the agent (`nsdebug-agent ps
// --output=json`, one agent query), printed as a table or passed on as JSON.
import { ExitCode } from '../contract.js';
import { queryAgent } from './agent-query.js';
import { processIo, type CliIo } from './io.js';
import { completePs, validatePs, type PsFlags, type PsOptions } from './options.js';
import { formatProcessTable, parseProcessList } from './output.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { createProgress } from './progress.js';

export async function runPs(flags: PsFlags, io: CliIo = processIo(), cluster: ClusterDeps = realCluster, now?: Date): Promise<number> {
  const opts = completePs(flags, io.facts);
  validatePs(opts);
  return ps(opts, io, cluster, now);
}

export async function ps(opts: PsOptions, io: CliIo, cluster: ClusterDeps, now?: Date): Promise<number> {
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress);
    progress.step(`listing processes through the agent on node ${agent.node}`);
    const request = { operation: 'ps', containerId: target.container.containerId, podUid: target.podUid, output: 'json' } as const;
    const doing = `list the processes of container ${target.container.name} of pod ${target.namespace}/${target.pod}`;
    const stdout = await queryAgent(cluster, { conn, agent, target, sessionAuth: opts.sessionAuth }, request, doing);
    progress.clear();
    const processes = parseProcessList(stdout, `the agent on node ${agent.node}`);
    io.stdout.write(opts.output === 'json' ? `${JSON.stringify(processes, null, 2)}\n` : formatProcessTable(processes, now));
    return ExitCode.OK;
  } finally {
    progress.clear();
  }
}
