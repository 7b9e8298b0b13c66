// `kubectl nsdebug status`: one row per node — its agent pod, whether it is ready, and what the
// agent itself reports (the Lease each agent publishes of its `nsdebug-agent info`,
// src/agent/agent-report.ts): its version and contract version next to the CLI's, the runtime,
// cgroup layout and kernel. Nodes without an agent are shown too, with what the Node object says.
// Whatever the number of nodes it costs three paged lists (nodes, agent pods, reports) and the two
// session-authorization reads: nothing per node. Row building is pure; src/cli/status.ts prints.
import { agentPodState, currentPods, nodeOfPod } from '../agent-health.js';
import { AGENT_REPORT, CONTRACT_VERSION, DEBUG_SESSION, SESSION_POLICY, type AgentInfo } from '../contract.js';
import type { NodeLike, PodLike } from '../pod.js';
import { apiClients, apiStatusCode, clientNode, describeApiError, listAllPages, type KubeConnection } from './config.js';
import { AGENT_SELECTOR } from './manifests.js';

/** The parts of a Lease an agent's report is read from (client-node's V1Lease fits). */
export interface LeaseLike {
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { renewTime?: Date | string; leaseDurationSeconds?: number };
}

export interface StatusClient {
  listNodes(): Promise<NodeLike[]>;
  listAgentPods(namespace: string): Promise<PodLike[]>;
  /** the report Leases the agents in namespace publish */
  listAgentReports(namespace: string): Promise<LeaseLike[]>;
  /** whether the API serves DebugSessions, and whether the admission policy that pins their requester is bound */
  sessionAuth(): Promise<{ resource: boolean; policy: boolean | 'unknown' }>;
}

export interface NodeStatus {
  node: string;
  /** the agent pod's name; undefined where no agent pod runs */
  pod?: string;
  /** the agent pod is ready */
  ready: boolean;
  /** a session to this node can start now: its agent is ready, speaks the CLI's contract, on a Ready node */
  hostsSessions: boolean;
  /** the agent pod's state in a few words: "ready", "ContainerCreating", "no agent pod" */
  state: string;
  version?: string;
  contractVersion?: number;
  runtime: string;
  /** the runtime and its version as the kubelet reports it: "containerd 2.4.2" */
  runtimeVersion: string;
  cgroup?: string;
  kernel: string;
  /** why the row is not all good, in words; empty when it is */
  problems: string[];
  /** the agent's own report, for -o json */
  info?: AgentInfo;
  /** when the agent last renewed its report (RFC 3339) */
  reported?: string;
}

export interface StatusReport {
  namespace: string;
  cli: { version: string; contractVersion: number };
  nodes: NodeStatus[];
  /** session authorization (deploy/session-auth/) */
  sessionAuth: { resource: boolean; policy: boolean | 'unknown' };
}

/** "containerd://1.7.2" → "containerd 1.7.2" */
const runtimeOfNode = (node: NodeLike) => node.status?.nodeInfo?.containerRuntimeVersion?.replace('://', ' ') ?? 'unknown';

const nodeReady = (node: NodeLike) => {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  // a node object of our own making (an agent pod whose node is gone) says nothing
  return !node.status || ready?.status === 'True';
};

/** An agent's report: its pod, and what it said when; undefined for a Lease that is not one. */
export interface AgentReport {
  pod: string;
  info: AgentInfo;
  renewed?: Date;
  /** after this, the report is stale: the agent stopped renewing it */
  expires?: Date;
}

export function reportOfLease(lease: LeaseLike): AgentReport | undefined {
  const text = lease.metadata?.annotations?.[AGENT_REPORT.annotation];
  const pod = lease.metadata?.name;
  if (!text || !pod) return undefined;
  try {
    const info = parseAgentInfo(text);
    const renewTime = lease.spec?.renewTime;
    const renewed = renewTime === undefined ? undefined : new Date(renewTime);
    const seconds = lease.spec?.leaseDurationSeconds;
    return {
      pod,
      info,
      ...(renewed && !Number.isNaN(renewed.getTime()) ? { renewed } : {}),
      ...(renewed && seconds ? { expires: new Date(renewed.getTime() + seconds * 1000) } : {}),
    };
  } catch {
    return undefined;
  }
}

