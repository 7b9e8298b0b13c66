// `kubectl nsdebug ns TARGET`: the lsns view of a pod, from the agent (`nsdebug-agent ns
// --output=json` over one exec): every namespace its processes are in, and who shares each — its
// containers by name, the sandbox, the node — including PID namespaces made inside a container.
import { ExitCode, NAMESPACE_KINDS, type NamespaceInfo } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { PodLike } from '../pod.js';
import { queryAgent } from './agent-query.js';
import { processIo, type CliIo } from './io.js';
import { completePs, validatePs, type PsFlags, type PsOptions } from './options.js';
import { formatColumns } from './output.js';
import { prepare, realCluster, type ClusterDeps } from './prepare.js';
import { createProgress } from './progress.js';

/** A namespace as `ns -o json` prints it: containers by name, "sandbox" for the pod's pause container. */
export interface PodNamespace extends Omit<NamespaceInfo, 'containers' | 'nestedIn'> {
  sharedBy: string[];
  nestedIn?: string;
}

/** ns takes ps's flags less -c: the pod is the target. */
export async function runNs(flags: PsFlags, io: CliIo = processIo(), cluster: ClusterDeps = realCluster): Promise<number> {
  const opts = completePs(flags, io.facts);
  validatePs(opts);
  return ns(opts, io, cluster);
}

const SANDBOX = 'sandbox';

/** Container ID → name from the pod's statuses (init and ephemeral too); an ID the API does not list is the sandbox. */
function containerNamer(pod: PodLike): (containerId: string) => string {
  const names = new Map<string, string>();
  const { containerStatuses = [], initContainerStatuses = [], ephemeralContainerStatuses = [] } = pod.status ?? {};
  for (const s of [...containerStatuses, ...initContainerStatuses, ...ephemeralContainerStatuses]) {
    for (const raw of [s.containerID, s.lastState?.terminated?.containerID]) {
      const id = raw?.replace(/^[a-z0-9.-]+:\/\//, '');
      if (id && !names.has(id)) names.set(id, s.name);
    }
  }
  return (id) => names.get(id) ?? SANDBOX;
}

/** Names in the order a reader expects: the sandbox, then the pod spec's order (init, containers, ephemeral). */
function specOrder(pod: PodLike): (a: string, b: string) => number {
  const { initContainers = [], containers = [], ephemeralContainers = [] } = pod.spec ?? {};
  const order = [SANDBOX, ...[...initContainers, ...containers, ...ephemeralContainers].map((c) => c.name)];
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  return (a, b) => rank(a) - rank(b) || a.localeCompare(b);
}

export function namePodNamespaces(entries: NamespaceInfo[], pod: PodLike): PodNamespace[] {
  const nameOf = containerNamer(pod);
  return entries.map(({ containers, nestedIn, ...rest }) => ({
    ...rest,
    sharedBy: [...(rest.node ? ['node'] : []), ...[...new Set(containers.map(nameOf))].sort(specOrder(pod))],
    ...(nestedIn !== undefined ? { nestedIn: nameOf(nestedIn) } : {}),
  }));
}

/** lsns's columns plus LEVEL (PID namespaces) and SHARED BY ("node, sandbox, app" or "nested in app"). */
export function formatNamespaceTable(entries: PodNamespace[]): string {
  const rows = entries.map((e) => [
    String(e.inode),
    e.kind,
    e.level === undefined ? '-' : String(e.level),
    String(e.processes),
    String(e.hostPid),
    e.nestedIn !== undefined ? [`nested in ${e.nestedIn}`, ...e.sharedBy].join(', ') : e.sharedBy.join(', '),
    e.command,
  ]);
  return formatColumns(['NS', 'TYPE', 'LEVEL', 'NPROCS', 'HOST PID', 'SHARED BY', 'COMMAND'], rows);
}

const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);

/** The agent's answer to `nsdebug-agent ns` (JSON) → NamespaceInfo[], each field checked. */
export function parseAgentNamespaces(text: string, from: string): NamespaceInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed))
    throw new NsdebugError(
      `${from} printed no namespace list (${JSON.stringify(text.trim().slice(0, 120))}); check that the CLI and agent versions match with \`kubectl nsdebug status\``,
      ExitCode.INTERNAL,
    );
  parsed.forEach((e: Partial<NamespaceInfo> | null, i) => {
    const ok =
      e !== null &&
      typeof e === 'object' &&
      (NAMESPACE_KINDS as readonly unknown[]).includes(e.kind) &&
      isInt(e.inode) &&
      Array.isArray(e.containers) &&
      e.containers.every((c) => typeof c === 'string') &&
      typeof e.node === 'boolean' &&
      isInt(e.processes) &&
      isInt(e.hostPid) &&
      typeof e.command === 'string';
    if (!ok)
      throw new NsdebugError(`${from} printed a malformed namespace entry #${i}: ${JSON.stringify(e).slice(0, 160)}`, ExitCode.INTERNAL);
  });
  return parsed as NamespaceInfo[];
}

export async function ns(opts: PsOptions, io: CliIo, cluster: ClusterDeps): Promise<number> {
  const progress = createProgress(io.stderr, { enabled: opts.progress });
  try {
    const { conn, target, agent } = await prepare(opts, cluster, progress, 'any', true);
    progress.step(`listing namespaces through the agent on node ${agent.node}`);
    const doing = `list the namespaces of pod ${target.namespace}/${target.pod}`;
    const request = { operation: 'ns', podUid: target.podUid } as const;
    const stdout = await queryAgent(cluster, { conn, agent, target, sessionAuth: opts.sessionAuth }, request, doing);
    progress.clear();
    const entries = namePodNamespaces(parseAgentNamespaces(stdout, `the agent on node ${agent.node}`), target.podObject);
    io.stdout.write(opts.output === 'json' ? `${JSON.stringify(entries, null, 2)}\n` : formatNamespaceTable(entries));
    return ExitCode.OK;
  } finally {
    progress.clear();
  }
}