/** One node's row from what the API and the agent's report said; pure. */
export function nodeStatus(
  node: NodeLike,
  pod: PodLike | undefined,
  report: AgentReport | undefined,
  cli: StatusReport['cli'],
  now = new Date(),
): NodeStatus {
  const name = node.metadata?.name ?? '?';
  const runtimeVersion = runtimeOfNode(node);
  const base = { node: name, runtime: runtimeVersion, runtimeVersion, kernel: node.status?.nodeInfo?.kernelVersion ?? 'unknown' };
  const problems: string[] = [];
  if (!nodeReady(node)) problems.push('node is not Ready');
  if (!pod)
    return { ...base, ready: false, hostsSessions: false, state: 'no agent pod', problems: [...problems, 'no agent pod on this node'] };
  const state = agentPodState(pod);
  if (!state.ready) problems.push(`not ready: ${state.state}`);
  const row: NodeStatus = {
    ...base,
    pod: state.pod,
    ready: state.ready,
    hostsSessions: state.ready && !problems.length,
    state: state.state,
    problems,
  };
  if (!report) {
    if (pod.status?.containerStatuses?.some((c) => c.state?.running))
      problems.push('the agent has not published its report (an agent older than this CLI? run `kubectl nsdebug install`)');
    return row;
  }
  const { info } = report;
  row.info = info;
  if (report.renewed) row.reported = report.renewed.toISOString();
  if (report.expires && report.expires < now) problems.push(`the agent's report is stale (last renewed ${row.reported})`);
  row.version = info.version;
  row.contractVersion = info.contractVersion;
  // the agent knows only the sockets in their usual places; the Node object always names it
  if (info.runtime !== 'unknown') row.runtime = info.runtime;
  row.cgroup = `${info.cgroupVersion}/${info.cgroupDriver}`;
  row.kernel = info.kernel;
  if (info.contractVersion !== cli.contractVersion) {
    row.hostsSessions = false;
    problems.push(
      `contract ${info.contractVersion} differs from the CLI's ${cli.contractVersion}: sessions will be refused; run \`kubectl nsdebug install\` with this CLI`,
    );
  } else if (info.version !== cli.version) {
    problems.push(`agent ${info.version} differs from the CLI's ${cli.version}`);
  }
  for (const c of info.checks ?? []) if (!c.ok) problems.push(`check failed: ${c.name}: ${c.detail}`);
  return row;
}

export async function collectStatus(
  opts: { namespace: string; cliVersion: string; now?: Date },
  client: StatusClient,
): Promise<StatusReport> {
  const cli = { version: opts.cliVersion, contractVersion: CONTRACT_VERSION };
  const [nodes, pods, leases, sessionAuth] = await Promise.all([
    client.listNodes(),
    client.listAgentPods(opts.namespace),
    client.listAgentReports(opts.namespace),
    client.sessionAuth(),
  ]);
  const podByNode = new Map(currentPods(pods).map((p) => [nodeOfPod(p), p]));
  const reportByPod = new Map(
    leases.flatMap((l) => {
      const r = reportOfLease(l);
      return r ? [[r.pod, r] as const] : [];
    }),
  );
  const names = new Set(nodes.map((n) => n.metadata?.name ?? '?'));
  // an agent pod for a node the API no longer lists still gets a row
  const all = [...nodes, ...[...podByNode.keys()].filter((n) => !names.has(n)).map((name) => ({ metadata: { name } }))];
  all.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const rows = all.map((node) => {
    const pod = podByNode.get(node.metadata?.name ?? '?');
    const report = pod?.metadata?.name ? reportByPod.get(pod.metadata.name) : undefined;
    return nodeStatus(node, pod, report, cli, opts.now);
  });
  return { namespace: opts.namespace, cli, nodes: rows, sessionAuth };
}

/** The agent's `info` JSON, checked for the fields status shows. */
export function parseAgentInfo(stdout: string): AgentInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`the agent printed no JSON: ${stdout.trim().split('\n')[0]?.slice(0, 200) ?? ''}`);
  }
  const info = parsed as Partial<AgentInfo>;
  if (typeof info.version !== 'string' || typeof info.contractVersion !== 'number')
    throw new Error('the agent answered without a version: is it an nsdebug agent?');
  return { runtime: 'unknown', cgroupVersion: 'unknown', cgroupDriver: 'unknown', kernel: 'unknown', checks: [], ...info } as AgentInfo;
}

// ---- over the API ----

export async function createStatusClient(conn: KubeConnection): Promise<StatusClient> {
  const { core } = await apiClients(conn);
  const k8s = await clientNode();
  const coordination = conn.kc.makeApiClient(k8s.CoordinationV1Api);
  const call = async <T>(doing: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw describeApiError(err, doing, conn, 'status needs the nsdebug-user roles (ask your cluster admin to bind them)');
    }
  };
  return {
    listNodes: () => call('list nodes', () => listAllPages((page) => core.listNode(page))),
    listAgentPods: (namespace) =>
      call(`list the agent pods in ${namespace}`, () =>
        listAllPages((page) => core.listNamespacedPod({ namespace, labelSelector: AGENT_SELECTOR, ...page })),
      ),
    listAgentReports: (namespace) =>
      call(`list the agent reports (leases) in ${namespace}`, () =>
        listAllPages((page) => coordination.listNamespacedLease({ namespace, labelSelector: `${AGENT_REPORT.label}=true`, ...page })),
      ),
    sessionAuth: async () => {
      const [resource, policy] = await Promise.all([
        // discovery: any authenticated user may read it
        conn.kc
          .makeApiClient(k8s.CustomObjectsApi)
          .getAPIResources({ group: DEBUG_SESSION.group, version: DEBUG_SESSION.version })
          .then(
            (list) => list.resources.some((r) => r.name === DEBUG_SESSION.plural),
            () => false,
          ),
        conn.kc
          .makeApiClient(k8s.AdmissionregistrationV1Api)
          .readValidatingAdmissionPolicyBinding({ name: SESSION_POLICY })
          .then(
            () => true,
            (err: unknown) => (apiStatusCode(err) === 404 ? false : ('unknown' as const)),
          ),
      ]);
      return { resource, policy };
    },
  };
}
